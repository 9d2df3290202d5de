"""The branch-free log/sin/cos of warpinit's samplers against libm (float64 / extended precision)."""

import numba
import numpy as np
import pytest

from warpinit.kernels.elementary import log_uniform24, log_uniform53, sincos_turn24, sincos_turn53

# Error bounds the module promises, in ulp of the result.
LOG_ULP = 1.0
SINCOS_ULP = 2.0


@numba.njit
def _log24_all(out):
    for i in range(out.size):
        out[i] = log_uniform24(np.int64(i + 1))


@numba.njit
def _sincos24_all(s, c):
    for j in range(s.size):
        s[j], c[j] = sincos_turn24(np.int64(j))


@numba.njit
def _log53(n, out):
    for i in range(n.size):
        out[i] = log_uniform53(n[i])


@numba.njit
def _sincos53(j, s, c):
    for i in range(j.size):
        s[i], c[i] = sincos_turn53(j[i])


def _ulps(got, exact, dtype):
    exact = np.asarray(exact)
    spacing = np.spacing(np.abs(exact).astype(dtype)).astype(exact.dtype)
    spacing[exact == 0] = np.finfo(dtype).smallest_subnormal
    return np.abs(got.astype(exact.dtype) - exact) / spacing


def _exact_turn(j, bits, dtype):
    """sin and cos of 2 pi j / 2**bits, reduced exactly by quadrant, in ``dtype`` (float64/longdouble)."""
    quarter = 1 << (bits - 2)
    q = (j + quarter // 2) // quarter
    x = (j - q * quarter).astype(dtype) * (np.pi / 2 if dtype == np.float64 else np.longdouble("1.570796326794896619231321691639751442"))
    x = x / dtype(quarter)
    s, c = np.sin(x), np.cos(x)
    quadrant = q % 4
    sin = np.choose(quadrant, [s, c, -s, -c])
    cos = np.choose(quadrant, [c, -s, -c, s])
    return sin, cos


def test_log_uniform24_every_input():
    out = np.empty(1 << 24, np.float32)
    _log24_all(out)
    exact = np.log(np.arange(1, (1 << 24) + 1, dtype=np.float64) * 2.0**-24)
    assert _ulps(out, exact, np.float32).max() <= LOG_ULP
    assert out[-1] == 0.0 and np.all(np.isfinite(out))


def test_sincos_turn24_every_input():
    n = 1 << 24
    s, c = np.empty(n, np.float32), np.empty(n, np.float32)
    _sincos24_all(s, c)
    sin, cos = _exact_turn(np.arange(n, dtype=np.int64), 24, np.float64)
    assert _ulps(s, sin, np.float32).max() <= SINCOS_ULP
    assert _ulps(c, cos, np.float32).max() <= SINCOS_ULP
    assert np.all(np.abs(s) <= 1) and np.all(np.abs(c) <= 1)


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63, reason="needs x87 extended precision for the float64 reference")
def test_float64_versions_sampled():
    rng = np.random.default_rng(2024)
    n = np.concatenate([rng.integers(1, 2**53 + 1, 2_000_000), np.arange(1, 4097), 2**53 - np.arange(4096)]).astype(np.int64)
    out = np.empty(n.size)
    _log53(n, out)
    exact = np.log(n.astype(np.longdouble) * np.longdouble(2.0) ** -53)
    assert _ulps(out, exact, np.float64).max() <= LOG_ULP
    j = np.concatenate([rng.integers(0, 2**53, 2_000_000), np.arange(4096), 2**53 - 1 - np.arange(4096)]).astype(np.int64)
    s, c = np.empty(j.size), np.empty(j.size)
    _sincos53(j, s, c)
    sin, cos = _exact_turn(j, 53, np.longdouble)
    assert _ulps(s, sin, np.float64).max() <= SINCOS_ULP
    assert _ulps(c, cos, np.float64).max() <= SINCOS_ULP
