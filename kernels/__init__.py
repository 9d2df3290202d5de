"""warpinit's engine: Philox4x32, samplers and their CPU (Numba) and CUDA (numba-cuda) kernels.

Kernels know nothing of frameworks; they fill NumPy arrays or CUDA device arrays. The counter
contract is documented in ``warpinit.kernels.philox``.
"""

from . import threads as _threads
from .philox import derive_seed as derive_seed
from .philox import philox4x32_array as philox4x32

# Before any kernel module can start Numba's threads (see threads.py).
_threads.configure()

__all__ = ["derive_seed", "philox4x32"]
