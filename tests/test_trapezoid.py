"""The Gaussian inputs of orthogonal members drawn as their lower trapezoid only (kernels/trapezoid):
the values of normal((n, m)), the listing of counter groups, and Q unchanged against full draws."""

import numba
import numpy as np
import pytest

import warpinit as wi

SHAPES = [(1, 1), (2, 1), (5, 3), (7, 7), (9, 9), (64, 1), (128, 128), (131, 97), (401, 33), (300, 300)]


def _keys(count):
    from warpinit.kernels.philox import key_table

    return key_table(11, np.arange(4, 4 + count, dtype=np.uint64))


def _full(count, n, m, dtype, keys):
    from warpinit import _orthogonal

    return _orthogonal._gaussians(count, n, m, dtype, keys, "cpu")  # normal((n, m)) per key row, every entry


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, m", SHAPES)
@pytest.mark.parametrize("chunk", [1, 3, 8, 4096])
def test_trapezoid_holds_the_normal_values(n, m, dtype, chunk):
    """Every entry (i, k), k <= i, holds its value of normal((n, m)) under the member's key row, for
    every chunking, on the calling thread or all of them. Above the diagonal, exactly the entries
    that share a counter group with the triangle's are written, with their own values."""
    from warpinit.kernels import plan, trapezoid

    keys = _keys(3)
    full = _full(3, n, m, dtype, keys)
    lower = np.tril(np.ones((n, m), dtype=bool))
    group = plan.normal(0.0, 1.0, np.dtype(dtype)).group
    groups = np.arange(n * m).reshape(n, m) // group
    shared = np.isin(groups, groups[:m][lower[:m]]) & ~lower
    for parallel in (False, True):
        g = np.full((3, n, m), np.nan, dtype=dtype)
        assert trapezoid.draw(g, keys, parallel=parallel, chunk=chunk) is g
        np.testing.assert_array_equal(g[:, lower | shared], full[:, lower | shared])
        assert np.isnan(g[:, ~lower & ~shared]).all()


@pytest.mark.parametrize("group", [1, 2, 4])
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 13, 64, 97])
@pytest.mark.parametrize("below", [0, 1, 2, 7])
def test_listed_groups_are_those_of_the_trapezoid_each_once(m, below, group):
    """The listed counter groups, chunk after chunk, are the distinct groups of the trapezoid's
    entries (the triangle, then the rows below it) in ascending order: none twice (two threads never
    write one value) and none missing."""
    from warpinit.kernels import trapezoid

    n = m + below
    rows, columns = np.nonzero(np.tril(np.ones((n, m), dtype=bool)))
    wanted = np.unique((rows * m + columns) // group)
    starts = trapezoid.listing_starts(n, m, group)
    assert starts[m + 1] == wanted.size and (np.diff(starts) >= 0).all()
    for chunk in (1, 5, wanted.size):
        listed = []
        for first in range(0, wanted.size, chunk):
            count = min(chunk, wanted.size - first)
            offsets = np.empty(count, dtype=np.uint32)
            base = trapezoid._list_groups(starts, n, m, group, first, count, offsets)
            listed.append(int(base) + offsets.astype(np.int64))
        np.testing.assert_array_equal(np.concatenate(listed), wanted)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("shape, batch", [((64, 64), 5), ((200, 120), 3), ((33, 70), 4)])
def test_small_matrices_equal_the_small_kernel_on_full_gaussians(shape, batch, dtype):
    """The small-matrix driver draws each member's trapezoid: Q is bit for bit the small kernel's on
    the whole Gaussian matrices (the entries above the diagonal are never read)."""
    from warpinit.kernels import orthogonal as kernels
    from warpinit.kernels.philox import key_table

    n, m = max(shape), min(shape)
    compute = np.float64 if dtype == "float64" else np.float32
    g = _full(batch, n, m, compute, key_table(21, np.arange(batch, dtype=np.uint64)))
    q = np.empty_like(g)
    kernels.small_from_gaussians_cpu(g, np.empty((batch, m), compute), q)
    if shape[0] < shape[1]:
        q = q.swapaxes(1, 2)
    ours = wi.orthogonal(shape, batch=batch, seed=21, dtype=dtype)
    np.testing.assert_array_equal(ours.view(np.uint8), np.ascontiguousarray(q.astype(ours.dtype)).view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, m", [(600, 600), (700, 520)])
def test_one_large_matrix_equals_the_gemm_path_on_full_gaussians(n, m, dtype):
    """A single large matrix has its trapezoid drawn by every thread: Q is bit for bit the GEMM
    path's on the whole Gaussian matrix, with one thread or two."""
    from warpinit.kernels import orthogonal as kernels
    from warpinit.kernels import trapezoid

    keys = _keys(1)
    reference = kernels.haar_cpu(_full(1, n, m, dtype, keys))
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, threads}):
            numba.set_num_threads(count)
            q = kernels.haar_cpu(trapezoid.draw(np.full((1, n, m), np.nan, dtype=dtype), keys))
            np.testing.assert_array_equal(q, reference)
    finally:
        numba.set_num_threads(threads)


@pytest.mark.parametrize("chunk", [0, -3, 2**40])
def test_a_chunk_that_32_bit_offsets_cannot_hold_is_refused(chunk):
    from warpinit.kernels import trapezoid

    with pytest.raises(ValueError, match="trapezoid.draw: chunk must be a positive int"):
        trapezoid.draw(np.zeros((1, 8, 8), np.float32), _keys(1), chunk=chunk)
