"""Whole torch modules: ``initialize`` through the shared whole-model engine, meta devices included."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import torch

from . import _args, _devices, _distributions, _seeds, _torch_dtensors, _torch_tensors
from ._torch_init import BUILDERS, NAMES
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


def _covered(module):
    """The weights and biases of the layers ``weight=``/``bias=`` override, as (owner, attribute, role),
    with the submodules they also cover - or None for other modules."""
    nn = torch.nn
    if _stock(module, nn.Linear) or _stock(module, nn.modules.conv._ConvNd) or _stock(module, nn.Bilinear):
        return [(module, "weight", "weight"), (module, "bias", "bias")], ()
    if _stock(module, nn.Embedding) or _stock(module, nn.EmbeddingBag):
        return [(module, "weight", "weight")], ()
    if _stock(module, nn.modules.rnn.RNNBase) or _stock(module, nn.modules.rnn.RNNCellBase):
        return [(module, name, "weight" if name.startswith("weight") else "bias")
                for name, _ in module.named_parameters(recurse=False)], ()
    if _stock(module, nn.MultiheadAttention, "_reset_parameters"):
        out = module.out_proj
        entries = [(module, name, "weight") for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight",
                                                          "v_proj_weight")]
        entries += [(module, "in_proj_bias", "bias"), (out, "weight", "weight"), (out, "bias", "bias")]
        return entries, (out,)
    return None


class _Override(NamedTuple):
    name: str  # qualified parameter name: its seed's identity
    owner: object
    attribute: str
    initializer: _Initializer
    fill: Fill | None  # None for "callable"


def _overrides(module, weight, bias) -> list[_Override]:
    """The covered parameters ``weight=``/``bias=`` choose an initializer for, every argument checked
    against its parameter (nothing is touched yet)."""
    from torch.nn.utils import parametrize

    if weight is None and bias is None:
        return []
    entries, seen, claimed = [], set(), set()
    for prefix, sub in module.named_modules():
        if id(sub) in claimed:
            continue
        covered = _covered(sub)
        if covered is None:
            continue
        parameters, children = covered
        claimed.update(id(child) for child in children)
        for owner, attribute, role in parameters:
            parameter = owner._parameters.get(attribute)
            if parameter is None or id(parameter) in seen or parametrize.is_parametrized(owner, attribute):
                # absent (bias=False, packed projections), tied (the first owner's choice holds), or under
                # a torch.nn.utils.parametrize parametrization (its ``original`` is not this distribution's)
                continue
            seen.add(id(parameter))
            chosen = _chosen(weight if role == "weight" else bias, owner)
            if chosen is None or parameter.dtype not in FLOATS:
                continue
            local = attribute if owner is sub else f"{_child_name(sub, owner)}.{attribute}"
            name = f"{prefix}.{local}" if prefix else local
            fill = None
            if chosen.how != "callable":
                shape, dtype = tuple(parameter.shape), _distributions.numpy_dtype(FLOATS[parameter.dtype])
                fill = Fill(None, shape) if parameter.numel() == 0 else chosen.fill(name, shape, dtype)
            entries.append(_Override(name, owner, attribute, chosen, fill))
    return entries


def _child_name(parent, child) -> str:
    for name, module in parent.named_modules():
        if module is child:
            return name
    raise AssertionError("not a submodule")  # pragma: no cover


def _materialize(module, device, placed=None):
    """Give every meta parameter and buffer storage on ``device`` (uninitialized), keeping ties
    (a tensor shared by several modules stays shared) and the Python attributes set on parameters;
    a meta DTensor gets its local shard only, on ``placed[id(tensor)]`` (its mesh's device), and
    FSDP2 is told (it pads the shard into the storage it keeps).

    Returns (the new tensors with their first qualified names, and what ``_restore`` needs to put the
    meta tensors back)."""
    placed = placed or {}
    memo, fresh, undo = {}, {}, []
    for prefix, sub in module.named_modules(remove_duplicate=False):
        for table, is_parameter in ((sub._parameters, True), (sub._buffers, False)):
            for key, tensor in list(table.items()):
                if tensor is None or not tensor.is_meta:
                    continue
                new = memo.get(id(tensor))
                if new is None:
                    new = torch.empty_like(tensor, device=placed.get(id(tensor), device))
                    if is_parameter:
                        new = torch.nn.Parameter(new, requires_grad=tensor.requires_grad)
                        new.__dict__.update(tensor.__dict__)
                    memo[id(tensor)] = new
                    fresh[id(new)] = (f"{prefix}.{key}" if prefix else key, new)
                undo.append((sub, key, tensor))
                setattr(sub, key, new)  # through __setattr__: modules that cache their tensors (RNNs) see it
    if placed:
        _torch_dtensors.refresh(module)
    return list(fresh.values()), undo


def _restore(module, undo) -> None:
    for sub, key, tensor in reversed(undo):
        setattr(sub, key, tensor)
    if undo:
        _torch_dtensors.refresh(module)


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


def _transformers_model(module) -> bool:
    import sys

    transformers = sys.modules.get("transformers.modeling_utils")
    return transformers is not None and isinstance(module, transformers.PreTrainedModel)


def own_initialization(module) -> None:
    """Run ``module``'s own initialization, as building it does: every submodule's
    ``reset_parameters()`` (``_reset_parameters()`` where that is its name: MultiheadAttention,
    Transformer), descendants before ancestors (siblings last to first, so that a tied tensor ends
    with its first owner's values, as when the tie was made after building); then the model's own
    scheme - transformers' ``init_weights()`` (its ``_init_weights`` over every module, ties included;
    the marks of modules already initialized are cleared first) or a root ``init_weights()``
    (torchtitan style)."""
    order = []

    def visit(sub, seen):
        if id(sub) in seen:
            return
        seen.add(id(sub))
        # Later siblings first: of the modules sharing a tied tensor, the one registered first - the
        # tensor's owner when the module was built, before the tie - writes it last, as at build time.
        for child in reversed(list(sub.children())):
            visit(child, seen)
        order.append(sub)

    visit(module, set())
    untied = _untie(module) if _transformers_model(module) else []
    for sub in order:
        reset = getattr(sub, "reset_parameters", None) or getattr(sub, "_reset_parameters", None)
        if callable(reset):
            reset()
    if _transformers_model(module):
        for sub in module.modules():
            sub.__dict__.pop("_is_hf_initialized", None)
            for tensor in list(sub._parameters.values()) + list(sub._buffers.values()):
                if tensor is not None:
                    tensor.__dict__.pop("_is_hf_initialized", None)
        module.init_weights()
        for owner, attribute, source in untied:  # init_weights ties them again; make sure
            if owner._parameters.get(attribute) is not source:
                setattr(owner, attribute, source)
    elif callable(getattr(module, "init_weights", None)):
        module.init_weights()


def _untie(model):
    """Give the tied parameters of a transformers model that tie to another (``all_tied_weights_keys``:
    target -> source) a meta stand-in while its initialization runs, as when the model was built:
    initialized first, tied after, so the source's values (an embedding's padding row) are the ones
    kept. Returns (owner, attribute, source parameter) for each."""
    tied = getattr(model, "all_tied_weights_keys", None) or {}
    parameters = dict(model.named_parameters(remove_duplicate=False))
    untied = []
    for target, source in tied.items():
        if target in parameters and source in parameters and parameters[target] is parameters[source]:
            path, _, attribute = target.rpartition(".")
            owner = model.get_submodule(path) if path else model
            original = parameters[target]
            stand_in = torch.nn.Parameter(torch.empty_like(original, device="meta"),
                                          requires_grad=original.requires_grad)
            setattr(owner, attribute, stand_in)
            untied.append((owner, attribute, original))
    return untied


def initialize(module, seed=None, *, init_fn=None, weight=None, bias=None, device=None, generator=None,
               allow_uninitialized=False, progress=None):
    """(Re)initialize a module with its own initialization scheme, every random fill drawn by
    warpinit in batched launches; a meta-device module is materialized first.

    The scheme is the module's own code, run under ``fast_init``: every submodule's
    ``reset_parameters()`` as building it does, then, for a transformers model, its
    ``init_weights()`` (``_init_weights``: normal(0, initializer_range) for Linear and Embedding, zero
    biases, ones for norms, GPT-2's scaled projections, ViT's truncated normals, buffers such as
    position ids and rotary frequencies recomputed), or a root ``init_weights()``; ``init_fn(module)``
    replaces all of that. Each tensor is drawn once (the last full write the code makes), from
    ``parameter_seed(seed, name)`` with ``name`` its qualified name (a tied tensor: its first name),
    so values depend only on the seed, the names and the code - not on grouping or the device
    (within the CPU/GPU tolerance). Fills the code makes of temporaries or of parts of tensors draw
    from the names described in ``fast_init``.

    ``weight=`` / ``bias=`` then override the weights and biases of Linear, Conv, ConvTranspose,
    Bilinear, Embedding, RNN and MultiheadAttention layers: one of this module's functions (or a
    functools.partial of one, without seed, stream or generator), its name, a number (a constant), a
    ``{module class: initializer}`` mapping, or any other callable ``fn(tensor)`` (run under
    ``fast_init`` too); an overridden Embedding keeps its ``padding_idx`` row zero.

    Meta-device modules: every meta parameter and buffer gets storage on ``device`` (ties and
    parameter attributes kept, unlike ``module.to_empty``) before the scheme runs. A materialized
    tensor that nothing writes in full is an error naming it (the module is put back on the meta
    device), unless ``allow_uninitialized=True`` (its memory is then left as ``torch.empty`` gives
    it: for tensors you fill yourself, e.g. from a checkpoint). Buffers computed in ``__init__`` that
    the scheme does not recompute are such tensors: build with ``empty_init()`` to keep them.

    Sharded modules (DTensor parameters: FSDP2's ``fully_shard``, ``parallelize_module``,
    ``distribute_tensor``; meta or materialized): each process draws only the part of every tensor
    it holds - ``Shard(dim)`` (uneven as torch splits it), ``Replicate``, several mesh dimensions,
    FSDP2's strided shards over tensor parallelism - with no communication, so the gathered tensors
    (``full_tensor()``) equal the single-process ``initialize`` of the same module and seed bit for
    bit. A meta DTensor is materialized as its local shard only, on its mesh's device (``device`` must
    name that device type, if given); FSDP2 modules are resharded first and keep the padded shards
    they manage. Constants written into indexed parts (an Embedding's padding row) reach the
    elements each process holds. An orthogonal weight split across processes is the exception to
    "own part only": every process holding part of it builds the whole matrix (the single-process
    time and workspace, on each of them) and keeps its slice; a stack split by whole matrices costs
    each process its own. Placements warpinit does not draw (``Partial``, custom placements) are a
    ValueError naming the tensor and the placement, before anything is materialized.

    Args:
        module: a torch.nn.Module, on any device or the meta device, without uninitialized lazy
            parameters.
        seed: int in [0, 2**64); None draws one from ``generator`` (torch's default generator by
            default, so ``torch.manual_seed`` makes it reproducible).
        init_fn: ``fn(module)`` to run instead of the module's own scheme, or None.
        weight, bias: overrides, as above.
        device: where meta tensors are materialized (default: torch's default device, the CPU unless
            set); only for modules holding meta tensors.
        generator: the torch.Generator ``seed=None`` draws from; not together with ``seed``.
        allow_uninitialized: accept materialized tensors that nothing initializes.
        progress: show a progress bar on stderr; None: when stderr is a terminal and more than 256 MiB
            are drawn at once.

    Returns:
        The 64-bit seed used: ``initialize(same model, seed=it)`` gives the same values.

    Raises:
        TypeError: ``module`` is not an nn.Module; a bad ``init_fn``/``weight``/``bias``/``generator``
            or seed type.
        ValueError: lazy parameters, a bad seed or device, ``device`` for a module without meta tensors
            (or of another type than a meta DTensor's mesh), a DTensor placement warpinit does not
            draw (named), both ``seed`` and ``generator``, an override that does not fit a parameter
            (named), or
            materialized tensors left uninitialized (named; after running the scheme, the module put
            back on the meta device).
        RuntimeError: a CUDA parameter without a usable CuPy; a fast_init context already open.
        Whatever ``init_fn`` or the model's code raises, after putting a materialized module back on
        the meta device (a module that was not on the meta device keeps, tensor by tensor, its old
        values or the new ones: nothing is half-written).
    """
    from torch.nn.parameter import is_lazy

    from . import _torch_fast_init

    function = "initialize"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{function}: module must be a torch.nn.Module, got {type(module).__name__}")
    if init_fn is not None and not callable(init_fn):
        raise TypeError(f"{function}: init_fn must be a callable fn(module) or None, got {type(init_fn).__name__}")
    if not isinstance(allow_uninitialized, bool):
        raise TypeError(f"{function}: allow_uninitialized must be a bool, got {allow_uninitialized!r}")
    _torch_tensors.check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    weight, bias = _choice("weight", weight), _choice("bias", bias)
    original = getattr(module, "_orig_mod", None)  # torch.compile's wrapper: the names of the model itself
    if isinstance(original, torch.nn.Module):
        module = original
    _torch_dtensors.reshard(module)  # FSDP2: each process's shards are the parameters
    parameters, buffers = list(module.named_parameters()), list(module.named_buffers())
    tensors = parameters + buffers
    labels = {id(tensor): f"buffer {name!r}" for name, tensor in buffers}  # how errors name each tensor
    labels.update((id(tensor), f"parameter {name!r}") for name, tensor in parameters)
    for _, tensor in tensors:
        _torch_dtensors.check(function, labels[id(tensor)], tensor)
    lazy = [name for name, tensor in tensors if is_lazy(tensor)]
    if lazy:
        raise ValueError(f"{function}: the module has uninitialized lazy parameters ({', '.join(lazy)}); run a "
                         "forward pass (or initialize the lazy modules) first")
    has_meta = any(tensor.is_meta for _, tensor in tensors)
    if device is not None and not has_meta:
        raise ValueError(f"{function}: device={device!r} places meta tensors, and this module has none; move it "
                         "with module.to(device)")
    target = _target_device(device) if has_meta else None
    placed = {id(tensor): _torch_dtensors.device(function, labels[id(tensor)], tensor, target, device is not None)
              for _, tensor in tensors if tensor.is_meta and _torch_dtensors.is_dtensor(tensor)}
    overrides = _overrides(module, weight, bias)
    devices = {placed.get(id(tensor), target) if tensor.is_meta else tensor.device for _, tensor in tensors}
    if any(_torch_tensors.device_kind(where) == "cuda" for where in devices):
        _devices.resolve(function, "cuda")
    context = _torch_fast_init.open_context(function, seed, generator=generator)

    fresh, undo = _materialize(module, target, placed) if has_meta else ([], [])
    names = {}
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        key = _torch_fast_init.storage_key(tensor)
        if key is not None:
            names.setdefault(key, name)
    context.names = names
    context.track = {_torch_fast_init.storage_key(tensor) for _, tensor in fresh} - {None}
    context.discard_on_error = True
    context.progress = progress
    try:
        with context, torch.no_grad():
            if init_fn is not None:
                init_fn(module)
            else:
                own_initialization(module)
            _apply_overrides(context, overrides)
    except BaseException:
        _restore(module, undo)
        raise
    missing = context.unwritten()
    if missing and not allow_uninitialized:
        unwritten = sorted(name for name, tensor in fresh if _torch_fast_init.storage_key(tensor) in missing)
        _restore(module, undo)
        raise ValueError(f"{function}: {len(unwritten)} materialized tensor(s) would hold uninitialized memory - "
                         f"neither the module's initialization nor init_fn writes them: {', '.join(unwritten[:10])}"
                         f"{', ...' if len(unwritten) > 10 else ''}. Build with warpinit.torch.empty_init() to keep "
                         "buffers real, pass init_fn=, or allow_uninitialized=True to fill them yourself")
    return context.seed


def _apply_overrides(context, overrides) -> None:
    """The ``weight=``/``bias=`` choices, after the module's own scheme (so they are what is drawn)."""
    for entry in overrides:
        parameter = entry.owner._parameters[entry.attribute]
        if entry.fill is None:
            entry.initializer.function(parameter)
            continue
        dtype = _distributions.numpy_dtype(FLOATS[parameter.dtype])
        context.random(entry.name, parameter, entry.fill, dtype)
        owner = entry.owner
        if entry.attribute == "weight" and (_stock(owner, torch.nn.Embedding) or
                                            _stock(owner, torch.nn.EmbeddingBag)) and owner.padding_idx is not None:
            owner.weight[owner.padding_idx].fill_(0)


@contextlib.contextmanager
def empty_init():
    """Build modules with their parameters on the meta device and their buffers real.

    Inside the context every parameter a module registers is replaced by a meta parameter (no memory,
    nothing drawn), while buffers - position ids, rotary frequencies, anything ``__init__`` computes -
    are built normally (as accelerate's ``init_empty_weights(include_buffers=False)``). Then
    ``initialize(module, seed, device=...)`` materializes the parameters and runs the module's own
    initialization. Applies to modules built in this thread while the context is open.
    """
    from torch.nn.modules import module as modules

    owner = threading.get_ident()

    def to_meta(module, name, parameter):
        if parameter is None or parameter.is_meta or threading.get_ident() != owner:
            return None
        meta = torch.nn.Parameter(parameter.to("meta"), requires_grad=parameter.requires_grad)
        meta.__dict__.update(parameter.__dict__)
        return meta

    handle = modules.register_module_parameter_registration_hook(to_meta)
    try:
        yield
    finally:
        handle.remove()
