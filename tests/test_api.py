"""The public array API: arguments, errors, dtypes, out=, empty shapes, devices."""

import math

import ml_dtypes
import numpy as np
import pytest

import warpinit as wi

SAMPLERS = [wi.uniform, wi.normal, wi.truncated_normal]
DTYPES = ["float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_and_dtypes(sampler, dtype):
    x = sampler((3, 5, 7), dtype=dtype, seed=1, device="cpu")
    assert isinstance(x, np.ndarray)
    assert x.shape == (3, 5, 7) and x.dtype == np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    assert x.flags.c_contiguous and np.all(np.isfinite(x.astype(np.float64)))


@pytest.mark.parametrize("dtype", [np.float32, np.dtype("float16"), ml_dtypes.bfloat16, np.dtype(ml_dtypes.bfloat16)])
def test_dtype_spellings(dtype):
    assert wi.normal(4, dtype=dtype, seed=0, device="cpu").dtype == np.dtype(dtype)


def test_int_shape_scalar_shape_and_empty_shapes():
    assert wi.uniform(6, seed=1, device="cpu").shape == (6,)
    scalar = wi.normal((), seed=1, device="cpu")
    assert scalar.shape == () and np.isfinite(scalar)
    for shape in [(0,), (3, 0, 2), (0, 0)]:
        for sampler in SAMPLERS:
            x = sampler(shape, seed=1, device="cpu")
            assert x.shape == shape and x.size == 0


def test_same_seed_same_values_and_none_seed_fresh():
    a = wi.truncated_normal((100,), seed=5, device="cpu")
    np.testing.assert_array_equal(a, wi.truncated_normal((100,), seed=5, device="cpu"))
    assert not np.array_equal(wi.normal(100, device="cpu"), wi.normal(100, device="cpu"))


def test_out_fills_in_place_and_equals_allocating_call():
    for dtype in DTYPES:
        expected = wi.truncated_normal((4, 33), dtype=dtype, seed=9, stream=3, device="cpu")
        out = np.empty((4, 33), dtype=expected.dtype)
        result = wi.truncated_normal((4, 33), dtype=dtype, seed=9, stream=3, device="cpu", out=out)
        assert result is out
        np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))
    # dtype defaults to out's dtype
    out16 = np.empty(10, np.float16)
    assert wi.uniform(10, seed=1, device="cpu", out=out16) is out16


def test_out_with_index_block():
    out = np.empty((2, 3), np.float32)
    wi.normal((10, 10), seed=3, index=(slice(4, 6), slice(1, 4)), out=out, device="cpu")
    np.testing.assert_array_equal(out, wi.normal((10, 10), seed=3, device="cpu")[4:6, 1:4])


@pytest.mark.parametrize(
    "out, error, text",
    [
        (np.empty((4, 5), np.float32), ValueError, "out has shape"),
        (np.empty((5, 4), np.float64), ValueError, "out has dtype"),
        (np.empty((4, 5), np.float32).T, ValueError, "C-contiguous"),
        (np.empty((5, 8), np.float32)[:, ::2], ValueError, "C-contiguous"),
        ([[0.0] * 4] * 5, TypeError, "out must be a NumPy array"),
    ],
)
def test_bad_out(out, error, text):
    with pytest.raises(error, match=text):
        wi.uniform((5, 4), dtype="float32", seed=1, device="cpu", out=out)


def test_read_only_out():
    out = np.empty(5, np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        wi.uniform(5, seed=1, device="cpu", out=out)


HUGE = (2**40,)  # 4 TiB of float32: any allocation would fail, so errors must come first


@pytest.mark.parametrize(
    "call, error, text",
    [
        (lambda: wi.uniform((-1, 3), seed=1), ValueError, r"uniform: shape entries must be >= 0"),
        (lambda: wi.uniform((2.0, 3), seed=1), TypeError, r"uniform: shape entries must be ints"),
        (lambda: wi.uniform("abc", seed=1), TypeError, r"uniform: shape entries must be ints"),
        (lambda: wi.uniform(None, seed=1), TypeError, r"uniform: shape must be an int or a sequence"),
        (lambda: wi.uniform((True, 2), seed=1), TypeError, r"shape entries must be ints"),
        (lambda: wi.uniform((2**40, 2**40), seed=1), ValueError, r"at most 2\*\*63 - 1"),
        (lambda: wi.normal(HUGE, dtype="int32", seed=1), TypeError, r"normal: dtype must be one of"),
        (lambda: wi.normal(HUGE, dtype="float", seed=1), TypeError, r"dtype must be one of"),
        (lambda: wi.normal(HUGE, dtype=np.clongdouble, seed=1), TypeError, r"normal: complex dtypes are complex64 and"),
        (lambda: wi.uniform(HUGE, dtype=np.complex64, seed=1), ValueError, r"uniform: dtype=.*complex64.* is complex"),
        (lambda: wi.truncated_normal(HUGE, dtype="complex128", seed=1), ValueError, r"truncated_normal: dtype='complex"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, mean="0"), TypeError, r"normal: mean must be a real or"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, mean=complex(0, math.inf)), ValueError, r"mean must be fin"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, mean=3e39j), ValueError, r"imaginary part of mean=3e\+39"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, stddev=0.0), ValueError, r"normal: stddev must be finite"),
        (lambda: wi.normal(HUGE, seed=-1), ValueError, r"normal: seed must be in \[0, 2\*\*64\), got -1"),
        (lambda: wi.normal(HUGE, seed=2**64), ValueError, r"seed must be in \[0, 2\*\*64\)"),
        (lambda: wi.normal(HUGE, seed=1.5), TypeError, r"seed must be an int"),
        (lambda: wi.normal(HUGE, seed=True), TypeError, r"seed must be an int"),
        (lambda: wi.normal(HUGE, seed=1, stream=-1), ValueError, r"stream must be in \[0, 2\*\*32\)"),
        (lambda: wi.normal(HUGE, seed=1, stream=2**32), ValueError, r"stream must be in \[0, 2\*\*32\)"),
        (lambda: wi.normal(HUGE, seed=1, stream="0"), TypeError, r"stream must be an int"),
        (lambda: wi.normal(HUGE, seed=1, device="gpu"), ValueError, r"device must be one of"),
        (lambda: wi.normal(HUGE, index=0), ValueError, r"index= needs an explicit seed"),
        (lambda: wi.normal(HUGE, seed=1, stddev=0.0), ValueError, r"normal: stddev must be finite and > 0, got 0.0"),
        (lambda: wi.normal(HUGE, seed=1, stddev=-1.0), ValueError, r"stddev must be finite and > 0"),
        (lambda: wi.normal(HUGE, seed=1, stddev=math.inf), ValueError, r"stddev must be finite and > 0"),
        (lambda: wi.normal(HUGE, seed=1, stddev=math.nan), ValueError, r"stddev must be finite and > 0"),
        (lambda: wi.normal(HUGE, seed=1, mean=math.nan), ValueError, r"normal: mean must be finite"),
        (lambda: wi.normal(HUGE, seed=1, mean="0"), TypeError, r"normal: mean must be a real number"),
        (lambda: wi.normal(HUGE, seed=1, mean=1j), TypeError, r"mean must be a real number"),
        (lambda: wi.normal(HUGE, seed=1, stddev=1e-9, dtype="float16"), ValueError, r"stddev=1e-09 is not representable in float16"),
        (lambda: wi.normal(HUGE, seed=1, stddev=1e5, dtype="float16"), ValueError, r"not representable in float16"),
        (lambda: wi.normal(HUGE, seed=1, mean=1e39), ValueError, r"mean=1e\+39 is not representable in float32"),
        (lambda: wi.uniform(HUGE, seed=1, minval=1.0, maxval=1.0), ValueError, r"uniform: minval must be < maxval"),
        (lambda: wi.uniform(HUGE, seed=1, minval=0.0, maxval=math.inf), ValueError, r"maxval must be finite"),
        (lambda: wi.uniform(HUGE, seed=1, minval=-3e38, maxval=3e38), ValueError, r"overflows float32"),
        (lambda: wi.uniform(HUGE, seed=1, minval=1.001, maxval=1.002, dtype="bfloat16"), ValueError, r"no bfloat16 value lies in"),
        (lambda: wi.truncated_normal(HUGE, seed=1, lower=1.0, upper=1.0), ValueError, r"truncated_normal: lower must be < upper"),
        (lambda: wi.truncated_normal(HUGE, seed=1, lower=2.0, upper=-2.0), ValueError, r"lower must be < upper"),
        (lambda: wi.truncated_normal(HUGE, seed=1, lower=math.nan), ValueError, r"lower must be a number"),
        (lambda: wi.truncated_normal(HUGE, seed=1, lower=math.inf, upper=math.inf), ValueError, r"lower must be < upper"),
        (lambda: wi.truncated_normal(HUGE, seed=1, mean=1.0, stddev=1e-4, lower=0.1, upper=0.2, dtype="bfloat16"), ValueError, r"no bfloat16 value lies in"),
        (lambda: wi.truncated_normal(HUGE, seed=1, lower=1e6, upper=math.inf, dtype="float16"), ValueError, r"no float16 value"),
        (lambda: wi.uniform(HUGE, seed=1, index=(slice(0, 5, 2),)), ValueError, r"uniform: index: only slices with step 1"),
        (lambda: wi.uniform(HUGE, seed=1, index=(0, 0)), IndexError, r"too many indices"),
        (lambda: wi.uniform(HUGE, seed=1, index=2**41), IndexError, r"out of bounds"),
        (lambda: wi.uniform(HUGE, seed=1, index=np.array([1, 2])), TypeError, r"index: entries must be ints"),
        (lambda: wi.uniform(HUGE, seed=1, index=None), MemoryError, r"needs 4398046511104 bytes"),
        (lambda: wi.uniform(HUGE, seed=1, device="cpu"), MemoryError, r"4398046511104 bytes \(4096.0 GiB\)"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, device="cpu"), MemoryError, r"needs 8796093022208 bytes"),
        (lambda: wi.normal(HUGE, dtype="complex64", seed=1, index=(0, 0)), IndexError, r"normal: index: too many"),
    ],
)
def test_bad_input_raises_before_allocating(call, error, text):
    with pytest.raises(error, match=text):
        call()


def test_keyword_only():
    with pytest.raises(TypeError):
        wi.uniform((3,), 0.0, 1.0)


def test_cuda_without_gpu_raises():
    with pytest.raises(RuntimeError, match="device='cuda' needs a CUDA GPU"):
        wi.normal(4, seed=1, device="cuda")


def test_auto_picks_cpu_without_gpu():
    assert isinstance(wi.normal(4, seed=1, device="auto"), np.ndarray)


def test_numpy_scalar_arguments():
    x = wi.truncated_normal(np.int64(8), mean=np.float32(1.0), stddev=np.float64(2.0), lower=np.int32(-1),
                            seed=np.uint64(3), stream=np.int16(2), device="cpu")
    y = wi.truncated_normal(8, mean=1.0, stddev=2.0, lower=-1.0, seed=3, stream=2, device="cpu")
    np.testing.assert_array_equal(x, y)
