"""Validation of the public API's arguments: clear errors naming the parameter, before any allocation.

Every check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value out of
range, with the function name, the parameter, the value received and what is accepted.
"""

from __future__ import annotations

import math
import numbers
import secrets

import numpy as np

MAX_SEED = 2**64
MAX_STREAM = 2**32
DEVICES = ("auto", "cpu", "cuda")
_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")


def shape(function: str, value) -> tuple[int, ...]:
    """A shape: an int or a sequence of non-negative ints."""
    entries = (value,) if _is_int(value) else value
    try:
        entries = tuple(entries)
    except TypeError:
        raise TypeError(
            f"{function}: shape must be an int or a sequence of ints, got {type(value).__name__}: {value!r}"
        ) from None
    for entry in entries:
        if not _is_int(entry):
            raise TypeError(
                f"{function}: shape entries must be ints, got {type(entry).__name__} {entry!r} in shape={value!r}"
            )
        if entry < 0:
            raise ValueError(f"{function}: shape entries must be >= 0, got shape={value!r}")
    result = tuple(int(entry) for entry in entries)
    if math.prod(result) >= 2**63:
        raise ValueError(f"{function}: shape={result} has {math.prod(result)} elements; at most 2**63 - 1 are addressable")
    return result


def dtype(function: str, value, default: np.dtype) -> np.dtype:
    """float16, bfloat16, float32 or float64, as a name, NumPy dtype or scalar type (ml_dtypes too)."""
    import ml_dtypes

    from warpinit.kernels.plan import DTYPES

    if value is None:
        return default
    try:
        if isinstance(value, str):
            if value not in _DTYPE_NAMES:
                raise TypeError
            resolved = np.dtype(ml_dtypes.bfloat16) if value == "bfloat16" else np.dtype(value)
        else:
            resolved = np.dtype(getattr(value, "as_numpy_dtype", value))
    except TypeError:
        resolved = None
    if resolved is None or resolved not in DTYPES:
        raise TypeError(
            f"{function}: dtype must be one of {', '.join(_DTYPE_NAMES)} (a name, NumPy dtype or "
            f"ml_dtypes type), got {value!r}"
        )
    return resolved


def real(function: str, name: str, value) -> float:
    """A real number (int, float or NumPy scalar; not bool, not complex) as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
            return float(value)
        raise TypeError(f"{function}: {name} must be a real number, got {type(value).__name__}: {value!r}")
    return float(value)


def finite(function: str, name: str, value) -> float:
    """A finite real number (see ``real``) as a Python float."""
    value = real(function, name, value)
    if not math.isfinite(value):
        raise ValueError(f"{function}: {name} must be finite, got {value!r}")
    return value


def seed(function: str, value, index) -> int:
    """A seed in [0, 2**64); None draws one from the OS (not allowed together with ``index``)."""
    if value is None:
        if index is not None:
            raise ValueError(
                f"{function}: index= needs an explicit seed (a block must come from a known tensor); got seed=None"
            )
        return secrets.randbits(64)
    if not _is_int(value):
        raise TypeError(f"{function}: seed must be an int in [0, 2**64) or None, got {type(value).__name__}: {value!r}")
    if not 0 <= value < MAX_SEED:
        raise ValueError(f"{function}: seed must be in [0, 2**64), got {value}")
    return int(value)


def stream(function: str, value, count: int = 1) -> int:
    """A stream in [0, 2**32); with ``count`` consecutive streams, the last one must fit too."""
    if not _is_int(value):
        raise TypeError(f"{function}: stream must be an int in [0, 2**32), got {type(value).__name__}: {value!r}")
    if not 0 <= value < MAX_STREAM:
        raise ValueError(f"{function}: stream must be in [0, 2**32), got {value}")
    if value + count > MAX_STREAM:
        raise ValueError(
            f"{function}: stream + batch must be <= 2**32, got stream={value} and batch={count}"
        )
    return int(value)


def device(function: str, value) -> str:
    if not isinstance(value, str) or value not in DEVICES:
        raise ValueError(f"{function}: device must be one of {DEVICES}, got {value!r}")
    return value


def _is_int(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
