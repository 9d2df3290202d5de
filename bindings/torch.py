"""PyTorch face: ``torch.nn.init``'s random initializers filled by warpinit's kernels, and whole-module
batched (re)initialization, meta-device modules included.

In-place functions with torch.nn.init's names, signatures and defaults, plus keyword-only ``seed=``
and ``stream=``::

    import warpinit.torch as init

    init.trunc_normal_(layer.weight, std=0.02, a=-0.04, b=0.04, seed=7)  # same values on every call
    init.orthogonal_(layer.weight)                    # works in bfloat16, unlike torch's
    seed = init.initialize(model, seed=0)             # every Linear/Conv/Embedding/... at once, as
                                                      # their reset_parameters() would
    init.initialize(model, 0, weight=functools.partial(init.trunc_normal_, std=0.02, a=-0.04, b=0.04),
                    bias=0.0)                         # or with the initializers of your choice

Devices: CPU tensors are filled in place from the CPU kernels (through a NumPy view of their storage;
a non-contiguous tensor gets a contiguous copy that is then copied in). CUDA tensors are filled on
their GPU, on torch's current stream, through DLPack without leaving the device (needs CuPy:
``pip install 'warpinit[cuda13]'``). Tensors on other devices (MPS, XPU, ...) are generated on the CPU
and copied over. Meta tensors are left alone (a no-op, as in torch). Supported dtypes: float16,
bfloat16, float32 and float64.

Seeds: ``seed=int`` in [0, 2**64) gives the same values on every call, on every device (within the
"same values" tolerance between CPU and GPU), and equals warpinit's array API: for example
``normal_(t, 0.0, 2.0, seed=s, stream=j)`` holds ``warpinit.normal(t.shape, stddev=2.0, seed=s,
stream=j, dtype=...)``. ``seed=None`` draws a fresh 64-bit seed from torch's random number generator
(the ``generator`` argument, or torch's default CPU generator, also for CUDA tensors), so
``torch.manual_seed(0)`` makes a script's initialization reproducible, as it does for torch.nn.init -
though the values are warpinit's, not the ones torch would draw. Each such call advances the
generator.

Distributions follow torch.nn.init (fans, gains, bounds) with one strengthening: ``trunc_normal_`` is
exact rejection sampling of the normal conditioned on [a, b] (after rounding to the tensor's dtype),
whatever the bounds.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import re
import textwrap
import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

try:
    import torch
except ImportError as error:  # pragma: no cover - exercised only without PyTorch
    raise ImportError("warpinit.torch needs PyTorch: pip install 'warpinit[torch]'") from error

from . import _args, _devices, _distributions, _progress, _seeds

__all__ = [
    "calculate_gain", "constant_", "initialize", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "orthogonal_", "parameter_seed", "trunc_normal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]

# Re-exported unchanged: constant fills need no random numbers.
constant_ = torch.nn.init.constant_
zeros_ = torch.nn.init.zeros_
ones_ = torch.nn.init.ones_

_FLOATS = {
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
}


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


# What a call draws: a distribution for a shape --------------------------------------------------


class _Spec(NamedTuple):
    """The distribution one tensor is drawn from.

    kind: "uniform" (a, b), "normal" (mean, std), "truncated_normal" (mean, std, lower, upper; bounds in
    standard deviations), "orthogonal" (gain,), "constant" (value,) or "skip" (nothing to draw).
    shape: the shape generated - the tensor's, or (rows, cols) for orthogonal (torch's flattening).
    """

    kind: str
    params: tuple
    shape: tuple


def _skip(shape) -> _Spec:
    return _Spec("skip", (), tuple(shape))


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


def _fans(shape) -> tuple[int, int]:
    """torch.nn.init's (fan_in, fan_out), with its error for fewer than two dimensions."""
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _uniform_spec(function, shape, dtype, a=0.0, b=1.0) -> _Spec:
    from warpinit.kernels import plan

    a, b = _real(function, "a", a), _real(function, "b", b)
    if a > b:
        raise ValueError(f"{function}: a must be <= b, got a={a!r}, b={b!r}")
    if a == b:
        return _Spec("constant", (a,), shape)  # torch fills a
    _checked(function, plan.uniform, a, b, dtype)
    return _Spec("uniform", (a, b), shape)


def _normal_spec(function, shape, dtype, mean=0.0, std=1.0) -> _Spec:
    from warpinit.kernels import plan

    mean, std = _real(function, "mean", mean), _real(function, "std", std)
    if std < 0.0:
        raise ValueError(f"{function}: std must be >= 0, got {std!r}")
    if std == 0.0:
        return _Spec("constant", (mean,), shape)  # torch fills mean
    _checked(function, plan.normal, mean, std, dtype)
    return _Spec("normal", (mean, std), shape)


def _trunc_normal_spec(function, shape, dtype, mean=0.0, std=1.0, a=-2.0, b=2.0) -> _Spec:
    from warpinit.kernels import plan

    mean, std = _real(function, "mean", mean), _real(function, "std", std)
    a, b = _real(function, "a", a, finite=False), _real(function, "b", b, finite=False)
    if not std > 0.0:
        raise ValueError(f"{function}: std must be > 0, got {std!r}")
    if not a < b:
        raise ValueError(f"{function}: a must be < b, got a={a!r}, b={b!r}")
    lower, upper = _sigmas(mean, std, a, b)
    _checked(function, plan.truncated_normal, mean, std, lower, upper, dtype)
    return _Spec("truncated_normal", (mean, std, lower, upper), shape)


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
    fan_in, fan_out = _fans(shape)
    gain = _real(function, "gain", gain)
    if gain < 0.0:
        raise ValueError(f"{function}: gain must be >= 0, got {gain!r}")
    if fan_in + fan_out == 0:
        return None  # an empty tensor
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def _xavier_uniform_spec(function, shape, dtype, gain=1.0) -> _Spec:
    std = _xavier_std(function, shape, gain)
    if std is None:
        return _skip(shape)
    bound = math.sqrt(3.0) * std
    return _uniform_spec(function, shape, dtype, -bound, bound)


def _xavier_normal_spec(function, shape, dtype, gain=1.0) -> _Spec:
    std = _xavier_std(function, shape, gain)
    if std is None:
        return _skip(shape)
    return _normal_spec(function, shape, dtype, 0.0, std)


def _kaiming_std(function, shape, a, mode, nonlinearity) -> float | None:
    if 0 in shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=4)
        return None
    valid_modes = ["fan_in", "fan_out"]
    lowered = mode.lower() if isinstance(mode, str) else mode
    if lowered not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _fans(shape)
    fan = fan_in if lowered == "fan_in" else fan_out
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


def _kaiming_uniform_spec(function, shape, dtype, a=0, mode="fan_in", nonlinearity="leaky_relu") -> _Spec:
    std = _kaiming_std(function, shape, a, mode, nonlinearity)
    if std is None:
        return _skip(shape)
    bound = math.sqrt(3.0) * std
    return _uniform_spec(function, shape, dtype, -bound, bound)


def _kaiming_normal_spec(function, shape, dtype, a=0, mode="fan_in", nonlinearity="leaky_relu") -> _Spec:
    std = _kaiming_std(function, shape, a, mode, nonlinearity)
    if std is None:
        return _skip(shape)
    return _normal_spec(function, shape, dtype, 0.0, std)


def _orthogonal_spec(function, shape, dtype, gain=1) -> _Spec:
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    gain = _args.representable(function, "gain", _real(function, "gain", gain), dtype)
    if math.prod(shape) == 0:
        return _skip(shape)
    rows = shape[0]
    return _Spec("orthogonal", (gain,), (rows, math.prod(shape) // rows))


# Tensors, seeds and devices -------------------------------------------------------------------------


def _dtype_of(function: str, tensor) -> np.dtype:
    """warpinit's NumPy dtype for a floating torch tensor; TypeError for anything else."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{function}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.layout != torch.strided:
        raise TypeError(f"{function}: tensor must be a dense (strided) tensor, got layout {tensor.layout}")
    if tensor.dtype not in _FLOATS:
        raise TypeError(
            f"{function}: tensor must have dtype torch.float16, torch.bfloat16, torch.float32 or "
            f"torch.float64, got {tensor.dtype}"
        )
    return _distributions.numpy_dtype(_FLOATS[tensor.dtype])


def _check_generator(function: str, seed, generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{function}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if seed is not None and generator is not None:
        raise ValueError(f"{function}: pass seed= or generator=, not both (got seed={seed!r} and a generator)")


def _draw_seed(generator) -> int:
    """A 64-bit seed from torch's generator (``generator``, or torch's default CPU generator)."""
    generator = torch.default_generator if generator is None else generator
    words = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=generator, device=generator.device)
    low, high = (int(word) for word in words.tolist())
    return (high << 32) | low


def parameter_seed(seed: int, name: str) -> int:
    """The seed ``initialize(module, seed)`` draws the parameter of qualified name ``name`` from.

    ``derive_seed(seed, tag(name))`` (Philox-mixed, see ``warpinit.kernels.philox``): for example
    ``kaiming_uniform_(w, a=math.sqrt(5), seed=parameter_seed(s, "0.weight"))`` reproduces the weight
    of an ``nn.Linear`` at index 0 of a Sequential initialized with ``initialize(model, s)``.

    Args:
        seed: the module seed, int in [0, 2**64).
        name: the qualified parameter name, as ``module.named_parameters()`` gives it.
    """
    from warpinit.kernels.philox import derive_seed

    if seed is None:
        raise TypeError("parameter_seed: seed must be an int in [0, 2**64), got None")
    if not isinstance(name, str):
        raise TypeError(f"parameter_seed: name must be a str, got {type(name).__name__}: {name!r}")
    return derive_seed(_args.seed("parameter_seed", seed, None), _seeds.path_tag(name))


def _device_kind(device: torch.device) -> str:
    """'cpu', 'cuda', 'meta', or 'host' for devices warpinit cannot fill directly (generate on the CPU)."""
    return device.type if device.type in ("cpu", "cuda", "meta") else "host"


@contextlib.contextmanager
def _on(function: str, device: torch.device):
    """Run warpinit's CUDA kernels on ``device`` and torch's current stream there (a no-op off CUDA)."""
    if device.type != "cuda":
        yield
        return
    _devices.resolve(function, "cuda")  # RuntimeError naming the pip install when CuPy is unusable
    import cupy

    index = device.index if device.index is not None else torch.cuda.current_device()
    stream = torch.cuda.current_stream(index)
    with cupy.cuda.Device(index), cupy.cuda.ExternalStream(stream.cuda_stream, index):
        yield


def _view(tensor, dtype: np.dtype):
    """A NumPy (CPU) or CuPy (CUDA) array sharing a contiguous tensor's memory, of warpinit's dtype."""
    bfloat16 = tensor.dtype == torch.bfloat16
    source = tensor.view(torch.int16) if bfloat16 else tensor  # no NumPy/DLPack-portable bfloat16
    if tensor.device.type == "cpu":
        array = source.numpy()
    else:
        import cupy

        array = cupy.from_dlpack(source)
    if not bfloat16:
        return array
    try:
        return array.view(dtype)
    except (TypeError, ValueError) as error:  # CuPy before 14
        raise TypeError("CuPy cannot hold bfloat16 arrays (bfloat16 needs CuPy >= 14 with ml_dtypes)") from error


def _as_tensor(array):
    """A torch tensor sharing ``array``'s memory (NumPy or CuPy; bfloat16 through an int16 view)."""
    bfloat16 = array.dtype == _distributions.numpy_dtype("bfloat16")
    if isinstance(array, np.ndarray):
        tensor = torch.from_numpy(array.view(np.int16) if bfloat16 else array)
    else:
        tensor = torch.from_dlpack(array.view("int16") if bfloat16 else array)
    return tensor.view(torch.bfloat16) if bfloat16 else tensor


def _generate(spec: _Spec, dtype: np.dtype, keys, device: str, result=None):
    """``result`` (K, *spec.shape) filled with K tensors of ``spec``, member k from row k of ``keys``."""
    return _distributions.generate(spec.kind, spec.params, spec.shape, dtype, keys, device, result)


def _bytes_needed(spec: _Spec, dtype: np.dtype, count: int) -> int:
    if spec.kind == "orthogonal":
        from . import _orthogonal

        return _orthogonal.workspace_bytes(spec.shape, dtype, count)
    return count * math.prod(spec.shape) * dtype.itemsize


def _fill(function: str, tensor, spec: _Spec, dtype: np.dtype, keys) -> None:
    """Fill one tensor with ``spec`` drawn with the one-row key table ``keys``."""
    target = tensor.detach()
    kind = _device_kind(target.device)
    if spec.kind == "skip" or kind == "meta" or target.numel() == 0:
        return
    if spec.kind == "constant":
        target.fill_(spec.params[0])
    elif kind != "host" and target.is_contiguous():
        with _on(function, target.device):
            if spec.kind == "orthogonal":
                _devices.check_memory(function, kind, _bytes_needed(spec, dtype, 1))
            _generate(spec, dtype, keys, kind, _view(target, dtype).reshape(1, *spec.shape))
    else:
        device = "cuda" if kind == "cuda" else "cpu"
        with _on(function, target.device):
            _devices.check_memory(function, device, _bytes_needed(spec, dtype, 1))
            values = _generate(spec, dtype, keys, device)
            target.copy_(_as_tensor(values[0]).reshape(target.shape))
    torch.autograd.graph.increment_version(tensor)  # in-place: autograd sees the tensor changed


def _apply(function: str, tensor, spec: _Spec, dtype: np.dtype, seed, stream, generator):
    """Validate the seed arguments, then fill ``tensor`` (nothing is drawn for no-ops)."""
    _check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    stream = _args.stream(function, stream)
    if spec.kind in ("skip", "constant") or tensor.is_meta or tensor.numel() == 0:
        _fill(function, tensor, spec, dtype, None)
        return tensor
    from warpinit.kernels.philox import key_table

    seed = _draw_seed(generator) if seed is None else seed
    _fill(function, tensor, spec, dtype, key_table(seed, stream))
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
    dtype = _dtype_of("uniform_", tensor)
    spec = _uniform_spec("uniform_", tuple(tensor.shape), dtype, a, b)
    return _apply("uniform_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("normal_", tensor)
    spec = _normal_spec("normal_", tuple(tensor.shape), dtype, mean, std)
    return _apply("normal_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("trunc_normal_", tensor)
    spec = _trunc_normal_spec("trunc_normal_", tuple(tensor.shape), dtype, mean, std, a, b)
    return _apply("trunc_normal_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("xavier_uniform_", tensor)
    spec = _xavier_uniform_spec("xavier_uniform_", tuple(tensor.shape), dtype, gain)
    return _apply("xavier_uniform_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("xavier_normal_", tensor)
    spec = _xavier_normal_spec("xavier_normal_", tuple(tensor.shape), dtype, gain)
    return _apply("xavier_normal_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("kaiming_uniform_", tensor)
    spec = _kaiming_uniform_spec("kaiming_uniform_", tuple(tensor.shape), dtype, a, mode, nonlinearity)
    return _apply("kaiming_uniform_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("kaiming_normal_", tensor)
    spec = _kaiming_normal_spec("kaiming_normal_", tuple(tensor.shape), dtype, a, mode, nonlinearity)
    return _apply("kaiming_normal_", tensor, spec, dtype, seed, stream, generator)


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
    dtype = _dtype_of("orthogonal_", tensor)
    spec = _orthogonal_spec("orthogonal_", tuple(tensor.shape), dtype, gain)
    return _apply("orthogonal_", tensor, spec, dtype, seed, stream, generator)


_BUILDERS = {
    uniform_: _uniform_spec,
    normal_: _normal_spec,
    trunc_normal_: _trunc_normal_spec,
    xavier_uniform_: _xavier_uniform_spec,
    xavier_normal_: _xavier_normal_spec,
    kaiming_uniform_: _kaiming_uniform_spec,
    kaiming_normal_: _kaiming_normal_spec,
    orthogonal_: _orthogonal_spec,
}
_NAMES = {function.__name__.rstrip("_"): function for function in _BUILDERS}


# Whole modules ------------------------------------------------------------------------------------

# At most this much is generated at once into a scratch buffer shared by a group's small parameters.
GROUP_BYTES = 64 << 20
# Parameters at least this large are drawn straight into their own storage (no scratch, no copy).
DIRECT_BYTES = 1 << 20


class _Initializer(NamedTuple):
    """A resolved ``weight=``/``bias=`` choice: "spec" (one of this module's functions with its
    arguments), "constant" (value) or "callable" (any fn(tensor), called as is)."""

    how: str
    function: object = None
    arguments: tuple = ()

    def spec(self, name: str, shape, dtype) -> _Spec:
        if self.how == "constant":
            return _Spec("constant", (self.function,), tuple(shape))
        function = self.function.__name__
        try:
            return _BUILDERS[self.function](function, tuple(shape), dtype, **dict(self.arguments))
        except (TypeError, ValueError) as error:
            raise type(error)(f"initialize: parameter {name!r}: {error}") from None


def _resolve(role: str, value) -> _Initializer:
    """One initializer: a name, one of this module's functions (or a functools.partial of one), a
    number (a constant) or any other callable."""
    if isinstance(value, str):
        function = _NAMES.get(value.rstrip("_"))
        if function is None:
            raise ValueError(f"initialize: unknown {role} initializer {value!r}; use one of {sorted(_NAMES)}, a "
                             "function of warpinit.torch (or a functools.partial of one), a number or a callable")
        return _Initializer("spec", function)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"initialize: {role} must be an initializer, got {value!r}")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _Initializer("constant", float(value))
    function, args, keywords = value, (), {}
    if isinstance(value, functools.partial):
        function, args, keywords = value.func, value.args, value.keywords
    if any(function is known for known in _BUILDERS):
        try:
            bound = inspect.signature(function).bind(None, *args, **keywords)
        except TypeError as error:
            raise TypeError(f"initialize: {role}={value!r} does not fit {function.__name__}: {error}") from None
        arguments = dict(bound.arguments)  # the arguments given, without the defaults
        arguments.pop("tensor")
        for fixed in ("generator", "seed", "stream"):
            if fixed in arguments and not (fixed == "generator" and arguments[fixed] is None):
                raise ValueError(f"initialize: {role}={value!r} fixes {fixed}=; initialize draws every parameter "
                                 "from its own seed (parameter_seed)")
        return _Initializer("spec", function, tuple(arguments.items()))
    if callable(value):
        return _Initializer("callable", value)
    raise TypeError(f"initialize: {role} must be a name, a function, a number or a mapping, got "
                    f"{type(value).__name__}: {value!r}")


def _choice(role: str, value):
    """None, one _Initializer, or a tuple of (module class, _Initializer) for a mapping."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        pairs = []
        for cls, initializer in value.items():
            if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
                raise TypeError(f"initialize: the keys of {role}= must be torch.nn.Module classes, got {cls!r}")
            pairs.append((cls, _resolve(role, initializer)))
        return tuple(pairs)
    return _resolve(role, value)


def _chosen(choice, owner):
    if choice is None or isinstance(choice, _Initializer):
        return choice
    for cls, initializer in choice:
        if isinstance(owner, cls):
            return initializer
    return None


def _stock(module, cls, method="reset_parameters") -> bool:
    """Whether ``module`` is a ``cls`` that initializes itself with ``cls``'s own method."""
    return isinstance(module, cls) and getattr(type(module), method, None) is getattr(cls, method)


def _default(function, **arguments) -> _Initializer:
    return _Initializer("spec", function, tuple(arguments.items()))


_KAIMING_SQRT5 = _default(kaiming_uniform_, a=math.sqrt(5))


def _fan_in_bound(weight) -> float:
    fan_in, _ = _fans(tuple(weight.shape))
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


def _rules(module):
    """The parameters a module's own ``reset_parameters`` initializes, as
    (owner, attribute, role, default initializer), with the modules it also covers - or None when
    warpinit does not know the module's initialization."""
    nn = torch.nn
    if _stock(module, nn.Linear) or _stock(module, nn.modules.conv._ConvNd):
        bound = _fan_in_bound(module.weight)
        return [(module, "weight", "weight", _KAIMING_SQRT5),
                (module, "bias", "bias", _default(uniform_, a=-bound, b=bound))], ()
    if _stock(module, nn.Bilinear):
        bound = 1 / math.sqrt(module.weight.size(1)) if module.weight.size(1) > 0 else 0
        uniform = _default(uniform_, a=-bound, b=bound)
        return [(module, "weight", "weight", uniform), (module, "bias", "bias", uniform)], ()
    if _stock(module, nn.Embedding) or _stock(module, nn.EmbeddingBag):
        return [(module, "weight", "weight", _default(normal_))], ()
    if _stock(module, nn.modules.rnn.RNNBase) or _stock(module, nn.modules.rnn.RNNCellBase):
        bound = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
        uniform = _default(uniform_, a=-bound, b=bound)
        return [(module, name, "weight" if name.startswith("weight") else "bias", uniform)
                for name, _ in module.named_parameters(recurse=False)], ()
    if _stock(module, nn.MultiheadAttention, "_reset_parameters"):
        xavier, zero = _default(xavier_uniform_), _Initializer("constant", 0.0)
        out = module.out_proj
        entries = [(module, name, "weight", xavier) for name in ("in_proj_weight", "q_proj_weight",
                                                                   "k_proj_weight", "v_proj_weight")]
        entries += [(module, "in_proj_bias", "bias", zero),
                    (out, "weight", "weight", _KAIMING_SQRT5),
                    (out, "bias", "bias", zero),  # present exactly when in_proj_bias is
                    (module, "bias_k", None, _default(xavier_normal_)),
                    (module, "bias_v", None, _default(xavier_normal_))]
        return entries, (out,)
    return None


class _Entry(NamedTuple):
    name: str  # qualified parameter name: its seed's identity
    owner: object
    attribute: str
    initializer: _Initializer
    spec: _Spec | None  # None for "callable"


def _plan(module, weight, bias):
    """The parameters to fill and how, every argument checked (nothing is touched yet); and the
    modules whose own parameters no rule covers."""
    from torch.nn.utils import parametrize

    entries, seen, claimed, uncovered = [], set(), set(), []
    for prefix, sub in module.named_modules():
        if id(sub) in claimed:
            continue
        rules = _rules(sub)
        if rules is None:
            uncovered.append((prefix, sub))
            continue
        covered, children = rules
        claimed.update(id(child) for child in children)
        for owner, attribute, role, default in covered:
            parameter = owner._parameters.get(attribute)
            if parameter is None or id(parameter) in seen or parametrize.is_parametrized(owner, attribute):
                # absent (bias=False, packed projections), tied (the first owner draws it), or under a
                # torch.nn.utils.parametrize parametrization (its ``original`` is not this distribution's)
                continue
            seen.add(id(parameter))
            local = attribute if owner is sub else f"{_child_name(sub, owner)}.{attribute}"
            name = f"{prefix}.{local}" if prefix else local
            chosen = {"weight": _chosen(weight, owner), "bias": _chosen(bias, owner)}.get(role) or default
            if parameter.dtype not in _FLOATS:
                continue
            dtype = _distributions.numpy_dtype(_FLOATS[parameter.dtype])
            spec = None
            if chosen.how != "callable":
                spec = _skip(parameter.shape) if parameter.numel() == 0 else chosen.spec(name, parameter.shape, dtype)
            entries.append(_Entry(name, owner, attribute, chosen, spec))
    return entries, uncovered


def _child_name(parent, child) -> str:
    for name, module in parent.named_modules():
        if module is child:
            return name
    raise AssertionError("not a submodule")  # pragma: no cover


def _materialize(module, device):
    """Give every meta parameter and buffer storage on ``device`` (uninitialized), keeping ties
    (a tensor shared by several modules stays shared) and the Python attributes set on parameters.

    Returns the modules that held meta tensors of their own, and the ids of the new tensors with
    their qualified names."""
    memo, owners, fresh = {}, [], {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        own = False
        for table, is_parameter in ((sub._parameters, True), (sub._buffers, False)):
            for key, tensor in list(table.items()):
                if tensor is None or not tensor.is_meta:
                    continue
                new = memo.get(id(tensor))
                if new is None:
                    new = torch.empty_like(tensor, device=device)
                    if is_parameter:
                        new = torch.nn.Parameter(new, requires_grad=tensor.requires_grad)
                        new.__dict__.update(tensor.__dict__)
                    memo[id(tensor)] = new
                    fresh[id(new)] = f"{prefix}.{key}" if prefix else key
                setattr(sub, key, new)  # through __setattr__: modules that cache their tensors (RNNs) see it
                own = True
        if own and all(sub is not owner for owner in owners):
            owners.append(sub)
    return owners, fresh


def _target_device(device):
    if device is None:
        device = torch.get_default_device()
        return torch.device("cpu") if device.type == "meta" else device
    try:
        device = torch.device(device)
    except (TypeError, RuntimeError) as error:
        raise ValueError(f"initialize: device must be a torch device, got {device!r}: {error}") from None
    if device.type == "meta":
        raise ValueError("initialize: device must be a real device to materialize meta tensors on, got 'meta'")
    return device


def initialize(module, seed=None, *, weight=None, bias=None, device=None, generator=None, progress=None):
    """(Re)initialize a module's layers in batched kernel launches, the way their ``reset_parameters``
    would, materializing a meta-device module first.

    Covered layers (exactly these classes, or subclasses that keep their ``reset_parameters``):
    ``nn.Linear`` and ``nn.Conv1d/2d/3d``/``nn.ConvTranspose1d/2d/3d`` (weight: kaiming_uniform_ with
    a = sqrt(5), i.e. U(+-1/sqrt(fan_in)); bias: U(+-1/sqrt(fan_in))), ``nn.Bilinear``
    (U(+-1/sqrt(in1_features))), ``nn.Embedding``/``nn.EmbeddingBag`` (N(0, 1), the ``padding_idx``
    row zero), ``nn.RNN/LSTM/GRU`` and their cells (U(+-1/sqrt(hidden_size))) and
    ``nn.MultiheadAttention`` (xavier_uniform_ projections, zero biases, its ``out_proj`` weight as a
    Linear's, xavier_normal_ ``bias_k``/``bias_v``).

    Every covered parameter is drawn from its own seed, ``parameter_seed(seed, name)``, where ``name``
    is its qualified name in ``module.named_parameters()`` (a tied parameter: its first name, drawn
    once, by its first owner): its values depend only on the seed, its name, shape, dtype and
    distribution - not on the other parameters, the grouping, batch sizes or the device (within the
    CPU/GPU tolerance). Parameters with the same distribution, generation shape, dtype and device are
    generated together, at most ``GROUP_BYTES`` at a time into a scratch buffer; parameters of at least
    ``DIRECT_BYTES`` are drawn straight into their own storage.

    Meta-device modules: every meta parameter and buffer gets storage on ``device`` (ties and
    parameter attributes kept, unlike ``module.to_empty``), covered parameters are filled, and every
    other module that held meta tensors runs its own ``reset_parameters()`` (or ``_reset_parameters()``)
    afterwards, children before parents, so LayerNorm, BatchNorm and custom layers are initialized their
    own way (with torch's generator). Tensors that nothing initializes (a module without such a method)
    get a RuntimeWarning naming them. Modules not on the meta device keep their uncovered parameters.

    Args:
        module: a torch.nn.Module, on any device or on the meta device, without uninitialized lazy
            parameters.
        seed: the module seed, int in [0, 2**64); None draws one from ``generator`` (torch's default
            CPU generator by default, so ``torch.manual_seed`` makes it reproducible).
        weight: the initializer of covered weights (Linear, Conv, ConvTranspose, Bilinear, Embedding
            and RNN weights, MultiheadAttention projections) instead of torch's default: one of this
            module's in-place functions, a functools.partial of one with its arguments (for example
            ``functools.partial(trunc_normal_, std=0.02)``; no seed, stream or generator), its name
            ("xavier_uniform", "orthogonal", ... with or without the trailing underscore), a number
            (a constant), or any other callable ``fn(tensor)``, called on each weight after the batched
            fills (its values then come from its own random source, not from ``seed``). A mapping
            ``{module class: initializer}`` chooses per layer type (isinstance of the layer holding the
            parameter, first match); unmatched layers keep their default.
        bias: the same for covered biases (``bias=0.0``: zero biases).
        device: where meta tensors are materialized (default: torch's default device, the CPU unless
            set); only for modules holding meta tensors.
        generator: the torch.Generator ``seed=None`` draws from; not together with ``seed``.
        progress: show a progress bar on stderr; None: when stderr is a terminal and more than 256 MiB
            are drawn.

    Returns:
        The 64-bit module seed used: ``initialize(same architecture, seed=it)`` gives the same values.

    Raises:
        TypeError: ``module`` is not an nn.Module; a bad ``weight``/``bias``/``generator``/seed type.
        ValueError: lazy parameters, a bad seed or device, ``device`` for a module without meta tensors,
            both ``seed`` and ``generator``, or an initializer that does not fit a parameter (named).
        RuntimeError: a CUDA parameter without a usable CuPy.
        All are raised before any tensor is allocated or written.
    """
    from torch.nn.parameter import is_lazy

    function = "initialize"
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{function}: module must be a torch.nn.Module, got {type(module).__name__}")
    _check_generator(function, seed, generator)
    if seed is not None:
        seed = _args.seed(function, seed, None)
    weight, bias = _choice("weight", weight), _choice("bias", bias)
    original = getattr(module, "_orig_mod", None)  # torch.compile's wrapper: the names of the model itself
    if isinstance(original, torch.nn.Module):
        module = original
    tensors = list(module.named_parameters()) + list(module.named_buffers())
    lazy = [name for name, tensor in tensors if is_lazy(tensor)]
    if lazy:
        raise ValueError(f"{function}: the module has uninitialized lazy parameters ({', '.join(lazy)}); run a "
                         "forward pass (or initialize the lazy modules) first")
    has_meta = any(tensor.is_meta for _, tensor in tensors)
    if device is not None and not has_meta:
        raise ValueError(f"{function}: device={device!r} places meta tensors, and this module has none; move it "
                         "with module.to(device)")
    target = _target_device(device) if has_meta else None
    entries, uncovered = _plan(module, weight, bias)
    for entry in entries:
        parameter = entry.owner._parameters[entry.attribute]
        if _device_kind(target if parameter.is_meta else parameter.device) == "cuda":
            _devices.resolve(function, "cuda")
    if seed is None:
        seed = _draw_seed(generator)

    owners, fresh = _materialize(module, target) if has_meta else ([], {})
    from warpinit.kernels.philox import key_table

    groups: dict[tuple, list] = {}
    callables = []
    for entry in entries:
        parameter = entry.owner._parameters[entry.attribute]
        fresh.pop(id(parameter), None)
        if entry.spec is None:
            callables.append((entry.initializer.function, parameter))
            continue
        key = (entry.spec, _FLOATS[parameter.dtype], parameter.device)
        groups.setdefault(key, []).append((entry.name, parameter))

    total = sum(len(members) * math.prod(spec.shape) * _distributions.numpy_dtype(dtype).itemsize
                for (spec, dtype, _), members in groups.items() if spec.kind not in ("skip", "constant"))
    bar = _progress.Bar(total) if (_progress.wanted(total) if progress is None else progress) else None
    try:
        for (spec, dtype, where), members in groups.items():
            _fill_group(spec, _distributions.numpy_dtype(dtype), where, members, seed, key_table, bar)
        with torch.no_grad():
            for initializer, parameter in callables:
                initializer(parameter)
            for _, sub in module.named_modules():
                if (_stock(sub, torch.nn.Embedding) or _stock(sub, torch.nn.EmbeddingBag)) and \
                        sub.padding_idx is not None and not sub.weight.is_meta:
                    sub.weight[sub.padding_idx].fill_(0)
    finally:
        if bar:
            bar.close()

    _reset_uncovered(uncovered, owners, fresh)
    if fresh:
        names = sorted(fresh.values())
        warnings.warn(f"{function}: {len(names)} materialized tensor(s) hold uninitialized memory: no covered layer "
                      f"and no reset_parameters() initializes them: {', '.join(names[:10])}"
                      f"{', ...' if len(names) > 10 else ''}", RuntimeWarning, stacklevel=2)
    return seed


def _fill_group(spec: _Spec, dtype: np.dtype, where, members, seed: int, key_table, bar) -> None:
    """Fill a group's parameters: large ones (or a lone one) straight into their storage, the others
    through a scratch buffer of at most GROUP_BYTES, chunk by chunk."""
    member_bytes = math.prod(spec.shape) * dtype.itemsize
    seeds = [parameter_seed(seed, name) for name, _ in members]
    workspace = _bytes_needed(spec, dtype, 1) if spec.kind not in ("skip", "constant") else member_bytes
    counted = spec.kind not in ("skip", "constant")
    if spec.kind in ("skip", "constant") or len(members) == 1 or member_bytes >= DIRECT_BYTES:
        for (_, parameter), member_seed in zip(members, seeds):
            _fill("initialize", parameter, spec, dtype, key_table(member_seed, 0))
            if bar and counted:
                bar.advance(member_bytes)
        return
    kind = _device_kind(where)
    device = "cuda" if kind == "cuda" else "cpu"
    per_chunk = max(1, GROUP_BYTES // max(1, workspace))  # orthogonal: its workspace counts
    with _on("initialize", where):
        scratch = None
        for first in range(0, len(members), per_chunk):
            chunk = members[first: first + per_chunk]
            if scratch is None:
                _devices.check_memory("initialize", device, _bytes_needed(spec, dtype, len(chunk)))
                scratch = _devices.empty(device, (len(chunk), *spec.shape), dtype)
            values = _generate(spec, dtype, key_table(seeds[first: first + len(chunk)], 0), device,
                               scratch[: len(chunk)])
            source = _as_tensor(values) if kind != "host" else _as_tensor(values).to(where)
            for k, (_, parameter) in enumerate(chunk):
                target = parameter.detach()
                if kind == "cpu" and target.is_contiguous():
                    # NumPy's copy: torch's parallel copy_ right after Numba's parallel kernel stalls
                    # when the two thread pools oversubscribe the cores (milliseconds per tensor)
                    _view(target, dtype).reshape(spec.shape)[...] = values[k]
                else:
                    target.copy_(source[k].reshape(target.shape))
                torch.autograd.graph.increment_version(parameter)
            if bar:
                bar.advance(len(chunk) * member_bytes)
        del scratch


def _reset_uncovered(uncovered, owners, fresh) -> None:
    """Run reset_parameters() (or _reset_parameters()) of the uncovered modules that were materialized,
    descendants before ancestors; what they own counts as initialized."""
    materialized = {id(owner) for owner in owners}
    for _, sub in reversed(uncovered):
        if id(sub) not in materialized:
            continue
        reset = getattr(sub, "reset_parameters", None) or getattr(sub, "_reset_parameters", None)
        if not callable(reset):
            continue
        reset()
        for tensor in list(sub._parameters.values()) + list(sub._buffers.values()):
            if tensor is not None:
                fresh.pop(id(tensor), None)
