"""The distributions every framework face draws, in one place.

A distribution is a ``(kind, parameters)`` pair:

- ``("uniform", (minval, maxval))``
- ``("normal", (mean, stddev))``
- ``("truncated_normal", (mean, stddev))``: bounds at +-2 standard deviations (Keras, TensorFlow, JAX),
  or ``("truncated_normal", (mean, stddev, lower, upper))`` with bounds in standard deviations
- ``("orthogonal", (gain,))``
- ``("constant", (value,))``: a zero standard deviation

The Keras, PyTorch and JAX faces translate their initializers into these pairs (variance scaling
through ``variance_scaling``) and draw K tensors at once through ``generate``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _args, _devices

# Standard deviation of a standard normal truncated to [-2, 2]; variance scaling divides by it so the
# truncated distribution keeps the intended variance (the constant Keras, TensorFlow and JAX use).
TRUNCATION_CORRECTION = 0.87962566103423978

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "normal", "uniform")


def variance_scaling(scale: float, mode: str, distribution: str, fan_in: float, fan_out: float, floor=1.0):
    """(kind, parameters) of variance scaling: values with variance ``scale / fan``.

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
        return "truncated_normal", (0.0, math.sqrt(variance) / TRUNCATION_CORRECTION)
    if distribution in ("untruncated_normal", "normal"):
        return "normal", (0.0, math.sqrt(variance))
    limit = math.sqrt(3.0 * variance)
    return "uniform", (-limit, limit)


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype (ml_dtypes for bfloat16) of a float dtype name or type."""
    return _args.dtype("warpinit", dtype, None)


def plan_of(kind: str, parameters, dtype: np.dtype):
    """The kernel plan of a sampling distribution (not "orthogonal" or "constant")."""
    from warpinit.kernels import plan

    if kind == "uniform":
        return plan.uniform(*parameters, dtype)
    if kind == "normal":
        return plan.normal(*parameters, dtype)
    if kind == "truncated_normal":
        bounds = tuple(parameters[2:]) or (-2.0, 2.0)
        return plan.truncated_normal(parameters[0], parameters[1], *bounds, dtype)
    raise ValueError(f"plan_of: no sampling plan for the distribution kind {kind!r}")


def generate(kind: str, parameters, shape, dtype, keys, device: str, result=None):
    """K tensors of the distribution: ``result[k]`` (shape ``shape``) drawn with row k of the key
    table ``keys`` (``warpinit.kernels.philox.key_table``, uint64 (K, 3)).

    ``dtype`` is a float dtype name or type, ``device`` "cpu" or "cuda" (already resolved),
    ``result`` a C-contiguous (K, *shape) array of that dtype on that device, allocated when None.
    Returns ``result``.
    """
    from warpinit import _orthogonal, _sampling

    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    if result is None:
        result = _devices.empty(device, (len(keys), *shape), dtype)
    if kind == "orthogonal":
        _orthogonal.generate(shape, parameters[0], dtype, keys, device, result)
    elif kind == "constant":
        result[...] = parameters[0]
    else:
        _sampling.generate(plan_of(kind, parameters, dtype), shape, keys, device, result)
    return result


def generate_block(kind: str, parameters, shape, dtype, seed: int, ranges, device: str, cache=None):
    """The block ``ranges`` ((start, stop) per axis) of ``generate(kind, parameters, shape, dtype,
    key_table(seed, 0), device)[0]``, as a new C-contiguous array on ``device``.

    The samplers draw only the block's values (the counter contract makes them equal to the whole
    tensor's), so the devices of a mesh each pay for their own shard only. An orthogonal matrix is
    built whole (Q has no cheaper block) and sliced; ``cache`` (a dict) keeps it for the other blocks.
    """
    from warpinit import _sampling
    from warpinit.kernels.philox import key_table

    dtype = numpy_dtype(dtype)
    shape = tuple(shape)
    index = tuple(slice(start, stop) for start, stop in ranges)
    if kind == "orthogonal":
        whole = None if cache is None else cache.get("orthogonal")
        if whole is None:
            whole = generate(kind, parameters, shape, dtype, key_table(seed, 0), device)[0]
            if cache is not None:
                cache["orthogonal"] = whole
        return whole[index].copy()
    result = _devices.empty(device, tuple(stop - start for start, stop in ranges), dtype)
    if kind == "constant":
        result[...] = parameters[0]
    else:
        _sampling.generate_block(plan_of(kind, parameters, dtype), shape, index, key_table(seed, 0), device, result)
    return result
