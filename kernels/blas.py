"""GEMM straight into the BLAS that NumPy ships, for updates in place on strided views.

``numpy.matmul`` cannot accumulate into an existing array (C -= A B needs a temporary and a second
pass over C) nor work on a view with a row stride without copying it. The Householder accumulation of
``orthogonal`` does exactly that on large matrices, so on the CPU it calls the CBLAS ``?gemm`` of the
OpenBLAS that NumPy loaded (found through threadpoolctl), with beta = 1 and the views' leading
dimensions. Where that library is not found (another BLAS, another platform), ``available()`` is
False and callers use NumPy.

Which BLAS runs decides Q's rounding, so it is chosen by the installation alone, never by what else
the process has loaded: NumPy's own OpenBLAS (the one inside NumPy's installation) comes before any
other OpenBLAS that threadpoolctl lists (SciPy's, say, once SciPy is imported). The other SGEMMs a
process may hold were measured against it (bench/RESULTS.md): torch's MKL is reachable through its
Fortran ``sgemm_`` but was slower on the CPUs measured, and MKL's results depend on memory alignment
unless its conditional numerical reproducibility is set, which torch's build does not export; the
matrix products of JAX and TensorFlow cannot be called on NumPy memory without their runtimes.
"""

from __future__ import annotations

import ctypes
import functools
import os

import numpy as np

_ROW_MAJOR = 101
_NO_TRANS = 111
_TRANS = 112

# (symbol, integer type): NumPy's wheels carry an ILP64 OpenBLAS with prefixed, suffixed names.
_CANDIDATES = {
    np.dtype(np.float32): (("scipy_cblas_sgemm64_", ctypes.c_int64), ("cblas_sgemm64_", ctypes.c_int64),
                           ("cblas_sgemm", ctypes.c_int)),
    np.dtype(np.float64): (("scipy_cblas_dgemm64_", ctypes.c_int64), ("cblas_dgemm64_", ctypes.c_int64),
                           ("cblas_dgemm", ctypes.c_int)),
}


@functools.lru_cache(maxsize=None)
def _gemm_function(dtype: np.dtype):
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    libraries = [info for info in threadpool_info() if info.get("internal_api") == "openblas"]
    libraries.sort(key=lambda info: not _inside_numpy(info["filepath"]))  # stable: NumPy's first
    for info in libraries:
        try:
            library = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for symbol, integer in _CANDIDATES[dtype]:
            function = getattr(library, symbol, None)
            if function is None:
                continue
            function.restype = None
            function._library_path = info["filepath"]
            function.argtypes = [integer, integer, integer, integer, integer, integer, scalar,
                                 ctypes.c_void_p, integer, ctypes.c_void_p, integer, scalar,
                                 ctypes.c_void_p, integer]
            return function
    return None


def _inside_numpy(path: str) -> bool:
    """Whether ``path`` lies in NumPy's installation: numpy/ (macOS wheels: numpy/.dylibs) or the
    numpy.libs/ folder of its Linux wheels."""
    home = os.path.dirname(os.path.realpath(np.__file__))
    path = os.path.realpath(path)
    return any(path.startswith(folder + os.sep) for folder in (home, home + ".libs"))


def library_path(dtype=np.float32) -> str | None:
    """The file of the BLAS that ``gemm`` calls for ``dtype``, or None (not ``available``)."""
    function = _gemm_function(np.dtype(dtype)) if np.dtype(dtype) in _CANDIDATES else None
    return None if function is None else function._library_path


def available(dtype) -> bool:
    """Whether ``gemm`` can run for float32/float64 ``dtype``."""
    dtype = np.dtype(dtype)
    return dtype in _CANDIDATES and _gemm_function(dtype) is not None


def gemm(alpha, a, b, beta, c, transpose_a=False, transpose_b=False):
    """c = alpha * op(a) @ op(b) + beta * c, in place, op = transpose when asked.

    a, b, c are 2-D NumPy arrays (views allowed) of one float dtype whose last axis has unit stride;
    ``a``/``b`` are given as stored (op applies the transpose). No copy is made.
    """
    function = _gemm_function(c.dtype)
    for name, array in (("a", a), ("b", b), ("c", c)):
        if array.dtype != c.dtype or array.ndim != 2 or (array.shape[1] > 1 and array.strides[1] != array.itemsize):
            raise ValueError(f"gemm: {name} must be a 2-D {c.dtype} view with unit stride on its last axis")
    m, n = c.shape
    k = a.shape[0] if transpose_a else a.shape[1]
    if (a.shape[1] if transpose_a else a.shape[0]) != m or (b.shape[1] if transpose_b else b.shape[0]) != k or \
            (b.shape[0] if transpose_b else b.shape[1]) != n:
        raise ValueError(f"gemm: shapes {a.shape}{'^T' if transpose_a else ''} @ {b.shape}{'^T' if transpose_b else ''} -> {c.shape} do not match")
    if m == 0 or n == 0:
        return
    item = c.itemsize
    function(_ROW_MAJOR, _TRANS if transpose_a else _NO_TRANS, _TRANS if transpose_b else _NO_TRANS, m, n, k,
             alpha, a.ctypes.data, max(a.strides[0] // item, a.shape[1], 1), b.ctypes.data,
             max(b.strides[0] // item, b.shape[1], 1), beta, c.ctypes.data, max(c.strides[0] // item, n, 1))
