"""Whole-model initialization, one engine for every framework face.

A face describes the tensors of a model as ``Request``\\ s - a structural path (the tensor's identity),
a distribution of the shared vocabulary (``_distributions``), the shape to generate, a dtype, a device,
the face's own handle on the destination and, for the shard of a distributed tensor, the ``part`` of
the tensor this process holds - and hands them to ``run`` with an ``Adapter`` that knows its
framework's tensors. ``run`` then

1. checks every request against its dtype (nothing is drawn or allocated when one is invalid);
2. derives one seed per path, ``_seeds.tensor_seed(seed, path)``, so the values of a tensor depend
   only on the model seed, its path, shape, dtype and distribution - never on the grouping, chunk
   sizes or the device (within the "same values" tolerance between CPU and CUDA);
3. groups requests of the same distribution, shape, dtype and device, and generates

   - tensors of at least ``DIRECT_BYTES`` (or alone in their group) straight into the memory that
     becomes the destination's own (``Adapter.destination``);
   - parts straight into their destination too, each drawing only its own values
     (``_distributions.generate_part``: by the counter contract a part equals that part of the whole
     tensor, so the processes of a distributed program together draw the tensor once, with no
     communication; an orthogonal matrix is built whole by each process holding part of it);
   - smaller ones K at a time into a scratch buffer of at most ``SCRATCH_BYTES`` (orthogonal
     workspace included; memory checked before it is allocated), then copied into destinations of
     their own;

4. hands each tensor over with ``Adapter.install`` as soon as it is complete.

Ownership is the adapter's contract: ``destination`` returns memory that nothing else will write
after ``install`` (a framework tensor's own storage, or a fresh buffer the framework adopts), never a
view of the scratch buffer, which is reused for the next chunk.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _devices, _distributions, _progress, _seeds

# At most this much is generated at once into the scratch buffer a group's small tensors share: a
# bounded peak beside the model itself (page faults on a fresh buffer cost as much as drawing).
SCRATCH_BYTES = 64 << 20
# Tensors at least this large are drawn straight into their destination (no scratch, no copy).
DIRECT_BYTES = 1 << 20


class Request(NamedTuple):
    """One tensor to initialize.

    path: its identity in the model, the source of its seed (``_seeds.tensor_seed``).
    distribution: a ``_distributions.Distribution``.
    shape: the shape generated (for orthogonal, the matrix stack the tensor is viewed as).
    dtype: the NumPy dtype generated (float16, bfloat16, float32 or float64).
    device: where the destination lives, as the face names it (hashable; ``Adapter.compute`` maps it
        to the warpinit device, "cpu" or "cuda", that generates its values).
    target: the face's handle on the destination, passed back to the adapter.
    part: None for the whole tensor, or the ``_distributions.Part`` of it that the destination holds
        (the local shard of a distributed tensor; its ``shape`` is the tensor's, whose C-order
        flattening is ``shape``'s).
    """

    path: str
    distribution: _distributions.Distribution
    shape: tuple
    dtype: np.dtype
    device: object
    target: object
    part: object = None

    @property
    def out_shape(self) -> tuple:
        """The shape of the destination's values: ``shape``, or the part's own shape."""
        return tuple(self.shape) if self.part is None else self.part.out_shape


class Adapter:
    """How a face hands values to its framework's tensors: ``destination`` and ``install``, and
    optionally where a device's values are generated."""

    def compute(self, device) -> str:
        """The warpinit device ("cpu" or "cuda") that generates values for ``device``."""
        return device

    def destination(self, request: Request):
        """(handle, view): ``view`` a writable C-contiguous array of ``request.out_shape`` and ``dtype``
        on ``compute(request.device)`` whose memory will belong to the destination alone once
        ``install(request, handle)`` has run."""
        raise NotImplementedError

    def install(self, request: Request, handle) -> None:
        """Make the values written into ``destination(request)``'s view the destination's own."""
        raise NotImplementedError

    def device_context(self, device):
        """A context manager around the generation for ``device`` (e.g. its CUDA stream)."""
        import contextlib

        return contextlib.nullcontext()


def check(requests, function: str) -> None:
    """ValueError naming the first request whose dtype cannot hold its distribution."""
    for request in requests:
        try:
            _distributions.check(request.distribution, request.dtype)
        except ValueError as error:
            raise ValueError(f"{function}: {request.path!r}: {error}") from None


def run(requests, seed: int, adapter: Adapter, *, function: str = "initialize", progress=None) -> None:
    """Initialize every request (see the module docstring); ``seed`` is the model seed in [0, 2**64).

    Raises:
        ValueError: a request's dtype cannot hold its distribution (before anything is drawn).
        MemoryError: the scratch buffer or an orthogonal workspace does not fit in the device's memory
            (before anything is drawn).
    """
    requests = list(requests)
    check(requests, function)
    groups: dict[tuple, list[Request]] = {}
    for request in requests:
        key = (request.distribution, tuple(request.shape), request.dtype, request.device, request.part)
        groups.setdefault(key, []).append(request)
    plans = [(key, members, _chunk_size(key, members)) for key, members in groups.items()]
    for (distribution, shape, dtype, device, part), members, chunk in plans:
        _devices.check_memory(function, adapter.compute(device),
                              _distributions.workspace_bytes(distribution, shape, dtype, chunk, part))

    total = sum(len(members) * math.prod(members[0].out_shape) * dtype.itemsize
                for (distribution, shape, dtype, _, _), members, _ in plans if distribution.random)
    bar = _progress.Bar(total) if (_progress.wanted(total) if progress is None else progress) else None
    try:
        for key, members, chunk in plans:
            with adapter.device_context(key[3]):
                _run_group(key, members, chunk, seed, adapter, adapter.compute(key[3]), bar)
    finally:
        if bar:
            bar.close()


def _chunk_size(key, members) -> int:
    """How many members of a group are generated at once: 1 when each goes straight into its
    destination (parts always do), else as many as fit in ``SCRATCH_BYTES`` (orthogonal: with its
    workspace)."""
    distribution, shape, dtype, _, part = key
    member_bytes = math.prod(shape) * dtype.itemsize
    if not distribution.random or len(members) == 1 or member_bytes == 0 or part is not None:
        return 1
    if distribution.kind != "orthogonal" and member_bytes >= DIRECT_BYTES:
        return 1
    per_member = _distributions.workspace_bytes(distribution, shape, dtype, 1)
    return max(1, min(len(members), SCRATCH_BYTES // max(1, per_member)))


def _run_group(key, members, chunk, seed, adapter, device, bar) -> None:
    from warpinit.kernels.philox import key_table

    distribution, shape, dtype, _, part = key
    member_bytes = math.prod(members[0].out_shape) * dtype.itemsize
    seeds = [_seeds.tensor_seed(seed, request.path) for request in members]
    if chunk == 1:
        for request, member_seed in zip(members, seeds):
            handle, view = adapter.destination(request)
            if part is None:
                _distributions.generate(distribution, shape, dtype, key_table(member_seed, 0), device,
                                        view.reshape(1, *shape))
            else:
                _distributions.generate_part(distribution, shape, dtype, key_table(member_seed, 0), device, part,
                                             view.reshape(part.out_shape))
            adapter.install(request, handle)
            if bar and distribution.random:
                bar.advance(member_bytes)
        return
    scratch = _devices.empty(device, (chunk, *shape), dtype)
    for first in range(0, len(members), chunk):
        part = members[first: first + chunk]
        values = _distributions.generate(distribution, shape, dtype, key_table(seeds[first: first + len(part)], 0),
                                         device, scratch[: len(part)])
        for request, value in zip(part, values):
            handle, view = adapter.destination(request)
            view.reshape(shape)[...] = value
            adapter.install(request, handle)
        if bar:
            bar.advance(len(part) * member_bytes)
