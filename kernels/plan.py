"""From a distribution's parameters to a kernel's: method, compute precision, bounds after rounding.

Everything here runs on the host in float64 before any allocation or compilation, and raises
``ValueError`` naming the parameter when no value of the output dtype can satisfy the request.

Bounds are exact after rounding: a value is accepted when, rounded to the output dtype, it lies in
``[lo, hi]``, where ``lo``/``hi`` are the smallest/largest values of the output dtype inside the
requested interval (the largest one *below* ``maxval`` for uniforms). The rejection proposals of the
truncated normal cover the half-ulp neighbourhoods that round onto those values, so the result is the
law of the rounded normal conditioned on the bounds, edge values included.

Choice of the truncated-normal method (``a``, ``b`` are the bounds in standard deviations):
the expected cost per element of each applicable proposal is estimated as
``c + REDRAW_COST * (1 - p) / p`` with ``p`` its acceptance probability, ``c`` its first-pass cost
(1 for the normal proposal, 2 for the two-uniform Robert proposals) and ``REDRAW_COST`` the cost of a
scalar redraw relative to a vectorised first-pass element; the cheapest wins. Acceptance of the
chosen proposal stays above 0.3 for every interval (the tests check a grid of intervals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .bits import FORMAT_BFLOAT16, FORMAT_FLOAT16
from .samplers import (
    FORMAT_NATIVE,
    METHOD_NORMAL,
    METHOD_ROBERT_EXPONENTIAL,
    METHOD_ROBERT_UNIFORM,
    METHOD_UNIFORM,
    group_size,
)

REDRAW_COST = 15.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_LOG_SQRT_2PI = math.log(_SQRT_2PI)
# Beyond this many standard deviations the normal proposal is never the cheapest.
_NORMAL_HOPELESS = 5.0

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
FLOAT16 = np.dtype(np.float16)
FLOAT32 = np.dtype(np.float32)
FLOAT64 = np.dtype(np.float64)
DTYPES = (FLOAT16, BFLOAT16, FLOAT32, FLOAT64)


@dataclass(frozen=True)
class Plan:
    """What a kernel needs to sample one distribution into one output dtype.

    Attributes:
        method: samplers.METHOD_*.
        dtype: output dtype.
        double: float64 candidates (float64 output) rather than float32.
        fmt: samplers.FORMAT_NATIVE or the 16-bit bits.FORMAT_* code.
        group: G of the counter contract.
        params: (loc, scale, lo, hi, a, width, alpha, m, sign) as NumPy scalars of the compute dtype.
        acceptance: probability that a candidate is accepted (before rounding effects).
    """

    method: int
    dtype: np.dtype
    double: bool
    fmt: int
    group: int
    params: tuple
    acceptance: float

    def kernel_arguments(self, block, keys: np.ndarray) -> tuple:
        """The arguments the CPU and CUDA fill kernels take after the block's geometry arrays:
        (keys, base0, run_length, group, method, params, fmt), typed as the kernels are compiled for.

        Args:
            block: the ``layout.Block`` to fill.
            keys: the uint64 (K, 3) key table (``philox.key_table``); run r uses row r % K.
        """
        return (
            np.ascontiguousarray(keys, dtype=np.uint64),
            np.int64(block.base0),
            np.int64(block.run_length),
            np.int64(self.group),
            np.int64(self.method),
            self.params,
            np.int64(self.fmt),
        )

    @property
    def storage_dtype(self) -> np.dtype:
        """Dtype of the array the kernel writes: uint16 for 16-bit formats."""
        return np.dtype(np.uint16) if self.fmt != FORMAT_NATIVE else self.dtype


def uniform(minval: float, maxval: float, dtype: np.dtype) -> Plan:
    """Uniform on [minval, maxval): values of ``dtype`` strictly below ``maxval`` after rounding."""
    _check_finite("minval", minval, dtype)
    _check_finite("maxval", maxval, dtype, representable=False)
    if not minval < maxval:
        raise ValueError(f"uniform: minval must be < maxval, got minval={minval!r}, maxval={maxval!r}")
    lo = ceil_to(minval, dtype)
    hi = floor_to(maxval, dtype)
    if hi >= maxval:
        hi = step(hi, dtype, -1)
    if not lo <= hi:
        raise ValueError(
            f"uniform: no {dtype.name} value lies in [minval, maxval) = [{minval!r}, {maxval!r})"
        )
    scale = maxval - minval
    compute = _compute_dtype(dtype)
    if not math.isfinite(float(_to(scale, compute))):
        raise ValueError(
            f"uniform: maxval - minval = {scale!r} overflows {compute.name}; narrow the interval"
        )
    return _plan(METHOD_UNIFORM, dtype, (minval, scale, lo, hi, 0.0, 0.0, 0.0, 0.0, 1.0), 1.0)


def normal(mean: float, stddev: float, dtype: np.dtype) -> Plan:
    """Normal(mean, stddev**2); values beyond the dtype's range become infinities, as in the peers."""
    _check_mean_stddev("normal", mean, stddev, dtype)
    return _plan(METHOD_NORMAL, dtype, (mean, stddev, -math.inf, math.inf, 0.0, 0.0, 0.0, 0.0, 1.0), 1.0)


def truncated_normal(mean: float, stddev: float, lower: float, upper: float, dtype: np.dtype) -> Plan:
    """Normal(mean, stddev**2) conditioned on [mean + lower*stddev, mean + upper*stddev] after rounding."""
    _check_mean_stddev("truncated_normal", mean, stddev, dtype)
    for name, value in (("lower", lower), ("upper", upper)):
        if math.isnan(value):
            raise ValueError(f"truncated_normal: {name} must be a number or +-inf, got {value!r}")
    if not lower < upper:
        raise ValueError(f"truncated_normal: lower must be < upper, got lower={lower!r}, upper={upper!r}")
    low_value = mean + lower * stddev if math.isfinite(lower) else -math.inf
    high_value = mean + upper * stddev if math.isfinite(upper) else math.inf
    lo = ceil_to(low_value, dtype)
    hi = floor_to(high_value, dtype)
    if not lo <= hi:
        raise ValueError(
            f"truncated_normal: no {dtype.name} value lies in [mean + lower*stddev, mean + upper*stddev]"
            f" = [{low_value!r}, {high_value!r}] (mean={mean!r}, stddev={stddev!r}, lower={lower!r},"
            f" upper={upper!r})"
        )
    # Proposal interval in standard deviations: the values that round onto [lo, hi].
    a = (_midpoint_below(lo, dtype) - mean) / stddev if math.isfinite(lower) else -math.inf
    b = (_midpoint_above(hi, dtype) - mean) / stddev if math.isfinite(upper) else math.inf
    method, sign, acceptance = choose_method(a, b)
    if sign < 0:
        a, b = -b, -a
    compute = _compute_dtype(dtype)
    a_c = ceil_to(a, compute) if math.isfinite(a) else a
    b_c = floor_to(b, compute) if math.isfinite(b) else b
    width = max(b_c - a_c, 0.0) if method == METHOD_ROBERT_UNIFORM else 0.0
    alpha = 1.0
    if method == METHOD_ROBERT_EXPONENTIAL:
        # Robert's optimal rate; kept >= a in the compute dtype, where rounding could put it below
        # (the accept ratio exp(-(z - alpha)^2 / 2) then underflows for every candidate).
        alpha = max(float(_to((a + math.sqrt(a * a + 4.0)) / 2.0, compute)), a_c)
    m = max(a_c, 0.0) if method == METHOD_ROBERT_UNIFORM else 0.0
    if method not in (METHOD_ROBERT_UNIFORM, METHOD_ROBERT_EXPONENTIAL):
        a_c = 0.0
    params = (mean, stddev, lo, hi, a_c, width, alpha, m, sign)
    return _plan(method, dtype, params, acceptance)


def choose_method(a: float, b: float) -> tuple[int, float, float]:
    """The cheapest proposal for a standard normal on [a, b] (see the module docstring).

    Returns:
        (method, sign, acceptance): sign is -1.0 when the interval is mirrored to the right of zero.
    """
    sign = 1.0
    if b <= 0.0:  # left of zero: sample the mirror image
        a, b, sign = -b, -a, -1.0
    candidates = []  # (cost, method, acceptance)
    if a < 0.0:  # the interval straddles zero
        z = _normal_mass(a, b)
        candidates.append((_cost(1.0, z), METHOD_NORMAL, z))
        if math.isfinite(a) and math.isfinite(b):
            p = min(z * _SQRT_2PI / (b - a), 1.0)
            candidates.append((_cost(2.0, p), METHOD_ROBERT_UNIFORM, p))
    else:
        alpha = (a + math.sqrt(a * a + 4.0)) / 2.0
        log_f_exponential = _LOG_SQRT_2PI + math.log(alpha) + alpha * a - alpha * alpha / 2.0
        log_f_uniform = (
            _LOG_SQRT_2PI + a * a / 2.0 - math.log(b - a) if math.isfinite(b) else -math.inf
        )
        if a < _NORMAL_HOPELESS:
            z = _normal_mass(a, b)
            candidates.append((_cost(1.0, z), METHOD_NORMAL, z))
            log_z = math.log(z) if z > 0.0 else -math.inf
        else:
            log_z = _log_tail_mass(a, b)
        for log_f, method in ((log_f_exponential, METHOD_ROBERT_EXPONENTIAL), (log_f_uniform, METHOD_ROBERT_UNIFORM)):
            if log_f > -math.inf:
                p = min(math.exp(log_z + log_f), 1.0)
                candidates.append((_cost(2.0, p), method, p))
    cost, method, acceptance = min(candidates)
    return method, sign, acceptance


def _cost(first_pass: float, acceptance: float) -> float:
    if acceptance <= 0.0:
        return math.inf
    return first_pass + REDRAW_COST * (1.0 - acceptance) / acceptance


def _normal_mass(a: float, b: float) -> float:
    """P(a <= Z <= b) for a standard normal Z, accurate in the tails (a > 0 or b < 0)."""
    if a > 0.0:
        return 0.5 * (math.erfc(a / math.sqrt(2.0)) - math.erfc(b / math.sqrt(2.0)))
    if b < 0.0:
        return _normal_mass(-b, -a)
    return 0.5 * (math.erf(b / math.sqrt(2.0)) - math.erf(a / math.sqrt(2.0)))


def _log_tail_mass(a: float, b: float) -> float:
    """log P(a <= Z <= b) for a >= 5, through the continued-fraction form of Mills' ratio."""
    # log P(Z >= x) = -x^2/2 - log(x sqrt(2 pi)) + log(R(x) x), R Mills' ratio; R(x) x -> 1.
    def log_upper(x):
        return -x * x / 2.0 - math.log(x * _SQRT_2PI) + math.log(_mills_times_x(x))

    upper = log_upper(a)
    if not math.isfinite(b):
        return upper
    ratio = math.exp(log_upper(b) - upper)
    return upper + math.log1p(-ratio) if ratio < 1.0 else -math.inf


def _mills_times_x(x: float) -> float:
    # x * R(x) = x^2 / (x^2 + 1 - ... ) via Lentz-free truncated continued fraction, ample for x >= 5.
    fraction = 0.0
    for k in range(40, 0, -1):
        fraction = k / (x + fraction)
    return x / (x + fraction)


def _plan(method, dtype, values, acceptance) -> Plan:
    double = dtype == FLOAT64
    compute = FLOAT64 if double else FLOAT32
    params = tuple(compute.type(v) for v in values)
    fmt = {BFLOAT16: FORMAT_BFLOAT16, FLOAT16: FORMAT_FLOAT16}.get(dtype, FORMAT_NATIVE)
    return Plan(method, dtype, double, fmt, group_size(method, double), params, acceptance)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return FLOAT64 if dtype == FLOAT64 else FLOAT32


def _check_finite(name: str, value: float, dtype: np.dtype, representable: bool = True) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if representable and not math.isfinite(float(_to(value, dtype))):
        raise ValueError(f"{name}={value!r} is not representable in {dtype.name} (it overflows)")


def _check_mean_stddev(function: str, mean: float, stddev: float, dtype: np.dtype) -> None:
    if not math.isfinite(mean):
        raise ValueError(f"{function}: mean must be finite, got {mean!r}")
    if not math.isfinite(float(_to(mean, dtype))):
        raise ValueError(f"{function}: mean={mean!r} is not representable in {dtype.name} (it overflows)")
    if not (math.isfinite(stddev) and stddev > 0.0):
        raise ValueError(f"{function}: stddev must be finite and > 0, got {stddev!r}")
    rounded = float(_to(stddev, dtype))
    if not (math.isfinite(rounded) and rounded > 0.0):
        raise ValueError(
            f"{function}: stddev={stddev!r} is not representable in {dtype.name} "
            f"(it rounds to {rounded!r})"
        )


# Rounding in a given dtype ------------------------------------------------------------------------


def _to(value: float, dtype: np.dtype):
    with np.errstate(over="ignore"):
        return np.array(value, dtype=np.float64).astype(dtype)[()]


def _largest(dtype: np.dtype) -> float:
    return float(ml_dtypes.finfo(dtype).max)


def step(value: float, dtype: np.dtype, direction: int) -> float:
    """The next value of ``dtype`` after ``value`` (itself a value of ``dtype``) towards +inf (1) or -inf (-1)."""
    if dtype in (FLOAT32, FLOAT64):
        return float(np.nextafter(dtype.type(value), dtype.type(math.inf * direction)))
    bits = int(np.array(value, dtype=dtype).view(np.uint16))
    negative = bool(bits & 0x8000)
    if value == 0.0:
        bits = 0x0001 if direction > 0 else 0x8001
    elif (direction > 0) != negative:
        bits += 1
    else:
        bits -= 1
    return float(np.array(bits, dtype=np.uint16).view(dtype))


def ceil_to(value: float, dtype: np.dtype) -> float:
    """The smallest finite value of ``dtype`` that is >= ``value`` (the most negative one for -inf)."""
    largest = _largest(dtype)
    if value > largest:
        return math.inf
    if value <= -largest:
        return -largest
    rounded = float(_to(value, dtype))
    return step(rounded, dtype, 1) if rounded < value else rounded


def floor_to(value: float, dtype: np.dtype) -> float:
    """The largest finite value of ``dtype`` that is <= ``value`` (the largest one for +inf)."""
    return -ceil_to(-value, dtype)


def _midpoint_below(value: float, dtype: np.dtype) -> float:
    """Halfway between ``value`` and the next smaller value of ``dtype``: where rounding flips."""
    return value - (value - step(value, dtype, -1)) / 2.0


def _midpoint_above(value: float, dtype: np.dtype) -> float:
    return value + (step(value, dtype, 1) - value) / 2.0
