"""Tensors of the active Keras backend that own the values warpinit draws for them.

``destination(shape, dtype, device)`` gives a handle and a writable NumPy (CPU) or CuPy (CUDA) view;
once the values are written, ``tensor(handle, dtype)`` is a backend tensor holding them in memory of
its own: the backend's own new tensor (numpy, torch and TensorFlow on the CPU: the view is its memory),
or a fresh buffer the backend adopts or copies (JAX on the CPU: a 64-byte-aligned NumPy buffer that
``jax.device_put`` takes over; CUDA: a CuPy array handed over by DLPack). Nothing here ever gives a
backend a view of memory that warpinit writes again.
"""

from __future__ import annotations

import ctypes
import math

import keras
import numpy as np

from . import _devices, _distributions

FLOATS = ("float16", "bfloat16", "float32", "float64")


def device() -> str:
    """'cuda' when the Keras backend places tensors on a GPU that warpinit can fill, else 'cpu'."""
    if not _devices.cuda_usable():
        return "cpu"
    backend = keras.backend.backend()
    if backend == "torch":
        from keras.src.backend.torch.core import get_device

        return "cuda" if str(get_device()).startswith("cuda") else "cpu"
    if backend == "jax":
        import jax

        return "cuda" if jax.default_backend() == "gpu" else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "cuda" if tf.config.list_logical_devices("GPU") else "cpu"
    return "cpu"


def destination(shape, dtype: str, where: str):
    """(handle, view) for a new tensor of ``shape`` and ``dtype`` (a Keras dtype name) on ``where``
    ("cpu" or "cuda"): write the values into ``view``, then ``tensor(handle, dtype)``."""
    shape = tuple(shape)
    numpy_dtype = _distributions.numpy_dtype(dtype)
    if where != "cpu":
        array = _devices.empty(where, shape, numpy_dtype)
        return array, array
    backend = keras.backend.backend()
    if backend == "numpy":
        array = np.empty(shape, dtype=numpy_dtype)
        return array, array
    if backend == "torch":
        import torch

        if dtype == "bfloat16":  # no NumPy bfloat16 in torch: its bits through an int16 view
            handle = torch.empty(shape, dtype=torch.bfloat16)
            return handle, handle.view(torch.int16).numpy().view(numpy_dtype)
        handle = torch.empty(shape, dtype=getattr(torch, dtype))
        return handle, handle.numpy()
    if backend == "tensorflow" and dtype != "bfloat16" and math.prod(shape) > 0:
        import tensorflow as tf

        # An uninitialized tensor from TensorFlow's allocator (which reuses freed memory); a Variable
        # made from it keeps that memory. NumPy imports its DLPack export read-only, so only the
        # address is taken from it; the handle keeps the tensor alive while the view is written.
        handle = tf.raw_ops.Empty(shape=shape, dtype=getattr(tf, dtype), init=False)
        address = np.from_dlpack(handle).ctypes.data
        nbytes = math.prod(shape) * numpy_dtype.itemsize
        view = np.frombuffer((ctypes.c_char * nbytes).from_address(address), dtype=numpy_dtype).reshape(shape)
        return handle, view
    array = _devices.aligned_empty(shape, numpy_dtype, 64)  # JAX adopts it; TensorFlow copies it once
    return array, array


def tensor(handle, dtype: str):
    """The backend tensor for a handle of ``destination`` whose view has been written."""
    backend = keras.backend.backend()
    if not isinstance(handle, np.ndarray) and type(handle).__module__.startswith("cupy"):
        if backend == "torch":
            import torch

            return torch.from_dlpack(handle)
        if backend == "jax":
            import jax

            return jax.dlpack.from_dlpack(handle)
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.experimental.dlpack.from_dlpack(handle.toDlpack())
        handle = handle.get()
    if backend == "jax" and isinstance(handle, np.ndarray):
        import jax

        return jax.device_put(handle)
    # numpy: the array; torch and TensorFlow: their own tensor; TensorFlow's NumPy fallback (bfloat16,
    # empty shapes): the array, which tf.Variable copies once (converting first would copy twice).
    return handle


def from_array(array, dtype: str):
    """A backend tensor holding a copy of ``array`` (NumPy or CuPy) in memory of its own."""
    where = "cpu" if isinstance(array, np.ndarray) else "cuda"
    handle, view = destination(array.shape, dtype, where)
    view[...] = array
    return to_tensor(tensor(handle, dtype), dtype)


def to_tensor(value, dtype: str):
    """``value`` (a ``tensor`` result) as a tensor of the backend, for returning to Keras."""
    if keras.backend.backend() == "tensorflow" and isinstance(value, np.ndarray):
        return keras.ops.convert_to_tensor(value, dtype=dtype)
    return value


def assign(variable, value) -> None:
    """Put ``value`` (a ``tensor`` result) into ``variable``: Keras's first initialization if it was
    deferred, else ``assign``."""
    if variable._value is None:
        if not (isinstance(value, np.ndarray) and keras.backend.backend() == "tensorflow"):
            value = variable._convert_to_tensor(value, dtype=variable.dtype)
        variable._initialize(value)
        variable._initializer = None  # as Keras's own deferred initialization leaves it
    else:
        variable.assign(value)
