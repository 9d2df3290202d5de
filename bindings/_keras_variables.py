"""What warpinit needs from Keras's variable internals: each variable's initializer, and deferral.

Keras hands a variable its initializer when it creates it (``add_weight`` / ``keras.Variable``, with
every argument Keras completed - EinsumDense's axes, for one) and forgets it once the variable holds
a value. ``import warpinit.keras`` therefore wraps ``KerasVariable.__init__`` once, so that every
variable created afterwards remembers the initializer it was created with (``initializer_of``); a
variable created before that import has no record. ``deferred()`` builds models without running
any initializer.

Both rely on ``keras.src.backend.common.variables``, tested with the Keras range pinned in
warpinit's ``keras`` extra.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import keras
import numpy as np

# What initializer_of returns for a variable created before the hook was installed.
UNKNOWN = object()
# id(variable) -> (weak reference to it, the initializer it was created with).
_CREATED: dict[int, tuple] = {}
_HOOK_LOCK = threading.Lock()
_hooked = False


def install_hook() -> None:
    """Make every Keras variable created from now on remember its initializer (idempotent)."""
    global _hooked
    from keras.src.backend.common.variables import Variable

    with _HOOK_LOCK:
        if _hooked:
            return
        original = Variable.__init__

        def __init__(self, *args, **kwargs):
            initializer = args[0] if args else kwargs.get("initializer")
            if isinstance(initializer, str):  # resolved here once, as Keras would resolve it
                initializer = keras.initializers.get(initializer)
                args, kwargs = _replace_initializer(args, kwargs, initializer)
            original(self, *args, **kwargs)
            _record(self, initializer)

        __init__.__wrapped__ = original
        Variable.__init__ = __init__
        _hooked = True


def _replace_initializer(args, kwargs, initializer):
    if args:
        return (initializer, *args[1:]), kwargs
    return args, {**kwargs, "initializer": initializer}


def _record(variable, initializer) -> None:
    key = id(variable)

    def forget(reference, key=key, table=_CREATED):  # the table bound here: it outlives module teardown
        entry = table.get(key)
        if entry is not None and entry[0] is reference:
            del table[key]

    try:
        reference = weakref.ref(variable, forget)
    except TypeError:  # a variable type without weak references: left unrecorded
        return
    _CREATED[key] = (reference, initializer)


def initializer_of(variable):
    """The initializer ``variable`` was created with (a callable, or the array or tensor it was given),
    or ``UNKNOWN`` when it was created before the hook was installed."""
    entry = _CREATED.get(id(variable))
    if entry is None or entry[0]() is not variable:
        return UNKNOWN
    return entry[1]



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
    from . import _distributions

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


def is_deferred(variable) -> bool:
    """Whether ``variable`` holds no value yet (created under ``deferred()`` or a stateless scope)."""
    return variable._value is None


@contextlib.contextmanager
def deferred():
    """Build models without initializing their variables; ``initialize(model)`` fills them afterwards.

    Inside the context, variables created with an initializer are left uninitialized - Keras's own
    deferral for variables created in a ``keras.StatelessScope`` - so Keras's per-variable
    initialization never runs; symbolic calls during the build see zeros. Call
    ``initialize(model)`` before using the model. A variable that is never passed to ``initialize``
    is still initialized correctly (by its own initializer) the first time Keras initializes pending
    variables. Not for use from several threads at once (it replaces a Keras function while open).
    """
    from keras.src.backend.common import variables

    register = variables.register_uninitialized_variable

    def register_deferred(variable):
        register(variable)
        variable._initializer = _Placeholder(variable._initializer)

    variables.register_uninitialized_variable = register_deferred
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        variables.register_uninitialized_variable = register


def initialize_own(variable) -> None:
    """Initialize a deferred variable the way Keras would: with its own initializer."""
    variable._deferred_initialize()


def forget_pending(done) -> None:
    """Drop the variables whose ids are in ``done`` from Keras's list of pending initializations."""
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables") or []
    pending[:] = [v for v in pending if id(v) not in done]
