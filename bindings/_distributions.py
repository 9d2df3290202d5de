"""The distributions every framework face draws, and the fans they are scaled by: one vocabulary.

A ``Distribution`` is a ``(kind, params)`` pair with canonical parameters:

- ``("uniform", (minval, maxval))``: values in [minval, maxval)
- ``("normal", (mean, stddev))``
- ``("truncated_normal", (mean, stddev, lower, upper))``: bounds in standard deviations around the
  mean (Keras, TensorFlow and JAX use +-2)
- ``("orthogonal", (gain,))``: a Haar (semi-)orthogonal matrix (Keras's flattening: rows =
  prod(shape[:-1]); a face with another flattening passes the generation shape it wants)
- ``("constant", (value,))``: every value equal (a zero standard deviation, zeros, ones)
- ``("sparse", (sparsity, stddev))``: 2-D (rows, cols) matrices of N(0, stddev**2) values with
  ``ceil(sparsity * rows)`` zeros in each column, at rows chosen uniformly at random (Martens 2010,
  PyTorch's ``sparse_``); see ``sparse`` for the words that choose them
- ``("disk", (radius,))``: complex values uniform on the disk ``|z| < radius`` (complex dtypes only)
- ``("complex_truncated_normal", (stddev, upper))``: the complex normal of ``stddev`` conditioned on
  ``|z| <= upper * stddev`` (complex dtypes only)

For a complex dtype (complex64, complex128) "normal" is the circularly symmetric complex normal, each
of the real and imaginary parts with variance ``stddev**2 / 2``, "orthogonal" a Haar unitary matrix
and "constant" the real ``value``; ``warpinit._complex`` draws them as pairs of real values.

The Keras, PyTorch and JAX faces translate their initializers into these pairs (variance scaling
through ``variance_scaling``, fans through ``fans``), the whole-model engine groups by them, and
``generate`` draws K tensors of one distribution at once. ``generate_part`` draws the ``Part`` of a
tensor that one process of a distributed program holds (a shard), ``generate_block`` one block.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numpy as np

from . import _args, _devices

# Standard deviation of a standard normal truncated to [-2, 2]; variance scaling divides by it so the
# truncated distribution keeps the intended variance (the constant Keras, TensorFlow and JAX use).
TRUNCATION_CORRECTION = 0.87962566103423978
# JAX's constant for the complex normal whose modulus is truncated at 2 standard deviations:
# sqrt(1 - 5 exp(-4)), the root of E|z|^2 restricted to |z| <= 2 (not divided by P(|z| <= 2)).
COMPLEX_TRUNCATION_CORRECTION = 0.95311164380491208
# The tag of the derived seed whose uniforms choose the zeros of a "sparse" matrix ("SPARSE__").
SPARSE_TAG = 0x5350_4152_5345_5F5F

KINDS = ("uniform", "normal", "truncated_normal", "orthogonal", "constant", "sparse", "disk",
         "complex_truncated_normal")
# The kinds a complex dtype can take.
COMPLEX_KINDS = ("normal", "orthogonal", "constant", "disk", "complex_truncated_normal")
MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "normal", "uniform")


class Distribution(NamedTuple):
    """One distribution of the vocabulary: ``kind`` (one of ``KINDS``) and its canonical ``params``."""

    kind: str
    params: tuple

    @property
    def random(self) -> bool:
        """Whether drawing it consumes random numbers (everything but constants)."""
        return self.kind != "constant"


def uniform(minval: float, maxval: float) -> Distribution:
    return Distribution("uniform", (float(minval), float(maxval)))


def normal(mean: float, stddev: float) -> Distribution:
    """N(mean, stddev**2); a zero ``stddev`` is the constant ``mean``."""
    if stddev == 0.0:
        return constant(mean)
    return Distribution("normal", (float(mean), abs(float(stddev))))


def truncated_normal(mean: float, stddev: float, lower: float = -2.0, upper: float = 2.0) -> Distribution:
    """N(mean, stddev**2) conditioned on [mean + lower * stddev, mean + upper * stddev]; a zero
    ``stddev`` is the constant ``mean``."""
    if stddev == 0.0:
        return constant(mean)
    return Distribution("truncated_normal", (float(mean), abs(float(stddev)), float(lower), float(upper)))


def orthogonal(gain: float) -> Distribution:
    return Distribution("orthogonal", (float(gain),))


def constant(value: float) -> Distribution:
    return Distribution("constant", (float(value),))


def sparse(sparsity: float, stddev: float) -> Distribution:
    """Martens' sparse matrices: N(0, stddev**2) with ``ceil(sparsity * rows)`` zeros per column.

    Drawn with the key row (seed, stream): the values are those of ``normal(0, stddev)`` with the same
    key; the zeros of column j sit at the ``ceil(sparsity * rows)`` rows whose entries of column j of
    ``warpinit.uniform((rows, cols), dtype="float64", seed=derive_seed(seed, SPARSE_TAG),
    stream=stream)`` are the smallest (ties, which need two equal 53-bit uniforms, go to the lower
    row). A zero ``stddev`` is the constant 0.
    """
    if stddev == 0.0:
        return constant(0.0)
    return Distribution("sparse", (float(sparsity), abs(float(stddev))))


def disk(radius: float) -> Distribution:
    """Complex values uniform on the disk ``|z| < radius`` (variance ``radius**2 / 2``); a zero radius
    is the constant 0."""
    if radius == 0.0:
        return constant(0.0)
    return Distribution("disk", (abs(float(radius)),))


def complex_truncated_normal(stddev: float, upper: float = 2.0) -> Distribution:
    """The complex normal of ``stddev`` (E|z|^2 = stddev**2 before truncation) conditioned on
    ``|z| <= upper * stddev``; a zero ``stddev`` is the constant 0."""
    if stddev == 0.0:
        return constant(0.0)
    return Distribution("complex_truncated_normal", (abs(float(stddev)), float(upper)))


def fans(shape, in_axis=-2, out_axis=-1, batch_axis=()) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight ``shape`` of rank >= 2 (each face handles lower ranks its way).

    The input and output sizes are the products of the ``in_axis`` and ``out_axis`` dimensions (an
    int or a sequence of ints each); the receptive field, the product of the dimensions in none of
    ``in_axis``, ``out_axis`` and ``batch_axis``, multiplies both. Keras (in_axis=-2, out_axis=-1),
    PyTorch (in_axis=1, out_axis=0) and JAX (its own arguments) are all this formula; Keras's
    explicit EinsumDense axes pass every other axis as ``batch_axis``. When an axis is listed more
    than once (JAX accepts ``in_axis=0, out_axis=0``), the receptive field is JAX's quotient
    ``prod(shape) / in_size / out_size / batch_size``, which then counts that axis out once per
    listing.

    Raises:
        ValueError: an axis outside ``[-len(shape), len(shape))``.
    """
    shape = tuple(shape)

    def listed(name, value):
        entries = [value] if isinstance(value, int) else list(value)
        for axis in entries:
            if not -len(shape) <= axis < len(shape):
                raise ValueError(f"fans: {name}={value!r} is out of range for shape={shape}")
        return [axis % len(shape) for axis in entries]

    inputs, outputs = listed("in_axis", in_axis), listed("out_axis", out_axis)
    batch = listed("batch_axis", batch_axis)
    in_size = math.prod(shape[axis] for axis in inputs)
    out_size = math.prod(shape[axis] for axis in outputs)
    listings = inputs + outputs + batch
    if len(set(listings)) == len(listings):  # disjoint axes: the product of the other dimensions
        receptive = math.prod(n for axis, n in enumerate(shape) if axis not in listings)
    else:
        receptive = math.prod(shape) / in_size / out_size / math.prod(shape[axis] for axis in batch)
    return float(in_size * receptive), float(out_size * receptive)


def variance_scaling(scale: float, mode: str, distribution: str, fan_in: float, fan_out: float,
                     floor=1.0, complex_values: bool = False) -> Distribution:
    """Variance scaling: values with variance ``scale / fan``.

    ``mode`` picks fan = fan_in, fan_out, their mean ("fan_avg") or their geometric mean
    ("fan_geo_avg"), floored at ``floor`` (Keras floors at 1; None: no floor, as JAX);
    ``distribution`` is "truncated_normal" (bounds +-2 sigma, sigma corrected by
    ``TRUNCATION_CORRECTION``), "untruncated_normal" or "normal" (the same), or "uniform"
    (+-sqrt(3 scale / fan)). With ``complex_values`` (JAX's forms for complex dtypes, E|z|^2 =
    scale / fan): the complex normal, the complex normal truncated at modulus 2 sigma (sigma corrected
    by ``COMPLEX_TRUNCATION_CORRECTION``), and the disk of radius sqrt(2 scale / fan). Arguments are
    assumed valid; each face validates them with its framework's own errors first.
    """
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_geo_avg": math.sqrt(fan_in * fan_out)}.get(
        mode, (fan_in + fan_out) / 2.0
    )
    fan = float(fan) if floor is None else max(float(floor), float(fan))
    variance = float(scale) / fan
    if complex_values:
        if distribution == "truncated_normal":
            return complex_truncated_normal(math.sqrt(variance) / COMPLEX_TRUNCATION_CORRECTION, 2.0)
        if distribution in ("untruncated_normal", "normal"):
            return normal(0.0, math.sqrt(variance))
        return disk(math.sqrt(2.0 * variance))
    if distribution == "truncated_normal":
        return truncated_normal(0.0, math.sqrt(variance) / TRUNCATION_CORRECTION)
    if distribution in ("untruncated_normal", "normal"):
        return normal(0.0, math.sqrt(variance))
    limit = math.sqrt(3.0 * variance)
    return uniform(-limit, limit)


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype (ml_dtypes for bfloat16) of a float or complex (complex64, complex128) dtype
    name or type."""
    from . import _complex

    resolved = _complex.dtype_of(dtype)
    if resolved is not None:
        return _complex.resolve("warpinit", resolved)
    return _args.dtype("warpinit", dtype, None)


def plan_of(distribution, dtype: np.dtype):
    """The kernel plan of a sampling distribution (not "orthogonal" or "constant"); ValueError when
    ``dtype`` cannot hold it (bounds or scales not representable, no value in the interval)."""
    from warpinit.kernels import plan

    kind, params = distribution
    if kind == "uniform":
        return plan.uniform(*params, dtype)
    if kind == "normal":
        return plan.normal(*params, dtype)
    if kind == "truncated_normal":
        bounds = tuple(params[2:]) or (-2.0, 2.0)
        return plan.truncated_normal(params[0], params[1], *bounds, dtype)
    raise ValueError(f"plan_of: no sampling plan for the distribution kind {kind!r}")


def check(distribution, dtype) -> None:
    """Raise ValueError when ``dtype`` cannot hold ``distribution`` (run before anything is drawn)."""
    from warpinit.kernels import plan

    dtype = numpy_dtype(dtype)
    kind, params = distribution
    if kind not in KINDS:
        raise ValueError(f"unknown distribution kind {kind!r}; expected one of {KINDS}")
    if dtype.kind == "c":
        from . import _complex

        if kind not in COMPLEX_KINDS:
            raise ValueError(f"{kind}: dtype {dtype.name} is complex; {kind} draws real values only")
        _complex.check(distribution, dtype)
    elif kind in ("disk", "complex_truncated_normal"):
        raise ValueError(f"{kind}: draws complex values; dtype must be complex64 or complex128, got {dtype.name}")
    elif kind in ("uniform", "normal", "truncated_normal"):
        plan_of(distribution, dtype)
    elif kind == "sparse":
        plan.normal(0.0, params[1], dtype)
    elif not math.isfinite(params[0]):
        raise ValueError(f"{kind}: {'gain' if kind == 'orthogonal' else 'value'} must be finite, got {params[0]!r}")


class Part(NamedTuple):
    """The part of a tensor that one process holds (the shard of a distributed tensor).

    ``shape`` is the whole tensor's shape; ``runs`` gives, for each of its axes, the (start, stop)
    ranges of indices, in increasing order, whose concatenation is that axis of the part: one range
    per axis for a block, several for strided shards. The part is the tensor indexed by those
    indices on every axis (an outer product), in C order.
    """

    shape: tuple
    runs: tuple

    @classmethod
    def block(cls, shape, ranges) -> "Part":
        """The block ``ranges`` ((start, stop) per axis) of a tensor of ``shape``."""
        return cls(tuple(shape), tuple(((int(start), int(stop)),) for start, stop in ranges))

    @property
    def out_shape(self) -> tuple:
        """The part's own shape."""
        return tuple(sum(stop - start for start, stop in axis) for axis in self.runs)

    @property
    def size(self) -> int:
        return math.prod(self.out_shape)

    def pieces(self):
        """The blocks the runs make: (index in the part, index in the whole tensor), each a tuple
        of slices, together covering the part once."""
        axes = []
        for axis in self.runs:
            here, entries = 0, []
            for start, stop in axis:
                entries.append((slice(here, here + stop - start), slice(start, stop)))
                here += stop - start
            axes.append(entries)
        for combination in itertools.product(*axes):
            yield tuple(local for local, _ in combination), tuple(whole for _, whole in combination)


def workspace_bytes(distribution, shape, dtype, count: int, part: Part | None = None) -> int:
    """Bytes that drawing ``count`` tensors of ``shape`` takes at its peak, results included (with
    ``part``: that part of one tensor, an orthogonal matrix still built whole)."""
    dtype = numpy_dtype(dtype)
    if part is not None:
        own = part.size * dtype.itemsize
        if distribution[0] == "orthogonal":
            return own + workspace_bytes(distribution, shape, dtype, 1)
        return own if all(len(axis) == 1 for axis in part.runs) else 2 * own  # pieces through a buffer
    if distribution[0] == "orthogonal":
        from . import _orthogonal

        return _orthogonal.workspace_bytes(tuple(shape), dtype, count) if math.prod(shape) else 0
    size = count * math.prod(shape)
    if distribution[0] == "sparse":  # the float64 uniforms and two int64 orderings that place the zeros
        return size * (dtype.itemsize + 24)
    return size * dtype.itemsize


def generate(distribution, shape, dtype, keys, device: str, result=None):
    """K tensors of ``distribution``: ``result[k]`` (shape ``shape``) drawn with row k of the key
    table ``keys`` (``warpinit.kernels.philox.key_table``, uint64 (K, 3)).

    ``dtype`` is a float or complex dtype name or type, ``device`` "cpu" or "cuda" (already
    resolved), ``result`` a C-contiguous (K, *shape) array of that dtype on that device, allocated
    when None. Returns ``result``.
    """
    from warpinit import _orthogonal, _sampling

    kind, params = distribution
    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    if result is None:
        result = _devices.empty(device, (len(keys), *shape), dtype)
    if kind == "constant":
        result[...] = params[0]
    elif dtype.kind == "c":
        from . import _complex

        _complex.generate(distribution, shape, dtype, keys, device, result)
    elif kind == "orthogonal":
        _orthogonal.generate(shape, params[0], dtype, keys, device, result)
    elif kind == "sparse":
        _generate_sparse(params, shape, dtype, keys, device, result)
    else:
        _sampling.generate(plan_of(distribution, dtype), shape, keys, device, result)
    return result


def generate_part(distribution, shape, dtype, keys, device: str, part: Part, result=None):
    """``part`` of one tensor of ``distribution``: of ``generate(distribution, shape, dtype, keys,
    device)[0].reshape(part.shape)`` (``keys`` one row of a key table; ``part.shape`` has ``shape``'s
    C-order flattening, e.g. a weight's shape beside the (rows, cols) matrix an orthogonal draw sees).

    The real samplers draw only the part's values, equal to the whole tensor's by the counter
    contract (a sampler's values depend on the flat index alone), so every process of a distributed
    program pays for its own shard only. Orthogonal and sparse matrices, and complex values, are
    built whole and sliced (they have no cheaper part). ``result`` is a C-contiguous array of
    ``part.out_shape`` on ``device`` (allocated when None). Returns ``result``.
    """
    from warpinit import _sampling

    kind, params = distribution
    dtype = numpy_dtype(dtype)
    if result is None:
        result = _devices.empty(device, part.out_shape, dtype)
    if part.size == 0:
        return result
    if kind == "constant":
        result[...] = params[0]
    elif kind in ("orthogonal", "sparse") or dtype.kind == "c" or kind not in ("uniform", "normal",
                                                                              "truncated_normal"):
        whole = generate(distribution, shape, dtype, keys, device)[0].reshape(part.shape)
        for here, there in part.pieces():
            result[here] = whole[there]
    else:
        plan = plan_of(distribution, dtype)
        for here, there in part.pieces():
            target = result[here]
            if target.flags.c_contiguous:
                _sampling.generate_block(plan, part.shape, there, keys, device, target)
            else:  # a piece along an inner axis of a strided part
                values = _devices.empty(device, target.shape, dtype)
                _sampling.generate_block(plan, part.shape, there, keys, device, values)
                target[...] = values
    return result


def generate_block(distribution, shape, dtype, seed: int, ranges, device: str, cache=None, out=None):
    """The block ``ranges`` ((start, stop) per axis) of ``generate(distribution, shape, dtype,
    key_table(seed, 0), device)[0]``, as a new C-contiguous array on ``device`` (or written into
    ``out``, a C-contiguous array of the block's shape and dtype there, and returned).

    The samplers draw only the block's values (the counter contract makes them equal to the whole
    tensor's), so the devices of a mesh each pay for their own shard only. An orthogonal or sparse
    matrix is built whole (it has no cheaper block) and sliced; ``cache`` (a dict) keeps it for the
    other blocks.
    """
    from warpinit.kernels.philox import key_table

    kind = distribution[0]
    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    index = tuple(slice(start, stop) for start, stop in ranges)
    if kind in ("orthogonal", "sparse"):
        whole = None if cache is None else cache.get(kind)
        if whole is None:
            whole = generate(distribution, shape, dtype, key_table(seed, 0), device)[0]
            if cache is not None:
                cache[kind] = whole
        if out is None:
            return whole[index].copy()
        out[...] = whole[index]
        return out
    if dtype.kind == "c" and kind != "constant":
        from . import _complex

        result = out if out is not None else _devices.empty(device, tuple(stop - start for start, stop in ranges),
                                                            dtype)
        _complex.generate_block(distribution, shape, dtype, index, key_table(seed, 0), device, result)
        return result
    return generate_part(distribution, shape, dtype, key_table(seed, 0), device, Part.block(shape, ranges), out)


def _generate_sparse(params, shape, dtype, keys, device, result) -> None:
    """``result`` (K, rows, cols): the normal values of each key row, then the zeros ``sparse``
    places with that row's derived seed."""
    from warpinit import _sampling
    from warpinit.kernels import plan
    from warpinit.kernels.philox import derive_seed, key_table

    sparsity, stddev = params
    rows = shape[0]
    zeros = min(math.ceil(sparsity * rows), rows)
    _sampling.generate(plan.normal(0.0, stddev, dtype), shape, keys, device, result)
    if zeros == 0 or result.size == 0:
        return
    keys = np.asarray(keys, dtype=np.uint64)
    seeds = [derive_seed(int(low) | (int(high) << 32), SPARSE_TAG) for low, high in keys[:, :2]]
    uniforms = _devices.empty(device, result.shape, np.dtype(np.float64))
    _sampling.generate(plan.uniform(0.0, 1.0, np.dtype(np.float64)), shape, key_table(seeds, keys[:, 2]), device,
                       uniforms)
    xp = np if isinstance(result, np.ndarray) else _cupy()
    # Each column's rows in increasing order of their uniforms (stable: ties to the lower row), then
    # each row's rank in that order: the ``zeros`` first ranks are zeroed.
    order = np.argsort(uniforms, axis=1, kind="stable") if xp is np else xp.argsort(uniforms, axis=1)
    ranks = xp.argsort(order, axis=1)
    result[ranks < zeros] = 0


def _cupy():
    import cupy

    return cupy
