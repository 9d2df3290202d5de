"""The cases of JAX 0.10's own initializer tests (tests/nn_test.py, NNInitializersTest), restated.

Each case runs against ``warpinit.jax`` and, as the control, against ``jax.nn.initializers``: the
``initializers`` fixture is the module under test. JAX samples its (initializer, shape, dtype)
product; here every combination runs against warpinit, with 64-bit types off and on (JAX's
``jax_enable_x64``): the float dtypes bfloat16, float16, float32 (and float64 with x64), the inexact
ones adding complex64 (and complex128 with x64), for the initializers whose JAX test lists them. The
control runs the float32 and complex64 cases on one shape each (JAX compiles every shape and dtype
anew, and its CPU backend has no 16-bit QR: its own test lists only float32 there).
"""

from functools import partial

import numpy as np
import pytest

jax = pytest.importorskip("jax")
wj = pytest.importorskip("warpinit.jax")
jnp = jax.numpy

SHAPES = [(2,), (2, 2), (2, 3), (3, 2), (2, 3, 4), (4, 3, 2), (2, 3, 4, 5)]
FLOATING = [jnp.bfloat16, jnp.float16, jnp.float32]
INEXACT = FLOATING + [jnp.complex64]
WIDE = {"floating": [jnp.float64], "inexact": [jnp.float64, jnp.complex128]}

# (name, factory of the module, dtypes, fewest and most dimensions), as JAX's records list them.
RECORDS = [
    ("uniform", lambda m: m.uniform, "floating", 1, 4),
    ("normal", lambda m: m.normal, "inexact", 1, 4),
    ("he_normal", lambda m: m.he_normal, "inexact", 2, 4),
    ("he_uniform", lambda m: m.he_uniform, "inexact", 2, 4),
    ("glorot_normal", lambda m: m.glorot_normal, "inexact", 2, 4),
    ("glorot_uniform", lambda m: m.glorot_uniform, "inexact", 2, 4),
    ("lecun_normal", lambda m: m.lecun_normal, "inexact", 2, 4),
    ("lecun_uniform", lambda m: m.lecun_uniform, "inexact", 2, 4),
    ("orthogonal", lambda m: m.orthogonal, "floating", 2, 2),
    ("truncated_normal", lambda m: m.truncated_normal, "floating", 1, 4),
    ("delta_orthogonal", lambda m: m.delta_orthogonal, "floating", 4, 4),
    ("variance_scaling_fan_geo_avg", lambda m: partial(m.variance_scaling, 1, "fan_geo_avg", "normal"), "floating", 2, 4),
]
CASES = [(name, factory, dtype, x64, low, high)
         for name, factory, kinds, low, high in RECORDS
         for x64 in (False, True)
         for dtype in (FLOATING if kinds == "floating" else INEXACT) + (WIDE[kinds] if x64 else [])]


MODULES = {"warpinit": wj, "jax": jax.nn.initializers}
RUNS = [("warpinit", case) for case in CASES] + [
    ("jax", case) for case in CASES if not case[3] and case[2] in (jnp.float32, jnp.complex64)
]


@pytest.fixture(params=list(MODULES))
def initializers(request):
    return MODULES[request.param]


def _ids(run):
    module, (name, _, dtype, x64, _, _) = run
    return f"{module}-{name}-{jnp.dtype(dtype).name}-{'x64' if x64 else 'x32'}"


@pytest.mark.parametrize("run", RUNS, ids=[_ids(r) for r in RUNS])
def test_initializer_gives_the_shape_and_canonical_dtype(run):
    module, (name, factory, dtype, x64, low, high) = run
    initializers = MODULES[module]
    shapes = [s for s in SHAPES if low <= len(s) <= high]
    if module == "jax":
        shapes = shapes[:1]
    with jax.enable_x64(x64):
        init = factory(initializers)()
        provided = factory(initializers)(dtype=dtype)
        for shape in shapes:
            value = init(jax.random.PRNGKey(0), shape, dtype)
            assert jnp.shape(value) == shape and value.dtype == jax.dtypes.canonicalize_dtype(dtype), shape
            value = provided(jax.random.PRNGKey(0), shape)  # the factory's dtype
            assert jnp.shape(value) == shape and value.dtype == jax.dtypes.canonicalize_dtype(dtype), shape


def test_variance_scaling_over_several_axes(initializers):
    init = initializers.variance_scaling(scale=1.0, mode="fan_avg", distribution="truncated_normal",
                                         in_axis=(0, 1), out_axis=(-2, -1))
    assert jnp.shape(init(jax.random.PRNGKey(0), (2, 3, 4, 5))) == (2, 3, 4, 5)


def test_variance_scaling_with_a_batch_axis(initializers):
    init = initializers.variance_scaling(scale=1.0, mode="fan_avg", distribution="truncated_normal",
                                         in_axis=0, out_axis=(2, 3), batch_axis=1)
    assert jnp.shape(init(jax.random.PRNGKey(0), (2, 3, 4, 5))) == (2, 3, 4, 5)


def test_variance_scaling_refuses_a_1d_shape_in_jaxs_words(initializers):
    def message(module):
        init = module.variance_scaling(scale=1.0, mode="fan_avg", distribution="truncated_normal")
        with pytest.raises(ValueError) as raised:
            init(jax.random.PRNGKey(0), (5,))
        return str(raised.value)

    assert message(initializers).startswith("Can't compute input and output sizes of a 1-dimensional weights tensor")
    assert message(initializers) == message(jax.nn.initializers)


def test_scalar_parameters_do_not_upcast(initializers):
    rng = jax.random.PRNGKey(0)
    scalar = jnp.array(1.0, dtype=jnp.float32)
    for init in (initializers.uniform(scalar, jnp.bfloat16), initializers.normal(scalar, jnp.bfloat16),
                 initializers.truncated_normal(scalar, jnp.bfloat16)):
        key, rng = jax.random.split(rng)
        assert init(key, (4, 4)).dtype == jnp.bfloat16


def test_the_cases_cover_jaxs_records():
    """Every initializer JAX's test lists, with at least the dtypes it lists (complex ones included)."""
    assert {name for name, *_ in RECORDS} >= {"uniform", "normal", "orthogonal", "delta_orthogonal", "truncated_normal"}
    complex_names = {name for name, _, dtype, *_ in CASES if np.dtype(dtype).kind == "c"}
    assert complex_names == {"normal", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal",
                             "lecun_uniform"}
