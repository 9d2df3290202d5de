"""Keras 3 initializers backed by warpinit's kernels, and whole-model batched initialization.

Drop-in classes: each subclasses the Keras class of the same name (``isinstance`` checks hold), keeps
its constructor, defaults, validation, attributes and ``get_config`` keys, and only replaces
``__call__``::

    import warpinit.keras as initializers

    layer = keras.layers.Dense(4096, kernel_initializer=initializers.Orthogonal(seed=1))
    layer = keras.layers.Dense(4096, kernel_initializer=initializers.get("glorot_uniform"))

Semantics follow Keras (the distributions, VarianceScaling's fans and its 0.8796... truncation
correction, dtype ``None`` = ``keras.config.floatx()``), with two strengthenings: the same integer seed
gives the same values on every backend (numpy, tensorflow, jax, torch) and on CPU and GPU, and
truncation is exact at any size.

Seeds: an int gives the same values on every call (any Python int; negative ones are taken modulo
2**64); ``None`` picks a seed at construction that ``get_config`` does not store, as Keras does; a
``keras.random.SeedGenerator`` gives new values on every call: its next state is read back to the host
(a device synchronisation on GPU backends) and folded into a 64-bit seed with Philox.

Whole models: ``deferred()`` builds a model without initializing its variables, and
``initialize(model, seed)`` fills them in batched kernel launches, each variable from the initializer
Keras created it with and from a seed derived from the model seed and its structural path (see
``initialize``). To know those initializers, importing this module makes every Keras variable created
afterwards remember the initializer it was created with (one small wrapper around Keras's
``Variable.__init__``; nothing else about variables changes).

Distributions: under a ``keras.distribution`` (JAX backend) Keras passes the variable's ``layout`` to
the initializer; each device then draws only its own block, bit for bit the same block of the
undistributed tensor, and ``initialize`` does the same for the variables their layouts split.
"""

from __future__ import annotations

try:
    import keras  # noqa: F401  (the clear error below when Keras is missing)
except ImportError as error:  # pragma: no cover - exercised only without Keras
    raise ImportError("warpinit.keras needs Keras 3: pip install 'warpinit[keras]'") from error

from . import _keras_variables
from ._keras_initializers import ALL_OBJECTS_DICT as ALL_OBJECTS_DICT
from ._keras_initializers import STFT as STFT
from ._keras_initializers import Constant as Constant
from ._keras_initializers import GlorotNormal as GlorotNormal
from ._keras_initializers import GlorotUniform as GlorotUniform
from ._keras_initializers import HeNormal as HeNormal
from ._keras_initializers import HeUniform as HeUniform
from ._keras_initializers import Identity as Identity
from ._keras_initializers import Initializer as Initializer
from ._keras_initializers import LecunNormal as LecunNormal
from ._keras_initializers import LecunUniform as LecunUniform
from ._keras_initializers import Ones as Ones
from ._keras_initializers import Orthogonal as Orthogonal
from ._keras_initializers import RandomNormal as RandomNormal
from ._keras_initializers import RandomUniform as RandomUniform
from ._keras_initializers import TruncatedNormal as TruncatedNormal
from ._keras_initializers import VarianceScaling as VarianceScaling
from ._keras_initializers import Zeros as Zeros
from ._keras_initializers import deserialize as deserialize
from ._keras_initializers import get as get
from ._keras_initializers import serialize as serialize
from ._keras_model import initialize as initialize
from ._keras_variables import deferred as deferred
from ._seeds import path_tag as path_tag

__all__ = [
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "Initializer",
    "LecunNormal", "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "STFT",
    "TruncatedNormal", "VarianceScaling", "Zeros", "deferred", "deserialize", "get", "initialize",
    "serialize",
]

# Lower-case aliases as module attributes, as keras.initializers has them.
for _name, _cls in list(ALL_OBJECTS_DICT.items()):
    if _name[0].islower() and _name.isidentifier():
        globals().setdefault(_name, _cls)
del _name, _cls

_keras_variables.install_hook()
