"""The small-matrix kernel's vector row steps (kernels/rank_update.py) against the formula they compute."""

import numpy as np
import pytest

from warpinit.kernels import orthogonal

ULPS = 4  # a step rounds each of its (at most four) multiply-adds once


def _weights(rng, dtype):
    return rng.standard_normal((3, 4)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("start, stop", [(0, 64), (3, 64), (0, 5), (7, 70), (16, 16)])
def test_accumulate_and_subtract_compute_their_formula(dtype, start, stop):
    """``_accumulate`` and ``_subtract`` (whole vectors by the intrinsic steps, the rest element by
    element) give w[r] += sum_s a[s, r] row_s and row_s -= sum_r a[s, r] w[r] on [start, stop) only."""
    rng = np.random.default_rng(start * 100 + stop)
    a = _weights(rng, dtype)
    rows = rng.standard_normal((3, 80)).astype(dtype)
    w = rng.standard_normal((4, 80)).astype(dtype)
    span = slice(start, stop)
    exact = rows.astype(np.float64), w.astype(np.float64), a.astype(np.float64)
    expected_w = exact[1].copy()
    expected_w[:, span] += exact[2].T @ exact[0][:, span]
    found_w = w.copy()
    orthogonal._accumulate(found_w, a, rows[0], rows[1], rows[2], start, stop)
    eps = np.finfo(dtype).eps
    scale = np.abs(exact[1]) + np.abs(exact[2]).T @ np.abs(exact[0])
    assert (np.abs(found_w - expected_w) <= ULPS * eps * scale).all()
    outside = np.ones(80, bool)
    outside[span] = False
    np.testing.assert_array_equal(found_w[:, outside], w[:, outside])

    expected_rows = exact[0].copy()
    expected_rows[:, span] -= exact[2] @ exact[1][:, span]
    found = rows.copy()
    orthogonal._subtract(found[0], found[1], found[2], a, w, start, stop)
    scale = np.abs(exact[0]) + np.abs(exact[2]) @ np.abs(exact[1])
    assert (np.abs(found - expected_rows) <= ULPS * eps * scale).all()
    np.testing.assert_array_equal(found[:, outside], rows[:, outside])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subtract_into_one_row_given_three_times(dtype):
    """Past a member's last row the kernel passes that row three times with zero weights for the
    stand-ins: the row is updated once, as if alone."""
    rng = np.random.default_rng(5)
    a = _weights(rng, dtype)
    a[1:] = 0
    w = rng.standard_normal((4, 48)).astype(dtype)
    row = rng.standard_normal(48).astype(dtype)
    alone = row.copy()
    spare = np.zeros(48, dtype)
    orthogonal._subtract(alone, spare, spare.copy(), a, w, 0, 48)
    orthogonal._subtract(row, row, row, a, w, 0, 48)
    np.testing.assert_array_equal(row, alone)

