"""One source, two targets: how warpinit's shared math is compiled for the CPU and for CUDA.

warpinit's arithmetic (Philox rounds, bits-to-float conversion, the normal transform, 16-bit rounding)
is written once, as plain Python. ``shared`` compiles it with ``numba.njit(forceinline=True)`` for the
CPU kernels and remembers the source, so that ``cuda_twin`` can compile the very same code object with
``numba.cuda.jit(device=True, inline="always")``. Both targets inline, for different reasons: on the
CPU, LLVM's always-inline lets it vectorise a whole kernel loop (an opaque call inside the loop keeps
it scalar, four times slower), at a fraction of the compile time of Numba's IR-level inlining; for
CUDA, Numba's IR-level ``inline="always"`` is what lets ``compile_ptx`` work on a machine without a
driver (a non-inlined device function is linked through the driver).

A CUDA twin is the original code object with its global names rebound to the CUDA twins of the shared
functions it calls (``for_cuda``); kernels written against the CPU names run unchanged on a GPU and
in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``). In the simulator, device functions run as
Python on NumPy scalars, so the shared code casts every integer constant and keeps float constants as
NumPy scalars: NumPy's promotion rules and Numba's typing then agree, and simulator results match the
compiled CPU kernels.

Nothing here imports ``numba.cuda`` until a CUDA twin is asked for: ``import warpinit`` stays light and
compiles nothing. Simulator awareness lives in this module only.
"""

from __future__ import annotations

import os
import types

import numba

__all__ = [
    "shared",
    "shared_intrinsic",
    "specialize",
    "cuda_twin",
    "cuda_device",
    "for_cuda",
    "simulator_enabled",
    "cuda_module",
]

# Options of every compiled CPU function: the NumPy error model keeps float division branch-free
# (no ZeroDivisionError checks), which the vectoriser needs.
CPU_OPTIONS = {"error_model": "numpy", "nogil": True}

# id(CPU object) -> (CPU object, kind, payload). kind is "function" (payload: the Python source
# function) or "intrinsic" (payload: a pure-Python implementation for the simulator).
_SHARED: dict[int, tuple[object, str, object]] = {}
_TWINS: dict[int, object] = {}


def shared(py_func):
    """Compile ``py_func`` for the CPU (inlined njit) and register it for a CUDA twin.

    Args:
        py_func: a plain Python function using only scalar arithmetic and other shared functions.

    Returns:
        The CPU dispatcher; module code and CPU kernels call it by its name.
    """
    dispatcher = numba.njit(forceinline=True, **CPU_OPTIONS)(py_func)
    _SHARED[id(dispatcher)] = (dispatcher, "function", py_func)
    return dispatcher


def shared_intrinsic(python_impl):
    """Register a Numba intrinsic used by shared code, with ``python_impl`` for the CUDA simulator.

    Numba's intrinsics are generic: the same object lowers for the CPU and for CUDA. The simulator
    runs Python, so it gets the equivalent NumPy implementation instead.
    """

    def register(intrinsic):
        _SHARED[id(intrinsic)] = (intrinsic, "intrinsic", python_impl)
        return intrinsic

    return register


def specialize(py_func, suffix: str, **bindings):
    """A copy of ``py_func`` named ``<name><suffix>`` whose global names in ``bindings`` are rebound.

    One source serves both precisions: a kernel template calls, say, ``_draw``, and its float32 and
    float64 versions bind that name to ``_draw24`` and ``_draw53``. The distinct name keeps Numba's
    on-disk cache entries of the versions apart.
    """
    namespace = dict(py_func.__globals__)
    namespace.update(bindings)
    twin = _copy_function(py_func, namespace)
    twin.__name__ = py_func.__name__ + suffix
    twin.__qualname__ = py_func.__qualname__ + suffix
    return twin


def simulator_enabled() -> bool:
    """True when Numba's CUDA simulator replaces the GPU (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_module():
    """Import and return ``numba.cuda``, insisting that it is the numba-cuda package.

    Raises:
        ImportError: numba-cuda is not installed (Numba's deprecated built-in target is not used).
    """
    try:
        import numba_cuda  # noqa: F401  (only its presence is checked)
    except ImportError as error:
        raise ImportError(
            "warpinit's CUDA kernels need the numba-cuda package: pip install 'warpinit[cuda13]' "
            "(or 'warpinit[cuda12]'); for the simulator and PTX checks, 'warpinit[test]'"
        ) from error
    from numba import cuda

    return cuda


def cuda_twin(cpu_object):
    """The CUDA device function compiled from the same source as ``cpu_object`` (memoised)."""
    key = id(cpu_object)
    if key not in _TWINS:
        _, kind, payload = _SHARED[key]
        if kind == "intrinsic":
            _TWINS[key] = payload if simulator_enabled() else cpu_object
        else:
            cuda = cuda_module()
            _TWINS[key] = cuda.jit(device=True, inline="always")(for_cuda(payload))
    return _TWINS[key]


def cuda_device(py_func):
    """Compile a plain Python function (e.g. a specialised template) as an inlined CUDA device function."""
    return cuda_module().jit(device=True, inline="always")(for_cuda(py_func))


def for_cuda(py_func):
    """A copy of ``py_func`` whose global names of shared functions point to their CUDA twins.

    Only the names the code uses are rebound (its ``co_names``), so twins are made for the call
    graph below ``py_func`` and nothing else.
    """
    namespace = dict(py_func.__globals__)
    for name in py_func.__code__.co_names:
        value = namespace.get(name)
        if id(value) in _SHARED and _SHARED[id(value)][0] is value:
            namespace[name] = cuda_twin(value)
    return _copy_function(py_func, namespace)


def _copy_function(py_func, namespace):
    twin = types.FunctionType(
        py_func.__code__, namespace, py_func.__name__, py_func.__defaults__, py_func.__closure__
    )
    twin.__qualname__ = py_func.__qualname__
    twin.__doc__ = py_func.__doc__
    twin.__module__ = py_func.__module__
    return twin
