"""warpinit: fast, reproducible initial weights for very large models.

Counter-based Philox4x32-10 samplers on the CPU (Numba) and on CUDA GPUs (numba-cuda, CuPy arrays),
exposed as a framework-neutral array API. ``import warpinit`` compiles nothing: kernels compile on
first use and are cached.
"""

from ._orthogonal import orthogonal as orthogonal
from ._sampling import normal as normal
from ._sampling import truncated_normal as truncated_normal
from ._sampling import uniform as uniform

__version__ = "0.1.0"

__all__ = ["normal", "orthogonal", "truncated_normal", "uniform", "__version__"]
