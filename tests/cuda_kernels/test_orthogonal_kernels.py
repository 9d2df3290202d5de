"""The orthogonal CUDA kernels, launched directly, against their CPU twins (simulator or real GPU).

The CPU and CUDA kernels share ``householder`` and ``larft_entry`` but accumulate Q in different
orders (blocked rows on the CPU, one column per thread on the GPU), so Q agrees to rounding, not bits.
"""

import numpy as np
import pytest
from numba import cuda

from warpinit.kernels import orthogonal, orthogonal_cuda

TOLERANCE = {np.float32: 1e-6, np.float64: 1e-14}
SHAPES = [(1, 1, 1), (3, 9, 6), (2, 7, 7), (2, 16, 16), (4, 11, 1)]


def _gaussians(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _cpu_small(g):
    g = g.copy()
    tau = np.empty(g.shape[::2], g.dtype)
    q = np.empty_like(g)
    orthogonal.small_from_gaussians_cpu(g, tau, q)
    return g, tau, q


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_small_kernel_matches_cpu(shape, dtype):
    g = _gaussians(shape, dtype)
    v_cpu, tau_cpu, q_cpu = _cpu_small(g)
    d_g, d_tau, d_q = cuda.to_device(g), cuda.to_device(np.empty_like(tau_cpu)), cuda.to_device(np.full_like(g, np.nan))
    orthogonal_cuda.launch_small(d_g, d_tau, d_q)
    np.testing.assert_allclose(d_g.copy_to_host(), v_cpu, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(d_tau.copy_to_host(), tau_cpu, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(d_q.copy_to_host(), q_cpu, atol=TOLERANCE[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reflectors_and_larft_kernels_match_cpu(dtype):
    g = _gaussians((3, 9, 6), dtype, seed=1)
    v_cpu, tau_cpu, _ = _cpu_small(g)
    d_g, d_tau = cuda.to_device(g), cuda.to_device(np.empty_like(tau_cpu))
    orthogonal_cuda.launch_reflectors(d_g, d_tau)
    np.testing.assert_allclose(d_g.copy_to_host(), v_cpu, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(d_tau.copy_to_host(), tau_cpu, atol=TOLERANCE[dtype])
    gram = np.matmul(v_cpu.swapaxes(1, 2), v_cpu)[:, :5, :5].copy()
    tau = tau_cpu[:, :5].copy()
    t_cpu = np.empty_like(gram)
    orthogonal.larft_cpu(gram, tau, t_cpu)
    d_t = cuda.to_device(np.full_like(gram, np.nan))
    orthogonal_cuda.launch_larft(cuda.to_device(gram), cuda.to_device(tau), d_t)
    np.testing.assert_allclose(d_t.copy_to_host(), t_cpu, atol=TOLERANCE[dtype])


def test_gemm_path_with_the_cuda_larft_matches_cpu():
    """orthogonal.accumulate (the CuPy path's code) with its T factors from the CUDA kernel."""
    g = _gaussians((2, 13, 10), np.float64, seed=2)
    v, tau, q_cpu = _cpu_small(g)

    def larft(gram, panel_tau, t):
        d_t = cuda.to_device(t)
        orthogonal_cuda.launch_larft(cuda.to_device(gram), cuda.to_device(panel_tau), d_t)
        t[...] = d_t.copy_to_host()

    q = orthogonal.accumulate(v, tau, np, larft, block=4)
    np.testing.assert_allclose(q, q_cpu, atol=1e-13)


@pytest.mark.parametrize("fmt", [1, 2])
def test_scale_round_kernel_matches_cpu(fmt):
    q = _gaussians((300,), np.float32, seed=3)
    expected = np.empty(300, np.uint16)
    orthogonal.scale_round_cpu(q, np.float32(0.75), expected, np.int64(fmt))
    d_out = cuda.to_device(np.zeros(300, np.uint16))
    orthogonal_cuda.launch_scale_round(cuda.to_device(q), np.float32(0.75), d_out, fmt)
    np.testing.assert_array_equal(d_out.copy_to_host(), expected)
