"""Haar-distributed orthogonal matrices from Householder reflectors built straight from Gaussians.

Keras's Orthogonal (and PyTorch's orthogonal_) factor a Gaussian matrix with a full QR and keep Q,
its columns multiplied by the signs of R's diagonal, which makes Q Haar-distributed (Mezzadri,
"How to generate random matrices from the classical compact groups", 2007). The QR costs twice the
work that is needed: Householder QR builds reflector k from column k of the Gaussian matrix *after*
reflectors 1..k-1 have been applied to it, and by rotation invariance that updated column is again a
standard Gaussian vector, independent of the previous ones (Stewart, "The efficient generation of
random orthogonal matrices with an application to condition estimators", SIAM J. Numer. Anal. 1980).
So reflector k is built directly from fresh Gaussians, no matrix is factored, and only the
accumulation of Q from the reflectors remains: (4/3) n^3 flops for a square matrix instead of
(8/3) n^3.

The sign fix is folded into the reflector choice: reflector k maps its vector x onto +||x|| e_k (R's
diagonal positive), with Parlett's cancellation-free formula for x0 - ||x|| when x0 > 0
(``householder``).

Gaussian inputs and the counter contract: member b of a batch reads the (n, m) standard normal matrix
G = warpinit.normal((n, m), seed, stream + b) in the compute dtype (n >= m: Keras's ``flat_shape``),
and reflector k is built from G[k:, k]; the entries above the diagonal are unused. The counter
contract covers G. Q depends on the order of floating-point operations: it is bit-identical run to run
on one machine and thread count, and agrees across machines, thread counts and devices within the
orthogonality tolerance.

Two ways to accumulate Q = H_0 H_1 ... H_{m-1} E (E: the first m columns of the identity):

* small matrices, many of them (``small``): one member per thread, reflectors applied four at a time
  (a 4-wide compact WY block) with row-wise vectorised loops while the member stays in cache;
* large matrices (``accumulate``): blocked compact WY (Schreiber & Van Loan 1989) where nearly all
  flops are GEMMs, written once against the array API that NumPy and CuPy share, so the GPU's cuBLAS
  path runs the very code the CPU tests run.

The shared scalar math (``householder``, ``larft_member``) is compiled for the CPU and for CUDA
(``orthogonal_cuda`` holds the GPU kernels).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from ._jit import CPU_OPTIONS, shared
from .bits import round_16bit

BLOCK = 128  # reflectors per compact-WY panel of the GEMM path
SMALL_BLOCK = 4  # reflectors applied together by the small-matrix kernel
# The small-matrix kernel wins while a member fits in L2 and the batch keeps every thread busy.
SMALL_MAX_ELEMENTS = 512 * 512

_kernel = numba.njit(**CPU_OPTIONS)
_parallel = numba.njit(parallel=True, cache=True, **CPU_OPTIONS)


@shared
def householder(x0, s):
    """The reflector H = I - tau v v^T, v[0] = 1, that maps x = (x0, x1, ...) onto +||x|| e1.

    Args:
        x0: the first entry of x; s: the sum of squares of the others (same float dtype).

    Returns:
        (u0, tau): v = x / u0 with v[0] replaced by 1. u0 = x0 - ||x|| (Parlett's form when x0 > 0);
        x = x0 e1 with x0 >= 0 gives H = I: u0 = 1, tau = 0.
    """
    norm = math.sqrt(x0 * x0 + s)
    u0 = -s / (x0 + norm) if x0 > 0 else x0 - norm
    if u0 == 0:
        return u0 - u0 + 1, u0 - u0
    return u0, 2 * u0 * u0 / (u0 * u0 + s)


@shared
def larft_entry(gram, tau, t, c, r):
    """Entry (c, r), c < r, of the compact-WY factor T: -tau_r (T[c, c:r] . gram[c:r, r]).

    T is upper triangular and built column by column (LAPACK's larft): column r needs the columns
    before it, and its entries are independent of each other (the GPU computes them in parallel).
    ``gram`` is V^T V of the panel.
    """
    acc = t[c, c] * gram[c, r]
    for d in range(c + 1, r):
        acc += t[c, d] * gram[d, r]
    return -tau[r] * acc


@shared
def larft_member(gram, tau, t, b):
    """The upper triangular T of H_1 ... H_b = I - V T V^T for one member: gram (b, b) = V^T V,
    tau (b,), t (b, b) written."""
    for r in range(b):
        for c in range(b):
            t[r, c] = 0
    for r in range(b):
        t[r, r] = tau[r]
        for c in range(r):
            t[c, r] = larft_entry(gram, tau, t, c, r)


# CPU kernels --------------------------------------------------------------------------------------


@_kernel
def _member_reflectors(g, tau, sums):
    """Overwrite one member's Gaussians g (n, m) with its reflectors V (unit diagonal, zero above);
    tau (m,) receives the taus. Row-wise, so that a large member streams through memory once."""
    n, m = g.shape
    for k in range(m):
        sums[k] = 0
    for i in range(1, n):
        for k in range(min(i, m)):
            sums[k] += g[i, k] * g[i, k]
    for k in range(m):
        u0, tau[k] = householder(g[k, k], sums[k])
        sums[k] = 1 / u0  # reused: the scale of column k
    for i in range(n):
        for k in range(min(i, m)):
            g[i, k] *= sums[k]
        if i < m:
            g[i, i] = 1
            for k in range(i + 1, m):
                g[i, k] = 0


@_parallel
def reflectors_cpu(g, tau):
    """``_member_reflectors`` for every member of g (B, n, m) in parallel; tau is (B, m)."""
    for b in prange(g.shape[0]):
        _member_reflectors(g[b], tau[b], np.empty(g.shape[2], dtype=g.dtype))


@numba.njit(cache=True, **CPU_OPTIONS)
def larft_cpu(gram, tau, t):
    """``larft_member`` for every member: gram (B, b, b), tau (B, b), t (B, b, b).

    Serial on purpose: it runs between OpenBLAS GEMMs, and a parallel Numba region there leaves its
    worker threads spinning against OpenBLAS's (twice the time for a 2048^2 matrix)."""
    for b in range(gram.shape[0]):
        larft_member(gram[b], tau[b], t[b], gram.shape[1])


@_kernel
def _axpy(y, a, x, start, stop):
    """y[start:stop] += a * x[start:stop] (vectorised; unsigned indices skip wraparound checks)."""
    for j in range(np.uint64(start), np.uint64(stop)):
        y[j] += a * x[j]


@_kernel
def _member_small(v, tau, q, w, t, gram):
    """Q (n, m) of one member from its reflectors v (n, m) and tau, SMALL_BLOCK reflectors at a time.

    For each block (last to first): W = V^T Q, W = T W, Q -= V W over rows and columns >= the block's
    first index, each row of Q loaded once per block and reused from L1 for every reflector."""
    n, m = v.shape
    for i in range(n):
        for j in range(m):
            q[i, j] = 0
    for j in range(m):
        q[j, j] = 1
    for j0 in range((m - 1) // SMALL_BLOCK * SMALL_BLOCK, -1, -SMALL_BLOCK):
        b = min(SMALL_BLOCK, m - j0)
        for r in range(b):
            for c in range(b):
                acc = v[j0, j0 + r] * v[j0, j0 + c]
                for i in range(j0 + 1, n):
                    acc += v[i, j0 + r] * v[i, j0 + c]
                gram[r, c] = acc
        larft_member(gram, tau[j0:], t, b)
        for r in range(b):
            for j in range(j0, m):
                w[r, j] = 0
        for i in range(j0, n):
            for r in range(b):
                _axpy(w[r], v[i, j0 + r], q[i], j0, m)
        for r in range(b):  # W = T W, T upper triangular: row r mixes rows r..b-1
            for j in range(j0, m):
                w[r, j] *= t[r, r]
            for d in range(r + 1, b):
                _axpy(w[r], t[r, d], w[d], j0, m)
        for i in range(j0, n):
            for r in range(b):
                _axpy(q[i], -v[i, j0 + r], w[r], j0, m)


@_parallel
def small_cpu(g, tau, q):
    """Haar Q (B, n, m) from Gaussians g (B, n, m), one member per thread (g is overwritten by V)."""
    batch, n, m = g.shape
    for b in prange(batch):
        _member_reflectors(g[b], tau[b], np.empty(m, dtype=g.dtype))
        _member_small(g[b], tau[b], q[b], np.empty((SMALL_BLOCK, m), dtype=g.dtype),
                      np.empty((SMALL_BLOCK, SMALL_BLOCK), dtype=g.dtype),
                      np.empty((SMALL_BLOCK, SMALL_BLOCK), dtype=g.dtype))


# The GEMM path, for NumPy and CuPy ---------------------------------------------------------------


def accumulate(v, tau, xp, larft, block=BLOCK):
    """Q = H_0 ... H_{m-1} E from reflectors v (B, n, m) and tau (B, m), as blocked GEMMs.

    Args:
        v, tau: reflectors (``reflectors_cpu`` or its CUDA twin).
        xp: numpy or cupy.
        larft: fills T (B, b, b) from the Gram matrices (B, b, b) and taus (B, b) of a panel.
        block: reflectors per panel.

    Returns:
        (B, n, m) with orthonormal columns.
    """
    batch, n, m = v.shape
    q = xp.zeros_like(v)
    identity = xp.eye(min(block, m), dtype=v.dtype)
    # One scratch buffer for the products subtracted from Q: a fresh one per panel costs page faults
    # comparable to the GEMMs themselves.
    scratch = xp.empty(batch * n * max(m - min(block, m), 1), dtype=v.dtype)
    for j0 in range((m - 1) // block * block, -1, -block):
        j1 = min(j0 + block, m)
        panel = v[:, j0:, j0:j1]  # (B, n - j0, b)
        panel_t = xp.swapaxes(panel, 1, 2)
        t = xp.empty((batch, j1 - j0, j1 - j0), dtype=v.dtype)
        larft(xp.matmul(panel_t, panel), xp.ascontiguousarray(tau[:, j0:j1]), t)
        if j1 < m:
            # The columns already formed: Q[j0:, j1:] <- (I - V T V^T) Q[j0:, j1:].
            trailing = q[:, j0:, j1:]
            w = xp.matmul(t, xp.matmul(panel_t, trailing))
            product = scratch[: trailing.size].reshape(trailing.shape)
            xp.matmul(panel, w, out=product)
            trailing -= product
        # The panel's own columns: (I - V T V^T) E = E - V (T V1^T), V1 the panel's top b rows.
        q[:, j0:, j0:j1] = -xp.matmul(panel, xp.matmul(t, panel_t[:, :, : j1 - j0]))
        q[:, j0:j1, j0:j1] += identity[: j1 - j0, : j1 - j0]
    return q


def haar_cpu(g):
    """Haar matrices with orthonormal columns (B, n, m) from Gaussian inputs g (B, n, m), on the CPU.

    ``g`` (float32 or float64, C-contiguous) is overwritten by the reflectors. Small members go through
    ``small_cpu``, one member per thread; large ones through the GEMM path, where a batch is split
    over threads that each run single-threaded BLAS (twice as fast as threading each GEMM of a
    1024^2 member) and a single matrix gets every BLAS thread.
    """
    import concurrent.futures

    from threadpoolctl import threadpool_limits

    from . import threads

    batch, n, m = g.shape
    tau = np.empty((batch, m), dtype=g.dtype)
    with threads.parallel_section():
        if n * m <= SMALL_MAX_ELEMENTS:
            q = np.empty_like(g)
            small_cpu(g, tau, q)
            return q
        reflectors_cpu(g, tau)
    workers = min(batch, numba.get_num_threads())
    if workers == 1:
        return accumulate(g, tau, np, larft_cpu)
    chunks = np.array_split(np.arange(batch), workers)
    q = np.empty_like(g)

    def run(members):
        q[members[0] : members[-1] + 1] = accumulate(
            g[members[0] : members[-1] + 1], tau[members[0] : members[-1] + 1], np, larft_cpu
        )

    with threadpool_limits(1, user_api="blas"), concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, chunks))
    return q


# Output ----------------------------------------------------------------------------------------------


@_parallel
def scale_round_cpu(q, gain, out, fmt):
    """out = gain * q rounded to the 16-bit format ``fmt`` (bits.FORMAT_*): q float32 (flat), out the
    uint16 view of the result (flat), through the shared round-to-nearest-even routine."""
    for i in prange(q.size):
        bits, _ = round_16bit(gain * q[i], fmt)
        out[i] = np.uint16(bits)
