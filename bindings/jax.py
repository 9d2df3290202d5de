"""JAX initializers backed by warpinit's kernels, with sharded generation.

Drop-in factories with the names, arguments and defaults of ``jax.nn.initializers``; each returns
``init(key, shape, dtype=<factory dtype>, out_sharding=None)``::

    import warpinit.jax as initializers

    init = initializers.glorot_uniform()
    w = init(jax.random.key(0), (4096, 4096), jnp.bfloat16)
    w = init(key, (8192, 8192), out_sharding=NamedSharding(mesh, P("data", "model")))

Distributions follow ``jax.nn.initializers`` (fans, ``fan_geo_avg``, the 0.8796... truncation
correction, ``orthogonal``'s ``column_axis``), with two strengthenings: truncation is exact (values
rounded to the output dtype stay within ``lower * stddev`` and ``upper * stddev``), and a sharded
array equals the unsharded one bit for bit. Values differ from JAX's own (another generator).

Keys and seeds. ``key`` is a typed key (``jax.random.key``) or a raw uint32 key
(``jax.random.PRNGKey``). warpinit's 64-bit seed is derived from the key's data words
(``jax.random.key_data``): seed = derive_seed((w0 << 32) | w1, KEY_TAG), further word pairs (other
PRNG implementations) chained through ``derive_seed`` with the previous seed as the tag; values then
come from stream 0 of that seed under warpinit's counter contract. Hence the same key gives the same
values (on any run, thread count, jit or not, sharded or not), and different keys give independent
streams (distinct seeds up to a 64-bit collision, about one pair in 2**32 keys); ``seed_of(key)``
returns the seed, so ``warpinit.normal(..., seed=seed_of(key), index=...)`` reproduces any block.
The tag keeps these streams apart from direct ``warpinit.*(seed=...)`` calls with small seeds.

Eager and jit. With a concrete key the kernels run directly: on the CPU they write into a 64-byte
aligned buffer that ``jax.device_put`` adopts without a copy. Under ``jax.jit`` (Flax initializes
inside ``jit``) the key is a tracer: the values are made on the host by ``jax.pure_callback`` into the
CPU kernels, the result declared with its shape and dtype, and XLA copies the callback's result into
its own buffer. Measured on a 2-core CPU (float32, best of 3; figures in the issue's report): a call
costs about 0.25 ms besides the generation either way (JAX's own jitted initializer: 0.03 ms), so
below ~64K elements JAX's jitted initializer is faster; the jit path adds 0.01-0.05 ms and that
copy, 0.25-0.5 ms per MB (15-33 ms for a 64 MB tensor, which the kernels generate in 20-60 ms and
JAX's own jitted initializer in 200-290 ms).
On an accelerator backend the jit path also copies the result from the host to the device. The same
key gives the same bits eagerly and under jit (both run the CPU kernels on a CPU backend).
``jax.vmap`` over keys works (member k from key k, equal to the unbatched call; vmap_method
"expand_dims"), as do ``lax.scan`` and ``jax.eval_shape``. ``jax.export`` cannot serialize the host
callback (JAX raises NotImplementedError); gradients flow through the returned array as usual.

Sharding. ``out_sharding`` takes a ``jax.sharding.Sharding`` (``NamedSharding`` and any other) or a
``PartitionSpec`` under a mesh (``jax.set_mesh``). With a concrete key each addressable device's shard
is generated alone through warpinit's ``index=`` and assembled by ``jax.make_array_from_callback``;
a shard held by several devices (replication) is generated once. Under ``jit`` the sharding must be a
``NamedSharding`` or a ``PartitionSpec``: a ``shard_map`` runs one ``pure_callback`` per device (they
run concurrently), each generating that device's block from its mesh position. Either way the
assembled array equals the unsharded one bit for bit, and ``vmap`` over keys composes with it.

Orthogonal shards. JAX's ``orthogonal`` treats the whole tensor as one matrix; ``orthogonal`` here
takes an extra keyword ``batch_dims``: the leading ``batch_dims`` axes index a stack of independent
matrices (member k, in C order over those axes, is drawn with stream k, as ``warpinit.orthogonal``'s
``batch``). Shards split a stack by whole matrices. A sharding that splits a matrix itself is
served too: each shard needing part of a matrix generates the whole matrix and keeps its slice
(outside ``jit`` a matrix shared by several shards is generated once per call; under ``jit`` once per
device that holds part of it), which costs the matrix's full time and memory per generation.
Members are generated so that their bits do not depend on grouping: small members (up to
``warpinit.kernels.orthogonal.SMALL_MAX_ELEMENTS`` elements) in one batched launch, one member per
thread; larger members one by one with every BLAS thread.

Dtypes: float16, bfloat16, float32, and float64 when ``jax_enable_x64`` is on (otherwise float64 is
truncated to float32 with a warning, as JAX does). Complex and integer dtypes raise ``ValueError``
naming ``dtype`` (JAX's error class for bad dtypes); use ``jax.nn.initializers`` for complex weights.

GPU backends: outside ``jit`` the values come from the CUDA kernels (CuPy) and are handed to JAX by
DLPack on the device that holds them, without a host round trip; under ``jit`` they come from the CPU
kernels through the callback. CPU and CUDA values agree within warpinit's "same values" tolerance
(4 ULP), not bit for bit. This GPU route is thin and is not exercised by the CPU test suite.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as error:  # pragma: no cover - exercised only without JAX
    raise ImportError("warpinit.jax needs JAX: pip install 'warpinit[jax]'") from error

from . import _args, _devices, _distributions, _orthogonal

__all__ = [
    "KEY_TAG", "constant", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal",
    "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones", "orthogonal", "seed_of",
    "truncated_normal", "uniform", "variance_scaling", "xavier_normal", "xavier_uniform", "zeros",
]

# Re-exported unchanged: constant initializers need no random numbers.
zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones
constant = jax.nn.initializers.constant

# The tag that turns a JAX key's data into warpinit's seed ("JAXPRNGK" in ASCII).
KEY_TAG = 0x4A41_5850_524E_474B
_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
_FLOATS = "float16, bfloat16, float32 or float64"
# XLA's CPU client adopts a host buffer aligned to this many bytes instead of copying it.
_ALIGNMENT = 64


# Distributions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Draw:
    """What one initializer draws for one shape and dtype.

    kind "uniform" (minval, maxval), "normal" (stddev,), "truncated_normal" (stddev, lower, upper),
    "orthogonal" (gain, column_axis >= 0, batch_dims) or "zeros" ().
    """

    function: str
    kind: str
    params: tuple


def _real(function: str, name: str, value) -> float:
    """A concrete real number (Python, NumPy or a concrete JAX scalar) as a float."""
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer) and value.ndim == 0:
        value = np.asarray(value)
    try:
        return _args.real(function, name, value)
    except TypeError:
        raise TypeError(
            f"{function}: {name} must be a concrete real number, got {type(value).__name__}: {value!r}"
        ) from None


def _checked(draw: _Draw, dtype: np.dtype) -> _Draw:
    """``draw`` after the checks that depend on the dtype (representable bounds and scales), run at
    trace time so that the host callback never raises."""
    from warpinit.kernels import plan

    try:
        if draw.kind == "uniform":
            plan.uniform(*draw.params, dtype)
        elif draw.kind == "normal":
            plan.normal(0.0, draw.params[0], dtype)
        elif draw.kind == "truncated_normal":
            plan.truncated_normal(0.0, *draw.params, dtype)
    except ValueError as error:
        raise ValueError(f"{draw.function}: cannot draw in {dtype.name}: {error}") from None
    return draw


def _sampler(function: str, kind: str, scale: float, lower: float = -2.0, upper: float = 2.0) -> _Draw:
    """JAX's ``random.<kind>(...) * scale`` as a warpinit distribution (a zero scale gives zeros)."""
    if scale == 0.0:
        return _Draw(function, "zeros", ())
    if kind == "uniform":  # [0, scale): for a negative scale, [scale, 0)
        return _Draw(function, "uniform", (min(scale, 0.0), max(scale, 0.0)))
    if kind == "normal":
        return _Draw(function, "normal", (abs(scale),))
    if scale < 0:  # values in [upper * scale, lower * scale]
        lower, upper = -upper, -lower
    return _Draw(function, "truncated_normal", (abs(scale), lower, upper))


def _finite(function: str, name: str, value) -> float:
    value = _real(function, name, value)
    return _args.finite(function, name, value)


def _compute_fans(shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """JAX's fans of a weight shape: (fan_in, fan_out) as floats.

    The input and output sizes are the products of the ``in_axis`` and ``out_axis`` dimensions; the
    receptive field is the product of the dimensions in none of the three axis groups, and
    multiplies both.
    """
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(
            f"Can't compute input and output sizes of a {len(shape)}-dimensional weights tensor with "
            "default in_axis. Must be at least 2D or specify in_axis explicitly."
        )

    def size(axes):
        return shape[axes] if isinstance(axes, int) else math.prod(shape[axis] for axis in axes)

    in_size, out_size, batch_size = size(in_axis), size(out_axis), size(batch_axis)
    receptive_field = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive_field, out_size * receptive_field


# Dtypes and keys -----------------------------------------------------------------------------------


def _default_dtype() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _dtype(function: str, dtype) -> np.dtype:
    """A float dtype JAX can hold: float16, bfloat16, float32, float64 (float32 without x64)."""
    from warpinit.kernels.plan import DTYPES

    if dtype is None:
        return _default_dtype()
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in DTYPES:
        name = resolved.name if resolved is not None else repr(dtype)
        raise ValueError(
            f"dtype argument to `{function}` must be a real float dtype ({_FLOATS}) for warpinit, got {name}"
            + ("; use jax.nn.initializers for complex weights" if resolved is not None and resolved.kind == "c"
               else "")
        )
    canonical = np.dtype(jax.dtypes.canonicalize_dtype(resolved))
    if canonical != resolved:
        warnings.warn(
            f"{function}: dtype {resolved.name} needs jax_enable_x64 (the jax_enable_x64 configuration "
            f"option or the JAX_ENABLE_X64 environment variable); generating {canonical.name} instead, "
            "as jax.nn.initializers does",
            UserWarning,
            stacklevel=4,
        )
    return canonical


def _key_words(function: str, key):
    """The uint32 data words (W,) of a single key: typed (jax.random.key) or raw (jax.random.PRNGKey)."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        if key.ndim != 0:
            raise ValueError(
                f"{function}: key must be a single PRNG key, got an array of keys of shape {key.shape} "
                "(use jax.vmap to initialize with several keys)"
            )
        return jax.random.key_data(key)
    if dtype is None or np.dtype(dtype) != np.uint32 or getattr(key, "ndim", 0) != 1:
        description = f"{np.dtype(dtype).name}{list(key.shape)}" if dtype is not None else type(key).__name__
        raise TypeError(
            f"{function}: key must be a JAX PRNG key (jax.random.key) or a raw uint32 key of shape (W,) "
            f"(jax.random.PRNGKey), got {description}"
        )
    return key


def _seed_from_words(words) -> int:
    """warpinit's 64-bit seed of a key's data words (see the module docstring)."""
    return _seed_of_tuple(tuple(int(word) & 0xFFFFFFFF for word in np.asarray(words).reshape(-1)))


@functools.lru_cache(maxsize=1024)
def _seed_of_tuple(words: tuple) -> int:
    from warpinit.kernels.philox import derive_seed

    words = list(words)
    if len(words) % 2:
        words.append(0)
    seed = None
    for first in range(0, len(words), 2):
        pair = (words[first] << 32) | words[first + 1]
        seed = derive_seed(pair, KEY_TAG if seed is None else seed)
    return KEY_TAG if seed is None else seed


def seed_of(key) -> int:
    """warpinit's 64-bit seed for a concrete JAX key.

    Args:
        key: a typed key (``jax.random.key``) or a raw uint32 key (``jax.random.PRNGKey``), not a
            tracer.

    Returns:
        The int in [0, 2**64) the initializers of this module draw from (stream 0): for example
        ``warpinit.normal(shape, stddev=s, seed=seed_of(key), index=block)`` equals that block of
        ``normal(s)(key, shape)``.
    """
    return _seed_from_words(np.asarray(_key_words("seed_of", key)))


# Host generation -----------------------------------------------------------------------------------


def _ranges(shape, index) -> tuple[tuple[int, int], ...]:
    """(start, stop) per axis of a block given by slices (step 1); None covers the whole tensor."""
    if index is None:
        return tuple((0, n) for n in shape)
    index = tuple(index) + (slice(None),) * (len(shape) - len(tuple(index)))
    result = []
    for entry, n in zip(index, shape):
        start, stop, _ = entry.indices(n)
        result.append((start, max(start, stop)))
    return tuple(result)


def _empty(device: str, shape, dtype: np.dtype):
    """An uninitialised array: on the CPU aligned so that ``jax.device_put`` takes it without a copy."""
    if device != "cpu":
        return _devices.empty(device, tuple(shape), dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGNMENT, dtype=np.uint8)
    offset = -raw.ctypes.data % _ALIGNMENT
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def _draw_block(draw: _Draw, shape, dtype, seed: int, ranges, device: str, cache=None):
    """The block ``ranges`` of the tensor (NumPy on the CPU, CuPy on CUDA), C-contiguous."""
    import warpinit as wi

    if draw.kind == "orthogonal":
        return _orthogonal_block(draw, shape, dtype, seed, ranges, device, cache)
    out = _empty(device, tuple(stop - start for start, stop in ranges), dtype)
    if draw.kind == "zeros":
        out[...] = 0
        return out
    common = dict(dtype=dtype, seed=seed, stream=0, device=device, out=out,
                  index=tuple(slice(start, stop) for start, stop in ranges))
    if draw.kind == "uniform":
        return wi.uniform(shape, minval=draw.params[0], maxval=draw.params[1], **common)
    if draw.kind == "normal":
        return wi.normal(shape, stddev=draw.params[0], **common)
    stddev, lower, upper = draw.params
    return wi.truncated_normal(shape, stddev=stddev, lower=lower, upper=upper, **common)


def _orthogonal_block(draw: _Draw, shape, dtype, seed, ranges, device, cache):
    """A block of an orthogonal tensor: the whole matrices it touches, then the block's slice.

    ``cache`` (a dict, or None) keeps the matrices of each range of members for the other blocks of
    the same call."""
    gain, column_axis, batch_dims = draw.params
    matrix = tuple(shape[a] for a in range(batch_dims, len(shape)) if a != column_axis) + (shape[column_axis],)
    members = ranges[:batch_dims]
    whole = cache.get(members) if cache is not None else None
    if whole is None:
        counts = tuple(stop - start for start, stop in members)
        stacked = _empty(device, counts + matrix, dtype)
        flat = stacked.reshape((math.prod(counts), *matrix))
        if batch_dims:
            (last_start, last_stop), done = members[-1], 0
            for outer in itertools.product(*(range(start, stop) for start, stop in members[:-1])):
                count = last_stop - last_start
                if count:
                    first = int(np.ravel_multi_index(outer + (last_start,), shape[:batch_dims]))
                    _orthogonal_members(matrix, gain, dtype, seed, first, count, device, flat[done : done + count])
                done += count
        else:
            _orthogonal_members(matrix, gain, dtype, seed, 0, 1, device, flat)
        whole = stacked if column_axis == len(shape) - 1 else _moveaxis(stacked, -1, column_axis)
        if cache is not None:
            cache[members] = whole
    inner = ranges[batch_dims:]
    if all(bounds == (0, n) for bounds, n in zip(inner, shape[batch_dims:])) and whole.flags.c_contiguous:
        return whole
    view = whole[(slice(None),) * batch_dims + tuple(slice(start, stop) for start, stop in inner)]
    block = _empty(device, view.shape, dtype)
    block[...] = view
    return block


def _moveaxis(array, source, destination):
    if isinstance(array, np.ndarray):
        return np.moveaxis(array, source, destination)
    import cupy

    return cupy.moveaxis(array, source, destination)


def _orthogonal_members(matrix, gain, dtype, seed, first, count, device, out):
    """Fill ``out`` (count, *matrix) with members first .. first + count - 1 of a stack of orthogonal
    matrices (``warpinit.orthogonal(matrix, batch=count, stream=first)``), each with bits that do not
    depend on ``first`` and ``count``: small members in one launch (one member per thread), large
    members one by one (all BLAS threads on each)."""
    import warpinit as wi
    from warpinit.kernels.orthogonal import SMALL_MAX_ELEMENTS

    with _orthogonal.BLAS_LOCK:  # concurrent callbacks take turns (BLAS's thread count is process-wide)
        if count == 1 or math.prod(matrix) <= SMALL_MAX_ELEMENTS:
            wi.orthogonal(matrix, gain=gain, dtype=dtype, seed=seed, stream=first, batch=count, device=device, out=out)
            return
        for member in range(count):
            wi.orthogonal(matrix, gain=gain, dtype=dtype, seed=seed, stream=first + member, device=device,
                          out=out[member])


def _host_callback(draw: _Draw, shape, dtype, local_shape, words, positions=None):
    """``pure_callback``'s body: the block at ``positions * local_shape`` of the tensor of each key.

    ``words`` is (..., W) (leading axes: ``vmap``'s batch), ``positions`` (..., ndim) or None for the
    whole tensor. Returns (..., *local_shape) of ``dtype``, drawn on the CPU.
    """
    words = np.asarray(words, dtype=np.uint32)
    ndim = len(shape)
    if positions is None:
        positions = np.zeros((ndim,), dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    lead = np.broadcast_shapes(words.shape[:-1], positions.shape[:-1])
    flat_words = np.broadcast_to(words, lead + words.shape[-1:]).reshape(-1, words.shape[-1])
    flat_positions = np.broadcast_to(positions, lead + (ndim,)).reshape(-1, ndim)

    def member(k):
        ranges = tuple((int(p) * n, int(p) * n + n) for p, n in zip(flat_positions[k], local_shape))
        return _draw_block(draw, shape, dtype, _seed_from_words(flat_words[k]), ranges, "cpu")

    if not lead:
        return np.asarray(member(0)).reshape(local_shape)
    result = np.empty(lead + tuple(local_shape), dtype=dtype)
    flat = result.reshape(-1, *local_shape)
    for k in range(flat.shape[0]):
        flat[k] = member(k)
    return result


# Paths: eager, eager sharded, traced, traced sharded ---------------------------------------------


@functools.lru_cache(maxsize=1)
def _callback_options() -> dict:
    """How ``pure_callback`` batches under ``vmap`` in this JAX version (callbacks take leading axes)."""
    parameters = inspect.signature(jax.pure_callback).parameters
    return {"vmap_method": "expand_dims"} if "vmap_method" in parameters else {"vectorized": True}


def _shard_map():
    """``jax.shard_map`` (or the experimental one of older JAX) and its replication-check keyword."""
    function = getattr(jax, "shard_map", None)
    if function is None:
        from jax.experimental.shard_map import shard_map as function
    parameters = inspect.signature(function).parameters
    check = {"check_vma": False} if "check_vma" in parameters else {"check_rep": False}
    return function, check


def _jax_device_kind(device) -> str:
    """The warpinit device that fills a JAX device's buffers directly."""
    return "cuda" if device.platform == "gpu" and _devices.cuda_usable() else "cpu"


def _to_jax(array, device=None):
    """A jax.Array holding ``array``: NumPy through ``device_put``, CuPy through DLPack (no copy)."""
    if isinstance(array, np.ndarray):
        return jax.device_put(array, device)
    return jax.dlpack.from_dlpack(array)


def _on_gpu(device):
    """A context that makes CuPy allocate on a JAX GPU device."""
    import cupy

    ordinal = getattr(device, "local_hardware_id", None)
    return cupy.cuda.Device(device.id if ordinal is None else ordinal)


def _eager(draw, shape, dtype, seed, sharding):
    if sharding is None:
        ranges = _ranges(shape, None)
        if jax.default_backend() == "gpu" and _devices.cuda_usable():  # CuPy's current device
            return _to_jax(_draw_block(draw, shape, dtype, seed, ranges, "cuda"))
        return jax.device_put(_draw_block(draw, shape, dtype, seed, ranges, "cpu"))
    return assemble(shape, dtype, sharding,
                    lambda ranges, device, cache: _draw_block(draw, shape, dtype, seed, ranges, device, cache))


def assemble(shape, dtype, sharding, block):
    """A ``jax.Array`` of ``shape`` and ``dtype`` laid out as ``sharding``, each device holding only
    the block it needs: ``block(ranges, device, cache)`` returns the block ``ranges`` ((start, stop)
    per axis) as NumPy (device "cpu") or CuPy ("cuda"); ``cache`` is a dict shared by the blocks drawn
    on one device. On GPUs each shard is drawn on its own GPU and stays there; on the host a block
    held by several devices is drawn once. (Also used by ``warpinit.keras`` for Keras layouts.)"""
    indices = sharding.addressable_devices_indices_map(tuple(shape))
    if any(_jax_device_kind(device) == "cuda" for device in indices):
        arrays, caches = [], {}
        for device, index in indices.items():  # each device's shard drawn on that GPU, kept there
            with _on_gpu(device):
                cache = caches.setdefault(device, {})
                arrays.append(_to_jax(block(_ranges(shape, index), "cuda", cache)))
        return jax.make_array_from_single_device_arrays(tuple(shape), sharding, arrays)
    cache, blocks = {}, {}

    def host_block(index):
        ranges = _ranges(shape, index)
        if ranges not in blocks:
            blocks[ranges] = block(ranges, "cpu", cache)
        return blocks[ranges]

    return jax.make_array_from_callback(tuple(shape), sharding, host_block, dtype=dtype)


def _traced(draw, shape, dtype, words, sharding):
    callback = functools.partial(_host_callback, draw, shape, dtype, shape)
    result_type = jax.ShapeDtypeStruct(shape, dtype)
    if sharding is None:
        return jax.pure_callback(callback, result_type, words, **_callback_options())
    if not isinstance(sharding, jax.sharding.NamedSharding):
        raise ValueError(
            f"{draw.function}: under jax.jit, out_sharding must be a NamedSharding or a PartitionSpec, got "
            f"{type(sharding).__name__}; call the initializer outside jit to use any Sharding"
        )
    mesh, spec = sharding.mesh, tuple(sharding.spec)
    spec = spec + (None,) * (len(shape) - len(spec))
    axes, local = [], []
    for n, entry in zip(shape, spec):  # shard_map checks that the shards divide evenly
        names = () if entry is None else (tuple(entry) if isinstance(entry, (tuple, list)) else (entry,))
        axes.append(names)
        local.append(n // math.prod(mesh.shape[name] for name in names))
    local = tuple(local)
    callback = functools.partial(_host_callback, draw, shape, dtype, local)

    def per_device(words):
        positions = []
        for names in axes:
            position = jnp.zeros((), jnp.int32)
            for name in names:  # major to minor, as the spec lists them
                position = position * mesh.shape[name] + jax.lax.axis_index(name)
            positions.append(position)
        positions = jnp.stack(positions) if positions else jnp.zeros((0,), jnp.int32)
        return jax.pure_callback(callback, jax.ShapeDtypeStruct(local, dtype), words, positions,
                                 **_callback_options())

    shard_map, check = _shard_map()
    mapped = shard_map(per_device, mesh=mesh, in_specs=jax.sharding.PartitionSpec(),
                       out_specs=sharding.spec, **check)
    return mapped(words)


def _sharding(function: str, out_sharding):
    """A Sharding (or None) from ``out_sharding``: a Sharding, a PartitionSpec under a mesh, or None."""
    if out_sharding is None:
        return None
    if isinstance(out_sharding, jax.sharding.PartitionSpec):
        mesh = None
        for getter in ("get_mesh", "get_abstract_mesh"):
            try:
                mesh = getattr(jax.sharding, getter)()
            except (AttributeError, ValueError):  # missing in this JAX, or get_mesh under jit
                continue
            if not mesh.empty:
                break
        if mesh is None or mesh.empty:
            raise ValueError(
                f"{function}: out_sharding={out_sharding} is a PartitionSpec but no mesh is set; pass a "
                "NamedSharding or enter a mesh with jax.set_mesh"
            )
        return jax.sharding.NamedSharding(mesh, out_sharding)
    if isinstance(out_sharding, jax.sharding.NamedSharding) and out_sharding.mesh.empty:
        return None
    if not isinstance(out_sharding, jax.sharding.Sharding):
        raise TypeError(
            f"{function}: out_sharding must be None, a jax.sharding.Sharding or a PartitionSpec, got "
            f"{type(out_sharding).__name__}: {out_sharding!r}"
        )
    return out_sharding


def _initialize(function: str, make_draw, key, shape, dtype, out_sharding):
    """An initializer call: validate, then draw eagerly or through a callback."""
    shape = _args.shape(function, shape)
    dtype = _dtype(function, dtype)
    draw = make_draw(shape, dtype)
    if draw.kind != "orthogonal" and math.prod(shape) == 0:
        draw = _Draw(function, "zeros", ())
    words = _key_words(function, key)
    sharding = _sharding(function, out_sharding)
    try:
        host_words = np.asarray(words)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return _traced(draw, shape, dtype, words, sharding)
    return _eager(draw, shape, dtype, _seed_from_words(host_words), sharding)


_INIT_DOC = """Draw an array with ``{function}``'s distribution (see the factory's docstring).

Args:
    key: a typed key (``jax.random.key``) or a raw uint32 key (``jax.random.PRNGKey``), concrete or
        traced; warpinit's seed is ``seed_of(key)``.
    shape: sequence of non-negative ints.
    dtype: float16, bfloat16, float32 or float64 (float64 needs jax_enable_x64); default: the
        factory's dtype, else JAX's default float dtype.
    out_sharding: None (the default device), a ``jax.sharding.Sharding`` or a ``PartitionSpec`` under
        a mesh: each device generates only its shard, and the array equals the unsharded one bit for bit.

Returns:
    A ``jax.Array`` of ``shape`` and ``dtype`` (sharded as ``out_sharding`` says).

Raises:
    ValueError: a dtype that is not a real float (naming ``dtype``), an array of keys (use
        ``jax.vmap``), a shape the distribution cannot take (JAX's messages for fans and orthogonal),
        parameters not representable in ``dtype``, a ``PartitionSpec`` without a mesh, a non-named
        sharding under jit.
    TypeError: a key that is neither a PRNG key nor a raw uint32 key; a bad shape or ``out_sharding``.

Outside jit the kernels run directly (on the CPU into a buffer JAX adopts without a copy); under
``jax.jit`` a ``jax.pure_callback`` runs them on the host, which adds 0.25-0.5 ms per MB of result
(XLA's copy of the callback's output) on a 2-core CPU. See the module docstring.
"""


def _initializer(function: str, make_draw, default_dtype):
    """An ``init(key, shape, dtype, out_sharding)`` function drawing ``make_draw(shape, dtype)``."""

    def init(key, shape, dtype=default_dtype, out_sharding=None):
        return _initialize(function, make_draw, key, shape, dtype, out_sharding)

    init.__doc__ = _INIT_DOC.format(function=function)
    init.__qualname__ = f"{function}.<locals>.init"
    return init


# The factories ---------------------------------------------------------------------------------------


def uniform(scale=1e-2, dtype=None):
    """Builds an initializer of uniform values in ``[0, scale)`` (``[scale, 0)`` for a negative scale).

    Args:
        scale: finite real, the upper bound (zero gives zeros).
        dtype: the initializer's default dtype (float16, bfloat16, float32, float64).

    Returns:
        ``init(key, shape, dtype=dtype, out_sharding=None)`` returning a ``jax.Array``; values stay
        below ``scale`` after rounding to ``dtype``.

    Raises:
        TypeError, ValueError: a non-real or non-finite scale (here), a bad dtype, shape or key (at
            the call), naming the parameter.
    """
    function = "uniform"
    scale = _finite(function, "scale", scale)
    return _initializer(function, lambda shape, dtype: _checked(_sampler(function, "uniform", scale), dtype), dtype)


def normal(stddev=1e-2, dtype=None):
    """Builds an initializer of normal values with mean 0 and standard deviation ``stddev``.

    Args:
        stddev: finite real (its sign does not matter; zero gives zeros).
        dtype: the initializer's default dtype.

    Returns, Raises: as in ``uniform``.
    """
    function = "normal"
    stddev = _finite(function, "stddev", stddev)
    return _initializer(function, lambda shape, dtype: _checked(_sampler(function, "normal", stddev), dtype), dtype)


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """Builds an initializer of normal values truncated to ``[lower * stddev, upper * stddev]``.

    As JAX's: ``stddev`` is the standard deviation of the untruncated normal (no correction), and the
    bounds are in standard deviations. Out-of-bounds candidates are redrawn (never clamped), and the
    bounds hold after rounding to the output dtype.

    Args:
        stddev: finite real (a negative one mirrors the bounds, as JAX's product does; zero gives zeros).
        dtype: the initializer's default dtype.
        lower, upper: bounds in standard deviations, lower < upper, either may be infinite.

    Returns, Raises: as in ``uniform`` (and ValueError for ``lower >= upper`` or NaN bounds).
    """
    function = "truncated_normal"
    stddev = _finite(function, "stddev", stddev)
    lower = _real(function, "lower", lower)
    upper = _real(function, "upper", upper)
    if math.isnan(lower) or math.isnan(upper) or not lower < upper:
        raise ValueError(f"{function}: lower must be < upper (neither NaN), got lower={lower!r}, upper={upper!r}")
    return _initializer(
        function, lambda shape, dtype: _checked(_sampler(function, "truncated_normal", stddev, lower, upper), dtype),
        dtype,
    )


def variance_scaling(scale, mode, distribution, in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
    """Builds an initializer whose variance adapts to the shape: ``scale / n``.

    ``n`` is, per ``mode``: "fan_in", "fan_out", "fan_avg" (their mean) or "fan_geo_avg" (their
    geometric mean), with JAX's fans: input and output sizes are the products of the ``in_axis`` and
    ``out_axis`` dimensions, multiplied by the receptive field (the dimensions in none of
    ``in_axis``, ``out_axis``, ``batch_axis``).

    ``distribution``: "truncated_normal" (bounds +-2 standard deviations, standard deviation
    ``sqrt(scale / n) / 0.87962566103423978`` so that the truncated values have variance
    ``scale / n``), "normal", or "uniform" (on ``[-sqrt(3 scale / n), sqrt(3 scale / n))``).

    Args:
        scale: finite real >= 0 (zero gives zeros).
        mode: "fan_in", "fan_out", "fan_avg" or "fan_geo_avg".
        distribution: "truncated_normal", "normal" or "uniform".
        in_axis, out_axis, batch_axis: int or sequence of ints, as in JAX.
        dtype: the initializer's default dtype.

    Returns:
        ``init(key, shape, dtype=dtype, out_sharding=None)``.

    Raises:
        ValueError: JAX's "invalid mode for variance scaling initializer: ..." and "invalid
            distribution for variance scaling initializer: ..." (here, not at the first call); a
            negative or non-finite scale; at the call, a 1-D shape with the default ``in_axis`` (JAX's
            message).
    """
    function = "variance_scaling"
    scale = _finite(function, "scale", scale)
    if scale < 0:
        raise ValueError(f"{function}: scale must be >= 0, got {scale!r}")
    if mode not in _MODES:
        raise ValueError(f"invalid mode for variance scaling initializer: {mode}")
    if distribution not in _DISTRIBUTIONS:
        raise ValueError(f"invalid distribution for variance scaling initializer: {distribution}")

    def make_draw(shape, dtype):
        fan_in, fan_out = _compute_fans(shape, in_axis, out_axis, batch_axis) if math.prod(shape) else (1.0, 1.0)
        kind, parameters = _distributions.variance_scaling(scale, mode, distribution, fan_in, fan_out, floor=None)
        if kind == "uniform":
            limit = parameters[1]
            draw = _Draw(function, "uniform", (-limit, limit)) if limit else _Draw(function, "zeros", ())
        else:
            draw = _sampler(function, kind, parameters[1])
        return _checked(draw, dtype)

    return _initializer(function, make_draw, dtype)


def _family(scale, mode, distribution, name, doc):
    def factory(in_axis=-2, out_axis=-1, batch_axis=(), dtype=None):
        return variance_scaling(scale, mode, distribution, in_axis=in_axis, out_axis=out_axis,
                                batch_axis=batch_axis, dtype=dtype)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"Builds a {doc} initializer: ``variance_scaling({scale}, {mode!r}, {distribution!r})``.\n\n"
        "Args:\n    in_axis, out_axis, batch_axis, dtype: as in ``variance_scaling``.\n\n"
        "Returns:\n    ``init(key, shape, dtype=dtype, out_sharding=None)``.\n"
    )
    return factory


glorot_uniform = _family(1.0, "fan_avg", "uniform", "glorot_uniform", "Glorot (Xavier) uniform")
glorot_normal = _family(1.0, "fan_avg", "truncated_normal", "glorot_normal", "Glorot (Xavier) normal")
lecun_uniform = _family(1.0, "fan_in", "uniform", "lecun_uniform", "LeCun uniform")
lecun_normal = _family(1.0, "fan_in", "truncated_normal", "lecun_normal", "LeCun normal")
he_uniform = _family(2.0, "fan_in", "uniform", "he_uniform", "He (Kaiming) uniform")
he_normal = _family(2.0, "fan_in", "truncated_normal", "he_normal", "He (Kaiming) normal")
xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


def orthogonal(scale=1.0, column_axis=-1, dtype=None, *, batch_dims=0):
    """Builds an initializer of Haar-distributed (semi-)orthogonal matrices, as JAX's.

    With ``batch_dims=0`` (JAX's semantics) the whole tensor is one matrix: its columns are the
    ``column_axis`` dimension and its rows all the other dimensions (C order), with orthonormal columns
    when rows >= columns and orthonormal rows otherwise, multiplied by ``scale``. An empty shape gives
    an empty array.

    Args:
        scale: finite real multiplier.
        column_axis: the axis of the columns; with ``batch_dims`` > 0 it must be a matrix axis.
        dtype: the initializer's default dtype.
        batch_dims: keyword-only extension (not in JAX): the leading ``batch_dims`` axes index a stack
            of independent matrices, member k (C order over those axes) drawn with warpinit stream k
            from the key's seed (member k of ``warpinit.orthogonal(..., batch=B)``). Shardings then
            split the stack by whole matrices. The remaining axes (at least two) form each matrix as
            above.

    Returns:
        ``init(key, shape, dtype=dtype, out_sharding=None)``. A sharding that splits a matrix itself is
        served by generating that matrix whole for the shards that need it (see the module docstring).

    Raises:
        ValueError: at the call, fewer than ``batch_dims + 2`` dimensions (JAX's "orthogonal initializer
            requires at least a 2D shape" for ``batch_dims=0``), or ``column_axis`` out of range or on a
            batch axis; here, a non-finite scale or a negative ``batch_dims``.
        TypeError: non-int ``column_axis`` or ``batch_dims``.
    """
    function = "orthogonal"
    gain = _finite(function, "scale", scale)
    for name, value in (("column_axis", column_axis), ("batch_dims", batch_dims)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{function}: {name} must be an int, got {type(value).__name__}: {value!r}")
    if batch_dims < 0:
        raise ValueError(f"{function}: batch_dims must be >= 0, got {batch_dims}")
    batch_dims = int(batch_dims)

    def make_draw(shape, dtype):
        if len(shape) < batch_dims + 2:
            if not batch_dims:
                raise ValueError("orthogonal initializer requires at least a 2D shape")
            raise ValueError(
                f"{function}: with batch_dims={batch_dims} the shape needs at least {batch_dims + 2} dimensions "
                f"(a stack of matrices), got shape={shape}"
            )
        if not -len(shape) <= column_axis < len(shape):
            raise ValueError(f"{function}: column_axis={column_axis} is out of range for shape={shape}")
        axis = int(column_axis) % len(shape)
        if axis < batch_dims:
            raise ValueError(
                f"{function}: column_axis={column_axis} is a batch axis (batch_dims={batch_dims}); it must be one "
                f"of the matrix axes {batch_dims}..{len(shape) - 1}"
            )
        _args.representable(function, "scale", gain, dtype)
        return _Draw(function, "orthogonal", (gain, axis, batch_dims))

    return _initializer(function, make_draw, dtype)
