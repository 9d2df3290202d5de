"""warpinit.keras: the drop-in contract (signatures, configs, errors, get), statistics against
Keras's, exact truncation, seeds, and initialize(); plus one subprocess per Keras backend."""

import importlib.util
import inspect
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import warpinit as wi

keras = pytest.importorskip("keras")
wk = pytest.importorskip("warpinit.keras")
from warpinit import _whole_model  # noqa: E402
from warpinit._keras_initializers import compute_fans  # noqa: E402

TESTS = Path(__file__).parent
RANDOM = ["RandomNormal", "RandomUniform", "TruncatedNormal", "VarianceScaling", "GlorotNormal", "GlorotUniform",
          "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "Orthogonal"]


@pytest.mark.parametrize("name", RANDOM)
def test_drop_in_classes(name):
    ours, theirs = getattr(wk, name), getattr(keras.initializers, name)
    assert issubclass(ours, theirs)
    assert inspect.signature(ours.__init__) == inspect.signature(theirs.__init__)
    instance = ours(seed=3)
    assert isinstance(instance, theirs)
    config = instance.get_config()
    assert config == theirs(seed=3).get_config()
    assert type(ours.from_config(theirs(seed=4).get_config())) is ours
    assert type(theirs.from_config(config)) is theirs
    assert keras.saving.get_registered_name(ours) == f"warpinit>{name}"
    # None: a seed picked at construction, not stored in the config, so clones differ.
    unseeded = ours()
    assert unseeded.get_config()["seed"] is None
    shape = (40, 30)
    assert not np.array_equal(unseeded(shape), ours.from_config(unseeded.get_config())(shape))


def test_constant_initializers_are_reexported():
    for name in ("Zeros", "Ones", "Constant", "Identity"):
        assert getattr(wk, name) is getattr(keras.initializers, name)
    assert wk.glorot_uniform is wk.GlorotUniform and wk.zeros is keras.initializers.Zeros


def test_get_resolves_every_keras_name_to_warpinit():
    from keras.src.initializers import ALL_OBJECTS_DICT

    for name, keras_class in ALL_OBJECTS_DICT.items():
        if keras_class is keras.initializers.Initializer:
            continue
        resolved = wk.get(name)
        assert isinstance(resolved, keras_class), name
        if keras_class.__name__ in RANDOM:
            assert type(resolved).__module__ == "warpinit.keras", name
    assert wk.get(None) is None
    assert isinstance(wk.get(keras.initializers.serialize(keras.initializers.HeUniform(seed=1))), wk.HeUniform)
    assert isinstance(wk.get({"class_name": "Orthogonal", "config": {"gain": 2.0}}), wk.Orthogonal)
    assert isinstance(wk.get(wk.TruncatedNormal), wk.TruncatedNormal)
    function = lambda shape, dtype=None: np.zeros(shape)  # noqa: E731
    assert wk.get(function) is function
    direct = wk.get(np.ones((2, 3)))
    assert np.array_equal(keras.ops.convert_to_numpy(direct((2, 3))), np.ones((2, 3)))
    with pytest.raises(ValueError, match="Could not interpret initializer identifier: nope"):
        wk.get("nope")


@pytest.mark.parametrize(
    "make, error",
    [
        (lambda: wk.VarianceScaling(scale=-1.0), "Argument `scale` must be positive float. Received: scale=-1.0"),
        (lambda: wk.VarianceScaling(mode="fan"), "Invalid `mode` argument: fan"),
        (lambda: wk.VarianceScaling(distribution="cauchy"), "Invalid `distribution` argument: cauchy"),
        (lambda: wk.RandomNormal(seed="x"), "`seed` argument should be an instance of"),
        (lambda: wk.Orthogonal()((5,)), r"at least two-dimensional. Received: shape=\(5,\) of rank 1"),
        (lambda: wk.RandomNormal()((3,), dtype="int32"), "warpinit initializers produce float dtypes"),
    ],
)
def test_keras_errors(make, error):
    with pytest.raises(ValueError, match=error):
        make()


def test_normal_alias_is_truncated_as_in_keras():
    assert wk.VarianceScaling(distribution="normal").distribution == "truncated_normal"


FANS = [((300, 200), None, None), ((3, 3, 16, 32), None, None), ((500,), None, None), ((6, 7, 8), [0, 1], [2])]


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
@pytest.mark.parametrize("shape, input_axes, output_axes", FANS)
def test_variance_scaling_statistics_match_keras(mode, distribution, shape, input_axes, output_axes):
    """The standard deviation Keras aims for, sqrt(scale / fan), within 5 standard errors, and the
    same bound as Keras's own draw (+-2 stddev, or the uniform limit)."""
    kwargs = dict(scale=1.7, mode=mode, distribution=distribution, input_axes=input_axes, output_axes=output_axes)
    ours = np.asarray(wk.VarianceScaling(seed=1, **kwargs)(shape), dtype=np.float64).ravel()
    theirs = np.asarray(keras.initializers.VarianceScaling(seed=1, **kwargs)(shape), dtype=np.float64).ravel()
    fan_in, fan_out = compute_fans(shape, input_axes, output_axes)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    target = math.sqrt(1.7 / max(1.0, fan))
    # The fourth moment of each law bounds the standard error of the sample standard deviation.
    assert abs(ours.std() - target) < 5 * target * math.sqrt(2.0 / ours.size)
    assert abs(ours.std() - theirs.std()) < 7 * target * math.sqrt(2.0 / ours.size)
    if distribution == "truncated_normal":
        assert np.abs(ours).max() <= 2 * target / 0.87962566103423978 * (1 + 1e-6)
    if distribution == "uniform":
        assert np.abs(ours).max() <= math.sqrt(3) * target


def test_truncated_normal_is_exact_on_twenty_million_values():
    values = np.asarray(wk.TruncatedNormal(mean=0.5, stddev=2.0, seed=3)((20_000_000,)))
    assert values.min() >= 0.5 - 4.0 and values.max() <= 0.5 + 4.0
    assert stats.kstest(values[:1_000_000], stats.truncnorm(-2, 2, loc=0.5, scale=2.0).cdf).pvalue > 1e-3
    glorot = np.asarray(wk.GlorotNormal(seed=4)((4472, 4472)), dtype=np.float64)
    bound = 2 * math.sqrt(2 / (2 * 4472)) / 0.87962566103423978
    assert np.abs(glorot).max() <= bound * (1 + 1e-6)


def test_seeds_map_to_the_array_api():
    np.testing.assert_array_equal(wk.RandomNormal(seed=9, stddev=0.5)((7, 9)),
                                  wi.normal((7, 9), stddev=0.5, seed=9, device="cpu"))
    np.testing.assert_array_equal(wk.RandomUniform(seed=-1)((5,)), wi.uniform((5,), minval=-0.05, maxval=0.05,
                                                                               seed=2**64 - 1, device="cpu"))
    np.testing.assert_array_equal(wk.Orthogonal(seed=2**70 + 3, gain=2.0)((6, 6)),
                                  wi.orthogonal((6, 6), gain=2.0, seed=3, device="cpu"))


def test_zero_stddev_is_a_constant_as_in_keras():
    np.testing.assert_array_equal(wk.RandomNormal(mean=0.25, stddev=0.0)((3, 3)), np.full((3, 3), 0.25, np.float32))


def _model():
    return keras.Sequential([
        keras.Input((24,)),
        keras.layers.Dense(24, kernel_initializer="orthogonal"),
        keras.layers.Dense(24, kernel_initializer=wk.Orthogonal(gain=0.5)),
        keras.layers.Dense(16, kernel_initializer=keras.initializers.GlorotUniform(seed=1), bias_initializer="ones"),
        keras.layers.Dense(16, kernel_initializer=lambda shape, dtype=None: np.full(shape, 0.125, "float32")),
        keras.layers.Embedding(50, 8, embeddings_initializer="uniform"),
    ])


def test_initialize_is_independent_of_grouping_and_names(monkeypatch, caplog):
    a, b = _model(), _model()  # the second gets other auto-numbered names
    assert a.layers[0].name != b.layers[0].name
    with caplog.at_level(logging.WARNING, logger="warpinit.keras"):
        seed = wk.initialize(a, seed=2**64 - 3, unsupported="keep")
    assert seed == 2**64 - 3
    # The custom initializer is kept, and said so, naming the variable.
    assert a.layers[3].kernel.path in caplog.text and "kept Keras's own initialization" in caplog.text
    monkeypatch.setattr(_whole_model, "SCRATCH_BYTES", 1)  # one variable per launch
    wk.initialize(b, seed=2**64 - 3, unsupported="keep")
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # Same distribution and shape: the two orthogonal layers differ (own seeds) but both are orthogonal.
    first, second = np.asarray(a.layers[0].kernel), np.asarray(a.layers[1].kernel) / 0.5
    assert not np.allclose(first, second)
    np.testing.assert_allclose(second.T @ second, np.eye(24), atol=1e-5)
    # Ones are drawn as the constant they are; the custom constant keeps Keras's values.
    np.testing.assert_array_equal(np.asarray(a.layers[2].bias), np.ones(16, np.float32))
    np.testing.assert_array_equal(np.asarray(a.layers[3].kernel), np.full((16, 16), 0.125, np.float32))
    assert not np.array_equal(np.asarray(a.layers[0].kernel),
                              np.asarray(_initialized(_model(), 4, unsupported="keep").layers[0].kernel))


def test_initialize_refuses_unknown_initializers_and_bad_seeds_before_assigning_anything():
    model = _model()
    before = [np.asarray(w).copy() for w in model.weights]
    with pytest.raises(ValueError, match=r"cannot draw 1 variable.*kernel.*unsupported='keep'"):
        wk.initialize(model, seed=1)
    for seed, error in ((-3, ValueError), (2**64, ValueError), (1.5, TypeError), ("1", TypeError)):
        with pytest.raises(error, match="seed"):
            wk.initialize(model, seed=seed, unsupported="keep")
    with pytest.raises(ValueError, match="unsupported"):
        wk.initialize(model, seed=1, unsupported="skip")
    with pytest.raises(TypeError, match="model"):
        wk.initialize([model], seed=1)
    for x, y in zip(before, model.weights):  # nothing was assigned
        np.testing.assert_array_equal(x, np.asarray(y))
    with pytest.raises(ValueError, match="not built"):
        wk.initialize(keras.Sequential([keras.layers.Dense(3)]), seed=1)


def _initialized(model, seed, **options):
    wk.initialize(model, seed=seed, **options)
    return model


def test_initialize_draws_the_documented_seed():
    from warpinit.kernels.philox import derive_seed

    model = _initialized(_model(), 99, unsupported="keep")
    kernel = np.asarray(model.layers[0].kernel)
    expected = wi.orthogonal((24, 24), seed=derive_seed(99, wk.path_tag("0/0")), device="cpu")
    np.testing.assert_array_equal(kernel, expected)


def test_deferred_runs_no_keras_initializer_and_initialize_fills_everything():
    calls = []

    def counting(shape, dtype=None):
        calls.append(shape)
        return np.full(shape, 0.5, "float32")

    with wk.deferred():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, kernel_initializer="orthogonal"),
                                  keras.layers.Dense(3, kernel_initializer=counting)])
        model(np.ones((1, 8), "float32"))  # a symbolic-style call during the build sees placeholders
    assert calls == []
    with pytest.raises(ValueError, match="counting"):
        wk.initialize(model, seed=1)
    assert calls == [] and model.layers[0].kernel._value is None  # nothing assigned
    wk.initialize(model, seed=1, unsupported="keep")
    assert calls == [(8, 3)]  # the custom initializer ran once, the normal way
    np.testing.assert_array_equal(np.asarray(model.layers[1].kernel), np.full((8, 3), 0.5, "float32"))
    q = np.asarray(model.layers[0].kernel)
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=1e-6)


def test_initialize_rejects_bad_seed():
    with pytest.raises(TypeError, match=r"initialize: seed must be an int in \[0, 2\*\*64\) or None"):
        wk.initialize(_model(), seed=1.5)


# Every backend whose framework is installed (CI installs all four).
BACKENDS = [b for b, module in (("numpy", "numpy"), ("torch", "torch"), ("jax", "jax"), ("tensorflow", "tensorflow"))
            if importlib.util.find_spec(module)]


@pytest.fixture(scope="module")
def backend_values(tmp_path_factory):
    results = {}
    for backend in BACKENDS:
        folder = tmp_path_factory.mktemp(backend)
        values, hashes = folder / "values.npz", folder / "model_hashes.json"
        env = dict(os.environ, KERAS_BACKEND=backend, WARPINIT_KERAS_BACKEND_TESTS="1",
                   WARPINIT_KERAS_VALUES=str(values), WARPINIT_KERAS_MODEL_HASHES=str(hashes),
                   TF_CPP_MIN_LOG_LEVEL="3")
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TESTS / "keras_backends")],
                             env=env, capture_output=True, text=True, timeout=1200)
        results[backend] = (run, values, hashes)
    return results


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_suite(backend, backend_values):
    run = backend_values[backend][0]
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-3000:]


def test_same_int_seed_same_values_on_every_backend(backend_values):
    reference = np.load(backend_values["numpy"][1])
    for backend in BACKENDS[1:]:
        other = np.load(backend_values[backend][1])
        assert sorted(other.files) == sorted(reference.files)
        for name in reference.files:
            np.testing.assert_array_equal(other[name], reference[name], err_msg=f"{backend}: {name}")


def test_real_models_get_the_same_bits_on_every_backend(backend_values):
    """tests/keras_backends/test_models.py: keras-hub Llama, GPT-2, BERT and Gemma initialized with
    the same seed hold the same bits, variable by variable, on numpy, torch, jax and tensorflow."""
    pytest.importorskip("keras_hub")
    reference = json.loads(backend_values["numpy"][2].read_text())
    assert sorted(reference) == ["bert", "gemma", "gpt2", "llama"]
    for backend in BACKENDS[1:]:
        other = json.loads(backend_values[backend][2].read_text())
        assert other == reference, backend


def test_called_with_keywords_as_keras_does():
    values = wk.HeUniform(seed=5)(shape=(6, 4), dtype="float32")
    np.testing.assert_array_equal(values, wk.HeUniform(seed=5)((6, 4)))


def test_progress_bar(capsys):
    wk.initialize(_model(), seed=1, progress=True, unsupported="keep")
    err = capsys.readouterr().err
    assert "warpinit: [" in err and "MiB" in err and err.endswith("\n")
    wk.initialize(_model(), seed=1, progress=False, unsupported="keep")
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX (pip install 'warpinit[jax]')")
def test_keras_layouts_on_8_host_devices():
    """tests/jax_devices/run_keras_layouts.py: Keras passes layout= under a distribution; every device
    draws its own block, equal to the undistributed values (its own process: 8 XLA host devices)."""
    script = TESTS / "jax_devices" / "run_keras_layouts.py"
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="needs JAX (pip install 'warpinit[jax]')")
def test_layouts_benchmark_runs():
    """bench/keras_layouts.py at a tiny size: both libraries timed, the kernel split over 8 devices."""
    run = subprocess.run([sys.executable, "-m", "warpinit.bench.keras_layouts", "--rows", "64", "--units", "32",
                          "--repeats", "2"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["devices"] == 8 and (report["rows"], report["units"]) == (64, 32)
    assert len(report["keras"]) == len(report["warpinit"]) == 2 and min(report["keras"] + report["warpinit"]) > 0


def test_initialize_checks_memory_before_assigning_anything(monkeypatch):
    from warpinit import _devices

    model = keras.Sequential([keras.Input((64,))] + [keras.layers.Dense(64, kernel_initializer="orthogonal")
                                                     for _ in range(4)])
    before = [np.asarray(w).copy() for w in model.weights]
    monkeypatch.setattr(_devices, "_total_memory", lambda device: 1000)  # a device of 1000 bytes
    with pytest.raises(MemoryError, match="initialize"):
        wk.initialize(model, seed=1)
    for x, y in zip(before, model.weights):
        np.testing.assert_array_equal(x, np.asarray(y))


@pytest.mark.parametrize("call, error, match", [
    (lambda: wk.RandomNormal(seed=1)((4.5, 4)), TypeError, "shape entries must be ints"),
    (lambda: wk.GlorotUniform(seed=1)((b"ab")), TypeError, "shape"),
    (lambda: wk.Orthogonal(seed=1)((-1, 4)), ValueError, "shape entries must be >= 0"),
    (lambda: wk.RandomNormal(mean=10**400, seed=1)((4, 4)), ValueError, "mean"),
    (lambda: wk.RandomUniform(minval=-(10**400), seed=1)((4, 4)), ValueError, "minval"),
    (lambda: wk.Orthogonal(gain=float("inf"), seed=1)((4, 4)), ValueError, "gain"),
])
def test_initializer_calls_refuse_bad_shapes_and_values_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()
