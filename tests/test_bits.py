"""The shared bitcasts against NumPy views, and the round-to-nearest-even routine against ml_dtypes/NumPy
conversions."""

import ml_dtypes
import numba
import numpy as np
import pytest

from warpinit.kernels import bits as bits_module
from warpinit.kernels.bits import (FORMAT_BFLOAT16, FORMAT_FLOAT16, float32_bits, float32_from_bits,
                                   float64_bits, float64_from_bits, round_16bit, round_float16_integer)


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


@numba.njit
def _round_float16_integer_all(x, bits, values):
    for i in range(x.size):
        b, v = round_float16_integer(x[i])
        bits[i] = np.uint16(b)
        values[i] = v


def test_float16_integer_steps_and_the_simulator_twin_match_numpy():
    """The rounding of CPUs without F16C, and the NumPy twin the CUDA simulator runs."""
    x = _float32_sample()
    bits = np.empty(x.size, np.uint16)
    values = np.empty(x.size, np.float32)
    _round_float16_integer_all(x, bits, values)
    with np.errstate(over="ignore"):
        expected = x.astype(np.float16)
    np.testing.assert_array_equal(bits, expected.view(np.uint16))
    np.testing.assert_array_equal(values, expected.astype(np.float32))
    for i in range(0, x.size, 9973):
        b, v = bits_module._round_float16_py(x[i])
        assert b == bits[i] and v == values[i] and type(v) is np.float32


@numba.njit
def _casts(x32, x64, bits32, bits64, back32, back64):
    for i in range(x32.size):
        bits32[i] = float32_bits(x32[i])
        back32[i] = float32_from_bits(bits32[i])
        bits64[i] = float64_bits(x64[i])
        back64[i] = float64_from_bits(bits64[i])


def test_bitcasts_match_numpy_views_compiled_and_in_python():
    rng = np.random.default_rng(7)
    x32 = np.concatenate([rng.integers(0, 2**32, 100_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
                          np.array([0.0, -0.0, np.inf, -np.inf, 1.0, 2.0**24], np.float32)])
    x64 = np.concatenate([rng.integers(0, 2**64, 100_000, dtype=np.uint64).view(np.float64),
                          np.array([0.0, -0.0, np.inf, -np.inf, 1.0, 2.0**53], np.float64)])
    bits32 = np.empty(x32.size, np.uint64)
    bits64 = np.empty(x64.size, np.uint64)
    back32 = np.empty_like(x32)
    back64 = np.empty_like(x64)
    _casts(x32, x64, bits32, bits64, back32, back64)
    np.testing.assert_array_equal(bits32, x32.view(np.uint32).astype(np.uint64))
    np.testing.assert_array_equal(bits64, x64.view(np.uint64))
    np.testing.assert_array_equal(back32.view(np.uint32), x32.view(np.uint32))  # NaN payloads included
    np.testing.assert_array_equal(back64.view(np.uint64), x64.view(np.uint64))
    # The NumPy twins the CUDA simulator runs.
    for i in range(0, x32.size, 997):
        assert bits_module._float32_bits_py(x32[i]) == bits32[i]
        assert bits_module._float32_from_bits_py(bits32[i]).view(np.uint32) == x32[i].view(np.uint32)
        assert bits_module._float64_bits_py(x64[i]) == bits64[i]
        assert bits_module._float64_from_bits_py(bits64[i]).view(np.uint64) == x64[i].view(np.uint64)
