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

Exactness. The kernels compute a candidate as ``loc + scale * z`` in the compute dtype (float32 for
float32 and 16-bit outputs, float64 for float64): the mean and stddev rounded to it, each candidate
rounded on the way, the Robert proposals' bounds rounded inwards. ``continuous_error`` bounds how far
that arithmetic can move a candidate, relative to the law's scale (the reciprocal of its largest
density, in the same units); the error in the probability of any set of values is of that order. Where
it exceeds ``TOLERANCE`` (2**-14), or the float64 arithmetic of the bounds collapses the interval,
the plan switches to the fine methods of ``samplers``: the same proposals, drawn as an exact offset from
a cell boundary (held as two floats) and rounded to the output dtype exactly, so that each
representable value gets the probability of its rounding cell, edge cells included. This happens for
laws narrower than a few thousand ulps of the compute dtype at their values: a mean float32 cannot
hold with a tiny stddev, far tails (16-bit candidates that would all round onto a midpoint), narrow
intervals whose edge cells the inward bounds would cut. A law with a single representable value in
its interval is that value. Uniforms whose interval reaches far beyond the dtype's range (maxval=1e10
in float16) draw over the part that rounds to finite values, as the same law conditioned on it.
Every plan that the continuous arithmetic serves within the tolerance keeps its proposals, and so its
values, unchanged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import ml_dtypes
import numpy as np

from .bits import FORMAT_BFLOAT16, FORMAT_FLOAT16
from .samplers import (
    FORMAT_NATIVE,
    METHOD_FINE_EXPONENTIAL,
    METHOD_FINE_FLAT,
    METHOD_FINE_NORMAL,
    METHOD_FINE_UNIFORM,
    METHOD_NORMAL,
    METHOD_ROBERT_EXPONENTIAL,
    METHOD_ROBERT_UNIFORM,
    METHOD_UNIFORM,
    group_size,
)

REDRAW_COST = 15.0
# Largest move of a candidate by the continuous arithmetic, relative to the law's scale, that the
# continuous proposals may keep (see the module docstring).
TOLERANCE = 2.0**-14
# What the proposals can reach: |z| of Box-Muller from 24- and 53-bit uniforms, and -log(u) of the
# smallest open uniform (keyed by "float64 candidates").
_NORMAL_REACH = {False: math.sqrt(-2.0 * math.log(2.0**-24)), True: math.sqrt(-2.0 * math.log(2.0**-53))}
_LOG_REACH = {False: 24 * math.log(2.0), True: 53 * math.log(2.0)}
_EPSILON = {False: 2.0**-24, True: 2.0**-53}  # half an ulp, relative
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
        params: (loc, scale, lo, hi, a, width, alpha, m, sign, 0) as NumPy scalars of the compute
            dtype, or for the fine methods (0, 1, lo, hi, b_hi, b_lo, s, q1, q2, fmt) (``samplers``).
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


# Plans kept per function for the arguments seen, at most this many (a sweep of parameters does not
# grow the memory without bound: past it, plans are built each call).
MEMO_SIZE = 4096


def _memoized(function):
    """``function`` (parameters, then the dtype) with its plans kept for the arguments seen.

    A plan is a pure function of the parameters' exact values and the output dtype, and building one
    (rounding in the dtype, exact rational bounds, the choice of method) costs more than filling a
    small tensor, which per-parameter initialisation does hundreds of times with the same
    arguments. Only Python floats (keyed by ``float.hex``: 0.0 and -0.0 apart) and NumPy dtypes,
    passed by position, make a key; any other call goes straight through, and a request that
    raises is not kept, so it raises each time. Plans are immutable, so callers share them."""
    plans: dict = {}

    @functools.wraps(function)
    def memoized(*args, **keywords):
        if keywords or not all(type(arg) is float or isinstance(arg, np.dtype) for arg in args):
            return function(*args, **keywords)
        key = tuple(arg.hex() if type(arg) is float else arg for arg in args)
        plan = plans.get(key)
        if plan is None:
            plan = function(*args)
            if len(plans) < MEMO_SIZE:
                plans[key] = plan
        return plan

    return memoized


@_memoized
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
    # The part of [minval, maxval) that rounds into [lo, hi]: the law is uniform on it.
    start = max(Fraction(minval), _cell(lo, dtype)[0])
    stop = min(Fraction(maxval), _cell(hi, dtype)[1])
    if (stop - start) * 2 < Fraction(maxval) - Fraction(minval):  # most candidates would round outside
        minval, scale = float(start), float(stop - start)
    plan = _plan(METHOD_UNIFORM, dtype, (minval, scale, lo, hi, 0.0, 0.0, 0.0, 0.0, 1.0), 1.0)
    if uniform_error(plan, minval, scale) <= TOLERANCE:
        return plan
    if lo == hi:
        return constant(lo, dtype)
    b_hi, b_lo = _split(start, dtype)
    width = _round_to(stop - start, compute, -1)  # never beyond maxval
    return _fine(METHOD_FINE_FLAT, dtype, lo, hi, b_hi, b_lo, width, 0.0, 0.0, 1.0)


@_memoized
def normal(mean: float, stddev: float, dtype: np.dtype) -> Plan:
    """Normal(mean, stddev**2); values beyond the dtype's range become infinities, as in the peers."""
    _check_mean_stddev("normal", mean, stddev, dtype)
    return _plan(METHOD_NORMAL, dtype, (mean, stddev, -math.inf, math.inf, 0.0, 0.0, 0.0, 0.0, 1.0), 1.0)


@_memoized
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
    # The same, exactly: the rounding cells of lo and hi.
    low_edge = _cell(lo, dtype)[0] if math.isfinite(lower) else None
    high_edge = _cell(hi, dtype)[1] if math.isfinite(upper) else None
    if a < b:  # float64 arithmetic can collapse a narrow interval (a == b): the fine methods then
        plan = _continuous(mean, stddev, lo, hi, a, b, dtype)
        if continuous_error(plan, mean, stddev, low_edge, high_edge) <= TOLERANCE:
            return plan
    return _fine_truncated(mean, stddev, lo, hi, low_edge, high_edge, dtype)


def _continuous(mean, stddev, lo, hi, a, b, dtype) -> Plan:
    """The continuous truncated-normal plan of the proposal interval [a, b] (standard deviations)."""
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


def _fine_truncated(mean, stddev, lo, hi, low_edge, high_edge, dtype) -> Plan:
    """The fine plan of a truncated normal whose interval of values rounds from [low_edge, high_edge]
    (Fractions; None for an infinite bound)."""
    compute = _compute_dtype(dtype)
    mean_x, stddev_x = Fraction(mean), Fraction(stddev)
    a = (low_edge - mean_x) / stddev_x if low_edge is not None else None
    b = (high_edge - mean_x) / stddev_x if high_edge is not None else None
    method, sign, acceptance = choose_method(_float(a, -1), _float(b, 1))
    if lo == hi:
        return constant(lo, dtype)
    if method == METHOD_NORMAL:
        # Origin: the boundary of the mean's rounding cell nearest to the mean.
        low, high = _cell(float(_to(mean, dtype)), dtype)
        origin = low if mean_x - low <= high - mean_x else high
        b_hi, b_lo = _split(origin, dtype)
        c0 = float(_to(float(mean_x - origin), compute))
        return _fine(METHOD_FINE_NORMAL, dtype, lo, hi, b_hi, b_lo, stddev, c0, 0.0, acceptance)
    # Mirrored so that the interval [a, b] starts at its end nearest to the mean.
    if sign < 0:
        origin, a, b = high_edge, -b, (-a if a is not None else None)
    else:
        origin = low_edge
    b_hi, b_lo = _split(origin, dtype)
    if method == METHOD_ROBERT_UNIFORM:
        width = _round_to(b - a, compute, 1)
        return _fine(METHOD_FINE_UNIFORM, dtype, lo, hi, b_hi, b_lo, sign * stddev, width, _float(a, 1), acceptance)
    a = _float(a, 1)
    alpha = float(_to((a + math.sqrt(a * a + 4.0)) / 2.0, compute))
    if not math.isfinite(alpha):  # the law sits in the first cell, closer to its edge than any float
        return constant(lo if sign > 0 else hi, dtype)
    c = 2.0 / (a + math.sqrt(a * a + 4.0))  # alpha - a, without cancellation
    return _fine(METHOD_FINE_EXPONENTIAL, dtype, lo, hi, b_hi, b_lo, sign * stddev, alpha, c, acceptance)


def constant(value: float, dtype: np.dtype) -> Plan:
    """Every element ``value`` (a value of ``dtype``): a uniform of zero width (the words are read and
    ignored)."""
    return _plan(METHOD_UNIFORM, dtype, (value, 0.0, value, value, 0.0, 0.0, 0.0, 0.0, 1.0), 1.0)


def _fine(method, dtype, lo, hi, b_hi, b_lo, s, q1, q2, acceptance) -> Plan:
    fmt = {BFLOAT16: FORMAT_BFLOAT16, FLOAT16: FORMAT_FLOAT16}.get(dtype, FORMAT_NATIVE)
    return _plan(method, dtype, (0.0, 1.0, lo, hi, b_hi, b_lo, s, q1, q2, float(fmt)), acceptance)


def continuous_error(plan: Plan, mean: float, stddev: float, low_edge, high_edge) -> float:
    """How far the continuous kernels' arithmetic can move a truncated-normal candidate, relative to
    the law's scale (see the module docstring). ``low_edge``/``high_edge``: the exact ends of the
    values that round into the interval (Fractions, None for an infinite bound)."""
    double = plan.double
    epsilon = _EPSILON[double]
    loc, scale, _, _, a_c, width, alpha, _, sign = (float(v) for v in plan.params[:9])
    mean_x, stddev_x = Fraction(mean), Fraction(stddev)
    a = (low_edge - mean_x) / stddev_x if low_edge is not None else None
    b = (high_edge - mean_x) / stddev_x if high_edge is not None else None
    if sign < 0:
        a, b = (-b if b is not None else None), (-a if a is not None else None)
    scale_of_law = _law_scale(_float(a, -1), _float(b, 1))
    if not scale_of_law > 0.0:
        return math.inf
    error = float(abs(Fraction(loc) - mean_x) / stddev_x)  # the mean in the compute dtype
    if plan.method == METHOD_NORMAL:
        reach = min(max(abs(_float(a, -1)), abs(_float(b, 1))), _NORMAL_REACH[double])
    else:
        if plan.method == METHOD_ROBERT_UNIFORM:
            offsets = width
            top = Fraction(a_c) + Fraction(width)
            if b is not None and b > top:
                error += float(b - top)  # the inward-rounded upper bound cuts the last cell
        else:
            offsets = _LOG_REACH[double] / alpha
        reach = abs(a_c) + offsets
        if a is not None and Fraction(a_c) > a:
            error += float(Fraction(a_c) - a)  # the inward-rounded lower bound cuts the first cell
        error += epsilon * (reach + offsets)  # rounding the offset and a + offset
    error += float(abs(Fraction(scale) - stddev_x) / stddev_x) * reach
    if not _power_of_two(scale):
        error += epsilon * reach  # scale * z
    if plan.fmt != FORMAT_NATIVE:
        error += epsilon * (abs(loc) / stddev + reach)  # the float32 value, rounded again to 16 bits
    return error / scale_of_law


def uniform_error(plan: Plan, minval: float, scale: float) -> float:
    """``continuous_error`` for a uniform on [minval, minval + scale): relative to the width."""
    epsilon = _EPSILON[plan.double]
    loc, width = float(plan.params[0]), float(plan.params[1])
    error = float(abs(Fraction(loc) - Fraction(minval)) + abs(Fraction(width) - Fraction(scale)))
    if not _power_of_two(width):
        error += epsilon * abs(width)
    if plan.fmt != FORMAT_NATIVE:
        error += epsilon * (abs(loc) + abs(width))
    return error / scale if scale > 0 else math.inf


def _law_scale(a: float, b: float) -> float:
    """The reciprocal of the largest density of a standard normal conditioned on [a, b]: P(a<=Z<=b)/phi(m),
    m the point of [a, b] nearest zero (about 1/a in a tail, b - a when narrow)."""
    if b <= 0.0:
        a, b = -b, -a
    m = max(a, 0.0)
    if a >= _NORMAL_HOPELESS:
        log_mass = _log_tail_mass(a, b)
    else:
        mass = _normal_mass(a, b)
        log_mass = math.log(mass) if mass > 0.0 else -math.inf
    return math.exp(min(log_mass + m * m / 2.0 + _LOG_SQRT_2PI, 700.0))


def _power_of_two(x: float) -> bool:
    return x != 0.0 and math.isfinite(x) and math.frexp(abs(x))[0] == 0.5


def _float(x, infinity_sign: int) -> float:
    """A Fraction as the nearest float (+-inf beyond float64), or the infinity for None."""
    if x is None:
        return math.inf * infinity_sign
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


def _cell(value: float, dtype: np.dtype) -> tuple[Fraction, Fraction]:
    """The exact interval of reals that round (to nearest) onto ``value`` of ``dtype`` (a finite value
    of that dtype; the largest ones' cells end where rounding overflows)."""
    x = Fraction(value)
    below, above = step(value, dtype, -1), step(value, dtype, 1)
    if math.isinf(below):  # beyond -largest: the same spacing as inside
        low = x - (Fraction(above) - x) / 2
    else:
        low = (x + Fraction(below)) / 2
    if math.isinf(above):
        high = x + (x - Fraction(below)) / 2
    else:
        high = (x + Fraction(above)) / 2
    return low, high


def _split(x: Fraction, dtype: np.dtype) -> tuple[float, float]:
    """x as b_hi + b_lo in the compute dtype: b_hi the value of ``dtype`` nearest x (x itself for a
    16-bit cell boundary, which float32 holds), b_lo the rest (exact for cell boundaries)."""
    compute = _compute_dtype(dtype)
    b_hi = float(_to(_float(x, 1), compute))
    if dtype in (FLOAT16, BFLOAT16) and Fraction(b_hi) == x:
        return b_hi, 0.0
    b_hi = float(_to(_float(x, 1), dtype))
    return b_hi, float(_to(_float(x - Fraction(b_hi), 1), compute))


def _round_to(x: Fraction, dtype: np.dtype, direction: int) -> float:
    """The value of ``dtype`` nearest x, stepped towards +inf (1) or -inf (-1) until it is on that side."""
    value = float(_to(_float(x, 1), dtype))
    if direction > 0 and Fraction(value) < x:
        value = step(value, dtype, 1)
    elif direction < 0 and Fraction(value) > x:
        value = step(value, dtype, -1)
    return value


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
    values = tuple(values) + (0.0,) * (10 - len(values))
    with np.errstate(over="ignore"):
        params = tuple(compute.type(v) for v in values)
    fmt = {BFLOAT16: FORMAT_BFLOAT16, FLOAT16: FORMAT_FLOAT16}.get(dtype, FORMAT_NATIVE)
    return Plan(method, dtype, double, fmt, group_size(method, double), params, acceptance)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return FLOAT64 if dtype == FLOAT64 else FLOAT32


def _check_finite(name: str, value: float, dtype: np.dtype, representable: bool = True) -> None:
    if not math.isfinite(value):
        raise ValueError(f"uniform: {name} must be finite, got {value!r}")
    if representable and not math.isfinite(float(_to(value, dtype))):
        raise ValueError(f"uniform: {name}={value!r} is not representable in {dtype.name} (it overflows)")


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
        with np.errstate(over="ignore"):
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
