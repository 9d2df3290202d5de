"""warpinit.jax: the jax.nn.initializers contract (signatures, errors), statistics against JAX's own and
scipy, exact truncation, orthogonality, keys and seeds, eager == jit == vmap, a jitted model init,
and sharded == unsharded on 8 XLA host devices (tests/jax_devices, in its own process)."""

import inspect
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import warpinit as wi
from warpinit._distributions import TRUNCATION_CORRECTION

jax = pytest.importorskip("jax")
wj = pytest.importorskip("warpinit.jax")
jnp = jax.numpy
initializers = jax.nn.initializers

TESTS = Path(__file__).parent
ALPHA = 1e-3  # significance of every statistical test (fixed keys: deterministic outcome)
FACTORIES = ["uniform", "normal", "truncated_normal", "variance_scaling", "glorot_uniform", "glorot_normal",
             "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "orthogonal", "delta_orthogonal"]
ALIASES = ["xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"]
DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32]
KEY = jax.random.key(20240601)


def _bits(array):
    return np.ascontiguousarray(array).view(np.uint8)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(_bits(a), _bits(b))


def _sample(init, shape, dtype=jnp.float32, key=KEY):
    return np.asarray(init(key, shape, dtype), dtype=np.float64)


# The drop-in contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FACTORIES)
def test_factories_have_jax_signatures(name):
    ours, theirs = inspect.signature(getattr(wj, name)), inspect.signature(getattr(initializers, name))
    ours_parameters = [p for p in ours.parameters.values() if p.kind != p.KEYWORD_ONLY]
    assert [(p.name, p.default, p.kind) for p in ours_parameters] == \
        [(p.name, p.default, p.kind) for p in theirs.parameters.values()]
    init = getattr(wj, name)(1.0, "fan_in", "normal") if name == "variance_scaling" else getattr(wj, name)()
    assert list(inspect.signature(init).parameters) == ["key", "shape", "dtype", "out_sharding"]


def test_every_public_name_of_jax_nn_initializers():
    theirs = {name for name in dir(initializers) if not name.startswith("_")}
    assert theirs <= set(dir(wj)) and theirs <= set(wj.__all__)
    assert wj.Initializer is initializers.Initializer
    for name in FACTORIES:
        init = getattr(wj, name)(1.0, "fan_in", "normal") if name == "variance_scaling" else getattr(wj, name)()
        assert isinstance(init, initializers.Initializer)


def test_aliases_and_reexports():
    for name in ALIASES:
        assert callable(getattr(wj, name))
    assert wj.xavier_uniform is wj.glorot_uniform and wj.kaiming_normal is wj.he_normal
    assert wj.zeros is initializers.zeros and wj.constant is initializers.constant
    assert set(wj.__all__) <= set(dir(wj))


def test_default_dtype_and_factory_dtype():
    assert wj.normal()(KEY, (3, 4)).dtype == jnp.float32
    assert wj.normal(dtype=jnp.bfloat16)(KEY, (3, 4)).dtype == jnp.bfloat16
    assert wj.glorot_uniform(dtype="float16")(KEY, (3, 4)).dtype == jnp.float16
    assert wj.glorot_uniform(dtype="float16")(KEY, (3, 4), jnp.float32).dtype == jnp.float32


# Statistics ------------------------------------------------------------------------------------------

# (shape, in_axis, out_axis, batch_axis, (fan_in, fan_out)): JAX's fans for dense, convolutional and
# batched weights (the receptive field multiplies both fans; batch axes count in neither).
AXES = [
    ((96, 80), -2, -1, (), (96, 80)),
    ((3, 3, 16, 32), -2, -1, (), (144, 288)),
    ((8, 24, 40), -2, -1, 0, (24, 40)),
    ((12, 10, 64), (0, 1), -1, (), (120, 64)),
]


def _scipy_law(distribution, stddev):
    if distribution == "truncated_normal":
        sigma = stddev / TRUNCATION_CORRECTION
        return stats.truncnorm(-2.0, 2.0, scale=sigma)
    if distribution == "normal":
        return stats.norm(scale=stddev)
    limit = math.sqrt(3.0) * stddev
    return stats.uniform(-limit, 2 * limit)


@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("axes", AXES, ids=["dense", "conv", "batched", "two-in-axes"])
def test_variance_scaling_against_formula_jax_and_scipy(mode, distribution, axes):
    shape, in_axis, out_axis, batch_axis, (fan_in, fan_out) = axes
    kwargs = dict(in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    scale = 1.7
    ours = _sample(wj.variance_scaling(scale, mode, distribution, **kwargs), shape)
    theirs = _sample(initializers.variance_scaling(scale, mode, distribution, **kwargs), shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2,
           "fan_geo_avg": math.sqrt(fan_in * fan_out)}[mode]
    stddev = math.sqrt(scale / fan)
    # The relative standard error of a sample standard deviation is at most 1 / sqrt(2n) (normal
    # law; less for the lighter-tailed ones): 5 standard errors.
    tolerance = 5 / math.sqrt(2 * ours.size)
    assert ours.std() == pytest.approx(stddev, rel=tolerance)
    assert ours.std() == pytest.approx(theirs.std(), rel=2 * tolerance)
    assert abs(ours.mean()) < 5 * stddev / math.sqrt(ours.size)
    assert stats.kstest(ours.ravel(), _scipy_law(distribution, stddev).cdf).pvalue > ALPHA


def test_jax_fans_without_flooring():
    """JAX does not floor the fan at 1 (Keras does): a (1, 1) kernel with scale 0.25 has std 0.5."""
    values = _sample(wj.variance_scaling(0.25, "fan_in", "normal", batch_axis=0), (20000, 1, 1))
    assert values.std() == pytest.approx(0.5, rel=0.03)


@pytest.mark.parametrize("dtype", DTYPES)
def test_samplers_against_scipy(dtype):
    shape = (200, 100)
    cases = [
        (wj.uniform(0.3), stats.uniform(0.0, 0.3)),
        (wj.uniform(-0.3), stats.uniform(-0.3, 0.3)),
        (wj.normal(2.5), stats.norm(scale=2.5)),
        (wj.normal(-2.5), stats.norm(scale=2.5)),
        (wj.truncated_normal(0.7), stats.truncnorm(-2.0, 2.0, scale=0.7)),
        (wj.truncated_normal(0.7, lower=-0.5, upper=3.0), stats.truncnorm(-0.5, 3.0, scale=0.7)),
        (wj.truncated_normal(-0.7, lower=-0.5, upper=3.0), stats.truncnorm(-3.0, 0.5, scale=0.7)),
    ]
    for init, law in cases:
        values = _sample(init, shape, dtype)
        if dtype == jnp.float32:
            assert stats.kstest(values.ravel(), law.cdf).pvalue > ALPHA, law.kwds
        else:  # 16-bit values are rounded: compare moments, not the continuous law
            assert values.mean() == pytest.approx(law.mean(), abs=6 * law.std() / math.sqrt(values.size) + 4e-3)
            assert values.std() == pytest.approx(law.std(), rel=0.02)
        assert law.support()[0] <= values.min() and values.max() <= law.support()[1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("init, bound", [
    (wj.he_normal(), lambda shape: 2 * math.sqrt(2 / shape[0]) / TRUNCATION_CORRECTION),
    (wj.truncated_normal(1.3, lower=-0.25, upper=0.5), None),
], ids=["he_normal", "narrow"])
def test_exact_truncation_bounds(dtype, init, bound):
    shape = (256, 512)
    values = np.asarray(init(KEY, shape, dtype), dtype=np.float64)
    if bound is None:
        low, high = -0.25 * 1.3, 0.5 * 1.3
    else:
        high = bound(shape)
        low = -high
    assert low <= values.min() and values.max() <= high
    assert values.max() > high - (high - low) * 0.01  # reaches the bound's neighbourhood: not clamped short


def test_uniform_stays_below_scale_after_rounding():
    for dtype in DTYPES:
        values = np.asarray(wj.uniform(1.0)(KEY, (512, 512), dtype), dtype=np.float64)
        assert 0.0 <= values.min() and values.max() < 1.0


# Orthogonal ------------------------------------------------------------------------------------------

# 16-bit: each entry carries a relative rounding error up to u (2**-11, 2**-8), so M^T M is off by up
# to about 2u; float32/float64: warpinit's orthogonality tolerances.
ORTHO_TOLERANCE = {"float16": 2**-10, "bfloat16": 2**-7, "float32": 2e-5, "float64": 1e-12}


def _orthogonality_error(q, column_axis=-1, scale=1.0):
    m = np.moveaxis(np.asarray(q, dtype=np.float64), column_axis, -1)
    m = m.reshape(-1, m.shape[-1]) / scale
    if m.shape[0] < m.shape[1]:
        m = m.T
    return np.abs(m.T @ m - np.eye(m.shape[1])).max()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("shape, column_axis", [((48, 32), -1), ((32, 48), -1), ((32, 48), 0), ((3, 3, 8, 16), 2)])
def test_orthogonal_per_dtype(dtype, shape, column_axis):
    scale = 1.5
    with jax.enable_x64(dtype == "float64"):
        q = wj.orthogonal(scale, column_axis=column_axis)(KEY, shape, dtype)
        assert q.shape == shape and q.dtype == jnp.dtype(dtype)
        assert _orthogonality_error(q, column_axis, scale) <= ORTHO_TOLERANCE[dtype]


def test_orthogonal_follows_jax_layout():
    """JAX builds (rows, columns) with the column axis last, then moves it: same here, from the same
    warpinit matrix."""
    seed = wj.seed_of(KEY)
    q = np.asarray(wj.orthogonal(column_axis=0)(KEY, (5, 3, 4)))
    matrix = wi.orthogonal((3, 4, 5), seed=seed, device="cpu")
    _same(q, np.moveaxis(matrix, -1, 0))
    _same(wj.orthogonal()(KEY, (6, 4)), wi.orthogonal((6, 4), seed=seed, device="cpu"))


def test_orthogonal_stack_members_are_streams():
    stack = np.asarray(wj.orthogonal(batch_dims=2)(KEY, (2, 3, 6, 5)))
    members = wi.orthogonal((6, 5), seed=wj.seed_of(KEY), batch=6, device="cpu")
    _same(stack, members.reshape(2, 3, 6, 5))
    for member in stack.reshape(6, 6, 5):
        assert _orthogonality_error(member) <= 2e-5


def test_orthogonal_empty_and_errors():
    assert wj.orthogonal()(KEY, (0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match="orthogonal initializer requires at least a 2D shape"):
        wj.orthogonal()(KEY, (4,))
    with pytest.raises(ValueError, match="batch_dims=1 the shape needs at least 3"):
        wj.orthogonal(batch_dims=1)(KEY, (4, 4))
    with pytest.raises(ValueError, match="column_axis=0 is a batch axis"):
        wj.orthogonal(column_axis=0, batch_dims=1)(KEY, (2, 4, 4))
    with pytest.raises(ValueError, match="column_axis=5 is out of range"):
        wj.orthogonal(column_axis=5)(KEY, (4, 4))
    with pytest.raises(TypeError, match="batch_dims must be an int"):
        wj.orthogonal(batch_dims=1.0)
    with pytest.raises(ValueError, match="scale must be finite"):
        wj.orthogonal(float("nan"))


# Complex dtypes ---------------------------------------------------------------------------------------

COMPLEX_LAWS = {  # distribution: the law of |z|^2 / (scale / fan), which is JAX's
    "normal": stats.expon(),
    "truncated_normal": None,  # the complex normal of sigma = 1 / 0.9531..., |z| <= 2 sigma
    "uniform": stats.uniform(0.0, 2.0),  # the disk of radius sqrt(2): |z|^2 uniform on [0, 2)
}


def _modulus_law(distribution):
    if distribution != "truncated_normal":
        return COMPLEX_LAWS[distribution].cdf
    sigma2 = 1.0 / 0.95311164380491208**2
    return lambda x: -np.expm1(-np.asarray(x) / sigma2) / -math.expm1(-4.0)


@pytest.mark.parametrize("distribution", ["normal", "truncated_normal", "uniform"])
@pytest.mark.parametrize("mode", ["fan_in", "fan_avg"])
def test_complex_variance_scaling_against_jax(distribution, mode):
    shape, scale = (160, 120), 1.7
    fan = 160 if mode == "fan_in" else 140
    ours = np.asarray(wj.variance_scaling(scale, mode, distribution)(KEY, shape, jnp.complex64)).astype(np.complex128)
    theirs = np.asarray(initializers.variance_scaling(scale, mode, distribution)(KEY, shape, jnp.complex64))
    assert ours.dtype == np.complex128 and ours.shape == shape
    modulus = np.abs(ours.ravel()) ** 2 / (scale / fan)
    assert stats.kstest(modulus, _modulus_law(distribution)).pvalue > ALPHA
    assert stats.ks_2samp(modulus, np.abs(theirs.ravel()) ** 2 / (scale / fan)).pvalue > ALPHA
    assert stats.kstest(np.angle(ours.ravel()), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > ALPHA
    if distribution == "normal":  # each part carries half the variance
        part = stats.norm(scale=math.sqrt(scale / fan / 2))
        assert stats.kstest(ours.real.ravel(), part.cdf).pvalue > ALPHA
        assert stats.kstest(ours.imag.ravel(), part.cdf).pvalue > ALPHA


def test_complex_normal_and_the_family():
    z = np.asarray(wj.normal(0.5)(KEY, (300, 200), jnp.complex64))
    _same(z, wi.normal((300, 200), stddev=0.5, dtype="complex64", seed=wj.seed_of(KEY), device="cpu"))
    for name in ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal"):
        values = getattr(wj, name)()(KEY, (64, 48), jnp.complex64)
        assert values.dtype == jnp.complex64 and values.shape == (64, 48)
        scale = 2.0 if name.startswith("he") else 1.0
        fan = 56 if name.startswith("glorot") else 64
        assert np.mean(np.abs(np.asarray(values)) ** 2) == pytest.approx(scale / fan, rel=0.1)


def test_complex128_needs_x64():
    with jax.enable_x64(True):
        z = wj.he_normal()(KEY, (30, 20), jnp.complex128)
        assert z.dtype == jnp.complex128
        _same(jax.jit(lambda k: wj.he_normal()(k, (30, 20), jnp.complex128))(KEY), z)
    with jax.enable_x64(False), pytest.warns(UserWarning, match="jax_enable_x64"):
        assert wj.normal()(KEY, (3, 2), jnp.complex128).dtype == jnp.complex64


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
@pytest.mark.parametrize("shape, column_axis", [((48, 32), -1), ((32, 48), -1), ((3, 3, 8, 16), 2)])
def test_complex_orthogonal_is_unitary_and_follows_jax_layout(dtype, shape, column_axis):
    with jax.enable_x64(dtype == "complex128"):
        q = wj.orthogonal(1.5, column_axis=column_axis)(KEY, shape, dtype)
        assert q.dtype == jnp.dtype(dtype) and q.shape == shape
        m = np.moveaxis(np.asarray(q, np.complex128), column_axis, -1)
        m = m.reshape(-1, m.shape[-1]) / 1.5
        if m.shape[0] < m.shape[1]:
            m = m.T
        tolerance = 2e-6 if dtype == "complex64" else 1e-13
        assert np.abs(m.conj().T @ m - np.eye(m.shape[1])).max() <= tolerance
        columns = shape[column_axis]
        matrix = tuple(n for a, n in enumerate(shape) if a != column_axis % len(shape)) + (columns,)
        expected = wi.orthogonal(matrix, gain=1.5, dtype=dtype, seed=wj.seed_of(KEY), device="cpu")
        _same(q, np.moveaxis(expected, -1, column_axis))
        _same(jax.jit(lambda k: wj.orthogonal(1.5, column_axis=column_axis)(k, shape, dtype))(KEY), q)


def test_complex_vmap_equals_the_unbatched_calls():
    keys = jax.random.split(KEY, 3)
    init = wj.glorot_normal()
    batched = jax.vmap(lambda key: init(key, (6, 5), jnp.complex64))(keys)
    for k in range(3):
        _same(batched[k], init(keys[k], (6, 5), jnp.complex64))


# delta_orthogonal --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 4, 4), (3, 5, 6, 8), (2, 3, 4, 5, 5)])
def test_delta_orthogonal_is_the_orthogonal_matrix_at_the_centre(shape):
    kernel = np.asarray(wj.delta_orthogonal(2.0)(KEY, shape))
    theirs = np.asarray(initializers.delta_orthogonal(2.0)(KEY, shape))
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    assert kernel.shape == shape and np.array_equal(kernel != 0, theirs != 0)  # zero outside the centre
    _same(kernel[centre], wj.orthogonal(2.0)(KEY, shape[-2:]))
    _same(jax.jit(lambda k: wj.delta_orthogonal(2.0)(k, shape))(KEY), kernel)
    _same(wj.delta_orthogonal(2.0)(KEY, shape, out_sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0])),
          kernel)
    complex_kernel = wj.delta_orthogonal(column_axis=-2)(KEY, shape, jnp.complex64)
    _same(complex_kernel[centre], wj.orthogonal(column_axis=-2)(KEY, shape[-2:], jnp.complex64))


def test_delta_orthogonal_errors_are_jaxs():
    for shape in [(4, 4), (2, 2, 2, 2, 2, 2), (3, 5, 4)]:
        with pytest.raises(ValueError) as theirs:
            initializers.delta_orthogonal()(KEY, shape)
        with pytest.raises(ValueError) as ours:
            wj.delta_orthogonal()(KEY, shape)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="scale must be finite"):
        wj.delta_orthogonal(float("inf"))
    with pytest.raises(ValueError, match="dtype argument to `delta_orthogonal`"):
        wj.delta_orthogonal()(KEY, (3, 4, 4), jnp.int8)


# Keys, seeds and transformations ---------------------------------------------------------------------

ALL_INITS = {
    "uniform": wj.uniform(), "normal": wj.normal(), "truncated_normal": wj.truncated_normal(),
    "glorot_uniform": wj.glorot_uniform(), "he_normal": wj.he_normal(),
    "variance_scaling": wj.variance_scaling(0.5, "fan_geo_avg", "normal"), "orthogonal": wj.orthogonal(),
    "orthogonal_stack": wj.orthogonal(batch_dims=1),
}


@pytest.mark.parametrize("name", list(ALL_INITS))
def test_same_key_same_values_typed_and_raw_keys(name):
    init, shape = ALL_INITS[name], (4, 24, 16)
    first = init(jax.random.key(3), shape)
    _same(first, init(jax.random.key(3), shape))
    _same(first, init(jax.random.PRNGKey(3), shape))  # the same key data: the same seed
    assert not np.array_equal(first, init(jax.random.key(4), shape))
    assert not np.array_equal(first, init(jax.random.split(jax.random.key(3))[0], shape))


def test_seed_contract():
    data = np.asarray(jax.random.key_data(KEY))
    from warpinit.kernels.philox import derive_seed

    assert wj.seed_of(KEY) == derive_seed((int(data[0]) << 32) | int(data[1]), wj.KEY_TAG)
    assert wj.seed_of(jax.random.PRNGKey(5)) == wj.seed_of(jax.random.key(5))
    rbg = jax.random.key(5, impl="rbg")  # four words: chained
    assert wj.seed_of(rbg) != wj.seed_of(jax.random.key(5))
    _same(wj.normal(1.0)(rbg, (3, 5)), wi.normal((3, 5), seed=wj.seed_of(rbg), device="cpu"))
    # A block of the tensor from warpinit's index= equals that block of the initializer's array.
    whole = np.asarray(wj.truncated_normal(0.2)(KEY, (40, 30)))
    _same(whole[10:20, 5:], wi.truncated_normal((40, 30), stddev=0.2, seed=wj.seed_of(KEY), index=(slice(10, 20),
                                                slice(5, None)), device="cpu"))


@pytest.mark.parametrize("name", list(ALL_INITS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_equals_jit(name, dtype):
    init, shape = ALL_INITS[name], (3, 20, 12)
    traced = jax.jit(lambda key: init(key, shape, dtype))
    _same(traced(KEY), init(KEY, shape, dtype))
    _same(jax.jit(lambda key: init(key, shape, dtype))(jax.random.PRNGKey(9)), init(jax.random.PRNGKey(9), shape, dtype))


def test_float64_with_x64_eager_equals_jit_and_warpinit():
    with jax.enable_x64(True):
        for name in ("truncated_normal", "orthogonal_stack"):
            init = ALL_INITS[name]
            eager = init(KEY, (3, 20, 12), jnp.float64)
            assert eager.dtype == jnp.float64
            _same(jax.jit(lambda key, init=init: init(key, (3, 20, 12), jnp.float64))(KEY), eager)
        _same(wj.normal(0.5)(KEY, (7, 9), jnp.float64),
              wi.normal((7, 9), stddev=0.5, dtype="float64", seed=wj.seed_of(KEY), device="cpu"))


@pytest.mark.parametrize("name", ["truncated_normal", "orthogonal"])
def test_vmap_over_keys(name):
    init, shape = ALL_INITS[name], (12, 8)
    keys = jax.random.split(KEY, 4)
    batched = jax.vmap(lambda key: init(key, shape))(keys)
    assert batched.shape == (4, *shape)
    for k in range(4):
        _same(batched[k], init(keys[k], shape))
    _same(jax.jit(jax.vmap(lambda key: init(key, shape)))(keys), batched)
    raw = jax.vmap(lambda key: init(key, shape))(jax.random.key_data(keys))
    _same(raw, batched)
    nested = jax.vmap(jax.vmap(lambda key: init(key, shape)))(keys.reshape(2, 2))
    _same(nested.reshape(batched.shape), batched)


def test_jitted_model_init():
    """A Flax-like init: split keys, one initializer per parameter, all under jit."""
    def init_params(key):
        keys = jax.random.split(key, 5)
        return {
            "embed": wj.normal(1.0)(keys[0], (100, 32), jnp.bfloat16),
            "dense": {"kernel": wj.lecun_normal()(keys[1], (32, 64)), "bias": wj.zeros(keys[2], (64,))},
            "conv": wj.he_uniform()(keys[3], (3, 3, 8, 16)),
            "recurrent": wj.orthogonal()(keys[4], (64, 64)),
        }

    traced = jax.jit(init_params)(KEY)
    eager = init_params(KEY)
    assert jax.tree.structure(traced) == jax.tree.structure(eager)
    for ours, again in zip(jax.tree.leaves(traced), jax.tree.leaves(eager)):
        _same(ours, again)
    assert traced["embed"].dtype == jnp.bfloat16
    # Under jit the shapes are static and the values still depend on the traced key.
    other = jax.jit(init_params)(jax.random.key(1))
    assert not np.array_equal(other["dense"]["kernel"], traced["dense"]["kernel"])


def test_zero_scale_and_empty_shapes():
    assert not np.any(np.asarray(wj.normal(0.0)(KEY, (4, 5))))
    assert not np.any(np.asarray(wj.variance_scaling(0.0, "fan_in", "uniform")(KEY, (4, 5))))
    assert wj.glorot_uniform()(KEY, (0, 5)).shape == (0, 5)
    assert jax.jit(lambda k: wj.normal()(k, (0, 3)))(KEY).shape == (0, 3)


# Errors ----------------------------------------------------------------------------------------------


def test_dtype_errors_name_the_parameter():
    for init in (wj.normal(), wj.glorot_uniform(), wj.orthogonal(), wj.delta_orthogonal()):
        for dtype in (jnp.int32, "float8_e4m3fn", jnp.bool_):
            with pytest.raises(ValueError, match="dtype argument to `.*` must be a float or complex dtype"):
                init(KEY, (3, 4, 4), dtype)
    # Real only, as JAX's own: complex dtypes are refused with JAX's words.
    for init, name in ((wj.uniform(), "uniform"), (wj.truncated_normal(), "truncated_normal")):
        for dtype in (jnp.complex64, jnp.int32):
            with pytest.raises(ValueError, match=f"dtype argument to `{name}` must be a float dtype"):
                init(KEY, (4, 4), dtype)
            with pytest.raises(ValueError, match=f"dtype argument to `{name}` must be a float dtype"):
                getattr(initializers, name)()(KEY, (4, 4), dtype)


def test_float64_without_x64_is_truncated_with_a_warning():
    with jax.enable_x64(False), pytest.warns(UserWarning, match="jax_enable_x64"):
        values = wj.normal()(KEY, (4, 4), jnp.float64)
    assert values.dtype == jnp.float32
    _same(values, wj.normal()(KEY, (4, 4), jnp.float32))
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert wj.normal()(KEY, (4, 4), jnp.float64).dtype == jnp.float64


def test_jax_errors_for_mode_distribution_and_fans():
    with pytest.raises(ValueError, match="invalid mode for variance scaling initializer: fan_max"):
        wj.variance_scaling(1.0, "fan_max", "normal")
    with pytest.raises(ValueError, match="invalid distribution for variance scaling initializer: untruncated_normal"):
        wj.variance_scaling(1.0, "fan_in", "untruncated_normal")
    with pytest.raises(ValueError, match="Can't compute input and output sizes of a 1-dimensional"):
        wj.glorot_uniform()(KEY, (8,))
    assert wj.glorot_uniform(in_axis=0, out_axis=0)(KEY, (8,)).shape == (8,)


def test_argument_errors():
    with pytest.raises(ValueError, match="scale must be >= 0"):
        wj.variance_scaling(-1.0, "fan_in", "normal")
    with pytest.raises(ValueError, match="stddev must be finite"):
        wj.normal(float("inf"))
    with pytest.raises(TypeError, match="scale must be a concrete real number"):
        wj.uniform("0.1")
    with pytest.raises(ValueError, match="lower must be < upper"):
        wj.truncated_normal(1.0, lower=1.0, upper=0.0)
    with pytest.raises(ValueError, match="cannot draw in float16"):
        wj.normal(1e6)(KEY, (2, 2), jnp.float16)
    with pytest.raises(ValueError, match="cannot draw in float16"):  # raised while tracing, not in the callback
        jax.jit(lambda k: wj.normal(1e6)(k, (2, 2), jnp.float16))(KEY)
    with pytest.raises(ValueError, match="shape entries must be >= 0"):
        wj.normal()(KEY, (2, -1))


def test_key_errors():
    init = wj.normal()
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        init(jnp.zeros(2, jnp.float32), (2, 2))
    with pytest.raises(TypeError, match="key must be a JAX PRNG key"):
        init(7, (2, 2))
    with pytest.raises(ValueError, match="must be a single PRNG key"):
        init(jax.random.split(KEY, 3), (2, 2))


def test_sharding_argument_errors():
    init = wj.normal()
    with pytest.raises(TypeError, match="out_sharding must be None, a jax.sharding.Sharding"):
        init(KEY, (4, 4), out_sharding="rows")
    with pytest.raises(ValueError, match="no mesh is set"):
        init(KEY, (4, 4), out_sharding=jax.sharding.PartitionSpec("x"))
    device = jax.devices()[0]
    placed = init(KEY, (4, 4), out_sharding=jax.sharding.SingleDeviceSharding(device))
    _same(placed, init(KEY, (4, 4)))


# Sharding on 8 host devices ----------------------------------------------------------------------------


def test_sharded_equals_unsharded_on_8_host_devices():
    """tests/jax_devices/run_sharded.py: XLA's host device count is fixed at JAX's start, so 8 devices
    need a process of their own."""
    script = TESTS / "jax_devices" / "run_sharded.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
