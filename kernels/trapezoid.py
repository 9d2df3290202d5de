"""The Gaussian inputs of Haar members: only the lower trapezoid of normal((n, m)) is drawn.

Reflector k of an (n, m) member (n >= m) is built from G[k:, k] of its Gaussians
G = normal((n, m)) (``orthogonal``), so row i needs its entries 0..min(i, m - 1): the triangle of the
first m rows and every row below. For a square member that is about half of the values. Drawing a
short row through the fill kernels' span costs more than the values (a span's set-up, its scalar
ends, a vector loop that never warms up), so the triangle's rows are drawn differently:

* the counter groups that hold the triangle's entries are listed in order, each once (a group
  shared by the end of one row and the start of the next belongs to the first), and cut into chunks
  of ``CHUNK_GROUPS``;
* one vectorised loop draws a chunk's groups into a contiguous buffer, with the same Philox calls,
  transforms and ``emit`` as the fill kernels' group loops: the same bits;
* a second loop copies each row's part of them to its place in the member (the last group of the
  triangle stops at row m).

The rows below m are whole and contiguous, and go through the span in tiles, as ``fill_cpu``'s are.
Every entry of the trapezoid then holds exactly its value of ``normal((n, m))`` under the member's
key row, whatever the chunking and the thread count, and is written once. Above the diagonal, only
the entries that share a counter group with the end of their row are written (with their own values
too); the others keep what they held.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import cpu_jit, specialize
from .fill_cpu import SPANS, TILE
from .philox import philox_group
from .samplers import METHOD_NORMAL, box_muller24, box_muller53, emit_native

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
def _row_groups(i, m, group):
    """(first, last + 1): the counter groups listed for row i < m of the triangle, entries 0..i of the
    row; empty when the previous row's last group already holds them."""
    first = (i * m) // group
    if i > 0:
        first = max(first, ((i - 1) * m + i - 1) // group + 1)
    return first, (i * m + i) // group + 1


@_inline
def triangle_starts(m, group):
    """starts (m + 1,) int64: starts[i] is the number of groups listed before row i, starts[m] their
    total."""
    starts = np.empty(m + 1, dtype=np.int64)
    total = 0
    for i in range(m):
        starts[i] = total
        first, end = _row_groups(i, m, group)
        total += max(end - first, 0)
    starts[m] = total
    return starts


@_inline
def _first_row(starts, first):
    """The row of the triangle that listed group ``first`` belongs to."""
    return np.searchsorted(starts, first, side="right") - 1


@_inline
def _row_run(starts, m, group, row, first, j, count):
    """(group, take): where listed group first + j, in ``row``, lies in the member, and how many of
    the chunk's listed groups from it are that row's (at most count - j). They are consecutive."""
    row_first, _ = _row_groups(row, m, group)
    skip = first + j - starts[row]
    return row_first + skip, min(starts[row + 1] - starts[row] - skip, count - j)


@_inline
def _list_groups(starts, m, group, first, count, offsets):
    """Listed groups first .. first + count - 1 into ``offsets`` (uint32), relative to the first of
    them; return that group's index (uint64). A chunk spans fewer than 2^32 groups of the member:
    its rows number at most ``count`` and hold m < 2^22 entries each (the member's n * m >= m^2
    entries fit in memory)."""
    row = _first_row(starts, first)
    base = np.uint64(_row_run(starts, m, group, row, first, 0, count)[0])
    j = 0
    while j < count:
        at, take = _row_run(starts, m, group, row, first, j, count)
        for t in range(take):
            offsets[j + t] = np.uint32(at + t - base)
        j += take
        row += 1
    return base


@_kernel
def _listed_normal24(out, base, offsets, count, k0, k1, stream, p):
    """out[4 j: 4 j + 4] = the float32 normal values of group base + offsets[j], j < count, as
    ``fill_cpu``'s group loop writes them (contiguous stores, 32-bit offsets: LLVM vectorises the
    loop; 64-bit offsets left it scalar)."""
    for j in range(count):
        w0, w1, w2, w3 = philox_group(base + np.uint64(offsets[np.uint64(j)]), stream, _U0, k0, k1)
        c0, s0 = box_muller24(w0, w1)
        c1, s1 = box_muller24(w2, w3)
        o = np.uint64(4 * j)
        emit_native(out, o, c0, True, p, 0)
        emit_native(out, o + _U1, s0, True, p, 0)
        emit_native(out, o + _U2, c1, True, p, 0)
        emit_native(out, o + _U3, s1, True, p, 0)


# Sized by its 64-bit words, AVX2 runs the float64 loop at 4 lanes; at 8, two registers of words
# an iteration, it draws 1.3x faster (float32: no change; bench/RESULTS.md).
@cpu_jit(lanes={"avx2": 8})
def _listed_normal53(out, base, offsets, count, k0, k1, stream, p):
    """As ``_listed_normal24`` for float64 values, two a group."""
    for j in range(count):
        w0, w1, w2, w3 = philox_group(base + np.uint64(offsets[np.uint64(j)]), stream, _U0, k0, k1)
        c, s = box_muller53(w0, w1, w2, w3)
        o = np.uint64(2 * j)
        emit_native(out, o, c, True, p, 0)
        emit_native(out, o + _U1, s, True, p, 0)


@_inline
def _scatter_rows(flat, limit, packed, starts, m, group, first, count):
    """The values of listed groups first .. first + count - 1, held in ``packed`` in that order, into
    their places in flat (n * m,), below ``limit``: a row's groups are consecutive there too, so
    each row's part is one contiguous copy."""
    row = _first_row(starts, first)
    j = 0
    while j < count:
        at, take = _row_run(starts, m, group, row, first, j, count)
        target = at * group
        source = np.uint64(j * group)
        for lane in range(np.uint64(max(min(take * group, limit - target), 0))):
            flat[np.uint64(target) + lane] = packed[source + lane]
        j += take
        row += 1


# Bound per compute dtype by ``kernel``: the float32 or float64 span, listed loop and chunk, and the
# normal plan's group size.
span = listed = compute_dtype = _chunk = group_size = None


def _chunk_template(flat, m, starts, chunk, c, k0, k1, stream, p):
    """Chunk c (``chunk`` listed groups) of the triangle of one member, flat (n * m,)."""
    first = c * chunk
    count = min(chunk, starts[m] - first)
    offsets = np.empty(count, dtype=np.uint32)
    packed = np.empty(count * group_size, dtype=compute_dtype)
    base = _list_groups(starts, m, group_size, first, count, offsets)
    listed(packed, base, offsets, count, k0, k1, stream, p)
    _scatter_rows(flat, m * m, packed, starts, m, group_size, first, count)


def _gaussians_template(g, keys, p, chunk):
    """The lower trapezoid of each member of g (B, n, m), n >= m, C-contiguous: member b's entries
    (i, k), k <= i, of normal((n, m)) under key row b of ``keys`` (B, 3) (``philox.key_table``).
    ``p`` are the normal plan's parameters, ``chunk`` the listed groups a task draws. The tasks
    (triangle chunks, then tiles of the rows below m) run over ``prange``."""
    batch, n, m = g.shape
    starts = triangle_starts(m, group_size)
    chunks = (starts[m] + chunk - 1) // chunk
    tiles = ((n - m) * m + TILE - 1) // TILE
    tasks = chunks + tiles
    for t in prange(batch * tasks):
        b = t // tasks
        task = t - b * tasks
        flat = g[b].reshape(-1)
        if task < chunks:
            _chunk(flat, m, starts, chunk, task, keys[b, 0], keys[b, 1], keys[b, 2], p)
        else:
            start = m * m + (task - chunks) * TILE
            span(flat, start, start, min(TILE, n * m - start), group_size, METHOD_NORMAL, keys[b, 0], keys[b, 1],
                 keys[b, 2], p, 0)


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
        names = {"span": SPANS[kind], "compute_dtype": compute, "group_size": group}
        chunk = _kernel(specialize(_chunk_template, "_" + kind, listed=_listed_normal53 if double else _listed_normal24,
                                   **names))
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
    if chunk < 1 or (chunk + normal.group + 1) * m // normal.group >= 2**32:
        raise ValueError(f"trapezoid.draw: chunk must be a positive int whose rows' groups fit 32-bit offsets "
                         f"for {m} columns, got {chunk}")
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    with threads.parallel_section():
        kernel(g.dtype == np.float64, parallel)(g, keys, normal.params, np.int64(chunk))
    return g
