"""The shared distribution helpers of the framework faces (bindings/_distributions.py): a block drawn
alone equals the same block of the whole tensor, for every kind and dtype."""

import numpy as np
import pytest

from warpinit import _distributions as distributions
from warpinit.kernels.philox import key_table

CASES = [
    ("uniform", (-0.5, 2.0)),
    ("normal", (1.0, 3.0)),
    ("truncated_normal", (0.5, 2.0)),
    ("truncated_normal", (0.0, 1.0, -1.0, 3.0)),
    ("orthogonal", (1.5,)),
    ("constant", (0.25,)),
]
BLOCKS = [((0, 24), (0, 40)), ((6, 12), (10, 30)), ((23, 24), (0, 40)), ((5, 5), (3, 9))]


@pytest.mark.parametrize("kind, parameters", CASES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_block_equals_the_same_block_of_the_whole(kind, parameters, dtype):
    shape, seed = (24, 40), 2**63 + 12345
    distribution = distributions.Distribution(kind, parameters)
    whole = distributions.generate(distribution, shape, dtype, key_table(seed, 0), "cpu")[0]
    cache = {}
    for ranges in BLOCKS:
        block = distributions.generate_block(distribution, shape, dtype, seed, ranges, "cpu", cache)
        assert block.dtype == whole.dtype and block.flags.c_contiguous
        expected = whole[tuple(slice(start, stop) for start, stop in ranges)]
        np.testing.assert_array_equal(block.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))
    assert ("orthogonal" in cache) == (kind == "orthogonal")  # Q built once for all the blocks


def test_block_of_a_3d_tensor_and_another_seed_differs():
    shape = (4, 6, 8)
    normal = distributions.normal(0.0, 1.0)
    whole = distributions.generate(normal, shape, "float32", key_table(7, 0), "cpu")[0]
    block = distributions.generate_block(normal, shape, "float32", 7, ((1, 3), (0, 6), (2, 5)), "cpu")
    np.testing.assert_array_equal(block, whole[1:3, :, 2:5])
    other = distributions.generate_block(normal, shape, "float32", 8, ((1, 3), (0, 6), (2, 5)), "cpu")
    assert not np.array_equal(block, other)
