"""CPU kernels: fill an array (or a block of a larger tensor) with a sampler's values, in parallel.

The work is cut into tiles of ``TILE`` consecutive elements of one run of the block (see
``layout.Block``); Numba's ``prange`` spreads the tiles over the threads. The driver calls a C
callback per tile (``_jit.cpu_callback``), which holds the tile's code: linked into the ``prange``
loop instead, that code was optimised and compiled four more times (the loop's body, its two
wrappers, the driver) at a kind's first call. Each tile is filled in two passes while it is hot in
cache:

1. a vectorised pass computes the attempt-0 candidate of every element, one Philox call per group,
   branch-free, writes the value or, for a rejected candidate, the NaN sentinel, and counts the
   rejections;
2. if any, a redraw pass finds the sentinels in the tile (eight elements a step, see ``compress``)
   and redraws them round after round (attempts 1, 2, ...): each round computes the candidates of
   the pending elements in one vectorised loop into a small buffer, writes them, and keeps the
   offsets rejected again.

No mask is allocated: the output itself records what is pending, and the redraw buffers hold only
the rejected elements of one tile. Vectorisation needs care: a loop must live in its own function
(inside a ``prange`` body LLVM leaves it scalar), index with unsigned integers (no wraparound checks)
and, in the redraw pass, load and store contiguously (a scattered store into the output keeps the
loop scalar, three times slower).

The redraw loop stops after ``MAX_ATTEMPTS`` attempts and reports the elements left. With the
proposals of ``plan`` an attempt is accepted with probability above 0.3, so a valid configuration
reaches that limit with probability below 1e-10000: the limit only turns a numerically degenerate
interval (one that no candidate can round into) into an error instead of a hang. It never lets a
value out of bounds.
"""

from __future__ import annotations

import numpy as np
from numba import carray, prange

from . import compress
from ._jit import ALLOCATION_FAILED, call_callback, cpu_callback, cpu_jit, data_pointer, specialize
from .philox import philox_group
from .samplers import (
    KINDS,
    LANES,
    MAX_ATTEMPTS,
    METHOD_FINE_UNIFORM,
    METHOD_NORMAL,
    METHOD_UNIFORM,
    box_muller24,
    box_muller53,
    draw_template,
    fill_elements_template,
    kind_of,
    robert24,
    robert53,
    run_start,
    uniform24,
    uniform53,
)

TILE = 1 << 14  # elements; a multiple of every group size. 64 KiB of float32: the redraw pass hits L2.

_U0 = np.uint64(0)
_U1 = np.uint64(1)
_U2 = np.uint64(2)
_U3 = np.uint64(3)

# Every function of a span realigns its frame: the sampler loops spill many vectors, and each spill
# is then an aligned move, whatever the callers' frames (see _jit).
_kernel = cpu_jit(aligned_stack=True)
# The group loops of the 16-bit kinds: their narrowest type is the 16-bit store, for which LLVM's
# maximized bandwidth vectorises at 32 lanes, two registers for each float32 value, and the normal
# loop then spilled; at 16 lanes it compiles as the float32 kind's does (bench/RESULTS.md).
_loop_16bit = cpu_jit(lanes={"avx512": 16}, aligned_stack=True)
# The redraw pass's candidate loops: one Philox call and one transform per element, long chains of
# dependent steps in 64-bit lanes. Sized by those words, AVX2 runs them four lanes an iteration and
# waits on their latency; at eight, each iteration carries two independent registers of words
# (bench/RESULTS.md).
_candidate_loop = cpu_jit(lanes={"avx2": 8}, aligned_stack=True)
_driver = cpu_jit(parallel=True, cache=True)
# A block of one tile runs on the calling thread, without waking the thread pool (a small tensor's
# call); the same template, its prange a plain loop.
_serial_driver = cpu_jit(cache=True)

# Names the templates below call, bound per output kind by ``_compile`` (see samplers.KINDS).
emit = pending = candidate = compute_dtype = None
_groups_uniform = _groups_normal = _groups_robert = _draw = _fill_span = _fill_elements = None
_find_pending = _emit_round = _candidates_uniform = _candidates_normal = _candidates_robert = None
storage_dtype = None


@_kernel
def _rejected(good):
    """1 for a rejected candidate, 0 for an accepted one (branch-free)."""
    return np.int64(1) - np.int64(good)


@_kernel
def _count(rejected, good):
    """``rejected`` plus 1 if the candidate was rejected, as int32 (branch-free). The vectorised
    group loops count in 32-bit lanes, as wide as their float32 outputs, not in 64-bit ones (which
    took twice the mask conversions and subtractions); a span holds at most ``TILE`` elements."""
    return np.int32(rejected + np.int32(1) - np.int32(good))


# Pass 1: whole groups, vectorised ------------------------------------------------------------------


def _groups_uniform24(out, o, g0, g1, k0, k1, stream, p, fmt):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        base = np.uint64(o + 4 * (g - g0))
        rejected = _count(rejected, emit(out, base, uniform24(w0), True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U1, uniform24(w1), True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U2, uniform24(w2), True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U3, uniform24(w3), True, p, fmt))
    return rejected


def _groups_normal24(out, o, g0, g1, k0, k1, stream, p, fmt):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        c0, s0 = box_muller24(w0, w1)
        c1, s1 = box_muller24(w2, w3)
        base = np.uint64(o + 4 * (g - g0))
        rejected = _count(rejected, emit(out, base, c0, True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U1, s0, True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U2, c1, True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U3, s1, True, p, fmt))
    return rejected


def _groups_robert24(out, o, g0, g1, k0, k1, stream, p, fmt, method):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        z0, ok0 = robert24(method, w0, w1, p[4], p[5], p[6], p[7], p[8])
        z1, ok1 = robert24(method, w2, w3, p[4], p[5], p[6], p[7], p[8])
        base = np.uint64(o + 2 * (g - g0))
        rejected = _count(rejected, emit(out, base, z0, ok0, p, fmt))
        rejected = _count(rejected, emit(out, base + _U1, z1, ok1, p, fmt))
    return rejected


def _groups_uniform53(out, o, g0, g1, k0, k1, stream, p, fmt):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        base = np.uint64(o + 2 * (g - g0))
        rejected = _count(rejected, emit(out, base, uniform53(w0, w1), True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U1, uniform53(w2, w3), True, p, fmt))
    return rejected


def _groups_normal53(out, o, g0, g1, k0, k1, stream, p, fmt):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        c, s = box_muller53(w0, w1, w2, w3)
        base = np.uint64(o + 2 * (g - g0))
        rejected = _count(rejected, emit(out, base, c, True, p, fmt))
        rejected = _count(rejected, emit(out, base + _U1, s, True, p, fmt))
    return rejected


def _groups_robert53(out, o, g0, g1, k0, k1, stream, p, fmt, method):
    rejected = np.int32(0)
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        z, ok = robert53(method, w0, w1, w2, w3, p[4], p[5], p[6], p[7], p[8])
        rejected = _count(rejected, emit(out, np.uint64(o + (g - g0)), z, ok, p, fmt))
    return rejected


# A span of a run, the tiles' callback, and the drivers ------------------------------------------


def _fill_span_template(out, o, i, count, group, method, k0, k1, stream, p, fmt):
    """Fill out[o:o+count] with elements i..i+count-1 (global flat indices); return failures."""
    if method >= METHOD_FINE_UNIFORM:  # the fine methods' rare requests: element by element
        return _fill_elements(out, o, i, count, group, method, k0, k1, stream, p, fmt)
    end = i + count
    # Pass 1. Elements before the first whole group and after the last one go one by one.
    g0 = (i + group - 1) // group
    g1 = end // group
    rejected = 0
    if g0 >= g1:
        for e in range(i, end):
            rejected += _rejected(_draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt))
    else:
        for e in range(i, g0 * group):
            rejected += _rejected(_draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt))
        body = o + g0 * group - i
        if method == METHOD_UNIFORM:
            rejected += _groups_uniform(out, body, g0, g1, k0, k1, stream, p, fmt)
        elif method == METHOD_NORMAL:
            rejected += _groups_normal(out, body, g0, g1, k0, k1, stream, p, fmt)
        else:
            rejected += _groups_robert(out, body, g0, g1, k0, k1, stream, p, fmt, method)
        for e in range(g1 * group, end):
            rejected += _rejected(_draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt))
    if rejected == 0:
        return 0
    # Pass 2: find the sentinels, then redraw them round after round.
    offsets = np.empty(rejected + compress.BLOCK, dtype=np.int64)  # the scans write past the last slot
    n = _find_pending(out, o, count, offsets, fmt)
    values = np.empty(n, dtype=compute_dtype)
    accepted = np.empty(n, dtype=np.bool_)
    attempt = 1
    while n > 0 and attempt < MAX_ATTEMPTS:
        if method == METHOD_UNIFORM:
            _candidates_uniform(i, offsets, n, attempt, group, method, k0, k1, stream, p, values, accepted)
        elif method == METHOD_NORMAL:
            _candidates_normal(i, offsets, n, attempt, group, method, k0, k1, stream, p, values, accepted)
        else:
            _candidates_robert(i, offsets, n, attempt, group, method, k0, k1, stream, p, values, accepted)
        n = _emit_round(out, o, offsets, n, values, accepted, p, fmt)
        attempt += 1
    return n


def _find_pending_template(out, o, count, offsets, fmt):
    """The offsets (in out[o:o+count]) of the sentinels, ascending, into ``offsets``; return their
    number. ``offsets`` has ``compress.BLOCK`` slots more than the sentinels: eight elements per step
    (``compress``), then the last few one by one."""
    n = 0
    j = 0
    while j + compress.BLOCK <= count:
        n = compress.compress_pending(out, o + j, j, offsets, n)
        j += compress.BLOCK
    for k in range(j, count):
        offsets[n] = k  # branch-free: the slot is kept only when the element is pending
        n += np.int64(pending(out, o + k, fmt))
    return n


def _candidates_template(i, offsets, n, attempt, group, method, k0, k1, stream, p, values, accepted):
    """Candidates at ``attempt`` of elements i + offsets[:n], into values and accepted.

    ``candidate`` is bound to one method's lane function; loads and stores are contiguous, so LLVM
    vectorises the loop."""
    shift = np.uint64(group >> 1)  # log2 of the group size 1, 2 or 4
    mask = np.uint64(group - 1)
    for k in range(n):
        e = np.uint64(i + offsets[k])
        w0, w1, w2, w3 = philox_group(e >> shift, stream, np.uint64(attempt), k0, k1)
        values[k], accepted[k] = candidate(method, np.int64(e & mask), w0, w1, w2, w3, p)


def _emit_round_template(out, o, offsets, n, values, accepted, p, fmt):
    """Write a round's candidates; keep in offsets the ones rejected again; return their number."""
    kept = 0
    for k in range(n):
        j = offsets[k]
        offsets[kept] = j
        kept += _rejected(emit(out, o + j, values[k], accepted[k], p, fmt))
    return kept


# The tiles' C callback: the arrays as pointers and lengths, p as a pointer to its 10 values.
_TILES_SIGNATURE = "int64(voidptr, int64, voidptr, voidptr, voidptr, int64, voidptr, int64, int64, int64, int64, " \
                   "int64, voidptr, int64, int64)"


def _tiles_callback_template(out_address, size, counts_address, starts_address, strides_address, leads, keys_address,
                             key_rows, base0, run_length, group, method, p_address, fmt, tile):
    """Fill tile ``tile`` of the block; return its number of failures, or
    ``ALLOCATION_FAILED`` if a redraw buffer could not be allocated (an exception cannot leave a C
    callback). Tile t is elements TILE * (t % tiles_per_run) on of run t // tiles_per_run,
    tiles_per_run = ceil(run_length / TILE). The arrays of ``_fill_template`` come as pointers: out
    (``size`` elements of the kind's storage), the three int64 lead arrays (``leads`` entries), the
    uint64 key table (key_rows, 3) and the 10 parameters in the compute dtype."""
    out = carray(out_address, size, storage_dtype)
    lead_counts = carray(counts_address, leads, np.int64)
    lead_starts = carray(starts_address, leads, np.int64)
    lead_strides = carray(strides_address, leads, np.int64)
    keys = carray(keys_address, (key_rows, 3), np.uint64)
    q = carray(p_address, 10, compute_dtype)
    p = (q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8], q[9])
    tiles_per_run = (run_length + TILE - 1) // TILE
    run = tile // tiles_per_run
    first = (tile % tiles_per_run) * TILE
    count = min(TILE, run_length - first)
    start = run_start(run, lead_counts, lead_starts, lead_strides, base0) + first
    key = run % keys.shape[0]
    try:
        return _fill_span(out, run * run_length + first, start, count, group, method, keys[key, 0], keys[key, 1],
                          keys[key, 2], p, fmt)
    except Exception:
        return np.int64(ALLOCATION_FAILED)


def _fill_template(tiles, out, lead_counts, lead_starts, lead_strides, keys, base0, run_length, group, method, p,
                   fmt):
    """Fill ``out`` (1-D, C-contiguous) with a block of a tensor, one tile per ``prange`` iteration
    through the kind's C callback at ``tiles``; return the number of failures, or
    ``ALLOCATION_FAILED``.

    Args:
        tiles: the address of the kind's C callback (``tiles_callback(kind).address``), int64.
        out: float32, float64, or uint16 (16-bit formats) array of nruns * run_length elements.
        lead_counts, lead_starts, lead_strides: int64 arrays describing the block's runs (``layout``).
        keys: uint64 (K, 3) key table: run r draws with key (keys[r % K, 0], keys[r % K, 1]) from
            stream keys[r % K, 2] (``philox.key_table``).
        base0: int64 flat offset added to every run start.
        run_length: elements per run (int64, > 0).
        group: G of the counter contract for (method, precision).
        method: a samplers.METHOD_* code.
        p: (10,) array of the parameters (loc, scale, lo, hi, a, width, alpha, m, sign) in the compute
            dtype.
        fmt: samplers.FORMAT_NATIVE or a bits.FORMAT_* 16-bit code.
    """
    tiles_per_run = (run_length + TILE - 1) // TILE
    nruns = out.size // run_length
    failures = 0
    errors = 0
    for t in prange(nruns * tiles_per_run):
        result = call_callback(tiles, (data_pointer(out), np.int64(out.size), data_pointer(lead_counts),
                                       data_pointer(lead_starts), data_pointer(lead_strides),
                                       np.int64(lead_counts.size), data_pointer(keys), np.int64(keys.shape[0]),
                                       base0, run_length, group, method, data_pointer(p), fmt, np.int64(t)))
        errors += result == ALLOCATION_FAILED
        failures += max(result, 0)
    return ALLOCATION_FAILED if errors else failures


_GROUP_LOOPS = {
    False: {"_groups_uniform": _groups_uniform24, "_groups_normal": _groups_normal24, "_groups_robert": _groups_robert24},
    True: {"_groups_uniform": _groups_uniform53, "_groups_normal": _groups_normal53, "_groups_robert": _groups_robert53},
}


def _compile(kind: str, double: bool):
    """Compile the templates for one output kind; return its parallel driver."""
    names = KINDS[kind]
    suffix = "_" + kind
    lanes = LANES[double]
    loop_kernel = _loop_16bit if kind in ("bfloat16", "float16") else _kernel
    steps = {name: loop_kernel(specialize(loop, suffix, **names)) for name, loop in _GROUP_LOOPS[double].items()}
    steps["_draw"] = _kernel(specialize(draw_template, suffix, **names))
    steps["_fill_elements"] = _kernel(specialize(fill_elements_template, suffix, _draw=steps["_draw"]))
    steps["_find_pending"] = _kernel(specialize(_find_pending_template, suffix, **names))
    steps["_emit_round"] = _kernel(specialize(_emit_round_template, suffix, **names))
    for method, name in ((METHOD_UNIFORM, "uniform"), (METHOD_NORMAL, "normal"), ("robert", "robert")):
        steps["_candidates_" + name] = _candidate_loop(
            specialize(_candidates_template, f"_{name}{suffix}", candidate=lanes[method], **names)
        )
    span = _kernel(specialize(_fill_span_template, suffix, **steps, **names))
    return span, _driver(specialize(_fill_template, suffix))


_COMPILED = {kind: _compile(kind, kind == "float64") for kind in KINDS}
# Per output kind: the span function (fills a span of one run; other kernels call it, e.g. the
# orthogonal one for its Gaussian inputs) and the parallel driver, which takes the kind's
# ``tiles_callback``.
SPANS = {kind: span for kind, (span, _) in _COMPILED.items()}
DRIVERS = {kind: driver for kind, (_, driver) in _COMPILED.items()}
# The driver of one-tile blocks, for every kind (it binds no kind's names; each kind's storage
# dtype compiles a signature of its own).
SERIAL_DRIVER = _serial_driver(specialize(_fill_template, "_serial"))
_CALLBACKS: dict = {}


def tiles_callback(kind: str):
    """``kind``'s ``_tiles_callback_template`` as a C callback, compiled (or loaded from the disk cache)
    at its first use."""
    if kind not in _CALLBACKS:
        template = specialize(_tiles_callback_template, "_" + kind, _fill_span=SPANS[kind],
                              storage_dtype=KINDS[kind]["storage_dtype"], compute_dtype=KINDS[kind]["compute_dtype"])
        _CALLBACKS[kind] = cpu_callback(template, _TILES_SIGNATURE)
    return _CALLBACKS[kind]


def launch(out: np.ndarray, block, plan, keys: np.ndarray) -> None:
    """Fill ``out`` (C-contiguous, ``block.out_shape``, ``plan.dtype``) on the CPU.

    Args:
        out: destination array; 16-bit outputs are written through a uint16 view.
        block: the ``layout.Block`` that ``out`` holds.
        plan: the ``plan.Plan`` of the distribution.
        keys: the key table of the tensor(s), ``philox.key_table(seeds, streams)``: one row, or one
            row per run of a batch.

    Raises:
        RuntimeError: an element found no accepted candidate in MAX_ATTEMPTS attempts (a numerically
            degenerate interval); ``out`` then holds NaN there.
    """
    from . import threads

    if block.size == 0:
        return
    flat = out.reshape(-1).view(plan.storage_dtype)
    kind = kind_of(plan.double, plan.fmt)
    keys, base0, run_length, group, method, params, fmt = plan.kernel_arguments(block, keys)
    arguments = (np.int64(tiles_callback(kind).address), flat,
                 *(np.ascontiguousarray(a, dtype=np.int64) for a in (block.lead_counts, block.lead_starts,
                   block.lead_strides)), keys, base0, run_length, group, method, np.array(params), fmt)
    if run_length <= TILE and flat.size == run_length:  # one tile
        failures = SERIAL_DRIVER(*arguments)
    else:
        with threads.parallel_section():
            failures = DRIVERS[kind](*arguments)
    if failures == ALLOCATION_FAILED:
        raise MemoryError(f"could not allocate the redraw buffers of a {TILE}-element tile")
    if failures:
        raise RuntimeError(
            f"{failures} element(s) found no value within the bounds after {MAX_ATTEMPTS} attempts: the "
            f"interval is too narrow for {plan.dtype.name} arithmetic (parameters {plan.params})"
        )
