"""warpinit.keras under one Keras backend (KERAS_BACKEND), run by tests/test_keras.py per backend.

A Dense stack with warpinit initializers saves to .keras and loads back with the same classes,
configs and weights, trains for an epoch (except on numpy), and deferred() + initialize() gives the
same weights as initialize() after a normal build. Values of fixed seeds are written to
WARPINIT_KERAS_VALUES so that the parent test compares them across backends.
"""

import os

import keras
import numpy as np
import pytest

import warpinit.keras as wk

BACKEND = keras.backend.backend()


def _stack(initializers=None):
    initializers = initializers or [wk.Orthogonal(seed=1), wk.GlorotUniform(seed=2), wk.TruncatedNormal(seed=3),
                                    wk.HeNormal(), wk.VarianceScaling(scale=2.0, mode="fan_out", distribution="uniform")]
    layers = [keras.Input((32,))]
    for initializer in initializers:
        layers.append(keras.layers.Dense(32, activation="relu", kernel_initializer=initializer))
    layers.append(keras.layers.Dense(4, kernel_initializer=wk.LecunNormal(seed=5)))
    return keras.Sequential(layers)


def _weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_save_and_load_keeps_classes_configs_and_weights(tmp_path):
    model = _stack()
    wk.initialize(model, seed=11)
    path = tmp_path / "stack.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    for original, restored in zip(model.layers, loaded.layers):
        assert type(restored.kernel_initializer) is type(original.kernel_initializer)
        assert type(restored.kernel_initializer).__module__ == "warpinit.keras"
        assert restored.kernel_initializer.get_config() == original.kernel_initializer.get_config()
    for a, b in zip(_weights(model), _weights(loaded)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(BACKEND == "numpy", reason="the numpy backend cannot train")
def test_one_epoch_lowers_the_loss():
    keras.utils.set_random_seed(0)
    model = _stack()
    wk.initialize(model, seed=12)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 32)).astype("float32")
    y = (x[:, :4] * 2.0 + 0.5).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


def test_deferred_build_matches_normal_build():
    normal = _stack()
    seed = wk.initialize(normal, seed=13)
    with wk.deferred():
        deferred = _stack()
    wk.initialize(deferred, seed=seed)
    for a, b in zip(_weights(normal), _weights(deferred)):
        np.testing.assert_array_equal(a, b)
    deferred.compile(optimizer="sgd", loss="mse")
    assert deferred.predict(np.ones((2, 32), "float32"), verbose=0).shape == (2, 4)


def test_int_seed_values_and_dtypes():
    values = {}
    for name in ("RandomNormal", "RandomUniform", "TruncatedNormal", "GlorotUniform", "HeNormal", "Orthogonal"):
        initializer = getattr(wk, name)(seed=42)
        for dtype in ("float32", "bfloat16", "float16"):
            tensor = initializer((64, 48), dtype=dtype)
            assert keras.backend.standardize_dtype(tensor.dtype) == dtype
            array = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32")))
            values[f"{name}-{dtype}"] = array
        np.testing.assert_array_equal(values[f"{name}-float32"], keras.ops.convert_to_numpy(initializer((64, 48))))
    np.savez(os.environ["WARPINIT_KERAS_VALUES"], **values)


def test_seed_generator_gives_new_values_each_call():
    initializer = wk.RandomNormal(seed=keras.random.SeedGenerator(7))
    first = keras.ops.convert_to_numpy(initializer((100,)))
    second = keras.ops.convert_to_numpy(initializer((100,)))
    assert not np.array_equal(first, second)
    again = wk.RandomNormal(seed=keras.random.SeedGenerator(7))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again((100,))), first)


def test_mixed_precision_policy():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _stack()
        wk.initialize(model, seed=14)
        assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in model.weights)
        assert model.predict(np.ones((2, 32), "float32"), verbose=0).shape == (2, 4)
    finally:
        keras.config.set_dtype_policy("float32")


def test_large_variables_generated_in_place_stay_valid():
    # Kernels of 1.6 MB take initialize()'s direct path: generated into the memory of a new backend
    # tensor (TensorFlow: its own uninitialized tensor); orthogonal members go through the batched
    # path. The values must outlive the buffers' Python owners, equal the grouped path's, and take
    # in-place updates.
    import gc

    from warpinit import _whole_model

    assert 640 * 640 * 4 >= _whole_model.DIRECT_BYTES

    def stack():
        layers = [keras.Input((640,))]
        layers += [keras.layers.Dense(640, kernel_initializer=wk.GlorotUniform(seed=k)) for k in range(3)]
        layers += [keras.layers.Dense(640, kernel_initializer=wk.Orthogonal(gain=1.5, seed=k)) for k in range(3)]
        return keras.Sequential(layers)

    with wk.deferred():
        model = stack()
    wk.initialize(model, seed=21)
    before = _weights(model)
    gc.collect()
    clobber = [np.full(640 * 640, 7.0, "float32") for _ in range(8)]  # reuse of freed memory shows here
    for a, b in zip(before, _weights(model)):
        np.testing.assert_array_equal(a, b)
    del clobber
    grouped = stack()
    saved, _whole_model.DIRECT_BYTES = _whole_model.DIRECT_BYTES, 1 << 40
    try:
        wk.initialize(grouped, seed=21)
    finally:
        _whole_model.DIRECT_BYTES = saved
    for a, b in zip(before, _weights(grouped)):
        np.testing.assert_array_equal(a, b)
    kernel = model.layers[0].kernel
    kernel.assign(kernel * 2.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(kernel), before[0] * 2.0)
    np.testing.assert_array_equal(_weights(model)[2], before[2])  # its neighbours are untouched
    import warpinit as wi

    limit = float(np.sqrt(6.0 / (640 + 640)))
    expected = wi.uniform((640, 640), minval=-limit, maxval=limit, seed=3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(wk.GlorotUniform(seed=3)((640, 640))), expected)
    q = before[-2] / 1.5  # the last orthogonal kernel: orthonormal columns
    np.testing.assert_allclose(q.T.astype("float64") @ q, np.eye(640), atol=2e-5)


def test_a_layout_that_is_not_one_is_refused_naming_the_parameter():
    with pytest.raises(TypeError, match="layout"):
        wk.HeNormal(seed=1)((8, 8), layout="model")


def test_empty_shapes():
    for initializer in (wk.RandomNormal(seed=1), wk.GlorotUniform(seed=2), wk.Orthogonal(seed=3)):
        tensor = initializer((0, 3))
        assert tuple(tensor.shape) == (0, 3)
        assert keras.ops.convert_to_numpy(tensor).size == 0


def test_readme_example_twice_gives_distinct_finite_reproducible_kernels():
    # 16 kernels of 16 MB go through initialize()'s scratch buffer in chunks: no variable may keep a
    # view of it (on JAX's CPU client, device_put of an aligned NumPy buffer aliases it).
    import hashlib

    runs = []
    for _ in range(2):
        with wk.deferred():
            model = keras.Sequential([keras.Input((2048,))] + [keras.layers.Dense(2048) for _ in range(16)])
        wk.initialize(model, seed=1234)
        kernels = [keras.ops.convert_to_numpy(layer.kernel) for layer in model.layers]
        assert all(np.isfinite(kernel).all() for kernel in kernels)
        runs.append([hashlib.sha256(kernel.tobytes()).hexdigest() for kernel in kernels])
        del model, kernels
    assert len(set(runs[0])) == 16
    assert runs[0] == runs[1]
