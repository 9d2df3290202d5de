"""The shared round-to-nearest-even routine against ml_dtypes/NumPy conversions."""

import ml_dtypes
import numba
import numpy as np
import pytest

from warpinit.kernels.bits import FORMAT_BFLOAT16, FORMAT_FLOAT16, round_16bit


@numba.njit
def _round_all(x, fmt, bits, values):
    for i in range(x.size):
        b, v = round_16bit(x[i], fmt)
        bits[i] = np.uint16(b)
        values[i] = v


def _float32_sample():
    """Every 61st float32 bit pattern (70 million values across all binades) and the edge cases."""
    patterns = np.arange(0, 2**32, 61, dtype=np.uint64).astype(np.uint32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, 65504.0, 65519.99, 65520.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26,
                      2.0**-14, np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1.00390625, 1.01171875],
                     dtype=np.float32)
    x = np.concatenate([patterns.view(np.float32), edges, -edges])
    return x[~np.isnan(x)]


@pytest.mark.parametrize("fmt, dtype", [(FORMAT_BFLOAT16, ml_dtypes.bfloat16), (FORMAT_FLOAT16, np.float16)])
def test_round_to_nearest_even_matches_reference(fmt, dtype):
    x = _float32_sample()
    bits = np.empty(x.size, np.uint16)
    values = np.empty(x.size, np.float32)
    _round_all(x, fmt, bits, values)
    with np.errstate(over="ignore"):
        expected = x.astype(dtype)
    np.testing.assert_array_equal(bits, expected.view(np.uint16))
    np.testing.assert_array_equal(values, expected.astype(np.float32))
