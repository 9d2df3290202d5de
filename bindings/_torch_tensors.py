"""torch tensors as warpinit fills them: dtypes, devices, views of their memory, seeds from torch.

CPU tensors are filled through a NumPy view of their storage, CUDA tensors through a CuPy view
(DLPack) on torch's current stream, tensors on other devices (MPS, XPU, ...) through a CPU array
that is then copied over; meta tensors have no memory to fill. bfloat16 travels as int16 bits
(neither NumPy nor DLPack carries torch's bfloat16 portably). A DTensor is filled through its local
tensor with the part of the global tensor this process holds (``_torch_dtensors``).
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import numpy as np
import torch

from . import _devices, _distributions, _torch_dtensors, _whole_model

FLOATS = {
    torch.float16: "float16",
    torch.bfloat16: "bfloat16",
    torch.float32: "float32",
    torch.float64: "float64",
}


class Fill(NamedTuple):
    """What one call writes into a tensor: ``distribution`` (a ``_distributions.Distribution``, or None
    when there is nothing to draw: an empty tensor) over ``shape``, the shape generated - the
    tensor's, or (rows, cols) for orthogonal (torch's flattening: rows = size(0))."""

    distribution: object
    shape: tuple


def dtype_of(function: str, tensor) -> np.dtype:
    """warpinit's NumPy dtype for a floating torch tensor; TypeError for anything else."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{function}: tensor must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.layout != torch.strided:
        raise TypeError(f"{function}: tensor must be a dense (strided) tensor, got layout {tensor.layout}")
    if tensor.dtype not in FLOATS:
        raise TypeError(
            f"{function}: tensor must have dtype torch.float16, torch.bfloat16, torch.float32 or "
            f"torch.float64, got {tensor.dtype}"
        )
    return _distributions.numpy_dtype(FLOATS[tensor.dtype])


def check_generator(function: str, seed, generator) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"{function}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    if seed is not None and generator is not None:
        raise ValueError(f"{function}: pass seed= or generator=, not both (got seed={seed!r} and a generator)")


def draw_seed(generator=None) -> int:
    """A 64-bit seed from torch's generator (``generator``, or torch's default CPU generator)."""
    generator = torch.default_generator if generator is None else generator
    words = torch.randint(0, 2**32, (2,), dtype=torch.int64, generator=generator, device=generator.device)
    low, high = (int(word) for word in words.tolist())
    return (high << 32) | low


def device_kind(device: torch.device) -> str:
    """'cpu', 'cuda', 'meta', or 'host' for devices warpinit cannot fill directly (generate on the CPU)."""
    return device.type if device.type in ("cpu", "cuda", "meta") else "host"


def compute_device(device: torch.device) -> str:
    """The warpinit device that generates the values of a tensor on ``device``."""
    return "cuda" if device.type == "cuda" else "cpu"


@contextlib.contextmanager
def on_device(function: str, device: torch.device):
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


def view(tensor, dtype: np.dtype):
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


def as_tensor(array):
    """A torch tensor sharing ``array``'s memory (NumPy or CuPy; bfloat16 through an int16 view)."""
    bfloat16 = array.dtype == _distributions.numpy_dtype("bfloat16")
    if isinstance(array, np.ndarray):
        tensor = torch.from_numpy(array.view(np.int16) if bfloat16 else array)
    else:
        tensor = torch.from_dlpack(array.view("int16") if bfloat16 else array)
    return tensor.view(torch.bfloat16) if bfloat16 else tensor


def direct_view(tensor, dtype: np.dtype):
    """A writable array over ``tensor``'s own memory when warpinit can fill it in place (contiguous,
    on the CPU or a CUDA GPU), else None."""
    if device_kind(tensor.device) in ("cpu", "cuda") and tensor.is_contiguous():
        return view(tensor, dtype)
    return None


def write(tensor, values) -> None:
    """Copy ``values`` (NumPy or CuPy, the tensor's element count) into ``tensor``, any layout or device."""
    tensor.copy_(as_tensor(values).reshape(tensor.shape))


def fill(function: str, tensor, fill_: Fill, dtype: np.dtype, keys) -> None:
    """Fill one tensor with ``fill_``, drawn with the one-row key table ``keys`` (ignored for
    constants); a DTensor (or a selection of one) gets the part of the global tensor it holds here."""
    part = _torch_dtensors.part(function, tensor)  # ValueError for a placement warpinit does not draw
    target = _torch_dtensors.local(tensor).detach()
    distribution = fill_.distribution
    if distribution is None or target.is_meta or target.numel() == 0:
        return
    if distribution.kind == "constant":
        target.fill_(distribution.params[0])
    else:
        device = compute_device(target.device)
        with on_device(function, target.device):
            _devices.check_memory(function, device,
                                  _distributions.workspace_bytes(distribution, fill_.shape, dtype, 1, part))
            direct = direct_view(target, dtype)
            if part is not None:
                values = _distributions.generate_part(distribution, fill_.shape, dtype, keys, device, part,
                                                      None if direct is None else direct.reshape(part.out_shape))
                if direct is None:
                    write(target, values)
            elif direct is not None:
                _distributions.generate(distribution, fill_.shape, dtype, keys, device,
                                        direct.reshape(1, *fill_.shape))
            else:
                write(target, _distributions.generate(distribution, fill_.shape, dtype, keys, device)[0])
    torch.autograd.graph.increment_version(tensor)  # in-place: autograd sees the tensor changed


class Adapter(_whole_model.Adapter):
    """The whole-model engine's hand-over for torch: a tensor is filled in its own storage where
    warpinit can write it (contiguous, CPU or CUDA), else from a fresh array copied in; a DTensor's
    request carries its part, written into its local tensor."""

    def __init__(self, function: str):
        self.function = function

    def compute(self, device) -> str:
        return compute_device(device)

    def device_context(self, device):
        return on_device(self.function, device)

    def destination(self, request):
        direct = direct_view(_torch_dtensors.local(request.target).detach(), request.dtype)
        if direct is not None:
            return None, direct.reshape(request.out_shape)
        array = _devices.empty(self.compute(request.device), request.out_shape, request.dtype)
        return array, array

    def install(self, request, handle):
        if handle is not None:
            write(_torch_dtensors.local(request.target).detach(), handle)
        torch.autograd.graph.increment_version(request.target)
