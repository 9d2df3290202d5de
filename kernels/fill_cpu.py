"""CPU kernels: fill an array (or a block of a larger tensor) with a sampler's values, in parallel.

The work is cut into tiles of ``TILE`` consecutive elements of one run of the block (see
``layout.Block``); Numba's ``prange`` spreads the tiles over the threads. Each tile is filled in two
passes while it is hot in cache:

1. a vectorised pass computes the attempt-0 candidate of every element, one Philox call per group,
   branch-free, and writes the value or, for a rejected candidate, the NaN sentinel;
2. a scalar pass finds the sentinels in the tile and redraws each with attempts 1, 2, ... until one is
   accepted.

No mask or index array is allocated: the output itself records what is pending. The loop of pass 1
lives in its own function with unsigned indices: inside a ``prange`` body, or with signed indices
that need wraparound checks, LLVM leaves it scalar (four times slower).

The redraw loop stops after ``MAX_ATTEMPTS`` attempts for an element and reports it. With the
proposals of ``plan`` an attempt is accepted with probability above 0.3, so a valid configuration
reaches that limit with probability below 1e-10000: the limit only turns a numerically degenerate
interval (one that no candidate can round into) into an error instead of a hang. It never lets a
value out of bounds.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._jit import CPU_OPTIONS, specialize
from .philox import philox_group
from .samplers import (
    KINDS,
    MAX_ATTEMPTS,
    METHOD_NORMAL,
    METHOD_UNIFORM,
    box_muller24,
    box_muller53,
    draw_template,
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

_kernel = numba.njit(**CPU_OPTIONS)
_driver = numba.njit(parallel=True, cache=True, **CPU_OPTIONS)

# Names the templates below call, bound per output kind by ``_compile`` (see samplers.KINDS).
emit = pending = None
_groups_uniform = _groups_normal = _groups_robert = _draw = _fill_span = None


# Pass 1: whole groups, vectorised ------------------------------------------------------------------


def _groups_uniform24(out, o, g0, g1, k0, k1, stream, p, fmt):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        base = np.uint64(o + 4 * (g - g0))
        emit(out, base, uniform24(w0), True, p, fmt)
        emit(out, base + _U1, uniform24(w1), True, p, fmt)
        emit(out, base + _U2, uniform24(w2), True, p, fmt)
        emit(out, base + _U3, uniform24(w3), True, p, fmt)


def _groups_normal24(out, o, g0, g1, k0, k1, stream, p, fmt):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        c0, s0 = box_muller24(w0, w1)
        c1, s1 = box_muller24(w2, w3)
        base = np.uint64(o + 4 * (g - g0))
        emit(out, base, c0, True, p, fmt)
        emit(out, base + _U1, s0, True, p, fmt)
        emit(out, base + _U2, c1, True, p, fmt)
        emit(out, base + _U3, s1, True, p, fmt)


def _groups_robert24(out, o, g0, g1, k0, k1, stream, p, fmt, method):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        z0, ok0 = robert24(method, w0, w1, p[4], p[5], p[6], p[7], p[8])
        z1, ok1 = robert24(method, w2, w3, p[4], p[5], p[6], p[7], p[8])
        base = np.uint64(o + 2 * (g - g0))
        emit(out, base, z0, ok0, p, fmt)
        emit(out, base + _U1, z1, ok1, p, fmt)


def _groups_uniform53(out, o, g0, g1, k0, k1, stream, p, fmt):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        base = np.uint64(o + 2 * (g - g0))
        emit(out, base, uniform53(w0, w1), True, p, fmt)
        emit(out, base + _U1, uniform53(w2, w3), True, p, fmt)


def _groups_normal53(out, o, g0, g1, k0, k1, stream, p, fmt):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        c, s = box_muller53(w0, w1, w2, w3)
        base = np.uint64(o + 2 * (g - g0))
        emit(out, base, c, True, p, fmt)
        emit(out, base + _U1, s, True, p, fmt)


def _groups_robert53(out, o, g0, g1, k0, k1, stream, p, fmt, method):
    for g in range(g0, g1):
        w0, w1, w2, w3 = philox_group(np.uint64(g), stream, _U0, k0, k1)
        z, ok = robert53(method, w0, w1, w2, w3, p[4], p[5], p[6], p[7], p[8])
        emit(out, np.uint64(o + (g - g0)), z, ok, p, fmt)


# A span of a run, and the parallel driver --------------------------------------------------------


def _fill_span_template(out, o, i, count, group, method, k0, k1, stream, p, fmt):
    """Fill out[o:o+count] with elements i..i+count-1 (global flat indices); return failures."""
    end = i + count
    # Pass 1. Elements before the first whole group and after the last one go one by one.
    g0 = (i + group - 1) // group
    g1 = end // group
    if g0 >= g1:
        for e in range(i, end):
            _draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt)
    else:
        for e in range(i, g0 * group):
            _draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt)
        body = o + g0 * group - i
        if method == METHOD_UNIFORM:
            _groups_uniform(out, body, g0, g1, k0, k1, stream, p, fmt)
        elif method == METHOD_NORMAL:
            _groups_normal(out, body, g0, g1, k0, k1, stream, p, fmt)
        else:
            _groups_robert(out, body, g0, g1, k0, k1, stream, p, fmt, method)
        for e in range(g1 * group, end):
            _draw(out, o + e - i, e, 0, group, method, k0, k1, stream, p, fmt)
    # Pass 2: redraw what pass 1 rejected.
    failures = 0
    for j in range(count):
        if pending(out, o + j, fmt):
            attempt = 1
            while not _draw(out, o + j, i + j, attempt, group, method, k0, k1, stream, p, fmt):
                attempt += 1
                if attempt == MAX_ATTEMPTS:
                    failures += 1
                    break
    return failures


def _fill_template(out, lead_counts, lead_starts, lead_strides, base0, run_length, group, method, k0, k1, stream, p, fmt):
    """Fill ``out`` (1-D, C-contiguous) with a block of a tensor; return the number of failures.

    Args:
        out: float32, float64, or uint16 (16-bit formats) array of nruns * run_length elements.
        lead_counts, lead_starts, lead_strides: int64 arrays describing the block's runs (``layout``).
        base0: int64 flat offset added to every run start.
        run_length: elements per run (int64, > 0).
        group: G of the counter contract for (method, precision).
        method: a samplers.METHOD_* code.
        k0, k1: key words (uint64); stream: uint64.
        p: parameters (loc, scale, lo, hi, a, width, alpha, m, sign) in the compute dtype.
        fmt: samplers.FORMAT_NATIVE or a bits.FORMAT_* 16-bit code.
    """
    tiles_per_run = (run_length + TILE - 1) // TILE
    nruns = out.size // run_length
    failures = 0
    for t in prange(nruns * tiles_per_run):
        run = t // tiles_per_run
        first = (t % tiles_per_run) * TILE
        count = min(TILE, run_length - first)
        start = run_start(run, lead_counts, lead_starts, lead_strides, base0) + first
        failures += _fill_span(out, run * run_length + first, start, count, group, method, k0, k1, stream, p, fmt)
    return failures


_GROUP_LOOPS = {
    False: {"_groups_uniform": _groups_uniform24, "_groups_normal": _groups_normal24, "_groups_robert": _groups_robert24},
    True: {"_groups_uniform": _groups_uniform53, "_groups_normal": _groups_normal53, "_groups_robert": _groups_robert53},
}


def _compile(kind: str, double: bool):
    """Compile the templates for one output kind; return its parallel driver."""
    names = KINDS[kind]
    suffix = "_" + kind
    loops = {name: _kernel(specialize(loop, suffix, **names)) for name, loop in _GROUP_LOOPS[double].items()}
    draw = _kernel(specialize(draw_template, suffix, **names))
    span = _kernel(specialize(_fill_span_template, suffix, _draw=draw, **loops, **names))
    return _driver(specialize(_fill_template, suffix, _fill_span=span))


DRIVERS = {kind: _compile(kind, kind == "float64") for kind in KINDS}


def launch(out: np.ndarray, block, plan, seed: int, stream: int) -> None:
    """Fill ``out`` (C-contiguous, ``block.out_shape``, ``plan.dtype``) on the CPU.

    Args:
        out: destination array; 16-bit outputs are written through a uint16 view.
        block: the ``layout.Block`` that ``out`` holds.
        plan: the ``plan.Plan`` of the distribution.
        seed: int in [0, 2**64); stream: int in [0, 2**32).

    Raises:
        RuntimeError: an element found no accepted candidate in MAX_ATTEMPTS attempts (a numerically
            degenerate interval); ``out`` then holds NaN there.
    """
    from . import threads

    if block.size == 0:
        return
    flat = out.reshape(-1).view(plan.storage_dtype)
    fill = DRIVERS[kind_of(plan.double, plan.fmt)]
    with threads.parallel_section():
        failures = fill(
            flat,
            block.lead_counts,
            block.lead_starts,
            block.lead_strides,
            np.int64(block.base0),
            np.int64(block.run_length),
            np.int64(plan.group),
            np.int64(plan.method),
            np.uint64(seed & 0xFFFFFFFF),
            np.uint64(seed >> 32),
            np.uint64(stream),
            plan.params,
            np.int64(plan.fmt),
        )
    if failures:
        raise RuntimeError(
            f"{failures} element(s) found no value within the bounds after {MAX_ATTEMPTS} attempts: the "
            f"interval is too narrow for {plan.dtype.name} arithmetic (parameters {plan.params})"
        )
