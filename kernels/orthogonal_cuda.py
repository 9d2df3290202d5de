"""CUDA twin of ``orthogonal`` (numba-cuda kernels, CuPy arrays and cuBLAS GEMMs).

* ``small`` — one thread block per member, for the small matrices of a Dense stack: the block builds
  the member's reflectors (one thread per column, ``householder``), then each thread accumulates its
  own columns of Q reflector after reflector, last to first. A column of Q only ever depends on itself
  and on the read-only reflectors, so the accumulation needs no barrier. The whole batch is one launch.
* ``reflectors`` and ``larft`` — the pieces of the GEMM path for large matrices: one thread per
  column for the reflectors; one block per member for the compact-WY factor T, whose column r is
  computed in parallel (``larft_entry``) once the columns before it are done. The GEMMs themselves
  are CuPy's (cuBLAS batched), through the same ``orthogonal.accumulate`` that the CPU runs.
* ``scale_round`` — gain and the shared 16-bit rounding, elementwise.

Every kernel runs in the CUDA simulator in the tests and compiles to PTX for sm_80 and sm_90; only
the CuPy glue (``haar_cupy``, ``scale_round_cupy``) needs a real GPU.
"""

from __future__ import annotations

import numpy as np

from ._jit import cuda_module, for_cuda, specialize
from .bits import round_16bit
from .orthogonal import householder, larft_entry

THREADS = 128
# Members up to this size go through the one-block kernel.
SMALL_MAX_ELEMENTS = 256 * 256

cuda = None  # bound to the ``numba.cuda`` module by ``_compile``


def _column_reflector(g, tau, b, k):
    """Turn column k of member b of the Gaussians g (B, n, m) into reflector k; tau[b, k] its tau."""
    n = g.shape[1]
    s = g[b, k, k] - g[b, k, k]
    for i in range(k + 1, n):
        s += g[b, i, k] * g[b, i, k]
    u0, tau[b, k] = householder(g[b, k, k], s)
    scale = 1 / u0
    for i in range(k + 1, n):
        g[b, i, k] *= scale
    g[b, k, k] = 1
    for i in range(k):
        g[b, i, k] = 0


def _reflectors_kernel(g, tau):
    """Grid (B, ceil(m / THREADS)): one thread per (member, column)."""
    k = cuda.blockIdx.y * THREADS + cuda.threadIdx.x
    if k < g.shape[2]:
        _column_reflector(g, tau, cuda.blockIdx.x, k)


def _small_kernel(g, tau, q):
    """Grid (B,): member b's Q (n, m) into q[b] from its Gaussians g[b] (overwritten by reflectors)."""
    b = cuda.blockIdx.x
    n, m = g.shape[1], g.shape[2]
    k = cuda.threadIdx.x
    while k < m:
        _column_reflector(g, tau, b, k)
        k += THREADS
    cuda.syncthreads()
    j = cuda.threadIdx.x
    while j < m:
        for i in range(n):
            q[b, i, j] = 1 if i == j else 0
        # Column j of Q = H_0 ... H_{m-1} e_j: reflectors k > j leave e_j unchanged.
        for k in range(j, -1, -1):
            w = q[b, k, j]
            for i in range(k + 1, n):
                w += g[b, i, k] * q[b, i, j]
            w *= tau[b, k]
            q[b, k, j] -= w
            for i in range(k + 1, n):
                q[b, i, j] -= g[b, i, k] * w
        j += THREADS


def _larft_kernel(gram, tau, t):
    """Grid (B,), block (b,): T (B, b, b) of each member's panel from gram = V^T V and tau."""
    member = cuda.blockIdx.x
    c = cuda.threadIdx.x
    width = gram.shape[1]
    for r in range(width):
        t[member, c, r] = 0
    cuda.syncthreads()
    for r in range(width):
        if c == r:
            t[member, r, r] = tau[member, r]
        elif c < r:
            t[member, c, r] = larft_entry(gram[member], tau[member], t[member], c, r)
        cuda.syncthreads()


def _scale_round_kernel(q, gain, out, fmt):
    """out (uint16 view) = gain * q rounded to the 16-bit format ``fmt``, grid-stride."""
    i = cuda.grid(1)
    while i < q.size:
        bits, _ = round_16bit(gain * q[i], fmt)
        out[i] = np.uint16(bits)
        i += cuda.gridsize(1)


_TEMPLATES = {
    "reflectors": _reflectors_kernel,
    "small": _small_kernel,
    "larft": _larft_kernel,
    "scale_round": _scale_round_kernel,
}
_SOURCES: dict[str, object] = {}
_KERNELS: dict[str, object] = {}


def kernel_source(name: str):
    """The plain-Python kernel ``name`` with its names bound for CUDA (for compile_ptx)."""
    if name not in _SOURCES:
        cuda_ = cuda_module()
        column = cuda_.jit(device=True, inline="always")(for_cuda(specialize(_column_reflector, "", cuda=cuda_)))
        _SOURCES[name] = for_cuda(specialize(_TEMPLATES[name], "", cuda=cuda_, _column_reflector=column))
    return _SOURCES[name]


def kernel(name: str):
    """The compiled CUDA kernel ``name`` (compiled lazily per argument types)."""
    if name not in _KERNELS:
        _KERNELS[name] = cuda_module().jit(kernel_source(name))
    return _KERNELS[name]


# Launchers: arrays Numba accepts (device arrays; NumPy arrays in the simulator), on ``stream`` -------


def launch_reflectors(g, tau, stream=0):
    members, _, m = g.shape
    kernel("reflectors")[(members, (m + THREADS - 1) // THREADS), THREADS, stream](g, tau)


def launch_small(g, tau, q, stream=0):
    kernel("small")[g.shape[0], THREADS, stream](g, tau, q)


def launch_larft(gram, tau, t, stream=0):
    kernel("larft")[gram.shape[0], gram.shape[1], stream](gram, tau, t)


def launch_scale_round(q, gain, out, fmt, stream=0):
    blocks = max(1, min((q.size + THREADS - 1) // THREADS, 4096))
    kernel("scale_round")[blocks, THREADS, stream](q, gain, out, np.int64(fmt))


# CuPy glue (needs a real GPU) ----------------------------------------------------------------------


def _numba(array):
    return cuda_module().as_cuda_array(array, sync=False)


def _stream():
    import cupy

    return cuda_module().external_stream(cupy.cuda.get_current_stream().ptr)


def haar_cupy(g):
    """Haar matrices (B, n, m) from Gaussian inputs g (B, n, m), CuPy arrays on the current stream."""
    import cupy

    from .orthogonal import accumulate

    members, n, m = g.shape
    tau = cupy.empty((members, m), dtype=g.dtype)
    stream = _stream()
    if n * m <= SMALL_MAX_ELEMENTS:
        q = cupy.empty_like(g)
        launch_small(_numba(g), _numba(tau), _numba(q), stream)
        return q
    launch_reflectors(_numba(g), _numba(tau), stream)

    def larft(gram, panel_tau, t):
        launch_larft(_numba(gram), _numba(panel_tau), _numba(t), _stream())

    return accumulate(g, tau, cupy, larft)


def scale_round_cupy(q, gain, out, fmt):
    launch_scale_round(_numba(q), gain, _numba(out), fmt, _stream())
