"""The distributions every framework face draws, and the fans they are scaled by: one vocabulary.

A ``Distribution`` is a ``(kind, params)`` pair with canonical parameters:

- ``("uniform", (minval, maxval))``: values in [minval, maxval)
- ``("normal", (mean, stddev))``
- ``("truncated_normal", (mean, stddev, lower, upper))``: bounds in standard deviations around the
  mean (Keras, TensorFlow and JAX use +-2)
- ``("orthogonal", (gain,))``: a Haar (semi-)orthogonal matrix (Keras's flattening: rows =
  prod(shape[:-1]); a face with another flattening passes the generation shape it wants)
- ``("constant", (value,))``: every value equal (a zero standard deviation, zeros, ones)

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

KINDS = ("uniform", "normal", "truncated_normal", "orthogonal", "constant")
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


def fans(shape, in_axis=-2, out_axis=-1, batch_axis=()) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight ``shape`` of rank >= 2 (each face handles lower ranks its way).

    The input and output sizes are the products of the ``in_axis`` and ``out_axis`` dimensions (an
    int or a sequence of ints each); the receptive field, the product of the dimensions in none of
    ``in_axis``, ``out_axis`` and ``batch_axis``, multiplies both. Keras (in_axis=-2, out_axis=-1),
    PyTorch (in_axis=1, out_axis=0) and JAX (its own arguments) are all this formula; Keras's
    explicit EinsumDense axes pass every other axis as ``batch_axis``.
    """
    shape = tuple(shape)

    def axes(value):
        return {value % len(shape)} if isinstance(value, int) else {axis % len(shape) for axis in value}

    inputs, outputs, batch = axes(in_axis), axes(out_axis), axes(batch_axis)
    receptive = math.prod(n for axis, n in enumerate(shape) if axis not in inputs | outputs | batch)
    fan_in = math.prod(shape[axis] for axis in inputs) * receptive
    fan_out = math.prod(shape[axis] for axis in outputs) * receptive
    return float(fan_in), float(fan_out)


def variance_scaling(scale: float, mode: str, distribution: str, fan_in: float, fan_out: float,
                     floor=1.0) -> Distribution:
    """Variance scaling: values with variance ``scale / fan``.

    ``mode`` picks fan = fan_in, fan_out, their mean ("fan_avg") or their geometric mean
    ("fan_geo_avg"), floored at ``floor`` (Keras floors at 1; None: no floor, as JAX);
    ``distribution`` is "truncated_normal" (bounds +-2 sigma, sigma corrected by
    ``TRUNCATION_CORRECTION``), "untruncated_normal" or "normal" (the same), or "uniform"
    (+-sqrt(3 scale / fan)). Arguments are assumed valid; each face validates them with its
    framework's own errors first.
    """
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_geo_avg": math.sqrt(fan_in * fan_out)}.get(
        mode, (fan_in + fan_out) / 2.0
    )
    fan = float(fan) if floor is None else max(float(floor), float(fan))
    variance = float(scale) / fan
    if distribution == "truncated_normal":
        return truncated_normal(0.0, math.sqrt(variance) / TRUNCATION_CORRECTION)
    if distribution in ("untruncated_normal", "normal"):
        return normal(0.0, math.sqrt(variance))
    limit = math.sqrt(3.0 * variance)
    return uniform(-limit, limit)


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype (ml_dtypes for bfloat16) of a float dtype name or type."""
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
    dtype = numpy_dtype(dtype)
    kind, params = distribution
    if kind not in KINDS:
        raise ValueError(f"unknown distribution kind {kind!r}; expected one of {KINDS}")
    if kind in ("uniform", "normal", "truncated_normal"):
        plan_of(distribution, dtype)
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
    return count * math.prod(shape) * dtype.itemsize


def generate(distribution, shape, dtype, keys, device: str, result=None):
    """K tensors of ``distribution``: ``result[k]`` (shape ``shape``) drawn with row k of the key
    table ``keys`` (``warpinit.kernels.philox.key_table``, uint64 (K, 3)).

    ``dtype`` is a float dtype name or type, ``device`` "cpu" or "cuda" (already resolved),
    ``result`` a C-contiguous (K, *shape) array of that dtype on that device, allocated when None.
    Returns ``result``.
    """
    from warpinit import _orthogonal, _sampling

    kind, params = distribution
    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    if result is None:
        result = _devices.empty(device, (len(keys), *shape), dtype)
    if kind == "orthogonal":
        _orthogonal.generate(shape, params[0], dtype, keys, device, result)
    elif kind == "constant":
        result[...] = params[0]
    else:
        _sampling.generate(plan_of(distribution, dtype), shape, keys, device, result)
    return result


def generate_part(distribution, shape, dtype, keys, device: str, part: Part, result=None):
    """``part`` of one tensor of ``distribution``: of ``generate(distribution, shape, dtype, keys,
    device)[0].reshape(part.shape)`` (``keys`` one row of a key table; ``part.shape`` has ``shape``'s
    C-order flattening, e.g. a weight's shape beside the (rows, cols) matrix an orthogonal draw sees).

    The samplers draw only the part's values, equal to the whole tensor's by the counter contract (a
    sampler's values depend on the flat index alone), so every process of a distributed program pays
    for its own shard only. An orthogonal matrix is built whole (Q has no cheaper part) and sliced.
    ``result`` is a C-contiguous array of ``part.out_shape`` on ``device`` (allocated when None).
    Returns ``result``.
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
    elif kind == "orthogonal":
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


def generate_block(distribution, shape, dtype, seed: int, ranges, device: str, cache=None):
    """The block ``ranges`` ((start, stop) per axis) of ``generate(distribution, shape, dtype,
    key_table(seed, 0), device)[0]``, as a new C-contiguous array on ``device``.

    The samplers draw only the block's values (the counter contract makes them equal to the whole
    tensor's), so the devices of a mesh each pay for their own shard only. An orthogonal matrix is
    built whole (Q has no cheaper block) and sliced; ``cache`` (a dict) keeps it for the other blocks.
    """
    from warpinit.kernels.philox import key_table

    kind = distribution[0]
    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    index = tuple(slice(start, stop) for start, stop in ranges)
    if kind == "orthogonal":
        whole = None if cache is None else cache.get("orthogonal")
        if whole is None:
            whole = generate(distribution, shape, dtype, key_table(seed, 0), device)[0]
            if cache is not None:
                cache["orthogonal"] = whole
        return whole[index].copy()
    return generate_part(distribution, shape, dtype, key_table(seed, 0), device, Part.block(shape, ranges))
