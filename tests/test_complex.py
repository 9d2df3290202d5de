"""Complex values (bindings/_complex.py): the pairs contract, blocks, statistics, and Haar unitary matrices.

Every statistical test uses fixed seeds and rejects at significance ALPHA = 1e-3 (deterministic
outcome); the tests of the unitary construction also show that they reject a construction that is not
Haar (a QR without the phase fix), so they can fail.
"""

import math

import numpy as np
import pytest
from scipy import stats

import warpinit as wi
from warpinit import _distributions
from warpinit.kernels.philox import key_table

ALPHA = 1e-3
COMPLEX = ["complex64", "complex128"]
REAL = {"complex64": "float32", "complex128": "float64"}


def _bits(array):
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


# The pairs contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", COMPLEX)
def test_complex_normal_is_the_real_normal_of_its_pairs(dtype):
    shape, stddev = (7, 9), 2.5
    z = wi.normal(shape, stddev=stddev, dtype=dtype, seed=31, stream=4, device="cpu")
    assert z.dtype == np.dtype(dtype) and z.shape == shape
    parts = wi.normal((*shape, 2), stddev=stddev * math.sqrt(0.5), dtype=REAL[dtype], seed=31, stream=4, device="cpu")
    np.testing.assert_array_equal(_bits(z), _bits(parts))
    np.testing.assert_array_equal(z.real, parts[..., 0])
    np.testing.assert_array_equal(z.imag, parts[..., 1])


@pytest.mark.parametrize("dtype", COMPLEX)
def test_complex_blocks_equal_the_blocks_of_the_whole(dtype):
    shape = (6, 5, 8)
    whole = wi.normal(shape, dtype=dtype, seed=2**64 - 3, device="cpu")
    for index in [(slice(1, 4),), (2, slice(None), slice(3, 7)), (Ellipsis, 5), (slice(None), 0), 3, (Ellipsis,)]:
        block = wi.normal(shape, dtype=dtype, seed=2**64 - 3, index=index, device="cpu")
        np.testing.assert_array_equal(_bits(block), _bits(whole[index]))
    out = np.empty((5, 4), dtype)
    assert wi.normal(shape, seed=2**64 - 3, index=(1, slice(None), slice(2, 6)), out=out) is out  # dtype from out
    np.testing.assert_array_equal(_bits(out), _bits(whole[1, :, 2:6]))


def test_complex_mean_is_added_in_the_output_precision():
    z = wi.normal((50,), stddev=0.5, dtype="complex64", seed=3, device="cpu")
    shifted = wi.normal((50,), mean=complex(-1.0, 0.25), stddev=0.5, dtype="complex64", seed=3, device="cpu")
    np.testing.assert_array_equal(shifted.real, z.real + np.float32(-1.0))
    np.testing.assert_array_equal(shifted.imag, z.imag + np.float32(0.25))
    real_mean = wi.normal((50,), mean=2, stddev=0.5, dtype="complex64", seed=3, device="cpu")
    np.testing.assert_array_equal(real_mean.imag, z.imag)  # a real mean moves the real parts only


@pytest.mark.parametrize("call, error, match", [
    (lambda: wi.uniform(4, dtype="complex64", seed=1), ValueError, "uniform: dtype='complex64' is complex"),
    (lambda: wi.truncated_normal(4, dtype=np.complex128, seed=1), ValueError, "truncated_normal: dtype=.* is complex"),
    (lambda: wi.uniform(4, seed=1, out=np.empty(4, np.complex64)), TypeError, "uniform: out must have dtype float16"),
    (lambda: wi.normal(4, dtype="complex64", seed=1, out=np.empty(4, np.complex128)), ValueError, "out has dtype"),
    (lambda: wi.normal(4, dtype="complex64", seed=1, stddev=1e-50), ValueError, "stddev=1e-50 is not representable"),
    (lambda: wi.normal(4, dtype="complex64", seed=1, mean=True), TypeError, "mean must be a real or complex"),
    (lambda: wi.normal(4, dtype="complex64", seed=1, index=(slice(0, 4, 2),)), ValueError, "step 1"),
    (lambda: wi.normal(4, dtype="complex64", index=0), ValueError, "index= needs an explicit seed"),
])
def test_complex_errors_name_the_parameter(call, error, match):
    with pytest.raises(error, match=match):
        call()


# Statistics -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", COMPLEX)
def test_complex_normal_statistics(dtype):
    n, stddev = 400_000, 1.7
    z = wi.normal(n, stddev=stddev, dtype=dtype, seed=5, device="cpu").astype(np.complex128)
    part = stats.norm(scale=stddev / math.sqrt(2.0))
    assert stats.kstest(z.real, part.cdf).pvalue > ALPHA
    assert stats.kstest(z.imag, part.cdf).pvalue > ALPHA
    assert abs(np.corrcoef(z.real, z.imag)[0, 1]) < 5 / math.sqrt(n)  # the parts are uncorrelated
    # Circular symmetry: the angle is uniform and |z|^2 / stddev^2 is Exp(1).
    assert stats.kstest(np.angle(z), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > ALPHA
    assert stats.kstest(np.abs(z) ** 2 / stddev**2, stats.expon().cdf).pvalue > ALPHA


@pytest.mark.parametrize("dtype", COMPLEX)
def test_disk_and_modulus_truncated_normal(dtype):
    n, keys = 300_000, key_table(77, 0)
    radius = 0.8
    z = _distributions.generate(_distributions.disk(radius), (n,), dtype, keys, "cpu")[0].astype(np.complex128)
    assert np.abs(z).max() <= radius * (1 + 1e-6)
    assert stats.kstest((np.abs(z) / radius) ** 2, stats.uniform().cdf).pvalue > ALPHA  # uniform area
    assert stats.kstest(np.angle(z), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > ALPHA
    assert np.mean(np.abs(z) ** 2) == pytest.approx(radius**2 / 2, rel=5 / math.sqrt(n))
    stddev, upper = 0.3, 2.0
    t = _distributions.complex_truncated_normal(stddev, upper)
    z = _distributions.generate(t, (n,), dtype, keys, "cpu")[0].astype(np.complex128)
    assert np.abs(z).max() <= upper * stddev * (1 + 1e-6)
    cut = -math.expm1(-upper**2)
    law = lambda x: -np.expm1(-x) / cut  # noqa: E731  |z|^2 / stddev^2: Exp(1) conditioned on <= upper^2
    assert stats.kstest(np.abs(z) ** 2 / stddev**2, law).pvalue > ALPHA
    assert stats.kstest(np.angle(z), stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue > ALPHA


@pytest.mark.parametrize("kind, parameters", [("normal", (0.0, 2.0)), ("disk", (1.5,)),
                                              ("complex_truncated_normal", (0.5, 2.0)), ("orthogonal", (1.5,)),
                                              ("constant", (0.5,))])
@pytest.mark.parametrize("dtype", COMPLEX)
def test_complex_shared_blocks_equal_the_whole(kind, parameters, dtype):
    shape, seed = (12, 10), 99
    distribution = _distributions.Distribution(kind, parameters)
    whole = _distributions.generate(distribution, shape, dtype, key_table(seed, 0), "cpu")[0]
    cache = {}
    for ranges in [((0, 12), (0, 10)), ((3, 7), (2, 9)), ((11, 12), (0, 10))]:
        block = _distributions.generate_block(distribution, shape, dtype, seed, ranges, "cpu", cache)
        expected = whole[tuple(slice(a, b) for a, b in ranges)]
        assert block.dtype == np.dtype(dtype) and block.flags.c_contiguous
        np.testing.assert_array_equal(_bits(block), _bits(expected))


def test_shared_checks_refuse_real_only_kinds_for_complex_dtypes():
    for distribution in (_distributions.uniform(0.0, 1.0), _distributions.truncated_normal(0.0, 1.0),
                         _distributions.sparse(0.5, 1.0)):
        with pytest.raises(ValueError, match="is complex"):
            _distributions.check(distribution, "complex64")
    for distribution in (_distributions.disk(1.0), _distributions.complex_truncated_normal(1.0)):
        with pytest.raises(ValueError, match="draws complex values"):
            _distributions.check(distribution, "float32")
    with pytest.raises(ValueError, match="overflow"):
        _distributions.check(_distributions.disk(1e300), "complex64")


# Haar unitary matrices ----------------------------------------------------------------------------------

TOLERANCE = {"complex64": 2e-6, "complex128": 1e-13}


@pytest.mark.parametrize("dtype", COMPLEX)
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 2, 4)])
def test_orthogonal_is_unitary(dtype, shape):
    q = wi.orthogonal(shape, gain=1.5, dtype=dtype, seed=8, batch=3, device="cpu")
    assert q.dtype == np.dtype(dtype) and q.shape == (3, *shape)
    m = q.astype(np.complex128).reshape(3, -1, shape[-1]) / 1.5
    if m.shape[1] < m.shape[2]:
        m = m.swapaxes(1, 2)  # orthonormal rows
    gram = np.conj(m.swapaxes(1, 2)) @ m
    assert np.abs(gram - np.eye(m.shape[2])).max() <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", COMPLEX)
def test_orthogonal_is_built_from_the_complex_normal_of_its_dtype(dtype):
    """Member k: QR of normal((max, min), dtype=<complex>, stream=stream + k) with R's phases taken out."""
    q = wi.orthogonal((5, 3), dtype=dtype, seed=12, stream=6, batch=2, device="cpu").astype(np.complex128)
    for k in range(2):
        g = wi.normal((5, 3), dtype=dtype, seed=12, stream=6 + k, device="cpu").astype(np.complex128)
        factor, r = np.linalg.qr(g)
        d = np.diagonal(r)
        np.testing.assert_allclose(q[k], factor * (d / np.abs(d)), rtol=0, atol=10 * TOLERANCE[dtype])
    wide = wi.orthogonal((3, 5), dtype=dtype, seed=12, stream=6, device="cpu")
    np.testing.assert_array_equal(wide, wi.orthogonal((5, 3), dtype=dtype, seed=12, stream=6, device="cpu").T)


def _haar_statistics(matrices):
    """p-values of three properties of Haar unitary n x n matrices: |Q_00|^2 ~ Beta(1, n - 1), the
    phase of every diagonal entry uniform, and |trace|^2 with mean 1 (a z-test; it is Exp(1)-like)."""
    n = matrices.shape[-1]
    p_modulus = stats.kstest(np.abs(matrices[:, 0, 0]) ** 2, stats.beta(1, n - 1).cdf).pvalue
    phases = np.angle(np.diagonal(matrices, axis1=1, axis2=2)).ravel()
    p_phase = stats.kstest(phases, stats.uniform(-math.pi, 2 * math.pi).cdf).pvalue
    trace = np.abs(np.trace(matrices, axis1=1, axis2=2)) ** 2
    z = (trace.mean() - 1.0) / (trace.std() / math.sqrt(trace.size))
    p_trace = 2 * stats.norm.sf(abs(z))
    return p_modulus, p_phase, p_trace


@pytest.mark.parametrize("dtype", COMPLEX)
def test_orthogonal_is_haar(dtype):
    count, n = 6000, 4
    q = wi.orthogonal((n, n), dtype=dtype, seed=21, batch=count, device="cpu").astype(np.complex128)
    assert min(_haar_statistics(q)) > ALPHA
    # The same statistics reject the QR without the phase fix (LAPACK's R has a real diagonal of
    # either sign: Q's diagonal phases concentrate), so the test above can fail.
    g = wi.normal((count, n, n), dtype=dtype, seed=21, device="cpu").astype(np.complex128)
    unfixed, _ = np.linalg.qr(g)
    assert min(_haar_statistics(unfixed)) < ALPHA


def test_orthogonal_complex_through_dask_and_its_errors():
    pytest.importorskip("dask.array")
    import warpinit.dask as wd

    stack = wd.orthogonal((5, 4), batch=3, chunks=(2, 5, 4), dtype="complex64", seed=3)
    np.testing.assert_array_equal(stack.compute(), wi.orthogonal((5, 4), batch=3, dtype="complex64", seed=3, device="cpu"))
    with pytest.raises(TypeError, match="complex dtypes are complex64 and complex128"):
        wi.orthogonal((5, 4), dtype=np.clongdouble, seed=1)
