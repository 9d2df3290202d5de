"""Where a call runs: device resolution, memory limits and ``out=`` buffers.

``device="auto"`` picks CUDA only when CuPy imports and a real driver reports a GPU (Numba's
``cuda.is_available()`` is also true under the simulator, so it is not consulted); otherwise the CPU.
CPU results are NumPy arrays, CUDA results CuPy arrays on CuPy's current device and stream.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np


@functools.lru_cache(maxsize=1)
def cuda_usable() -> bool:
    """Whether CuPy and a CUDA driver with at least one GPU are available (never under the simulator)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDARuntimeError without a driver
        return False


def resolve(function: str, device: str) -> str:
    """'cpu' or 'cuda' for a validated device argument."""
    if device == "auto":
        return "cuda" if cuda_usable() else "cpu"
    if device == "cuda" and not cuda_usable():
        raise RuntimeError(
            f"{function}: device='cuda' needs a CUDA GPU with CuPy (pip install 'warpinit[cuda13]' or "
            "'warpinit[cuda12]'); none is usable here. Use device='cpu' or 'auto'."
        )
    return device


def check_memory(function: str, device: str, nbytes: int) -> None:
    """MemoryError when an allocation of ``nbytes`` exceeds the device's total memory."""
    total = _total_memory(device)
    if total is not None and nbytes > total:
        raise MemoryError(
            f"{function}: the result needs {nbytes} bytes ({nbytes / 2**30:.1f} GiB), more than the "
            f"{device} has ({total / 2**30:.1f} GiB)"
        )


def _total_memory(device: str) -> int | None:
    if device == "cuda":
        import cupy

        return int(cupy.cuda.Device().mem_info[1])
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_out(function: str, device: str, out, shape: tuple[int, ...], dtype: np.dtype):
    """Validate an ``out=`` buffer; return it as the array type the device fills (NumPy or CuPy)."""
    if device == "cpu":
        if not isinstance(out, np.ndarray):
            raise TypeError(
                f"{function}: out must be a NumPy array on the CPU, got {type(out).__name__}"
            )
        array = out
        writable = out.flags.writeable
    else:
        array = _as_cupy(function, out)
        writable = not getattr(out, "__cuda_array_interface__", {"data": (0, False)})["data"][1]
    if array.shape != tuple(shape):
        raise ValueError(f"{function}: out has shape {array.shape}, expected {tuple(shape)}")
    if array.dtype != dtype:
        raise ValueError(f"{function}: out has dtype {array.dtype}, expected {dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{function}: out must be C-contiguous")
    if not writable:
        raise ValueError(f"{function}: out must be writable")
    return array


def _as_cupy(function: str, out):
    import cupy

    if isinstance(out, cupy.ndarray):
        return out
    if hasattr(out, "__cuda_array_interface__"):
        return cupy.asarray(out)  # zero-copy view of the same memory
    if hasattr(out, "__dlpack__"):
        return cupy.from_dlpack(out)
    raise TypeError(
        f"{function}: out on the GPU must be a CuPy array or expose __cuda_array_interface__ or "
        f"DLPack, got {type(out).__name__}"
    )


def aligned_empty(shape, dtype, alignment: int) -> np.ndarray:
    """An uninitialized C-contiguous NumPy array whose data starts on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = -raw.ctypes.data % alignment
    return raw[offset: offset + nbytes].view(dtype).reshape(tuple(shape))


def empty(device: str, shape: tuple[int, ...], dtype: np.dtype):
    """An uninitialised array on the device."""
    if device == "cpu":
        return np.empty(shape, dtype=dtype)
    import cupy

    try:
        return cupy.empty(shape, dtype=dtype)
    except TypeError as error:
        raise TypeError(f"CuPy cannot allocate {dtype} arrays (bfloat16 needs CuPy >= 14 with ml_dtypes)") from error
