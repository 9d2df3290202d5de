"""``warpinit.dask``: tensors larger than one machine, as Dask arrays generated chunk by chunk.

Each function returns a lazy ``dask.array.Array``. Building it validates every argument (with the
array API's own errors), fixes the seed and lays out the chunks; nothing is drawn and no kernel is
compiled on the client. When the array is computed, every chunk is generated independently, on
whichever worker runs its task, by the CPU kernels (``device="cpu"``), as a NumPy array:

- sampling (``uniform``, ``normal``, ``truncated_normal``): the chunk at ``[a0:b0, a1:b1, ...]`` is
  ``warpinit.<function>(shape, ..., seed=seed, stream=stream, index=(slice(a0, b0), ...))``, which by
  the counter contract equals that block of the whole tensor. The assembled array therefore equals the
  single-machine ``warpinit.<function>(shape, ..., seed=seed, stream=stream)`` bit for bit, for any
  chunking and any number of workers.
- ``orthogonal``: a stack of ``batch`` matrices split along the batch axis into whole matrices (see
  ``orthogonal`` for how it agrees with the single-machine stack).

Seeds: ``seed=None`` draws one seed from the OS when the array is built, so every chunk agrees and
computing the same array again gives the same values. The seed is part of the array's name
(``warpinit-<function>-<seed>-<token>``); ``seed_of(array)`` reads it back.

Names: the token is ``dask.base.tokenize`` of warpinit's version and the validated arguments, so two
identical calls (with an explicit seed) give arrays with the same keys, which dask shares and caches.
(Under dask's experimental ``array.query-planning`` backend dask names the array itself: the keys stay
deterministic, but ``seed_of`` cannot read the seed back; pass an explicit seed there.)

Workers: each chunk's kernel already uses every core Numba is given (``NUMBA_NUM_THREADS``), so one
thread per worker process is enough. Keep distributed's default start method for worker processes,
spawn: with fork, the nanny forks from its event-loop thread and Numba warns that its TBB threading
layer may be left in an invalid state in the child.

GPUs: chunks are NumPy arrays. A worker that should fill CuPy chunks on its GPU would need CuPy and
numba-cuda installed, one GPU per worker process (e.g. dask-cuda's ``LocalCUDACluster``), chunks
generated with ``device="cuda"`` and a CuPy ``meta``; its values would agree with these within the
CPU-versus-CUDA tolerance of the counter contract (4 ULP), not bit for bit. This module does not
build such arrays.

Needs Dask: ``pip install 'warpinit[dask]'``.
"""

from __future__ import annotations

import numbers
import re

import numpy as np

try:
    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.base import tokenize
except ImportError as error:  # pragma: no cover - exercised with dask hidden
    raise ImportError(
        "warpinit.dask needs Dask (dask.array); install it with: pip install 'warpinit[dask]'"
    ) from error

from . import __version__, _args, _distributions, _orthogonal, _sampling

__all__ = ["normal", "orthogonal", "seed_of", "truncated_normal", "uniform"]

# The distribution parameters of each sampler, in the order the array API validates them.
_PARAMETERS = {
    "uniform": ("minval", "maxval"),
    "normal": ("mean", "stddev"),
    "truncated_normal": ("mean", "stddev", "lower", "upper"),
}
_NAME = re.compile(r"warpinit-([a-z]+(?:-[a-z]+)*)-([0-9]+)-([0-9a-f]+)")


def uniform(shape, *, chunks="auto", minval=0.0, maxval=1.0, dtype=None, seed=None, stream=0):
    """A Dask array of uniform values on [minval, maxval), equal to ``warpinit.uniform``.

    Args:
        shape: int or sequence of non-negative ints, the shape of the whole tensor.
        chunks: any chunk specification ``dask.array`` accepts (normalized by
            ``dask.array.core.normalize_chunks``): "auto" (chunks of about dask's ``array.chunk-size``
            config, 128 MiB by default), a byte size such as "64MiB", an int or a tuple of ints (block
            shape; -1 or None for a whole axis), a tuple of tuples of explicit chunk sizes per axis, or
            a dict {axis: spec} (missing axes whole).
        minval, maxval: finite reals, minval < maxval, as in ``warpinit.uniform``.
        dtype: "float16", "bfloat16", "float32" or "float64" (or a NumPy/ml_dtypes dtype); default
            float32.
        seed: int in [0, 2**64), or None to draw one now (see ``seed_of``).
        stream: int in [0, 2**32): an independent stream under the same seed.

    Returns:
        A ``dask.array.Array`` of ``shape`` and ``dtype`` with NumPy chunks, which computes to
        ``warpinit.uniform(shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed,
        stream=stream)`` bit for bit.

    Raises:
        TypeError, ValueError: invalid arguments, with the array API's messages; a chunk specification
            dask cannot apply to ``shape`` raises dask's error type with a message naming ``chunks``.
            Raised before any graph is built. (Memory is checked per chunk, on the worker.)
    """
    return _sample("uniform", shape, chunks, dtype, seed, stream, minval=minval, maxval=maxval)


def normal(shape, *, chunks="auto", mean=0.0, stddev=1.0, dtype=None, seed=None, stream=0):
    """A Dask array of normal values, equal to ``warpinit.normal``.

    Args:
        mean: finite real, representable in ``dtype``.
        stddev: finite real > 0 that does not round to 0 or overflow in ``dtype``.
        Other arguments as in ``uniform``.

    Returns:
        A ``dask.array.Array`` that computes to ``warpinit.normal(shape, mean=mean, stddev=stddev,
        dtype=dtype, seed=seed, stream=stream)`` bit for bit.

    Raises: as in ``uniform``.
    """
    return _sample("normal", shape, chunks, dtype, seed, stream, mean=mean, stddev=stddev)


def truncated_normal(
    shape, *, chunks="auto", mean=0.0, stddev=1.0, lower=-2.0, upper=2.0, dtype=None, seed=None, stream=0
):
    """A Dask array of truncated normal values, equal to ``warpinit.truncated_normal``.

    Values are normal(mean, stddev) conditioned on [mean + lower*stddev, mean + upper*stddev] by
    rejection (never clamped); the bounds hold after rounding to ``dtype``.

    Args:
        mean, stddev: as in ``normal``.
        lower, upper: bounds in standard deviations around ``mean`` (default +-2, as Keras and
            TensorFlow); either may be infinite; lower < upper, with at least one value of ``dtype``
            between them.
        Other arguments as in ``uniform``.

    Returns:
        A ``dask.array.Array`` that computes to ``warpinit.truncated_normal(shape, mean=mean,
        stddev=stddev, lower=lower, upper=upper, dtype=dtype, seed=seed, stream=stream)`` bit for bit.

    Raises: as in ``uniform``.
    """
    return _sample(
        "truncated_normal", shape, chunks, dtype, seed, stream, mean=mean, stddev=stddev, lower=lower, upper=upper
    )


def orthogonal(shape, *, batch, chunks="auto", gain=1.0, dtype=None, seed=None, stream=0):
    """A Dask array stacking ``batch`` random orthogonal matrices, split into chunks of whole matrices.

    The stack has shape (batch, *shape) and equals ``warpinit.orthogonal(shape, batch=batch, gain=gain,
    dtype=dtype, seed=seed, stream=stream)``: member k is built from the Gaussian inputs of stream
    ``stream + k``, and the chunk holding members [k0, k1) is ``warpinit.orthogonal(shape,
    batch=k1 - k0, stream=stream + k0, ...)`` (DESIGN: sharding splits a stack by whole matrices).
    The Gaussian inputs follow the counter contract exactly; Q itself depends on the order of
    floating-point operations. On the CPU small matrices (up to 512 * 512 elements) are built by a
    kernel without BLAS, bit-identical for any chunking; larger ones by GEMMs whose rounding depends
    on BLAS's thread count. Each chunk is therefore computed with one BLAS thread per member (chunks of
    one worker process take turns, since the thread count is process-wide), the count
    ``warpinit.orthogonal`` uses per member when it spreads a stack over several threads: the chunks
    equal that single-machine stack bit for bit on the same machine type, whatever the workers'
    environment. Where the counts differ (a one-matrix call with a multi-threaded BLAS, another
    machine), the values agree within the orthogonality tolerance, as the contract says.

    Args:
        shape: sequence of at least two non-negative ints, the shape of one matrix (seen as
            prod(shape[:-1]) rows by shape[-1] columns, as in ``warpinit.orthogonal``).
        batch: positive int, the number of matrices.
        chunks: a scalar sets the batch axis alone and keeps every matrix whole: "auto" (as many whole
            matrices per chunk as fit dask's ``array.chunk-size``), a byte size such as "64MiB", or an
            int (matrices per chunk). Anything else is a chunk specification of the whole stack
            (batch, *shape) as dask accepts it (tuple, tuple of tuples, dict {axis: spec}; -1 or None
            for a whole axis), whose matrix axes must each be a single chunk.
        gain: finite real multiplier.
        dtype: "float16", "bfloat16", "float32" or "float64" (default float32).
        seed: int in [0, 2**64), or None to draw one now (see ``seed_of``).
        stream: int in [0, 2**32), with stream + batch <= 2**32.

    Returns:
        A ``dask.array.Array`` of shape (batch, *shape) and ``dtype`` with NumPy chunks.

    Raises:
        TypeError, ValueError: invalid arguments, with ``warpinit.orthogonal``'s messages; a missing
            or non-positive ``batch``; a ``chunks`` that splits a matrix (ValueError) or that dask
            cannot apply (dask's error type), with a message naming ``chunks``. Raised before any graph
            is built.
    """
    function = "orthogonal"
    if batch is None:
        raise TypeError(f"{function}: batch must be a positive int (the number of matrices), got None")
    shape, gain, dtype, seed, stream, members = _orthogonal.validate(function, shape, gain, dtype, seed, stream, batch)
    stack = (members, *shape)
    spec = (chunks, *([-1] * len(shape))) if isinstance(chunks, (numbers.Number, str)) else chunks
    blocks = _normalize(function, chunks, spec, stack, dtype)
    for axis, sizes in enumerate(blocks[1:], start=1):
        if len(sizes) > 1:
            raise ValueError(
                f"{function}: chunks must keep every matrix whole (split the stack along its batch axis "
                f"0 only), got chunks={chunks!r}, which splits axis {axis} of the stack of shape {stack} "
                f"into {sizes}; pass an int (matrices per chunk), \"auto\", or {{0: ...}}"
            )
    request = (shape, gain, dtype.name, seed, stream)
    return _array(function, blocks, dtype, seed, _orthogonal_block, request)


def seed_of(array) -> int:
    """The seed of an array built by this module (useful after ``seed=None``).

    Args:
        array: a ``dask.array.Array`` returned by a function of ``warpinit.dask`` (not an array derived
            from it: the seed is read from its name).

    Returns:
        The int seed: passing it back as ``seed=`` rebuilds the same array, and the single-machine
        function with that seed gives the same values.

    Raises:
        ValueError: ``array`` was not built by ``warpinit.dask``.
    """
    match = _NAME.fullmatch(str(getattr(array, "name", "")))
    if match is None:
        raise ValueError(
            f"seed_of: not an array built by warpinit.dask (its name is {getattr(array, 'name', None)!r}; "
            "an array derived from one has a name of its own)"
        )
    return int(match.group(2))


# Building the graph ---------------------------------------------------------------------------------


def _sample(function, shape, chunks, dtype, seed, stream, **parameters):
    """Validate as ``warpinit.<function>`` does (same checks, same order, nothing allocated), then
    lay out the chunks."""
    from warpinit.kernels import plan

    call = _sampling._prepare(function, shape, dtype, seed, stream, "cpu", None, None)
    values = tuple(_args.real(function, name, parameters[name]) for name in _PARAMETERS[function])
    getattr(plan, function)(*values, call.dtype)  # the distribution's own checks against the dtype
    shape = call.block.shape
    blocks = _normalize(function, chunks, chunks, shape, call.dtype)
    request = (function, shape, tuple(zip(_PARAMETERS[function], values)), call.dtype.name, call.seed, call.stream)
    return _array(function, blocks, call.dtype, call.seed, _sample_block, request)


def _normalize(function, chunks, spec, shape, dtype):
    """``spec`` as dask's tuple of tuples of chunk sizes for ``shape``; errors name ``chunks``."""
    try:
        return normalize_chunks(spec, shape, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"{function}: chunks={chunks!r} is not a chunk specification dask can apply to shape {shape}: {error}"
        ) from None


def _array(function, blocks, dtype, seed, block_function, request):
    """The Dask array of chunks ``blocks`` whose chunk at each location is ``block_function(request,
    block_info=...)``, named after the function, the seed and a token of everything that fixes it."""
    label = function.replace("_", "-")  # dask groups keys by their alphabetic words
    name = f"warpinit-{label}-{seed}-{tokenize(__version__, function, request, blocks)}"
    return da.map_blocks(
        block_function,
        dtype=dtype,
        meta=np.empty((0,) * len(blocks), dtype=dtype),
        name=name,
        chunks=blocks,
        request=request,
    )


# What runs on the workers -----------------------------------------------------------------------------


def _location(block_info):
    """The (start, stop) pairs of the chunk being computed, from dask's ``block_info``."""
    return block_info[None]["array-location"]


def _sample_block(request, block_info=None):
    """One chunk of a sampled tensor: the block of the whole tensor at the chunk's location."""
    import warpinit

    function, shape, parameters, dtype, seed, stream = request
    index = tuple(slice(start, stop) for start, stop in _location(block_info))
    return getattr(warpinit, function)(
        shape, **dict(parameters), dtype=dtype, seed=seed, stream=stream, device="cpu", index=index
    )


def _orthogonal_block(request, block_info=None):
    """One chunk of an orthogonal stack: members [k0, k1), drawn with streams stream + k0 ...."""
    import warpinit

    shape, gain, dtype, seed, stream = request
    first, last = _location(block_info)[0]
    if last == first:  # an explicit empty chunk of the batch axis
        return np.empty((0, *shape), dtype=_distributions.numpy_dtype(dtype))
    from threadpoolctl import threadpool_limits

    # One BLAS thread per member, whatever the worker's environment: the bits of large members depend
    # on BLAS's thread count, and this is the count warpinit.orthogonal(batch=B) uses per member when it
    # spreads a stack over threads. The lock keeps concurrent chunks of this process from undoing it.
    with _orthogonal.BLAS_LOCK, threadpool_limits(1, user_api="blas"):
        return warpinit.orthogonal(
            shape, batch=last - first, gain=gain, dtype=dtype, seed=seed, stream=stream + first, device="cpu"
        )
