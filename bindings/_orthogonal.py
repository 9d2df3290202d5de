"""``warpinit.orthogonal``: Haar-distributed (semi-)orthogonal matrices, one or a whole batch at once."""

from __future__ import annotations

import math

import numpy as np

from . import _args, _complex, _devices

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def orthogonal(shape, *, gain=1.0, dtype=None, seed=None, stream=0, device="auto", batch=None, out=None):
    """A random orthogonal matrix as Keras's Orthogonal initializer makes it, without a QR.

    The tensor is seen as a matrix of rows = prod(shape[:-1]) and cols = shape[-1]: it has
    orthonormal columns when rows >= cols and orthonormal rows otherwise, is Haar-distributed, is
    multiplied by ``gain`` and reshaped to ``shape``.

    Args:
        shape: sequence of at least two non-negative ints.
        gain: finite real multiplier.
        dtype: "float16", "bfloat16", "float32" or "float64" (default float32, or ``out``'s dtype).
            16-bit results are computed in float32 and rounded to nearest-even. "complex64" or
            "complex128": a Haar (semi-)unitary matrix, orthonormal under the Hermitian inner
            product (see ``warpinit._complex.orthogonal``).
        seed: int in [0, 2**64), or None for fresh OS entropy.
        stream: int in [0, 2**32).
        device: "auto", "cpu" or "cuda".
        batch: None for one matrix of ``shape``, or a positive int B for an array of shape (B, *shape)
            whose member k is built from the Gaussian inputs of ``orthogonal(shape, seed=seed,
            stream=stream + k)`` (and equals it within the orthogonality tolerance). One pass covers
            the whole batch; stream + B must be <= 2**32.
        out: C-contiguous writable array of the result's shape and ``dtype`` to fill.

    Returns:
        NumPy (CPU) or CuPy (CUDA) array of ``shape`` (or (batch, *shape)), or ``out``.

    Raises:
        ValueError: rank < 2, negative dimensions, non-finite gain, bad seed/stream/batch/device.
        TypeError: non-integer dimensions or batch, unknown dtype.
        MemoryError: the result and its workspace do not fit in the device's memory.

    Counter contract: the Gaussian inputs of member k are ``normal((max(rows, cols), min(rows, cols)),
    seed=seed, stream=stream + k)`` in float32 (float64 for float64 results); Householder reflector j
    is built from column j of that matrix from the diagonal down (see ``warpinit.kernels.orthogonal``).
    Complex results take the complex normal of their own dtype instead, and a QR with the phase fix.
    """
    function = "orthogonal"
    shape, gain, dtype, seed, stream, members = validate(function, shape, gain, dtype, seed, stream, batch, out)
    device = _devices.resolve(function, _args.device(function, device))

    from warpinit.kernels.philox import key_table

    count = members or 1
    result_shape = (members, *shape) if members else shape
    _devices.check_memory(function, device, workspace_bytes(shape, dtype, count))
    if out is not None:
        result = _devices.check_out(function, device, out, result_shape, dtype)
    else:
        result = _devices.empty(device, result_shape, dtype)
    generate(shape, gain, dtype, key_table(seed, np.arange(stream, stream + count, dtype=np.uint64)), device,
             result.reshape(count, *shape))
    return out if out is not None else result


def validate(function: str, shape, gain, dtype, seed, stream, batch, out=None):
    """``orthogonal``'s argument checks, in its order, allocating nothing: returns (shape, gain, dtype,
    seed, stream, members) with members None when ``batch`` is None. ``function`` names the caller in
    the errors."""
    shape = _args.shape(function, shape)
    if len(shape) < 2:
        raise ValueError(
            f"{function}: the tensor to initialize must be at least two-dimensional. Received: "
            f"shape={shape} of rank {len(shape)}."
        )
    members = _batch(function, batch)
    if _complex.requested(dtype, out):
        dtype = _complex.resolve(function, dtype, out)
    else:
        out = _args.out_array(function, out)
        dtype = _args.dtype(function, dtype, _args.out_default(function, out, _FLOAT32))
    gain = _args.representable(function, "gain", _args.finite(function, "gain", gain), dtype)
    seed = _args.seed(function, seed, None)
    stream = _args.stream(function, stream, count=members or 1)
    return shape, gain, dtype, seed, stream, members


def workspace_bytes(shape, dtype, count) -> int:
    """Bytes ``count`` orthogonal matrices of ``shape`` take: Gaussian inputs, reflectors and Q in the
    compute dtype, and the result."""
    rows, cols = math.prod(shape[:-1]), shape[-1]
    if dtype.kind == "c":  # Gaussians in dtype, then Q, R and the phased Q in complex128
        return count * rows * cols * (2 * dtype.itemsize + 3 * 16)
    compute = _FLOAT64 if dtype == _FLOAT64 else _FLOAT32
    return count * rows * cols * (3 * compute.itemsize + dtype.itemsize)


def __getattr__(name):
    # BLAS_LOCK lives with the kernels' other locks (warpinit.kernels.threads), which a forked child
    # makes anew; this name stays for the faces that take it (warpinit.dask, warpinit.jax).
    if name == "BLAS_LOCK":
        from warpinit.kernels import threads

        return threads.BLAS_LOCK
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generate(shape, gain, dtype, keys, device, result):
    """Fill ``result`` (K, *shape) of ``dtype`` with K orthogonal matrices, member k built from the
    Gaussians of row k of the key table ``keys``; arguments already validated."""
    from warpinit.kernels import plan

    if dtype.kind == "c":
        _complex.orthogonal(shape, gain, dtype, keys, device, result)
        return
    rows, cols = math.prod(shape[:-1]), shape[-1]
    big, small = max(rows, cols), min(rows, cols)
    count = len(keys)
    compute = _FLOAT64 if dtype == _FLOAT64 else _FLOAT32
    if rows * cols == 0 or count == 0:
        return
    target = result.reshape(count, rows, cols)
    fmt = 0 if dtype in (_FLOAT32, _FLOAT64) else plan.uniform(0.0, 1.0, dtype).fmt
    if device == "cpu":
        from warpinit.kernels import orthogonal as kernels

        if big * small <= kernels.SMALL_MAX_ELEMENTS:
            # Gaussians, reflectors, Q and the output, member by member in cache.
            storage = target.view(np.uint16) if fmt else target
            kernels.small_cpu(storage, big, small, keys, gain, rows < cols, fmt)
            return
        direct = rows >= cols and not fmt and dtype == compute  # Q straight into the result
        from warpinit.kernels import threads, trapezoid

        with threads.BLAS_LOCK:
            if kernels.batch_workers(count) > 1:  # members drawn and built by each worker
                q = kernels.haar_keys_cpu(keys, target if direct else np.empty((count, big, small), compute))
            else:  # the Gaussians that the reflectors read, drawn by every thread
                g = trapezoid.draw(np.empty((count, big, small), compute), keys)
                q = kernels.haar_cpu(g, q=target if direct else None)
        if direct:
            if gain != 1.0:
                target *= dtype.type(gain)
            return
    else:
        from warpinit.kernels import orthogonal_cuda as kernels

        q = kernels.haar_cupy(_gaussians(count, big, small, compute, keys, "cuda"))
    if rows < cols:
        q = q.swapaxes(1, 2)  # (count, rows, cols)
    _write(target, q, gain, fmt, device)


def _batch(function: str, batch):
    if batch is None:
        return None
    if isinstance(batch, (bool, np.bool_)) or not isinstance(batch, (int, np.integer)):
        raise TypeError(f"{function}: batch must be None or a positive int, got {type(batch).__name__}: {batch!r}")
    if batch < 1:
        raise ValueError(f"{function}: batch must be None or a positive int, got {batch}")
    return int(batch)


def _gaussians(count, big, small, compute, keys, device):
    """(count, big, small) standard normals, member k from row k of the key table."""
    from warpinit.kernels import layout, plan

    block = layout.batch(count, (big, small))
    normal = plan.normal(0.0, 1.0, compute)
    g = _devices.empty(device, block.out_shape, compute)
    if device == "cpu":
        from warpinit.kernels import fill_cpu

        fill_cpu.launch(g, block, normal, keys)
    else:
        from warpinit.kernels import fill_cuda

        fill_cuda.launch_cupy(g, block, normal, keys)
    return g


def _write(target, q, gain, fmt, device):
    """target (count, rows, cols) = gain * q, rounded to the 16-bit format ``fmt`` if not 0."""
    if not fmt:
        if device == "cpu":
            np.multiply(q, target.dtype.type(gain), out=target)
        else:
            target[...] = q * target.dtype.type(gain)
        return
    source = q if q.flags.c_contiguous else q.copy()
    if device == "cpu":
        from warpinit.kernels import orthogonal as kernels

        kernels.scale_round_cpu(source.reshape(-1), np.float32(gain), target.reshape(-1).view(np.uint16), np.int64(fmt))
    else:
        from warpinit.kernels import orthogonal_cuda as kernels

        kernels.scale_round_cupy(source.reshape(-1), np.float32(gain), target.reshape(-1).view(np.uint16), fmt)
