"""warpinit.dask: chunks generated on dask workers equal the single-machine arrays bit for bit.

One distributed ``LocalCluster`` (two worker processes of one thread each, started with the spawn
method) serves the module. The references are computed in this process first, so the workers load
the compiled kernels from Numba's cache.
"""

import importlib
import os
import sys

import numpy as np
import pytest

dask = pytest.importorskip("dask")
pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import warpinit as wi  # noqa: E402
import warpinit.dask as wd  # noqa: E402
from dask.array.core import normalize_chunks  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

DTYPES = ("float16", "bfloat16", "float32", "float64")
# Non-default parameters for every sampler (truncated_normal on a one-sided tail: Robert's proposal).
SAMPLERS = {
    "uniform": {"minval": -0.5, "maxval": 3.0},
    "normal": {"mean": 1.0, "stddev": 0.5},
    "truncated_normal": {"mean": 0.0, "stddev": 2.0, "lower": 0.5, "upper": 4.0},
}


@pytest.fixture(scope="module")
def client():
    # Spawn (dask's default, set here so a user's config cannot change it): with "fork", distributed
    # forks from its event-loop thread and Numba warns that TBB may be left in an invalid state.
    with dask.config.set({"distributed.worker.multiprocessing-method": "spawn"}):
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster, distributed.Client(cluster) as client:
            yield client


def compute(client, *arrays):
    return client.gather(client.compute(list(arrays)))


def same_bits(a, b):
    assert np.shape(a) == np.shape(b)
    a, b = np.asarray(a).reshape(-1), np.asarray(b).reshape(-1)  # 1-D: a 0-d array has no byte view
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


# Sampling ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("function", sorted(SAMPLERS))
def test_chunks_equal_the_single_machine_tensor(client, function, dtype):
    parameters = SAMPLERS[function]
    cases = [
        ((37, 23), (10, 8)),  # regular
        ((37, 23), ((5, 0, 20, 12), (1, 22))),  # irregular, with an empty chunk
        ((6, 7, 9), (4, 3, 5)),  # 3-D: blocks of runs on every axis
        ((1000,), "auto"),
    ]
    with dask.config.set({"array.chunk-size": "512B"}):  # "auto" then makes several chunks
        arrays = [getattr(wd, function)(shape, chunks=chunks, dtype=dtype, seed=11, stream=3, **parameters)
                  for shape, chunks in cases]
    expected = [getattr(wi, function)(shape, dtype=dtype, seed=11, stream=3, device="cpu", **parameters)
                for shape, _ in cases]
    assert arrays[3].numblocks[0] > 1
    for array, result, reference in zip(arrays, compute(client, *arrays), expected):
        assert array.dtype == reference.dtype
        assert same_bits(result, reference), (function, dtype, array.chunks)


def test_auto_chunks_follow_dask_chunk_size():
    with dask.config.set({"array.chunk-size": "4KiB"}):
        array = wd.normal((64, 100), seed=1)
        expected = normalize_chunks("auto", (64, 100), dtype=np.float32)
    assert array.chunks == expected
    assert all(a * b * 4 <= 4096 for a in array.chunks[0] for b in array.chunks[1])
    assert wd.normal((64, 100), seed=1, dtype="float64", chunks="8KiB").chunks == normalize_chunks(
        "8KiB", (64, 100), dtype=np.float64)


def test_scalars_and_empty_shapes(client):
    arrays = [wd.normal((), seed=2), wd.uniform((0, 5), seed=2), wd.truncated_normal(7, chunks=3, seed=2)]
    expected = [wi.normal((), seed=2, device="cpu"), wi.uniform((0, 5), seed=2, device="cpu"),
                wi.truncated_normal(7, seed=2, device="cpu")]
    for result, reference in zip(compute(client, *arrays), expected):
        assert same_bits(np.asarray(result), reference)


def test_chunks_are_computed_on_the_workers(client):
    array = wd.uniform((40, 30), chunks=(10, 15), seed=4)
    workers = client.scheduler_info()["workers"]
    assert os.getpid() not in client.run(os.getpid).values()
    with distributed.get_task_stream(client) as stream:
        (result,) = compute(client, array)
    ran = {str(record["key"]): record["worker"] for record in stream.data}
    keys = [str(key) for key in dask.core.flatten(array.__dask_keys__())]
    assert len(keys) == 8
    assert all(ran.get(key) in workers for key in keys)
    assert same_bits(result, wi.uniform((40, 30), seed=4, device="cpu"))


# Seeds and names ------------------------------------------------------------------------------------------


def test_seed_none_draws_one_seed_for_the_whole_array(client):
    array = wd.truncated_normal((50, 20), chunks=(16, 7), seed=None)
    seed = wd.seed_of(array)
    first, again = compute(client, array, array)
    assert same_bits(first, again)
    assert same_bits(first, wi.truncated_normal((50, 20), seed=seed, device="cpu"))
    assert wd.truncated_normal((50, 20), chunks=(16, 7), seed=seed).name == array.name
    assert wd.seed_of(wd.truncated_normal((50, 20), chunks=(16, 7))) != seed
    stack = wd.orthogonal((8, 8), batch=3, chunks=1)
    assert 0 <= wd.seed_of(stack) < 2**64
    with pytest.raises(ValueError, match="not an array built by warpinit.dask"):
        wd.seed_of(array + 1)


def test_names_are_deterministic():
    def build(**changes):
        arguments = dict(chunks=(5, 4), mean=0.5, stddev=2.0, dtype="float32", seed=7, stream=1)
        arguments.update(changes)
        return wd.normal((10, 8), **arguments)

    array = build()
    assert array.name.startswith("warpinit-normal-7-")
    assert build().name == array.name
    assert build().__dask_keys__() == array.__dask_keys__()
    assert build(seed=np.uint64(7), dtype=np.float32, chunks=((5, 5), (4, 4)), mean=np.float64(0.5)).name == array.name
    for change in ({"seed": 8}, {"stream": 2}, {"mean": 0.25}, {"stddev": 1.0}, {"dtype": "float64"},
                   {"chunks": (2, 8)}):
        assert build(**change).name != array.name, change
    assert wd.uniform((10, 8), chunks=(5, 4), seed=7).name != wd.normal((10, 8), chunks=(5, 4), seed=7).name
    stack = wd.orthogonal((6, 4), batch=4, chunks=2, seed=7)
    assert stack.name == wd.orthogonal((6, 4), batch=4, chunks={0: 2}, seed=7).name
    assert stack.name != wd.orthogonal((6, 4), batch=4, chunks=2, seed=7, gain=2.0).name


# Errors ----------------------------------------------------------------------------------------------------

SAMPLING_ERRORS = [
    ("normal", (4, -1), {}),
    ("normal", (4, 2.5), {}),
    ("uniform", "ab", {}),
    ("uniform", 4, {"dtype": "int32"}),
    ("uniform", 4, {"seed": -1}),
    ("uniform", 4, {"seed": 2**64}),
    ("normal", 4, {"seed": 1.5}),
    ("normal", 4, {"stream": 2**32}),
    ("uniform", 4, {"minval": 1.0, "maxval": 1.0}),
    ("uniform", 4, {"maxval": float("nan")}),
    ("normal", 4, {"stddev": 0.0}),
    ("normal", 4, {"mean": "a"}),
    ("normal", 4, {"stddev": 1e-30, "dtype": "float16"}),
    ("truncated_normal", 4, {"lower": 2.0, "upper": 1.0}),
    ("truncated_normal", 4, {"lower": True}),
]


@pytest.fixture
def no_graph(monkeypatch):
    """Fail if a graph is built: validation must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("a graph was built before the arguments were validated")

    monkeypatch.setattr(wd.da, "map_blocks", refuse)


@pytest.mark.parametrize("function, shape, arguments", SAMPLING_ERRORS)
def test_sampling_errors_are_the_array_api_errors(no_graph, function, shape, arguments):
    with pytest.raises((TypeError, ValueError)) as expected:
        getattr(wi, function)(shape, device="cpu", **arguments)
    with pytest.raises(expected.type) as raised:
        getattr(wd, function)(shape, **arguments)
    assert str(raised.value) == str(expected.value)


ORTHOGONAL_ERRORS = [
    ((5,), {"batch": 2}),
    ((5, -1), {"batch": 2}),
    ((5, 4), {"batch": 0}),
    ((5, 4), {"batch": 1.5}),
    ((5, 4), {"batch": 2, "gain": float("inf")}),
    ((5, 4), {"batch": 2, "dtype": "int32"}),
    ((5, 4), {"batch": 2, "dtype": np.clongdouble}),
    ((5, 4), {"batch": 2, "seed": 2**64}),
    ((5, 4), {"batch": 2, "stream": 2**32 - 1}),
]


@pytest.mark.parametrize("shape, arguments", ORTHOGONAL_ERRORS)
def test_orthogonal_errors_are_the_array_api_errors(no_graph, shape, arguments):
    with pytest.raises((TypeError, ValueError)) as expected:
        wi.orthogonal(shape, device="cpu", **arguments)
    with pytest.raises(expected.type) as raised:
        wd.orthogonal(shape, **arguments)
    assert str(raised.value) == str(expected.value)


@pytest.mark.parametrize("build, message", [
    (lambda: wd.normal((5, 4), chunks=((3, 3), (4,)), seed=1), "chunks="),
    (lambda: wd.normal((5, 4), chunks=(2, 2, 2), seed=1), "chunks="),
    (lambda: wd.normal((5, 4), chunks="lots", seed=1), "chunks="),
    (lambda: wd.orthogonal((5, 4), batch=4, chunks=(2, 3, 4), seed=1), "chunks must keep every matrix whole"),
    (lambda: wd.orthogonal((5, 4), batch=4, chunks=((2, 2), (5,), (2, 2)), seed=1), "splits axis 2"),
    (lambda: wd.orthogonal((5, 4), batch=4, chunks=((2, 1), (5,), (4,)), seed=1), "chunks="),
])
def test_bad_chunks_name_chunks(no_graph, build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_orthogonal_needs_a_batch(no_graph):
    with pytest.raises(TypeError, match="batch must be a positive int"):
        wd.orthogonal((5, 4), batch=None)


def test_missing_dask_names_the_extra(monkeypatch):
    for name in ("dask", "dask.array", "dask.array.core", "dask.base"):
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "warpinit.dask")
    with pytest.raises(ImportError, match=r"pip install 'warpinit\[dask\]'"):
        importlib.import_module("warpinit.dask")


# Orthogonal stacks ---------------------------------------------------------------------------------------

ORTHOGONAL = [
    ((64, 48), 5, 2, "float32", 1.0),  # small-matrix kernel, one member per thread
    ((48, 64), 4, {0: 3}, "float16", 1.0),  # wide: orthonormal rows
    ((2, 30, 20), 3, ((1, 0, 2), (2,), (30,), (20,)), "float64", 0.5),  # with an empty chunk
    ((16, 16), 9, "auto", "bfloat16", 2.0),
    ((600, 520), 3, 1, "float32", 1.0),  # GEMM path (> 512 * 512 elements), BLAS per member
    ((520, 600), 3, 2, "bfloat16", 1.0),
]


def test_orthogonal_stacks_equal_the_single_machine_stack(client):
    with dask.config.set({"array.chunk-size": "2KiB"}):
        arrays = [wd.orthogonal(shape, batch=batch, chunks=chunks, dtype=dtype, gain=gain, seed=13, stream=5)
                  for shape, batch, chunks, dtype, gain in ORTHOGONAL]
    assert arrays[3].chunks[0] == (4, 4, 1)  # "auto": whole matrices (512 B each in bfloat16) per 2 KiB
    # Q depends on the BLAS's thread count (the counter contract covers the Gaussian inputs only). Chunks
    # run one BLAS thread per member, whatever the workers' environment (the CI process exports
    # OPENBLAS_NUM_THREADS=2, which spawned workers inherit), as wi.orthogonal does per member when it
    # spreads a batch over threads; a single-member call here would use every BLAS thread instead.
    with threadpool_limits(1, user_api="blas"):
        expected = [wi.orthogonal(shape, batch=batch, dtype=dtype, gain=gain, seed=13, stream=5, device="cpu")
                    for shape, batch, _, dtype, gain in ORTHOGONAL]
    for array, result, reference in zip(arrays, compute(client, *arrays), expected):
        assert array.chunks[1:] == tuple((size,) for size in reference.shape[1:])
        assert same_bits(result, reference), array.chunks


def test_orthogonal_chunks_agree_with_one_matrix_calls_within_tolerance():
    # A one-matrix call uses every BLAS thread, the chunks one per member: the rounding may differ (it
    # does with OpenBLAS on two threads), within the orthogonality tolerance.
    array = wd.orthogonal((600, 520), batch=2, chunks=1, seed=17)
    result = array.compute(scheduler="sync")
    for k, member in enumerate(result):
        alone = wi.orthogonal((600, 520), seed=17, stream=k, device="cpu")
        np.testing.assert_allclose(member, alone, rtol=0, atol=1e-5)
        member = member.astype(np.float64)
        np.testing.assert_allclose(member.T @ member, np.eye(520), rtol=0, atol=1e-5)
