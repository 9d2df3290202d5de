"""Property-based fuzzing of every public parameter: the array API (uniform, normal, truncated_normal,
orthogonal) and the faces (warpinit.torch's nn.init look-alikes, warpinit.jax's factories and their
init calls, warpinit.dask, warpinit.keras's classes' __call__).

Each example passes one bad value to one parameter, every other argument valid, and checks the error
policy (DESIGN.md): the error type (TypeError for a wrong kind, ValueError for a value out of range),
a message naming the parameter, nothing large allocated (tracemalloc) and nothing compiled (no Numba
dispatcher of warpinit gains a signature). Examples are bounded so the module runs in seconds.
"""

import math
import tracemalloc

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import warpinit as wi

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SHAPE = (512, 512)  # 1 MiB of float32: an allocation of the result would show in tracemalloc
LARGE = 256 * 1024  # bytes: more than validation itself ever allocates


def _dispatchers():
    """Every Numba dispatcher in warpinit's kernel modules (the CPU kernels compile lazily)."""
    import numba

    from warpinit.kernels import fill_cpu, orthogonal, philox

    found = []
    for module in (fill_cpu, orthogonal, philox):
        for value in vars(module).values():
            values = value.values() if isinstance(value, dict) else [value]
            found.extend(v for v in values if isinstance(v, numba.core.registry.CPUDispatcher))
    return found


def _signatures():
    return sum(len(d.signatures) for d in _dispatchers())


def _refused(call, error, *names):
    """``call()`` raises ``error`` naming one of ``names``, with no large allocation and no compilation."""
    before = _signatures()
    with pytest.raises(error):
        call()  # once untraced: imports and lazily built tables of a first call are not the call's
    tracemalloc.start()
    try:
        with pytest.raises(error) as caught:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(caught.value).lower()
    assert any(name.lower() in message for name in names), (names, str(caught.value))
    assert peak < LARGE, f"{peak} bytes allocated before the error"
    assert _signatures() == before, "something was compiled before the error"


# Bad values, by the error they must give -------------------------------------------------------------

_NOT_REAL = st.sampled_from(["1.0", b"1", None, [1.0], 1j, np.complex64(1), True, np.bool_(True), object(),
                             np.datetime64(1, "s")])
_HUGE = st.sampled_from([10**400, -(10**400), 2**1024, float("nan")])
_NOT_INT = st.sampled_from([1.5, "1", True, np.float32(2.0), [1], b"1"])  # None is a valid seed and batch
_NOT_SHAPE = st.sampled_from([b"ab", bytearray(b"ab"), {2: 3}, {2, 3}, 2.5, None, "ab", (2.0, 3), (True, 2),
                              (np.float64(2), 2)]) | st.builds(lambda: iter((2, 3)))
_BAD_SHAPE = st.sampled_from([(-1, 3), (0, 2**70), (2**40, 2**40), (2**63,), (1,) * 65])
# (complex dtypes are offered by normal and orthogonal: tests/test_complex.py covers their refusals)
_NOT_DTYPE = st.sampled_from(["int32", "float", "f4", np.int8, np.uint16, object(), 5, "float8"])
_BAD_SEED = st.sampled_from([-1, 2**64, 10**30, np.int64(-5)])
_BAD_STREAM = st.sampled_from([-1, 2**32, 10**30, np.uint64(2**32)])
_NOT_DEVICE = st.sampled_from([5, None, b"cpu", ["cpu"], 1.0])
_BAD_DEVICE = st.sampled_from(["gpu", "", "CPU", "cuda:0"])
_NOT_OUT = st.sampled_from([np.zeros(SHAPE, np.int32), np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, ">f4"),
                            np.zeros(SHAPE, np.longdouble), np.zeros(SHAPE, "U1"), [[0.0]], "out"])


def _bad_out():
    read_only = np.zeros(SHAPE, np.float32)
    read_only.flags.writeable = False
    return st.sampled_from([np.zeros(SHAPE[::-1], np.float32).T, np.zeros((512, 1024), np.float32)[:, ::2],
                            read_only, np.zeros((2, 2), np.float32), np.zeros(SHAPE, np.float64)])


def _cases(function, reals):
    """(parameter, strategy of bad values, error) for one array API function."""
    common = [
        ("shape", _NOT_SHAPE, TypeError), ("shape", _BAD_SHAPE, ValueError),
        ("dtype", _NOT_DTYPE, TypeError), ("seed", _NOT_INT, TypeError), ("seed", _BAD_SEED, ValueError),
        ("stream", _NOT_INT | st.just(None), TypeError), ("stream", _BAD_STREAM, ValueError),
        ("device", _NOT_DEVICE, TypeError), ("device", _BAD_DEVICE, ValueError),
        ("out", _NOT_OUT, TypeError), ("out", _bad_out(), ValueError),
    ]
    for name in reals:
        common += [(name, _NOT_REAL, TypeError), (name, _HUGE, ValueError)]
    return [(function, *case) for case in common]


_VALID = {
    "uniform": dict(minval=-1.0, maxval=1.0),
    "normal": dict(mean=0.0, stddev=1.0),
    "truncated_normal": dict(mean=0.0, stddev=1.0, lower=-2.0, upper=2.0),
    "orthogonal": dict(gain=1.0),
}
_API = (_cases("uniform", ["minval", "maxval"]) + _cases("normal", ["mean", "stddev"])
        + _cases("truncated_normal", ["mean", "stddev", "lower", "upper"]) + _cases("orthogonal", ["gain"])
        + [("orthogonal", "batch", _NOT_INT, TypeError), ("orthogonal", "batch", st.sampled_from([0, -3]), ValueError),
           ("normal", "stddev", st.sampled_from([0.0, -1.0, math.inf, 1e-50]), ValueError),
           ("uniform", "maxval", st.sampled_from([-1.0, -2.0, math.inf]), ValueError),
           ("orthogonal", "gain", st.sampled_from([1e39, -1e39, math.inf]), ValueError),
           ("truncated_normal", "lower", st.sampled_from([2.0, 5.0, math.inf]), ValueError),
           ("normal", "index", st.sampled_from([(slice(0, 5, 2),), 0]), ValueError),
           ("normal", "index", st.sampled_from([np.array([1, 2]), 1.5, "a"]), TypeError)])


def _api_call(function, parameter, value):
    kwargs = dict(_VALID[function], seed=1, device="cpu")
    shape = SHAPE
    if parameter == "shape":
        shape = value
    elif parameter == "index" and isinstance(value, int) and value == 0:
        kwargs.update(index=0, seed=None)  # an index needs an explicit seed
    else:
        kwargs[parameter] = value
    if parameter == "dtype" or parameter == "out":
        kwargs.setdefault("dtype", None)
    if parameter == "out" and isinstance(value, np.ndarray) and value.dtype == np.float64:
        kwargs["dtype"] = "float32"  # a float64 buffer for a float32 request: out of range
    return lambda: getattr(wi, function)(shape, **kwargs)


@EXAMPLES
@given(data=st.data(), case=st.sampled_from(_API))
def test_array_api_refuses_bad_parameters(data, case):
    function, parameter, strategy, error = case
    value = data.draw(strategy)
    _refused(_api_call(function, parameter, value), error, parameter, "lower")


def test_bfloat16_scalars_and_valid_calls_pass_the_same_checks():
    # The valid side of the properties above: each function accepts the values the fuzz varies around.
    for function, kwargs in _VALID.items():
        shape = (8, 8)
        x = getattr(wi, function)(shape, seed=1, device="cpu", **{k: ml_dtypes.bfloat16(v) for k, v in kwargs.items()})
        assert x.shape == shape


# warpinit.dask ----------------------------------------------------------------------------------------


@EXAMPLES
@given(data=st.data(), case=st.sampled_from([c for c in _API if c[1] not in ("device", "out", "index")]))
def test_dask_refuses_bad_parameters(data, case):
    wid = pytest.importorskip("warpinit.dask")
    function, parameter, strategy, error = case
    value = data.draw(strategy)
    kwargs = dict(_VALID[function], seed=1)
    shape = SHAPE
    if function == "orthogonal":
        kwargs["batch"] = 2
    if parameter == "shape":
        shape = value
    else:
        kwargs[parameter] = value
    _refused(lambda: getattr(wid, function)(shape, **kwargs), error, parameter, "lower")


# warpinit.torch -----------------------------------------------------------------------------------------

_TORCH = [
    ("uniform_", "a", {"b": 1.0}), ("uniform_", "b", {}), ("normal_", "mean", {}), ("normal_", "std", {}),
    ("trunc_normal_", "mean", {}), ("trunc_normal_", "std", {}), ("trunc_normal_", "a", {}), ("trunc_normal_", "b", {}),
    ("xavier_uniform_", "gain", {}), ("xavier_normal_", "gain", {}), ("orthogonal_", "gain", {}),
]


@EXAMPLES
@given(data=st.data(), case=st.sampled_from(_TORCH), kind=st.sampled_from(["type", "range", "seed", "stream"]))
def test_torch_face_refuses_bad_parameters(data, case, kind):
    torch = pytest.importorskip("torch")
    import warpinit.torch as wit

    function, parameter, others = case
    tensor = torch.zeros(SHAPE)
    kwargs = dict(others, seed=1)
    if kind == "type":
        kwargs[parameter], error = data.draw(_NOT_REAL), TypeError
    elif kind == "range":
        kwargs[parameter], error = data.draw(_HUGE), ValueError
        if function in ("trunc_normal_",) and parameter in ("a", "b") and isinstance(kwargs[parameter], float):
            kwargs[parameter] = 10**400  # NaN bounds: torch's own semantics
    elif kind == "seed":
        parameter = "seed"
        kwargs["seed"] = data.draw(_BAD_SEED | _NOT_INT)
        error = TypeError if not isinstance(kwargs["seed"], (int, np.integer)) or isinstance(kwargs["seed"], bool) \
            else ValueError
    else:
        parameter = "stream"
        kwargs["stream"] = data.draw(_BAD_STREAM | _NOT_INT | st.just(None))
        error = ValueError if isinstance(kwargs["stream"], (int, np.integer)) and not isinstance(kwargs["stream"], bool) \
            else TypeError
    _refused(lambda: getattr(wit, function)(tensor, **kwargs), error, parameter)
    assert not tensor.any()


@EXAMPLES
@given(tensor_kind=st.sampled_from(["int", "list", "none"]), function=st.sampled_from([c[0] for c in _TORCH]))
def test_torch_face_refuses_bad_tensors(tensor_kind, function):
    torch = pytest.importorskip("torch")
    import warpinit.torch as wit

    tensor = {"int": torch.zeros(SHAPE, dtype=torch.int32), "list": [[0.0]], "none": None}[tensor_kind]
    _refused(lambda: getattr(wit, function)(tensor, seed=1), TypeError, "tensor")


# warpinit.jax -----------------------------------------------------------------------------------------

_JAX_FACTORIES = [
    ("uniform", "scale"), ("normal", "stddev"), ("truncated_normal", "stddev"), ("truncated_normal", "lower"),
    ("truncated_normal", "upper"), ("variance_scaling", "scale"), ("orthogonal", "scale"),
]


@EXAMPLES
@given(data=st.data(), case=st.sampled_from(_JAX_FACTORIES), kind=st.sampled_from(["type", "range"]))
def test_jax_factories_refuse_bad_parameters(data, case, kind):
    pytest.importorskip("jax")
    import warpinit.jax as wij

    function, parameter = case
    value = data.draw(_NOT_REAL if kind == "type" else _HUGE)
    error = TypeError if kind == "type" else ValueError
    if function == "truncated_normal" and parameter != "stddev" and kind == "range" and isinstance(value, float):
        value = 10**400
    args = {"variance_scaling": dict(scale=1.0, mode="fan_in", distribution="normal")}.get(function, {})
    kwargs = dict(args, **{parameter: value})
    _refused(lambda: getattr(wij, function)(**kwargs), error, parameter)


@EXAMPLES
@given(data=st.data(), parameter=st.sampled_from(["shape", "bad shape", "dtype", "key", "out_sharding"]),
       factory=st.sampled_from(["normal", "glorot_uniform", "truncated_normal", "orthogonal"]))
def test_jax_init_calls_refuse_bad_parameters(data, parameter, factory):
    jax = pytest.importorskip("jax")
    import warpinit.jax as wij

    init = getattr(wij, factory)()
    key, shape, dtype, sharding = jax.random.key(0), SHAPE, "float32", None
    if parameter == "shape":
        shape, error = data.draw(_NOT_SHAPE), TypeError
    elif parameter == "bad shape":
        shape, error, parameter = data.draw(_BAD_SHAPE), ValueError, "shape"
    elif parameter == "dtype":
        dtype, error = data.draw(st.sampled_from(["int32", np.uint32, "bool", np.int8])), ValueError
    elif parameter == "key":
        key, error = data.draw(st.sampled_from([None, 0, "key", np.zeros(2, np.float32)])), TypeError
    else:
        sharding, error = data.draw(st.sampled_from(["x", 5, [0]])), TypeError
    _refused(lambda: init(key, shape, dtype, sharding), error, parameter)


# warpinit.keras -----------------------------------------------------------------------------------------


@EXAMPLES
@given(cls=st.sampled_from(["RandomNormal", "RandomUniform", "TruncatedNormal", "GlorotUniform", "HeNormal",
                            "LecunUniform", "Orthogonal", "VarianceScaling"]),
       dtype=st.sampled_from(["int32", "uint8", "bool", "complex64", "string"]))
def test_keras_initializers_refuse_bad_dtypes(cls, dtype):
    import warpinit.keras as wik

    initializer = getattr(wik, cls)(seed=1)
    _refused(lambda: initializer(SHAPE, dtype=dtype), ValueError, "dtype")
