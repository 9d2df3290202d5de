"""The framework-neutral sampling API: uniform, normal and truncated_normal.

Every function follows the counter contract of ``warpinit.kernels.philox``: the same (seed, stream,
shape, dtype, distribution) gives the same values on every run, for any thread count, on any device
(within the "same values" tolerance between CPU and GPU), and a block requested with ``index=`` equals
that block of the whole tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _args, _complex, _devices

_FLOAT32 = np.dtype(np.float32)


@dataclass(frozen=True)
class _Call:
    function: str
    dtype: np.dtype
    seed: int
    stream: int
    device: str
    block: object
    out: object


def _prepare(function, shape, dtype, seed, stream, device, index, out) -> _Call:
    """Validate the arguments common to every sampler (nothing is allocated or compiled)."""
    from warpinit.kernels import layout

    shape = _args.shape(function, shape)
    out = _args.out_array(function, out)
    dtype = _args.dtype(function, dtype, _args.out_default(function, out, _FLOAT32))
    seed = _args.seed(function, seed, index)
    stream = _args.stream(function, stream)
    device = _args.device(function, device)
    try:
        block = layout.whole(shape) if index is None else layout.select(shape, index)
    except (TypeError, ValueError, IndexError) as error:
        raise type(error)(f"{function}: {error}") from None
    return _Call(function, dtype, seed, stream, device, block, out)


def _run(call: _Call, plan):
    """Resolve the device, check memory and ``out``, allocate if needed and launch."""
    device = _devices.resolve(call.function, call.device)
    shape = call.block.out_shape
    if call.out is not None:
        result = _devices.check_out(call.function, device, call.out, shape, call.dtype)
    else:
        _devices.check_memory(call.function, device, call.block.size * call.dtype.itemsize)
        result = _devices.empty(device, shape, call.dtype)
    from warpinit.kernels.philox import key_table

    keys = key_table(call.seed, call.stream)
    if device == "cpu":
        from warpinit.kernels import fill_cpu

        fill_cpu.launch(result, call.block, plan, keys)
    else:
        from warpinit.kernels import fill_cuda

        fill_cuda.launch_cupy(result, call.block, plan, keys)
    return call.out if call.out is not None else result


def generate(plan, shape, keys, device, result):
    """Fill ``result`` (K, *shape) with K tensors of ``plan``'s distribution, member k drawn with row k
    of the key table ``keys`` (``philox.key_table``); arguments already validated."""
    from warpinit.kernels import layout

    block = layout.batch(len(keys), tuple(shape))
    if device == "cpu":
        from warpinit.kernels import fill_cpu

        fill_cpu.launch(result, block, plan, keys)
    else:
        from warpinit.kernels import fill_cuda

        fill_cuda.launch_cupy(result, block, plan, keys)


def generate_block(plan, shape, index, keys, device, result):
    """Fill ``result`` with the block ``index`` (NumPy basic index, step 1; validated) of one tensor of
    ``shape`` drawn with the single key row ``keys`` (1, 3): the block's values only, equal to the
    whole tensor's (the counter contract)."""
    from warpinit.kernels import layout

    block = layout.select(tuple(shape), index)
    if device == "cpu":
        from warpinit.kernels import fill_cpu

        fill_cpu.launch(result, block, plan, keys)
    else:
        from warpinit.kernels import fill_cuda

        fill_cuda.launch_cupy(result, block, plan, keys)


def uniform(shape, *, minval=0.0, maxval=1.0, dtype=None, seed=None, stream=0, device="auto", index=None, out=None):
    """Uniform values on [minval, maxval).

    Args:
        shape: int or sequence of ints, the shape of the whole tensor.
        minval, maxval: finite reals, minval < maxval. Values stay below ``maxval`` after rounding to
            ``dtype`` (a value that would round onto it is redrawn).
        dtype: "float16", "bfloat16", "float32" or "float64" (or a NumPy/ml_dtypes dtype). Default:
            float32, or ``out``'s dtype when ``out`` is given.
        seed: int in [0, 2**64), or None for fresh OS entropy.
        stream: int in [0, 2**32): an independent stream under the same seed.
        device: "auto" (CUDA when a GPU is usable, else CPU), "cpu" or "cuda".
        index: NumPy basic index with step 1 (ints, slices, Ellipsis) selecting a block of the tensor:
            only that block is generated, and it equals the same block of the whole tensor. Needs a seed.
        out: C-contiguous writable array of the block's shape and ``dtype`` to fill instead of allocating
            (NumPy on the CPU; CuPy, ``__cuda_array_interface__`` or DLPack on the GPU).

    Returns:
        A NumPy array (CPU) or CuPy array (CUDA) of the block's shape (``shape`` without ``index``), or
        ``out``.

    Raises:
        TypeError, ValueError: invalid arguments, naming the parameter (before any allocation); a
            complex ``dtype`` is a ValueError (``normal`` alone draws complex values).
        RuntimeError: device="cuda" without a usable GPU; elements that find no value within the
            bounds (an interval no candidate rounds into): raised at the call on the CPU, and on the
            GPU by the next GPU call or ``warpinit.check_gpu_failures()`` (no synchronisation).
        MemoryError: the result does not fit in the device's memory.

    Counter contract: element i (C-order flat index in the whole tensor) reads Philox word i mod 4 of
    counter (i // 4, stream, attempt) under key = seed for float32 and 16-bit outputs, words
    (2 (i mod 2), 2 (i mod 2) + 1) of counter (i // 2, ...) for float64; see ``warpinit.kernels.philox``.
    An interval whose width float32 cannot resolve at minval (or float64 at its spacing) uses the fine
    uniform of ``warpinit.kernels.samplers`` (two words per element); a ``maxval`` beyond the dtype's
    range draws over the part that rounds to finite values; an interval holding a single value gives it.
    """
    from warpinit.kernels import plan

    _complex.refuse("uniform", dtype, out)
    call = _prepare("uniform", shape, dtype, seed, stream, device, index, out)
    low = _args.real("uniform", "minval", minval)
    high = _args.real("uniform", "maxval", maxval)
    return _run(call, plan.uniform(low, high, call.dtype))


def normal(shape, *, mean=0.0, stddev=1.0, dtype=None, seed=None, stream=0, device="auto", index=None, out=None):
    """Normal values with the given mean and standard deviation (Box-Muller).

    Args:
        mean: finite real, representable in ``dtype`` (complex dtypes: a real or complex number).
        stddev: finite real > 0 that does not round to 0 or overflow in ``dtype``.
        dtype: as in ``uniform``, or "complex64" / "complex128" for the circularly symmetric complex
            normal: each of the real and imaginary parts N(0, stddev**2 / 2), so that E|z - mean|^2 =
            stddev**2 (as JAX and PyTorch define it).
        Other arguments as in ``uniform``.

    Returns, Raises: as in ``uniform``.

    Counter contract: elements 2k and 2k+1 of a group share a Box-Muller pair (cosine and sine); see
    ``warpinit.kernels.samplers`` for the words each element reads. A complex tensor of shape S is the
    real tensor ``normal((*S, 2), stddev=stddev / sqrt(2), dtype=<float32 or float64>)``, element i's
    real part at real flat index 2i and imaginary part at 2i + 1, with a non-zero ``mean`` added
    afterwards in the output precision (see ``warpinit._complex``).
    """
    from warpinit.kernels import plan

    if _complex.requested(dtype, out):
        return _complex.normal(shape, mean=mean, stddev=stddev, dtype=dtype, seed=seed, stream=stream, device=device,
                               index=index, out=out)
    call = _prepare("normal", shape, dtype, seed, stream, device, index, out)
    loc = _args.real("normal", "mean", mean)
    scale = _args.real("normal", "stddev", stddev)
    return _run(call, plan.normal(loc, scale, call.dtype))


def truncated_normal(
    shape, *, mean=0.0, stddev=1.0, lower=-2.0, upper=2.0, dtype=None, seed=None, stream=0, device="auto",
    index=None, out=None,
):
    """Normal values conditioned on [mean + lower*stddev, mean + upper*stddev], by rejection.

    A candidate outside the bounds is redrawn with the next attempt of the counter contract; nothing is
    clamped. Intervals where a normal proposal accepts poorly (tails, narrow intervals) use Robert's
    exact exponential or uniform proposals, so every interval finishes in bounded expected time. The
    bounds hold after rounding to ``dtype``: the values follow the law of the normal rounded to
    ``dtype`` and conditioned on the bounds, edge values included. Requests whose law is narrower than
    the float arithmetic of ``mean + stddev * z`` resolves (a mean float32 cannot hold with a tiny
    stddev, far tails, narrow float32 intervals) are drawn by the fine methods of
    ``warpinit.kernels.samplers``, which round each candidate to ``dtype`` exactly; an interval holding a
    single value of ``dtype`` gives that value (``warpinit.kernels.plan`` decides).

    Args:
        lower, upper: bounds in standard deviations around ``mean`` (TensorFlow/Keras convention,
            default +-2); either may be infinite; lower < upper, and at least one value of ``dtype``
            must lie between them.
        Other arguments as in ``normal``.

    Returns, Raises: as in ``uniform``.
    """
    from warpinit.kernels import plan

    _complex.refuse("truncated_normal", dtype, out)
    call = _prepare("truncated_normal", shape, dtype, seed, stream, device, index, out)
    loc = _args.real("truncated_normal", "mean", mean)
    scale = _args.real("truncated_normal", "stddev", stddev)
    low = _args.real("truncated_normal", "lower", lower)
    high = _args.real("truncated_normal", "upper", upper)
    return _run(call, plan.truncated_normal(loc, scale, low, high, call.dtype))
