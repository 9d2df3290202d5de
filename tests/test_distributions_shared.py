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
    ("sparse", (0.3, 2.0)),
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
    assert (kind in cache) == (kind in ("orthogonal", "sparse"))  # matrices built once for all the blocks


def test_block_of_a_3d_tensor_and_another_seed_differs():
    shape = (4, 6, 8)
    normal = distributions.normal(0.0, 1.0)
    whole = distributions.generate(normal, shape, "float32", key_table(7, 0), "cpu")[0]
    block = distributions.generate_block(normal, shape, "float32", 7, ((1, 3), (0, 6), (2, 5)), "cpu")
    np.testing.assert_array_equal(block, whole[1:3, :, 2:5])
    other = distributions.generate_block(normal, shape, "float32", 8, ((1, 3), (0, 6), (2, 5)), "cpu")
    assert not np.array_equal(block, other)


@pytest.mark.parametrize("shape, in_axis, out_axis, batch_axis, expected", [
    ((96, 80), -2, -1, (), (96, 80)),  # Keras's dense
    ((32, 12, 3), 1, 0, (), (36, 96)),  # torch's (out, in, kernel)
    ((3, 3, 16, 32), -2, -1, (), (144, 288)),
    ((8, 24, 40), -2, -1, 0, (24, 40)),
    ((12, 10, 64), (0, 1), -1, (), (120, 64)),
    ((8,), 0, 0, (), (1, 1)),  # an axis in both groups: JAX's quotient, 8 / 8 / 8 * 8
    ((4, 6, 5), (0, 1), 1, (), (20, 5 * 6 / 6)),
])
def test_fans_follow_the_one_formula_of_every_face(shape, in_axis, out_axis, batch_axis, expected):
    assert distributions.fans(shape, in_axis, out_axis, batch_axis) == tuple(float(f) for f in expected)


def test_fans_equal_jax_own_and_refuse_axes_out_of_range():
    jax_initializers = pytest.importorskip("jax._src.nn.initializers")
    for shape, in_axis, out_axis, batch_axis in [((2, 3, 4, 5), 0, (2, 3), 1), ((2, 3, 4, 5), (0, 1), (-2, -1), ()),
                                                 ((7,), 0, 0, ()), ((4, 6, 5), (0, 1), 1, ()), ((5, 6), -1, -1, 0)]:
        ours = distributions.fans(shape, in_axis, out_axis, batch_axis)
        assert ours == tuple(float(f) for f in jax_initializers._compute_fans(shape, in_axis, out_axis, batch_axis))
    for axes in [dict(in_axis=2), dict(out_axis=-3), dict(batch_axis=(0, 5))]:
        with pytest.raises(ValueError, match="is out of range for shape"):
            distributions.fans((4, 5), **axes)
