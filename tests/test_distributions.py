"""Distributions against SciPy: Kolmogorov-Smirnov at 10**6 samples, moments, bounds, rounding.

Every test uses fixed seeds; each KS or chi-square test rejects at significance ALPHA = 1e-3, so a
correct sampler fails one of them for a random seed with probability 1e-3 (the seeds are fixed, so
the outcome is deterministic).
"""

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

import warpinit as wi
from warpinit.kernels import plan

ALPHA = 1e-3
N = 1_000_000
INTERVALS = [
    (-2.0, 2.0),  # Keras/TF default
    (-np.inf, np.inf),
    (0.0, np.inf),
    (3.0, np.inf),  # tail: exponential proposal
    (8.0, 9.0),  # far tail beyond float32 Box-Muller's reach
    (1.9, 2.0),  # narrow: uniform proposal
    (-10.0, -9.0),  # left tail, mirrored
    (-0.01, 0.01),  # narrow around zero
    (-np.inf, -5.0),
    (0.5, 3.0),
    (-1.0, 40.0),
]


@pytest.mark.parametrize("lower, upper", INTERVALS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_truncated_normal_ks(lower, upper, dtype):
    mean, stddev = 0.25, 1.5
    x = wi.truncated_normal(N, mean=mean, stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=11, device="cpu")
    x = x.astype(np.float64)
    assert x.min() >= mean + lower * stddev and x.max() <= mean + upper * stddev
    reference = stats.truncnorm(lower, upper, loc=mean, scale=stddev)
    assert stats.kstest(x, reference.cdf).pvalue > ALPHA
    # Moments: mean within 5 standard errors.
    assert abs(x.mean() - reference.mean()) < 5 * reference.std() / math.sqrt(N)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normal_ks_and_moments(dtype):
    x = wi.normal(N, mean=-1.0, stddev=0.5, dtype=dtype, seed=12, device="cpu").astype(np.float64)
    assert stats.kstest(x, stats.norm(-1.0, 0.5).cdf).pvalue > ALPHA
    assert abs(x.mean() + 1.0) < 5 * 0.5 / math.sqrt(N)
    assert abs(x.std() / 0.5 - 1) < 5 / math.sqrt(2 * N)
    assert abs(stats.skew(x)) < 5 * math.sqrt(6 / N)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24 / N)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_ks(dtype):
    x = wi.uniform(N, minval=-2.0, maxval=3.0, dtype=dtype, seed=13, device="cpu").astype(np.float64)
    assert x.min() >= -2.0 and x.max() < 3.0
    assert stats.kstest(x, stats.uniform(-2.0, 5.0).cdf).pvalue > ALPHA


def test_a_stream_passes_where_its_neighbour_does():
    # The same test on another stream and seed: the samplers are not tuned to one seed.
    for seed, stream in [(1, 0), (2**63 + 5, 17), (123456789, 2**32 - 1)]:
        x = wi.truncated_normal(N, seed=seed, stream=stream, device="cpu").astype(np.float64)
        assert stats.kstest(x, stats.truncnorm(-2, 2).cdf).pvalue > ALPHA


def _rounded_bucket_probabilities(values, dtype, law):
    """P(round(X) == v) for each distinct representable v, from the law's CDF over the rounding cells."""
    v = np.unique(values.astype(np.float64))
    finfo = ml_dtypes.finfo(dtype)
    # Cell edges: midpoints between neighbouring representable values (ties have probability zero).
    below = np.array([plan.step(x, np.dtype(dtype), -1) for x in v])
    above = np.array([plan.step(x, np.dtype(dtype), 1) for x in v])
    lo, hi = (v + below) / 2, (v + above) / 2
    del finfo
    return v, law.cdf(hi) - law.cdf(lo)


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16])
@pytest.mark.parametrize("lower, upper", [(1.9, 2.0), (-2.0, 2.0), (3.0, 3.5), (-0.05, 0.05)])
def test_16bit_truncated_normal_is_the_rounded_law(dtype, lower, upper):
    """Chi-square of the 16-bit values against the rounded normal conditioned on the bounds."""
    mean, stddev = 0.0, 1.0
    x = wi.truncated_normal(N, mean=mean, stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=14, device="cpu")
    xf = x.astype(np.float64)
    assert xf.min() >= lower and xf.max() <= upper
    values, counts = np.unique(xf, return_counts=True)
    law = stats.norm(mean, stddev)
    v, p = _rounded_bucket_probabilities(values, dtype, law)
    p = p / p.sum()
    expected = p * N
    # Pool cells with few expected counts into their neighbours for the chi-square approximation.
    keep = expected >= 20
    observed = np.append(counts[keep], counts[~keep].sum())
    expected = np.append(expected[keep], expected[~keep].sum())
    if observed[-1] == 0 and expected[-1] < 1e-9:
        observed, expected = observed[:-1], expected[:-1]
    assert stats.chisquare(observed, expected).pvalue > ALPHA
    # Every representable value inside the bounds that has noticeable mass appears.
    assert keep.sum() >= 2


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_bounds_hold_after_rounding(dtype):
    for lower, upper in INTERVALS:
        x = wi.truncated_normal(200_000, mean=0.3, stddev=0.7, lower=lower, upper=upper, dtype=dtype, seed=15, device="cpu")
        x = x.astype(np.float64)
        assert np.all(x >= 0.3 + lower * 0.7) and np.all(x <= 0.3 + upper * 0.7), (lower, upper)
        assert np.all(np.isfinite(x))
    u = wi.uniform(200_000, minval=0.0, maxval=1.0, dtype=dtype, seed=16, device="cpu").astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    # maxval one ulp above a representable value: nothing may round up onto maxval.
    top = float(np.array(1.0, dtype=dtype).astype(np.float64))
    u = wi.uniform(200_000, minval=top / 2, maxval=top, dtype=dtype, seed=17, device="cpu").astype(np.float64)
    assert u.max() < top


def test_truncation_is_exact_at_scale():
    """No value escapes [-2, 2] in 2 * 10**7 draws (Keras's torch backend lets ~4 per million through)."""
    x = wi.truncated_normal(20_000_000, seed=18, device="cpu")
    assert x.min() >= -2.0 and x.max() <= 2.0
    assert abs(float(x.std(dtype=np.float64)) - stats.truncnorm(-2, 2).std()) < 1e-3


@pytest.mark.parametrize(
    "mean, stddev, lower, upper, dtype",
    [
        (0.5, 1.0, 1e10, np.inf, "float32"),  # bound far beyond the float32 spacing of the mean
        (1e6, 1e-3, -2.0, 2.0, "float32"),  # the whole interval is one float32 value
        (0.0, 1.0, 30.0, 30.0000001, "float64"),
        (0.0, 1.0, -1e4, -1e4 + 1e-6, "float64"),
        (1.0, 1e-3, 0.0, 3.90625, "bfloat16"),  # exactly two bfloat16 values
        (60000.0, 1000.0, 2.0, np.inf, "float16"),  # upper side overflows float16
        (0.0, 1.0, 5.7, 5.9, "float32"),
        (0.0, 1.0, 38.0, np.inf, "float32"),
    ],
)
def test_extreme_intervals_finish_and_hold(mean, stddev, lower, upper, dtype):
    x = wi.truncated_normal(10_000, mean=mean, stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=19, device="cpu")
    xf = x.astype(np.float64)
    assert np.all(np.isfinite(xf))
    assert np.all(xf >= mean + lower * stddev) and np.all(xf <= mean + upper * stddev)


def test_every_interval_has_an_efficient_method():
    """The chosen proposal accepts with probability >= 0.3 over a grid of intervals (expected time bounded)."""
    edges = [-np.inf, -50, -10, -5, -3, -2, -1, -0.5, -0.1, -1e-3, 0, 1e-3, 0.1, 0.5, 1, 2, 3, 5, 10, 50, np.inf]
    worst = 1.0
    for i, a in enumerate(edges):
        for b in edges[i + 1:]:
            for width in (None, 1e-6, 1e-2, 0.3, 3.0):
                lo, hi = a, b
                if width is not None:
                    if not np.isfinite(a):
                        continue
                    hi = a + width
                method, sign, acceptance = plan.choose_method(lo, hi)
                worst = min(worst, acceptance)
    assert worst >= 0.3
