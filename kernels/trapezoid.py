"""The Gaussian inputs of Haar members: only the lower trapezoid of normal((n, m)) is drawn.

Reflector k of an (n, m) member (n >= m) is built from G[k:, k] of its Gaussians
G = normal((n, m)) (``orthogonal``), so row i needs its entries 0..min(i, m - 1): the triangle of the
first m rows and every row below. For a square member that is about half of the values. Drawing a
short row through the fill kernels' span costs more than the values (a span's set-up, its scalar
ends, a vector loop that never warms up), so the trapezoid is drawn by counter groups:

* the counter groups that hold its entries are listed in order, each once (a group shared by the
  end of one row and the start of the next belongs to the first; the rows below m are whole, so
  their groups follow the triangle's as one run), and cut into chunks of ``CHUNK_GROUPS``, the
  triangle's apart from those of the rows below;
* one vectorised loop draws a chunk's groups, with the same Philox calls, transforms and ``emit``
  as the fill kernels' group loops: the same bits. A chunk of consecutive whole groups (every
  chunk of the rows below m but a last one that ends inside a group) is drawn in place, its
  counters an induction variable; any other through a list of its groups' offsets into a
  contiguous buffer, whose runs of consecutive groups (a row's) are then copied to their places
  (the member's last group stops at its end).

Every entry of the trapezoid then holds exactly its value of ``normal((n, m))`` under the member's
key row, whatever the chunking and the thread count, and is written once. Above the diagonal, only
the entries that share a counter group with the end of their row are written (with their own values
too); the others keep what they held. Only the normal group loops are compiled, not the fill
kernels' span with its every sampler.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import cpu_jit, specialize
from .philox import philox_group
from .samplers import box_muller24, box_muller53, emit_native

CHUNK_GROUPS = 4096  # counter groups per chunk: 16 Ki float32 or 8 Ki float64 values, drawn and copied in L2

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)

_kernel = cpu_jit()
# The listing's helpers are inlined into the chunk kernel, where the group size is a constant: its
# divisions become shifts.
_inline = cpu_jit(forceinline=True)


@_inline
def _row_groups(i, n, m, group):
    """(first, last + 1): the counter groups listed for row i < m of the trapezoid, its entries
    0..i; i = m stands for every row below m, whole. Empty when the previous row's last group
    already holds them."""
    first = (i * m) // group
    if i > 0:
        first = max(first, ((i - 1) * m + i - 1) // group + 1)
    if i < m:
        return first, (i * m + i) // group + 1
    return first, (n * m + group - 1) // group


@_inline
def listing_starts(n, m, group):
    """starts (m + 2,) int64: starts[i] is the number of groups listed before row i (i <= m, row m
    standing for the rows below it), starts[m + 1] their total."""
    starts = np.empty(m + 2, dtype=np.int64)
    total = 0
    for i in range(m + 1):
        starts[i] = total
        first, end = _row_groups(i, n, m, group)
        total += max(end - first, 0)
    starts[m + 1] = total
    return starts


@_inline
def _first_row(starts, first):
    """The row of the listing (``listing_starts``) that listed group ``first`` belongs to."""
    return np.searchsorted(starts, first, side="right") - 1


@_inline
def _row_run(starts, n, m, group, row, first, j, count):
    """(group, take): where listed group first + j, in ``row``, lies in the member, and how many of
    the chunk's listed groups from it are that row's (at most count - j). They are consecutive."""
    row_first, _ = _row_groups(row, n, m, group)
    skip = first + j - starts[row]
    return row_first + skip, min(starts[row + 1] - starts[row] - skip, count - j)


@_inline
def _list_groups(starts, n, m, group, first, count, offsets):
    """Listed groups first .. first + count - 1 into ``offsets`` (uint32), relative to the first of
    them; return that group's index (uint64). A chunk spans fewer than 2^32 groups of the member:
    a chunk of the triangle has at most ``count`` rows of m < 2^22 entries (the member's
    n * m >= m^2 entries fit in memory), one of the rows below m ``count`` consecutive groups."""
    row = _first_row(starts, first)
    base = np.uint64(_row_run(starts, n, m, group, row, first, 0, count)[0])
    j = 0
    while j < count:
        at, take = _row_run(starts, n, m, group, row, first, j, count)
        for t in range(take):
            offsets[j + t] = np.uint32(at + t - base)
        j += take
        row += 1
    return base


@_inline
def _group_normal24(out, o, group, k0, k1, stream, p):
    """out[o: o + 4] = the float32 normal values of counter group ``group``, as ``fill_cpu``'s group
    loop writes them."""
    w0, w1, w2, w3 = philox_group(group, stream, _U0, k0, k1)
    c0, s0 = box_muller24(w0, w1)
    c1, s1 = box_muller24(w2, w3)
    emit_native(out, o, c0, True, p, 0)
    emit_native(out, o + _U1, s0, True, p, 0)
    emit_native(out, o + _U2, c1, True, p, 0)
    emit_native(out, o + _U3, s1, True, p, 0)


@_inline
def _group_normal53(out, o, group, k0, k1, stream, p):
    """As ``_group_normal24`` for float64 values, two a group."""
    w0, w1, w2, w3 = philox_group(group, stream, _U0, k0, k1)
    c, s = box_muller53(w0, w1, w2, w3)
    emit_native(out, o, c, True, p, 0)
    emit_native(out, o + _U1, s, True, p, 0)


# The loops over listed groups (contiguous stores, 32-bit offsets: LLVM vectorises them; 64-bit
# offsets left them scalar) and over consecutive ones (the counter an induction variable: 1.15x
# faster than through loaded offsets). Sized by its 64-bit words, AVX2 runs a float64 loop at 4
# lanes; at 8, two registers of words an iteration, it draws 1.3x faster (float32: no change;
# bench/RESULTS.md).
@_kernel
def _listed_normal24(out, base, offsets, count, k0, k1, stream, p):
    """out[4 j: 4 j + 4] = the float32 normal values of group base + offsets[j], j < count."""
    for j in range(count):
        _group_normal24(out, np.uint64(4 * j), base + np.uint64(offsets[np.uint64(j)]), k0, k1, stream, p)


@_kernel
def _run_normal24(out, base, count, k0, k1, stream, p):
    """out[4 j: 4 j + 4] = the float32 normal values of group base + j, j < count."""
    for j in range(count):
        _group_normal24(out, np.uint64(4 * j), base + np.uint64(j), k0, k1, stream, p)


@cpu_jit(lanes={"avx2": 8})
def _listed_normal53(out, base, offsets, count, k0, k1, stream, p):
    """out[2 j: 2 j + 2] = the float64 normal values of group base + offsets[j], j < count."""
    for j in range(count):
        _group_normal53(out, np.uint64(2 * j), base + np.uint64(offsets[np.uint64(j)]), k0, k1, stream, p)


@cpu_jit(lanes={"avx2": 8})
def _run_normal53(out, base, count, k0, k1, stream, p):
    """out[2 j: 2 j + 2] = the float64 normal values of group base + j, j < count."""
    for j in range(count):
        _group_normal53(out, np.uint64(2 * j), base + np.uint64(j), k0, k1, stream, p)


@_inline
def _scatter_rows(flat, packed, starts, n, m, group, first, count):
    """The values of listed groups first .. first + count - 1, held in ``packed`` in that order, into
    their places in flat (n * m,): a row's groups are consecutive there too, so each row's part is
    one contiguous copy."""
    row = _first_row(starts, first)
    limit = n * m
    j = 0
    while j < count:
        at, take = _row_run(starts, n, m, group, row, first, j, count)
        target = at * group
        source = np.uint64(j * group)
        for lane in range(np.uint64(max(min(take * group, limit - target), 0))):
            flat[np.uint64(target) + lane] = packed[source + lane]
        j += take
        row += 1


# Bound per compute dtype by ``kernel``: the float32 or float64 loops and chunk, and the normal
# plan's group size.
listed = run = compute_dtype = _chunk = group_size = None


def _chunk_template(flat, n, m, starts, chunk, triangle, c, k0, k1, stream, p):
    """Chunk c of the trapezoid of one member, flat (n * m,): ``chunk`` listed groups of the triangle
    (its first ``triangle`` chunks), or past those, of the rows below it."""
    first = c * chunk if c < triangle else starts[m] + (c - triangle) * chunk
    count = min(chunk, (starts[m] if c < triangle else starts[m + 1]) - first)
    at, take = _row_run(starts, n, m, group_size, _first_row(starts, first), first, 0, count)
    start = at * group_size
    if take == count and start + count * group_size <= n * m:  # whole consecutive groups: in place
        run(flat[start : start + count * group_size], np.uint64(at), count, k0, k1, stream, p)
        return
    offsets = np.empty(count, dtype=np.uint32)
    base = _list_groups(starts, n, m, group_size, first, count, offsets)
    packed = np.empty(count * group_size, dtype=compute_dtype)
    listed(packed, base, offsets, count, k0, k1, stream, p)
    _scatter_rows(flat, packed, starts, n, m, group_size, first, count)


def _gaussians_template(g, keys, p, chunk):
    """The lower trapezoid of each member of g (B, n, m), n >= m, C-contiguous: member b's entries
    (i, k), k <= i, of normal((n, m)) under key row b of ``keys`` (B, 3) (``philox.key_table``).
    ``p`` are the normal plan's parameters, ``chunk`` the listed groups a task draws. The tasks
    (every member's chunks: its triangle's, then its lower rows') run over ``prange``."""
    batch, n, m = g.shape
    starts = listing_starts(n, m, group_size)
    triangle = (starts[m] + chunk - 1) // chunk
    chunks = triangle + (starts[m + 1] - starts[m] + chunk - 1) // chunk
    for t in prange(batch * chunks):
        b = t // chunks
        _chunk(g[b].reshape(-1), n, m, starts, chunk, triangle, t - b * chunks, keys[b, 0], keys[b, 1], keys[b, 2],
               p)


_KERNELS: dict = {}


def kernel(double: bool, parallel: bool):
    """``draw(g, keys, params, chunk)`` for float64 (``double``) or float32 Gaussians, ``params`` the
    normal plan's: the members' tasks over every thread (``parallel``) or on the calling thread
    (inside the batch kernels, one member at a time)."""
    from . import plan

    key = (double, parallel)
    if key not in _KERNELS:
        kind = "float64" if double else "float32"
        compute = np.float64 if double else np.float32
        group = np.int64(plan.normal(0.0, 1.0, np.dtype(compute)).group)
        names = {"compute_dtype": compute, "group_size": group}
        loops = (_listed_normal53, _run_normal53) if double else (_listed_normal24, _run_normal24)
        chunk = _kernel(specialize(_chunk_template, "_" + kind, listed=loops[0], run=loops[1], **names))
        compile_ = cpu_jit(parallel=parallel, cache=True)  # on disk: compiling it takes seconds
        suffix = ("_parallel_" if parallel else "_") + kind
        _KERNELS[key] = compile_(specialize(_gaussians_template, suffix, _chunk=chunk, **names))
    return _KERNELS[key]


def draw(g, keys, parallel=True, chunk=CHUNK_GROUPS):
    """The lower trapezoid of g (B, n, m) (float32 or float64, C-contiguous, n >= m): member b's
    entries of normal((n, m)) under row b of the key table ``keys`` (B, 3), by every thread
    (``parallel``) or the calling one, in tasks of ``chunk`` listed groups; most entries above the
    diagonal are left as they were (see the module docstring). Returns g."""
    from . import plan, threads

    normal = plan.normal(0.0, 1.0, g.dtype)
    m = g.shape[2]
    if chunk < 1 or (chunk + normal.group + 1) * m // normal.group + chunk >= 2**32:
        raise ValueError(f"trapezoid.draw: chunk must be a positive int whose rows' groups fit 32-bit offsets "
                         f"for {m} columns, got {chunk}")
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    with threads.parallel_section():
        kernel(g.dtype == np.float64, parallel)(g, keys, normal.params, np.int64(chunk))
    return g
