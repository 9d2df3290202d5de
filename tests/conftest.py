"""Shared test setup.

tests/cuda_kernels/ holds the CUDA kernel tests. They run in their own process, with Numba's CUDA simulator
(``test_cuda_simulator.py`` starts it) or on a real GPU (bench/gpu_check.sh), because the simulator
must be switched on before ``numba.cuda`` is first imported, and the PTX tests of this process need it
off.
"""

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

if "WARPINIT_CUDA_TESTS" not in os.environ:
    collect_ignore_glob = ["cuda_kernels/*"]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return TESTS / "data"
