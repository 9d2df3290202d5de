"""Bad input that used to slip through: every case is refused with the error policy's type, naming the
parameter, before anything is allocated or compiled (DESIGN.md, Errors)."""

import math
import re

import ml_dtypes
import numpy as np
import pytest

import warpinit as wi

SAMPLERS = {
    "uniform": wi.uniform,
    "normal": wi.normal,
    "truncated_normal": wi.truncated_normal,
}
HUGE = (2**40,)  # 4 TiB of float32: any allocation would fail, so errors must come first


def _call(name, shape, **kwargs):
    if name == "orthogonal":
        return wi.orthogonal(shape, **kwargs)
    return SAMPLERS[name](shape, **kwargs)


# out= -----------------------------------------------------------------------------------------------

_BAD_DTYPES = [np.int32, np.uint16, np.int64, np.bool_, np.complex64, np.complex128, np.longdouble, "U1",
               np.dtype(">f4"), np.dtype(">f8"), np.dtype(">f2")]


@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
@pytest.mark.parametrize("dtype", _BAD_DTYPES, ids=str)
def test_out_of_an_unsupported_dtype_is_a_type_error_naming_out(function, dtype):
    shape = (4, 3)
    out = np.zeros(shape, dtype=dtype)
    if function in ("normal", "orthogonal") and np.dtype(dtype).kind == "c":  # complex values: offered
        assert _call(function, shape, seed=1, device="cpu", out=out) is out and out.any()
        return
    with pytest.raises(TypeError, match=rf"{function}: out must have dtype float16, bfloat16, float32, float64"):
        _call(function, shape, seed=1, device="cpu", out=out)
    assert not out.any()  # nothing written


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix's own warning
@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
def test_out_subclasses_and_layouts(function):
    matrix = np.asmatrix(np.zeros((4, 3), np.float32))
    with pytest.raises(TypeError, match=rf"{function}: out must be a plain NumPy array.*matrix"):
        _call(function, (4, 3), seed=1, device="cpu", out=matrix)
    masked = np.ma.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match=rf"{function}: out must be a plain NumPy array.*MaskedArray"):
        _call(function, (4, 3), seed=1, device="cpu", out=masked)
    with pytest.raises(ValueError, match=rf"{function}: out must be C-contiguous"):
        _call(function, (3, 4), seed=1, device="cpu", out=np.zeros((4, 3), np.float32).T)
    read_only = np.zeros((4, 3), np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=rf"{function}: out must be writable"):
        _call(function, (4, 3), seed=1, device="cpu", out=read_only)


def test_memmap_out_is_accepted(tmp_path):
    mapped = np.memmap(tmp_path / "out.bin", dtype=np.float32, mode="w+", shape=(4, 3))
    assert wi.normal((4, 3), seed=1, device="cpu", out=mapped) is mapped
    np.testing.assert_array_equal(mapped, wi.normal((4, 3), seed=1, device="cpu"))


@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
def test_a_torch_tensor_as_out_is_a_type_error_naming_out(function):
    torch = pytest.importorskip("torch")
    tensor = torch.zeros((4, 3))
    with pytest.raises(TypeError, match=rf"{function}: out must be a NumPy array"):
        _call(function, (4, 3), seed=1, device="cpu", out=tensor)
    with pytest.raises(TypeError, match=rf"{function}: out must be a NumPy array"):
        _call(function, (4, 3), seed=1, device="cpu", out=tensor, dtype="float32")
    assert not tensor.any()


# Streams: Python-int arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [np.uint32(2**32 - 1), np.int64(2**32 - 1), 2**32 - 1])
def test_stream_plus_batch_does_not_wrap(stream):
    with pytest.raises(ValueError, match=r"orthogonal: stream \+ batch must be <= 2\*\*32, got stream=4294967295 and batch=2"):
        wi.orthogonal((3, 3), seed=1, stream=stream, batch=2, device="cpu")
    assert wi.orthogonal((3, 3), seed=1, stream=stream, batch=1, device="cpu").shape == (1, 3, 3)


@pytest.mark.parametrize("stream_type", [np.int32, np.uint32, np.int16, np.uint8])
def test_narrow_integer_streams_with_a_large_batch(stream_type):
    stream = stream_type(np.iinfo(stream_type).max)
    with pytest.raises(ValueError, match=r"stream \+ batch must be <= 2\*\*32"):
        wi.orthogonal((3, 3), seed=1, stream=stream, batch=2**32, device="cpu")
    with pytest.raises(ValueError, match=r"stream \+ batch must be <= 2\*\*32"):
        wi.orthogonal((3, 3), seed=1, stream=stream, batch=np.int64(2**40), device="cpu")


def test_dask_orthogonal_stream_does_not_wrap():
    wid = pytest.importorskip("warpinit.dask")
    with pytest.raises(ValueError, match=r"stream \+ batch must be <= 2\*\*32"):
        wid.orthogonal((3, 3), batch=2, seed=1, stream=np.uint32(2**32 - 1))


# Reals, shapes, devices ------------------------------------------------------------------------------

_REALS = [
    ("uniform", "minval", {"maxval": 10.0**300}),
    ("uniform", "maxval", {}),
    ("normal", "mean", {}),
    ("normal", "stddev", {}),
    ("truncated_normal", "mean", {}),
    ("truncated_normal", "stddev", {}),
    ("truncated_normal", "lower", {}),
    ("truncated_normal", "upper", {}),
    ("orthogonal", "gain", {}),
]


@pytest.mark.parametrize("function, name, others", _REALS)
@pytest.mark.parametrize("value", [10**400, -(10**400), 2**1024])
def test_huge_ints_are_a_value_error_naming_the_parameter(function, name, others, value):
    shape = (3, 3) if function == "orthogonal" else HUGE
    with pytest.raises(ValueError, match=rf"{function}: {name} must be a real number within float64's range"):
        _call(function, shape, seed=1, **{name: value, **others})


@pytest.mark.parametrize(
    "shape",
    [b"ab", bytearray(b"ab"), memoryview(b"ab"), {2: 3}, {2, 3}, frozenset({2}), iter((2, 3)),
     (d for d in (2, 3)), range(2, 4).__iter__(), 2.0, None, object()],
    ids=lambda s: type(s).__name__,
)
@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
def test_shapes_that_are_not_sequences_are_a_type_error(function, shape):
    with pytest.raises(TypeError, match=rf"{function}: shape must be an int or a sequence of ints"):
        _call(function, shape, seed=1)


@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
@pytest.mark.parametrize("shape", [(0, 2**70), (2**63, 0), (2**63,), (1,) * 65])
def test_shapes_beyond_numpys_limits_are_a_value_error_naming_shape(function, shape):
    with pytest.raises(ValueError, match=rf"{function}: shape"):
        _call(function, shape, seed=1)


def test_sequence_shapes_still_work():
    assert wi.uniform([2, 3], seed=1, device="cpu").shape == (2, 3)
    assert wi.uniform(range(2, 4), seed=1, device="cpu").shape == (2, 3)
    assert wi.uniform(np.array([2, 3]), seed=1, device="cpu").shape == (2, 3)
    assert wi.uniform(np.int8(3), seed=1, device="cpu").shape == (3,)


@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
@pytest.mark.parametrize("device", [5, None, b"cpu", ["cpu"]])
def test_a_device_that_is_not_a_string_is_a_type_error(function, device):
    with pytest.raises(TypeError, match=rf"{function}: device must be one of \('auto', 'cpu', 'cuda'\) \(a str\)"):
        _call(function, (3, 3), seed=1, device=device)


@pytest.mark.parametrize("function", ["uniform", "normal", "truncated_normal", "orthogonal"])
def test_an_unknown_device_name_is_a_value_error(function):
    with pytest.raises(ValueError, match=rf"{function}: device must be one of"):
        _call(function, (3, 3), seed=1, device="gpu")


def test_bfloat16_scalars_are_reals():
    b = ml_dtypes.bfloat16
    got = wi.truncated_normal(64, mean=b(1.5), stddev=b(0.5), lower=b(-1.0), upper=b(3.0), seed=4, device="cpu")
    np.testing.assert_array_equal(got, wi.truncated_normal(64, mean=1.5, stddev=0.5, lower=-1.0, upper=3.0, seed=4,
                                                           device="cpu"))
    got = wi.uniform(8, minval=np.array(b(-2.0)), maxval=b(2.0), seed=4, device="cpu")
    np.testing.assert_array_equal(got, wi.uniform(8, minval=-2.0, maxval=2.0, seed=4, device="cpu"))
    q = wi.orthogonal((4, 4), gain=b(2.0), seed=4, device="cpu")
    np.testing.assert_array_equal(q, wi.orthogonal((4, 4), gain=2.0, seed=4, device="cpu"))


def test_non_real_scalars_are_still_refused():
    for value in (np.array("a"), np.datetime64(1, "s"), np.complex64(1), True, np.bool_(False)):
        with pytest.raises(TypeError, match=r"normal: mean must be a real number"):
            wi.normal(HUGE, seed=1, mean=value)


# Gains ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, gain",
    [("float32", 1e39), ("float32", -1e39), ("float16", 1e5), ("float16", 65520.0), ("bfloat16", 3.4e38)],
)
def test_a_gain_the_dtype_cannot_hold_is_a_value_error(dtype, gain):
    with pytest.raises(ValueError, match=rf"orthogonal: gain={re.escape(repr(gain))} is not representable in {dtype}"):
        wi.orthogonal((3, 3), gain=gain, dtype=dtype, seed=1, device="cpu")


def test_the_largest_gain_a_dtype_holds_is_accepted():
    q = wi.orthogonal((3, 3), gain=65504.0, dtype="float16", seed=1, device="cpu")
    assert np.all(np.isfinite(q.astype(np.float32)))


def test_faces_refuse_unrepresentable_gains():
    torch = pytest.importorskip("torch")
    import warpinit.torch as wit

    tensor = torch.zeros(3, 3, dtype=torch.float16)
    with pytest.raises(ValueError, match=r"orthogonal_: gain=100000.0 is not representable in float16"):
        wit.orthogonal_(tensor, gain=1e5, seed=1)
    assert not tensor.any()


def test_jax_orthogonal_refuses_an_unrepresentable_scale():
    pytest.importorskip("jax")
    import jax

    import warpinit.jax as wij

    with pytest.raises(ValueError, match=r"orthogonal: scale=1e\+39 is not representable in float32"):
        wij.orthogonal(1e39)(jax.random.key(0), (3, 3), "float32")


def test_infinite_real_parameters_keep_their_messages():
    with pytest.raises(ValueError, match=r"orthogonal: gain must be finite"):
        wi.orthogonal((3, 3), gain=math.inf, seed=1)
