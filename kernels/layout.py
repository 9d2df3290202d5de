"""Which elements of a tensor a call generates: ``index=`` blocks as runs of consecutive flat indices.

A block selected by NumPy basic indexing with step 1 is a set of runs: for the first axis j after
which every axis is taken whole, each combination of indices on the leading axes 0..j-1 starts one
run of ``count_j * prod(shape[j+1:])`` consecutive flat indices. The kernels walk runs, so a block
costs what its elements cost, whatever the size of the tensor it belongs to.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

# Flat indices are int64 in the kernels.
MAX_ELEMENTS = 2**63 - 1


@dataclass(frozen=True)
class Block:
    """A block of a C-ordered tensor of ``shape``.

    Attributes:
        shape: shape of the whole tensor.
        out_shape: shape of the block as returned (integer indices drop their axis).
        lead_counts, lead_starts, lead_strides: int64 arrays over the leading axes that enumerate runs
            (row-major): the block's extent, its first index and the tensor's element stride.
        base0: flat offset added to every run's start.
        run_length: consecutive flat indices per run.

    A batch (``batch``) is a block whose run r is a whole tensor of its own (its flat indices start at
    0 again), drawn with row r of the launch's key table (``philox.key_table``).
    """

    shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    lead_counts: np.ndarray
    lead_starts: np.ndarray
    lead_strides: np.ndarray
    base0: int
    run_length: int

    @property
    def size(self) -> int:
        return math.prod(self.out_shape)


def whole(shape: tuple[int, ...]) -> Block:
    """The block covering the whole tensor."""
    return _block(shape, [0] * len(shape), list(shape), list(shape))


def batch(members: int, shape: tuple[int, ...]) -> Block:
    """``members`` whole tensors of ``shape`` (shape (members, *shape)); member r takes row r of the key
    table, e.g. stream ``stream + r`` for ``orthogonal(batch=...)``."""
    size = math.prod(shape)
    one = np.array([members], dtype=np.int64)
    return Block(
        shape=tuple(shape),
        out_shape=(members, *shape),
        lead_counts=one,
        lead_starts=np.zeros(1, dtype=np.int64),
        lead_strides=np.zeros(1, dtype=np.int64),
        base0=0,
        run_length=size,
    )


def select(shape: tuple[int, ...], index) -> Block:
    """The block of a tensor of ``shape`` selected by ``index`` (NumPy basic indexing, step 1).

    Args:
        shape: the whole tensor's shape.
        index: an int, a slice with step 1 (or None), Ellipsis, or a tuple of those.

    Raises:
        TypeError: an index entry is not an int, slice or Ellipsis (arrays, None/newaxis, floats).
        ValueError: a slice step is not 1.
        IndexError: too many indices, or an integer index out of range (as NumPy says it).
    """
    entries = index if isinstance(index, tuple) else (index,)
    ellipses = sum(entry is Ellipsis for entry in entries)
    if ellipses > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    explicit = len(entries) - ellipses
    if explicit > len(shape):
        raise IndexError(
            f"index: too many indices for a tensor of shape {shape}: {len(shape)} axes, {explicit} indexed"
        )
    if ellipses:
        at = next(k for k, entry in enumerate(entries) if entry is Ellipsis)
        fill = (slice(None),) * (len(shape) - explicit)
        entries = entries[:at] + fill + entries[at + 1 :]
    else:
        entries = entries + (slice(None),) * (len(shape) - explicit)
    starts, counts, kept = [], [], []
    for axis, (entry, size) in enumerate(zip(entries, shape)):
        if isinstance(entry, slice):
            if entry.step not in (None, 1):
                raise ValueError(f"index: only slices with step 1 are supported, got {entry} on axis {axis}")
            for bound in (entry.start, entry.stop):
                if bound is not None and not _is_int(bound):
                    raise TypeError(f"index: slice bounds must be ints, got {entry} on axis {axis}")
            start, stop, _ = slice(entry.start, entry.stop).indices(size)
            starts.append(start)
            counts.append(max(stop - start, 0))
            kept.append(counts[-1])
        elif _is_int(entry):
            position = operator.index(entry)
            if not -size <= position < size:
                raise IndexError(
                    f"index: index {position} is out of bounds for axis {axis} with size {size}"
                )
            starts.append(position % size)
            counts.append(1)
        else:
            raise TypeError(
                "index: entries must be ints, slices with step 1 or Ellipsis (NumPy basic indexing), "
                f"got {type(entry).__name__}: {entry!r}"
            )
    return _block(shape, starts, counts, kept)


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _block(shape, starts, counts, out_shape) -> Block:
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    # First axis after which every axis is whole: runs span from it to the end.
    j = len(shape) - 1
    while j > 0 and starts[j] == 0 and counts[j] == shape[j]:
        j -= 1
    if not shape:
        run_length, base0 = 1, 0
    else:
        run_length = counts[j] * strides[j] if j >= 0 else 1
        base0 = starts[j] * strides[j]
    lead = max(j, 0)
    return Block(
        shape=tuple(shape),
        out_shape=tuple(out_shape),
        lead_counts=np.array(counts[:lead], dtype=np.int64),
        lead_starts=np.array(starts[:lead], dtype=np.int64),
        lead_strides=np.array(strides[:lead], dtype=np.int64),
        base0=base0,
        run_length=run_length,
    )
