"""JAX initializers backed by warpinit's kernels, with sharded generation.

Drop-in factories with the names, arguments and defaults of ``jax.nn.initializers``; each returns
``init(key, shape, dtype=<factory dtype>, out_sharding=None)``::

    import warpinit.jax as initializers

    init = initializers.glorot_uniform()
    w = init(jax.random.key(0), (4096, 4096), jnp.bfloat16)
    w = init(key, (8192, 8192), out_sharding=NamedSharding(mesh, P("data", "model")))

Every public name of ``jax.nn.initializers`` is here (``Initializer``, ``zeros``, ``ones`` and
``constant`` are JAX's own). Distributions follow ``jax.nn.initializers`` (fans, ``fan_geo_avg``,
the 0.8796... truncation correction, ``orthogonal``'s ``column_axis``, the complex forms), with two
strengthenings: truncation is exact (values rounded to the output dtype stay within
``lower * stddev`` and ``upper * stddev``), and a sharded array equals the unsharded one bit for bit.
Values differ from JAX's own (another generator). Each initializer is described by the shared
vocabulary of ``warpinit._distributions`` (a ``Distribution`` and its fans, ``fans``).

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
its own buffer. The jit path costs that copy besides the generation, and every call a fixed overhead
that makes JAX's own jitted initializer the faster one for small tensors; the benchmark measures
both paths (bench/RESULTS.md). On an accelerator backend the jit path also copies the result from
the host to the device. The same key gives the same bits eagerly and under jit (both run the CPU
kernels on a CPU backend).
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
truncated to float32 with a warning, as JAX does); complex64, and complex128 with x64 (likewise
truncated to complex64 without it), for the initializers whose JAX counterparts take them: ``normal``
(the circularly symmetric complex normal, each part with half the variance), ``variance_scaling`` and
its family (the complex normal, the complex normal truncated at modulus 2 sigma, the uniform disk, as
JAX), ``orthogonal`` and ``delta_orthogonal`` (Haar unitary matrices). Complex values are pairs of
real values under warpinit's counter contract (see ``warpinit._complex``). ``uniform`` and
``truncated_normal`` are real only, as in JAX. Other dtypes raise ``ValueError`` naming ``dtype``
(JAX's error class for bad dtypes).

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
from typing import NamedTuple

import numpy as np

try:
    import jax
    import jax.numpy as jnp
except ImportError as error:  # pragma: no cover - exercised only without JAX
    raise ImportError("warpinit.jax needs JAX: pip install 'warpinit[jax]'") from error

from . import _args, _devices, _distributions, _jax_arrays, _orthogonal

__all__ = [
    "KEY_TAG", "Initializer", "constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal",
    "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "normal", "ones",
    "orthogonal", "seed_of", "truncated_normal", "uniform", "variance_scaling", "xavier_normal", "xavier_uniform",
    "zeros",
]

# Re-exported unchanged: constant initializers need no random numbers, and the protocol they all follow.
zeros = jax.nn.initializers.zeros
ones = jax.nn.initializers.ones
constant = jax.nn.initializers.constant
Initializer = jax.nn.initializers.Initializer

# The tag that turns a JAX key's data into warpinit's seed ("JAXPRNGK" in ASCII).
KEY_TAG = 0x4A41_5850_524E_474B
_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
_DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
_FLOATS = "float16, bfloat16, float32 or float64"
_INEXACT = "float16, bfloat16, float32, float64, complex64 or complex128"
# The same lists in the initializers' docstrings, with what x64 changes.
_X64_FLOATS = "float16, bfloat16, float32 or float64 (float64 needs jax_enable_x64)"
_X64_INEXACT = ("float16, bfloat16, float32, float64, complex64 or complex128 (float64 and\n"
                "        complex128 need jax_enable_x64)")


# Distributions -------------------------------------------------------------------------------------


class _Request(NamedTuple):
    """What one initializer call draws: a distribution of the shared vocabulary
    (``_distributions.Distribution``) and, for "orthogonal", the layout of its matrices (the axis of
    the columns, >= 0, and the number of leading batch axes). ``function`` names it in errors."""

    function: str
    distribution: _distributions.Distribution
    column_axis: int = -1
    batch_dims: int = 0


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


def _checked(function: str, distribution, dtype: np.dtype) -> _Request:
    """The request of ``distribution`` after the checks that depend on the dtype (representable
    bounds and scales), run at trace time so that the host callback never raises."""
    try:
        _distributions.check(distribution, dtype)
    except ValueError as error:
        raise ValueError(f"{function}: cannot draw in {dtype.name}: {error}") from None
    return _Request(function, distribution)


def _sampler(kind: str, scale: float, lower: float = -2.0, upper: float = 2.0):
    """JAX's ``random.<kind>(...) * scale`` as a distribution of the shared vocabulary (a zero scale
    gives zeros; for a complex dtype, "normal" is the complex normal)."""
    if scale == 0.0:
        return _distributions.constant(0.0)
    if kind == "uniform":  # [0, scale): for a negative scale, [scale, 0)
        return _distributions.uniform(min(scale, 0.0), max(scale, 0.0))
    if kind == "normal":
        return _distributions.normal(0.0, abs(scale))
    if scale < 0:  # values in [upper * scale, lower * scale]
        lower, upper = -upper, -lower
    return _distributions.truncated_normal(0.0, abs(scale), lower, upper)


def _finite(function: str, name: str, value) -> float:
    value = _real(function, name, value)
    return _args.finite(function, name, value)


def _fans(function: str, shape, in_axis=-2, out_axis=-1, batch_axis=()):
    """JAX's fans of a weight shape through the shared formula (``_distributions.fans``), with JAX's
    own error for a 1-D shape under the default ``in_axis``."""
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(
            f"Can't compute input and output sizes of a {len(shape)}-dimensional weights tensor with "
            "default in_axis. Must be at least 2D or specify in_axis explicitly."
        )
    try:
        return _distributions.fans(shape, in_axis, out_axis, batch_axis)
    except ValueError as error:
        raise ValueError(f"{function}: {error}") from None


# Dtypes and keys -----------------------------------------------------------------------------------


def _default_dtype() -> np.dtype:
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def _dtype(function: str, dtype, complex_values: bool = True, stacklevel: int = 4) -> np.dtype:
    """A dtype JAX can hold: float16, bfloat16, float32, float64 (float32 without x64), and with
    ``complex_values`` complex64, complex128 (complex64 without x64)."""
    from warpinit import _complex
    from warpinit.kernels.plan import DTYPES

    if dtype is None:
        return _default_dtype()
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    accepted = DTYPES + (tuple(_complex.DTYPES) if complex_values else ())
    if resolved is None or resolved not in accepted:
        name = resolved.name if resolved is not None else repr(dtype)
        kinds = f"a float or complex dtype ({_INEXACT})" if complex_values else f"a float dtype ({_FLOATS})"
        raise ValueError(f"dtype argument to `{function}` must be {kinds} for warpinit, got {name}")
    canonical = np.dtype(jax.dtypes.canonicalize_dtype(resolved))
    if canonical != resolved:
        warnings.warn(
            f"{function}: dtype {resolved.name} needs jax_enable_x64 (the jax_enable_x64 configuration "
            f"option or the JAX_ENABLE_X64 environment variable); generating {canonical.name} instead, "
            "as jax.nn.initializers does",
            UserWarning,
            stacklevel=stacklevel,
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


def _draw_block(request: _Request, shape, dtype, seed: int, ranges, device: str, cache=None):
    """The block ``ranges`` of the tensor (NumPy on the CPU, CuPy on CUDA), C-contiguous: the block of
    ``_distributions.generate_block`` with key row (seed, stream 0), in memory JAX adopts."""
    if request.distribution.kind == "orthogonal":
        return _orthogonal_block(request, shape, dtype, seed, ranges, device, cache)
    out = _jax_arrays.empty(device, tuple(stop - start for start, stop in ranges), dtype)
    return _distributions.generate_block(request.distribution, shape, dtype, seed, ranges, device, cache, out=out)


def _orthogonal_block(request: _Request, shape, dtype, seed, ranges, device, cache):
    """A block of an orthogonal tensor: the whole matrices it touches, then the block's slice.

    ``cache`` (a dict, or None) keeps the matrices of each range of members for the other blocks of
    the same call."""
    (gain,), column_axis, batch_dims = request.distribution.params, request.column_axis, request.batch_dims
    matrix = tuple(shape[a] for a in range(batch_dims, len(shape)) if a != column_axis) + (shape[column_axis],)
    members = ranges[:batch_dims]
    whole = cache.get(members) if cache is not None else None
    if whole is None:
        counts = tuple(stop - start for start, stop in members)
        stacked = _jax_arrays.empty(device, counts + matrix, dtype)
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
    block = _jax_arrays.empty(device, view.shape, dtype)
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


def _host_callback(request: _Request, shape, dtype, local_shape, words, positions=None):
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
        return _draw_block(request, shape, dtype, _seed_from_words(flat_words[k]), ranges, "cpu")

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


def _eager(request, shape, dtype, seed, sharding):
    if sharding is None:
        ranges = _jax_arrays.ranges(shape, None)
        if jax.default_backend() == "gpu" and _devices.cuda_usable():  # CuPy's current device
            return _jax_arrays.to_jax(_draw_block(request, shape, dtype, seed, ranges, "cuda"))
        return jax.device_put(_draw_block(request, shape, dtype, seed, ranges, "cpu"))
    return _jax_arrays.assemble(shape, dtype, sharding,
                    lambda ranges, device, cache: _draw_block(request, shape, dtype, seed, ranges, device, cache))


def _traced(request, shape, dtype, words, sharding):
    callback = functools.partial(_host_callback, request, shape, dtype, shape)
    result_type = jax.ShapeDtypeStruct(shape, dtype)
    if sharding is None:
        return jax.pure_callback(callback, result_type, words, **_callback_options())
    if not isinstance(sharding, jax.sharding.NamedSharding):
        raise ValueError(
            f"{request.function}: under jax.jit, out_sharding must be a NamedSharding or a PartitionSpec, got "
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
    callback = functools.partial(_host_callback, request, shape, dtype, local)

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


def _initialize(function: str, make_request, key, shape, dtype, out_sharding, complex_values=True):
    """An initializer call: validate, then draw eagerly or through a callback."""
    shape = _args.shape(function, shape)
    dtype = _dtype(function, dtype, complex_values)
    request = make_request(shape, dtype)
    if request.distribution.kind != "orthogonal" and math.prod(shape) == 0:
        request = _Request(function, _distributions.constant(0.0))
    words = _key_words(function, key)
    sharding = _sharding(function, out_sharding)
    try:
        host_words = np.asarray(words)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return _traced(request, shape, dtype, words, sharding)
    return _eager(request, shape, dtype, _seed_from_words(host_words), sharding)


_INIT_DOC = """Draw an array with ``{function}``'s distribution (see the factory's docstring).

Args:
    key: a typed key (``jax.random.key``) or a raw uint32 key (``jax.random.PRNGKey``), concrete or
        traced; warpinit's seed is ``seed_of(key)``.
    shape: sequence of non-negative ints.
    dtype: default: the factory's dtype, else JAX's default float dtype. Accepted:
        {dtypes}.
    out_sharding: None (the default device), a ``jax.sharding.Sharding`` or a ``PartitionSpec`` under
        a mesh: each device generates only its shard, and the array equals the unsharded one bit for bit.

Returns:
    A ``jax.Array`` of ``shape`` and ``dtype`` (sharded as ``out_sharding`` says).

Raises:
    ValueError: a dtype not listed above (naming ``dtype``), an array of keys (use ``jax.vmap``), a
        shape the distribution cannot take (JAX's messages for fans and orthogonal), parameters not
        representable in ``dtype``, a ``PartitionSpec`` without a mesh, a non-named sharding under jit.
    TypeError: a key that is neither a PRNG key nor a raw uint32 key; a bad shape or ``out_sharding``.

Outside jit the kernels run directly (on the CPU into a buffer JAX adopts without a copy); under
``jax.jit`` a ``jax.pure_callback`` runs them on the host, and XLA copies the callback's result. See
the module docstring.
"""


def _initializer(function: str, make_request, default_dtype, complex_values=True):
    """An ``init(key, shape, dtype, out_sharding)`` function drawing ``make_request(shape, dtype)``;
    complex dtypes only with ``complex_values``."""

    def init(key, shape, dtype=default_dtype, out_sharding=None):
        return _initialize(function, make_request, key, shape, dtype, out_sharding, complex_values)

    init.__doc__ = _INIT_DOC.format(function=function, dtypes=_X64_INEXACT if complex_values else _X64_FLOATS)
    init.__qualname__ = f"{function}.<locals>.init"
    return init


# The factories ---------------------------------------------------------------------------------------


def uniform(scale=1e-2, dtype=None):
    """Builds an initializer of uniform values in ``[0, scale)`` (``[scale, 0)`` for a negative scale).

    Args:
        scale: finite real, the upper bound (zero gives zeros).
        dtype: the initializer's default dtype (float16, bfloat16, float32, float64; real only, as
            JAX's ``uniform``: a complex dtype is a ValueError at the call).

    Returns:
        ``init(key, shape, dtype=dtype, out_sharding=None)`` returning a ``jax.Array``; values stay
        below ``scale`` after rounding to ``dtype``.

    Raises:
        TypeError, ValueError: a non-real or non-finite scale (here), a bad dtype, shape or key (at
            the call), naming the parameter.
    """
    function = "uniform"
    scale = _finite(function, "scale", scale)
    return _initializer(function, lambda shape, dtype: _checked(function, _sampler("uniform", scale), dtype), dtype,
                        complex_values=False)


def normal(stddev=1e-2, dtype=None):
    """Builds an initializer of normal values with mean 0 and standard deviation ``stddev``.

    For a complex dtype, as JAX's: the circularly symmetric complex normal with ``E|z|^2 =
    stddev**2``, each of the real and imaginary parts N(0, stddev**2 / 2).

    Args:
        stddev: finite real (its sign does not matter; zero gives zeros).
        dtype: the initializer's default dtype (float or complex).

    Returns, Raises: as in ``uniform``.
    """
    function = "normal"
    stddev = _finite(function, "stddev", stddev)
    return _initializer(function, lambda shape, dtype: _checked(function, _sampler("normal", stddev), dtype), dtype)


def truncated_normal(stddev=1e-2, dtype=None, lower=-2.0, upper=2.0):
    """Builds an initializer of normal values truncated to ``[lower * stddev, upper * stddev]``.

    As JAX's: ``stddev`` is the standard deviation of the untruncated normal (no correction), and the
    bounds are in standard deviations. Out-of-bounds candidates are redrawn (never clamped), and the
    bounds hold after rounding to the output dtype.

    Args:
        stddev: finite real (a negative one mirrors the bounds, as JAX's product does; zero gives zeros).
        dtype: the initializer's default dtype (real only, as JAX's ``truncated_normal``).
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
        function, lambda shape, dtype: _checked(function, _sampler("truncated_normal", stddev, lower, upper), dtype),
        dtype, complex_values=False,
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

    For a complex dtype, as JAX's (``E|z|^2 = scale / n`` before truncation): "normal" is the
    complex normal, "truncated_normal" the complex normal of standard deviation ``sqrt(scale / n) /
    0.95311164380491208`` conditioned on a modulus of at most twice that, and "uniform" the uniform
    disk of radius ``sqrt(2 scale / n)`` (see ``warpinit._complex``).

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

    def make_request(shape, dtype):
        fan_in, fan_out = _fans(function, shape, in_axis, out_axis, batch_axis) if math.prod(shape) else (1.0, 1.0)
        drawn = _distributions.variance_scaling(scale, mode, distribution, fan_in, fan_out, floor=None,
                                                complex_values=dtype.kind == "c")
        if drawn.kind == "uniform" and drawn.params[1] == 0.0:  # a zero variance
            drawn = _distributions.constant(0.0)
        return _checked(function, drawn, dtype)

    return _initializer(function, make_request, dtype)


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
    an empty array. For a complex dtype the matrix is a Haar (semi-)unitary one, as JAX's: orthonormal
    under the Hermitian inner product (QR of complex Gaussians with the phase fix, see
    ``warpinit._complex.orthogonal``).

    Args:
        scale: finite real multiplier.
        column_axis: the axis of the columns; with ``batch_dims`` > 0 it must be a matrix axis.
        dtype: the initializer's default dtype (float or complex).
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

    def make_request(shape, dtype):
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
        return _Request(function, _distributions.orthogonal(gain), axis, batch_dims)

    return _initializer(function, make_request, dtype)


def delta_orthogonal(scale=1.0, column_axis=-1, dtype=None):
    """Builds an initializer of delta-orthogonal convolution kernels (Xiao et al. 2018), as JAX's.

    For a kernel of shape (*spatial, fan_in, fan_out) with one to three spatial axes, every entry is 0
    except the spatial centre (index ``(k - 1) // 2`` on each spatial axis of size k), which holds the
    (fan_in, fan_out) matrix ``orthogonal(scale, column_axis)(key, shape[-2:], dtype)`` - the very
    matrix that initializer draws from the same key.

    Args:
        scale: finite real multiplier.
        column_axis: the axis of the columns of the (fan_in, fan_out) matrix.
        dtype: the initializer's default dtype (float or complex).

    Returns:
        ``init(key, shape, dtype=dtype, out_sharding=None)``: as the other initializers' (see
        ``orthogonal``); ``out_sharding`` (which JAX's own refuses) places the assembled kernel.

    Raises:
        ValueError: at the call, JAX's "Delta orthogonal initializer requires a 3D, 4D or 5D shape."
            and "`fan_in` must be less or equal than `fan_out`. ", a bad dtype (naming ``dtype``) or
            ``column_axis`` out of range; here, a non-finite scale.
        TypeError: a non-int ``column_axis``; at the call, a bad shape, key or ``out_sharding``.
    """
    function = "delta_orthogonal"
    matrix = orthogonal(scale, column_axis, dtype)  # checks scale and column_axis

    def init(key, shape, dtype=dtype, out_sharding=None):
        shape = _args.shape(function, shape)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
        if shape[-1] < shape[-2]:
            raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
        dtype = _dtype(function, dtype, stacklevel=3)
        sharding = _sharding(function, out_sharding)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        kernel = jnp.zeros(shape, dtype).at[centre].set(matrix(key, shape[-2:], dtype))
        return kernel if sharding is None else jax.device_put(kernel, sharding)

    init.__doc__ = _INIT_DOC.format(function=function, dtypes=_X64_INEXACT)
    init.__qualname__ = f"{function}.<locals>.init"
    return init
