"""Whole torch modules: ``initialize`` through the shared whole-model engine, meta devices included."""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch

from . import _args, _devices, _distributions, _seeds, _torch_tensors, _whole_model
from ._torch_init import BUILDERS, NAMES, fans, kaiming_uniform_, normal_, uniform_, xavier_normal_, xavier_uniform_
from ._torch_tensors import FLOATS, Fill


def parameter_seed(seed: int, name: str) -> int:
    """The seed ``initialize(module, seed)`` draws the parameter of qualified name ``name`` from.

    ``derive_seed(seed, tag(name))`` (Philox-mixed, see ``warpinit.kernels.philox``): for example
    ``kaiming_uniform_(w, a=math.sqrt(5), seed=parameter_seed(s, "0.weight"))`` reproduces the weight
    of an ``nn.Linear`` at index 0 of a Sequential initialized with ``initialize(model, s)``.

    Args:
        seed: the module seed, int in [0, 2**64).
        name: the qualified parameter name, as ``module.named_parameters()`` gives it.
    """
    if seed is None:
        raise TypeError("parameter_seed: seed must be an int in [0, 2**64), got None")
    if not isinstance(name, str):
        raise TypeError(f"parameter_seed: name must be a str, got {type(name).__name__}: {name!r}")
    return _seeds.tensor_seed(_args.seed("parameter_seed", seed, None), name)



class _Initializer(NamedTuple):
    """A resolved ``weight=``/``bias=`` choice: "fill" (one of warpinit.torch's functions with its
    arguments), "constant" (value) or "callable" (any fn(tensor), called as is)."""

    how: str
    function: object = None
    arguments: tuple = ()

    def fill(self, name: str, shape, dtype) -> Fill:
        if self.how == "constant":
            return Fill(_distributions.constant(self.function), tuple(shape))
        function = self.function.__name__
        try:
            return BUILDERS[self.function](function, tuple(shape), dtype, **dict(self.arguments))
        except (TypeError, ValueError) as error:
            raise type(error)(f"initialize: parameter {name!r}: {error}") from None


def _resolve(role: str, value) -> _Initializer:
    """One initializer: a name, one of this module's functions (or a functools.partial of one), a
    number (a constant) or any other callable."""
    if isinstance(value, str):
        function = NAMES.get(value.rstrip("_"))
        if function is None:
            raise ValueError(f"initialize: unknown {role} initializer {value!r}; use one of {sorted(NAMES)}, a "
                             "function of warpinit.torch (or a functools.partial of one), a number or a callable")
        return _Initializer("fill", function)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"initialize: {role} must be an initializer, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _Initializer("constant", float(value))
    function, args, keywords = value, (), {}
    if isinstance(value, functools.partial):
        function, args, keywords = value.func, value.args, value.keywords
    if any(function is known for known in BUILDERS):
        try:
            bound = inspect.signature(function).bind(None, *args, **keywords)
        except TypeError as error:
            raise TypeError(f"initialize: {role}={value!r} does not fit {function.__name__}: {error}") from None
        arguments = dict(bound.arguments)  # the arguments given, without the defaults
        arguments.pop("tensor")
        for fixed in ("generator", "seed", "stream"):
            if fixed in arguments and not (fixed == "generator" and arguments[fixed] is None):
                raise ValueError(f"initialize: {role}={value!r} fixes {fixed}=; initialize draws every parameter "
                                 "from its own seed (parameter_seed)")
        return _Initializer("fill", function, tuple(arguments.items()))
    if callable(value):
        return _Initializer("callable", value)
    raise TypeError(f"initialize: {role} must be a name, a function, a number or a mapping, got "
                    f"{type(value).__name__}: {value!r}")


def _choice(role: str, value):
    """None, one _Initializer, or a tuple of (module class, _Initializer) for a mapping."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        pairs = []
        for cls, initializer in value.items():
            if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
                raise TypeError(f"initialize: the keys of {role}= must be torch.nn.Module classes, got {cls!r}")
            pairs.append((cls, _resolve(role, initializer)))
        return tuple(pairs)
    return _resolve(role, value)


def _chosen(choice, owner):
    if choice is None or isinstance(choice, _Initializer):
        return choice
    for cls, initializer in choice:
        if isinstance(owner, cls):
            return initializer
    return None


def _stock(module, cls, method="reset_parameters") -> bool:
    """Whether ``module`` is a ``cls`` that initializes itself with ``cls``'s own method."""
    return isinstance(module, cls) and getattr(type(module), method, None) is getattr(cls, method)


def _default(function, **arguments) -> _Initializer:
    return _Initializer("fill", function, tuple(arguments.items()))


_KAIMING_SQRT5 = _default(kaiming_uniform_, a=math.sqrt(5))


def _fan_in_bound(weight) -> float:
    fan_in, _ = fans(tuple(weight.shape))
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


def _rules(module):
    """The parameters a module's own ``reset_parameters`` initializes, as
    (owner, attribute, role, default initializer), with the modules it also covers - or None when
    warpinit does not know the module's initialization."""
    nn = torch.nn
    if _stock(module, nn.Linear) or _stock(module, nn.modules.conv._ConvNd):
        bound = _fan_in_bound(module.weight)
        return [(module, "weight", "weight", _KAIMING_SQRT5),
                (module, "bias", "bias", _default(uniform_, a=-bound, b=bound))], ()
    if _stock(module, nn.Bilinear):
        bound = 1 / math.sqrt(module.weight.size(1)) if module.weight.size(1) > 0 else 0
        uniform = _default(uniform_, a=-bound, b=bound)
        return [(module, "weight", "weight", uniform), (module, "bias", "bias", uniform)], ()
    if _stock(module, nn.Embedding) or _stock(module, nn.EmbeddingBag):
        return [(module, "weight", "weight", _default(normal_))], ()
    if _stock(module, nn.modules.rnn.RNNBase) or _stock(module, nn.modules.rnn.RNNCellBase):
        bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
        uniform = _default(uniform_, a=-bound, b=bound)
        return [(module, name, "weight" if name.startswith("weight") else "bias", uniform)
                for name, _ in module.named_parameters(recurse=False)], ()
    if _stock(module, nn.MultiheadAttention, "_reset_parameters"):
        xavier, zero = _default(xavier_uniform_), _Initializer("constant", 0.0)
        out = module.out_proj
        entries = [(module, name, "weight", xavier) for name in ("in_proj_weight", "q_proj_weight",
                                                                   "k_proj_weight", "v_proj_weight")]
        entries += [(module, "in_proj_bias", "bias", zero),
                    (out, "weight", "weight", _KAIMING_SQRT5),
                    (out, "bias", "bias", zero),  # present exactly when in_proj_bias is
                    (module, "bias_k", None, _default(xavier_normal_)),
                    (module, "bias_v", None, _default(xavier_normal_))]
        return entries, (out,)
    return None


class _Entry(NamedTuple):
    name: str  # qualified parameter name: its seed's identity
    owner: object
    attribute: str
    initializer: _Initializer
    fill: Fill | None  # None for "callable"


def _plan(module, weight, bias):
    """The parameters to fill and how, every argument checked (nothing is touched yet); and the
    modules whose own parameters no rule covers."""
    from torch.nn.utils import parametrize

    entries, seen, claimed, uncovered = [], set(), set(), []
    for prefix, sub in module.named_modules():
        if id(sub) in claimed:
            continue
        rules = _rules(sub)
        if rules is None:
            uncovered.append((prefix, sub))
            continue
        covered, children = rules
        claimed.update(id(child) for child in children)
        for owner, attribute, role, default in covered:
            parameter = owner._parameters.get(attribute)
            if parameter is None or id(parameter) in seen or parametrize.is_parametrized(owner, attribute):
                # absent (bias=False, packed projections), tied (the first owner draws it), or under a
                # torch.nn.utils.parametrize parametrization (its ``original`` is not this distribution's)
                continue
            seen.add(id(parameter))
            local = attribute if owner is sub else f"{_child_name(sub, owner)}.{attribute}"
            name = f"{prefix}.{local}" if prefix else local
            chosen = {"weight": _chosen(weight, owner), "bias": _chosen(bias, owner)}.get(role) or default
            if parameter.dtype not in FLOATS:
                continue
            dtype = _distributions.numpy_dtype(FLOATS[parameter.dtype])
            fill = None
            if chosen.how != "callable":
                shape = tuple(parameter.shape)
                fill = Fill(None, shape) if parameter.numel() == 0 else chosen.fill(name, shape, dtype)
            entries.append(_Entry(name, owner, attribute, chosen, fill))
    return entries, uncovered


def _child_name(parent, child) -> str:
    for name, module in parent.named_modules():
        if module is child:
            return name
    raise AssertionError("not a submodule")  # pragma: no cover


def _materialize(module, device):
    """Give every meta parameter and buffer storage on ``device`` (uninitialized), keeping ties
    (a tensor shared by several modules stays shared) and the Python attributes set on parameters.

    Returns the modules that held meta tensors of their own, and the ids of the new tensors with
    their qualified names."""
    memo, owners, fresh = {}, [], {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        own = False
        for table, is_parameter in ((sub._parameters, True), (sub._buffers, False)):
            for key, tensor in list(table.items()):
                if tensor is None or not tensor.is_meta:
                    continue
                new = memo.get(id(tensor))
                if new is None:
                    new = torch.empty_like(tensor, device=device)
                    if is_parameter:
                        new = torch.nn.Parameter(new, requires_grad=tensor.requires_grad)
                        new.__dict__.update(tensor.__dict__)
                    memo[id(tensor)] = new
                    fresh[id(new)] = f"{prefix}.{key}" if prefix else key
                setattr(sub, key, new)  # through __setattr__: modules that cache their tensors (RNNs) see it
                own = True
        if own and all(sub is not owner for owner in owners):
            owners.append(sub)
    return owners, fresh


def _target_device(device):
    if device is None:
        device = torch.get_default_device()
        return torch.device("cpu") if device.type == "meta" else device
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError) as error:
        raise ValueError(f"initialize: device must be a torch device, got {device!r}: {error}") from None
    if device.type == "meta":
        raise ValueError("initialize: device must be a real device to materialize meta tensors on, got 'meta'")
    return device


class _Adapter(_whole_model.Adapter):
    """Parameters are filled in their own storage where warpinit can write it (contiguous, CPU or CUDA),
    else from a fresh array copied in."""

    def __init__(self, function: str):
        self.function = function

    def compute(self, device) -> str:
        return _torch_tensors.compute_device(device)

    def device_context(self, device):
        return _torch_tensors.on_device(self.function, device)

    def destination(self, request):
        direct = _torch_tensors.direct_view(request.target.detach(), request.dtype)
        if direct is not None:
            return None, direct.reshape(request.shape)
        array = _devices.empty(self.compute(request.device), request.shape, request.dtype)
        return array, array

    def install(self, request, handle):
        if handle is not None:
            _torch_tensors.write(request.target.detach(), handle)
        torch.autograd.graph.increment_version(request.target)


def initialize(module, seed=None, *, weight=None, bias=None, device=None, generator=None, progress=None):
    """(Re)initialize a module's layers in batched kernel launches, the way their ``reset_parameters``
    would, materializing a meta-device module first.

    Covered layers (exactly these classes, or subclasses that keep their ``reset_parameters``):
    ``nn.Linear`` and ``nn.Conv1d/2d/3d``/``nn.ConvTranspose1d/2d/3d`` (weight: kaiming_uniform_ with
    a = sqrt(5), i.e. U(+-1/sqrt(fan_in)); bias: U(+-1/sqrt(fan_in))), ``nn.Bilinear``
    (U(+-1/sqrt(in1_features))), ``nn.Embedding``/``nn.EmbeddingBag`` (N(0, 1), the ``padding_idx``
    row zero), ``nn.RNN/LSTM/GRU`` and their cells (U(+-1/sqrt(hidden_size))) and
    ``nn.MultiheadAttention`` (xavier_uniform_ projections, zero biases, its ``out_proj`` weight as a
    Linear's, xavier_normal_ ``bias_k``/``bias_v``).

    Every covered parameter is drawn from its own seed, ``parameter_seed(seed, name)``, where ``name``
    is its qualified name in ``module.named_parameters()`` (a tied parameter: its first name, drawn
    once, by its first owner): its values depend only on the seed, its name, shape, dtype and
    distribution - not on the other parameters, the grouping, batch sizes or the device (within the
    CPU/GPU tolerance). Parameters with the same distribution, generation shape, dtype and device are
    generated together through the shared whole-model engine (small ones a scratch buffer's worth at a
    time, large ones straight into their own storage).

    Meta-device modules: every meta parameter and buffer gets storage on ``device`` (ties and
    parameter attributes kept, unlike ``module.to_empty``), covered parameters are filled, and every
    other module that held meta tensors runs its own ``reset_parameters()`` (or ``_reset_parameters()``)
    afterwards, children before parents, so LayerNorm, BatchNorm and custom layers are initialized their
    own way (with torch's generator). Tensors that nothing initializes (a module without such a method)
    get a RuntimeWarning naming them. Modules not on the meta device keep their uncovered parameters.

    Args:
        module: a torch.nn.Module, on any device or on the meta device, without uninitialized lazy
            parameters.
        seed: the module seed, int in [0, 2**64); None draws one from ``generator`` (torch's default
            CPU generator by default, so ``torch.manual_seed`` makes it reproducible).
        weight: the initializer of covered weights (Linear, Conv, ConvTranspose, Bilinear, Embedding
            and RNN weights, MultiheadAttention projections) instead of torch's default: one of this
            module's in-place functions, a functools.partial of one with its arguments (for example
            ``functools.partial(trunc_normal_, std=0.02)``; no seed, stream or generator), its name
            ("xavier_uniform", "orthogonal", ... with or without the trailing underscore), a number
            (a constant), or any other callable ``fn(tensor)``, called on each weight after the batched
            fills (its values then come from its own random source, not from ``seed``). A mapping
            ``{module class: initializer}`` chooses per layer type (isinstance of the layer holding the
            parameter, first match); unmatched layers keep their default.
        bias: the same for covered biases (``bias=0.0``: zero biases).
        device: where meta tensors are materialized (default: torch's default device, the CPU unless
            set); only for modules holding meta tensors.
        generator: the torch.Generator ``seed=None`` draws from; not together with ``seed``.
        progress: show a progress bar on stderr; None: when stderr is a terminal and more than 256 MiB
            are drawn.

    Returns:
        The 64-bit module seed used: ``initialize(same architecture, seed=it)`` gives the same values.

    Raises:
        TypeError: ``module`` is not an nn.Module; a bad ``weight``/``bias``/``generator``/seed type.
        ValueError: lazy parameters, a bad seed or device, ``device`` for a module without meta tensors,
            both ``seed`` and ``generator``, or an initializer that does not fit a parameter (named).
        RuntimeError: a CUDA parameter without a usable CuPy.
        All are raised before any tensor is allocated or written.
    """
    from torch.nn.parameter import is_lazy

    function = "initialize"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{function}: module must be a torch.nn.Module, got {type(module).__name__}")
    _torch_tensors.check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    weight, bias = _choice("weight", weight), _choice("bias", bias)
    original = getattr(module, "_orig_mod", None)  # torch.compile's wrapper: the names of the model itself
    if isinstance(original, torch.nn.Module):
        module = original
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    lazy = [name for name, tensor in tensors if is_lazy(tensor)]
    if lazy:
        raise ValueError(f"{function}: the module has uninitialized lazy parameters ({', '.join(lazy)}); run a "
                         "forward pass (or initialize the lazy modules) first")
    has_meta = any(tensor.is_meta for _, tensor in tensors)
    if device is not None and not has_meta:
        raise ValueError(f"{function}: device={device!r} places meta tensors, and this module has none; move it "
                         "with module.to(device)")
    target = _target_device(device) if has_meta else None
    entries, uncovered = _plan(module, weight, bias)
    for entry in entries:
        parameter = entry.owner._parameters[entry.attribute]
        if _torch_tensors.device_kind(target if parameter.is_meta else parameter.device) == "cuda":
            _devices.resolve(function, "cuda")
    if seed is None:
        seed = _torch_tensors.draw_seed(generator)

    owners, fresh = _materialize(module, target) if has_meta else ([], {})
    requests, callables = [], []
    for entry in entries:
        parameter = entry.owner._parameters[entry.attribute]
        fresh.pop(id(parameter), None)
        if entry.fill is None:
            callables.append((entry.initializer.function, parameter))
        elif entry.fill.distribution is not None:
            requests.append(_whole_model.Request(entry.name, entry.fill.distribution, entry.fill.shape,
                                                 _distributions.numpy_dtype(FLOATS[parameter.dtype]),
                                                 parameter.device, parameter))
    _whole_model.run(requests, seed, _Adapter(function), function=function, progress=progress)
    with torch.no_grad():
        for initializer, parameter in callables:
            initializer(parameter)
        for _, sub in module.named_modules():
            if (_stock(sub, torch.nn.Embedding) or _stock(sub, torch.nn.EmbeddingBag)) and \
                    sub.padding_idx is not None and not sub.weight.is_meta:
                sub.weight[sub.padding_idx].fill_(0)

    _reset_uncovered(uncovered, owners, fresh)
    if fresh:
        names = sorted(fresh.values())
        warnings.warn(f"{function}: {len(names)} materialized tensor(s) hold uninitialized memory: no covered layer "
                      f"and no reset_parameters() initializes them: {', '.join(names[:10])}"
                      f"{', ...' if len(names) > 10 else ''}", RuntimeWarning, stacklevel=2)
    return seed


def _reset_uncovered(uncovered, owners, fresh) -> None:
    """Run reset_parameters() (or _reset_parameters()) of the uncovered modules that were materialized,
    descendants before ancestors; what they own counts as initialized."""
    materialized = {id(owner) for owner in owners}
    for _, sub in reversed(uncovered):
        if id(sub) not in materialized:
            continue
        reset = getattr(sub, "reset_parameters", None) or getattr(sub, "_reset_parameters", None)
        if not callable(reset):
            continue
        reset()
        for tensor in list(sub._parameters.values()) + list(sub._buffers.values()):
            if tensor is not None:
                fresh.pop(id(tensor), None)
