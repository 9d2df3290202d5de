"""warpinit.keras under a Keras distribution on 8 XLA host devices: run by tests/test_keras.py in its
own process (KERAS_BACKEND=jax; XLA's host device count is fixed when JAX starts).

Keras passes ``layout=`` to an initializer whose ``__call__`` takes it; warpinit's draw only each
device's block. Every check compares with the values drawn without a distribution, bit for bit.
Failures are printed; the exit status is the number of failures.
"""

import os

from _checks import check, finish  # first: sets XLA's device count

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import warpinit._distributions as distributions  # noqa: E402
import warpinit.keras as wk  # noqa: E402

UNITS = (64, 96)  # Dense(96) on 64 inputs: the kernel splits 4 x 2 over the mesh


def initializers():
    return {
        "orthogonal": wk.Orthogonal(gain=1.5, seed=1),
        "glorot_uniform": wk.GlorotUniform(seed=2),
        "truncated_normal": wk.TruncatedNormal(mean=0.5, stddev=2.0, seed=3),
        "random_normal": wk.RandomNormal(mean=-1.0, stddev=0.5, seed=4),
        "he_normal": wk.HeNormal(seed=5),
    }


def model():
    layers = [keras.Input((UNITS[0],))]
    for name, initializer in initializers().items():
        layers.append(keras.layers.Dense(UNITS[0] if name != "he_normal" else UNITS[1], name=name,
                                         kernel_initializer=initializer))
    return keras.Sequential(layers)


def distribution():
    mesh = keras.distribution.DeviceMesh((4, 2), ["data", "model"], devices=jax.devices())
    layouts = keras.distribution.LayoutMap(mesh)
    layouts[".*kernel"] = ("data", "model")
    layouts[".*bias"] = ("model",)
    return keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="data")


def weights(built):
    """Values by path within the model (Keras numbers the models' own names per process)."""
    return {variable.path.split("/", 1)[1]: np.asarray(variable.value) for variable in built.weights}


def assert_sharded_over_8(built):
    for variable in built.weights:
        if variable.path.endswith("kernel"):
            value = variable.value
            assert len(value.sharding.device_set) == 8, (variable.path, value.sharding)
            shard = value.addressable_shards[0].data
            assert shard.shape == (value.shape[0] // 4, value.shape[1] // 2), (variable.path, shard.shape)


def record_blocks():
    """Wrap the block generator to record the block shapes asked for."""
    calls = []
    original = distributions.generate_block

    def recording(distribution, shape, dtype, seed, ranges, device, cache=None):
        calls.append((distribution.kind, tuple(stop - start for start, stop in ranges), tuple(shape)))
        return original(distribution, shape, dtype, seed, ranges, device, cache)

    distributions.generate_block = recording
    return calls, original


unsharded = model()
expected = weights(unsharded)


@check("a normal build under a distribution: each device draws its own block, values unchanged")
def _():
    calls, original = record_blocks()
    try:
        with distribution().scope():
            built = model()
    finally:
        distributions.generate_block = original
    assert_sharded_over_8(built)
    got = weights(built)
    assert got.keys() == expected.keys()
    for path in expected:
        np.testing.assert_array_equal(got[path], expected[path], err_msg=path)
    samplers = [call for call in calls if call[0] != "orthogonal"]
    assert samplers and all(block == (shape[0] // 4, shape[1] // 2) for _, block, shape in samplers), calls


@check("deferred() + initialize() under a distribution: drawn shard by shard, same values as without")
def _():
    calls, original = record_blocks()
    try:
        with distribution().scope():
            with wk.deferred():
                built = model()
            wk.initialize(built, seed=9)
    finally:
        distributions.generate_block = original
    # Each kernel as 8 blocks of a 4 x 2 split, one per device; each Zeros bias as the 2 blocks of its
    # split (a block several devices hold is made once).
    kernels = [call for call in calls if call[0] != "constant"]
    biases = [call for call in calls if call[0] == "constant"]
    assert len(kernels) == 8 * len(initializers()), calls
    assert all(block == (shape[0] // 4, shape[1] // 2) for _, block, shape in kernels), calls
    assert len(biases) == 2 * len(initializers()), calls
    assert all(block == (shape[0] // 2,) for _, block, shape in biases), calls
    reference = model()
    wk.initialize(reference, seed=9)
    assert_sharded_over_8(built)
    got, want = weights(built), weights(reference)
    for path in want:
        np.testing.assert_array_equal(got[path], want[path], err_msg=path)


@check("DataParallel (replicated variables): each tensor drawn once, whole, on every device")
def _():
    calls, original = record_blocks()
    try:
        with keras.distribution.DataParallel(devices=jax.devices()).scope():
            built = model()
            with wk.deferred():
                deferred_model = model()
            wk.initialize(deferred_model, seed=9)
    finally:
        distributions.generate_block = original
    assert [block for _, block, _ in calls] == [shape for _, _, shape in calls] and len(calls) == len(initializers())
    reference = model()
    wk.initialize(reference, seed=9)
    for got, want in ((weights(built), expected), (weights(deferred_model), weights(reference))):
        for path in want:
            np.testing.assert_array_equal(got[path], want[path], err_msg=path)
    for variable in built.weights + deferred_model.weights:
        assert variable.value.sharding.is_fully_replicated and len(variable.value.sharding.device_set) == 8


@check("a direct call with a TensorLayout or a NamedSharding equals the unsharded call")
def _():
    mesh = keras.distribution.DeviceMesh((4, 2), ["data", "model"], devices=jax.devices())
    layout = keras.distribution.TensorLayout(("data", "model"), mesh)
    for name, initializer in initializers().items():
        whole = np.asarray(initializer((64, 96)))
        for given in (layout, layout.backend_layout):
            value = initializer((64, 96), layout=given)
            assert value.sharding.is_equivalent_to(layout.backend_layout, 2), (name, value.sharding)
            np.testing.assert_array_equal(np.asarray(value), whole, err_msg=name)
    value = wk.GlorotUniform(seed=2)((64, 96), dtype="bfloat16", layout=layout)
    np.testing.assert_array_equal(np.asarray(value), np.asarray(wk.GlorotUniform(seed=2)((64, 96), dtype="bfloat16")))


@check("a layout that is not one is refused, naming the parameter")
def _():
    try:
        wk.HeNormal(seed=1)((8, 8), layout="model")
    except TypeError as error:
        assert "layout" in str(error), error
    else:
        raise AssertionError("no TypeError")


finish()
