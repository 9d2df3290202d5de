"""Valid requests that used to run 65,536 attempts per element or be refused: every interval holding a
representable value of the output dtype is sampled in a few proposal rounds per element, from the
law of the rounded normal conditioned on the bounds (edge cells included).

Statistical tests use fixed seeds and reject at significance ALPHA = 1e-3 (chi-square over the
rounding cells against the exact cell probabilities, or KS); the seeds are fixed, so the outcome is
deterministic.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

import warpinit as wi
from warpinit.kernels import plan
from warpinit.kernels import samplers as S

ALPHA = 1e-3
DTYPES = {"float16": plan.FLOAT16, "bfloat16": plan.BFLOAT16, "float32": plan.FLOAT32, "float64": plan.FLOAT64}
FINE = set(S.FINE_METHODS)


def _plan(mean, stddev, lower, upper, dtype):
    return plan.truncated_normal(mean, stddev, lower, upper, DTYPES[dtype])


def _cell_std(value, dtype, mean, stddev):
    """The rounding cell of ``value`` in standard deviations around the mean (floats)."""
    low, high = plan._cell(float(value), DTYPES[dtype])
    m, s = Fraction(mean), Fraction(stddev)
    return float((low - m) / s), float((high - m) / s)


def _mass(a, b):
    """P(a <= Z <= b), accurate in both tails."""
    if a >= 0:
        return stats.norm.sf(a) - stats.norm.sf(b)
    if b <= 0:
        return stats.norm.cdf(b) - stats.norm.cdf(a)
    return stats.norm.cdf(b) - stats.norm.cdf(a)


def _chi_square_against_rounded_law(x, dtype, mean, stddev, lower, upper):
    """p-value of the values x against the rounded normal conditioned on [lower, upper] (std units)."""
    p = _plan(mean, stddev, lower, upper, dtype)
    a = _cell_std(p.params[2] if p.method in FINE else float(p.params[2]), dtype, mean, stddev)[0]
    b = _cell_std(float(p.params[3]), dtype, mean, stddev)[1]
    a = a if math.isfinite(lower) else -math.inf
    b = b if math.isfinite(upper) else math.inf
    total = _mass(a, b)
    values, counts = np.unique(x.astype(np.float64), return_counts=True)
    probabilities = np.array([_mass(*_cell_std(v, dtype, mean, stddev)) for v in values]) / total
    expected = probabilities * x.size
    keep = expected >= 20
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(expected[keep], x.size - expected[keep].sum())
    if expected[-1] < 1e-9 and observed[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    assert keep.sum() >= 2, "the law must spread over several cells for this test to say anything"
    return stats.chisquare(observed, expected).pvalue


# Item: the intervals that never finished -------------------------------------------------------------


@pytest.mark.parametrize(
    "mean, stddev, lower, upper, dtype, value",
    [
        # float32 cannot hold the mean, and the stddev is far below its spacing there: one value lies in
        # the first interval; in the second the law sits at the top end, 17 stddevs from the next value.
        (1e-3, 1e-12, -100.0, -10.0, "float32", 0.0009999999310821295),
        (0.1, 1e-9, -50.0, -20.0, "float32", 0.09999997913837433),
        # 16-bit far tails whose float32 candidates all rounded onto a midpoint (ties to even, outside).
        (1000.0, 1e-3, 5.0, math.inf, "bfloat16", 1004.0),
        (0.0, 1.0, 30000.0, math.inf, "bfloat16", 30080.0),
        (0.0, 1.0, 30000.0, math.inf, "float16", 30000.0),
        # float64 intervals whose proposal collapsed in float64 arithmetic ("math domain error").
        (1.0, 1.0, -1e-17, 1e-17, "float64", 1.0),
        (0.5, 1e-20, -1.0, 1.0, "float64", 0.5),
    ],
)
def test_intervals_that_never_finished_give_their_law(mean, stddev, lower, upper, dtype, value):
    p = _plan(mean, stddev, lower, upper, dtype)
    assert p.acceptance >= 0.3  # a few proposal rounds per element at most
    x = wi.truncated_normal(4096, mean=mean, stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=1,
                            device="cpu")
    np.testing.assert_array_equal(x.astype(np.float64), np.full(4096, value))


def test_torch_trunc_normal_of_an_unrepresentable_mean_finishes():
    torch = pytest.importorskip("torch")
    import warpinit.torch as wit

    tensor = torch.empty(4096)
    wit.trunc_normal_(tensor, mean=0.1, std=1e-9, a=0.1 - 50e-9, b=0.1 - 20e-9, seed=1)
    values = tensor.numpy().astype(np.float64)
    assert np.all(values >= 0.1 - 50e-9) and np.all(values <= 0.1 - 20e-9)
    assert np.unique(values).size == 1  # the law: the value at the top end


def test_a_float16_uniform_beyond_the_range_is_the_uniform_over_the_finite_values():
    p = plan.uniform(0.0, 1e10, plan.FLOAT16)
    assert p.acceptance >= 0.3
    x = wi.uniform(1_000_000, maxval=1e10, dtype="float16", seed=1, device="cpu").astype(np.float64)
    assert np.all(np.isfinite(x)) and x.max() <= 65504.0 and x.min() >= 0.0
    # Uniform on [0, 65520) (what rounds to finite float16 values), rounded: KS against it, with the
    # rounding (at most 16 in 65520) far below the test's resolution at this size.
    assert stats.kstest(x, stats.uniform(0.0, 65520.0).cdf).pvalue > ALPHA


def test_a_narrow_uniform_float32_cannot_place_finishes_with_its_law():
    # [0.1, 0.1 + 5e-8): float32's 0.1 is 1.5e-9 above 0.1, a fifth of its spacing there.
    minval, maxval = 0.1, 0.1 + 5e-8
    assert plan.uniform(minval, maxval, plan.FLOAT32).method == S.METHOD_FINE_FLAT
    x = wi.uniform(1_000_000, minval=minval, maxval=maxval, seed=2, device="cpu")
    values, counts = np.unique(x.astype(np.float64), return_counts=True)
    cells = [plan._cell(float(v), plan.FLOAT32) for v in values]
    lengths = [float(min(high, Fraction(maxval)) - max(low, Fraction(minval))) for low, high in cells]
    # Uniform on the part of [minval, maxval) that rounds into the interval's values.
    expected = np.array(lengths) / sum(lengths) * x.size
    assert np.all(x.astype(np.float64) >= minval) and np.all(x.astype(np.float64) < maxval)
    assert stats.chisquare(counts, expected).pvalue > ALPHA


# Item: edge cells of narrow float32 intervals ----------------------------------------------------------


def test_narrow_float32_interval_edges_have_their_full_probability():
    """10**7 draws of [3, 3.0001] in float32 (420 values): the edge values had half their probability."""
    n = 10**7
    x = wi.truncated_normal((n,), lower=3.0, upper=3.0001, dtype="float32", seed=1234, device="cpu")
    values, counts = np.unique(x.astype(np.float64), return_counts=True)
    assert values[0] == 3.0 and values.size == 420
    probabilities = np.array([_mass(*_cell_std(v, "float32", 0.0, 1.0)) for v in values])
    probabilities /= probabilities.sum()
    # The rounded law's CDF at each value against the empirical one (KS; conservative for a discrete
    # law), the chi-square over the cells, and each edge value's count (binomial, two-sided).
    distance = np.max(np.abs(np.cumsum(counts) / n - np.cumsum(probabilities)))
    assert stats.kstwo.sf(distance, n) > ALPHA
    assert stats.chisquare(counts, probabilities * n).pvalue > ALPHA
    for edge in (0, -1):
        assert stats.binomtest(int(counts[edge]), n, probabilities[edge]).pvalue > ALPHA


# The fine methods' laws ---------------------------------------------------------------------------------

_FINE_LAWS = [
    # (mean, stddev, lower, upper, dtype, method)
    (0.1, 1e-7, -2.0, 2.0, "float32", S.METHOD_FINE_NORMAL),
    (0.1, 1e-6, 3.0, math.inf, "float32", S.METHOD_FINE_EXPONENTIAL),
    (-0.1, 1e-6, -math.inf, -3.0, "float32", S.METHOD_FINE_EXPONENTIAL),  # mirrored
    (0.0, 1.0, 3.0, 3.0001, "float32", S.METHOD_FINE_UNIFORM),
    (0.1, 1e-7, -0.3, 0.4, "float32", S.METHOD_FINE_UNIFORM),  # narrow, straddling the mean
    (1002.0, 0.1, -25.0, 25.0, "bfloat16", S.METHOD_FINE_NORMAL),  # the mean on a cell boundary
    (1000.25, 0.005, -math.inf, math.inf, "float16", S.METHOD_FINE_NORMAL),
]


@pytest.mark.parametrize("mean, stddev, lower, upper, dtype, method", _FINE_LAWS)
def test_fine_methods_sample_the_rounded_law(mean, stddev, lower, upper, dtype, method):
    p = _plan(mean, stddev, lower, upper, dtype)
    assert p.method == method and p.acceptance >= 0.3
    x = wi.truncated_normal(1_000_000, mean=mean, stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=21,
                            device="cpu")
    xf = x.astype(np.float64)
    assert np.all(xf >= mean + lower * stddev) and np.all(xf <= mean + upper * stddev)
    assert _chi_square_against_rounded_law(x, dtype, mean, stddev, lower, upper) > ALPHA


def test_fine_exponential_far_tail_in_float64():
    # [1e6, inf) standard deviations: float64 cannot add the offsets (about 1e-6) to 1e6 without
    # losing them to its spacing (1.2e-10) at the old rate of rounding errors; the law is 1e6 + Exp(1e6).
    p = _plan(0.0, 1.0, 1e6, math.inf, "float64")
    assert p.method == S.METHOD_FINE_EXPONENTIAL
    x = wi.truncated_normal(1_000_000, lower=1e6, upper=math.inf, dtype="float64", seed=22, device="cpu")
    assert x.min() >= 1e6
    assert stats.kstest(x - 1e6, stats.expon(scale=1e-6).cdf).pvalue > ALPHA


def test_fine_uniform_narrow_far_tail_in_float64():
    # [1e6, 1e6 + 1e-7] standard deviations: 860 float64 values, density proportional to exp(-1e6 t)
    # at an offset t from the interval's lower edge (t**2 / 2 below 5e-15: negligible).
    lower, upper = 1e6, 1e6 + 1e-7
    p = _plan(0.0, 1.0, lower, upper, "float64")
    assert p.method == S.METHOD_FINE_UNIFORM and p.acceptance >= 0.3
    x = wi.truncated_normal(1_000_000, lower=lower, upper=upper, dtype="float64", seed=23, device="cpu")
    assert x.min() >= lower and x.max() <= upper
    values, counts = np.unique(x, return_counts=True)
    edge = plan._cell(float(p.params[2]), plan.FLOAT64)[0]
    offsets = [[float(end - edge) for end in plan._cell(float(v), plan.FLOAT64)] for v in values]
    top = float(plan._cell(float(p.params[3]), plan.FLOAT64)[1] - edge)
    rate = float(edge)
    mass = np.array([math.exp(-rate * low) - math.exp(-rate * high) for low, high in offsets])
    expected = mass / (1.0 - math.exp(-rate * top)) * x.size
    assert abs(expected.sum() - x.size) < 1e-6 * x.size  # every value with mass was drawn
    assert stats.chisquare(counts, expected * x.size / expected.sum()).pvalue > ALPHA


def test_fine_methods_are_used_only_where_the_continuous_arithmetic_falls_short():
    # Every interval of the distribution tests and the golden vectors keeps its continuous plan (its
    # values unchanged), for every dtype.
    intervals = [(-2.0, 2.0), (-np.inf, np.inf), (0.0, np.inf), (3.0, np.inf), (8.0, 9.0), (1.9, 2.0), (-10.0, -9.0),
                 (-0.01, 0.01), (-np.inf, -5.0), (0.5, 3.0), (-1.0, 40.0), (4.0, np.inf)]
    for dtype in DTYPES:
        for mean, stddev in ((0.0, 1.0), (0.25, 1.5), (0.3, 0.7)):
            for lower, upper in intervals:
                assert _plan(mean, stddev, lower, upper, dtype).method not in FINE, (dtype, mean, stddev, lower, upper)
        for mean, stddev, lower, upper in ((-1.0, 0.5, -12.0, -11.0), (0.0, 0.02, -2.0, 2.0), (0.1, 1e-3, -2.0, 2.0)):
            assert _plan(mean, stddev, lower, upper, dtype).method not in FINE
        for minval, maxval in ((0.0, 1.0), (-1.5, 2.5), (-2.0, 3.0)):
            assert plan.uniform(minval, maxval, DTYPES[dtype]).method == S.METHOD_UNIFORM


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_fine_blocks_equal_the_whole_tensor(dtype):
    kwargs = {"float32": dict(mean=0.1, stddev=1e-7), "bfloat16": dict(mean=1002.0, stddev=0.1, lower=-25, upper=25),
              "float16": dict(mean=1000.25, stddev=0.005, lower=-math.inf, upper=math.inf),
              "float64": dict(lower=1e6, upper=math.inf)}[dtype]
    whole = wi.truncated_normal((7, 301), dtype=dtype, seed=5, stream=3, device="cpu", **kwargs)
    block = wi.truncated_normal((7, 301), dtype=dtype, seed=5, stream=3, device="cpu", index=(slice(2, 5), slice(7, 290)),
                                **kwargs)
    np.testing.assert_array_equal(block.view(np.uint8), np.ascontiguousarray(whole[2:5, 7:290]).view(np.uint8))


def test_exact_sum_rounds_correctly():
    """The fine methods' rounding of b_hi + b_lo + w against exact rationals, ties included."""
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        info = np.finfo(dtype)
        for _ in range(3000):
            b_hi = dtype(rng.uniform(-4, 4) * 2.0 ** int(rng.integers(-10, 10)))
            ulp = np.spacing(b_hi)
            b_lo = dtype(ulp / 2 * rng.choice([-1, 1])) if rng.random() < 0.8 else dtype(0)
            scale = float(ulp) * 2.0 ** int(rng.integers(-30, 12))
            w = dtype(rng.choice([rng.uniform(-1, 1) * scale, 0.0, -float(b_lo) + float(ulp) * 2.0 ** -20]))
            f, e = S.exact_sum.py_func(b_hi, b_lo, w)
            exact = Fraction(float(b_hi)) + Fraction(float(b_lo)) + Fraction(float(w))
            below, above = np.nextafter(f, dtype(-np.inf)), np.nextafter(f, dtype(np.inf))
            distance = abs(Fraction(float(f)) - exact)
            assert distance <= abs(Fraction(float(below)) - exact) and distance <= abs(Fraction(float(above)) - exact)
            assert (e > 0) == (exact > Fraction(float(f))) and (e < 0) == (exact < Fraction(float(f)))
        del info
