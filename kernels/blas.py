"""GEMM and TRMM straight into the BLAS that NumPy ships, for updates in place on strided views.

``numpy.matmul`` cannot accumulate into an existing array (C -= A B needs a temporary and a second
pass over C) nor work on a view with a row stride without copying it, and it multiplies a
triangular matrix as a full one. The Householder accumulation of ``orthogonal`` does exactly that on
large matrices, so on the CPU it calls the CBLAS ``?gemm`` and ``?trmm`` of the OpenBLAS that NumPy
loaded (found through threadpoolctl), with beta = 1 and the views' leading dimensions. Where that
library is not found (another BLAS, another platform), ``available()`` is False and callers use
NumPy.

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
_UPPER = 121
_LOWER = 122
_NON_UNIT = 131
_UNIT = 132
_LEFT = 141
_RIGHT = 142

# Symbol patterns and their integer type: NumPy's wheels carry an ILP64 OpenBLAS with prefixed,
# suffixed names. ``{}`` is the routine (sgemm, dtrmm, ...).
_NAMINGS = (("scipy_cblas_{}64_", ctypes.c_int64), ("cblas_{}64_", ctypes.c_int64), ("cblas_{}", ctypes.c_int))
_PREFIXES = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}


@functools.lru_cache(maxsize=None)
def _routines(dtype: np.dtype):
    """{"gemm": ..., "trmm": ..., "path": ...}: both routines for ``dtype`` from one library and one
    naming, NumPy's OpenBLAS first; None if no library has both."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    pointer = ctypes.c_void_p
    libraries = [info for info in threadpool_info() if info.get("internal_api") == "openblas"]
    libraries.sort(key=lambda info: not _inside_numpy(info["filepath"]))  # stable: NumPy's first
    for info in libraries:
        try:
            library = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for naming, integer in _NAMINGS:
            gemm_ = getattr(library, naming.format(_PREFIXES[dtype] + "gemm"), None)
            trmm_ = getattr(library, naming.format(_PREFIXES[dtype] + "trmm"), None)
            if gemm_ is None or trmm_ is None:
                continue
            gemm_.restype = trmm_.restype = None
            # order, trans a, trans b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc
            gemm_.argtypes = [integer] * 6 + [scalar, pointer, integer, pointer, integer, scalar, pointer, integer]
            # order, side, uplo, trans a, diag, m, n, alpha, a, lda, b, ldb
            trmm_.argtypes = [integer] * 7 + [scalar, pointer, integer, pointer, integer]
            return {"gemm": gemm_, "trmm": trmm_, "path": info["filepath"]}
    return None


def _inside_numpy(path: str) -> bool:
    """Whether ``path`` lies in NumPy's installation: numpy/ (macOS wheels: numpy/.dylibs) or the
    numpy.libs/ folder of its Linux wheels."""
    home = os.path.dirname(os.path.realpath(np.__file__))
    path = os.path.realpath(path)
    return any(path.startswith(folder + os.sep) for folder in (home, home + ".libs"))


def library_path(dtype=np.float32) -> str | None:
    """The file of the BLAS that ``gemm`` and ``trmm`` call for ``dtype``, or None (not ``available``)."""
    routines = _routines(np.dtype(dtype)) if np.dtype(dtype) in _PREFIXES else None
    return None if routines is None else routines["path"]


def available(dtype) -> bool:
    """Whether ``gemm`` and ``trmm`` can run for float32/float64 ``dtype``."""
    dtype = np.dtype(dtype)
    return dtype in _PREFIXES and _routines(dtype) is not None


def _check_views(routine: str, dtype, **arrays) -> None:
    for name, array in arrays.items():
        if array.dtype != dtype or array.ndim != 2 or (array.shape[1] > 1 and array.strides[1] != array.itemsize):
            raise ValueError(f"{routine}: {name} must be a 2-D {dtype} view with unit stride on its last axis")


def _leading(array) -> int:
    return max(array.strides[0] // array.itemsize, array.shape[1], 1)


def gemm(alpha, a, b, beta, c, transpose_a=False, transpose_b=False):
    """c = alpha * op(a) @ op(b) + beta * c, in place, op = transpose when asked.

    a, b, c are 2-D NumPy arrays (views allowed) of one float dtype whose last axis has unit stride;
    ``a``/``b`` are given as stored (op applies the transpose). No copy is made.
    """
    _check_views("gemm", c.dtype, a=a, b=b, c=c)
    m, n = c.shape
    k = a.shape[0] if transpose_a else a.shape[1]
    if (a.shape[1] if transpose_a else a.shape[0]) != m or (b.shape[1] if transpose_b else b.shape[0]) != k or \
            (b.shape[0] if transpose_b else b.shape[1]) != n:
        raise ValueError(f"gemm: shapes {a.shape}{'^T' if transpose_a else ''} @ {b.shape}{'^T' if transpose_b else ''} -> {c.shape} do not match")
    if m == 0 or n == 0:
        return
    _routines(c.dtype)["gemm"](_ROW_MAJOR, _TRANS if transpose_a else _NO_TRANS, _TRANS if transpose_b else _NO_TRANS,
                               m, n, k, alpha, a.ctypes.data, _leading(a), b.ctypes.data, _leading(b), beta,
                               c.ctypes.data, _leading(c))


def trmm(alpha, a, b, lower, unit=False, transpose=False, right=False):
    """b = alpha * op(a) @ b, or alpha * b @ op(a) if ``right``, in place, for a triangular ``a``
    (square; only its triangle is read), op = transpose when asked.

    Args:
        alpha: scalar.
        a: (k, k), k = b's rows (b's columns if ``right``), triangular as stored: lower if ``lower``,
            else upper; with ``unit``, its diagonal is taken as ones and not read.
        b: (m, n), overwritten. a and b are 2-D NumPy arrays (views allowed) of one float dtype whose
            last axis has unit stride. No copy is made.
    """
    _check_views("trmm", b.dtype, a=a, b=b)
    m, n = b.shape
    k = n if right else m
    if a.shape != (k, k):
        side = "columns" if right else "rows"
        raise ValueError(f"trmm: a must be square and match b's {k} {side}, got {a.shape} and {b.shape}")
    if m == 0 or n == 0:
        return
    _routines(b.dtype)["trmm"](_ROW_MAJOR, _RIGHT if right else _LEFT, _LOWER if lower else _UPPER,
                               _TRANS if transpose else _NO_TRANS, _UNIT if unit else _NON_UNIT, m, n, alpha,
                               a.ctypes.data, _leading(a), b.ctypes.data, _leading(b))
