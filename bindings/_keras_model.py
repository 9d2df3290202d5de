"""``warpinit.keras.initialize``: a Keras model's variables through the shared whole-model engine.

Each variable is drawn from the initializer Keras created it with (``_keras_variables``), translated
into the shared distribution vocabulary; the engine (``_whole_model``) groups, seeds, generates and
hands the values over through the adapter below, which gives every variable a tensor of its own.
"""

from __future__ import annotations

import logging
import secrets
from typing import NamedTuple

import keras

from . import _args, _distributions, _keras_initializers, _keras_layouts, _keras_tensors, _keras_variables
from . import _seeds, _whole_model

logger = logging.getLogger("warpinit.keras")

UNSUPPORTED = ("raise", "keep")
# Initializers Keras itself computes without random numbers: their values are exact either way.
_DETERMINISTIC = (keras.initializers.Identity, keras.initializers.STFT)


class _Variable(NamedTuple):
    path: str  # structural: sublayer indices and the variable's index in its layer
    variable: object
    how: str  # "draw", "own" (its own deterministic initializer / value), "unknown"
    distribution: object  # a Distribution for "draw"
    why: str  # for "own" and "unknown": what the initializer is


def variables(model):
    """(path, variable) for every variable of ``model``, each once, in a structural order.

    A path is made of sublayer indices and the variable's index in its layer (seed generator states:
    ``s<index>``), so it depends neither on the names Keras numbers per process ("dense_3") nor on how
    the model was built. A variable reachable twice (shared layers, tied weights) keeps its first path.
    """
    seen = set()

    def walk(layer, prefix):
        own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
        for index, variable in enumerate(own):
            yield f"{prefix}{index}", variable
        for index, generator in enumerate(getattr(layer, "_seed_generators", ())):
            yield f"{prefix}s{index}", generator.state
        sublayers = [sub for sub in layer._flatten_layers(include_self=False, recursive=False)
                     if not isinstance(sub, keras.layers.InputLayer)]  # present or not, depending on the build
        for index, sublayer in enumerate(sublayers):
            yield from walk(sublayer, f"{prefix}{index}/")

    for path, variable in walk(model, ""):
        if id(variable) not in seen:
            seen.add(id(variable))
            yield path, variable
    for index, variable in enumerate(model.variables):  # anything the structure does not reach
        if id(variable) not in seen:
            seen.add(id(variable))
            yield f"v{index}", variable


def _classify(path, variable) -> _Variable:
    shape = tuple(int(d) for d in variable.shape)
    dtype = keras.backend.standardize_dtype(variable.dtype)
    initializer = _keras_variables.initializer_of(variable)
    if dtype not in _keras_tensors.FLOATS:
        return _Variable(path, variable, "own", None, f"{dtype} state")
    if initializer is _keras_variables.UNKNOWN:
        return _Variable(path, variable, "unknown", None,
                         "created before warpinit.keras was imported, so its initializer is unknown")
    if not callable(initializer):
        return _Variable(path, variable, "own", None, "created from a value")
    distribution = _keras_initializers.distribution_of(initializer, shape)
    if distribution is None:
        name = getattr(initializer, "__qualname__", None) or type(initializer).__name__
        if isinstance(initializer, _DETERMINISTIC) or _constant_composite(initializer):
            return _Variable(path, variable, "own", None, name)
        return _Variable(path, variable, "unknown", None, f"initializer {name}, which warpinit cannot draw")
    if distribution.kind == "orthogonal" and len(shape) < 2:
        raise ValueError(f"initialize: variable {variable.path!r} ({path}) has an Orthogonal initializer and shape "
                         f"{shape}; orthogonal needs at least two dimensions")
    return _Variable(path, variable, "draw", distribution, "")


def _constant_composite(initializer) -> bool:
    """Whether ``initializer`` is one of Keras's own closures that concatenate other initializers
    (LSTMCell's bias with ``unit_forget_bias``: bias_initializer, ones, bias_initializer) and all it
    concatenates are constants - so that Keras's own values are exact."""
    if getattr(initializer, "__qualname__", "") != "LSTMCell.build.<locals>.bias_initializer":
        return False
    cells = [cell.cell_contents for cell in initializer.__closure__ or ()
             if isinstance(cell.cell_contents, keras.layers.LSTMCell)]
    if len(cells) != 1:
        return False
    part = _keras_initializers.distribution_of(cells[0].bias_initializer, (cells[0].units,))
    return part is not None and not part.random


class _Adapter(_whole_model.Adapter):
    """Every variable gets a new backend tensor of its own (``_keras_tensors``)."""

    def destination(self, request):
        return _keras_tensors.destination(request.shape, request.dtype.name, request.device)

    def install(self, request, handle):
        _keras_tensors.assign(request.target, _keras_tensors.tensor(handle, request.dtype.name))


def _describe(entries, limit=10) -> str:
    text = "; ".join(f"{entry.variable.path} ({entry.why})" for entry in entries[:limit])
    return text + (f"; and {len(entries) - limit} more" if len(entries) > limit else "")


def initialize(model, seed=None, progress=None, *, unsupported="raise"):
    """(Re)initialize a built or ``deferred()`` model's variables in batched kernel launches.

    Every float variable is drawn from the initializer Keras created it with - the one passed to
    ``add_weight`` / ``keras.Variable``, with the arguments Keras completed at build time
    (EinsumDense's axes) - whether a warpinit class or its Keras built-in equivalent (random,
    variance scaling, orthogonal, zeros, ones, scalar constants). Each variable has its own seed,
    ``derive_seed(model seed, path_tag(path))`` with a structural path (sublayer indices and the
    variable's index in its layer), so values depend neither on grouping, batch sizes or the device
    nor on the names Keras numbers per process; the initializers' own seeds are not used. Under a
    ``keras.distribution`` on JAX, a variable its layout splits over devices is drawn shard by shard.

    Variables warpinit does not draw keep Keras's own path, and are logged (logger
    ``warpinit.keras``, INFO): non-float state (seed generators), variables created from a value, and
    Identity/STFT initializers - exact either way; a deferred one is initialized by its own
    initializer. A variable whose initializer is unknown (a custom initializer, or a variable created
    before ``warpinit.keras`` was imported) is an error naming it, unless ``unsupported="keep"``:
    then it keeps Keras's path too, with a warning naming it.

    Args:
        model: a Keras layer or model, built, or built under ``deferred()``.
        seed: int in [0, 2**64), or None for fresh OS entropy.
        progress: show a progress bar on stderr; None: when stderr is a terminal and the model holds
            more than 256 MB of drawn variables.
        unsupported: "raise" (default) or "keep", for variables with an unknown initializer.

    Returns:
        The 64-bit model seed used (pass it again to get the same weights).

    Raises:
        TypeError: ``model`` is not a Keras layer; ``seed`` is not an int.
        ValueError: ``seed`` outside [0, 2**64); an unbuilt model; an unknown initializer (with
            ``unsupported="raise"``); a distribution the variable's dtype cannot hold. All before any
            variable is assigned.
        MemoryError: the scratch buffer does not fit in memory (before any variable is assigned).
    """
    function = "initialize"
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"{function}: model must be a Keras layer or model, got {type(model).__name__}")
    if seed is None:
        seed = secrets.randbits(64)
    seed = _args.seed(function, seed, None)
    if unsupported not in UNSUPPORTED:
        raise ValueError(f"{function}: unsupported must be one of {UNSUPPORTED}, got {unsupported!r}")
    if not model.built:
        raise ValueError(f"{function}: the model {model.name!r} is not built: build it (call it on data, "
                         "model.build(shape), or give it an Input) normally or under deferred() first")

    entries = [_classify(path, variable) for path, variable in variables(model)]
    unknown = [entry for entry in entries if entry.how == "unknown"]
    if unknown and unsupported == "raise":
        raise ValueError(f"{function}: warpinit cannot draw {len(unknown)} variable(s): {_describe(unknown)}. "
                         "Pass unsupported='keep' to keep Keras's own initialization for them")
    where = _keras_tensors.device()
    requests, split = [], []
    for entry in entries:
        if entry.how != "draw":
            continue
        variable = entry.variable
        request = _whole_model.Request(entry.path, entry.distribution, tuple(int(d) for d in variable.shape),
                                       _distributions.numpy_dtype(keras.backend.standardize_dtype(variable.dtype)),
                                       where, variable)
        layout = _keras_layouts.split_layout(variable)
        (split if layout is not None else requests).append((request, layout))
    _whole_model.check([request for request, _ in requests + split], function)

    _whole_model.run([request for request, _ in requests], seed, _Adapter(), function=function, progress=progress)
    for request, layout in split:
        value = _keras_layouts.laid_out(request.distribution, request.shape, request.dtype.name,
                                        _seeds.tensor_seed(seed, request.path), layout)
        _keras_tensors.assign(request.target, value)
    own = [entry for entry in entries if entry.how != "draw"]
    for entry in own:
        if _keras_variables.is_deferred(entry.variable):
            _keras_variables.initialize_own(entry.variable)
    _keras_variables.forget_pending({id(entry.variable) for entry in entries})
    if unknown:
        logger.warning("initialize: %d variable(s) kept Keras's own initialization: %s", len(unknown),
                       _describe(unknown))
    known_own = [entry for entry in own if entry.how == "own"]
    if known_own:
        logger.info("initialize: %d variable(s) initialized by their own deterministic initializer: %s",
                    len(known_own), _describe(known_own))
    return seed
