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

DTensors (``torch.distributed.tensor``: FSDP2, tensor parallelism) are filled through their local
tensors: each process draws only the part of the global tensor it holds, so the gathered tensor equals
the single-process draw bit for bit, with no communication - for the functions here, ``fast_init``
and ``initialize``.

Distributions follow torch.nn.init (fans, gains, bounds) with one strengthening: ``trunc_normal_`` is
exact rejection sampling of the normal conditioned on [a, b] (after rounding to the tensor's dtype),
whatever the bounds.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401  (the clear error below when PyTorch is missing)
except ImportError as error:  # pragma: no cover - exercised only without PyTorch
    raise ImportError("warpinit.torch needs PyTorch: pip install 'warpinit[torch]'") from error

from ._torch_init import calculate_gain as calculate_gain
from ._torch_init import constant as constant
from ._torch_init import constant_ as constant_
from ._torch_init import dirac as dirac
from ._torch_init import dirac_ as dirac_
from ._torch_init import eye as eye
from ._torch_init import eye_ as eye_
from ._torch_init import kaiming_normal as kaiming_normal
from ._torch_init import kaiming_uniform as kaiming_uniform
from ._torch_init import normal as normal
from ._torch_init import orthogonal as orthogonal
from ._torch_init import sparse as sparse
from ._torch_init import sparse_ as sparse_
from ._torch_init import uniform as uniform
from ._torch_init import xavier_normal as xavier_normal
from ._torch_init import xavier_uniform as xavier_uniform
from ._torch_init import kaiming_normal_ as kaiming_normal_
from ._torch_init import kaiming_uniform_ as kaiming_uniform_
from ._torch_init import normal_ as normal_
from ._torch_init import ones_ as ones_
from ._torch_init import orthogonal_ as orthogonal_
from ._torch_init import trunc_normal_ as trunc_normal_
from ._torch_init import uniform_ as uniform_
from ._torch_init import xavier_normal_ as xavier_normal_
from ._torch_init import xavier_uniform_ as xavier_uniform_
from ._torch_init import zeros_ as zeros_
from ._torch_fast_init import fast_init as fast_init
from ._torch_modules import empty_init as empty_init
from ._torch_modules import initialize as initialize
from ._torch_modules import parameter_seed as parameter_seed

__all__ = [
    "calculate_gain", "constant_", "empty_init", "fast_init", "initialize", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "orthogonal_", "parameter_seed", "trunc_normal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]
# torch.nn.init's other names: the sparse matrices, the deterministic eye_ and dirac_, and torch's
# deprecated names without the underscore (they warn as torch's do).
__all__ += [
    "constant", "dirac", "dirac_", "eye", "eye_", "kaiming_normal", "kaiming_uniform", "normal", "orthogonal",
    "sparse", "sparse_", "uniform", "xavier_normal", "xavier_uniform",
]
