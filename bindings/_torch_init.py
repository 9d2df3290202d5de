"""``torch.nn.init``'s initializers with warpinit's kernels: same names, signatures and defaults.

Each random function translates its arguments into a ``_torch_tensors.Fill`` (a distribution of the
shared vocabulary over a shape, with torch's fans, gains and bounds, and torch's errors) and fills
the tensor in place; ``BUILDERS`` maps each function to its translation, which ``initialize`` and
``fast_init`` reuse. The deterministic fills (``constant_``, ``ones_``, ``zeros_``, ``eye_``,
``dirac_``) are torch's own, and torch's deprecated names without the underscore (``normal``,
``xavier_uniform``, ...) call these functions with torch's ``FutureWarning``.
"""

from __future__ import annotations

import math
import re
import textwrap
import warnings

import numpy as np
import torch

from . import _args, _distributions, _torch_tensors
from ._torch_tensors import Fill

# Re-exported unchanged: deterministic fills need no random numbers.
constant_ = torch.nn.init.constant_
zeros_ = torch.nn.init.zeros_
ones_ = torch.nn.init.ones_
eye_ = torch.nn.init.eye_
dirac_ = torch.nn.init.dirac_


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity: ``torch.nn.init.calculate_gain``, same values and errors.

    Args:
        nonlinearity: "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d/2d/3d", "sigmoid",
            "tanh", "relu", "leaky_relu" or "selu".
        param: the negative slope of "leaky_relu" (default 0.01).

    Raises:
        ValueError: an unknown nonlinearity, or a ``param`` that is not a number.
    """
    return torch.nn.init.calculate_gain(nonlinearity, param)


def _real(function: str, name: str, value, *, finite: bool = True) -> float:
    if finite:
        return _args.finite(function, name, value)
    value = _args.real(function, name, value)
    if math.isnan(value):
        raise ValueError(f"{function}: {name} must be a number, got {value!r}")
    return value


def _checked(function: str, build, *args) -> None:
    """Run a kernel plan's own checks (representability in the dtype), naming ``function``."""
    try:
        build(*args)
    except ValueError as error:
        message = str(error)
        head, _, tail = message.partition(": ")
        if head in ("uniform", "normal", "truncated_normal"):
            message = tail
        raise ValueError(f"{function}: {message}") from None


def fans(shape) -> tuple[int, int]:
    """torch.nn.init's (fan_in, fan_out), with its error for fewer than two dimensions."""
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    fan_in, fan_out = _distributions.fans(shape, in_axis=1, out_axis=0)
    return int(fan_in), int(fan_out)


def _uniform_fill(function, shape, dtype, a=0.0, b=1.0) -> Fill:
    from warpinit.kernels import plan

    a, b = _real(function, "a", a), _real(function, "b", b)
    if a > b:
        raise ValueError(f"{function}: a must be <= b, got a={a!r}, b={b!r}")
    if a == b:
        return Fill(_distributions.constant(a), tuple(shape))  # torch fills a
    _checked(function, plan.uniform, a, b, dtype)
    return Fill(_distributions.uniform(a, b), tuple(shape))


def _normal_fill(function, shape, dtype, mean=0.0, std=1.0) -> Fill:
    from warpinit.kernels import plan

    mean, std = _real(function, "mean", mean), _real(function, "std", std)
    if std < 0.0:
        raise ValueError(f"{function}: std must be >= 0, got {std!r}")
    if std == 0.0:
        return Fill(_distributions.constant(mean), tuple(shape))  # torch fills mean
    _checked(function, plan.normal, mean, std, dtype)
    return Fill(_distributions.normal(mean, std), tuple(shape))


def _trunc_normal_fill(function, shape, dtype, mean=0.0, std=1.0, a=-2.0, b=2.0) -> Fill:
    from warpinit.kernels import plan

    mean, std = _real(function, "mean", mean), _real(function, "std", std)
    a, b = _real(function, "a", a, finite=False), _real(function, "b", b, finite=False)
    if not std > 0.0:
        raise ValueError(f"{function}: std must be > 0, got {std!r}")
    if not a < b:
        raise ValueError(f"{function}: a must be < b, got a={a!r}, b={b!r}")
    lower, upper = _sigmas(mean, std, a, b)
    _checked(function, plan.truncated_normal, mean, std, lower, upper, dtype)
    return Fill(_distributions.truncated_normal(mean, std, lower, upper), tuple(shape))


def _sigmas(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    """torch's absolute bounds [a, b] in warpinit's standard deviations around ``mean``, moved inwards
    by a few ulps where float rounding would put the absolute bounds the kernel plan computes
    (mean + lower * std) outside [a, b]. Steps double, so this ends in a few rounds for any values."""
    lower, upper = (a - mean) / std, (b - mean) / std
    step = math.ulp(lower) if math.isfinite(lower) else 0.0
    while step and mean + lower * std < a:
        lower, step = lower + step, 2.0 * step
    step = math.ulp(upper) if math.isfinite(upper) else 0.0
    while step and mean + upper * std > b:
        upper, step = upper - step, 2.0 * step
    return lower, upper


def _xavier_std(function, shape, gain) -> float | None:
    fan_in, fan_out = fans(shape)
    gain = _real(function, "gain", gain)
    if gain < 0.0:
        raise ValueError(f"{function}: gain must be >= 0, got {gain!r}")
    if fan_in + fan_out == 0:
        return None  # an empty tensor
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def _xavier_uniform_fill(function, shape, dtype, gain=1.0) -> Fill:
    std = _xavier_std(function, shape, gain)
    if std is None:
        return Fill(None, tuple(shape))
    bound = math.sqrt(3.0) * std
    return _uniform_fill(function, shape, dtype, -bound, bound)


def _xavier_normal_fill(function, shape, dtype, gain=1.0) -> Fill:
    std = _xavier_std(function, shape, gain)
    if std is None:
        return Fill(None, tuple(shape))
    return _normal_fill(function, shape, dtype, 0.0, std)


def _kaiming_std(function, shape, a, mode, nonlinearity) -> float | None:
    if 0 in shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=4)
        return None
    valid_modes = ["fan_in", "fan_out"]
    lowered = mode.lower() if isinstance(mode, str) else mode
    if lowered not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = fans(shape)
    fan = fan_in if lowered == "fan_in" else fan_out
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


def _kaiming_uniform_fill(function, shape, dtype, a=0, mode="fan_in", nonlinearity="leaky_relu") -> Fill:
    std = _kaiming_std(function, shape, a, mode, nonlinearity)
    if std is None:
        return Fill(None, tuple(shape))
    bound = math.sqrt(3.0) * std
    return _uniform_fill(function, shape, dtype, -bound, bound)


def _kaiming_normal_fill(function, shape, dtype, a=0, mode="fan_in", nonlinearity="leaky_relu") -> Fill:
    std = _kaiming_std(function, shape, a, mode, nonlinearity)
    if std is None:
        return Fill(None, tuple(shape))
    return _normal_fill(function, shape, dtype, 0.0, std)


def _orthogonal_fill(function, shape, dtype, gain=1) -> Fill:
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    gain = _args.representable(function, "gain", _real(function, "gain", gain), dtype)
    if math.prod(shape) == 0:
        return Fill(None, tuple(shape))
    rows = shape[0]
    return Fill(_distributions.orthogonal(gain), (rows, math.prod(shape) // rows))


def _sparse_fill(function, shape, dtype, sparsity, std=0.01) -> Fill:
    from warpinit.kernels import plan

    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    sparsity, std = _real(function, "sparsity", sparsity), _real(function, "std", std)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"{function}: sparsity must be in [0, 1] (the fraction of each column set to zero), "
                         f"got {sparsity!r}")
    if std < 0.0:
        raise ValueError(f"{function}: std must be >= 0, got {std!r}")
    rows = shape[0]
    zeros = math.ceil(sparsity * rows)
    if math.prod(shape) == 0:
        return Fill(None, tuple(shape))
    if std == 0.0 or zeros >= rows:
        return Fill(_distributions.constant(0.0), tuple(shape))
    _checked(function, plan.normal, 0.0, std, dtype)
    if zeros == 0:
        return Fill(_distributions.normal(0.0, std), tuple(shape))
    return Fill(_distributions.sparse(sparsity, std), tuple(shape))


# Tensors, seeds and devices -------------------------------------------------------------------------


def _apply(function: str, tensor, fill: Fill, dtype: np.dtype, seed, stream, generator):
    """Validate the seed arguments, then fill ``tensor`` (nothing is drawn for no-ops)."""
    _torch_tensors.check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    stream = _args.stream(function, stream)
    if fill.distribution is None or not fill.distribution.random or tensor.is_meta or tensor.numel() == 0:
        _torch_tensors.fill(function, tensor, fill, dtype, None)
        return tensor
    from warpinit.kernels.philox import key_table

    seed = _torch_tensors.draw_seed(generator) if seed is None else seed
    _torch_tensors.fill(function, tensor, fill, dtype, key_table(seed, stream))
    return tensor


_SEED_DOC = """\
generator: torch.Generator that ``seed=None`` draws warpinit's seed from (default: torch's
    default CPU generator); not together with ``seed``.
seed: int in [0, 2**64): the same values on every call; None: a seed drawn from ``generator``.
stream: int in [0, 2**32): an independent stream under the same seed."""


def _documented(function):
    """Put the shared description of generator/seed/stream where the docstring says {seed_args}, at that
    line's indentation (Python 3.13 dedents docstrings when compiling, older versions do not)."""
    indent = re.search(r"^([ \t]*)\{seed_args\}$", function.__doc__, re.MULTILINE).group(1)
    function.__doc__ = function.__doc__.replace(f"{indent}{{seed_args}}", textwrap.indent(_SEED_DOC, indent))
    return function


# The in-place functions ---------------------------------------------------------------------------


@_documented
def uniform_(tensor, a=0.0, b=1.0, generator=None, *, seed=None, stream=0):
    """Fill ``tensor`` with values from the uniform distribution U(a, b), like ``torch.nn.init.uniform_``.

    Values are warpinit's: with an int ``seed``, equal to ``warpinit.uniform(tensor.shape, minval=a,
    maxval=b, dtype=..., seed=seed, stream=stream)``; they stay below ``b`` after rounding to the dtype.

    Args:
        tensor: a floating tensor (float16, bfloat16, float32, float64) of any shape, on the CPU, a
            CUDA GPU (filled there) or another device (generated on the CPU, then copied).
        a, b: finite bounds, a <= b (a == b fills ``a``, as torch does).
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        TypeError: a non-tensor, a sparse tensor, a non-float dtype, non-real arguments.
        ValueError: a > b, non-finite bounds, no value of the dtype in [a, b), a seed outside [0, 2**64) or
            a stream outside [0, 2**32), both ``seed`` and ``generator``.
    """
    dtype = _torch_tensors.dtype_of("uniform_", tensor)
    fill = _uniform_fill("uniform_", tuple(tensor.shape), dtype, a, b)
    return _apply("uniform_", tensor, fill, dtype, seed, stream, generator)


@_documented
def normal_(tensor, mean=0.0, std=1.0, generator=None, *, seed=None, stream=0):
    """Fill ``tensor`` with values from N(mean, std**2), like ``torch.nn.init.normal_``.

    With an int ``seed``, equal to ``warpinit.normal(tensor.shape, mean=mean, stddev=std, dtype=...,
    seed=seed, stream=stream)``.

    Args:
        tensor: a floating tensor (float16, bfloat16, float32, float64) of any shape.
        mean: finite real.
        std: finite real >= 0 (0 fills ``mean``, as torch does).
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        TypeError: a non-tensor, a sparse tensor, a non-float dtype, non-real arguments.
        ValueError: std < 0, non-finite mean or std, a std that rounds to 0 in the dtype, bad seed or
            stream, both ``seed`` and ``generator``.
    """
    dtype = _torch_tensors.dtype_of("normal_", tensor)
    fill = _normal_fill("normal_", tuple(tensor.shape), dtype, mean, std)
    return _apply("normal_", tensor, fill, dtype, seed, stream, generator)


@_documented
def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None, *, seed=None, stream=0):
    """Fill ``tensor`` with N(mean, std**2) conditioned on [a, b], like ``torch.nn.init.trunc_normal_``.

    ``a`` and ``b`` are absolute bounds (torch's convention, not standard deviations: with ``std=0.02``
    the defaults +-2 cut nothing; pass ``a=-2 * std, b=2 * std`` for +-2 sigma). Exact: a value
    outside [a, b] after rounding to the dtype is redrawn (tails and narrow intervals use exact
    proposals), never clamped, for any bounds. With an int ``seed``, equal to
    ``warpinit.truncated_normal(tensor.shape, mean=mean, stddev=std, lower=(a - mean) / std,
    upper=(b - mean) / std, dtype=..., seed=seed, stream=stream)`` (the bounds moved inwards by a few
    ulps where float rounding would put ``mean + lower * std`` outside [a, b]).

    Args:
        tensor: a floating tensor (float16, bfloat16, float32, float64) of any shape.
        mean: finite real.
        std: finite real > 0.
        a, b: bounds, a < b; either may be infinite.
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        TypeError: a non-tensor, a sparse tensor, a non-float dtype, non-real arguments.
        ValueError: std <= 0, a >= b, NaN bounds, no value of the dtype in [a, b], bad seed or stream,
            both ``seed`` and ``generator``.
    """
    dtype = _torch_tensors.dtype_of("trunc_normal_", tensor)
    fill = _trunc_normal_fill("trunc_normal_", tuple(tensor.shape), dtype, mean, std, a, b)
    return _apply("trunc_normal_", tensor, fill, dtype, seed, stream, generator)


@_documented
def xavier_uniform_(tensor, gain=1.0, generator=None, *, seed=None, stream=0):
    """Glorot uniform, like ``torch.nn.init.xavier_uniform_``: U(-bound, bound) with
    bound = gain * sqrt(6 / (fan_in + fan_out)).

    Fans as torch computes them: fan_in = size(1) * receptive field, fan_out = size(0) * receptive
    field, where the receptive field is the product of the dimensions after the first two. Equals
    ``uniform_(tensor, -bound, bound, seed=seed, stream=stream)``.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        gain: finite real >= 0.
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions (torch's message), gain < 0, bad seed or stream.
        TypeError: as in ``uniform_``.
    """
    dtype = _torch_tensors.dtype_of("xavier_uniform_", tensor)
    fill = _xavier_uniform_fill("xavier_uniform_", tuple(tensor.shape), dtype, gain)
    return _apply("xavier_uniform_", tensor, fill, dtype, seed, stream, generator)


@_documented
def xavier_normal_(tensor, gain=1.0, generator=None, *, seed=None, stream=0):
    """Glorot normal, like ``torch.nn.init.xavier_normal_``: N(0, std**2) with
    std = gain * sqrt(2 / (fan_in + fan_out)).

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        gain: finite real >= 0.
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions (torch's message), gain < 0, bad seed or stream.
        TypeError: as in ``normal_``.
    """
    dtype = _torch_tensors.dtype_of("xavier_normal_", tensor)
    fill = _xavier_normal_fill("xavier_normal_", tuple(tensor.shape), dtype, gain)
    return _apply("xavier_normal_", tensor, fill, dtype, seed, stream, generator)


@_documented
def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None, stream=0):
    """He uniform, like ``torch.nn.init.kaiming_uniform_``: U(-bound, bound) with
    bound = calculate_gain(nonlinearity, a) * sqrt(3 / fan), fan = fan_in or fan_out per ``mode``.

    A tensor with a zero-sized dimension is left alone with torch's warning.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        a: the negative slope of the rectifier after this layer (used with "leaky_relu").
        mode: "fan_in" (default) or "fan_out", any case.
        nonlinearity: a name ``calculate_gain`` knows (default "leaky_relu").
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: an unknown mode or nonlinearity, fewer than 2 dimensions (torch's types and
            messages), bad seed or stream.
        TypeError: as in ``uniform_``.
    """
    dtype = _torch_tensors.dtype_of("kaiming_uniform_", tensor)
    fill = _kaiming_uniform_fill("kaiming_uniform_", tuple(tensor.shape), dtype, a, mode, nonlinearity)
    return _apply("kaiming_uniform_", tensor, fill, dtype, seed, stream, generator)


@_documented
def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None, *, seed=None, stream=0):
    """He normal, like ``torch.nn.init.kaiming_normal_``: N(0, std**2) with
    std = calculate_gain(nonlinearity, a) / sqrt(fan), fan = fan_in or fan_out per ``mode``.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        a, mode, nonlinearity: as in ``kaiming_uniform_``.
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError, TypeError: as in ``kaiming_uniform_``.
    """
    dtype = _torch_tensors.dtype_of("kaiming_normal_", tensor)
    fill = _kaiming_normal_fill("kaiming_normal_", tuple(tensor.shape), dtype, a, mode, nonlinearity)
    return _apply("kaiming_normal_", tensor, fill, dtype, seed, stream, generator)


@_documented
def orthogonal_(tensor, gain=1, generator=None, *, seed=None, stream=0):
    """A Haar-distributed (semi-)orthogonal matrix times ``gain``, like ``torch.nn.init.orthogonal_``,
    without a QR - and in bfloat16 too, where torch's fails.

    torch's semantics: the tensor is seen as a (rows, cols) matrix with rows = tensor.size(0) and
    cols = numel // rows; it has orthonormal columns when rows >= cols, orthonormal rows otherwise.
    With an int ``seed``, equal to ``warpinit.orthogonal((rows, cols), gain=gain, dtype=..., seed=seed,
    stream=stream).reshape(tensor.shape)`` (note that ``warpinit.orthogonal`` itself follows Keras's
    flattening, rows = prod(shape[:-1])). 16-bit results are computed in float32 and rounded.

    Args:
        tensor: a floating tensor with at least 2 dimensions.
        gain: finite real multiplier.
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: fewer than 2 dimensions (torch's message), a non-finite gain, bad seed or stream.
        TypeError: as in ``uniform_``.
        MemoryError: the matrix and its workspace do not fit in memory.
    """
    dtype = _torch_tensors.dtype_of("orthogonal_", tensor)
    fill = _orthogonal_fill("orthogonal_", tuple(tensor.shape), dtype, gain)
    return _apply("orthogonal_", tensor, fill, dtype, seed, stream, generator)


@_documented
def sparse_(tensor, sparsity, std=0.01, generator=None, *, seed=None, stream=0):
    """A sparse matrix as Martens (2010) initializes one, like ``torch.nn.init.sparse_``: N(0, std**2)
    values with ``ceil(sparsity * rows)`` zeros in each column, at rows chosen uniformly at random
    (a different choice per column).

    Both the values and the zeroed positions come from warpinit's seed (torch's own ``sparse_`` takes
    the positions from torch's global generator whatever ``generator`` is). With an int ``seed`` the
    non-zero entries equal those of ``normal_(tensor, 0.0, std, seed=seed, stream=stream)``, and the
    zeros of column j sit at the ``ceil(sparsity * rows)`` rows whose entries of column j of
    ``warpinit.uniform((rows, cols), dtype="float64", seed=derive_seed(seed, 0x5350415253455F5F),
    stream=stream)`` are the smallest (``warpinit.kernels.philox.derive_seed``; the tag is "SPARSE__"
    in ASCII; ties, two equal 53-bit uniforms, go to the lower row). ``seed=None`` draws one seed
    from ``generator`` for both.

    Args:
        tensor: a floating tensor with exactly 2 dimensions (rows, cols).
        sparsity: the fraction of each column set to zero, a real in [0, 1] (torch accepts values
            outside and then zeroes rows by slicing rules; warpinit refuses them).
        std: finite real >= 0, the standard deviation of the non-zero values (0 gives zeros).
        {seed_args}

    Returns:
        ``tensor``, filled in place.

    Raises:
        ValueError: not 2 dimensions (torch's message), sparsity outside [0, 1], std < 0, a std that
            rounds to 0 in the dtype, bad seed or stream, both ``seed`` and ``generator``.
        TypeError: as in ``normal_``.
    """
    dtype = _torch_tensors.dtype_of("sparse_", tensor)
    fill = _sparse_fill("sparse_", tuple(tensor.shape), dtype, sparsity, std)
    return _apply("sparse_", tensor, fill, dtype, seed, stream, generator)


# Each function and its translation into a Fill: fn(function name, shape, dtype, *arguments).
BUILDERS = {
    uniform_: _uniform_fill,
    normal_: _normal_fill,
    trunc_normal_: _trunc_normal_fill,
    xavier_uniform_: _xavier_uniform_fill,
    xavier_normal_: _xavier_normal_fill,
    kaiming_uniform_: _kaiming_uniform_fill,
    kaiming_normal_: _kaiming_normal_fill,
    orthogonal_: _orthogonal_fill,
    sparse_: _sparse_fill,
}
NAMES = {function.__name__.rstrip("_"): function for function in BUILDERS}


# torch's deprecated names --------------------------------------------------------------------------


def _deprecated(function):
    """torch's alias without the underscore: warns as torch does (same class and text, at the
    caller), then calls ``function`` with the same arguments (``seed=``/``stream=`` included)."""
    new_name = function.__name__
    old_name = new_name[:-1]

    def alias(*args, **kwargs):
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.", FutureWarning,
                      stacklevel=2)
        return function(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = old_name
    alias.__doc__ = f"""{old_name}(...): deprecated, as in torch; use ``{new_name}`` (see its docstring).

    Warns:
        FutureWarning: torch's "`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`."
    """
    return alias


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
# Deterministic: torch's own aliases.
constant = torch.nn.init.constant
eye = torch.nn.init.eye
dirac = torch.nn.init.dirac
