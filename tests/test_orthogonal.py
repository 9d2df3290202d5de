"""wi.orthogonal: orthogonality, the Haar property against theory and against QR + sign, batches,
determinism, 16-bit outputs and errors."""

import math
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

import warpinit as wi

ALPHA = 1e-3  # significance of every statistical test (fixed seeds: deterministic outcome)
TOLERANCE = {"float32": 2e-5, "float64": 1e-12}


def _orthogonality_error(q, gain=1.0):
    """max |M^T M - I| over the orthonormal side of the (rows, cols) matrix of q, gain removed."""
    m = np.asarray(q, dtype=np.float64).reshape(-1, q.shape[-1]) / gain
    if m.shape[0] < m.shape[1]:
        m = m.T
    return np.abs(m.T @ m - np.eye(m.shape[1])).max()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "shape",
    [(8, 8), (64, 64), (512, 512), (700, 300), (300, 700), (3, 3, 16, 32), (1, 40), (40, 1), (1, 1), (513, 512)],
)
def test_orthonormal_within_tolerance(shape, dtype):
    gain = 1.7
    q = wi.orthogonal(shape, gain=gain, dtype=dtype, seed=1, device="cpu")
    assert q.shape == shape and q.dtype == np.dtype(dtype)
    assert _orthogonality_error(q, gain) <= TOLERANCE[dtype]


def test_keras_orientation():
    tall = wi.orthogonal((6, 4), seed=2, device="cpu")
    wide = wi.orthogonal((4, 6), seed=2, device="cpu")
    np.testing.assert_allclose(tall.T @ tall, np.eye(4), atol=1e-6)  # orthonormal columns
    np.testing.assert_allclose(wide @ wide.T, np.eye(4), atol=1e-6)  # orthonormal rows
    # The wide matrix is the transpose of the tall one built from the same Gaussian inputs.
    np.testing.assert_array_equal(wide, tall.T)


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_haar_entries_trace_and_determinant(n):
    """Against theory: Q[i, j]^2 ~ Beta(1/2, (n-1)/2), trace ~ (0, 1), det = +-1 equally often."""
    samples = 4000
    q = wi.orthogonal((n, n), dtype="float64", seed=100 + n, batch=samples, device="cpu")
    beta = stats.beta(0.5, (n - 1) / 2)
    for i, j in [(0, 0), (n - 1, n - 1), (0, n - 1), (n // 2, 0)]:
        assert stats.kstest(q[:, i, j] ** 2, beta.cdf).pvalue > ALPHA, (i, j)
        # Entries are symmetric about zero.
        assert stats.binomtest(int((q[:, i, j] > 0).sum()), samples).pvalue > ALPHA
    trace = np.trace(q, axis1=1, axis2=2)
    assert abs(trace.mean()) < 5 / math.sqrt(samples)
    assert abs(trace.var() - 1.0) < 5 * math.sqrt(2 / samples) * 1.5
    det = np.linalg.det(q)
    np.testing.assert_allclose(np.abs(det), 1.0, atol=1e-10)
    assert stats.binomtest(int((det > 0).sum()), samples).pvalue > ALPHA


@pytest.mark.parametrize("shape", [(3, 3), (5, 2), (2, 6)])
def test_same_law_as_qr_with_sign_fix(shape):
    """Two-sample tests against the reference: Householder QR of a Gaussian with Q * sign(diag R)."""
    samples = 5000
    rows, cols = shape
    big, small = max(rows, cols), min(rows, cols)
    ours = wi.orthogonal(shape, dtype="float64", seed=7, batch=samples, device="cpu")
    rng = np.random.default_rng(8)
    q, r = np.linalg.qr(rng.standard_normal((samples, big, small)))
    reference = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    if rows < cols:
        reference = reference.swapaxes(1, 2)
    statistics = [
        lambda a: a[:, 0, 0],
        lambda a: a[:, -1, -1],
        lambda a: a[:, 0, -1] * a[:, -1, 0],
        lambda a: np.einsum("bii->b", a[:, :small, :small]),
    ]
    for statistic in statistics:
        assert stats.ks_2samp(statistic(ours), statistic(reference)).pvalue > ALPHA


@pytest.mark.parametrize("shape", [(16, 16), (96, 40), (600, 700)])
def test_batch_member_equals_single_call(shape):
    batch = wi.orthogonal(shape, seed=11, stream=20, batch=3, device="cpu")
    assert batch.shape == (3, *shape)
    for k in range(3):
        single = wi.orthogonal(shape, seed=11, stream=20 + k, device="cpu")
        if math.prod(shape) <= 256 * 256:  # the same code path: the same bits
            np.testing.assert_array_equal(batch[k], single)
        else:
            np.testing.assert_allclose(batch[k], single, atol=2e-6)
    assert not np.allclose(batch[0], batch[1])


@pytest.mark.parametrize("n, m, dtype", [(600, 600, np.float32), (700, 520, np.float64)])
def test_batch_drawn_per_worker_equals_the_gemm_path_on_the_same_gaussians(n, m, dtype):
    """A large batch has each worker draw its members' Gaussians itself: bit for bit what the GEMM
    path gives on the batch's Gaussians drawn at once."""
    from warpinit import _orthogonal
    from warpinit.kernels import orthogonal as kernels
    from warpinit.kernels.philox import key_table

    keys = key_table(123, np.arange(5, 8, dtype=np.uint64))
    ours = kernels.haar_keys_cpu(keys, np.empty((3, n, m), dtype))
    reference = kernels.haar_cpu(_orthogonal._gaussians(3, n, m, dtype, keys, "cpu"))
    np.testing.assert_array_equal(ours, reference)
    assert _orthogonality_error(ours[2]) < TOLERANCE[np.dtype(dtype).name]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, m", [(1, 1), (40, 1), (300, 170), (700, 600), (1030, 1030)])
def test_reflectors_same_bits_on_one_thread_or_all(n, m, dtype):
    """A single large matrix has its reflectors built by every thread, a batch member by one: the
    same V and taus, bit for bit (fixed chunks of rows), and the Householder vectors they should be."""
    from warpinit.kernels import orthogonal as kernels

    g = np.random.default_rng(n + m).standard_normal((n, m)).astype(dtype)
    serial, parallel = g.copy(), g.copy()
    tau_serial, tau_parallel = np.empty(m, dtype), np.empty(m, dtype)
    kernels._member_reflectors(serial, tau_serial)
    kernels.member_reflectors_cpu(parallel, tau_parallel)
    np.testing.assert_array_equal(parallel.view(np.uint8), serial.view(np.uint8))
    np.testing.assert_array_equal(tau_parallel.view(np.uint8), tau_serial.view(np.uint8))
    # Against the textbook reflector of each column, x = g[k:, k]: H x = ||x|| e1 with H = I - tau v v^T.
    for k in (0, m // 2, m - 1):
        x = g[k:, k].astype(np.float64)
        v = serial[k:, k].astype(np.float64)
        hx = x - tau_serial[k] * v * (v @ x)
        expected = np.zeros_like(x)
        expected[0] = np.linalg.norm(x)
        np.testing.assert_allclose(hx, expected, atol=TOLERANCE[np.dtype(dtype).name] * 10 * max(1, np.linalg.norm(x)))
    assert (np.triu(serial, 1) == 0).all() and (np.diag(serial) == 1).all()


def _larft_reference(gram, tau):
    """The compact-WY factor T entry by entry, as ``larft_entry`` sums it, in NumPy scalars (each
    product and sum rounded on its own: no fused multiply-add)."""
    b = tau.size
    t = np.zeros((b, b), gram.dtype)
    for r in range(b):
        t[r, r] = tau[r]
        for c in range(r):
            acc = t[c, c] * gram[c, r]
            for d in range(c + 1, r):
                acc = acc + t[c, d] * gram[d, r]
            t[c, r] = -tau[r] * acc
    return t


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_larft_by_rows_is_the_entrywise_larft_bit_for_bit(dtype):
    from warpinit.kernels import orthogonal

    # The small-matrix kernel, which contracts multiply-adds, compiles first: the GEMM path's T must
    # not depend on what else the process compiled.
    wi.orthogonal((16, 16), batch=4, seed=1, dtype=dtype)
    rng = np.random.default_rng(4)
    for width in (1, 2, 5, 17, 128):
        v = np.tril(rng.standard_normal((3, 2 * width + 7, width)), -1).astype(dtype)
        v[:, np.arange(width), np.arange(width)] = 1
        gram = np.matmul(v.swapaxes(1, 2), v)
        tau = (2 / np.einsum("bij,bij->bj", v, v)).astype(dtype)
        found = np.full_like(gram, np.nan)
        orthogonal.larft_cpu(gram, tau, found)
        for member in range(3):
            expected = _larft_reference(gram[member], tau[member])
            np.testing.assert_array_equal(found[member].view(np.uint8), expected.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_kernel_gram_of_each_block(dtype):
    """The small-matrix kernel's Gram matrix of a block of b <= 4 reflectors: V^T V over the block's
    rows, symmetric bit for bit, and exact zeros in the rows and columns past b; the packed block
    holds the reflectors' columns from row j0 on, exact zeros past b."""
    from warpinit.kernels import orthogonal

    n, m = 37, 11
    v = np.random.default_rng(5).standard_normal((n, m)).astype(dtype)
    orthogonal._member_reflectors(v, np.empty(m, dtype))
    for j0, b in ((0, 4), (4, 4), (8, 3), (9, 2), (10, 1)):
        gram = np.full((4, 4), np.nan, dtype)
        packed = np.full((n, 4), np.nan, dtype)
        orthogonal._block_gram(v, j0, b, gram, packed)
        block = v[j0:, j0 : j0 + b].astype(np.float64)
        np.testing.assert_allclose(gram[:b, :b], block.T @ block, rtol=TOLERANCE[np.dtype(dtype).name])
        np.testing.assert_array_equal(gram, gram.T)
        assert (gram[b:] == 0).all() and (gram[:, b:] == 0).all()
        np.testing.assert_array_equal(packed[: n - j0, :b], v[j0:, j0 : j0 + b])
        assert (packed[: n - j0, b:] == 0).all() and np.isnan(packed[n - j0 :]).all()


def test_same_call_same_bits_and_threads_agree(tmp_path):
    code = (
        "import hashlib, numpy as np, warpinit as wi\n"
        "a = wi.orthogonal((700, 600), seed=3, device='cpu'); b = wi.orthogonal((64, 64), seed=3, batch=5, device='cpu')\n"
        "np.save('{path}', np.concatenate([a.ravel(), b.ravel()]))\n"
    )
    results = []
    for threads in ("1", "2"):
        path = str(tmp_path / f"orthogonal_{threads}.npy")
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", code.format(path=path)], env=env, check=True, timeout=600)
        results.append(np.load(path))
    np.testing.assert_allclose(results[0], results[1], atol=2e-6)
    a = wi.orthogonal((700, 600), seed=3, device="cpu")
    np.testing.assert_array_equal(a, wi.orthogonal((700, 600), seed=3, device="cpu"))


# unit: the relative rounding error bound of round-to-nearest, 2**-precision (8 bits for bfloat16,
# 11 for float16).
@pytest.mark.parametrize("dtype, unit", [("bfloat16", 2.0**-8), ("float16", 2.0**-11)])
def test_16bit_outputs_orthogonal_to_their_precision(dtype, unit):
    q = wi.orthogonal((128, 96), dtype=dtype, seed=5, batch=2, device="cpu")
    assert q.dtype == np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    # Rounding each entry by at most `unit` relative moves M^T M by at most 2 unit + unit^2 (Cauchy-Schwarz).
    for member in q:
        assert _orthogonality_error(member) <= 2 * unit + unit**2 + 1e-5
    # The float32 result rounded: equal up to one 16-bit ulp where the float32 value sits at a rounding
    # tie (the two compiled variants may contract a multiply-add differently in the last float32 bit).
    f32 = wi.orthogonal((128, 96), dtype="float32", seed=5, batch=2, device="cpu")
    rounded = f32.astype(q.dtype)
    differ = q != rounded
    assert differ.mean() < 1e-3
    spacing = np.abs(rounded.astype(np.float64)) * unit * 2 + 2.0**-24
    assert np.all(np.abs(q.astype(np.float64) - rounded.astype(np.float64))[differ] <= spacing[differ])


def test_out_and_empty_shapes():
    out = np.empty((2, 10, 6), np.float32)
    assert wi.orthogonal((10, 6), seed=1, batch=2, out=out, device="cpu") is out
    np.testing.assert_array_equal(out, wi.orthogonal((10, 6), seed=1, batch=2, device="cpu"))
    assert wi.orthogonal((0, 5), seed=1, device="cpu").shape == (0, 5)
    assert wi.orthogonal((4, 0), seed=1, batch=2, device="cpu").shape == (2, 4, 0)


HUGE = (2**20, 2**20)


@pytest.mark.parametrize(
    "call, error, text",
    [
        (lambda: wi.orthogonal((5,), seed=1), ValueError, r"at least two-dimensional. Received: shape=\(5,\) of rank 1"),
        (lambda: wi.orthogonal((), seed=1), ValueError, r"at least two-dimensional"),
        (lambda: wi.orthogonal((-1, 5), seed=1), ValueError, r"shape entries must be >= 0"),
        (lambda: wi.orthogonal((2.5, 5), seed=1), TypeError, r"shape entries must be ints"),
        (lambda: wi.orthogonal(HUGE, gain=math.inf, seed=1), ValueError, r"gain must be finite"),
        (lambda: wi.orthogonal(HUGE, gain=math.nan, seed=1), ValueError, r"gain must be finite"),
        (lambda: wi.orthogonal(HUGE, gain="1", seed=1), TypeError, r"gain must be a real number"),
        (lambda: wi.orthogonal(HUGE, batch=0, seed=1), ValueError, r"batch must be None or a positive int, got 0"),
        (lambda: wi.orthogonal(HUGE, batch=2.0, seed=1), TypeError, r"batch must be None or a positive int"),
        (lambda: wi.orthogonal(HUGE, batch=True, seed=1), TypeError, r"batch must be None or a positive int"),
        (lambda: wi.orthogonal(HUGE, batch=2, stream=2**32 - 1, seed=1), ValueError, r"stream \+ batch must be <= 2\*\*32"),
        (lambda: wi.orthogonal(HUGE, dtype="int8", seed=1), TypeError, r"dtype must be one of"),
        (lambda: wi.orthogonal(HUGE, seed=1, device="cpu"), MemoryError, r"orthogonal: the result needs"),
    ],
)
def test_bad_input(call, error, text):
    with pytest.raises(error, match=text):
        call()
