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

__all__ = ["check_gpu_failures", "normal", "orthogonal", "truncated_normal", "uniform", "__version__"]


def check_gpu_failures(wait: bool = True) -> None:
    """Raise the failures of warpinit's GPU fills so far, as the CPU raises them at the call.

    A GPU fill returns without synchronising, so an element that finds no value within its bounds
    (only an interval that no candidate rounds into, see ``warpinit.kernels.fill_cpu``) cannot raise
    at the call: it is left NaN and counted in host-mapped memory, and the next warpinit GPU call
    raises once the failed kernel has finished. This function raises it now.

    Args:
        wait: wait for every warpinit kernel launched so far (synchronises with their streams);
            False: only read the launches already finished, without synchronising.

    Raises:
        RuntimeError: elements of a GPU fill found no value within the bounds (each failure is
            raised once).
    """
    from .kernels import fill_cuda

    fill_cuda.check_failures(wait=wait)
