"""``fast_init``: the random fills model code performs, served by warpinit's kernels.

Inside the context a ``torch.overrides.TorchFunctionMode`` sees every torch call of this thread.
Random fills - ``torch.nn.init``'s functions (``uniform_``, ``normal_``, ``kaiming_uniform_`` reach the
mode through torch's own dispatch, ``trunc_normal_`` through its private helper, which is routed here
while a context is open; ``xavier_*`` and ``kaiming_normal_`` are a ``Tensor.uniform_``/``normal_``
inside), the in-place ``Tensor.normal_``/``uniform_`` however the tensor was reached (``.data``,
``detach()``), and ``torch.randn``/``rand``/``randn_like``/``rand_like``/``randperm`` - become fills
of the shared distribution vocabulary with exactly the parameters the code passed (torch's fans,
bounds and errors), truncation exact.

A fill that covers a tensor's whole storage is *pending*: it is drawn when something reads the
storage, or at the end of the context, where all pending fills go through the whole-model engine in
batched launches. A later full overwrite (another fill, ``zero_``, ``fill_``, ``copy_``) replaces it,
so the work model code does twice - torch's ``reset_parameters`` at construction, then the model's
own ``_init_weights`` - is drawn once, and a fill of a tensor nothing holds any more at the end (an
output layer's own weight, replaced by the tied embedding) is not drawn at all; constant writes to a
part of a pending tensor (an Embedding's ``padding_idx`` row) are kept in order and applied after the
fill. Fills of part of a storage run at
once. Whatever the pattern, the values are those of running the code in order.

Seeds: a fill still pending at the end is drawn from ``tensor_seed(seed, name)``, ``name`` the
tensor's qualified name in the model (``named_parameters``/``named_buffers``; with several root
modules, names after the first root's are prefixed by the root's index, ``"1/weight"``); any other
fill (a temporary, part of a tensor, a fill the code read back) from ``tensor_seed(seed, "#k")``,
``k`` its position among the context's random fills. The same code with the same seed gives the same
bits on every run and thread count; ``warpinit.torch.parameter_seed(seed, name)`` re-draws a pending
tensor alone.

DTensors (``torch.distributed.tensor``: FSDP2, tensor parallelism, ``distribute_tensor``) are
served the same way, keyed by their local tensor's storage: each process draws only the part of the
global tensor it holds, so the gathered tensor equals the single-process draw bit for bit with no
communication, and a constant written into an indexed part (an Embedding's padding row) goes into
the elements this process holds (see ``_torch_dtensors``); other in-place operations on such a part
are a NotImplementedError (torch would write into a gathered copy). A placement warpinit does not
draw (``Partial``, custom placements) is a ValueError at the fill.

Not served (torch's own op runs, with torch's generator): complex and integer tensors, and other
random functions (``random_``, ``bernoulli_``, ``exponential_``, ``torch.normal``...). Fills of meta
tensors are no-ops, as in torch. One context per thread at a time (nesting is an error); contexts in
different threads are independent.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from typing import NamedTuple

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from . import _args, _distributions, _seeds, _torch_dtensors, _torch_init, _torch_tensors, _whole_model
from ._torch_tensors import FLOATS, Fill

_STATE = threading.local()  # .context: the open FastInit of this thread
_ROUTES_LOCK = threading.Lock()
_ROUTES_OPEN = 0
_ORIGINAL_TRUNC = torch.nn.init._no_grad_trunc_normal_

# Calls that read no values (metadata, views, grad mode): they never make a pending fill happen.
_VIEWS = {
    torch.Tensor.dim, torch.Tensor.size, torch.Tensor.stride, torch.Tensor.storage_offset, torch.Tensor.numel,
    torch.Tensor.is_contiguous, torch.Tensor.element_size, torch.Tensor.nelement, torch.Tensor.ndimension,
    torch.Tensor.__len__, torch.Tensor.detach, torch.Tensor.view, torch.Tensor.view_as, torch.Tensor.t,
    torch.Tensor.transpose, torch.Tensor.permute, torch.Tensor.expand, torch.Tensor.expand_as,
    torch.Tensor.narrow, torch.Tensor.select, torch.Tensor.unsqueeze, torch.Tensor.squeeze,
    torch.Tensor.as_strided, torch.Tensor.split, torch.Tensor.chunk, torch.Tensor.unbind, torch.Tensor.diagonal,
    torch.Tensor.requires_grad_, torch.Tensor.is_floating_point, torch.Tensor.is_complex, torch.Tensor.get_device,
    torch.Tensor.__hash__, torch._C._set_grad_enabled, torch.is_grad_enabled,
}


class _Pending(NamedTuple):
    tensor: torch.Tensor  # covers the whole storage
    fill: Fill
    dtype: np.dtype
    order: int  # position among the context's random fills
    patches: list  # (storage offset, size, stride, value): constant writes after the fill, in order
    twin: object = None  # the storage whose name the values are drawn under (a pending source copied there)


def storage_key(tensor):
    """The identity of a tensor's storage - a DTensor's: its local tensor's - (None for meta and empty
    tensors)."""
    tensor = _torch_dtensors.local(tensor)
    if tensor.is_meta or tensor.numel() == 0:
        return None
    return tensor.device, tensor.untyped_storage().data_ptr()


def _use_count(tensor) -> int:
    """The references torch holds to ``tensor``'s storage (tensors, views, storage objects)."""
    return torch._C._storage_Use_Count(tensor.untyped_storage()._cdata)


def _unreachable(tensors) -> list[bool]:
    """For each of ``tensors``, whether nothing but this context's own reference holds its storage: a
    tensor the model code dropped before the end (an output layer's weight replaced by the tied
    embedding), whose fill nobody can read. False where that cannot be known (DTensors, a torch
    without the storage's use count)."""
    if not hasattr(torch._C, "_storage_Use_Count"):
        return [False] * len(tensors)
    alone = _use_count(torch.empty(1))  # the count of a storage only one tensor holds
    return [not _torch_dtensors.is_dtensor(tensor) and _use_count(tensor) <= alone for tensor in tensors]


def _whole(tensor) -> bool:
    """Whether ``tensor`` covers its storage exactly, each element once (any dense layout:
    contiguous, channels-last, transposed); a DTensor's local tensor may leave padding at the end of
    its storage (FSDP2 pads every shard to the largest one's size)."""
    padded = _torch_dtensors.is_dtensor(tensor) and _torch_dtensors.selection_of(tensor) is None
    tensor = _torch_dtensors.local(tensor)
    nbytes, storage = tensor.numel() * tensor.element_size(), tensor.untyped_storage().nbytes()
    if tensor.storage_offset() != 0 or not (nbytes == storage or padded and nbytes <= storage):
        return False
    expected = 1
    for stride, size in sorted((stride, size) for size, stride in zip(tensor.shape, tensor.stride()) if size != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _basic_index(index) -> bool:
    entries = index if isinstance(index, tuple) else (index,)
    return all(entry is None or entry is Ellipsis or isinstance(entry, (int, slice)) for entry in entries)


def _tensors(args, kwargs):
    from torch.utils._pytree import tree_leaves

    return [leaf for leaf in tree_leaves((args, kwargs)) if isinstance(leaf, torch.Tensor)]


class _Mode(TorchFunctionMode):
    def __init__(self, context):
        super().__init__()
        self.context = context

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _HANDLERS.get(func) or _patched_init(func)
        if handler is not None:
            return handler(self.context, func, args, kwargs)
        if func is torch.Tensor.__getitem__ and _torch_dtensors.is_dtensor(args[0]):
            selection = self.context.select(args[0], args[1])
            if selection is not None:
                return selection
        if self.context.selections:
            args, kwargs = self.context.resolve(func, args, kwargs)
        if self.context.pending and func not in _VIEWS and not _is_getter(func) and \
                not (func is torch.Tensor.__getitem__ and _basic_index(args[1])):
            self.context.draw_read(_tensors(args, kwargs))
        out = kwargs.get("out")
        if isinstance(out, torch.Tensor):  # torch.eye(..., out=t) and the like overwrite t
            self.context.overwrite(out)
        return func(*args, **kwargs)


def _is_getter(func) -> bool:
    """Attribute reads (``.shape``, ``.data``, ``.T``...): descriptors' ``__get__``."""
    return getattr(func, "__name__", "") == "__get__"


class FastInit:
    """The state of one ``fast_init`` context (see the module docstring)."""

    def __init__(self, seed: int, *, names=None, device=None, track=None):
        self.seed = seed
        self.names = names  # storage key -> qualified name, when the model is known up front
        self.device = device
        self.track = track  # storage keys that must be written in full (materialized tensors), or None
        self.written = set()
        self.pending: dict = {}
        self.random_fills = 0
        self.modules: dict[int, weakref.ref] = {}  # modules that registered something, in that order
        self.children: set[int] = set()
        self._mode = _Mode(self)
        self._hooks = []
        self._device_context = None
        self.discard_on_error = False
        self.progress = False
        self.selections = 0  # selections of DTensors handed out (see _torch_dtensors)

    # The context -------------------------------------------------------------------------------

    def __enter__(self):
        if getattr(_STATE, "context", None) is not None:
            raise RuntimeError("fast_init: a fast_init context is already open in this thread; contexts do not nest "
                               "(close the first, or call warpinit.torch.initialize after it)")
        _open_routes()
        try:
            if self.names is None:
                self._hooks = _registration_hooks(self)
            if self.device is not None:
                self._device_context = torch.device(self.device)
                self._device_context.__enter__()
            self._mode.__enter__()
        except BaseException:
            self._close_hooks()
            _close_routes()
            raise
        _STATE.context = self
        return self

    def __exit__(self, kind, error, traceback):
        _STATE.context = None
        self._mode.__exit__(kind, error, traceback)
        if self._device_context is not None:
            self._device_context.__exit__(kind, error, traceback)
        self._close_hooks()
        _close_routes()
        if error is not None and self.discard_on_error:
            self.pending.clear()
            return False
        if self.names is None:
            self.names = self._names_from_roots()
        keys = list(self.pending)
        for key, dropped in zip(keys, _unreachable([self.pending[key].tensor for key in keys])):
            if dropped:
                del self.pending[key]
        self.draw(list(self.pending))
        return False

    def _close_hooks(self):
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _names_from_roots(self) -> dict:
        names = {}
        roots = [ref() for key, ref in self.modules.items() if key not in self.children]
        for index, root in enumerate(module for module in roots if module is not None):
            prefix = "" if index == 0 else f"{index}/"
            for name, tensor in list(root.named_parameters()) + list(root.named_buffers()):
                key = storage_key(tensor)
                if key is not None:
                    names.setdefault(key, prefix + name)
        return names

    # Fills ---------------------------------------------------------------------------------------

    def label(self, tensor) -> str:
        """How errors name ``tensor``: its qualified name when known."""
        name = (self.names or {}).get(storage_key(tensor))
        return f"{name!r}" if name else f"a tensor of shape {tuple(tensor.shape)}"

    def random(self, function: str, tensor, fill: Fill, dtype) -> None:
        """A random fill of ``tensor`` (already validated): pending when it covers the storage."""
        selection = _torch_dtensors.selection_of(tensor)
        if selection is None:
            _torch_dtensors.check(function, self.label(tensor), tensor)
        order = self.random_fills
        self.random_fills += 1
        if fill.distribution is None or (tensor.is_meta and selection is None):
            return
        if not fill.distribution.random:
            if not self.overwrite(tensor, fill.distribution.params[0]):
                _torch_dtensors.local(tensor).detach().fill_(fill.distribution.params[0])
            return
        key = storage_key(tensor)
        torch.autograd.graph.increment_version(tensor)
        if key is None:  # nothing here to draw (an empty tensor, a shard this process does not hold)
            return
        if _whole(tensor):
            self.pending[key] = _Pending(tensor.detach(), fill, dtype, order, [])
            self.written.add(key)
            return
        self.draw([key])  # what was pending under this part comes first
        self._fill_now(function, tensor, fill, dtype, f"#{order}")

    def overwrite(self, tensor, value=None) -> bool:
        """``tensor`` is about to be overwritten by a constant (``value``) or a copy (None). Returns
        True when the write is taken over here (a constant over part of a pending tensor, applied
        after its fill); the caller then skips it."""
        key = storage_key(tensor)
        if key is None:
            return False
        if _whole(tensor):
            self.pending.pop(key, None)
            self.written.add(key)
            return False
        entry = self.pending.get(key)
        if entry is not None and value is not None:
            part = _torch_dtensors.local(tensor)
            entry.patches.append((part.storage_offset(), tuple(part.shape), tuple(part.stride()), value))
            torch.autograd.graph.increment_version(tensor)
            return True
        self.draw([key])
        return False

    def draw_read(self, tensors) -> None:
        """Draw the pending fills of the storages ``tensors`` use (they are about to be read)."""
        keys = [key for key in (storage_key(tensor) for tensor in tensors) if key in self.pending]
        if keys:
            self.draw(keys)

    def draw(self, keys) -> None:
        """Draw the pending fills of ``keys`` in batched launches, then their constant patches."""
        entries = [self.pending.pop(key) for key in dict.fromkeys(keys) if key in self.pending]
        if not entries:
            return
        names = self.names or {}
        requests = []
        for entry in entries:
            path = names.get(entry.twin or storage_key(entry.tensor)) or f"#{entry.order}"
            requests.append(_whole_model.Request(path, entry.fill.distribution, entry.fill.shape, entry.dtype,
                                                 _torch_dtensors.local(entry.tensor).device, entry.tensor,
                                                 _torch_dtensors.part("fast_init", entry.tensor)))
        with torch.no_grad():
            _whole_model.run(requests, self.seed, _torch_tensors.Adapter("fast_init"), function="fast_init",
                             progress=self.progress)
            for entry in entries:
                for offset, shape, stride, value in entry.patches:
                    _torch_dtensors.local(entry.tensor).as_strided(shape, stride, offset).fill_(value)

    def _fill_now(self, function, tensor, fill, dtype, path) -> None:
        from warpinit.kernels.philox import key_table

        with torch.no_grad():
            _torch_tensors.fill(function, tensor, fill, dtype, key_table(_seeds.tensor_seed(self.seed, path), 0))

    # Selections of DTensors ----------------------------------------------------------------------

    def select(self, tensor, index):
        """``tensor[index]`` for a DTensor: a selection's stand-in, or None for torch's own indexing."""
        result = _torch_dtensors.select(tensor, index)
        if result is not None:
            self.selections += 1
        return result

    def resolve(self, func, args, kwargs, served=False):
        """``args``/``kwargs`` with every selection replaced by torch's own indexing (the code reads
        it) - but for the first argument when ``served`` (a write this module serves);
        NotImplementedError for any other in-place operation on a selection."""
        from torch.utils._pytree import tree_map

        name = getattr(func, "__name__", "")
        target = args[0] if args else None
        if not served and _torch_dtensors.selection_of(target) is not None and (
                (name.endswith("_") and not name.endswith("__")) or name.startswith("__i") or "out" in kwargs):
            raise NotImplementedError(
                f"fast_init: {name} writes into an indexed part of a DTensor; warpinit writes constants (fill_, "
                "zero_, constant_), copies (copy_, item assignment) and random fills into such parts, each "
                "process its own elements (torch itself would write into a gathered copy)")

        def real(value):
            selection = _torch_dtensors.selection_of(value)
            if selection is None:
                return value
            self.draw_read([selection.root])
            return _torch_dtensors.resolve(selection)

        if served:
            return (target, *tree_map(real, tuple(args[1:]))), tree_map(real, kwargs)
        return tree_map(real, args), tree_map(real, kwargs)

    def unwritten(self):
        """The tracked storage keys no full write reached."""
        return set() if self.track is None else set(self.track) - self.written


def _registration_hooks(context):
    """Global registration hooks that record, for this thread's context, which modules hold what."""
    from torch.nn.modules import module as modules

    def record(module):
        if getattr(_STATE, "context", None) is context:
            context.modules.setdefault(id(module), weakref.ref(module))

    def on_tensor(module, name, tensor):
        record(module)

    def on_module(module, name, submodule):
        record(module)
        if submodule is not None and getattr(_STATE, "context", None) is context:
            record(submodule)
            context.children.add(id(submodule))

    return [modules.register_module_parameter_registration_hook(on_tensor),
            modules.register_module_buffer_registration_hook(on_tensor),
            modules.register_module_module_registration_hook(on_module)]


# trunc_normal_ reaches no torch function: its private helper is routed here while contexts are open.


def _trunc_route(tensor, mean, std, a, b, generator=None):
    context = getattr(_STATE, "context", None)
    if context is None:
        return _ORIGINAL_TRUNC(tensor, mean, std, a, b, generator=generator)
    return _init_fill(context, _torch_init.trunc_normal_, (tensor, mean, std, a, b), {})


def _open_routes() -> None:
    global _ROUTES_OPEN
    with _ROUTES_LOCK:
        if _ROUTES_OPEN == 0:
            torch.nn.init._no_grad_trunc_normal_ = _trunc_route
        _ROUTES_OPEN += 1


def _close_routes() -> None:
    global _ROUTES_OPEN
    with _ROUTES_LOCK:
        _ROUTES_OPEN -= 1
        if _ROUTES_OPEN == 0:
            torch.nn.init._no_grad_trunc_normal_ = _ORIGINAL_TRUNC


# Handlers: torch calls the mode serves itself -------------------------------------------------


def _served(tensor) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.dtype in FLOATS and tensor.layout == torch.strided


def _init_fill(context, function, args, kwargs):
    """A torch.nn.init-style random fill: ``function`` is warpinit.torch's twin, whose translation
    (BUILDERS) gives torch's distribution and errors."""
    bound = _signature(function).bind(*args, **kwargs)
    arguments = dict(bound.arguments)
    tensor = arguments.pop("tensor")
    arguments.pop("generator", None)
    name = function.__name__
    dtype = _torch_tensors.dtype_of(name, tensor)
    fill = _torch_init.BUILDERS[function](name, tuple(tensor.shape), dtype, **arguments)
    context.random(name, tensor, fill, dtype)
    return tensor


@functools.lru_cache(maxsize=None)
def _signature(function):
    import inspect

    return inspect.signature(function)


def _torch_init_handler(function):
    def handle(context, func, args, kwargs):
        tensor = args[0] if args else kwargs.get("tensor")
        if not _served(tensor):
            return func(*args, **kwargs)
        return _init_fill(context, function, args, kwargs)
    return handle


def _check_in_place(tensor) -> None:
    if torch.is_grad_enabled() and tensor.requires_grad and tensor.is_leaf:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def _tensor_normal(context, func, args, kwargs):
    tensor = args[0]
    if not _served(tensor):
        return func(*args, **kwargs)

    def parse(self, mean=0.0, std=1.0, *, generator=None):
        return mean, std

    mean, std = parse(*args, **kwargs)
    _check_in_place(tensor)
    if not (isinstance(std, (int, float)) and std >= 0.0):
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    dtype = _torch_tensors.dtype_of("normal_", tensor)
    context.random("normal_", tensor, _torch_init.BUILDERS[_torch_init.normal_]("normal_", tuple(tensor.shape),
                                                                                  dtype, mean, std), dtype)
    return tensor


def _tensor_uniform(context, func, args, kwargs):
    tensor = args[0]
    if not _served(tensor):
        return func(*args, **kwargs)
    low = args[1] if len(args) > 1 else kwargs.get("from", 0.0)
    high = args[2] if len(args) > 2 else kwargs.get("to", 1.0)
    _check_in_place(tensor)
    if low > high:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={low} > to={high}")
    dtype = _torch_tensors.dtype_of("uniform_", tensor)
    context.random("uniform_", tensor, _torch_init.BUILDERS[_torch_init.uniform_]("uniform_", tuple(tensor.shape),
                                                                                    dtype, low, high), dtype)
    return tensor


def _factory(empty, distribution):
    """torch.randn/rand(_like): an empty tensor of the same arguments, then a pending fill."""
    def handle(context, func, args, kwargs):
        options = {key: value for key, value in kwargs.items() if key != "generator"}
        result = empty(*args, **options)
        if not _served(result):
            return func(*args, **kwargs)
        dtype = _torch_tensors.dtype_of(func.__name__, result)
        context.random(func.__name__, result, Fill(distribution, tuple(result.shape)), dtype)
        return result
    return handle


def _randperm(context, func, args, kwargs):
    """torch.randperm(n, ...): the argsort of n uniform float64 keys drawn from the context's seed."""
    import warpinit as wi

    n = args[0] if args else kwargs["n"]
    options = {key: value for key, value in kwargs.items() if key not in ("generator", "n")}
    result = torch.empty(n, **{"dtype": torch.int64, **options})
    order = context.random_fills
    context.random_fills += 1
    if n and not result.is_meta:
        keys = wi.uniform(n, dtype="float64", seed=_seeds.tensor_seed(context.seed, f"#{order}"), device="cpu")
        result.copy_(torch.from_numpy(np.argsort(keys, kind="stable")))
    return result


def _constant_write(context, func, args, kwargs):
    """fill_/zero_: overwrites; a constant over part of a pending tensor waits for its fill."""
    tensor = args[0]
    if not isinstance(tensor, torch.Tensor):
        return func(*args, **kwargs)
    if context.selections:
        args, kwargs = context.resolve(func, args, kwargs, served=True)
    value = 0.0 if func is torch.Tensor.zero_ else (args[1] if len(args) > 1 else kwargs.get("value"))
    if isinstance(value, torch.Tensor):  # a tensor value is read
        context.draw_read([value])
        value = None
    if context.overwrite(tensor, value if isinstance(value, (int, float)) else None):
        return tensor
    if _torch_dtensors.selection_of(tensor) is not None:  # the elements this process holds
        func(_torch_dtensors.local(tensor), *args[1:], **kwargs)
        return tensor
    return func(*args, **kwargs)


def _setitem(context, func, args, kwargs):
    """``tensor[index] = value``: into a DTensor, a constant or a copy into the selected elements
    this process holds; other tensors read their pending fills first, as any other call."""
    tensor, index, value = args
    selection = context.select(tensor, index) if _torch_dtensors.is_dtensor(tensor) else None
    if selection is None:
        if context.selections:
            args, kwargs = context.resolve(func, args, kwargs)
        context.draw_read(_tensors(args, kwargs))
        return func(*args, **kwargs)
    if isinstance(value, torch.Tensor):
        _copy(context, torch.Tensor.copy_, (selection, value), {})
    else:
        _constant_write(context, torch.Tensor.fill_, (selection, value), {})
    return None


def _copy(context, func, args, kwargs):
    """copy_: an overwrite of the target that reads the source - except that a pending fill copied
    whole into a tensor of the same shape and dtype (torch's conv init through a contiguous
    temporary) moves to the target: both then draw the same values, under the target's name."""
    if context.selections:
        args, kwargs = context.resolve(func, args, kwargs, served=True)
    target, source = args[0], args[1] if len(args) > 1 else kwargs.get("src")
    selection = _torch_dtensors.selection_of(target)
    if selection is not None:  # into the selected elements of a DTensor this process holds
        if isinstance(source, torch.Tensor):
            context.draw_read([source])
        context.overwrite(target)
        with torch.no_grad():
            _torch_dtensors.copy_into(selection, torch.as_tensor(source, dtype=target.dtype))
        torch.autograd.graph.increment_version(target)
        return target
    if not isinstance(source, torch.Tensor):
        context.overwrite(target)
        return func(*args, **kwargs)
    entry = context.pending.get(storage_key(source))
    if entry is not None and not entry.patches and _whole(source) and _whole(target) and \
            _torch_dtensors.is_dtensor(source) == _torch_dtensors.is_dtensor(target) and \
            source.shape == target.shape and source.dtype == target.dtype and source.device == target.device:
        key = storage_key(target)
        context.overwrite(target)
        context.pending[key] = entry._replace(tensor=target.detach(), twin=entry.twin)
        context.pending[storage_key(source)] = entry._replace(twin=entry.twin or key)
        torch.autograd.graph.increment_version(target)
        return target
    context.draw_read([source])
    context.overwrite(target)
    return func(*args, **kwargs)


def _init_constant(context, func, args, kwargs):
    tensor = args[0] if args else kwargs.get("tensor")
    value = args[1] if len(args) > 1 else kwargs.get("val")
    if not isinstance(tensor, torch.Tensor):
        return func(*args, **kwargs)
    if context.selections:
        (tensor, value), _ = context.resolve(func, (tensor, value), {}, served=True)
    if not context.overwrite(tensor, value if isinstance(value, (int, float)) else None):
        with torch.no_grad():
            (tensor if _torch_dtensors.selection_of(tensor) is None else _torch_dtensors.local(tensor)).fill_(value)
    return tensor


_INIT_HANDLERS = {
    "uniform_": _torch_init_handler(_torch_init.uniform_),
    "normal_": _torch_init_handler(_torch_init.normal_),
    "kaiming_uniform_": _torch_init_handler(_torch_init.kaiming_uniform_),
    "constant_": _init_constant,
}


def _patched_init(func):
    """The handler of a torch.nn.init function that dispatches to torch functions, when another
    library has replaced it in torch.nn.init (torch then dispatches under the replacement's identity:
    transformers does so while it initializes weights). The replacement's guard is honoured:
    transformers skips tensors marked ``_is_hf_initialized`` (weights it loaded)."""
    name = getattr(func, "__name__", None)
    if name not in _INIT_HANDLERS or getattr(torch.nn.init, name, None) is not func:
        return None
    handler = _INIT_HANDLERS[name]

    def guarded(context, func, args, kwargs):
        tensor = args[0] if args else kwargs.get("tensor")
        if getattr(tensor, "_is_hf_initialized", False):
            return tensor
        return handler(context, func, args, kwargs)

    return guarded


_HANDLERS = {
    torch.nn.init.uniform_: _INIT_HANDLERS["uniform_"],
    torch.nn.init.normal_: _INIT_HANDLERS["normal_"],
    torch.nn.init.kaiming_uniform_: _INIT_HANDLERS["kaiming_uniform_"],
    torch.nn.init.constant_: _INIT_HANDLERS["constant_"],
    torch.Tensor.normal_: _tensor_normal,
    torch.Tensor.uniform_: _tensor_uniform,
    torch.randn: _factory(torch.empty, _distributions.normal(0.0, 1.0)),
    torch.rand: _factory(torch.empty, _distributions.uniform(0.0, 1.0)),
    torch.randn_like: _factory(torch.empty_like, _distributions.normal(0.0, 1.0)),
    torch.rand_like: _factory(torch.empty_like, _distributions.uniform(0.0, 1.0)),
    torch.randperm: _randperm,
    torch.Tensor.fill_: _constant_write,
    torch.Tensor.zero_: _constant_write,
    torch.Tensor.copy_: _copy,
    torch.Tensor.__setitem__: _setitem,
}


def active():
    """The ``FastInit`` open in this thread, or None."""
    return getattr(_STATE, "context", None)


@contextlib.contextmanager
def fast_init(seed=None, *, device=None, generator=None):
    """Serve the random fills of model code run inside the context with warpinit's kernels.

    ``with fast_init(seed=0): model = AutoModelForCausalLM.from_config(config)`` builds the model
    with its own initialization (torch's ``reset_parameters``, then the model's ``_init_weights``),
    every random fill drawn by warpinit with the distribution the code asked for, each tensor once
    (see the module docstring for what is served, when values are drawn and how seeds are derived).

    Args:
        seed: int in [0, 2**64); None draws one from ``generator`` (torch's default generator by
            default, so ``torch.manual_seed`` keeps scripts reproducible).
        device: where modules built inside the context put their tensors (as ``with torch.device``);
            None keeps torch's default device.
        generator: the torch.Generator ``seed=None`` draws from; not together with ``seed``.

    Yields:
        The context (``.seed``: the 64-bit seed used).

    Raises:
        RuntimeError: a fast_init context is already open in this thread.
        TypeError, ValueError: a bad seed, generator or device (before anything runs).
    """
    context = open_context("fast_init", seed, device=device, generator=generator)
    with context:
        yield context


def open_context(function: str, seed, *, device=None, generator=None, names=None, track=None) -> FastInit:
    """A validated, not yet entered ``FastInit``."""
    _torch_tensors.check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    if device is not None:
        try:
            device = torch.device(device)
        except (TypeError, RuntimeError) as error:
            raise ValueError(f"{function}: device must be a torch device, got {device!r}: {error}") from None
    if getattr(_STATE, "context", None) is not None:
        raise RuntimeError(f"{function}: a fast_init context is already open in this thread; contexts do not nest")
    if seed is None:
        seed = _torch_tensors.draw_seed(generator)
    return FastInit(seed, names=names, device=device, track=track)
