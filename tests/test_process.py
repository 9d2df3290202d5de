"""Process-level behaviour: lazy compilation, determinism across thread counts, fork and threads."""

import concurrent.futures
import hashlib
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import warpinit as wi

# Outputs whose bytes must not depend on the thread count: every output kind and method, whole tensors
# spanning several CPU tiles, and blocks.
_DIGEST = textwrap.dedent(
    """
    import hashlib, numpy as np, warpinit as wi
    h = hashlib.sha256()
    for dtype in ("float32", "bfloat16", "float16", "float64"):
        h.update(wi.truncated_normal((300, 1001), dtype=dtype, seed=5, device="cpu").tobytes())
        h.update(wi.truncated_normal((300, 1001), lower=3.0, upper=9.0, dtype=dtype, seed=5, device="cpu").tobytes())
        h.update(wi.uniform((70001,), dtype=dtype, seed=6, stream=2, device="cpu").tobytes())
        h.update(wi.normal((5, 40000), dtype=dtype, seed=7, index=(slice(1, 4), slice(3, 39999)), device="cpu").tobytes())
    print(h.hexdigest())
    """
)


def _run(code, **env):
    result = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, **env), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_identical_bits_for_one_and_two_threads():
    one = _run(_DIGEST, NUMBA_NUM_THREADS="1")
    two = _run(_DIGEST, NUMBA_NUM_THREADS="2")
    assert one == two
    assert len(one) == 64


def test_import_compiles_nothing():
    code = "import sys, warpinit; print('numba' in sys.modules, 'warpinit.kernels' in sys.modules)"
    assert _run(code) == "False False"
    code = (
        "import warpinit.kernels.fill_cpu as f\n"
        "print(sum(len(d.signatures) for d in (*f.DRIVERS.values(), f.SERIAL_DRIVER)))"
    )
    assert _run(code) == "0"


def test_kernels_are_cached_on_disk(tmp_path):
    code = (
        "import warpinit as wi\n"
        "from warpinit.kernels import fill_cpu\n"
        "wi.normal(10, seed=1, device='cpu')\n"  # one tile: the serial driver
        "wi.normal(10**5, seed=1, device='cpu')\n"
        "drivers = (fill_cpu.DRIVERS['float32'], fill_cpu.SERIAL_DRIVER)\n"
        "print(sum(sum(d.stats.cache_hits.values()) for d in drivers))"
    )
    assert _run(code, NUMBA_CACHE_DIR=str(tmp_path)) == "0"  # compiled and written
    assert any(tmp_path.rglob("*.nbi"))
    assert _run(code, NUMBA_CACHE_DIR=str(tmp_path)) == "2"  # loaded, not compiled


_FORK = textwrap.dedent(
    """
    import multiprocessing, sys
    import numpy as np, warpinit as wi

    def child(queue):
        queue.put(wi.truncated_normal((64, 1000), seed=21, device="cpu").sum(dtype=np.float64))

    if __name__ == "__main__":
        expected = wi.truncated_normal((64, 1000), seed=21, device="cpu").sum(dtype=np.float64)  # threads up
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        process = context.Process(target=child, args=(queue,))
        process.start()
        process.join(timeout=120)
        if process.is_alive():
            process.kill()
            sys.exit("the forked child hung in Numba's threading layer")
        assert process.exitcode == 0, process.exitcode
        assert queue.get(timeout=10) == expected
        print("ok")
    """
)


def test_fork_after_a_parallel_call_does_not_hang():
    # In a fresh process: only warpinit's threads exist when it forks (the test process may hold
    # other libraries' thread pools, which fork warns about for reasons of their own).
    assert _run(_FORK) == "ok"


def test_concurrent_calls_from_threads():
    expected = [wi.normal((200, 500), seed=s, device="cpu") for s in range(8)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: wi.normal((200, 500), seed=s, device="cpu"), range(8)))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_threading_layer_is_fork_and_thread_safe():
    from warpinit.kernels import threads

    wi.normal(10**5, seed=1, device="cpu")
    import numba

    layer = numba.threading_layer()
    if "NUMBA_THREADING_LAYER" not in os.environ:
        assert layer in ("tbb", "workqueue")
        assert threads.configure() == layer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_out_equals_allocation_and_blocks_equal_whole_across_tiles(dtype):
    shape = (3, 70_000)  # runs longer than a CPU tile
    whole = wi.truncated_normal(shape, dtype=dtype, seed=8, device="cpu")
    out = np.empty((2, 69_990), dtype=dtype)
    wi.truncated_normal(shape, dtype=dtype, seed=8, device="cpu", index=(slice(1, 3), slice(5, 69_995)), out=out)
    np.testing.assert_array_equal(out, whole[1:3, 5:69_995])
    assert hashlib.sha256(whole.tobytes()).hexdigest() == hashlib.sha256(
        wi.truncated_normal(shape, dtype=dtype, seed=8, device="cpu").tobytes()).hexdigest()
