"""Keras 3 initializers backed by warpinit's kernels, and whole-model batched initialization.

Drop-in classes: each subclasses the Keras class of the same name (``isinstance`` checks hold), keeps
its constructor, defaults, validation, attributes and ``get_config`` keys, and only replaces
``__call__``::

    import warpinit.keras as initializers

    layer = keras.layers.Dense(4096, kernel_initializer=initializers.Orthogonal(seed=1))
    layer = keras.layers.Dense(4096, kernel_initializer=initializers.get("glorot_uniform"))

Semantics follow Keras (the distributions, VarianceScaling's fans and its 0.8796... truncation
correction, dtype ``None`` = ``keras.config.floatx()``), with two strengthenings: the same integer seed
gives the same values on every backend (numpy, tensorflow, jax, torch) and on CPU and GPU, and
truncation is exact at any size.

Seeds: an int gives the same values on every call (any Python int; negative ones are taken modulo
2**64); ``None`` picks a seed at construction that ``get_config`` does not store, as Keras does; a
``keras.random.SeedGenerator`` gives new values on every call: its next state is read back to the host
(a device synchronisation on GPU backends) and folded into a 64-bit seed with Philox.

Whole models: ``deferred()`` builds a model without initializing its variables, and
``initialize(model, seed)`` fills them in batched kernel launches, each variable from a seed derived
from the model seed and its structural path in the model (see ``initialize``).

Distributions: under a ``keras.distribution`` (JAX backend) Keras passes the variable's ``layout`` to
the initializer; each device then draws only its own block, bit for bit the same block of the
undistributed tensor, and ``initialize`` does the same for the variables their layouts split.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

try:
    import keras
except ImportError as error:  # pragma: no cover - exercised only without Keras
    raise ImportError("warpinit.keras needs Keras 3: pip install 'warpinit[keras]'") from error

from . import _devices, _distributions, _progress, _seeds

__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "STFT",
    "TruncatedNormal", "VarianceScaling", "Zeros", "deferred", "deserialize", "get", "initialize",
    "serialize",
]

# Re-exported unchanged: constant initializers need no random numbers.
Initializer = keras.initializers.Initializer
Constant = keras.initializers.Constant
Identity = keras.initializers.Identity
Ones = keras.initializers.Ones
Zeros = keras.initializers.Zeros
STFT = keras.initializers.STFT

_SEED_GENERATOR_TAG = 0x5EED_0F_6E4E_7A70  # folds a SeedGenerator state into a 64-bit seed
_FLOATS = ("float16", "bfloat16", "float32", "float64")


# Seeds, dtypes and tensors ---------------------------------------------------------------------------


def _seed64(seed) -> int:
    """warpinit's 64-bit seed for a Keras seed: an int modulo 2**64, or a SeedGenerator's next state."""
    if isinstance(seed, keras.random.SeedGenerator):
        from warpinit.kernels.philox import derive_seed

        state = np.asarray(keras.ops.convert_to_numpy(seed.next())).astype(np.int64).ravel()
        folded = ((int(state[0]) & 0xFFFFFFFF) << 32) | (int(state[-1]) & 0xFFFFFFFF)
        return derive_seed(folded, _SEED_GENERATOR_TAG)
    return int(seed) % 2**64


def _dtype(dtype) -> str:
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in _FLOATS:
        raise ValueError(
            f"warpinit initializers produce float dtypes ({', '.join(_FLOATS)}). Received: dtype={dtype}"
        )
    return dtype


def _device() -> str:
    """'cuda' when the Keras backend places tensors on a GPU that warpinit can fill, else 'cpu'."""
    if not _devices.cuda_usable():
        return "cpu"
    backend = keras.backend.backend()
    if backend == "torch":
        from keras.src.backend.torch.core import get_device

        return "cuda" if str(get_device()).startswith("cuda") else "cpu"
    if backend == "jax":
        import jax

        return "cuda" if jax.default_backend() == "gpu" else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "cuda" if tf.config.list_logical_devices("GPU") else "cpu"
    return "cpu"


def _to_backend(array, dtype: str):
    """A tensor of the active backend holding ``array`` (NumPy, or CuPy handed over by DLPack)."""
    backend = keras.backend.backend()
    if not isinstance(array, np.ndarray):  # CuPy: stay on the GPU
        if backend == "torch":
            import torch

            return torch.from_dlpack(array)
        if backend == "jax":
            import jax

            return jax.dlpack.from_dlpack(array)
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.experimental.dlpack.from_dlpack(array.toDlpack())
        array = array.get()
    if backend == "numpy":
        return array
    if backend == "torch" and dtype == "bfloat16":
        import torch

        # torch has no NumPy bfloat16: move the bits, then reinterpret them.
        tensor = torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
        return keras.ops.convert_to_tensor(tensor, dtype=dtype)
    return keras.ops.convert_to_tensor(array, dtype=dtype)


# The distribution of an initializer for one shape: what initialize() groups by --------------------


def _compute_fans(shape, input_axes=None, output_axes=None):
    """Keras's fans: (fan_in, fan_out) of a weight shape, with the same conventions."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        fan_in = math.prod(shape[axis] for axis in input_axes)
        fan_out = math.prod(shape[axis] for axis in output_axes)
        return int(fan_in), int(fan_out)
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def spec(initializer, shape):
    """(kind, parameters) of the distribution ``initializer`` draws for ``shape``, or None when
    warpinit cannot draw it (constant and custom initializers).

    kind is "uniform" (minval, maxval), "normal" (mean, stddev), "truncated_normal" (mean, stddev;
    bounds +-2 standard deviations), "orthogonal" (gain,) or "constant" (value,) for a zero standard
    deviation.
    """
    k = keras.initializers
    if isinstance(initializer, k.Orthogonal):
        return "orthogonal", (float(initializer.gain),)
    if isinstance(initializer, k.VarianceScaling):
        fan_in, fan_out = _compute_fans(shape, initializer.input_axes, initializer.output_axes)
        return _distributions.variance_scaling(
            initializer.scale, initializer.mode, initializer.distribution, fan_in, fan_out
        )
    if isinstance(initializer, (k.RandomNormal, k.TruncatedNormal)):
        kind = "truncated_normal" if isinstance(initializer, k.TruncatedNormal) else "normal"
        mean, stddev = float(initializer.mean), abs(float(initializer.stddev))
        return ("constant", (mean,)) if stddev == 0.0 else (kind, (mean, stddev))
    if isinstance(initializer, k.RandomUniform):
        return "uniform", (float(initializer.minval), float(initializer.maxval))
    return None


class _WarpinitCall:
    """``__call__`` for every warpinit initializer: the Keras distribution from warpinit's kernels."""

    def __call__(self, shape, dtype=None, layout=None):
        """A tensor of the active backend of ``shape`` and ``dtype`` (None: ``keras.config.floatx()``).

        ``layout`` (a ``keras.distribution.TensorLayout`` or the backend's own layout) is what Keras
        passes under a distribution (JAX backend): the result is laid out so, every device drawing
        only its own block, equal bit for bit to the same block of the undistributed tensor."""
        from warpinit.kernels.philox import key_table

        shape = tuple(int(d) for d in shape)
        dtype = _dtype(dtype)
        kind, parameters = spec(self, shape)
        if kind == "orthogonal" and len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. Received: "
                f"shape={shape} of rank {len(shape)}."
            )
        seed = _seed64(self.seed)
        if layout is not None:
            return _laid_out(kind, parameters, shape, dtype, seed, layout)
        keys, device = key_table(seed, 0), _device()
        if _direct_backend(device, dtype):  # straight into the memory of the backend's tensor
            tensor, view = _destination(shape, dtype)
            _distributions.generate(kind, parameters, shape, dtype, keys, device, view[None])
            return tensor
        return _to_backend(_distributions.generate(kind, parameters, shape, dtype, keys, device)[0], dtype)


def _laid_out(kind, parameters, shape, dtype: str, seed: int, layout):
    """The tensor of (kind, parameters) for ``seed``, distributed as ``layout``.

    On JAX each device draws only its own block (``warpinit.jax.assemble``; on GPUs on the device
    itself). Other backends draw the whole tensor and hand it to ``keras.distribution.distribute_tensor``.
    """
    from warpinit.kernels.philox import key_table

    if keras.backend.backend() != "jax":
        if not isinstance(layout, keras.distribution.TensorLayout):  # checked before anything is drawn
            raise TypeError(f"layout must be a keras.distribution.TensorLayout on the {keras.backend.backend()} "
                            f"backend, got {type(layout).__name__}: {layout!r}")
        whole = _distributions.generate(kind, parameters, shape, dtype, key_table(seed, 0), _device())[0]
        return keras.distribution.distribute_tensor(_to_backend(whole, dtype), layout)
    from . import jax as warpinit_jax

    def block(ranges, device, cache):
        return _distributions.generate_block(kind, parameters, shape, dtype, seed, ranges, device, cache)

    return warpinit_jax.assemble(shape, _distributions.numpy_dtype(dtype), _jax_sharding(layout), block)


def _jax_sharding(layout):
    """A concrete ``jax.sharding.Sharding`` for a Keras layout: a TensorLayout's backend layout, or a
    JAX sharding; a NamedSharding over an abstract mesh (what Keras passes inside ``jax.set_mesh``)
    is bound to the mesh that is set."""
    import jax

    sharding = getattr(layout, "backend_layout", layout)
    if not isinstance(sharding, jax.sharding.Sharding):
        raise TypeError(f"layout must be a keras.distribution.TensorLayout or a jax.sharding.Sharding, got "
                        f"{type(layout).__name__}: {layout!r}")
    if isinstance(sharding, jax.sharding.NamedSharding) and isinstance(sharding.mesh, jax.sharding.AbstractMesh):
        mesh = jax.sharding.get_mesh()
        if mesh.empty or mesh.axis_names != sharding.mesh.axis_names:
            raise ValueError(f"layout {sharding} is over an abstract mesh and no matching mesh is set (jax.set_mesh)")
        sharding = jax.sharding.NamedSharding(mesh, sharding.spec)
    return sharding


def _register(cls):
    return keras.saving.register_keras_serializable(package="warpinit")(cls)


@_register
class RandomNormal(_WarpinitCall, keras.initializers.RandomNormal):
    """keras.initializers.RandomNormal drawn by warpinit (``warpinit.normal``)."""


@_register
class TruncatedNormal(_WarpinitCall, keras.initializers.TruncatedNormal):
    """keras.initializers.TruncatedNormal drawn by warpinit: exact rejection at +-2 standard deviations."""


@_register
class RandomUniform(_WarpinitCall, keras.initializers.RandomUniform):
    """keras.initializers.RandomUniform drawn by warpinit (``warpinit.uniform``)."""


@_register
class VarianceScaling(_WarpinitCall, keras.initializers.VarianceScaling):
    """keras.initializers.VarianceScaling drawn by warpinit."""


@_register
class GlorotNormal(_WarpinitCall, keras.initializers.GlorotNormal):
    """keras.initializers.GlorotNormal drawn by warpinit."""


@_register
class GlorotUniform(_WarpinitCall, keras.initializers.GlorotUniform):
    """keras.initializers.GlorotUniform drawn by warpinit."""


@_register
class HeNormal(_WarpinitCall, keras.initializers.HeNormal):
    """keras.initializers.HeNormal drawn by warpinit."""


@_register
class HeUniform(_WarpinitCall, keras.initializers.HeUniform):
    """keras.initializers.HeUniform drawn by warpinit."""


@_register
class LecunNormal(_WarpinitCall, keras.initializers.LecunNormal):
    """keras.initializers.LecunNormal drawn by warpinit."""


@_register
class LecunUniform(_WarpinitCall, keras.initializers.LecunUniform):
    """keras.initializers.LecunUniform drawn by warpinit."""


@_register
class Orthogonal(_WarpinitCall, keras.initializers.Orthogonal):
    """keras.initializers.Orthogonal without a QR (``warpinit.orthogonal``); Haar-distributed."""


_CLASSES = (RandomNormal, TruncatedNormal, RandomUniform, VarianceScaling, GlorotNormal, GlorotUniform,
            HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal)


def _snake(name: str) -> str:
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)


# The names keras.initializers.get resolves, pointing at warpinit's classes where there is one.
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in (Initializer, Constant, Identity, Ones, Zeros, STFT) + _CLASSES}
ALL_OBJECTS_DICT.update({_snake(name): cls for name, cls in list(ALL_OBJECTS_DICT.items())})
ALL_OBJECTS_DICT.update({
    "IdentityInitializer": Identity,
    "normal": RandomNormal,
    "one": Ones,
    "STFTInitializer": STFT,
    "OrthogonalInitializer": Orthogonal,
    "uniform": RandomUniform,
    "zero": Zeros,
})
# Lower-case aliases as module attributes, as keras.initializers has them.
for _name, _cls in list(ALL_OBJECTS_DICT.items()):
    if _name[0].islower() and _name.isidentifier():
        globals().setdefault(_name, _cls)
del _name, _cls


def serialize(initializer):
    """The initializer's configuration as a dict (keras.initializers.serialize)."""
    return keras.initializers.serialize(initializer)


def deserialize(config, custom_objects=None):
    """An initializer from its configuration, warpinit's class for every name Keras knows."""
    from keras.src.saving import serialization_lib

    if isinstance(config, dict):
        name = config.get("class_name")
        if name in ALL_OBJECTS_DICT and config.get("registered_name") in (None, name, f"warpinit>{name}") and \
                config.get("module") in (None, "keras.initializers", __name__):
            return ALL_OBJECTS_DICT[name].from_config(config.get("config") or {})
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects
    )


def get(identifier):
    """keras.initializers.get, resolving Keras's names and configurations to warpinit's classes.

    None, classes, callables, tensors and arrays behave as in Keras; an unknown name raises
    ValueError.
    """
    if isinstance(identifier, str):
        if identifier not in ALL_OBJECTS_DICT:
            raise ValueError(f"Could not interpret initializer identifier: {identifier}")
        return ALL_OBJECTS_DICT[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return keras.initializers.get(identifier)


# Whole models -------------------------------------------------------------------------------------

# At most this much is generated at once into a scratch buffer (reused within a call): bounded peak
# memory, and page faults on a fresh buffer cost as much as drawing into it.
GROUP_BYTES = 64 << 20
# Variables at least this large are drawn straight into their own memory where the backend allows it
# (numpy, torch on the CPU): a batch buffer would cost its page faults and a copy, more than the
# drawing itself for the samplers.
DIRECT_BYTES = 1 << 20
_DEFERRED: dict[int, tuple] = {}  # id(variable) -> (variable, initializer) for variables deferred here


class _Placeholder:
    """Stands in for a deferred variable's initializer while the model is built.

    Keras asks an uninitialized variable for a placeholder value whenever a symbolic call touches it
    (inside the stateless scope): zeros serve, and cost nothing, where Keras would run the real
    initializer (a full QR per Orthogonal layer). Outside a stateless scope - Keras initializing the
    variable itself because ``initialize`` was never called - it delegates to the real initializer.
    """

    def __init__(self, initializer):
        self.initializer = initializer

    def __call__(self, shape, dtype=None):
        from keras.src.backend.common.stateless_scope import in_stateless_scope

        if in_stateless_scope():
            return _zeros(shape, dtype)
        return self.initializer(shape, dtype=dtype)


def _zeros(shape, dtype):
    """Zeros of ``shape`` for a placeholder: a broadcast view where the backend has them (numpy,
    torch), so that building a model neither allocates nor wakes the framework's thread pool."""
    backend = keras.backend.backend()
    dtype = keras.backend.standardize_dtype(dtype)
    if backend == "numpy":
        zero_dtype = _distributions.numpy_dtype(dtype) if dtype == "bfloat16" else dtype  # ints too
        return np.broadcast_to(np.zeros((), dtype=zero_dtype), shape)
    if backend == "torch":
        import torch

        from keras.src.backend.torch.core import get_device

        return torch.zeros((), dtype=getattr(torch, dtype), device=get_device()).expand(tuple(shape))
    return keras.ops.zeros(shape, dtype=dtype)


@contextlib.contextmanager
def deferred():
    """Build models without initializing their variables; ``initialize(model)`` fills them afterwards.

    Inside the context, variables created with an initializer are left uninitialized - Keras's own
    deferral for variables created in a ``keras.StatelessScope`` - so Keras's per-variable
    initialization never runs; symbolic calls during the build see zeros. Call
    ``initialize(model)`` before using the model. A variable that is never passed to ``initialize``
    is still initialized correctly (by its own initializer) the first time Keras initializes pending
    variables.

    This relies on Keras internals (``keras.src.backend.common.variables``), tested with the Keras
    range pinned in warpinit's ``keras`` extra.
    """
    from keras.src.backend.common import variables

    register = variables.register_uninitialized_variable

    def register_deferred(variable):
        register(variable)
        _DEFERRED[id(variable)] = (variable, variable._initializer)
        variable._initializer = _Placeholder(variable._initializer)

    variables.register_uninitialized_variable = register_deferred
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        variables.register_uninitialized_variable = register


def _structure(layer, prefix=""):
    """(path, variable, layer) for every variable of ``layer`` and its sublayers.

    A path is structural - sublayer indices and the variable's index in its layer - so it does not
    depend on the names Keras numbers per process ("dense_3")."""
    own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
    for index, variable in enumerate(own):
        yield f"{prefix}{index}", variable, layer
    sublayers = [sub for sub in layer._flatten_layers(include_self=False, recursive=False)
                 if not isinstance(sub, keras.layers.InputLayer)]  # present or not, depending on the build
    for index, sublayer in enumerate(sublayers):
        yield from _structure(sublayer, f"{prefix}{index}/")


_ATTRIBUTE_ALIASES = {"recurrent_kernel": "recurrent_initializer"}


def _initializer_of(variable, layer):
    """The initializer a variable was (or will be) drawn from, or None when it cannot be known."""
    if id(variable) in _DEFERRED and _DEFERRED[id(variable)][0] is variable:
        return _DEFERRED[id(variable)][1]
    name = variable.name
    for attribute in (_ATTRIBUTE_ALIASES.get(name), f"{name}_initializer"):
        if attribute and hasattr(layer, attribute):
            return keras.initializers.get(getattr(layer, attribute))
    return None


path_tag = _seeds.path_tag  # the 64-bit tag of a structural path (BLAKE2b)


def initialize(model, seed=None, progress=None):
    """(Re)initialize a built or ``deferred()`` model's variables in batched kernel launches.

    Every variable whose initializer is a warpinit class or its Keras built-in equivalent is drawn
    from its own seed, ``derive_seed(model seed, path_tag(path))``, where the path is structural
    (sublayer indices and the variable's index in its layer): values do not depend on the grouping,
    on batch sizes, on the device or on the names Keras numbers per process, and the initializers' own
    seeds are not used. Variables of the same distribution, shape and dtype are generated together
    (orthogonal stacks through ``warpinit.orthogonal``'s batched path), at most ``GROUP_BYTES`` at a
    time, and assigned into the variables, so peak memory stays close to the model's own size. Under
    a ``keras.distribution`` on JAX, a variable that its layout splits over devices is drawn shard by
    shard, each device generating only its own block. Variables with other initializers keep their
    values (built model) or are initialized by their own initializer (deferred model).

    Args:
        model: a Keras layer or model, built or built under ``deferred()``.
        seed: int (any Python int, taken modulo 2**64) or None for fresh OS entropy.
        progress: show a progress bar on stderr; None: when stderr is a terminal and the model holds
            more than 256 MB of such variables.

    Returns:
        The 64-bit model seed used (pass it again to get the same weights).
    """
    from keras.src.backend.common import global_state

    from warpinit.kernels.philox import derive_seed, key_table

    if seed is None:
        import secrets

        seed = secrets.randbits(64)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"initialize: seed must be an int or None, got {type(seed).__name__}: {seed!r}")
    seed = int(seed) % 2**64
    device = _device()

    groups: dict[tuple, list] = {}
    sharded = []  # (path, variable, distribution, shape, dtype, layout): drawn shard by shard
    others = []
    for path, variable, layer in _structure(model):
        initializer = _initializer_of(variable, layer)
        shape = tuple(int(d) for d in variable.shape)
        dtype = keras.backend.standardize_dtype(variable.dtype)
        distribution = spec(initializer, shape) if initializer is not None and dtype in _FLOATS else None
        if distribution is None or (distribution[0] == "orthogonal" and len(shape) < 2):
            others.append((variable, initializer))
            continue
        layout = _sharded_layout(variable)
        if layout is not None:
            sharded.append((path, variable, distribution, shape, dtype, layout))
            continue
        groups.setdefault((distribution, shape, dtype), []).append((path, variable))

    def nbytes(shape, dtype):
        return math.prod(shape) * _distributions.numpy_dtype(dtype).itemsize

    total = sum(len(members) * nbytes(shape, dtype) for (_, shape, dtype), members in groups.items())
    total += sum(nbytes(shape, dtype) for _, _, _, shape, dtype, _ in sharded)
    if progress is None:
        progress = _progress.wanted(total)
    bar = _progress.Bar(total) if progress else None
    for path, variable, (kind, parameters), shape, dtype, layout in sharded:
        _assign(variable, _laid_out(kind, parameters, shape, dtype, derive_seed(seed, path_tag(path)), layout))
        if bar:
            bar.advance(nbytes(shape, dtype))
    for ((kind, parameters), shape, dtype), members in groups.items():
        numpy_dtype = _distributions.numpy_dtype(dtype)
        member_bytes = math.prod(shape) * numpy_dtype.itemsize
        seeds = [derive_seed(seed, path_tag(path)) for path, _ in members]
        if kind != "orthogonal" and member_bytes >= DIRECT_BYTES and _direct_backend(device, dtype):
            for (_, variable), member_seed in zip(members, seeds):
                tensor, view = _destination(shape, dtype)
                _distributions.generate(kind, parameters, shape, dtype, key_table(member_seed, 0), device, view[None])
                _assign(variable, tensor)
                if bar:
                    bar.advance(member_bytes)
            continue
        per_chunk = max(1, GROUP_BYTES // max(1, member_bytes))
        scratch = None
        for first in range(0, len(members), per_chunk):
            chunk = members[first : first + per_chunk]
            if scratch is None or len(scratch) < len(chunk):
                scratch = _devices.empty(device, (len(chunk), *shape), numpy_dtype)
            keys = key_table(seeds[first : first + len(chunk)], 0)
            values = _distributions.generate(kind, parameters, shape, dtype, keys, device, scratch[: len(chunk)])
            for (_, variable), value in zip(chunk, values):
                _assign(variable, _owned(value, dtype))
            if bar:
                bar.advance(len(chunk) * member_bytes)
        del scratch
    for variable, _ in others:
        if id(variable) in _DEFERRED and variable._value is None:
            variable._deferred_initialize()  # its own initializer, the normal way
    pending = global_state.get_global_attribute("uninitialized_variables") or []
    done = {id(v) for _, members in groups.items() for _, v in members} | {id(v) for v, _ in others}
    done |= {id(entry[1]) for entry in sharded}
    pending[:] = [v for v in pending if id(v) not in done]
    for key in [key for key, (variable, _) in _DEFERRED.items() if key in done]:
        _DEFERRED.pop(key)
    if bar:
        bar.close()
    return seed


def _sharded_layout(variable):
    """The layout that splits a JAX variable over several devices under the active keras.distribution
    (resolved as Keras resolves it when it initializes the variable), or None: other backends,
    no distribution, or a replicated layout (drawn once and copied by Keras, as in ``initialize``'s
    grouped path)."""
    if keras.backend.backend() != "jax" or not hasattr(variable, "_initialize_layout"):
        return None
    variable._initialize_layout()  # what Keras's own initialization does first; sets variable._layout
    layout = getattr(variable, "_layout", None)
    if layout is None or _jax_sharding(layout).is_fully_replicated:
        return None
    return layout


def _direct_backend(device: str, dtype: str) -> bool:
    """Whether values can be generated straight into the memory of a new backend tensor: numpy and
    torch on the CPU, and TensorFlow on the CPU through DLPack (not bfloat16, which NumPy's DLPack
    import does not know)."""
    backend = keras.backend.backend()
    if device != "cpu":
        return False
    return backend in ("numpy", "torch") or (backend == "tensorflow" and dtype != "bfloat16")


def _writable_view(tensor, shape, numpy_dtype: np.dtype) -> np.ndarray:
    """A writable NumPy array over the memory of a CPU TensorFlow tensor. NumPy imports TensorFlow's
    DLPack export read-only, so only the address is taken from it; the caller keeps ``tensor`` alive
    while it writes."""
    import ctypes

    address = np.from_dlpack(tensor).ctypes.data
    nbytes = math.prod(shape) * numpy_dtype.itemsize
    return np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=numpy_dtype).reshape(shape)


def _destination(shape, dtype: str):
    """A new backend tensor of ``shape`` and ``dtype`` and a NumPy view of its memory (numpy, torch,
    TensorFlow on the CPU). The memory comes from the backend's own allocator, which reuses what freed
    tensors left (fresh pages from the OS cost as much as drawing the values)."""
    numpy_dtype = _distributions.numpy_dtype(dtype)
    backend = keras.backend.backend()
    if backend == "numpy":
        array = np.empty(shape, dtype=numpy_dtype)
        return array, array
    if backend == "tensorflow":
        import tensorflow as tf

        if math.prod(shape) == 0:
            return tf.zeros(shape, dtype=dtype), np.empty(shape, dtype=numpy_dtype)
        # An uninitialized tensor; a Variable made from it keeps its memory (no copy).
        tensor = tf.raw_ops.Empty(shape=shape, dtype=getattr(tf, dtype), init=False)
        return tensor, _writable_view(tensor, shape, numpy_dtype)
    import torch

    if dtype == "bfloat16":
        tensor = torch.empty(shape, dtype=torch.bfloat16)
        view = tensor.view(torch.int16).numpy().view(numpy_dtype)
    else:
        tensor = torch.empty(shape, dtype=getattr(torch, dtype))
        view = tensor.numpy()
    return tensor, view


def _owned(value, dtype: str):
    """A value of its own for a variable, from ``value`` (a slice of a scratch buffer that is reused)."""
    backend = keras.backend.backend()
    if isinstance(value, np.ndarray) and backend in ("numpy", "torch"):
        tensor, view = _destination(value.shape, dtype)
        view[...] = value
        return tensor
    if isinstance(value, np.ndarray) and backend == "tensorflow":
        return value  # tf.Variable copies it once; converting first would copy twice
    if not isinstance(value, np.ndarray):  # CuPy: a copy of its own, handed over without a host trip
        value = value.copy()
    return _to_backend(value, dtype)


def _assign(variable, value):
    """Put ``value`` into ``variable``: ``assign`` if it holds a value, Keras's first initialization if
    it was deferred."""
    if variable._value is None:
        if not (isinstance(value, np.ndarray) and keras.backend.backend() == "tensorflow"):
            value = variable._convert_to_tensor(value, dtype=variable.dtype)
        variable._initialize(value)
        variable._initializer = None  # as Keras's own deferred initialization leaves it
    else:
        variable.assign(value)
