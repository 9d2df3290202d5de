"""The small-matrix kernel's block update (kernels/rank_update.py) against the formula it computes."""

import numpy as np
import pytest

from warpinit.kernels import rank_update
from warpinit.kernels._jit import cpu_jit

LANES = {np.float32: 16, np.float64: 8}  # rank_update.LANES_BYTES of each dtype
assert 300 - 7 > 2 * rank_update.TILE_ROWS  # the first case below spans three tiles of rows


@cpu_jit()
def _apply(q, v, t, first_row, first_column, w):
    rank_update.apply_block(q, v, t, first_row, first_column, w)


def _block(rng, n, first_row, b, dtype):
    """A packed block of b reflectors (rows from first_row, zero columns past b) and its T entries
    (zero rows and columns past b), as the small-matrix kernel hands them over."""
    v = rng.standard_normal((n - first_row, 4))
    v[:, b:] = 0
    t = np.triu(rng.standard_normal((4, 4)))
    t[b:], t[:, b:] = 0, 0
    return v.astype(dtype), t.astype(dtype)


def _entries(t):
    return tuple(t[r, c] for r, c in rank_update.T_ENTRIES)


def _padded(rng, n, columns, dtype):
    """Q (n, columns) as a view with the kernel's row stride, and its NaN-filled spare columns."""
    pitch = rank_update.row_pitch.py_func(columns, np.dtype(dtype).itemsize)
    full = np.full((n, pitch), np.nan, dtype)
    full[:, :columns] = rng.standard_normal((n, columns))
    return full, full[:, :columns]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, vectors, first_row, first_vector, b", [
    (300, 4, 7, 0, 4),   # several tiles of rows (rank_update.TILE_ROWS), the last cut short
    (37, 3, 5, 1, 4),    # an odd number of vectors (a one-vector strip)
    (16, 1, 0, 0, 2),    # a single vector, a block of two reflectors
    (70, 5, 33, 2, 3),   # rows and columns from an offset
    (3, 2, 2, 0, 1),     # one row
])
def test_apply_block_computes_its_formula(dtype, n, vectors, first_row, first_vector, b):
    """Q[first_row:, first_column:] becomes (I - V T V^T) of itself within the rounding of the sums
    over rows; every other element of q, and the row padding past its columns, is left as it was."""
    rng = np.random.default_rng(n * 100 + vectors)
    columns = vectors * LANES[dtype]
    full, q = _padded(rng, n, columns, dtype)
    v, t = _block(rng, n, first_row, b, dtype)
    w = np.full((4, full.shape[1]), np.nan, dtype)[:, :columns]
    before = full.copy()
    first_column = first_vector * LANES[dtype]
    _apply(q, v, _entries(t), first_row, first_column, w)

    part = before[first_row:, first_column:columns].astype(np.float64)
    exact = part - v.astype(np.float64) @ (t.astype(np.float64) @ (v.T.astype(np.float64) @ part))
    bound = np.abs(part) + np.abs(v) @ (np.abs(t) @ (np.abs(v.T) @ np.abs(part)))
    found = full[first_row:, first_column:columns].astype(np.float64)
    eps = np.finfo(dtype).eps
    assert (np.abs(found - exact) <= (n + 8) * eps * bound).all()
    untouched = np.ones(full.shape, bool)
    untouched[first_row:, first_column:columns] = False
    np.testing.assert_array_equal(full[untouched], before[untouched])  # NaN padding included


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_apply_block_same_bits_whatever_strip_holds_a_column(dtype):
    """A column's result depends on its own values only: starting one vector later moves every
    column into another strip (two-vector strips become one-vector ones and back) without changing
    a bit of the columns both calls update."""
    rng = np.random.default_rng(9)
    n, columns, lanes = 45, 5 * LANES[dtype], LANES[dtype]
    full, q = _padded(rng, n, columns, dtype)
    v, t = _block(rng, n, 3, 4, dtype)
    results = []
    for first_column in (0, lanes):
        copy = full.copy()
        w = np.empty((4, full.shape[1]), dtype)[:, :columns]
        _apply(copy[:, :columns], v, _entries(t), 3, first_column, w)
        results.append(copy[:, lanes:columns])
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_columns_stay_zero(dtype):
    """Columns that are zero in every row from first_row (Q's padding, E's columns before the
    block) come out exactly zero: the kernel relies on it to start at a vector boundary."""
    rng = np.random.default_rng(4)
    n, columns = 30, 2 * LANES[dtype]
    full, q = _padded(rng, n, columns, dtype)
    q[:, 3:7] = 0
    v, t = _block(rng, n, 0, 4, dtype)
    w = np.empty((4, full.shape[1]), dtype)[:, :columns]
    _apply(q, v, _entries(t), 0, 0, w)
    assert (q[:, 3:7] == 0).all()
