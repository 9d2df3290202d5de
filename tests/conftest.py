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

# Keras fixes its backend per process: this process uses the numpy backend (light, no framework
# import); tests/keras_backends runs in one subprocess per backend (test_keras.py starts them).
os.environ.setdefault("KERAS_BACKEND", "numpy")

collect_ignore_glob = []
if "WARPINIT_CUDA_TESTS" not in os.environ:
    collect_ignore_glob.append("cuda_kernels/*")
if "WARPINIT_KERAS_BACKEND_TESTS" not in os.environ:
    collect_ignore_glob.append("keras_backends/*")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return TESTS / "data"
