"""Branch-free log, sin and cos of uniforms built from random bits, shared by the CPU and CUDA kernels.

PyPI's llvmlite carries no SVML, so a kernel loop that calls ``math.log`` or ``math.cos`` is a loop
of scalar libm calls that LLVM cannot vectorise. The samplers only ever need the logarithm of a
uniform ``n * 2**-bits`` with an integer ``n`` and the sine and cosine of ``2*pi*j * 2**-bits``, so
this module computes exactly those from the integers, with selects instead of branches and
polynomials instead of calls: range reduction is exact integer arithmetic, then

* log: ``n`` converts exactly to the float (it has at most 24 or 53 significant bits), whose
  exponent and mantissa fields give the power of two and the mantissa ``m``; ``m`` is brought into
  [sqrt(1/2), sqrt(2)) and ``log(m) = 2 atanh(t)`` with ``t = (m - 1) / (m + 1)``, ``|t| <= 0.1716``,
  is summed as the odd series in ``t`` up to the term below half an ulp;
* sin/cos: the angle's integer is split into a quadrant (rounded) and a remainder ``x`` in
  [-pi/4, pi/4], where Taylor series to ``x**9``/``x**10`` (float32) and ``x**17``/``x**16``
  (float64) are below half an ulp, and the quadrant swaps and negates the pair.

The tests compare every float32 input of each function (2**24 of them) and a large float64 sample
with libm in float64/extended precision. The GPU runs the same code (it could use libdevice, but
one implementation keeps CPU and GPU values within an ulp of each other).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import shared
from .bits import float32_bits, float32_from_bits, float64_bits, float64_from_bits

_I1, _I2 = np.int64(1), np.int64(2)

# float32 -----------------------------------------------------------------------------------------
_F32_ONE = np.float32(1.0)
_F32_TWO = np.float32(2.0)
_F32_SQRT_HALF = np.float32(math.sqrt(0.5))
# ln 2 split so that s * _F32_LN2_HI is exact for the |s| <= 25 that occur (fdlibm's logf constants).
_F32_LN2_HI = np.float32(6.9313812256e-01)
_F32_LN2_LO = np.float32(9.0580006145e-06)
# log(1 + f) = 2 atanh(r), r = f / (2 + f): the series 2r + sum_k 2 r^(2k+1) / (2k+1).
_F32_ATANH = tuple(np.float32(2.0 / (2 * k + 1)) for k in range(1, 5))
_F32_HALF = np.float32(0.5)
# Angle of one unit of a 24-bit integer angle: 2 pi / 2**24.
_F32_ANGLE_UNIT = np.float32(2.0 * math.pi / 2.0**24)
_F32_SIN = tuple(np.float32((-1) ** k / math.factorial(2 * k + 1)) for k in range(1, 5))
_F32_COS = tuple(np.float32((-1) ** k / math.factorial(2 * k)) for k in range(1, 6))

# float64 -----------------------------------------------------------------------------------------
_F64_ONE = np.float64(1.0)
_F64_SQRT_HALF = np.float64(math.sqrt(0.5))
# ln 2 split so that s * _F64_LN2_HI is exact for |s| < 2**11 (fdlibm's constants).
_F64_LN2_HI = np.float64(6.93147180369123816490e-01)
_F64_LN2_LO = np.float64(1.90821492927058770002e-10)
_F64_ATANH = tuple(np.float64(2.0 / (2 * k + 1)) for k in range(1, 11))
_F64_HALF = np.float64(0.5)
_F64_ANGLE_UNIT = np.float64(2.0 * math.pi / 2.0**53)
_F64_SIN = tuple(np.float64((-1) ** k / math.factorial(2 * k + 1)) for k in range(1, 9))
_F64_COS = tuple(np.float64((-1) ** k / math.factorial(2 * k)) for k in range(1, 9))

# float32 fields: the mantissa, the bits of 1/2, and the biased exponent of 2**23 (so that
# s = 150 - biased exponent = 23 - E).
_MANTISSA32 = np.uint64(0x7FFFFF)
_HALF32 = np.uint64(0x3F000000)
_EXPONENT_2_POW_23 = np.int64(150)
_U23 = np.uint64(23)
# The same for float64 (s = 1075 - biased exponent = 52 - E).
_MANTISSA64 = np.uint64(0xFFFFFFFFFFFFF)
_HALF64 = np.uint64(0x3FE0000000000000)
_EXPONENT_2_POW_52 = np.int64(1075)
_U52 = np.uint64(52)

_Q24_HALF = np.int64(1 << 21)
_Q53_HALF = np.int64(1 << 50)
_U22 = np.uint64(22)
_LOW22 = np.uint64((1 << 22) - 1)
_BITS_2_POW_23 = np.uint64(0x4B000000)
_F32_2_POW_23_PLUS_21 = np.float32(2.0**23 + 2.0**21)
_I51 = np.int64(51)


@shared
def log_uniform24(n):
    """log(n * 2**-24) in float32 for an integer n in [1, 2**24] (int64).

    The result lies in [-16.636, 0]; its error is within 2 ulp of the exact value.
    """
    # n is exact in float32: its exponent E gives n * 2**-24 = m * 2**-s with m = 1.f / 2 in
    # [1/2, 1) and s = 23 - E (for n = 2**24: m = 1/2, s = -1, which the next step makes 1, 0).
    bits = float32_bits(np.float32(n))
    m = float32_from_bits((bits & _MANTISSA32) | _HALF32)
    s = _EXPONENT_2_POW_23 - np.int64(bits >> _U23)
    # Move m into [sqrt(1/2), sqrt(2)).
    low = m < _F32_SQRT_HALF
    m = m * _F32_TWO if low else m
    s = s + _I1 if low else s
    return _log_reduced_f32(m - _F32_ONE, np.float32(s))


@shared
def sincos_turn24(j):
    """(sin, cos) of the angle 2*pi * j * 2**-24 in float32, for an integer j in [0, 2**24) (int64)."""
    # q = round(j / 2**22) and x's integer r = j - q * 2**22 in [-2**21, 2**21): with k = j + 2**21,
    # q = k >> 22 and r = (k mod 2**22) - 2**21, which the float 2**23 + (k mod 2**22), built from
    # its bits, gives exactly after subtracting 2**23 + 2**21 (no integer-to-float conversion).
    k = np.uint64(j + _Q24_HALF)
    q = np.int64(k >> _U22)
    r = float32_from_bits((k & _LOW22) | _BITS_2_POW_23) - _F32_2_POW_23_PLUS_21
    x = r * _F32_ANGLE_UNIT
    x2 = x * x
    s = _F32_SIN[3]
    s = s * x2 + _F32_SIN[2]
    s = s * x2 + _F32_SIN[1]
    s = s * x2 + _F32_SIN[0]
    s = x + x * x2 * s
    c = _F32_COS[4]
    c = c * x2 + _F32_COS[3]
    c = c * x2 + _F32_COS[2]
    c = c * x2 + _F32_COS[1]
    c = c * x2 + _F32_COS[0]
    c = _F32_ONE + x2 * c
    return _quadrant((q & _I1) == _I1, (q & _I2) == _I2, s, c)


@shared
def log_uniform53(n):
    """log(n * 2**-53) in float64 for an integer n in [1, 2**53] (int64); within 2 ulp."""
    bits = float64_bits(np.float64(n))  # exact: n <= 2**53
    m = float64_from_bits((bits & _MANTISSA64) | _HALF64)
    s = _EXPONENT_2_POW_52 - np.int64(bits >> _U52)
    low = m < _F64_SQRT_HALF
    m = m * np.float64(2.0) if low else m
    s = s + _I1 if low else s
    return _log_reduced_f64(m - _F64_ONE, np.float64(s))


@shared
def sincos_turn53(j):
    """(sin, cos) of the angle 2*pi * j * 2**-53 in float64, for an integer j in [0, 2**53) (int64)."""
    q = (j + _Q53_HALF) >> _I51
    x = np.float64(j - (q << _I51)) * _F64_ANGLE_UNIT
    x2 = x * x
    s = _F64_SIN[7]
    for k in range(6, -1, -1):
        s = s * x2 + _F64_SIN[k]
    s = x + x * x2 * s
    c = _F64_COS[7]
    for k in range(6, -1, -1):
        c = c * x2 + _F64_COS[k]
    c = _F64_ONE + x2 * c
    return _quadrant((q & _I1) == _I1, (q & _I2) == _I2, s, c)


@shared
def _log_reduced_f32(f, e):
    """log(1 + f) - e * ln 2 in float32, for f in [sqrt(1/2) - 1, sqrt(2) - 1) exact (fdlibm's form:
    the leading term f is exact and the correction is small, so the error stays within an ulp)."""
    r = f / (_F32_TWO + f)
    z = r * r
    big_r = _F32_ATANH[3]
    big_r = big_r * z + _F32_ATANH[2]
    big_r = big_r * z + _F32_ATANH[1]
    big_r = big_r * z + _F32_ATANH[0]
    big_r = big_r * z
    half_f2 = _F32_HALF * f * f
    return (f - (half_f2 - (r * (half_f2 + big_r) - e * _F32_LN2_LO))) - e * _F32_LN2_HI


@shared
def _log_reduced_f64(f, e):
    """log(1 + f) - e * ln 2 in float64 (as ``_log_reduced_f32``)."""
    r = f / (np.float64(2.0) + f)
    z = r * r
    big_r = _F64_ATANH[9]
    for k in range(8, -1, -1):
        big_r = big_r * z + _F64_ATANH[k]
    big_r = big_r * z
    half_f2 = _F64_HALF * f * f
    return (f - (half_f2 - (r * (half_f2 + big_r) - e * _F64_LN2_LO))) - e * _F64_LN2_HI


@shared
def _quadrant(odd, second, s, c):
    """(sin, cos) of q * pi/2 + x from s = sin(x), c = cos(x), given bits 0 and 1 of q (``odd``,
    ``second``)."""
    sin_x = c if odd else s
    cos_x = s if odd else c
    sin_x = -sin_x if second else sin_x
    cos_x = -cos_x if odd != second else cos_x  # bit 1 of q + 1
    return sin_x, cos_x
