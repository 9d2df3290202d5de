"""Complex values on warpinit's real kernels: a complex tensor is drawn as a real tensor of pairs.

A complex64 (complex128) tensor of shape S is the float32 (float64) tensor of shape (*S, 2) that
NumPy's memory layout makes of it: the real part of element i is real element 2i, its imaginary part
real element 2i + 1. Every complex value therefore comes from the real samplers under the counter
contract of ``warpinit.kernels.philox`` (``warpinit.kernels.samplers`` says which Philox words feed
which part), and a block of a complex tensor (``index=``, a shard) equals the same block of the whole
tensor, exactly as for real tensors.

The complex distributions, as JAX and PyTorch define them:

- normal(mean, stddev): the circularly symmetric complex normal ``mean + stddev * (X + iY) /
  sqrt(2)`` with X, Y independent standard normals: each part has variance ``stddev**2 / 2`` and
  ``E|z - mean|^2 = stddev**2``. The pairs are the real ``normal((*S, 2), stddev=stddev / sqrt(2))``
  (so an element's real and imaginary parts are the cosine and sine branches of one Box-Muller
  pair); a non-zero ``mean`` is then added in the output precision.
- disk(radius): uniform on the disk ``|z| < radius``: ``z = radius * sqrt(u1) * exp(2 pi i u2)``.
- complex_truncated_normal(stddev, upper): the complex normal of ``stddev`` conditioned on
  ``|z| <= upper * stddev``, by inversion of its modulus: ``|z|**2 / stddev**2 = -log(1 - (1 -
  exp(-upper**2)) * u1)``, angle ``2 pi u2`` (JAX's construction).
- orthogonal: a Haar-distributed unitary (semi-unitary) matrix (see ``orthogonal``).

For the disk and the truncated normal, (u1, u2) is the pair of ``uniform((*S, 2))`` in [0, 1) in the
output's real precision; the transform is computed in float64 and rounded to the output, so the
bound on ``|z|`` holds up to that rounding.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _args, _devices

COMPLEX64 = np.dtype(np.complex64)
COMPLEX128 = np.dtype(np.complex128)
# Each complex dtype and the real dtype of its parts.
DTYPES = {COMPLEX64: np.dtype(np.float32), COMPLEX128: np.dtype(np.float64)}
_FLOAT64 = np.dtype(np.float64)
_TRANSFORM_CHUNK = 1 << 18  # complex elements transformed at once (bounded float64 temporaries)


# Dtypes ---------------------------------------------------------------------------------------------


def dtype_of(value):
    """The complex NumPy dtype ``value`` names (a name, NumPy dtype or scalar type), or None when it
    names no complex dtype."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return None
    try:
        resolved = np.dtype(getattr(value, "as_numpy_dtype", value))
    except (TypeError, ValueError):
        return None
    return resolved if resolved.kind == "c" else None


def requested(dtype, out=None) -> bool:
    """Whether a call asks for complex values: a complex ``dtype``, or none and a complex ``out``."""
    if dtype is None:
        return out is not None and dtype_of(getattr(out, "dtype", None)) is not None
    return dtype_of(dtype) is not None


def resolve(function: str, dtype, out=None) -> np.dtype:
    """complex64 or complex128 from ``dtype`` (or ``out``'s dtype when ``dtype`` is None)."""
    value = dtype if dtype is not None else out.dtype
    resolved = dtype_of(value)
    if resolved not in DTYPES:
        raise TypeError(f"{function}: complex dtypes are complex64 and complex128, got {value!r}")
    return resolved


def refuse(function: str, dtype, out=None) -> None:
    """ValueError naming ``dtype`` when a sampler without a complex form is asked for complex values."""
    if requested(dtype, out):
        if dtype is None:  # the complex values would come from out: out is what is wrong
            raise TypeError(
                f"{function}: out must have dtype float16, bfloat16, float32, float64 in native byte order, got "
                f"{out.dtype} ({function} draws real values only; complex values come from normal and orthogonal)"
            )
        value = dtype
        raise ValueError(
            f"{function}: dtype={value!r} is complex, and {function} draws real values only (float16, "
            "bfloat16, float32, float64); complex values come from normal (the circularly symmetric "
            "complex normal) and orthogonal (Haar unitary matrices)"
        )


def pairs(array):
    """The real (..., 2) view of a C-contiguous complex array (NumPy or CuPy): [..., 0] holds the real
    parts, [..., 1] the imaginary parts."""
    real = DTYPES[np.dtype(array.dtype)]
    return array.reshape(-1).view(real).reshape(*array.shape, 2)


def number(function: str, name: str, value) -> complex:
    """A finite real or complex number (not bool) as a Python complex."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Complex):
        raise TypeError(f"{function}: {name} must be a real or complex number, got {type(value).__name__}: {value!r}")
    value = complex(value)
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise ValueError(f"{function}: {name} must be finite, got {value!r}")
    return value


# Plans ------------------------------------------------------------------------------------------------


def _parts_plan(function: str, mean: complex, stddev: float, dtype: np.dtype):
    """The real plan of the parts of ``normal(mean, stddev)`` in ``dtype``, after the real checks of
    ``mean``'s parts and ``stddev`` (errors name ``function`` and the values as given)."""
    from warpinit.kernels import plan

    real = DTYPES[dtype]
    for part, name in ((mean.real, "mean"), (mean.imag, "the imaginary part of mean")):
        try:
            plan.normal(part, stddev, real)
        except ValueError as error:
            message = str(error).removeprefix("normal: ").replace("mean=", f"{name}=" if part else "mean=", 1)
            raise ValueError(f"{function}: {message} (each part of a {dtype.name} value is {real.name})") from None
    return plan.normal(0.0, stddev * math.sqrt(0.5), real)


def check(distribution, dtype: np.dtype) -> None:
    """ValueError when the complex ``dtype`` cannot hold ``distribution`` (a kind of COMPLEX_KINDS)."""
    kind, params = distribution
    real = DTYPES[dtype]
    if kind == "normal":
        _parts_plan("normal", complex(params[0]), params[1], dtype)
    elif kind in ("orthogonal", "constant"):
        if not math.isfinite(params[0]):
            raise ValueError(f"{kind}: {'gain' if kind == 'orthogonal' else 'value'} must be finite, got {params[0]!r}")
    else:
        scale = params[0]
        if not (math.isfinite(scale) and scale > 0.0):
            raise ValueError(f"{kind}: {'radius' if kind == 'disk' else 'stddev'} must be finite and > 0, got {scale!r}")
        if kind == "complex_truncated_normal" and not params[1] > 0.0:
            raise ValueError(f"{kind}: upper must be > 0, got {params[1]!r}")
        bound = scale * (1.0 if kind == "disk" else min(params[1], 40.0))
        with np.errstate(over="ignore"):
            rounded = float(np.array(bound, np.float64).astype(real))
        if not math.isfinite(rounded):
            raise ValueError(f"{kind}: values up to {bound!r} overflow {real.name}")


# Drawing -------------------------------------------------------------------------------------------


def generate(distribution, shape, dtype, keys, device, result) -> None:
    """``result`` (K, *shape) of the complex ``dtype``: member k drawn with row k of ``keys``."""
    kind, params = distribution
    if kind == "orthogonal":
        orthogonal(tuple(shape), params[0], dtype, keys, device, result)
        return
    from warpinit import _sampling

    _sampling.generate(_real_plan(distribution, dtype), (*shape, 2), keys, device, pairs(result))
    _finish(distribution, pairs(result))


def generate_block(distribution, shape, dtype, index, keys, device, result) -> None:
    """``result``: the block ``index`` (validated basic index, step 1) of the complex tensor of
    ``shape`` drawn with the single key row ``keys`` (not "orthogonal": it has no cheaper block)."""
    from warpinit import _sampling

    _sampling.generate_block(_real_plan(distribution, dtype), (*shape, 2), pair_index(index), keys, device,
                             pairs(result))
    _finish(distribution, pairs(result))


def pair_index(index) -> tuple:
    """The index of the pairs of a complex block: ``index`` (validated against the complex shape)
    with the pair axis taken whole."""
    if index is None:
        return (Ellipsis, slice(None))
    return (*(index if isinstance(index, tuple) else (index,)), slice(None))


def _real_plan(distribution, dtype):
    from warpinit.kernels import plan

    kind, params = distribution
    if kind == "normal":
        return _parts_plan("normal", complex(params[0]), params[1], dtype)
    return plan.uniform(0.0, 1.0, DTYPES[dtype])  # disk, complex_truncated_normal


def _finish(distribution, values) -> None:
    """Turn the drawn pairs into the distribution's values, in place."""
    kind, params = distribution
    if kind == "normal":
        add_mean(values, complex(params[0]))
        return
    flat = values.reshape(-1, 2)
    xp = np if isinstance(flat, np.ndarray) else _cupy()
    if kind == "disk":
        scale, cut = params[0], None
    else:
        scale, cut = params[0], -math.expm1(-params[1] ** 2) if math.isfinite(params[1]) else 1.0
    for first in range(0, flat.shape[0], _TRANSFORM_CHUNK):
        chunk = flat[first: first + _TRANSFORM_CHUNK]
        u = chunk.astype(_FLOAT64)
        if cut is None:
            radius = scale * xp.sqrt(u[:, 0])
        else:
            radius = scale * xp.sqrt(-xp.log1p(-cut * u[:, 0]))
        angle = (2.0 * math.pi) * u[:, 1]
        chunk[:, 0] = radius * xp.cos(angle)
        chunk[:, 1] = radius * xp.sin(angle)


def add_mean(values, mean: complex) -> None:
    """Add a complex ``mean`` to pairs ``values`` (..., 2) in their precision (nothing for 0)."""
    real = values.dtype.type
    if mean.real:
        values[..., 0] += real(mean.real)
    if mean.imag:
        values[..., 1] += real(mean.imag)


def _cupy():
    import cupy

    return cupy


# The array API's complex normal -----------------------------------------------------------------------


def normal(shape, *, mean, stddev, dtype, seed, stream, device, index, out):
    """``warpinit.normal`` for a complex dtype (see its docstring): argument checks in the real
    path's order, then the pairs drawn by the real kernels."""
    from warpinit import _sampling
    from warpinit.kernels import layout
    from warpinit.kernels.philox import key_table

    function = "normal"
    shape = _args.shape(function, shape)
    dtype = resolve(function, dtype, out)
    seed = _args.seed(function, seed, index)
    stream = _args.stream(function, stream)
    device = _args.device(function, device)
    try:
        block = layout.whole(shape) if index is None else layout.select(shape, index)
    except (TypeError, ValueError, IndexError) as error:
        raise type(error)(f"{function}: {error}") from None
    mean = number(function, "mean", mean)
    stddev = _args.real(function, "stddev", stddev)
    parts = _parts_plan(function, mean, stddev, dtype)
    device = _devices.resolve(function, device)
    if out is not None:
        result = _devices.check_out(function, device, out, block.out_shape, dtype)
    else:
        _devices.check_memory(function, device, block.size * dtype.itemsize)
        result = _devices.empty(device, block.out_shape, dtype)
    values = pairs(result)
    _sampling.generate_block(parts, (*shape, 2), pair_index(index), key_table(seed, stream), device, values)
    add_mean(values, mean)
    return out if out is not None else result


# Unitary matrices ------------------------------------------------------------------------------------


def orthogonal(shape, gain, dtype, keys, device, result) -> None:
    """Fill ``result`` (K, *shape) of a complex ``dtype`` with K Haar (semi-)unitary matrices.

    The matrix is (rows, cols) = (prod(shape[:-1]), shape[-1]). Member k: G = ``normal((max(rows,
    cols), min(rows, cols)), dtype=dtype)`` drawn with row k of ``keys`` (complex Gaussians, each part
    of variance 1/2), Householder QR G = QR in complex128 (LAPACK on the CPU, cuSOLVER on the GPU),
    Q's columns multiplied by the phases ``d / |d|`` of R's diagonal (Mezzadri 2007: this makes Q Haar
    on the unitary group, whatever the QR's own phase convention), transposed when rows < cols, times
    ``gain``, rounded to ``dtype``. The columns (rows < cols: the rows) are orthonormal under the
    Hermitian inner product. Q is deterministic for a given machine, device and BLAS thread count.
    """
    from warpinit import _orthogonal, _sampling

    rows, cols = math.prod(shape[:-1]), shape[-1]
    big, small = max(rows, cols), min(rows, cols)
    count = len(keys)
    if rows * cols == 0 or count == 0:
        return
    gaussians = _devices.empty(device, (count, big, small), dtype)
    _sampling.generate(_parts_plan("orthogonal", 0j, 1.0, dtype), (big, small, 2), keys, device, pairs(gaussians))
    target = result.reshape(count, rows, cols)
    if device == "cpu":
        with _orthogonal.BLAS_LOCK:
            q, r = np.linalg.qr(gaussians.astype(COMPLEX128))
        q = _phase_fixed(np, q, r)
    else:
        cupy = _cupy()
        q = cupy.empty((count, big, small), COMPLEX128)
        for member in range(count):
            factor, r = cupy.linalg.qr(gaussians[member].astype(COMPLEX128))
            q[member] = _phase_fixed(cupy, factor[None], r[None])[0]
    if rows < cols:
        q = q.swapaxes(1, 2)
    target[...] = q * gain


def _phase_fixed(xp, q, r):
    """Q times the phases of R's diagonal, column by column (a zero diagonal entry keeps phase 1)."""
    d = xp.diagonal(r, axis1=-2, axis2=-1)
    magnitude = xp.abs(d)
    phase = xp.where(magnitude > 0, d / xp.where(magnitude > 0, magnitude, 1.0), 1.0)
    return q * phase[:, None, :]
