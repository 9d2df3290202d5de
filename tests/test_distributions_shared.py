"""The shared distribution helpers of the framework faces (bindings/_distributions.py): a block drawn
alone equals the same block of the whole tensor, and a part (a process's shard, strided or not) those
elements of it, for every kind and dtype - also through the whole-model engine."""

import numpy as np
import pytest

from warpinit import _distributions as distributions
from warpinit import _whole_model
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


# Parts: the shard of a distributed tensor one process holds (several runs per axis when strided).
PARTS = [
    ((0, 24),), ((0, 40),),  # the whole tensor
    ((6, 12),), ((10, 30),),  # a block
    ((0, 3), (9, 12)), ((0, 40),),  # strided rows
    ((2, 5), (7, 8)), ((1, 4), (20, 22), (39, 40)),  # strided rows and columns (pieces through a buffer)
    ((5, 5),), ((0, 40),),  # empty
]


def _indices(runs):
    return [index for start, stop in runs for index in range(start, stop)]


@pytest.mark.parametrize("kind, parameters", CASES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_part_equals_those_elements_of_the_whole(kind, parameters, dtype):
    shape, seed = (24, 40), 2**64 - 5
    distribution = distributions.Distribution(kind, parameters)
    keys = key_table(seed, 3)
    whole = distributions.generate(distribution, shape, dtype, keys, "cpu")[0]
    for rows, cols in zip(PARTS[::2], PARTS[1::2]):
        part = distributions.Part(shape, (rows, cols))
        values = distributions.generate_part(distribution, shape, dtype, keys, "cpu", part)
        expected = whole[np.ix_(_indices(rows), _indices(cols))]
        assert values.shape == part.out_shape == expected.shape and values.flags.c_contiguous
        np.testing.assert_array_equal(values.view(np.uint8), np.ascontiguousarray(expected).view(np.uint8))


def test_part_of_a_weight_whose_orthogonal_matrix_is_flattened():
    """A part is taken in the tensor's own shape; an orthogonal draw sees (rows, cols) = (size(0),
    the rest), as torch flattens a convolution's weight."""
    weight, matrix = (6, 4, 3, 3), (6, 36)
    keys = key_table(11, 0)
    for distribution in (distributions.orthogonal(1.0), distributions.normal(0.0, 1.0)):
        whole = distributions.generate(distribution, matrix, "float32", keys, "cpu")[0].reshape(weight)
        part = distributions.Part(weight, (((0, 6),), ((1, 3),), ((0, 3),), ((0, 1), (2, 3))))
        values = distributions.generate_part(distribution, matrix, "float32", keys, "cpu", part)
        np.testing.assert_array_equal(values, whole[:, 1:3, :, [0, 2]])


def test_part_out_shape_pieces_and_block():
    part = distributions.Part.block((5, 7), ((1, 4), (0, 7)))
    assert part.runs == (((1, 4),), ((0, 7),)) and part.out_shape == (3, 7) and part.size == 21
    strided = distributions.Part((10, 4), (((0, 2), (5, 7)), ((1, 3),)))
    assert list(strided.pieces()) == [((slice(0, 2), slice(0, 2)), (slice(0, 2), slice(1, 3))),
                                      ((slice(2, 4), slice(0, 2)), (slice(5, 7), slice(1, 3)))]
    normal = distributions.normal(0.0, 1.0)
    assert distributions.workspace_bytes(normal, (10, 4), "float32", 1, part=strided) == 2 * 8 * 4
    assert distributions.workspace_bytes(distributions.orthogonal(1.0), (10, 4), "float32", 1, part=strided) > \
        distributions.workspace_bytes(distributions.orthogonal(1.0), (10, 4), "float32", 1)


class _Arrays(_whole_model.Adapter):
    """The engine's hand-over into NumPy arrays: request.target is the array to fill."""

    def destination(self, request):
        return None, request.target

    def install(self, request, handle):
        pass


def test_engine_draws_parts_as_the_same_elements_of_the_whole_tensors():
    """Requests that carry parts (each process's shards) and requests of the whole tensors, grouped
    as the engine groups them: the parts hold those elements of the whole tensors."""
    shape, seed = (12, 10), 99
    wholes, parts = [], []
    split = [((0, 5),), ((5, 12),)]
    for index, distribution in enumerate([distributions.normal(0.0, 2.0), distributions.uniform(-1.0, 1.0),
                                          distributions.orthogonal(1.0), distributions.constant(3.0)] * 2):
        path = f"layer{index}.weight"
        whole = np.empty(shape, np.float32)
        wholes.append(_whole_model.Request(path, distribution, shape, np.dtype(np.float32), "cpu", whole))
        for rows in split:
            part = distributions.Part(shape, (rows, ((0, 10),)))
            parts.append(_whole_model.Request(path, distribution, shape, np.dtype(np.float32), "cpu",
                                              np.empty(part.out_shape, np.float32), part))
    _whole_model.run(wholes, seed, _Arrays(), progress=False)
    _whole_model.run(parts, seed, _Arrays(), progress=False)
    for index, whole in enumerate(wholes):
        joined = np.concatenate([parts[2 * index].target, parts[2 * index + 1].target])
        np.testing.assert_array_equal(joined, whole.target)
    assert not np.array_equal(wholes[0].target, wholes[4].target)  # one seed per path
