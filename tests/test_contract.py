"""The counter contract: which Philox words each element reads, blocks, streams, 64-bit indices."""

import ml_dtypes
import numpy as np
import pytest

import reference
import warpinit as wi

SEED = 0x9E3779B97F4A7C15  # both key words non-zero
N = 50_003  # not a multiple of any group size nor of the CPU tile


def test_uniform_float32_is_bit_exact_against_reference():
    got = wi.uniform(N, seed=SEED, stream=7, device="cpu")
    np.testing.assert_array_equal(got, reference.uniform_float32(SEED, 7, np.arange(N)))


def test_uniform_float64_is_bit_exact_against_reference():
    got = wi.uniform(N, minval=-3.0, maxval=5.0, dtype="float64", seed=SEED, stream=1, device="cpu")
    np.testing.assert_array_equal(got, reference.uniform_float64(SEED, 1, np.arange(N), -3.0, 5.0))


def test_normal_words_cosine_and_sine_branches():
    got = wi.normal(N, seed=SEED, stream=2, device="cpu")
    ref = reference.normal_float32(SEED, 2, np.arange(N))
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    got64 = wi.normal(N, dtype="float64", seed=SEED, stream=2, device="cpu")
    np.testing.assert_allclose(got64, reference.normal_float64(SEED, 2, np.arange(N)), rtol=1e-14, atol=1e-14)


def test_truncated_normal_attempts_follow_the_contract():
    got = wi.truncated_normal(N, seed=SEED, stream=4, device="cpu").astype(np.float64)
    ref, ambiguous = reference.truncated_normal_float32(SEED, 4, np.arange(N), -2.0, 2.0)
    assert ambiguous.mean() < 1e-3
    np.testing.assert_allclose(got[~ambiguous], ref[~ambiguous], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize(
    "sampler, kwargs",
    [
        (wi.uniform, {}),
        (wi.normal, {"mean": 0.5, "stddev": 2.0}),
        (wi.truncated_normal, {}),
        (wi.truncated_normal, {"lower": 3.0, "upper": np.inf}),
        (wi.truncated_normal, {"lower": 1.9, "upper": 2.0}),
        (wi.truncated_normal, {"lower": -10.0, "upper": -9.0}),
    ],
)
@pytest.mark.parametrize(
    "index",
    [
        (slice(3, 9), slice(5, 37), slice(None)),
        (4, slice(1, 2), slice(3, 4)),
        (Ellipsis, 2),
        (slice(-3, None), Ellipsis),
        (0, 0, 0),
        (slice(2, 5),),
        (slice(7, 3), slice(None)),
    ],
)
def test_index_block_equals_block_of_whole_tensor(sampler, kwargs, dtype, index):
    shape = (11, 41, 3)
    whole = sampler(shape, dtype=dtype, seed=SEED, stream=5, device="cpu", **kwargs)
    block = sampler(shape, dtype=dtype, seed=SEED, stream=5, device="cpu", index=index, **kwargs)
    expected = whole[index]
    assert block.shape == np.shape(expected)
    bits = block.reshape(-1).view(np.uint8)
    np.testing.assert_array_equal(bits, np.ascontiguousarray(expected).reshape(-1).view(np.uint8))


def test_large_tensor_blocks_use_64_bit_indices():
    # The last elements of a tensor of 2**33 + 6 elements: group indices above 2**32.
    n = 2**33 + 6
    block = wi.uniform((n,), seed=SEED, stream=3, index=slice(n - 12, n), device="cpu")
    np.testing.assert_array_equal(block, reference.uniform_float32(SEED, 3, np.arange(n - 12, n, dtype=np.uint64)))
    block64 = wi.uniform((2, n), dtype="float64", seed=SEED, index=(1, slice(n - 5, n)), device="cpu")
    flat = n + np.arange(n - 5, n, dtype=np.uint64)
    np.testing.assert_array_equal(block64, reference.uniform_float64(SEED, 0, flat))
    # Same group lanes in and beyond 2**32 groups differ: the high word of the counter is used.
    low = wi.uniform((8,), seed=SEED, device="cpu")
    high = wi.uniform((2**34 + 8,), seed=SEED, index=slice(2**34, 2**34 + 8), device="cpu")
    assert not np.array_equal(low, high)


@pytest.mark.parametrize("dtype", ["bfloat16", "float32", "float64"])
def test_batch_member_r_is_the_tensor_of_its_key_row(dtype):
    from warpinit.kernels import fill_cpu, layout, plan
    from warpinit.kernels.philox import key_table

    members, shape = 5, (7, 301)
    p = plan.truncated_normal(0.0, 1.0, -2.0, 2.0, np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype))
    out = np.empty((members, *shape), dtype=p.dtype)
    seeds = [SEED, 0, 2**64 - 1, 12345, SEED]
    fill_cpu.launch(out, layout.batch(members, shape), p, key_table(seeds, 40 + np.arange(members)))
    for r in range(members):
        single = wi.truncated_normal(shape, dtype=dtype, seed=seeds[r], stream=40 + r, device="cpu")
        np.testing.assert_array_equal(out[r].view(np.uint8), single.view(np.uint8))


def test_streams_and_seeds_are_uncorrelated():
    n = 1_000_000
    base = wi.normal(n, seed=1, stream=0, device="cpu").astype(np.float64)
    others = {
        "next stream": wi.normal(n, seed=1, stream=1, device="cpu"),
        "last stream": wi.normal(n, seed=1, stream=2**32 - 1, device="cpu"),
        "next seed": wi.normal(n, seed=2, stream=0, device="cpu"),
        "high key word": wi.normal(n, seed=1 + 2**32, stream=0, device="cpu"),
        "shifted by one element": wi.normal(n + 1, seed=1, device="cpu")[1:],
    }
    # |r| < 5.5 / sqrt(n): a false alarm has probability below 4e-8 per pair.
    for name, other in others.items():
        r = np.corrcoef(base, other.astype(np.float64))[0, 1]
        assert abs(r) < 5.5 / np.sqrt(n), name
    # Uniform words: the pairs of a stream and its neighbour are independent in a 2-D histogram too.
    u0 = wi.uniform(n, seed=3, stream=0, device="cpu")
    u1 = wi.uniform(n, seed=3, stream=1, device="cpu")
    counts, _, _ = np.histogram2d(u0, u1, bins=16, range=[[0, 1], [0, 1]])
    from scipy import stats

    assert stats.chisquare(counts.ravel()).pvalue > 1e-4


def test_bfloat16_and_float16_round_the_float32_computation():
    f32 = wi.normal(1000, mean=1.0, stddev=3.0, seed=SEED, device="cpu")
    bf16 = wi.normal(1000, mean=1.0, stddev=3.0, dtype="bfloat16", seed=SEED, device="cpu")
    f16 = wi.normal(1000, mean=1.0, stddev=3.0, dtype="float16", seed=SEED, device="cpu")
    np.testing.assert_array_equal(bf16, f32.astype(ml_dtypes.bfloat16))
    np.testing.assert_array_equal(f16, f32.astype(np.float16))
