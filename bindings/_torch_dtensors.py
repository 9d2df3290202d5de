"""DTensors (``torch.distributed.tensor``) as warpinit fills them: each process draws its own shard.

A DTensor is one global tensor whose local tensor on each process holds a ``_distributions.Part``
of it, computed as torch computes it: ``compute_local_shape_and_global_offset`` for ``Shard(dim)``
(uneven shards as ``torch.chunk`` splits them, the same dimension sharded over several mesh
dimensions) and ``Replicate`` (the whole axis, drawn by every process), and torch's own
per-dimension index lists for ``_StridedShard`` (FSDP2 over tensor parallelism). Drawing that part
(``_distributions.generate_part``) gives exactly those elements of the tensor the single-process
draw gives, with no communication. Other placements (``Partial``, custom ones) are refused.

Indexing a DTensor inside ``fast_init`` (an Embedding's ``weight[padding_idx].fill_(0)``) gives a
*selection*: a stand-in DTensor (meta, no memory) that remembers which elements of its root DTensor
it names and which of them this process holds. Constant writes, copies and random fills of a
selection write this process's elements in place; anything else reads it as torch's own indexing
does (an all-gather of the selected elements). torch itself would write into a gathered copy.

FSDP2 keeps each shard padded to the size of the largest one: its ``FSDPParam``\\ s are told when a
parameter was materialized (``refresh``), and the values go into the local tensor FSDP2 keeps.

Nothing here imports ``torch.distributed`` for a program that has none: a DTensor exists only once
``torch.distributed.tensor`` is imported.
"""

from __future__ import annotations

import operator
import sys
from typing import NamedTuple

import torch

from ._distributions import Part

_SELECTION = "_warpinit_selection"  # the attribute that marks a selection's stand-in


def is_dtensor(tensor) -> bool:
    """Whether ``tensor`` is a ``torch.distributed.tensor.DTensor`` (a selection's stand-in included)."""
    module = sys.modules.get("torch.distributed.tensor")
    return module is not None and isinstance(tensor, module.DTensor)


def selection_of(tensor):
    """The ``Selection`` a stand-in DTensor stands for, or None."""
    return getattr(tensor, _SELECTION, None) if is_dtensor(tensor) else None


def local(tensor):
    """The tensor this process holds of ``tensor``: a DTensor's local tensor (FSDP2's padded shard
    narrowed to its own elements), a selection's elements in its root's local tensor, or
    ``tensor`` itself."""
    if not is_dtensor(tensor):
        return tensor
    selection = getattr(tensor, _SELECTION, None)
    if selection is not None:
        return selection.view
    with torch.no_grad():
        return tensor.to_local()


def placement_error(function: str, label: str, tensor):
    """The ValueError for a DTensor placement warpinit does not draw, or None."""
    from torch.distributed.tensor import Replicate, Shard

    supported = (Shard, Replicate, _strided_shard())
    for mesh_dim, placement in enumerate(tensor.placements):
        if type(placement) not in supported:
            kind = type(placement).__name__
            named = repr(placement) if repr(placement).startswith(kind) else f"{kind} ({placement!r})"
            return ValueError(
                f"{function}: {label} is a DTensor with placement {named} on mesh dimension {mesh_dim} "
                f"(placements {tuple(tensor.placements)}); warpinit initializes Shard(dim), _StridedShard and "
                "Replicate placements only (a Partial tensor's value is a reduction over processes: initialize "
                "it replicated or sharded, then redistribute)")
    return None


def check(function: str, label: str, tensor) -> None:
    """ValueError naming ``label`` and the placement when ``tensor`` is a DTensor with a placement
    warpinit does not draw; nothing for other tensors."""
    if is_dtensor(tensor) and getattr(tensor, _SELECTION, None) is None:
        error = placement_error(function, label, tensor)
        if error is not None:
            raise error


def part(function: str, tensor, label: str = "tensor"):
    """The ``Part`` of the global tensor that this process holds of a DTensor (or of a selection),
    None for other tensors. ValueError for an unsupported placement."""
    if not is_dtensor(tensor):
        return None
    selection = getattr(tensor, _SELECTION, None)
    if selection is not None:
        return selection.part
    check(function, label, tensor)
    return _part(tuple(tensor.shape), tensor.device_mesh, tuple(tensor.placements))


def _strided_shard():
    from torch.distributed.tensor import placement_types

    return getattr(placement_types, "_StridedShard", None)


def _part(shape, mesh, placements) -> Part:
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    if mesh.get_coordinate() is None:  # this process is not in the mesh: it holds nothing
        return Part(shape, tuple(((0, 0),) for _ in shape))
    strided = _strided_shard()
    if strided is None or not any(isinstance(placement, strided) for placement in placements):
        local_shape, offset = compute_local_shape_and_global_offset(shape, mesh, placements)
        return Part(shape, tuple(((start, start + size),) for start, size in zip(offset, local_shape)))
    return Part(shape, _strided_runs(shape, mesh, placements))


def _strided_runs(shape, mesh, placements):
    """Per axis, the runs of global indices a strided shard holds: torch's own index lists (those
    ``compute_local_shape_and_global_offset`` reduces to their first element), in consecutive runs."""
    from torch.distributed.tensor import Shard
    from torch.distributed.tensor._utils import _get_shard_size_and_offsets

    coordinate = mesh.get_coordinate()
    sizes, indices = list(shape), {}
    for mesh_dim, placement in enumerate(placements):
        if not isinstance(placement, (Shard, _strided_shard())):
            continue
        dim = placement.dim
        size, index = _get_shard_size_and_offsets(sizes[dim], mesh.size(mesh_dim), coordinate[mesh_dim], placement,
                                                  indices.get(dim), shape[dim], False)
        sizes[dim], indices[dim] = size, index
    runs = []
    for dim, extent in enumerate(shape):
        if dim not in indices:
            runs.append(((0, extent),))
            continue
        values = [int(value) for value in indices[dim].tolist()][: sizes[dim]]
        axis = []
        for value in values:
            if axis and axis[-1][1] == value:
                axis[-1] = (axis[-1][0], value + 1)
            else:
                axis.append((value, value + 1))
        runs.append(tuple(axis) or ((extent, extent),))
    return tuple(runs)


# Materialization ---------------------------------------------------------------------------------


def device(function: str, label: str, tensor, target, explicit: bool) -> torch.device:
    """Where a meta DTensor's local tensor is materialized: its mesh's device (the current CUDA
    device for a CUDA mesh); ValueError when ``explicit`` ``target`` is another device type."""
    mesh_type = tensor.device_mesh.device_type
    if explicit and target.type != mesh_type:
        raise ValueError(f"{function}: device={str(target)!r}, but {label} is a DTensor on a {mesh_type!r} device "
                         f"mesh; pass device={mesh_type!r} or leave device unset")
    if target.type == mesh_type:
        return target
    if mesh_type == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(mesh_type)


def _fsdp_params(module):
    fsdp = sys.modules.get("torch.distributed.fsdp")
    if fsdp is None or not hasattr(fsdp, "FSDPModule"):
        return []
    params = []
    for sub in module.modules():
        if isinstance(sub, fsdp.FSDPModule):
            state = sub._get_fsdp_state()
            groups = getattr(state, "_fsdp_param_groups", None)
            if groups is None:
                group = getattr(state, "_fsdp_param_group", None)
                groups = [] if group is None else [group]
            for group in groups:
                params.extend(group.fsdp_params)
    return params


def reshard(module) -> None:
    """Put the sharded parameters of FSDP2 modules back in place (as they are between steps), so
    that what is initialized is each process's shard."""
    fsdp = sys.modules.get("torch.distributed.fsdp")
    if fsdp is None or not hasattr(fsdp, "FSDPModule"):
        return
    for sub in module.modules():
        if isinstance(sub, fsdp.FSDPModule):
            sub.reshard()


def refresh(module) -> None:
    """Tell FSDP2 that parameters were replaced (materialized, or put back on the meta device): it
    pads each new local shard into the storage it keeps, as after ``module.to_empty``."""
    with torch.no_grad():
        for parameter in _fsdp_params(module):
            parameter.reset_sharded_param()


# Selections --------------------------------------------------------------------------------------


class Selection(NamedTuple):
    """The elements ``root[index]`` of a DTensor ``root`` (basic indexing: ints and slices of step 1).

    starts, counts, kept: per axis of ``root``, the first index, how many, and whether the axis is
    kept (a slice) or dropped (an int). view: the selected elements this process holds, a view of
    root's local tensor (empty when it holds none). part: which elements of the selection ``view``
    holds (a ``Part`` of the selection's shape).
    """

    root: object
    starts: tuple
    counts: tuple
    kept: tuple
    view: torch.Tensor
    part: Part

    @property
    def index(self) -> tuple:
        """The index of root that gives the selection (for torch's own indexing)."""
        return tuple(slice(start, start + count) if kept else start
                     for start, count, kept in zip(self.starts, self.counts, self.kept))


def select(tensor, index):
    """The stand-in of ``tensor[index]`` for a materialized DTensor (or a selection) and a basic
    index, or None when torch's own indexing should run (other indices, meta tensors)."""
    parent = getattr(tensor, _SELECTION, None)
    root = tensor if parent is None else parent.root
    if root.is_meta or placement_error("select", "tensor", root) is not None:
        return None
    if parent is None:
        starts, counts, kept = [0] * root.dim(), list(root.shape), [True] * root.dim()
    else:
        starts, counts, kept = list(parent.starts), list(parent.counts), list(parent.kept)
    axes = [axis for axis, keep in enumerate(kept) if keep]
    entries = _entries(index, len(axes))
    if entries is None:
        return None
    for axis, entry in zip(axes, entries):
        if isinstance(entry, slice):
            start, stop, _ = entry.indices(counts[axis])
            starts[axis], counts[axis] = starts[axis] + start, max(stop - start, 0)
        else:
            if not -counts[axis] <= entry < counts[axis]:
                return None  # torch raises its IndexError
            starts[axis], counts[axis], kept[axis] = starts[axis] + entry % counts[axis], 1, False
    whole = part("select", root)
    local_index, runs = [], []
    for axis in range(root.dim()):
        low, high, pieces, here = None, None, [], 0
        start, stop = starts[axis], starts[axis] + counts[axis]
        for first, last in whole.runs[axis]:
            begin, end = max(first, start), min(last, stop)
            if begin < end:
                low = here + begin - first if low is None else low
                high = here + end - first
                pieces.append((begin - start, end - start))
            here += last - first
        if low is None:
            local_index, runs = None, None
            break
        local_index.append(slice(low, high) if kept[axis] else low)
        if kept[axis]:
            runs.append(tuple(pieces))
    shape = tuple(count for count, keep in zip(counts, kept) if keep)
    values = local(root)
    if local_index is None:  # this process holds none of the selected elements
        view = values.new_empty(0)
        selected = Part(shape, tuple(((0, 0),) for _ in shape))
    else:
        view = values[tuple(local_index)]
        selected = Part(shape, tuple(runs))
    selection = Selection(root, tuple(starts), tuple(counts), tuple(kept), view, selected)
    return stand_in(selection)


def stand_in(selection: Selection):
    """A meta DTensor of the selection's shape and dtype that stands for it in model code."""
    from torch.distributed.tensor import DTensor, Replicate

    root = selection.root
    mesh = root.device_mesh
    values = torch.empty(selection.part.shape, dtype=root.dtype, device="meta")
    with torch.no_grad():
        result = DTensor.from_local(values, mesh, [Replicate()] * mesh.ndim, run_check=False)
    setattr(result, _SELECTION, selection)
    return result


def _entries(index, ndim):
    """The ints and slices (step 1) of a basic index over ``ndim`` axes, or None for anything else."""
    entries = index if isinstance(index, tuple) else (index,)
    if sum(entry is Ellipsis for entry in entries) > 1:
        return None
    explicit = [entry for entry in entries if entry is not Ellipsis]
    if len(explicit) > ndim:
        return None
    result = []
    for entry in entries:
        if entry is Ellipsis:
            result.extend([slice(None)] * (ndim - len(explicit)))
        elif isinstance(entry, slice):
            bounds = (entry.start, entry.stop)
            if entry.step not in (None, 1) or not all(bound is None or _is_int(bound) for bound in bounds):
                return None
            result.append(slice(*(None if bound is None else operator.index(bound) for bound in bounds)))
        elif _is_int(entry):
            result.append(operator.index(entry))
        else:
            return None
    return result + [slice(None)] * (ndim - len(result))


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, int)


def resolve(selection: Selection):
    """torch's own ``root[index]`` (a gathered copy), for code that reads a selection."""
    return selection.root[selection.index]


def copy_into(selection: Selection, source) -> None:
    """Write ``source`` (a tensor broadcastable to the selection's shape) into the selected elements
    this process holds."""
    if selection.view.numel() == 0:
        return
    if is_dtensor(source):
        source = source.full_tensor()
    source = source.expand(selection.part.shape)
    for here, there in selection.part.pieces():
        selection.view[here].copy_(source[there])
