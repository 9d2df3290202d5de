"""Candidates of warpinit's samplers from Philox words, shared by the CPU and CUDA kernels.

Every sampler is one rejection loop over the counter contract (see ``philox``): element i's a-th
candidate is computed from the Philox call of its group at attempt a, turned into the output value
``loc + scale * z`` (rounded to the output format) and accepted when the proposal accepts it and the
rounded value lies in ``[lo, hi]``. The methods:

========================  =====================================  ========  ========
method                    candidate z                            G float32 G float64
========================  =====================================  ========  ========
METHOD_UNIFORM            u in [0, 1)                            4         2
METHOD_NORMAL             Box-Muller, two elements per pair      4         2
METHOD_ROBERT_UNIFORM     a + width * u1, accepted when          2         1
                          log u2 <= (m^2 - z^2) / 2
METHOD_ROBERT_EXPONENTIAL a - log(u1) / alpha, accepted when     2         1
                          log u2 <= -(z - alpha)^2 / 2
========================  =====================================  ========  ========

The Robert methods (Robert, "Simulation of truncated normal variables", Statistics and Computing
1995) serve truncation intervals where the normal proposal accepts poorly; ``plan`` chooses them and
their parameters (``a``, ``width``, ``alpha``, ``m`` in standard deviations, and ``sign`` = -1 to
mirror an interval left of zero).

The fine methods serve the rare requests whose law is narrower than the float arithmetic of
``loc + scale * z`` can resolve (a mean that float32 cannot hold with a tiny stddev, far tails whose
16-bit candidates all round onto a midpoint, narrow intervals whose edge cells the proposal's bounds
would cut; ``plan`` decides). They propose the same way, but as an offset ``w`` in output units from
an origin ``b`` held exactly as the sum of two floats (``b_hi + b_lo``, a cell boundary of the output
dtype or a value next to the mean), and round ``b + w`` to the output dtype exactly, ties broken by the
exact sum (``exact_value``): the candidate is the output value itself, so every representable value
gets the probability of its rounding cell under the law.

=======================  ==============================================  ========  ========
method                   offset w from the origin b                      G float32 G float64
=======================  ==============================================  ========  ========
METHOD_FINE_UNIFORM      s * width * u1, accepted when                   2         1
                         log u2 <= (m^2 - (a + t)^2) / 2, m = max(a, 0)
METHOD_FINE_EXPONENTIAL  s * t, t = -log(u1) / alpha, accepted when      2         1
                         log u2 <= -(t - c)^2 / 2, c = alpha - a
METHOD_FINE_NORMAL       c0 + s * z, z the Box-Muller cosine of (w0, w1)  2         1
METHOD_FINE_FLAT         s * u1 (a uniform distribution), always accepted 2         1
=======================  ==============================================  ========  ========

(t = width * u1 for METHOD_FINE_UNIFORM; s is the signed stddev in output units, or the width of a
uniform.) Their parameters are (0, 1, lo, hi, b_hi, b_lo, s, q1, q2, fmt) with (q1, q2) = (width, a),
(alpha, c), (c0, 0) or (0, 0), so that the emitters' ``0 + 1 * value`` is the value exactly.

Which words a lane reads (w0..w3 are the call's words; a 64-bit value is (high word, low word)):

* float32 uniform: lane l reads w_l; u = (w_l >> 8) * 2**-24.
* float32 normal: lanes 0, 1 share (w0, w1) and lanes 2, 3 share (w2, w3); the first word gives the
  radius sqrt(-2 log u), u = ((w >> 8) + 1) * 2**-24 in (0, 1], the second the angle
  2 pi (w >> 8) * 2**-24; the even lane takes the cosine, the odd lane the sine.
* float32 Robert: lane l reads (w_2l, w_2l+1): the first word proposes, the second accepts.
* float64 uniform: lane l reads (w_2l, w_2l+1); u = (64-bit value >> 11) * 2**-53.
* float64 normal: (w0, w1) gives the radius, (w2, w3) the angle; lane 0 cosine, lane 1 sine.
* float64 Robert: (w0, w1) proposes, (w2, w3) accepts.
* fine methods: as the Robert methods (float32: lane l reads (w_2l, w_2l+1); float64: (w0, w1) and
  (w2, w3)); METHOD_FINE_NORMAL takes the radius from the first and the angle from the second and
  keeps the cosine; METHOD_FINE_FLAT reads the first only.

Complex outputs (drawn by ``warpinit._complex``): a complex64 (complex128) tensor of shape S is the
float32 (float64) tensor of shape (*S, 2), the real part of complex element i at real flat index 2i
and its imaginary part at 2i + 1, so these words follow from the real ones above:

* complex64 normal: element i reads call i // 2, words (w0, w1) for even i and (w2, w3) for odd i:
  the first gives the radius, the second the angle; the real part takes the cosine, the imaginary
  part the sine (one Box-Muller pair per complex value).
* complex128 normal: element i reads the four words of call i: (w0, w1) the radius, (w2, w3) the
  angle; real part cosine, imaginary part sine.
* complex64 disk and modulus-truncated normal: element i's uniforms u1 (modulus) and u2 (angle) are
  w_2l and w_2l+1 of call i // 2 with l = i mod 2; complex128: u1 from (w0, w1), u2 from (w2, w3) of
  call i.

Float32 normals reach 5.77 standard deviations at most (24-bit uniforms), as TensorFlow's and
PyTorch's Box-Muller do; truncated normals beyond that use the Robert methods, which have no limit.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import shared, specialize
from .bits import (FORMAT_BFLOAT16, float16_bits_to_float32, float32_from_bits, round_16bit, round_bfloat16,
                   round_float16)
from .elementary import log_uniform24, log_uniform53, sincos_turn24, sincos_turn53
from .philox import philox_group

METHOD_UNIFORM = 0
METHOD_NORMAL = 1
METHOD_ROBERT_UNIFORM = 2
METHOD_ROBERT_EXPONENTIAL = 3
METHOD_FINE_UNIFORM = 4
METHOD_FINE_EXPONENTIAL = 5
METHOD_FINE_NORMAL = 6
METHOD_FINE_FLAT = 7
FINE_METHODS = (METHOD_FINE_UNIFORM, METHOD_FINE_EXPONENTIAL, METHOD_FINE_NORMAL, METHOD_FINE_FLAT)

# Output formats: float32/float64 written as they are, or rounded to a 16-bit format (bits.FORMAT_*).
FORMAT_NATIVE = 0

# Attempts after which a redraw loop gives up on an element and reports it (fill_cpu raises at the
# call, fill_cuda once the kernel has finished): never reached by a valid configuration, whose
# attempts each succeed with probability above 0.3.
MAX_ATTEMPTS = 1 << 16

# A rejected candidate leaves this in the output until it is redrawn: NaN, never a valid output.
SENTINEL16 = np.uint16(0x7FFF)  # a NaN in both bfloat16 and float16
_NAN32 = np.float32(np.nan)

_U8 = np.uint64(8)
_U11 = np.uint64(11)
_U32 = np.uint64(32)
_I1 = np.int64(1)
_F32_TWO_POW_M24 = np.float32(2.0**-24)
_F64_TWO_POW_M53 = np.float64(2.0**-53)
_F32_MINUS_TWO = np.float32(-2.0)
_F64_MINUS_TWO = np.float64(-2.0)
_F32_HALF = np.float32(0.5)
_F64_HALF = np.float64(0.5)
_F32_ZERO = np.float32(0.0)
_U1 = np.uint64(1)
_U16 = np.uint64(16)
_BF16_SIGN = np.uint64(0x8000)
_F16_MAGNITUDE = np.uint64(0x7FFF)


def group_size(method: int, double: bool) -> int:
    """Elements per Philox call (G of the counter contract) for a method and precision."""
    words = 1 if method in (METHOD_UNIFORM, METHOD_NORMAL) else 2
    return 4 // (2 * words if double else words)


# float32 (also for 16-bit outputs) ---------------------------------------------------------------


@shared
def uniform24(w):
    """u in [0, 1) from the top 24 bits of a 32-bit word: never rounds to 1."""
    return np.float32(np.int64(w >> _U8)) * _F32_TWO_POW_M24


@shared
def log_open_uniform24(w):
    """log(u) for u = ((w >> 8) + 1) * 2**-24 in (0, 1]: never log(0)."""
    return log_uniform24(np.int64(w >> _U8) + _I1)


@shared
def box_muller24(w_radius, w_angle):
    """Two independent standard normals (cosine branch, sine branch) from two 32-bit words."""
    r = np.float32(math.sqrt(_F32_MINUS_TWO * log_open_uniform24(w_radius)))
    s, c = sincos_turn24(np.int64(w_angle >> _U8))
    return r * c, r * s


@shared
def robert24(method, w_propose, w_accept, a, width, alpha, m, sign):
    """One Robert candidate (z, accepted by the proposal) in float32, mirrored by ``sign``."""
    log_u = log_open_uniform24(w_accept)
    if method == METHOD_ROBERT_UNIFORM:
        z = a + width * uniform24(w_propose)
        ok = log_u <= (m - z) * (m + z) * _F32_HALF
    else:
        z = a - log_open_uniform24(w_propose) / alpha
        d = z - alpha
        ok = log_u <= -(d * d) * _F32_HALF
    return sign * z, ok


@shared
def uniform_lane24(method, lane, w0, w1, w2, w3, p):
    """Uniform candidate (z, True) of one lane of a float32 group."""
    w = w0 if lane == 0 else (w1 if lane == 1 else (w2 if lane == 2 else w3))
    return uniform24(w), True


@shared
def normal_lane24(method, lane, w0, w1, w2, w3, p):
    """Box-Muller candidate (z, True) of one lane of a float32 group (even lanes: cosine)."""
    first = lane < 2
    c, s = box_muller24(w0 if first else w2, w1 if first else w3)
    return (c if (lane & 1) == 0 else s), True


@shared
def robert_lane24(method, lane, w0, w1, w2, w3, p):
    """Robert candidate (z, accepted by the proposal) of one lane of a float32 group."""
    first = lane == 0
    return robert24(method, w0 if first else w2, w1 if first else w3, p[4], p[5], p[6], p[7], p[8])


@shared
def lane_candidate24(method, lane, w0, w1, w2, w3, p):
    """Candidate (z, ok) of one lane of a float32 group; ``p`` as in ``emit_native``."""
    if method == METHOD_UNIFORM:
        return uniform_lane24(method, lane, w0, w1, w2, w3, p)
    if method == METHOD_NORMAL:
        return normal_lane24(method, lane, w0, w1, w2, w3, p)
    if method >= METHOD_FINE_UNIFORM:
        return fine_lane24(method, lane, w0, w1, w2, w3, p)
    return robert_lane24(method, lane, w0, w1, w2, w3, p)


# float64 -----------------------------------------------------------------------------------------


@shared
def join64(hi, lo):
    """The 64-bit value of two 32-bit words (uint64)."""
    return (hi << _U32) | lo


@shared
def uniform53(hi, lo):
    """u in [0, 1) from the top 53 bits of a 64-bit value."""
    return np.float64(np.int64(join64(hi, lo) >> _U11)) * _F64_TWO_POW_M53


@shared
def log_open_uniform53(hi, lo):
    """log(u) for u = ((x >> 11) + 1) * 2**-53 in (0, 1]."""
    return log_uniform53(np.int64(join64(hi, lo) >> _U11) + _I1)


@shared
def box_muller53(w0, w1, w2, w3):
    """Two independent standard normals (cosine, sine) in float64 from four words."""
    r = np.float64(math.sqrt(_F64_MINUS_TWO * log_open_uniform53(w0, w1)))
    s, c = sincos_turn53(np.int64(join64(w2, w3) >> _U11))
    return r * c, r * s


@shared
def robert53(method, w0, w1, w2, w3, a, width, alpha, m, sign):
    """One Robert candidate (z, ok) in float64: (w0, w1) propose, (w2, w3) accept."""
    log_u = log_open_uniform53(w2, w3)
    if method == METHOD_ROBERT_UNIFORM:
        z = a + width * uniform53(w0, w1)
        ok = log_u <= (m - z) * (m + z) * _F64_HALF
    else:
        z = a - log_open_uniform53(w0, w1) / alpha
        d = z - alpha
        ok = log_u <= -(d * d) * _F64_HALF
    return sign * z, ok


@shared
def uniform_lane53(method, lane, w0, w1, w2, w3, p):
    """Uniform candidate (z, True) of one lane of a float64 group."""
    return uniform53(w0 if lane == 0 else w2, w1 if lane == 0 else w3), True


@shared
def normal_lane53(method, lane, w0, w1, w2, w3, p):
    """Box-Muller candidate (z, True) of one lane of a float64 group (lane 0: cosine)."""
    c, s = box_muller53(w0, w1, w2, w3)
    return (c if lane == 0 else s), True


@shared
def robert_lane53(method, lane, w0, w1, w2, w3, p):
    """Robert candidate (z, ok) of the single lane of a float64 group."""
    return robert53(method, w0, w1, w2, w3, p[4], p[5], p[6], p[7], p[8])


@shared
def lane_candidate53(method, lane, w0, w1, w2, w3, p):
    """Candidate (z, ok) of one lane of a float64 group."""
    if method == METHOD_UNIFORM:
        return uniform_lane53(method, lane, w0, w1, w2, w3, p)
    if method == METHOD_NORMAL:
        return normal_lane53(method, lane, w0, w1, w2, w3, p)
    if method >= METHOD_FINE_UNIFORM:
        return fine_lane53(method, lane, w0, w1, w2, w3, p)
    return robert_lane53(method, lane, w0, w1, w2, w3, p)


# Fine methods: exact rounding of an offset from an exactly held origin -------------------------------


@shared
def two_sum(a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth's TwoSum; no FMA involved)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@shared
def exact_sum(b_hi, b_lo, w):
    """(f, e): f the float nearest b_hi + b_lo + w (its ties to even decided on the exact sum), and e
    a residual with the sign of b_hi + b_lo + w - f (0 when f is exact).

    Four TwoSums (``two_sum``, written out: the CUDA compiler inlines each call at some cost)."""
    r = b_lo + w
    t = r - b_lo
    e_r = (b_lo - (r - t)) + (w - t)
    s = b_hi + r
    t = s - b_hi
    e_s = (b_hi - (s - t)) + (r - t)
    u = e_s + e_r
    t = u - e_s
    e_u = (e_s - (u - t)) + (e_r - t)
    f = s + u
    t = f - s
    e_f = (s - (f - t)) + (u - t)
    # f + e_f + e_u is the exact sum and |e_u| is far below f's spacing: it only decides a tie.
    zero = f - f
    if e_f != zero and e_u != zero:
        twice = e_f + e_f
        n = f + twice
        t = n - f
        e_n = (f - (n - t)) + (twice - t)
        if e_n == zero and (e_u > zero) == (e_f > zero):  # f + e_f is the midpoint of f and n
            f, e_f = n, -e_f
    return f, e_f + e_u


@shared
def value_16bit(bits, fmt):
    """The float32 equal to a 16-bit pattern (uint64, sign bit included) of format ``fmt``."""
    if fmt == FORMAT_BFLOAT16:
        return float32_from_bits(bits << _U16)
    magnitude = float16_bits_to_float32(bits & _F16_MAGNITUDE)
    return -magnitude if (bits & _BF16_SIGN) != np.uint64(0) else magnitude


@shared
def round_16bit_directed(f, e, fmt):
    """The 16-bit value (as float32) nearest f + e for a float32 f and a tiny residual e: round_16bit
    of f, except when f is a 16-bit midpoint, where the sign of e decides."""
    bits, v = round_16bit(f, fmt)
    zero = f - f
    if e != zero and f != v:
        neighbour = bits + _U1 if abs(f) > abs(v) else bits - _U1  # the value on f's side of v
        n = value_16bit(neighbour, fmt)
        if (v + n) * _F32_HALF == f and (e > zero) == (n > v):
            v = n
    return v


@shared
def fine_offset24(method, w_propose, w_accept, p):
    """(w, accepted): a fine method's offset from its origin in output units, float32."""
    ok = True
    if method == METHOD_FINE_NORMAL:
        r = np.float32(math.sqrt(_F32_MINUS_TWO * log_open_uniform24(w_propose)))
        sin, cos = sincos_turn24(np.int64(w_accept >> _U8))
        w = p[7] + p[6] * (r * cos)
    elif method == METHOD_FINE_FLAT:
        w = p[6] * uniform24(w_propose)
    else:
        log_u = log_open_uniform24(w_accept)
        if method == METHOD_FINE_UNIFORM:
            t = p[7] * uniform24(w_propose)
            a = p[8]
            z = a + t
            ok = log_u <= (-(t * (a + a + t)) if a >= _F32_ZERO else -(z * z)) * _F32_HALF
        else:
            t = -log_open_uniform24(w_propose) / p[7]
            d = t - p[8]
            ok = log_u <= -(d * d) * _F32_HALF
        w = p[6] * t
    return w, ok


@shared
def fine24(method, w_propose, w_accept, p):
    """A fine candidate (the output value, accepted) for float32 and 16-bit outputs (p[9] the format)."""
    w, ok = fine_offset24(method, w_propose, w_accept, p)
    f, e = exact_sum(p[4], p[5], w)
    if p[9] != _F32_ZERO:
        f = round_16bit_directed(f, e, np.int64(p[9]))
    return f, ok


@shared
def fine53(method, w0, w1, w2, w3, p):
    """A fine candidate (the output value, accepted) for float64 outputs: (w0, w1) propose, (w2, w3)
    accept (or give the angle)."""
    ok = True
    if method == METHOD_FINE_NORMAL:
        c, s = box_muller53(w0, w1, w2, w3)
        w = p[7] + p[6] * c
    elif method == METHOD_FINE_FLAT:
        w = p[6] * uniform53(w0, w1)
    else:
        log_u = log_open_uniform53(w2, w3)
        if method == METHOD_FINE_UNIFORM:
            t = p[7] * uniform53(w0, w1)
            a = p[8]
            z = a + t
            ok = log_u <= (-(t * (a + a + t)) if a >= z - z else -(z * z)) * _F64_HALF
        else:
            t = -log_open_uniform53(w0, w1) / p[7]
            d = t - p[8]
            ok = log_u <= -(d * d) * _F64_HALF
        w = p[6] * t
    f, e = exact_sum(p[4], p[5], w)
    return f, ok


@shared
def fine_lane24(method, lane, w0, w1, w2, w3, p):
    """Fine candidate (value, ok) of one lane of a float32 group (lane 0: w0, w1; lane 1: w2, w3)."""
    first = lane == 0
    return fine24(method, w0 if first else w2, w1 if first else w3, p)


@shared
def fine_lane53(method, lane, w0, w1, w2, w3, p):
    """Fine candidate (value, ok) of the single lane of a float64 group."""
    return fine53(method, w0, w1, w2, w3, p)


# Output ------------------------------------------------------------------------------------------


@shared
def emit_native(out, o, z, ok, p, fmt):
    """Write candidate ``z`` as ``loc + scale * z`` at ``out[o]`` if accepted, else NaN.

    Args:
        out: float32 or float64 array.
        o: index into ``out``.
        z: candidate in standard units (float32, or float64 for float64 outputs).
        ok: whether the proposal accepted it.
        p: parameters (loc, scale, lo, hi, a, width, alpha, m, sign) in the compute dtype; the
           value is accepted when lo <= value <= hi.
        fmt: unused (FORMAT_NATIVE); present so that both emitters share one signature.

    Returns:
        Whether the value was accepted.
    """
    y = p[0] + p[1] * z
    good = ok & (y >= p[2]) & (y <= p[3])
    out[o] = y if good else _NAN32
    return good


def _emit_16bit_template(out, o, z, ok, p, fmt):
    """As ``emit_native`` for a uint16 view of a 16-bit output: round ``loc + scale * z`` (float32) to
    ``fmt`` (bits.FORMAT_BFLOAT16 or FORMAT_FLOAT16) with ``round_format``, accept on the rounded
    value, write its bits or the sentinel."""
    bits, v = round_format(p[0] + p[1] * z, fmt)
    good = ok & (v >= p[2]) & (v <= p[3])
    out[o] = np.uint16(bits) if good else SENTINEL16
    return good


@shared
def _round_bfloat16_only(x, fmt):
    """``bits.round_bfloat16`` with ``round_16bit``'s arguments (``fmt`` is FORMAT_BFLOAT16)."""
    return round_bfloat16(x)


@shared
def _round_float16_only(x, fmt):
    """``bits.round_float16`` with ``round_16bit``'s arguments (``fmt`` is FORMAT_FLOAT16)."""
    return round_float16(x)


# Each 16-bit kind binds its own rounding: a loop that chose at run time computed both (uniform
# bfloat16 1.6x faster without).
round_format = None  # bound per emitter by ``_jit.specialize``
emit_bfloat16 = shared(specialize(_emit_16bit_template, "_bfloat16", round_format=_round_bfloat16_only))
emit_float16 = shared(specialize(_emit_16bit_template, "_float16", round_format=_round_float16_only))
# The rounding of each 16-bit kind, with ``round_16bit``'s arguments, for other kernels' stores.
ROUND_16BIT = {"bfloat16": _round_bfloat16_only, "float16": _round_float16_only}


@shared
def pending_native(out, o, fmt):
    """Whether float ``out[o]`` still holds the NaN of a rejected candidate."""
    v = out[o]
    return v != v


@shared
def pending_16bit(out, o, fmt):
    """Whether 16-bit ``out[o]`` (uint16 view) still holds the sentinel of a rejected candidate."""
    return out[o] == SENTINEL16


# Whole groups (the GPU's first pass) --------------------------------------------------------------


@shared
def group_candidates24(method, w0, w1, w2, w3, p):
    """The candidates of all lanes of a float32 group: (z0, z1, z2, z3, ok0, ok1, ok2, ok3).

    Lanes beyond the method's group size (2 for Robert methods) are returned as rejected zeros.
    """
    if method == METHOD_UNIFORM:
        return uniform24(w0), uniform24(w1), uniform24(w2), uniform24(w3), True, True, True, True
    if method == METHOD_NORMAL:
        c0, s0 = box_muller24(w0, w1)
        c1, s1 = box_muller24(w2, w3)
        return c0, s0, c1, s1, True, True, True, True
    if method >= METHOD_FINE_UNIFORM:
        z0 = z1 = p[0] - p[0]
        ok0 = ok1 = False
        for lane in range(2):  # one copy of the fine code in the compiled kernel
            first = lane == 0
            z, ok = fine24(method, w0 if first else w2, w1 if first else w3, p)
            if first:
                z0, ok0 = z, ok
            else:
                z1, ok1 = z, ok
    else:
        z0, ok0 = robert24(method, w0, w1, p[4], p[5], p[6], p[7], p[8])
        z1, ok1 = robert24(method, w2, w3, p[4], p[5], p[6], p[7], p[8])
    zero = z0 - z0
    return z0, z1, zero, zero, ok0, ok1, False, False


@shared
def group_candidates53(method, w0, w1, w2, w3, p):
    """As ``group_candidates24`` for float64 groups (2 lanes, or 1 for Robert methods)."""
    if method == METHOD_UNIFORM:
        z0 = uniform53(w0, w1)
        return z0, uniform53(w2, w3), z0 - z0, z0 - z0, True, True, False, False
    if method == METHOD_NORMAL:
        c, s = box_muller53(w0, w1, w2, w3)
        return c, s, c - c, c - c, True, True, False, False
    if method >= METHOD_FINE_UNIFORM:
        z, ok = fine53(method, w0, w1, w2, w3, p)
    else:
        z, ok = robert53(method, w0, w1, w2, w3, p[4], p[5], p[6], p[7], p[8])
    return z, z - z, z - z, z - z, ok, False, False, False


# Output kinds and the templates they specialise -------------------------------------------------------

# The names a kernel template calls, per output kind: float32 arrays; bfloat16 and float16 outputs
# through a uint16 view (float32 arithmetic); float64 arrays. ``storage_dtype`` is the dtype of the
# array a kernel writes. ``_jit.specialize`` binds them, so that no kernel compiles code it cannot
# run (the 16-bit kinds their rounding: see ``emit_bfloat16``).
KINDS = {
    "float32": {
        "lane_candidate": lane_candidate24,
        "group_candidates": group_candidates24,
        "emit": emit_native,
        "pending": pending_native,
        "compute_dtype": np.float32,
        "storage_dtype": np.float32,
    },
    "bfloat16": {
        "lane_candidate": lane_candidate24,
        "group_candidates": group_candidates24,
        "emit": emit_bfloat16,
        "pending": pending_16bit,
        "compute_dtype": np.float32,
        "storage_dtype": np.uint16,
    },
    "float16": {
        "lane_candidate": lane_candidate24,
        "group_candidates": group_candidates24,
        "emit": emit_float16,
        "pending": pending_16bit,
        "compute_dtype": np.float32,
        "storage_dtype": np.uint16,
    },
    "float64": {
        "lane_candidate": lane_candidate53,
        "group_candidates": group_candidates53,
        "emit": emit_native,
        "pending": pending_native,
        "compute_dtype": np.float64,
        "storage_dtype": np.float64,
    },
}
# The per-method lane candidates of each precision (the CPU's vectorised redraw loops take one each).
LANES = {
    False: {METHOD_UNIFORM: uniform_lane24, METHOD_NORMAL: normal_lane24, "robert": robert_lane24},
    True: {METHOD_UNIFORM: uniform_lane53, METHOD_NORMAL: normal_lane53, "robert": robert_lane53},
}

lane_candidate = group_candidates = emit = pending = None  # bound per kind by ``_jit.specialize``


def kind_of(double: bool, fmt: int) -> str:
    """The output kind of a plan (a key of KINDS)."""
    if double:
        return "float64"
    if fmt == FORMAT_NATIVE:
        return "float32"
    return "bfloat16" if fmt == FORMAT_BFLOAT16 else "float16"


def draw_template(out, o, i, attempt, group, method, k0, k1, stream, p, fmt):
    """Draw element i (global flat index) at ``attempt`` into out[o]; return whether it was accepted."""
    w0, w1, w2, w3 = philox_group(np.uint64(i // group), stream, np.uint64(attempt), k0, k1)
    z, ok = lane_candidate(method, i % group, w0, w1, w2, w3, p)
    return emit(out, o, z, ok, p, fmt)


def fill_elements_template(out, o, i, count, group, method, k0, k1, stream, p, fmt):
    """Fill out[o:o+count] with elements i..i+count-1 one by one, each redrawn until accepted (the
    fine methods' path on the CPU: rare requests, exactness before speed); return the failures."""
    failures = 0
    for e in range(i, i + count):
        attempt = 0
        while not _draw(out, o + e - i, e, attempt, group, method, k0, k1, stream, p, fmt):
            attempt += 1
            if attempt == MAX_ATTEMPTS:
                failures += 1
                break
    return failures


_draw = None  # bound per kind by the CPU kernels (``fill_cpu``)


@shared
def run_start(run, lead_counts, lead_starts, lead_strides, base0):
    """Global flat index of the first element of ``run`` (row-major over the block's leading axes)."""
    start = base0
    rest = run
    for d in range(lead_counts.size - 1, -1, -1):
        start += (lead_starts[d] + rest % lead_counts[d]) * lead_strides[d]
        rest //= lead_counts[d]
    return start
