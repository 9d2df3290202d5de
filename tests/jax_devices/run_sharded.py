"""Sharded generation on 8 XLA host devices: run by tests/test_jax.py in its own process.

XLA's host device count is fixed when JAX starts, so this script sets it before importing JAX. Each
check compares a sharded array with the unsharded one bit for bit; failures are printed and the exit
status is the number of failures.
"""

from _checks import check, finish  # first: sets XLA's device count

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

import warpinit.jax as wj  # noqa: E402


def same(a, b, label):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (label, a.shape, b.shape, a.dtype, b.dtype)
    assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), f"{label}: values differ"


assert jax.device_count() == 8, jax.devices()
auto = (jax.sharding.AxisType.Auto,)
line = jax.make_mesh((8,), ("x",), axis_types=auto)
grid = jax.make_mesh((4, 2), ("a", "b"), axis_types=auto * 2)
key = jax.random.key(7)

SHARDINGS = {
    "rows": NamedSharding(line, P("x", None)),
    "columns": NamedSharding(line, P(None, "x")),
    "2d": NamedSharding(grid, P("a", "b")),
    "2d-transposed": NamedSharding(grid, P("b", "a")),
    "both-axes-on-rows": NamedSharding(grid, P(("a", "b"), None)),
    "partly-replicated": NamedSharding(grid, P("a", None)),
    "replicated": NamedSharding(grid, P()),
}
INITS = {
    "uniform": wj.uniform(0.5),
    "normal": wj.normal(2.0),
    "truncated_normal": wj.truncated_normal(1.0, lower=-1.0, upper=1.5),
    "glorot_uniform": wj.glorot_uniform(),
    "he_normal": wj.he_normal(),
    "orthogonal": wj.orthogonal(),
}
SHAPE = (16, 24)


@check("eager (float32, bfloat16) and jit (float32) sharded == unsharded, every distribution and sharding")
def _():
    for init_name, init in INITS.items():
        for dtype in (jnp.float32, jnp.bfloat16):
            whole = init(key, SHAPE, dtype)
            for sharding_name, sharding in SHARDINGS.items():
                label = f"{init_name} {jnp.dtype(dtype).name} {sharding_name}"
                eager = init(key, SHAPE, dtype, out_sharding=sharding)
                assert eager.sharding == sharding, (label, eager.sharding)
                same(eager, whole, label + " eager")
                if dtype != jnp.float32:  # the jit path does not depend on the dtype: spare the compilations
                    continue
                traced = jax.jit(lambda k, init=init, dtype=dtype, sharding=sharding: init(k, SHAPE, dtype,
                                                                                            out_sharding=sharding))(key)
                assert traced.sharding.is_equivalent_to(sharding, len(SHAPE)), (label, traced.sharding)
                same(traced, whole, label + " jit")


@check("complex64: the complex forms and delta_orthogonal, sharded == unsharded, eager and jit")
def _():
    inits = {"normal": wj.normal(2.0), "he_normal": wj.he_normal(), "glorot_uniform": wj.glorot_uniform(),
             "orthogonal": wj.orthogonal()}
    for init_name, init in inits.items():
        whole = init(key, SHAPE, jnp.complex64)
        for sharding_name in ("rows", "2d", "partly-replicated"):
            sharding = SHARDINGS[sharding_name]
            same(init(key, SHAPE, jnp.complex64, out_sharding=sharding), whole, f"{init_name} {sharding_name} eager")
            traced = jax.jit(lambda k, init=init, sharding=sharding: init(k, SHAPE, jnp.complex64,
                                                                          out_sharding=sharding))(key)
            same(traced, whole, f"{init_name} {sharding_name} jit")
    delta = wj.delta_orthogonal()
    kernel = delta(key, (3, 3, 8, 16))
    sharded = delta(key, (3, 3, 8, 16), out_sharding=NamedSharding(grid, P(None, None, "a", "b")))
    assert len(sharded.sharding.device_set) == 8
    same(sharded, kernel, "delta_orthogonal")


@check("orthogonal stacks split by whole matrices, and matrices split across devices")
def _():
    stack = wj.orthogonal(batch_dims=1)
    cubes = wj.orthogonal(2.0, column_axis=2, batch_dims=2)
    cases = [
        (stack, (8, 6, 4), NamedSharding(line, P("x"))),
        (stack, (8, 4, 6), NamedSharding(grid, P("a", "b"))),  # members over a, matrices split over b
        (stack, (16, 6, 6), NamedSharding(grid, P(("a", "b")))),
        (stack, (8, 6, 4), NamedSharding(grid, P())),
        (cubes, (4, 2, 6, 5), NamedSharding(grid, P("a", "b"))),
        (cubes, (4, 2, 8, 4), NamedSharding(grid, P(None, None, "a", "b"))),
        (wj.orthogonal(), (32, 16), NamedSharding(grid, P("a", "b"))),
        # Members beyond the small-matrix kernel (BLAS path): one member per shard vs two in one call.
        (stack, (2, 520, 512), NamedSharding(grid, P("b"))),
    ]
    for init, shape, sharding in cases:
        whole = init(key, shape)
        same(init(key, shape, out_sharding=sharding), whole, f"eager {shape} {sharding.spec}")
        traced = jax.jit(lambda k, init=init, shape=shape, sharding=sharding: init(k, shape, out_sharding=sharding))
        same(traced(key), whole, f"jit {shape} {sharding.spec}")
    # Members are drawn with streams 0..B-1 of the key's seed: slicing the stack gives the members.
    import warpinit as wi

    members = wi.orthogonal((6, 4), seed=wj.seed_of(key), batch=8, device="cpu")
    same(stack(key, (8, 6, 4)), members, "stack members")


@check("each device generates only its shard; replicated shards are generated once")
def _():
    seen = []
    original = wj._draw_block

    def recording(draw, shape, dtype, seed, ranges, device, cache=None):
        seen.append(ranges)
        return original(draw, shape, dtype, seed, ranges, device, cache)

    wj._draw_block = recording
    try:
        wj.normal()(key, SHAPE, out_sharding=SHARDINGS["rows"])
        assert sorted(seen) == [((2 * d, 2 * d + 2), (0, 24)) for d in range(8)], seen
        seen.clear()
        wj.normal()(key, SHAPE, out_sharding=SHARDINGS["partly-replicated"])
        assert sorted(seen) == [((4 * d, 4 * d + 4), (0, 24)) for d in range(4)], seen
        seen.clear()
        jax.jit(lambda k: wj.normal()(k, SHAPE, out_sharding=SHARDINGS["2d"]))(key).block_until_ready()
        assert sorted(seen) == sorted(((4 * a, 4 * a + 4), (12 * b, 12 * b + 12)) for a in range(4) for b in range(2)), seen
    finally:
        wj._draw_block = original


@check("any Sharding outside jit; PartitionSpec under a mesh, with and without jit")
def _():
    init = wj.truncated_normal(1.0)
    shape = (8, 6)
    whole = init(key, shape)
    single = jax.sharding.SingleDeviceSharding(jax.devices()[5])
    placed = init(key, shape, out_sharding=single)
    assert placed.devices() == {jax.devices()[5]}
    same(placed, whole, "single device")
    with jax.set_mesh(grid):
        same(init(key, shape, out_sharding=P("a", "b")), whole, "PartitionSpec eager")
        same(jax.jit(lambda k: init(k, shape, out_sharding=P("a", "b")))(key), whole, "PartitionSpec jit")
    try:
        jax.jit(lambda k: init(k, shape, out_sharding=single))(key)
    except ValueError as error:
        assert "NamedSharding" in str(error), error
    else:
        raise AssertionError("a SingleDeviceSharding under jit must raise")


@check("a jitted model init with sharded parameters equals the unsharded one")
def _():
    rows, columns = NamedSharding(grid, P("a", "b")), NamedSharding(grid, P(("a", "b")))

    def init_params(k, sharded):
        k1, k2, k3 = jax.random.split(k, 3)
        return {
            "dense": wj.lecun_normal()(k1, (32, 16), out_sharding=rows if sharded else None),
            "bias": wj.normal()(k2, (16,), out_sharding=columns if sharded else None),
            "recurrent": wj.orthogonal(batch_dims=1)(k3, (8, 4, 4), out_sharding=columns if sharded else None),
        }

    sharded = jax.jit(lambda k: init_params(k, True))(key)
    plain = init_params(key, False)
    for name in plain:
        same(sharded[name], plain[name], name)


@check("vmap over keys with a sharding, eager and under jit")
def _():
    keys = jax.random.split(key, 3)
    sharding = SHARDINGS["2d"]
    for init in (wj.normal(), wj.orthogonal()):
        plain = jax.vmap(lambda k, init=init: init(k, (8, 6)))(keys)
        same(jax.vmap(lambda k, init=init: init(k, (8, 6), out_sharding=sharding))(keys), plain, "vmap eager")
        same(jax.jit(jax.vmap(lambda k, init=init: init(k, (8, 6), out_sharding=sharding)))(keys), plain, "vmap jit")


finish()
