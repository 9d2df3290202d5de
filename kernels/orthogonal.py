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
and reflector k is built from G[k:, k]; the entries above the diagonal are unused (the CPU
kernels do not draw them: ``trapezoid``). The counter contract covers G. Q depends on the order of
floating-point operations: it is bit-identical run to run on one machine and thread count, and
agrees across machines, thread counts and devices within the orthogonality tolerance.

Two ways to accumulate Q = H_0 H_1 ... H_{m-1} E (E: the first m columns of the identity):

* small matrices, many of them (``small``): one member per thread, reflectors applied four at a time
  (a 4-wide compact WY block, ``rank_update.apply_block``: W = V^T Q summed in vector registers a
  strip of columns at a time) while the member stays in cache;
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
from numba import carray, prange

from . import rank_update
from ._jit import ALLOCATION_FAILED, call_callback, cpu_callback, cpu_jit, data_pointer, shared, specialize
from .samplers import KINDS, ROUND_16BIT, kind_of

BLOCK = 128  # reflectors per compact-WY panel of the GEMM path
SMALL_BLOCK = rank_update.BLOCK  # reflectors applied together by the small-matrix kernel (its Gram is written for four)
# The small-matrix kernel wins while a member fits in L2 and the batch keeps every thread busy.
SMALL_MAX_ELEMENTS = 512 * 512

_kernel = cpu_jit()
_parallel = cpu_jit(parallel=True, cache=True)


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


REFLECTOR_ROWS = 128  # rows per partial column sum of the reflectors


def _member_reflectors_template(g, tau):
    """Overwrite one member's Gaussians g (n, m) with its reflectors V (unit diagonal, zero above);
    tau (m,) receives the taus. Row-wise, so that a large member streams through memory once.

    Column k's sum of squares (rows k+1.. of g) is added up in fixed chunks of REFLECTOR_ROWS rows
    and the chunks' sums then in chunk order: the same sums, and the same V, whether one thread or
    all of them (``member_reflectors_cpu``) run the chunks. Chunks go out from both ends in turn
    (rows grow longer down a member's triangle), so equal shares of them hold equal work."""
    n, m = g.shape
    chunks = max((n - 1 + REFLECTOR_ROWS - 1) // REFLECTOR_ROWS, 1)  # rows 1..n-1
    partial = np.zeros((chunks, m), dtype=g.dtype)
    for task in prange(chunks):
        c = task // 2 if task % 2 == 0 else chunks - 1 - task // 2
        sums = partial[c]
        for i in range(1 + c * REFLECTOR_ROWS, min(1 + (c + 1) * REFLECTOR_ROWS, n)):
            for k in range(min(i, m)):
                sums[k] += g[i, k] * g[i, k]
    scale = np.empty(m, dtype=g.dtype)
    for k in range(m):
        s = partial[0, k]
        for c in range(1, chunks):
            s += partial[c, k]
        u0, tau[k] = householder(g[k, k], s)
        scale[k] = 1 / u0
    for i in prange(n):
        for k in range(min(i, m)):
            g[i, k] *= scale[k]
        if i < m:
            g[i, i] = 1
            for k in range(i + 1, m):
                g[i, k] = 0


# One member on the calling thread (inside the batch kernels), and one large member on every thread.
_member_reflectors = _kernel(_member_reflectors_template)
member_reflectors_cpu = _parallel(_member_reflectors_template)


@_parallel
def reflectors_cpu(g, tau):
    """``_member_reflectors`` for every member of g (B, n, m) in parallel; tau is (B, m)."""
    for b in prange(g.shape[0]):
        _member_reflectors(g[b], tau[b])


@_kernel
def _add_scaled_row(acc, t, d, x):
    """acc[:d] += t[d, :d] * x: one term of ``larft_entry`` for every row above d (vectorised)."""
    row = t[d]
    for c in range(np.uint64(d)):
        acc[c] += row[c] * x


@_kernel
def _larft_member_rows(gram, tau, t, acc):
    """``larft_member`` computed a column of T at a time across its rows: the same T, bit for bit,
    as ``larft_entry``'s sums with every product and sum rounded on its own.

    Entry (c, r) is ``larft_entry``'s sum, its terms added in the same order, but the sums of all
    c < r advance together, so the loop over c vectorises (the entries of one column are
    independent). Column d of T is read as row d of its mirror in t's strictly lower triangle,
    which is zeroed at the end (every entry of t is written). acc: scratch of b entries."""
    b = t.shape[0]
    for r in range(b):
        t[r, r] = tau[r]
        for c in range(r):
            acc[c] = t[c, c] * gram[c, r]
        for d in range(1, r):
            _add_scaled_row(acc, t, d, gram[d, r])
        for c in range(r):
            t[c, r] = -tau[r] * acc[c]
            t[r, c] = t[c, r]
    for r in range(b):
        for c in range(r):
            t[r, c] = 0


@cpu_jit(cache=True)
def larft_cpu(gram, tau, t):
    """``larft_member`` for every member: gram (B, b, b), tau (B, b), t (B, b, b).

    Serial on purpose: it runs between OpenBLAS GEMMs, and a parallel Numba region there leaves its
    worker threads spinning against OpenBLAS's (twice the time for a 2048^2 matrix). It does not call
    ``larft_member``: Numba compiled that one with the fast-math flags of its first caller and kept
    the code for the signature, so after the small-matrix kernel (which contracts multiply-adds)
    it has fused multiply-adds, and T would depend on which caller compiled first."""
    acc = np.empty(gram.shape[1], dtype=t.dtype)
    for b in range(gram.shape[0]):
        _larft_member_rows(gram[b], tau[b], t[b], acc)


# The small-matrix loops may contract multiply-adds into FMAs: Q depends on the order of floating
# operations anyway (see the module docstring), and the FMAs are a quarter of the time.
_FMA = {"fastmath": {"contract"}}


@cpu_jit(forceinline=True, **_FMA)
def _block_gram(v, j0, b, gram, block):
    """gram (4, 4) = V^T V of the block's b reflectors, columns j0.. of v (zero rows and columns past
    b), row by row (contiguous reads; V is zero above its diagonal); block (n - j0, 4) receives those
    columns from row j0 on, zero past b: the packed copy that ``rank_update.apply_block`` reads.

    The ten sums are local variables, so they stay in registers (held in ``gram``, which may alias
    ``v`` for all Numba knows, each multiply-add would wait for the store of the one before). Each
    sum adds its rows in order."""
    n = v.shape[0]
    zero = v[0, 0] - v[0, 0]
    g00 = g01 = g02 = g03 = g11 = g12 = g13 = g22 = g23 = g33 = zero
    for i in range(j0, n):
        x0 = v[i, j0]
        x1 = v[i, j0 + 1] if b > 1 else zero
        x2 = v[i, j0 + 2] if b > 2 else zero
        x3 = v[i, j0 + 3] if b > 3 else zero
        row = block[i - j0]
        row[0], row[1], row[2], row[3] = x0, x1, x2, x3
        g00 += x0 * x0
        g01 += x0 * x1
        g02 += x0 * x2
        g03 += x0 * x3
        g11 += x1 * x1
        g12 += x1 * x2
        g13 += x1 * x3
        g22 += x2 * x2
        g23 += x2 * x3
        g33 += x3 * x3
    gram[0, 0], gram[0, 1], gram[0, 2], gram[0, 3] = g00, g01, g02, g03
    gram[1, 0], gram[1, 1], gram[1, 2], gram[1, 3] = g01, g11, g12, g13
    gram[2, 0], gram[2, 1], gram[2, 2], gram[2, 3] = g02, g12, g22, g23
    gram[3, 0], gram[3, 1], gram[3, 2], gram[3, 3] = g03, g13, g23, g33


@cpu_jit(**_FMA)
def _member_small(v, tau, q, t, gram, block, w):
    """Q (n, m) of one member from its reflectors v (n, m) and tau, four reflectors at a time.

    q (n, pitch) (``_scratch``) receives Q in its first m columns. For each block of four (last to
    first), ``rank_update.apply_block`` updates the rows from the block's first index over the
    columns 0..p-1, p = ``rank_update.padded_columns(m)`` (those past m are zero and stay zero), and
    the member stays in cache throughout. Scratch: ``t`` and ``gram`` (4, 4), ``block`` (n, 4), ``w``
    (4, pitch)."""
    n, m = v.shape
    zero = v[0, 0] - v[0, 0]
    columns = rank_update.padded_columns(m, q.itemsize)
    for i in range(n):
        for j in range(columns):
            q[i, j] = zero
    for j in range(m):
        q[j, j] = zero + 1
    per_vector = rank_update.lanes(q)
    q, w = q[:, :columns], w[:, :columns]
    for j0 in range((m - 1) // SMALL_BLOCK * SMALL_BLOCK, -1, -SMALL_BLOCK):
        b = min(SMALL_BLOCK, m - j0)
        _block_gram(v, j0, b, gram, block)
        for r in range(SMALL_BLOCK):
            for c in range(SMALL_BLOCK):
                t[r, c] = zero
        larft_member(gram, tau[j0:], t, b)
        entries = (t[0, 0], t[0, 1], t[0, 2], t[0, 3], t[1, 1], t[1, 2], t[1, 3], t[2, 2], t[2, 3], t[3, 3])
        # Columns from the vector that holds column j0: those before j0 are still E's, zero in every
        # row from j0, so they add and subtract exact zeros and stay zero (as the padding does).
        rank_update.apply_block(q, block[: n - j0], entries, j0, j0 // per_vector * per_vector, w)


@_kernel
def _scratch(n, m, dtype):
    """The arrays of ``_member_small`` after tau for members (n, m): Q and W with padded rows (their
    length an odd number of vectors: ``rank_update.row_pitch``), t, gram and the packed block."""
    t = np.empty((SMALL_BLOCK, SMALL_BLOCK), dtype=dtype)
    pitch = rank_update.row_pitch(rank_update.padded_columns(m, t.itemsize), t.itemsize)
    q = np.empty((n, pitch), dtype=dtype)
    w = np.empty((SMALL_BLOCK, pitch), dtype=dtype)
    return q, t, np.empty((SMALL_BLOCK, SMALL_BLOCK), dtype=dtype), np.empty((n, SMALL_BLOCK), dtype=dtype), w


@_parallel
def small_from_gaussians_cpu(g, tau, q):
    """Q (B, n, m) from given Gaussian inputs g (B, n, m) by the small-matrix kernels, one member per
    thread (g is overwritten by the reflectors, tau (B, m) receives the taus). The reference that the
    CUDA one-block kernel is compared with."""
    batch, n, m = g.shape
    for b in prange(batch):
        work, t, gram, block, w = _scratch(n, m, g.dtype)
        _member_reflectors(g[b], tau[b])
        _member_small(g[b], tau[b], work, t, gram, block, w)
        q[b] = work[:, :m]


# The small-matrix driver: one member per thread, everything in cache ------------------------------
# Templates, bound per output kind by ``_compile_small`` (as the fill kernels are): ``store`` writes
# a member to the output, ``_member_gaussians`` draws its inputs in chunks of ``chunk_groups``
# (``trapezoid``); ``round_format`` is a 16-bit kind's rounding (``samplers.ROUND_16BIT``), bound in
# its stores.
store = compute_dtype = storage_dtype = _member_gaussians = chunk_groups = round_format = None


# The member's C callback: out (batch, rows, cols) of the kind's storage, keys (batch, 3), p (10,)
# in the compute dtype, gain as a float64 (exact for a float32 one), transpose as 0 or 1.
_MEMBER_SIGNATURE = "int64(voidptr, int64, int64, int64, int64, int64, int64, voidptr, voidptr, float64, int64, int64)"


def _member_callback_template(out_address, batch, rows, cols, b, n, m, keys_address, p_address, gain, transpose,
                              fmt):
    """Member b of ``_small_template``'s output, built as that docstring says; 0, or
    ``ALLOCATION_FAILED`` if its scratch could not be allocated (an exception cannot leave a C
    callback)."""
    out = carray(out_address, (batch, rows, cols), storage_dtype)
    keys = carray(keys_address, (batch, 3), np.uint64)
    params = carray(p_address, 10, compute_dtype)
    p = (params[0], params[1], params[2], params[3], params[4], params[5], params[6], params[7], params[8], params[9])
    try:
        inputs = np.empty((1, n, m), dtype=compute_dtype)
        tau = np.empty(m, dtype=compute_dtype)
        q, t, gram, block, w = _scratch(n, m, compute_dtype)
        _member_gaussians(inputs, keys[b : b + 1], p, chunk_groups)
        g = inputs[0]
        _member_reflectors(g, tau)
        _member_small(g, tau, q, t, gram, block, w)
        store(out[b], q, compute_dtype(gain), transpose != 0, fmt)
    except Exception:
        return np.int64(ALLOCATION_FAILED)
    return np.int64(0)


def _small_template(member, out, n, m, keys, p, gain, transpose, fmt):
    """out (B, rows, cols): member b = gain * Q from the Gaussians of key row b, (n, m) or transposed,
    one member per ``prange`` iteration through the kind's C callback at ``member`` (its address,
    int64); the number of members whose scratch could not be allocated."""
    failed = 0
    for b in prange(out.shape[0]):
        result = call_callback(member, (data_pointer(out), np.int64(out.shape[0]), np.int64(out.shape[1]),
                                        np.int64(out.shape[2]), np.int64(b), n, m, data_pointer(keys),
                                        data_pointer(p), np.float64(gain), np.int64(transpose), fmt))
        failed += result == ALLOCATION_FAILED
    return failed


@cpu_jit(forceinline=True)
def _store_native(out, q, gain, transpose, fmt):
    n, m = (out.shape[1], out.shape[0]) if transpose else out.shape  # q's columns past m are padding
    if transpose:
        for j in range(m):
            for i in range(n):
                out[j, i] = gain * q[i, j]
    else:
        for i in range(n):
            for j in range(m):
                out[i, j] = gain * q[i, j]


def _store_16bit_template(out, q, gain, transpose, fmt):
    n, m = (out.shape[1], out.shape[0]) if transpose else out.shape
    for i in range(n):
        for j in range(m):
            bits, _ = round_format(gain * q[i, j], fmt)
            if transpose:
                out[j, i] = np.uint16(bits)
            else:
                out[i, j] = np.uint16(bits)


# Each output kind's member store; a 16-bit kind's rounding is bound at compile time (a run-time
# choice of format computed both roundings).
_STORES = {"float32": _store_native, "float64": _store_native} | {
    kind: cpu_jit(forceinline=True)(specialize(_store_16bit_template, "_" + kind, round_format=rounding))
    for kind, rounding in ROUND_16BIT.items()
}


def _compile_small(kind):
    names = {"store": _STORES[kind], "compute_dtype": KINDS[kind]["compute_dtype"],
             "storage_dtype": KINDS[kind]["storage_dtype"]}
    from . import trapezoid

    gaussians = trapezoid.kernel(kind == "float64", parallel=False)
    # The member's code lives in a C callback: inside the ``prange`` loop it was optimised and
    # compiled again for each of the loop's four code libraries (``_jit.cpu_callback``).
    member = cpu_callback(specialize(_member_callback_template, "_" + kind, _member_gaussians=gaussians,
                                     chunk_groups=np.int64(trapezoid.CHUNK_GROUPS), **names), _MEMBER_SIGNATURE)
    return member, _parallel(specialize(_small_template, "_" + kind))


_SMALL_DRIVERS: dict = {}  # kind -> (the member's C callback, the parallel driver), at the kind's first use


def small_cpu(out, n, m, keys, gain, transpose, fmt):
    """Fill out (B, rows, cols) (a uint16 view for 16-bit outputs, else float32/float64) with gain * Q
    of (n, m) members, member b built from the Gaussians of row b of the key table ``keys``
    (``philox.key_table``), transposed when rows < cols. One member per thread: Gaussians,
    reflectors and Q never leave the thread's cache."""
    from . import plan, threads
    double = out.dtype == np.float64
    kind = kind_of(double, fmt)
    if kind not in _SMALL_DRIVERS:
        _SMALL_DRIVERS[kind] = _compile_small(kind)
    normal = plan.normal(0.0, 1.0, np.dtype(np.float64 if double else np.float32))
    compute = np.float64 if double else np.float32
    member, driver = _SMALL_DRIVERS[kind]
    with threads.parallel_section():
        failed = driver(np.int64(member.address), out, np.int64(n), np.int64(m),
                        np.ascontiguousarray(keys, dtype=np.uint64), np.array(normal.params), compute(gain),
                        bool(transpose), np.int64(fmt))
    if failed:
        raise MemoryError(f"could not allocate the scratch of {failed} of the {out.shape[0]} {n} x {m} members")


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


def accumulate_blas(v, tau, block=BLOCK, q=None):
    """``accumulate`` on the CPU through ``blas.gemm`` and ``blas.trmm``, writing Q in place with no
    zero fill first.

    Before the panel of columns j0:j1 is applied, the columns already formed (j1 on) are zero in
    every row above j1: so W = V^T C skips those rows (V2^T C2, V2 the panel's rows from j1), and
    the panel writes its top rows of C (-V1 T W: T W copied there, then multiplied by V1) instead of
    updating zeros; only C2 -= V2 T W updates in place (beta = 1) on the strided view of Q. The
    panel's own columns are E - V U, U = T V1^T (V copied there, then multiplied by U). T and U
    (upper) and V1 (unit lower) are triangular, so their products go through TRMM, at half a GEMM's
    flops. Every entry of Q is written by a beta = 0 product or a copy before any update reads it, so
    ``q`` need not be initialised (its fresh pages are first touched by the BLAS's threads). Same
    arithmetic as ``accumulate`` member by member but for the products with those zeros, so both
    give the same Q up to the BLAS's rounding. ``q``, if given, receives the result (B, n, m)."""
    from .blas import gemm, trmm

    batch, n, m = v.shape
    if q is None:
        q = np.empty_like(v)
    w = np.empty((block, m), dtype=v.dtype)
    t = np.empty((1, block, block), dtype=v.dtype)
    u = np.empty((block, block), dtype=v.dtype)
    diagonal = np.arange(block)
    for member in range(batch):
        for j0 in range((m - 1) // block * block, -1, -block):
            j1 = min(j0 + block, m)
            width = j1 - j0
            panel = v[member, j0:, j0:j1]
            top, lower = panel[:width], panel[width:]  # V1 (unit lower triangular), V2
            factor = t[:, :width, :width]
            larft_cpu((panel.T @ panel)[None], np.ascontiguousarray(tau[member : member + 1, j0:j1]), factor)
            if j1 < m:
                trailing = q[member, j1:, j1:]  # C2; the rows j0:j1 of C are zero
                product = w[:width, : m - j1]
                gemm(1.0, lower, trailing, 0.0, product, transpose_a=True)  # W = V2^T C2
                trmm(1.0, factor[0], product, lower=False)  # T W, in place
                top_rows = q[member, j0:j1, j1:]
                top_rows[...] = product
                trmm(-1.0, top, top_rows, lower=True, unit=True)  # C1 = -V1 T W
                gemm(-1.0, lower, product, 1.0, trailing)  # C2 -= V2 T W
            # The panel's own columns: (I - V T V^T) E = E - V (T V1^T).
            upper = u[:width, :width]
            upper[...] = factor[0]
            trmm(1.0, top, upper, lower=True, unit=True, transpose=True, right=True)  # U = T V1^T
            own = q[member, j0:, j0:j1]
            own[...] = panel
            trmm(-1.0, upper, own, lower=False, right=True)  # -V U
            own[diagonal[:width], diagonal[:width]] += 1  # E's ones
    return q


def _accumulated(v, tau, q):
    """``accumulate_blas`` where NumPy's BLAS is reachable, else ``accumulate`` through NumPy."""
    from . import blas

    if blas.available(v.dtype):
        return accumulate_blas(v, tau, q=q)
    q[...] = accumulate(v, tau, np, larft_cpu)
    return q


def batch_workers(batch: int) -> int:
    """Worker threads a batch of ``batch`` large members is split over (1: one matrix, all BLAS threads)."""
    return min(batch, numba.get_num_threads())


def _over_workers(batch: int, work) -> None:
    """``work(members)`` for contiguous slices of range(batch), one per worker thread, each thread with
    single-threaded BLAS (twice as fast as threading each GEMM of a 1024^2 member)."""
    import concurrent.futures

    from threadpoolctl import threadpool_limits

    workers = batch_workers(batch)
    with threadpool_limits(1, user_api="blas"), concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, np.array_split(np.arange(batch), workers)))


def haar_cpu(g, q=None):
    """Haar matrices with orthonormal columns (B, n, m) from Gaussian inputs g (B, n, m), by the GEMM
    path (large members; ``small_cpu`` serves the small ones). ``g`` (float32 or float64,
    C-contiguous) is overwritten by the reflectors; ``q``, if given, receives the result (B, n, m),
    which saves a batch-sized temporary. A batch is split over threads that each run
    single-threaded BLAS; a single matrix gets every BLAS thread.
    """
    from . import threads

    batch, n, m = g.shape
    tau = np.empty((batch, m), dtype=g.dtype)
    with threads.parallel_section():
        if batch == 1:  # one matrix: its rows over the threads
            member_reflectors_cpu(g[0], tau[0])
        else:
            reflectors_cpu(g, tau)
    if q is None:
        q = np.empty_like(g)
    if batch_workers(batch) == 1:
        return _accumulated(g, tau, q)

    def run(members):
        first, last = members[0], members[-1] + 1
        _accumulated(g[first:last], tau[first:last], q[first:last])

    _over_workers(batch, run)
    return q


def haar_keys_cpu(keys, q):
    """Haar matrices q (B, n, m) (float32 or float64, C-contiguous, n >= m) by the GEMM path, member b
    from the Gaussians of row b of the key table ``keys`` (``philox.key_table``): the values of
    ``haar_cpu`` on ``normal((n, m))`` of each key row, for a batch (B >= 2; a single matrix goes
    through ``haar_cpu`` with every thread; ``batch_workers(B) > 1``).

    Each worker thread draws its members' Gaussians one at a time into a buffer of one member that it
    reuses, turns them into reflectors and accumulates Q straight into q[b], so the Gaussians of the
    whole batch never exist at once: a batch-sized buffer of fresh pages cost as much as drawing the
    values into it.
    """
    from . import plan, trapezoid

    batch, n, m = q.shape
    normal = plan.normal(0.0, 1.0, q.dtype)
    draw = trapezoid.kernel(q.dtype == np.float64, parallel=False)
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    chunk = np.int64(trapezoid.CHUNK_GROUPS)

    def run(members):
        g = np.empty((1, n, m), dtype=q.dtype)
        tau = np.empty((1, m), dtype=q.dtype)
        for b in members:
            draw(g, keys[b : b + 1], normal.params, chunk)
            _member_reflectors(g[0], tau[0])
            _accumulated(g, tau, q[b : b + 1])

    _over_workers(batch, run)
    return q


# Output ----------------------------------------------------------------------------------------------


def _scale_round_template(q, gain, out, fmt):
    for i in prange(q.size):
        bits, _ = round_format(gain * q[i], fmt)
        out[i] = np.uint16(bits)


_SCALE_ROUND = {kind: _parallel(specialize(_scale_round_template, "_" + kind, round_format=rounding))
                for kind, rounding in ROUND_16BIT.items()}


def scale_round_cpu(q, gain, out, fmt):
    """out = gain * q rounded to the 16-bit format ``fmt`` (bits.FORMAT_*): q float32 (flat), out the
    uint16 view of the result (flat), through that format's shared round-to-nearest-even routine
    (``samplers.ROUND_16BIT``, bound at compile time)."""
    _SCALE_ROUND[kind_of(False, fmt)](q, gain, out, fmt)
