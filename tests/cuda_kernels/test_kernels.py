"""The CUDA kernels, launched directly, against the CPU path.

Runs in its own process: under Numba's CUDA simulator (tests/test_cuda_simulator.py starts it with
NUMBA_ENABLE_CUDASIM=1; shapes stay at hundreds of elements because the simulator runs Python per
thread), or on a real GPU (bench/gpu_check.sh). "Same values" as DESIGN.md defines it: bit for bit in
the simulator, which runs the very source the CPU compiles; within 4 ulp on a GPU, whose libm and
FMA contraction differ, with the same accept/reject decisions except next to a bound.
"""

import numpy as np
import pytest
from numba import cuda

import reference
from warpinit.kernels import fill_cpu, fill_cuda, layout, plan
from warpinit.kernels._jit import cuda_twin, simulator_enabled
from warpinit.kernels.philox import PHILOX_ROUNDS, key_table, philox4x32

STRICT = simulator_enabled()
SEED = 0xDEADBEEF12345678

_philox = cuda_twin(philox4x32)


@cuda.jit
def _philox_kernel(counters, keys, rounds, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        w = _philox(np.uint64(counters[i, 0]), np.uint64(counters[i, 1]), np.uint64(counters[i, 2]),
                    np.uint64(counters[i, 3]), np.uint64(keys[i, 0]), np.uint64(keys[i, 1]), rounds)
        out[i, 0] = np.uint32(w[0])
        out[i, 1] = np.uint32(w[1])
        out[i, 2] = np.uint32(w[2])
        out[i, 3] = np.uint32(w[3])


def test_philox_known_answers_on_cuda(data_dir):
    for rounds in (7, PHILOX_ROUNDS):
        rows = [r for r in reference.read_kat(data_dir / "philox_kat.txt") if r[0] == rounds]
        counters = np.array([r[1] for r in rows], np.uint32)
        keys = np.array([r[2] for r in rows], np.uint32)
        out = np.zeros((len(rows), 4), np.uint32)
        _philox_kernel[1, 32](counters, keys, rounds, out)
        np.testing.assert_array_equal(out, np.array([r[3] for r in rows], np.uint32))


CASES = [
    ("uniform", lambda dt: plan.uniform(-1.0, 2.0, dt)),
    ("normal", lambda dt: plan.normal(0.5, 2.0, dt)),
    ("truncated normal proposal", lambda dt: plan.truncated_normal(0.0, 1.0, -2.0, 2.0, dt)),
    ("exponential tail", lambda dt: plan.truncated_normal(0.0, 1.0, 3.0, np.inf, dt)),
    ("uniform narrow", lambda dt: plan.truncated_normal(0.0, 1.0, 1.9, 2.0, dt)),
    ("mirrored tail", lambda dt: plan.truncated_normal(1.0, 0.5, -10.0, -9.0, dt)),
]
DTYPES = [np.dtype(np.float32), plan.BFLOAT16, plan.FLOAT16, np.dtype(np.float64)]
BLOCKS = {  # name: (block, key table)
    "whole": lambda: (layout.whole((301,)), key_table(SEED, 9)),
    "unaligned block": lambda: (layout.select((5, 37), (slice(1, 4), slice(3, 34))), key_table(SEED, 9)),
    "columns": lambda: (layout.select((4, 6), (slice(None), slice(1, 3))), key_table(SEED, 9)),
    # member r with its own seed and stream
    "batch": lambda: (layout.batch(3, (5, 7)), key_table([SEED, 5, 2**64 - 1], [9, 10, 2**32 - 1])),
}
# Every case and dtype on an unaligned block; the other layouts with every case in float32. (The
# simulator runs a Python thread per CUDA thread: the matrix is kept to what each check needs.)
MATRIX = [(case, dtype, "unaligned block") for case in CASES for dtype in DTYPES] + [
    (case, DTYPES[0], layout_name) for case in CASES for layout_name in ("whole", "columns", "batch")
]


def _cpu(block, keys, p):
    out = np.empty(block.out_shape, p.dtype)
    fill_cpu.launch(out, block, p, keys)
    return out


def _gpu(block, keys, p):
    out = np.full(block.size, 0xFFFF if p.fmt else np.nan, dtype=p.storage_dtype)  # poisoned
    device_out = cuda.to_device(out)
    failures = fill_cuda.launch_device(device_out, block, p, keys)
    assert failures.copy_to_host()[0] == 0
    return device_out.copy_to_host().view(p.dtype).reshape(block.out_shape)


@pytest.mark.parametrize(
    "case, dtype, block_name", MATRIX, ids=[f"{c[0]}-{d.name}-{b}" for c, d, b in MATRIX]
)
def test_fill_kernel_matches_cpu(case, dtype, block_name):
    _, make = case
    p = make(dtype)
    block, keys = BLOCKS[block_name]()
    cpu, gpu = _cpu(block, keys, p), _gpu(block, keys, p)
    if STRICT:
        np.testing.assert_array_equal(gpu.reshape(-1).view(np.uint8), cpu.reshape(-1).view(np.uint8))
        return
    # Real GPU: within 4 ulp, except elements whose candidate sat next to a bound.
    distance = reference.ulp_distance(gpu.reshape(-1).astype(p.dtype) if p.fmt == 0 else gpu.reshape(-1).astype(np.float32),
                                      cpu.reshape(-1).astype(p.dtype) if p.fmt == 0 else cpu.reshape(-1).astype(np.float32),
                                      p.dtype if p.fmt == 0 else np.float32)
    assert np.mean(distance > 4) < 0.01


# The fine methods, each in a dtype whose request needs it (see kernels/plan.py), and the constant plan.
FINE_CASES = [
    ("fine normal", lambda: plan.truncated_normal(0.1, 1e-7, -2.0, 2.0, np.dtype(np.float32))),
    ("fine tail", lambda: plan.truncated_normal(0.1, 1e-6, 3.0, np.inf, np.dtype(np.float32))),
    ("fine mirrored tail", lambda: plan.truncated_normal(-0.1, 1e-6, -np.inf, -3.0, np.dtype(np.float32))),
    ("fine narrow", lambda: plan.truncated_normal(0.0, 1.0, 3.0, 3.0001, np.dtype(np.float32))),
    ("fine flat", lambda: plan.uniform(0.1, 0.1 + 5e-8, np.dtype(np.float32))),
    ("fine midpoint tail bfloat16", lambda: plan.truncated_normal(1000.0, 1.0, 2.001, np.inf, plan.BFLOAT16)),
    ("fine boundary bfloat16", lambda: plan.truncated_normal(1002.0, 0.1, -25.0, 25.0, plan.BFLOAT16)),
    ("fine midpoint float16", lambda: plan.truncated_normal(1000.25, 0.005, -np.inf, np.inf, plan.FLOAT16)),
    ("fine far tail float64", lambda: plan.truncated_normal(0.0, 1.0, 1e6, np.inf, np.dtype(np.float64))),
    ("fine far narrow float64", lambda: plan.truncated_normal(0.0, 1.0, 1e6, 1e6 + 1e-7, np.dtype(np.float64))),
    ("single value", lambda: plan.truncated_normal(1e-3, 1e-12, -100.0, -10.0, np.dtype(np.float32))),
]


@pytest.mark.parametrize("block_name", ["unaligned block", "batch"])
@pytest.mark.parametrize("case", FINE_CASES, ids=[c[0] for c in FINE_CASES])
def test_fine_methods_match_cpu(case, block_name):
    _, make = case
    p = make()
    assert p.method >= 4 or p.params[1] == 0  # a fine method, or the constant plan
    block, keys = BLOCKS[block_name]()
    cpu, gpu = _cpu(block, keys, p), _gpu(block, keys, p)
    if STRICT:
        np.testing.assert_array_equal(gpu.reshape(-1).view(np.uint8), cpu.reshape(-1).view(np.uint8))
        return
    # Real GPU: values are exact output values; libm may move a candidate next to a cell boundary.
    assert np.mean(gpu.reshape(-1).view(np.uint8) != cpu.reshape(-1).view(np.uint8)) < 0.05


def test_empty_block_launches_nothing():
    p = plan.normal(0.0, 1.0, np.dtype(np.float32))
    block = layout.select((4, 5), (slice(2, 2), slice(None)))
    out = cuda.to_device(np.zeros(0, np.float32))
    assert fill_cuda.launch_device(out, block, p, key_table(1, 0)).copy_to_host()[0] == 0


@pytest.mark.skipif(STRICT, reason="the public device='cuda' path needs CuPy and a real GPU")
def test_public_api_on_gpu_matches_cpu():
    import cupy

    import warpinit as wi

    for dtype in ("float32", "bfloat16", "float16", "float64"):
        gpu = wi.truncated_normal((1000, 37), dtype=dtype, seed=3, device="cuda")
        assert isinstance(gpu, cupy.ndarray)
        cpu = wi.truncated_normal((1000, 37), dtype=dtype, seed=3, device="cpu")
        assert np.mean(np.abs(cupy.asnumpy(gpu).astype(np.float64) - cpu.astype(np.float64)) > 1e-2) < 1e-3


@pytest.mark.skipif(STRICT, reason="the public device='cuda' path needs CuPy and a real GPU")
def test_public_orthogonal_on_gpu():
    import cupy

    import warpinit as wi

    for shape, batch in (((128, 96), 64), ((1024, 700), 2)):
        for dtype, tolerance in (("float32", 2e-5), ("float64", 1e-12), ("bfloat16", 2.0**-7 + 2.0**-16 + 1e-5)):
            q = wi.orthogonal(shape, batch=batch, dtype=dtype, seed=4, device="cuda")
            assert isinstance(q, cupy.ndarray) and q.shape == (batch, *shape)
            m = cupy.asnumpy(q).astype(np.float64)
            gram = np.matmul(m.swapaxes(1, 2), m)
            assert np.abs(gram - np.eye(shape[1])).max() <= tolerance
            # Same Gaussian inputs as the CPU: the same matrices within the orthogonality tolerance.
            cpu = wi.orthogonal(shape, batch=batch, dtype=dtype, seed=4, device="cpu").astype(np.float64)
            assert np.abs(m - cpu).max() <= 10 * tolerance + (2e-2 if dtype == "bfloat16" else 0)


# Failures: reported as on the CPU, without a synchronisation on the normal path --------------------------


def _hopeless(dtype=np.dtype(np.float32)):
    """A uniform plan whose accepted interval [3, 4] no candidate of [0, 1) reaches: every attempt fails."""
    import dataclasses

    good = plan.uniform(0.0, 1.0, dtype)
    compute = good.params[0].dtype.type
    return dataclasses.replace(good, params=(compute(0.0), compute(1.0), compute(3.0), compute(4.0)) + good.params[4:])


@pytest.fixture
def few_attempts(monkeypatch):
    """Kernels compiled with MAX_ATTEMPTS = 3, so that a failing element gives up quickly."""
    monkeypatch.setattr(fill_cuda, "MAX_ATTEMPTS", 3)
    monkeypatch.setattr(fill_cuda, "_SOURCES", {})
    monkeypatch.setattr(fill_cuda, "_KERNELS", {})
    fill_cuda.check_failures(wait=True)  # nothing left over from other tests
    yield
    fill_cuda.check_failures(wait=True)


def test_cpu_raises_at_the_call_for_an_interval_no_candidate_reaches():
    with pytest.raises(RuntimeError, match=r"5 element\(s\) found no value within the bounds"):
        fill_cpu.launch(np.empty(5, np.float32), layout.whole((5,)), _hopeless(), key_table(1, 0))


def test_gpu_failures_are_reported_by_the_next_launch_and_by_check(few_attempts):
    bad, keys = _hopeless(), key_table(1, 0)
    out = cuda.to_device(np.zeros(5, np.float32))
    fill_cuda.launch_reported(out, layout.whole((5,)), bad, keys)  # returns without raising: no synchronisation
    assert np.isnan(out.copy_to_host()).all()  # left NaN, never a value out of bounds (the copy waits for it)
    with pytest.raises(RuntimeError, match=r"GPU fill: 5 element\(s\) of a float32 fill .* after 3 attempts"):
        fill_cuda.check_failures(wait=False)
    fill_cuda.check_failures(wait=True)  # reported once

    # The next launch raises before launching anything (its output stays as it was).
    fill_cuda.launch_reported(out, layout.whole((5,)), bad, keys)
    cuda.synchronize()  # on a GPU: the failed kernel has finished, as the next launch's read needs
    fine = cuda.to_device(np.full(4, 7.0, np.float32))
    with pytest.raises(RuntimeError, match=r"5 element\(s\)"):
        fill_cuda.launch_reported(fine, layout.whole((4,)), plan.uniform(0.0, 1.0, np.dtype(np.float32)), keys)
    assert (fine.copy_to_host() == 7.0).all()

    # The normal path reports nothing and reuses its counters (one per launch in flight).
    import warpinit

    for _ in range(3):
        fill_cuda.launch_reported(fine, layout.whole((4,)), plan.normal(0.0, 1.0, np.dtype(np.float32)), keys)
    warpinit.check_gpu_failures()
    assert sum(len(spares) for spares in fill_cuda._SPARE.values()) <= 2
    # 16-bit and float64 failures too, each naming its fill.
    for dtype in (plan.BFLOAT16, np.dtype(np.float64)):
        storage = cuda.to_device(np.zeros(3, np.uint16 if dtype == plan.BFLOAT16 else np.float64))
        fill_cuda.launch_reported(storage, layout.whole((3,)), _hopeless(dtype), keys)
        with pytest.raises(RuntimeError, match=rf"3 element\(s\) of a {dtype.name} fill"):
            warpinit.check_gpu_failures(wait=True)
        held = storage.copy_to_host()  # the NaN sentinel of the storage format
        assert (held == 0x7FFF).all() if dtype == plan.BFLOAT16 else np.isnan(held).all()
