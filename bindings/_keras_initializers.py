"""warpinit's Keras 3 initializer classes, their registry, and the distribution of any initializer.

Each class subclasses the Keras class of the same name and only replaces ``__call__``; the registry
maps every name ``keras.initializers.get`` knows to warpinit's class where there is one.
``distribution_of(initializer, shape)`` translates a Keras or warpinit initializer into the shared
distribution vocabulary, with Keras's fans; it is what ``initialize`` groups variables by.
"""

from __future__ import annotations

import keras
import numpy as np

from . import _args, _distributions, _keras_tensors

# Re-exported unchanged: constant initializers need no random numbers.
Initializer = keras.initializers.Initializer
Constant = keras.initializers.Constant
Identity = keras.initializers.Identity
Ones = keras.initializers.Ones
Zeros = keras.initializers.Zeros
STFT = keras.initializers.STFT

PUBLIC_MODULE = "warpinit.keras"
_SEED_GENERATOR_TAG = 0x5EED_0F_6E4E_7A70  # folds a SeedGenerator state into a 64-bit seed


def seed64(seed) -> int:
    """warpinit's 64-bit seed for a Keras seed: an int modulo 2**64, or a SeedGenerator's next state."""
    if isinstance(seed, keras.random.SeedGenerator):
        from warpinit.kernels.philox import derive_seed

        state = np.asarray(keras.ops.convert_to_numpy(seed.next())).astype(np.int64).ravel()
        folded = ((int(state[0]) & 0xFFFFFFFF) << 32) | (int(state[-1]) & 0xFFFFFFFF)
        return derive_seed(folded, _SEED_GENERATOR_TAG)
    return int(seed) % 2**64


def float_dtype(dtype) -> str:
    """A Keras float dtype name (None: ``keras.config.floatx()``); ValueError for anything else."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype not in _keras_tensors.FLOATS:
        raise ValueError(
            f"warpinit initializers produce float dtypes ({', '.join(_keras_tensors.FLOATS)}). Received: dtype={dtype}"
        )
    return dtype


def compute_fans(shape, input_axes=None, output_axes=None) -> tuple[float, float]:
    """Keras's (fan_in, fan_out) of a weight shape: its conventions for ranks 0 and 1, EinsumDense's
    explicit axes (the product of those dimensions alone), else the shared formula."""
    shape = tuple(shape)
    if input_axes is not None and output_axes is not None:
        others = [axis for axis in range(len(shape)) if axis not in
                  {a % len(shape) for a in (*input_axes, *output_axes)}]
        return _distributions.fans(shape, tuple(input_axes), tuple(output_axes), tuple(others))
    if not shape:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    return _distributions.fans(shape)


def distribution_of(initializer, shape):
    """The ``_distributions.Distribution`` that ``initializer`` draws for ``shape``, or None when
    warpinit cannot draw it (Identity, STFT, array constants, custom initializers)."""
    k = keras.initializers

    def real(name):  # TypeError/ValueError naming the argument (not an OverflowError for 10**400)
        return _args.finite(type(initializer).__name__, name, getattr(initializer, name))

    if isinstance(initializer, k.Orthogonal):
        return _distributions.orthogonal(real("gain"))
    if isinstance(initializer, k.VarianceScaling):
        fan_in, fan_out = compute_fans(shape, initializer.input_axes, initializer.output_axes)
        return _distributions.variance_scaling(
            real("scale"), initializer.mode, initializer.distribution, fan_in, fan_out
        )
    if isinstance(initializer, k.TruncatedNormal):
        return _distributions.truncated_normal(real("mean"), real("stddev"))
    if isinstance(initializer, k.RandomNormal):
        return _distributions.normal(real("mean"), real("stddev"))
    if isinstance(initializer, k.RandomUniform):
        return _distributions.uniform(real("minval"), real("maxval"))
    if type(initializer) in (k.Zeros, k.Ones):
        return _distributions.constant(0.0 if type(initializer) is k.Zeros else 1.0)
    if type(initializer) is k.Constant and np.ndim(initializer.value) == 0:
        try:
            return _distributions.constant(float(initializer.value))
        except (TypeError, ValueError):
            return None
    return None


class _WarpinitCall:
    """``__call__`` for every warpinit initializer: the Keras distribution from warpinit's kernels."""

    def __call__(self, shape, dtype=None, layout=None):
        """A tensor of the active backend of ``shape`` and ``dtype`` (None: ``keras.config.floatx()``).

        ``layout`` (a ``keras.distribution.TensorLayout`` or the backend's own layout) is what Keras
        passes under a distribution (JAX backend): the result is laid out so, every device drawing
        only its own block, equal bit for bit to the same block of the undistributed tensor.

        Raises:
            TypeError: shape entries that are not ints (as every backend should), a bad ``layout``.
            ValueError: negative dimensions, a non-float dtype, an orthogonal shape of rank < 2.
        """
        from warpinit.kernels.philox import key_table

        shape = _args.shape(type(self).__name__, shape)
        dtype = float_dtype(dtype)
        distribution = distribution_of(self, shape)
        if distribution.kind == "orthogonal" and len(shape) < 2:
            raise ValueError(
                "The tensor to initialize must be at least two-dimensional. Received: "
                f"shape={shape} of rank {len(shape)}."
            )
        seed = seed64(self.seed)
        if layout is not None:
            from . import _keras_layouts

            return _keras_layouts.laid_out(distribution, shape, dtype, seed, layout)
        where = _keras_tensors.device()
        handle, view = _keras_tensors.destination(shape, dtype, where)
        _distributions.generate(distribution, shape, dtype, key_table(seed, 0), where, view.reshape(1, *shape))
        return _keras_tensors.to_tensor(_keras_tensors.tensor(handle, dtype), dtype)


def _register(cls):
    cls.__module__ = PUBLIC_MODULE  # the public identity, also in saved configurations
    return keras.saving.register_keras_serializable(package="warpinit")(cls)


@_register
class RandomNormal(_WarpinitCall, keras.initializers.RandomNormal):
    """keras.initializers.RandomNormal drawn by warpinit (``warpinit.normal``)."""


@_register
class TruncatedNormal(_WarpinitCall, keras.initializers.TruncatedNormal):
    """keras.initializers.TruncatedNormal drawn by warpinit: exact rejection at +-2 standard deviations."""


@_register
class RandomUniform(_WarpinitCall, keras.initializers.RandomUniform):
    """keras.initializers.RandomUniform drawn by warpinit (``warpinit.uniform``)."""


@_register
class VarianceScaling(_WarpinitCall, keras.initializers.VarianceScaling):
    """keras.initializers.VarianceScaling drawn by warpinit."""


@_register
class GlorotNormal(_WarpinitCall, keras.initializers.GlorotNormal):
    """keras.initializers.GlorotNormal drawn by warpinit."""


@_register
class GlorotUniform(_WarpinitCall, keras.initializers.GlorotUniform):
    """keras.initializers.GlorotUniform drawn by warpinit."""


@_register
class HeNormal(_WarpinitCall, keras.initializers.HeNormal):
    """keras.initializers.HeNormal drawn by warpinit."""


@_register
class HeUniform(_WarpinitCall, keras.initializers.HeUniform):
    """keras.initializers.HeUniform drawn by warpinit."""


@_register
class LecunNormal(_WarpinitCall, keras.initializers.LecunNormal):
    """keras.initializers.LecunNormal drawn by warpinit."""


@_register
class LecunUniform(_WarpinitCall, keras.initializers.LecunUniform):
    """keras.initializers.LecunUniform drawn by warpinit."""


@_register
class Orthogonal(_WarpinitCall, keras.initializers.Orthogonal):
    """keras.initializers.Orthogonal without a QR (``warpinit.orthogonal``); Haar-distributed."""


CLASSES = (RandomNormal, TruncatedNormal, RandomUniform, VarianceScaling, GlorotNormal, GlorotUniform,
           HeNormal, HeUniform, LecunNormal, LecunUniform, Orthogonal)


def _snake(name: str) -> str:
    from keras.src.utils.naming import to_snake_case

    return to_snake_case(name)


# The names keras.initializers.get resolves, pointing at warpinit's classes where there is one.
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in (Initializer, Constant, Identity, Ones, Zeros, STFT) + CLASSES}
ALL_OBJECTS_DICT.update({_snake(name): cls for name, cls in list(ALL_OBJECTS_DICT.items())})
ALL_OBJECTS_DICT.update({
    "IdentityInitializer": Identity,
    "normal": RandomNormal,
    "one": Ones,
    "STFTInitializer": STFT,
    "OrthogonalInitializer": Orthogonal,
    "uniform": RandomUniform,
    "zero": Zeros,
})


def serialize(initializer):
    """The initializer's configuration as a dict (keras.initializers.serialize)."""
    return keras.initializers.serialize(initializer)


def deserialize(config, custom_objects=None):
    """An initializer from its configuration, warpinit's class for every name Keras knows."""
    from keras.src.saving import serialization_lib

    if isinstance(config, dict):
        name = config.get("class_name")
        if name in ALL_OBJECTS_DICT and config.get("registered_name") in (None, name, f"warpinit>{name}") and \
                config.get("module") in (None, "keras.initializers", PUBLIC_MODULE):
            return ALL_OBJECTS_DICT[name].from_config(config.get("config") or {})
    return serialization_lib.deserialize_keras_object(
        config, module_objects=ALL_OBJECTS_DICT, custom_objects=custom_objects
    )


def get(identifier):
    """keras.initializers.get, resolving Keras's names and configurations to warpinit's classes.

    None, classes, callables, tensors and arrays behave as in Keras; an unknown name raises
    ValueError.
    """
    if isinstance(identifier, str):
        if identifier not in ALL_OBJECTS_DICT:
            raise ValueError(f"Could not interpret initializer identifier: {identifier}")
        return ALL_OBJECTS_DICT[identifier]()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    return keras.initializers.get(identifier)
