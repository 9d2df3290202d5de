"""Real keras-hub backbones (built from configs, nothing downloaded) under one Keras backend.

For Llama, GPT-2, BERT and Gemma at about a million parameters, on the backend of this process:
initialize() on a model built normally and deferred() + initialize() give the same bits; every
variable holds a value; no two random variables share bits; the same seed reproduces them; each
variable's mean and standard deviation match Keras's own draw from the initializer Keras created it
with (truncated normals also stay inside their bounds); a forward pass is finite with the initial LM
loss of an untrained model (ln(vocab) within 0.5); one fit step gives a finite loss. The variables'
hashes go to WARPINIT_KERAS_MODEL_HASHES so that the parent test compares them across backends.
"""

import hashlib
import json
import math
import os

import keras
import numpy as np
import pytest

import warpinit.keras as wk
from warpinit import _keras_variables

keras_hub = pytest.importorskip("keras_hub")

BACKEND = keras.backend.backend()
VOCABULARY = 8000
SEED = 20261201
# Mean and standard deviation of a variable's values agree with Keras's own draw within this many
# standard errors (each check fails by chance with probability < 1e-8; there are a few hundred).
Z = 6.0


def _backbone(name, keras_seed=0):
    """A small backbone; Keras's global seed is reset first, so that the states of its dropout seed
    generators (drawn by Keras, not warpinit) are the same in every build."""
    keras.utils.set_random_seed(keras_seed)
    hub = keras_hub.models
    common = dict(vocabulary_size=VOCABULARY, num_layers=2, hidden_dim=128, intermediate_dim=256)
    if name == "gpt2":
        return hub.GPT2Backbone(num_heads=4, max_sequence_length=64, **common)
    if name == "llama":
        return hub.LlamaBackbone(num_query_heads=4, num_key_value_heads=2, **common)
    if name == "bert":
        return hub.BertBackbone(num_heads=4, max_sequence_length=64, **common)
    return hub.GemmaBackbone(num_query_heads=4, num_key_value_heads=1, head_dim=32, **common)


MODELS = ["llama", "gpt2", "bert", "gemma"]


def _values(model):
    return [np.asarray(keras.ops.convert_to_numpy(variable)) for variable in model.variables]


def _digest(array):
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _inputs(name, batch=2, length=16):
    rng = np.random.default_rng(0)
    inputs = {"token_ids": rng.integers(0, VOCABULARY, (batch, length)).astype("int32"),
              "padding_mask": np.ones((batch, length), "int32")}
    if name == "bert":
        inputs["segment_ids"] = np.zeros((batch, length), "int32")
    labels = rng.integers(0, VOCABULARY, (batch, length)).astype("int32")
    return inputs, labels


def _logits(backbone, outputs):
    hidden = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    return backbone.token_embedding(hidden, reverse=True)


def _truncation_bound(initializer, shape):
    """mean and the largest |x - mean| a truncated normal initializer allows, or None."""
    from keras.src.initializers.random_initializers import compute_fans

    k = keras.initializers
    if isinstance(initializer, k.TruncatedNormal):
        return float(initializer.mean), 2.0 * float(initializer.stddev)
    if isinstance(initializer, k.VarianceScaling) and initializer.distribution == "truncated_normal":
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out}.get(initializer.mode, (fan_in + fan_out) / 2)
        return 0.0, 2.0 * math.sqrt(initializer.scale / max(1.0, fan)) / 0.87962566103423978
    return None


def _check_against_keras(model, reference, keras_again, ours, declared, others):
    """Variable by variable: dtypes and shapes; finite values; integer states and whatever Keras
    draws the same under another Keras seed (zeros, ones, LSTM's forget-gate bias) exactly Keras's;
    random ones with Keras's mean and standard deviation, inside truncation bounds, and other values
    under another seed. Returns the paths of the random variables."""
    random = []
    for variable, theirs, theirs_again, mine, initializer, another in zip(model.variables, reference, keras_again,
                                                                         ours, declared, others):
        path = variable.path
        assert mine.shape == theirs.shape and mine.dtype == theirs.dtype, path
        if mine.dtype.kind != "f":  # seed generator states: Keras's own values
            np.testing.assert_array_equal(mine, theirs, err_msg=path)
            continue
        assert np.isfinite(mine).all(), path
        if np.array_equal(theirs, theirs_again):  # deterministic: exactly Keras's
            np.testing.assert_array_equal(mine, theirs, err_msg=path)
            continue
        random.append(path)
        assert not np.array_equal(mine, another), path  # another seed, other values
        x, y = mine.astype(np.float64).ravel(), theirs.astype(np.float64).ravel()
        sigma, n = y.std(), x.size
        assert abs(x.mean() - y.mean()) <= Z * sigma * math.sqrt(2.0 / n), (path, x.mean(), y.mean())
        # The sample standard deviation's standard error is about sigma / sqrt(2 n) for these laws.
        assert abs(x.std() - sigma) <= Z * sigma * math.sqrt(1.0 / n), (path, x.std(), sigma)
        bound = _truncation_bound(initializer, mine.shape)
        if bound is not None:
            mean, width = bound
            assert np.abs(x - mean).max() <= width * (1 + 1e-6), (path, np.abs(x - mean).max(), width)
    return random


@pytest.fixture(scope="module")
def hashes():
    collected = {}
    yield collected
    path = os.environ.get("WARPINIT_KERAS_MODEL_HASHES")
    if path:
        with open(path, "w") as file:
            json.dump(collected, file)


@pytest.mark.parametrize("name", MODELS)
def test_real_backbone(name, hashes):
    built = _backbone(name)  # Keras's own initialization: the reference statistics
    reference = _values(built)
    keras_again = _values(_backbone(name, keras_seed=1))
    declared = [_keras_variables.initializer_of(variable) for variable in built.variables]
    wk.initialize(built, seed=SEED)
    ours = _values(built)

    with wk.deferred():
        deferred = _backbone(name)
    assert all(variable._value is None for variable in deferred.variables if variable.dtype != "uint32")
    wk.initialize(deferred, seed=SEED)
    assert all(variable._value is not None for variable in deferred.variables)  # nothing left uninitialized
    from_deferred = _values(deferred)
    assert [_digest(v) for v in from_deferred] == [_digest(v) for v in ours]  # both paths: the same bits

    with wk.deferred():
        again = _backbone(name)
    wk.initialize(again, seed=SEED)
    assert [_digest(v) for v in _values(again)] == [_digest(v) for v in ours]  # reproducible
    with wk.deferred():
        other = _backbone(name)
    wk.initialize(other, seed=SEED + 1)

    random = _check_against_keras(built, reference, keras_again, ours, declared, _values(other))
    assert len(random) >= 8
    digests = {path: _digest(value) for path, value in zip((v.path for v in built.variables), ours)
               if path in random}
    assert len(set(digests.values())) == len(digests)  # no two random variables share bits
    # Keras draws the seed generators' states its own way per backend; warpinit's values must agree.
    hashes[name] = [_digest(value) if value.dtype.kind == "f" else None for value in ours]

    inputs, labels = _inputs(name)
    logits = np.asarray(keras.ops.convert_to_numpy(_logits(deferred, deferred(inputs))), dtype=np.float64)
    assert logits.shape == (*labels.shape, VOCABULARY) and np.isfinite(logits).all()
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -np.take_along_axis(log_probabilities, labels[..., None], axis=-1).mean()
    assert abs(loss - math.log(VOCABULARY)) < 0.5, loss


@pytest.mark.skipif(BACKEND == "numpy", reason="the numpy backend cannot train")
@pytest.mark.parametrize("name", MODELS)
def test_one_fit_step_of_a_real_backbone(name):
    with wk.deferred():
        backbone = _backbone(name)
        outputs = _logits(backbone, backbone(backbone.input))
        model = keras.Model(backbone.input, outputs)
    wk.initialize(model, seed=SEED)
    model.compile(optimizer=keras.optimizers.SGD(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    inputs, labels = _inputs(name)
    history = model.fit(inputs, labels, epochs=1, batch_size=2, verbose=0)
    loss = history.history["loss"][-1]
    assert math.isfinite(loss) and abs(loss - math.log(VOCABULARY)) < 0.5, loss


def _layers(keras_seed=0):
    """Plain Keras layers whose initializers Keras completes at build time (EinsumDense's axes,
    MultiHeadAttention's projections) or that hold several weights (recurrent and normalization
    layers), large enough for tight statistics."""
    keras.utils.set_random_seed(keras_seed)
    layers = keras.layers
    sequence = keras.Input((12, 64))
    image = keras.Input((16, 16, 8))
    volume = keras.Input((6, 6, 6, 4))
    tokens = keras.Input((12,), dtype="int32")
    outputs = [
        layers.EinsumDense("abc,cde->abde", output_shape=(None, 8, 48), bias_axes="de")(sequence),
        layers.MultiHeadAttention(num_heads=8, key_dim=32)(sequence, sequence),
        layers.Embedding(2000, 64)(tokens),
        layers.Conv1D(64, 5)(sequence),
        layers.Conv2D(32, 3)(image),
        layers.Conv3D(16, 3)(volume),
        layers.Conv1DTranspose(32, 5)(sequence),
        layers.Conv2DTranspose(32, 3)(image),
        layers.Conv3DTranspose(16, 3)(volume),
        layers.LSTM(96)(sequence),
        layers.GRU(96)(sequence),
        layers.SimpleRNN(96)(sequence),
        layers.BatchNormalization()(image),
        layers.LayerNormalization()(sequence),
    ]
    return keras.Model([sequence, image, volume, tokens], outputs)


def test_plain_layers_match_keras_on_built_and_deferred_models():
    built = _layers()
    reference = _values(built)
    keras_again = _values(_layers(keras_seed=1))
    declared = [_keras_variables.initializer_of(variable) for variable in built.variables]
    wk.initialize(built, seed=SEED)
    ours = _values(built)
    with wk.deferred():
        deferred = _layers()
    wk.initialize(deferred, seed=SEED)
    assert [_digest(v) for v in _values(deferred)] == [_digest(v) for v in ours]
    other = _layers()
    wk.initialize(other, seed=SEED + 1)
    random = _check_against_keras(built, reference, keras_again, ours, declared, _values(other))
    # every kernel, embedding and recurrent kernel is drawn (biases, gammas, moving statistics are constants)
    assert sum(path.endswith(("kernel", "embeddings")) for path in random) >= 18, random
    recurrent = [v for v in built.variables if v.path.endswith("recurrent_kernel")]
    for variable in recurrent:  # Keras's recurrent_initializer is orthogonal: so are ours
        q = np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)
        rows, cols = q.shape
        gram = q @ q.T if rows < cols else q.T @ q
        np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=1e-5, err_msg=variable.path)
