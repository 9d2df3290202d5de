"""C callbacks (``_jit.cpu_callback``): called by address from a compiled kernel, arrays passed by
pointer, and an exception inside one reported through its result, up to the sampler's
``MemoryError``; a one-tile block calls its callback on the calling thread."""

import numpy as np
import pytest
from numba import carray, prange

import warpinit as wi
from warpinit.kernels import fill_cpu
from warpinit.kernels._jit import call_callback, cpu_callback, cpu_jit, data_pointer

SIGNATURE = "int64(voidptr, int64, int64)"


def _scaled(address, size, factor):
    values = carray(address, size, np.float64)
    for k in range(size):
        values[k] *= factor
    return size


def _failing(address, size, factor):
    try:
        return np.empty(size - 10**6, dtype=np.float64).size  # a negative size raises
    except Exception:
        return np.int64(-1)


@cpu_jit(parallel=True)
def _caller(callback, values, factor):
    total = 0
    for t in prange(values.shape[0]):
        total += call_callback(callback, (data_pointer(values[t]), np.int64(values.shape[1]), np.int64(factor)))
    return total


def test_a_callback_is_called_by_address_on_each_row():
    callback = cpu_callback(_scaled, SIGNATURE, cache=False)
    values = np.arange(24, dtype=np.float64).reshape(6, 4)
    assert _caller(np.int64(callback.address), values, 3) == 24
    np.testing.assert_array_equal(values, 3 * np.arange(24).reshape(6, 4))


def test_an_exception_inside_a_callback_is_its_result():
    callback = cpu_callback(_failing, SIGNATURE, cache=False)
    assert _caller(np.int64(callback.address), np.zeros((3, 2)), 1) == -3


def test_a_tile_that_could_not_allocate_is_a_memory_error(monkeypatch):
    def tiles(address, size, counts, starts, strides, leads, keys, key_rows, base0, run_length, group, method, p,
              fmt, tile):
        return np.int64(fill_cpu.ALLOCATION_FAILED)

    callback = cpu_callback(tiles, fill_cpu._TILES_SIGNATURE, cache=False)
    monkeypatch.setattr(fill_cpu, "tiles_callback", lambda kind: callback)
    for size in (5 * fill_cpu.TILE, 100):  # the parallel driver; a one-tile block's serial one
        with pytest.raises(MemoryError, match="redraw buffers"):
            wi.truncated_normal(size, seed=1, device="cpu")


def test_a_small_orthogonal_member_that_could_not_allocate_is_a_memory_error(monkeypatch):
    from warpinit.kernels import orthogonal

    def member(out, batch, rows, cols, b, n, m, keys, p, gain, transpose, fmt):
        return np.int64(orthogonal.ALLOCATION_FAILED if b % 2 else 0)

    wi.orthogonal((8, 8), batch=2, seed=1, device="cpu")  # the float32 kind's driver, compiled
    callback = cpu_callback(member, orthogonal._MEMBER_SIGNATURE, cache=False)
    driver = orthogonal._SMALL_DRIVERS["float32"][1]
    monkeypatch.setitem(orthogonal._SMALL_DRIVERS, "float32", (callback, driver))
    with pytest.raises(MemoryError, match="2 of the 4 8 x 8 members"):
        wi.orthogonal((8, 8), batch=4, seed=1, device="cpu")


def test_a_one_tile_block_runs_on_the_calling_thread_with_the_same_values(monkeypatch):
    whole = wi.truncated_normal(3 * fill_cpu.TILE, seed=4, device="cpu")  # the parallel driver

    def unused(*arguments):
        raise AssertionError("a one-tile block went to the parallel driver")

    monkeypatch.setattr(fill_cpu, "DRIVERS", dict.fromkeys(fill_cpu.DRIVERS, unused))
    np.testing.assert_array_equal(wi.truncated_normal(fill_cpu.TILE, seed=4, device="cpu"), whole[:fill_cpu.TILE])
    np.testing.assert_array_equal(wi.truncated_normal(3 * fill_cpu.TILE, seed=4, device="cpu",
                                                      index=slice(5, 105)), whole[5:105])
    with pytest.raises(AssertionError, match="parallel driver"):
        wi.truncated_normal(fill_cpu.TILE + 1, seed=4, device="cpu")
