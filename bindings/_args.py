"""Validation of the public API's arguments: clear errors naming the parameter, before any allocation.

Every check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a value out of
range, with the function name, the parameter, the value received and what is accepted.
"""

from __future__ import annotations

import decimal
import math
import numbers
import secrets
from collections.abc import Sequence

import numpy as np

MAX_SEED = 2**64
MAX_STREAM = 2**32
DEVICES = ("auto", "cpu", "cuda")
_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")
# NumPy's limits on an array's rank and on each dimension (and the addressable elements).
MAX_RANK = 64
MAX_DIMENSION = 2**63 - 1


def shape(function: str, value) -> tuple[int, ...]:
    """A shape: an int, or a tuple, list or other sequence of non-negative ints (a 1-D integer array too).

    Raises:
        TypeError: anything else - bytes, bytearray, memoryview, dicts, sets, iterators, non-int entries.
        ValueError: negative entries, more than 64 dimensions, or more than 2**63 - 1 elements or
            entries (NumPy's limits).
    """
    if _is_int(value):
        entries = (value,)
    elif isinstance(value, (bytes, bytearray, memoryview)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(
            f"{function}: shape must be an int or a sequence of ints (tuple or list), got {type(value).__name__}: "
            f"{_brief(value)}"
        )
    else:
        try:
            entries = tuple(value)
        except TypeError:  # a 0-d array
            raise TypeError(
                f"{function}: shape must be an int or a sequence of ints, got {type(value).__name__}: {_brief(value)}"
            ) from None
    for entry in entries:
        if not _is_int(entry):
            raise TypeError(
                f"{function}: shape entries must be ints, got {type(entry).__name__} {_brief(entry)} in "
                f"shape={_brief(value)}"
            )
        if entry < 0:
            raise ValueError(f"{function}: shape entries must be >= 0, got shape={_brief(value)}")
    result = tuple(int(entry) for entry in entries)
    if len(result) > MAX_RANK:
        raise ValueError(f"{function}: shape must have at most {MAX_RANK} dimensions, got {len(result)}")
    if any(entry > MAX_DIMENSION for entry in result) or math.prod(result) > MAX_DIMENSION:
        raise ValueError(
            f"{function}: shape={_brief(result)} exceeds NumPy's limits: each dimension and the number of "
            f"elements ({_brief(math.prod(result))}) must be at most 2**63 - 1"
        )
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
    except Exception:  # TypeError mostly; NumPy raises ValueError or others for some objects
        resolved = None
    if resolved is None or resolved not in DTYPES:
        raise TypeError(
            f"{function}: dtype must be one of {', '.join(_DTYPE_NAMES)} (a name, NumPy dtype or "
            f"ml_dtypes type), got {_brief(value)}"
        )
    return resolved


def real(function: str, name: str, value) -> float:
    """A real number as a Python float: an int, float, NumPy or ml_dtypes (bfloat16, ...) real scalar or
    0-d array; not bool, not complex. Infinities pass (``finite`` refuses them).

    Raises:
        TypeError: not a real number.
        ValueError: a finite number beyond float64's range (a huge int, say), which would overflow.
    """
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not (isinstance(value, numbers.Real) or _is_ml_real(value)):
        raise TypeError(f"{function}: {name} must be a real number, got {type(value).__name__}: {_brief(value)}")
    try:
        result = float(value)
    except OverflowError:
        result = None
    if result is None or (math.isinf(result) and _finite_number(value)):
        raise ValueError(
            f"{function}: {name} must be a real number within float64's range (magnitude below about "
            f"1.8e308), got {_brief(value)}"
        )
    return result


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
        raise TypeError(
            f"{function}: seed must be an int in [0, 2**64) or None, got {type(value).__name__}: {_brief(value)}"
        )
    if not 0 <= value < MAX_SEED:
        raise ValueError(f"{function}: seed must be in [0, 2**64), got {_brief(int(value))}")
    return int(value)


def stream(function: str, value, count: int = 1) -> int:
    """A stream in [0, 2**32); with ``count`` consecutive streams, the last one must fit too.

    The arithmetic is on Python ints: a NumPy ``uint32``/``int32`` stream never wraps or overflows.
    """
    if not _is_int(value):
        raise TypeError(
            f"{function}: stream must be an int in [0, 2**32), got {type(value).__name__}: {_brief(value)}"
        )
    value, count = int(value), int(count)
    if not 0 <= value < MAX_STREAM:
        raise ValueError(f"{function}: stream must be in [0, 2**32), got {_brief(value)}")
    if value + count > MAX_STREAM:
        raise ValueError(
            f"{function}: stream + batch must be <= 2**32, got stream={value} and batch={count}"
        )
    return value


def device(function: str, value) -> str:
    """"auto", "cpu" or "cuda": TypeError for a non-string (None, 5), ValueError for another string."""
    if not isinstance(value, str):
        raise TypeError(f"{function}: device must be one of {DEVICES} (a str), got {type(value).__name__}: {value!r}")
    if value not in DEVICES:
        raise ValueError(f"{function}: device must be one of {DEVICES}, got {value!r}")
    return value


def out_array(function: str, value):
    """Checks of an ``out=`` buffer that need no device: a NumPy array must be a plain ndarray (np.memmap
    too; not np.matrix, masked or other subclasses) of a supported float dtype in native byte order,
    C-contiguous and writable. Other objects pass (the GPU path or the CPU's type check decide later).

    Raises:
        TypeError: a NumPy subclass, an unsupported or byte-swapped dtype.
        ValueError: not C-contiguous, or read-only.
    """
    from warpinit.kernels.plan import DTYPES

    if not isinstance(value, np.ndarray):
        return value
    if type(value) not in (np.ndarray, np.memmap):
        raise TypeError(f"{function}: out must be a plain NumPy array (np.ndarray), got the subclass {type(value).__name__}")
    if value.dtype not in DTYPES or not value.dtype.isnative:
        raise TypeError(
            f"{function}: out must have dtype {', '.join(_DTYPE_NAMES)} in native byte order, got {value.dtype.str} "
            f"({value.dtype})"
        )
    if not value.flags.c_contiguous:
        raise ValueError(f"{function}: out must be C-contiguous, got an array of strides {value.strides}")
    if not value.flags.writeable:
        raise ValueError(f"{function}: out must be writable, got a read-only array")
    return value


def out_default(function: str, value, default: np.dtype) -> np.dtype:
    """The dtype a call defaults to: that of a validated ``out=`` buffer (``out_array``), else ``default``.

    Raises:
        TypeError: ``out`` is neither a NumPy array nor an array object whose dtype is a supported float
            dtype (a torch tensor, a list, ...).
    """
    from warpinit.kernels.plan import DTYPES

    if value is None:
        return default
    if isinstance(value, np.ndarray):
        return value.dtype
    try:
        resolved = np.dtype(value.dtype)
    except Exception:  # no dtype attribute, or one NumPy cannot read (torch.float32)
        resolved = None
    if resolved is None or resolved not in DTYPES:
        raise TypeError(
            f"{function}: out must be a NumPy array (CPU) or a CuPy / __cuda_array_interface__ array (CUDA) of "
            f"dtype {', '.join(_DTYPE_NAMES)}, got {type(value).__name__}: {_brief(value)}"
        )
    return resolved


def representable(function: str, name: str, value: float, dtype: np.dtype) -> float:
    """``value`` (finite) when it rounds to a finite number of ``dtype`` (for a complex dtype, of its
    parts' float dtype); ValueError naming ``name`` else."""
    if dtype.kind == "c":
        dtype = np.dtype(f"f{dtype.itemsize // 2}")
    with np.errstate(over="ignore"):
        rounded = float(np.array(value, dtype=np.float64).astype(dtype))
    if not math.isfinite(rounded):
        raise ValueError(
            f"{function}: {name}={value!r} is not representable in {dtype.name} (it overflows; the largest "
            f"finite {dtype.name} is {float(_finfo_max(dtype))!r})"
        )
    return value


def _finfo_max(dtype: np.dtype):
    import ml_dtypes

    return ml_dtypes.finfo(dtype).max


def _is_int(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))


def _is_ml_real(value) -> bool:
    """An ml_dtypes float scalar (bfloat16, float8_*): a NumPy scalar of a floating dtype NumPy does not own."""
    if not isinstance(value, np.generic) or value.dtype.kind != "V":
        return False
    import ml_dtypes

    try:
        ml_dtypes.finfo(value.dtype)
    except (TypeError, ValueError):
        return False
    return True


def _finite_number(value) -> bool:
    """Whether ``value`` (a real number) is finite in its own type (a huge int or Fraction is)."""
    if isinstance(value, numbers.Integral) or isinstance(value, numbers.Rational):
        return True
    try:
        return bool(np.isfinite(value))
    except TypeError:
        return True


def _brief(value, limit: int = 80) -> str:
    """``repr(value)``, huge ints in scientific notation and long texts cut, for error messages."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"{decimal.Decimal(value):.6e}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
