"""Philox4x32: Random123's known answers, the array API and the derived seeds."""

import numpy as np
import pytest

import reference
import warpinit.kernels as wk
from warpinit.kernels import derive_seed


def test_known_answer_vectors(data_dir):
    rows = reference.read_kat(data_dir / "philox_kat.txt")
    assert len(rows) == 6
    for rounds, counter, key, expected in rows:
        got = wk.philox4x32(np.array(counter, np.uint32), np.array(key, np.uint32), rounds=rounds)
        assert got.dtype == np.uint32
        assert [int(w) for w in got] == expected, f"rounds={rounds} counter={counter}"


def test_known_answers_vectorised_and_broadcast(data_dir):
    rows = [r for r in reference.read_kat(data_dir / "philox_kat.txt") if r[0] == 10]
    counters = np.array([r[1] for r in rows], np.uint32)
    keys = np.array([r[2] for r in rows], np.uint32)
    expected = np.array([r[3] for r in rows], np.uint32)
    np.testing.assert_array_equal(wk.philox4x32(counters, keys), expected)
    # One key broadcast over a (2, 3) grid of counters.
    grid = np.arange(24, dtype=np.uint32).reshape(2, 3, 4)
    out = wk.philox4x32(grid, keys[2])
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out[1, 2], wk.philox4x32(grid[1, 2], keys[2]))


def test_matches_independent_reference():
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, size=(1000, 4), dtype=np.uint64).astype(np.uint32)
    key = np.array([0x12345678, 0x9ABCDEF0], np.uint32)
    for rounds in (0, 1, 7, 10, 16):
        ref = reference.philox(*counters.T.astype(np.uint64), int(key[0]), int(key[1]), rounds=rounds)
        np.testing.assert_array_equal(wk.philox4x32(counters, key, rounds=rounds), np.stack(ref, -1).astype(np.uint32))


@pytest.mark.parametrize(
    "kwargs, error, text",
    [
        (dict(counter=np.zeros(3, np.uint32), key=np.zeros(2, np.uint32)), ValueError, "counter must have shape"),
        (dict(counter=np.zeros(4, np.uint32), key=np.zeros(3, np.uint32)), ValueError, "key must have shape"),
        (dict(counter=np.zeros(4, np.float32), key=np.zeros(2, np.uint32)), TypeError, "counter must hold"),
        (dict(counter=np.full(4, -1), key=np.zeros(2, np.uint32)), ValueError, "counter words must be in"),
        (dict(counter=np.zeros(4, np.uint32), key=np.zeros(2, np.uint32), rounds=17), ValueError, "rounds must be in"),
        (dict(counter=np.zeros(4, np.uint32), key=np.zeros(2, np.uint32), rounds=10.0), TypeError, "rounds must be an int"),
        (dict(counter=np.zeros((2, 4), np.uint32), key=np.zeros((3, 2), np.uint32)), ValueError, "do not broadcast"),
    ],
)
def test_bad_arguments(kwargs, error, text):
    with pytest.raises(error, match=text):
        wk.philox4x32(**kwargs)


def test_derive_seed_is_the_documented_philox_call():
    seed, tag = 0x0123456789ABCDEF, 0xFEDCBA9876543210
    words = reference.philox(tag & 0xFFFFFFFF, tag >> 32, 0xFFFFFFFF, 0xFFFFFFFF, seed & 0xFFFFFFFF, seed >> 32)
    assert derive_seed(seed, tag) == (int(words[0]) << 32) | int(words[1])


def test_derived_seeds_are_distinct_and_in_range():
    seeds = {derive_seed(42, tag) for tag in range(20000)}
    assert len(seeds) == 20000
    assert all(0 <= s < 2**64 for s in seeds)
    assert derive_seed(42, 1) != derive_seed(43, 1)
