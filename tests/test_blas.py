"""Direct GEMM and TRMM into NumPy's BLAS, and the two GEMM paths of orthogonal that must agree."""

import numpy as np
import pytest

from warpinit.kernels import blas, orthogonal

pytestmark = pytest.mark.skipif(not blas.available(np.float32), reason="NumPy's BLAS is not OpenBLAS here")


def _assert_unchanged_around(full, before, view):
    """Every entry of ``full`` outside ``view`` (a tuple of slices) still equals ``before``'s."""
    outside = np.ones_like(full, dtype=bool)
    outside[view] = False
    np.testing.assert_array_equal(full[outside], before[outside])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_on_strided_views_in_place(dtype, transpose_a, transpose_b):
    rng = np.random.default_rng(0)
    big = rng.standard_normal((40, 50)).astype(dtype)
    a = big[3:14, 5:22]  # 11 x 17 view, row stride 50
    b = rng.standard_normal((30, 40)).astype(dtype)[2:19, 1:10]  # 17 x 9
    if transpose_a:
        a = rng.standard_normal((30, 40)).astype(dtype)[1:18, 3:14]  # stored 17 x 11, used transposed
    if transpose_b:
        b = rng.standard_normal((9, 17)).astype(dtype)
    c_full = rng.standard_normal((20, 30)).astype(dtype)
    c = c_full[4:15, 2:11]  # 11 x 9 view
    expected = 0.5 * c + (-2.0) * ((a.T if transpose_a else a) @ (b.T if transpose_b else b))
    untouched = c_full.copy()
    blas.gemm(-2.0, a, b, 0.5, c, transpose_a=transpose_a, transpose_b=transpose_b)
    np.testing.assert_allclose(c, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    _assert_unchanged_around(c_full, untouched, (slice(4, 15), slice(2, 11)))


def test_gemm_rejects_bad_operands():
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        blas.gemm(1.0, a, np.zeros((5, 2), np.float32), 0.0, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="unit stride"):
        blas.gemm(1.0, a[:, ::2], np.zeros((2, 2), np.float32), 0.0, np.zeros((3, 2), np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lower, unit", [(False, False), (True, True), (True, False), (False, True)])
@pytest.mark.parametrize("transpose, right", [(False, False), (True, False), (False, True), (True, True)])
def test_trmm_reads_one_triangle_and_updates_a_strided_view_in_place(dtype, lower, unit, transpose, right):
    rng = np.random.default_rng(3)
    k = 9 if right else 11
    stored = rng.standard_normal((30, 40)).astype(dtype)
    a = stored[2 : 2 + k, 5 : 5 + k]  # k x k view, row stride 40; the other triangle and the diagonal hold noise
    triangle = np.tril(a, -1 if unit else 0) if lower else np.triu(a, 1 if unit else 0)
    if unit:
        triangle = triangle + np.eye(k, dtype=dtype)
    op = (triangle.T if transpose else triangle).astype(np.float64)
    b_full = rng.standard_normal((20, 30)).astype(dtype)
    b = b_full[4:15, 2:11]  # 11 x 9 view
    expected = -1.5 * ((b.astype(np.float64) @ op) if right else (op @ b.astype(np.float64)))
    untouched = b_full.copy()
    blas.trmm(-1.5, a, b, lower=lower, unit=unit, transpose=transpose, right=right)
    np.testing.assert_allclose(b, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    _assert_unchanged_around(b_full, untouched, (slice(4, 15), slice(2, 11)))


def test_trmm_rejects_bad_operands():
    b = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="trmm: a must be square and match b's 3 rows"):
        blas.trmm(1.0, np.zeros((3, 2), np.float32), b, lower=True)
    with pytest.raises(ValueError, match="trmm: a must be square and match b's 4 columns"):
        blas.trmm(1.0, np.zeros((3, 3), np.float32), b, lower=True, right=True)
    with pytest.raises(ValueError, match="trmm: b must be a 2-D float32 view with unit stride"):
        blas.trmm(1.0, np.zeros((3, 3), np.float32), np.zeros((3, 8), np.float32)[:, ::2], lower=True)
    with pytest.raises(ValueError, match="trmm: a must be a 2-D float32 view"):
        blas.trmm(1.0, np.zeros((3, 3), np.float64), b, lower=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blas_and_array_api_accumulations_agree(dtype):
    """``accumulate`` (the code CuPy runs on the GPU) and ``accumulate_blas`` (the CPU's) give one Q."""
    rng = np.random.default_rng(1)
    g = rng.standard_normal((2, 300, 170)).astype(dtype)
    tau = np.empty((2, 170), dtype)
    orthogonal.reflectors_cpu(g, tau)
    q_array_api = orthogonal.accumulate(g, tau, np, orthogonal.larft_cpu, block=64)
    q_blas = orthogonal.accumulate_blas(g, tau, block=64)
    np.testing.assert_allclose(q_blas, q_array_api, atol=1e-6 if dtype == np.float32 else 1e-14)
    m = q_blas.astype(np.float64)
    assert np.abs(np.matmul(m.swapaxes(1, 2), m) - np.eye(170)).max() < (2e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("n, m", [(300, 170), (256, 256), (257, 129)])
def test_blas_accumulation_writes_every_entry_of_q(n, m):
    """Q is written in place without a zero fill: whatever ``q`` held before (NaN here) is gone, and
    the result is the one of a fresh array."""
    rng = np.random.default_rng(2)
    g = rng.standard_normal((2, n, m)).astype(np.float32)
    tau = np.empty((2, m), np.float32)
    orthogonal.reflectors_cpu(g, tau)
    fresh = orthogonal.accumulate_blas(g, tau, block=64)
    stale = orthogonal.accumulate_blas(g, tau, block=64, q=np.full((2, n, m), np.nan, np.float32))
    np.testing.assert_array_equal(stale, fresh)
    q = fresh.astype(np.float64)
    assert np.abs(np.matmul(q.swapaxes(1, 2), q) - np.eye(m)).max() < 2e-5


def test_the_gemm_path_uses_numpys_own_blas_whatever_is_loaded_before(tmp_path):
    """Q's rounding depends on the BLAS: it must not change when another OpenBLAS (SciPy's) is loaded
    before NumPy's."""
    import subprocess
    import sys

    import threadpoolctl

    ours = blas.library_path(np.float32)
    assert blas._inside_numpy(ours)
    others = [info["filepath"] for info in threadpoolctl.threadpool_info()
              if info.get("internal_api") == "openblas" and not blas._inside_numpy(info["filepath"])]
    if not others:
        scipy = pytest.importorskip("scipy.linalg")  # noqa: F841  (loads SciPy's OpenBLAS)
        others = [info["filepath"] for info in threadpoolctl.threadpool_info()
                  if info.get("internal_api") == "openblas" and not blas._inside_numpy(info["filepath"])]
    if not others:
        pytest.skip("no OpenBLAS but NumPy's is installed")
    code = (f"import ctypes; ctypes.CDLL({others[0]!r}, mode=ctypes.RTLD_GLOBAL)\n"
            "from warpinit.kernels import blas; print(blas.library_path())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == ours
