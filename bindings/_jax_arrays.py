"""JAX arrays from blocks warpinit draws on the host or on a GPU, shared by the JAX and Keras faces.

``assemble`` builds a ``jax.Array`` laid out as a sharding, each device holding only the block it
needs; ``empty`` gives, on the CPU, 64-byte-aligned NumPy memory that ``jax.device_put`` adopts
instead of copying - memory that must not be written once handed over.
"""

from __future__ import annotations

import jax
import numpy as np

from . import _devices

def empty(device: str, shape, dtype: np.dtype):
    """An uninitialized array on warpinit's ``device``: on the CPU aligned to 64 bytes, which XLA's
    CPU client adopts in ``device_put`` instead of copying."""
    if device != "cpu":
        return _devices.empty(device, tuple(shape), dtype)
    return _devices.aligned_empty(shape, dtype, 64)


def ranges(shape, index) -> tuple[tuple[int, int], ...]:
    """(start, stop) per axis of a block given by slices (step 1); None covers the whole tensor."""
    if index is None:
        return tuple((0, n) for n in shape)
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    result = []
    for entry, n in zip(index, shape):
        start, stop, _ = entry.indices(n)
        result.append((start, max(start, stop)))
    return tuple(result)


def device_kind(device) -> str:
    """The warpinit device that fills a JAX device's buffers directly."""
    return "cuda" if device.platform == "gpu" and _devices.cuda_usable() else "cpu"


def to_jax(array, device=None):
    """A jax.Array holding ``array``: NumPy through ``device_put`` (adopted when aligned), CuPy
    through DLPack (no copy). The caller never writes ``array`` again."""
    if isinstance(array, np.ndarray):
        return jax.device_put(array, device)
    return jax.dlpack.from_dlpack(array)


def on_gpu(device):
    """A context that makes CuPy allocate on a JAX GPU device."""
    import cupy

    ordinal = getattr(device, "local_hardware_id", None)
    return cupy.cuda.Device(device.id if ordinal is None else ordinal)


def assemble(shape, dtype, sharding, block):
    """A ``jax.Array`` of ``shape`` and ``dtype`` laid out as ``sharding``, each device holding only
    the block it needs: ``block(ranges, device, cache)`` returns the block ``ranges`` ((start, stop)
    per axis) as a new NumPy (device "cpu") or CuPy ("cuda") array; ``cache`` is a dict shared by
    the blocks drawn on one device. On GPUs each shard is drawn on its own GPU and stays there; on
    the host a block held by several devices is drawn once."""
    indices = sharding.addressable_devices_indices_map(tuple(shape))
    if any(device_kind(device) == "cuda" for device in indices):
        arrays, caches = [], {}
        for device, index in indices.items():  # each device's shard drawn on that GPU, kept there
            with on_gpu(device):
                cache = caches.setdefault(device, {})
                arrays.append(to_jax(block(ranges(shape, index), "cuda", cache)))
        return jax.make_array_from_single_device_arrays(tuple(shape), sharding, arrays)
    cache, blocks = {}, {}

    def host_block(index):
        block_ranges = ranges(shape, index)
        if block_ranges not in blocks:
            blocks[block_ranges] = block(block_ranges, "cpu", cache)
        return blocks[block_ranges]

    return jax.make_array_from_callback(tuple(shape), sharding, host_block, dtype=dtype)
