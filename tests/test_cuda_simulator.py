"""Run tests/cuda_kernels in a fresh process with Numba's CUDA simulator switched on before numba.cuda loads.

NumPy overflow warnings are errors there: the shared math keeps 32-bit words in uint64 so that the
simulator, which runs it on NumPy scalars, never overflows."""

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent


def test_cuda_kernels_in_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", WARPINIT_CUDA_TESTS="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::RuntimeWarning",
         str(TESTS / "cuda_kernels")],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
