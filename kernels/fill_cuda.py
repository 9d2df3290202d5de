"""CUDA kernels (numba-cuda): the GPU twin of ``fill_cpu``, on CuPy's current stream.

One thread block fills one tile at a time (grid-stride over tiles): ``THREADS`` consecutive Philox
groups of one run of the block. Each thread computes the attempt-0 candidates of its group and writes
each value or the sentinel; the elements it rejected go onto a work list in shared memory. After a
barrier, the block's threads share out that list, so that the rare redraws (attempts 1, 2, ...) run
spread over the whole block instead of stalling the warps where they happened. No global memory is
allocated besides the output and an int64 failure counter.

Failures are reported as on the CPU, without synchronising the normal path. An element still
rejected after ``MAX_ATTEMPTS`` attempts (only an interval that no candidate rounds into can get
there, see ``fill_cpu``) is left NaN and counted. The counter of each launch lives in host-mapped
memory, so reading it is a plain read of host memory; ``launch_reported`` records an event after the
launch, and the counts of finished launches are read at the next launch (which then raises before
launching anything) and by ``check_failures`` (``warpinit.check_gpu_failures``): a failed fill raises
``RuntimeError`` with the CPU's message, later than on the CPU but never silently. Launches are
checked in launch order, so a finished launch queued behind an unfinished one on another stream is
reported once that one finishes too.

The kernels are the templates of this module, specialised per output kind (float32, 16-bit, float64)
like the CPU ones and compiled through ``_jit.for_cuda``: the shared math becomes inlined device
functions, which is what lets ``compile_ptx`` compile them for sm_80 and sm_90 without a driver, and
the same code runs in Numba's CUDA simulator.
"""

from __future__ import annotations

import collections
import threading
from typing import NamedTuple

import numpy as np

from ._jit import cuda_device, cuda_module, for_cuda, simulator_enabled, specialize
from .philox import philox_group
from .samplers import KINDS, MAX_ATTEMPTS, draw_template, kind_of, run_start

THREADS = 128  # threads per block = Philox groups per tile
_LIST = THREADS * 4  # a tile holds at most 4 elements per group
MAX_BLOCKS = 8192

cuda = None  # bound to the ``numba.cuda`` module by ``kernel_source``
group_candidates = emit = _draw = _keep = None  # bound per output kind


def _keep_template(out, o, i, run_first, run_length, z, ok, p, fmt, offset, pending_list, pending_count):
    """Emit lane candidate ``z`` of global element i if it lies in the run; queue it if rejected."""
    if run_first <= i < run_first + run_length:
        if not emit(out, o + (i - run_first), z, ok, p, fmt):
            slot = cuda.atomic.add(pending_count, 0, 1)
            pending_list[slot] = offset


def _fill_kernel_template(out, lead_counts, lead_starts, lead_strides, keys, base0, run_length, group, method, p, fmt,
                          failures):
    """Fill ``out`` with a block of a tensor; arguments as ``fill_cpu._fill_template`` (without its
    ``tiles``, and with ``p`` the tuple of parameters) plus ``failures``, an int64 device array of
    one element counting elements that hit MAX_ATTEMPTS."""
    pending_list = cuda.shared.array(_LIST, np.int32)
    pending_count = cuda.shared.array(1, np.int32)
    tx = cuda.threadIdx.x
    tiles_per_run = ((run_length + group - 1) // group + 1 + THREADS - 1) // THREADS
    ntiles = (out.size // run_length) * tiles_per_run
    tile = cuda.blockIdx.x
    while tile < ntiles:
        if tx == 0:
            pending_count[0] = 0
        cuda.syncthreads()
        run = tile // tiles_per_run
        run_first = run_start(run, lead_counts, lead_starts, lead_strides, base0)
        key = run % keys.shape[0]
        k0, k1, run_stream = keys[key, 0], keys[key, 1], keys[key, 2]
        o = run * run_length
        tile_group = run_first // group + (tile % tiles_per_run) * THREADS
        g = tile_group + tx
        first = g * group
        # Pass 1: the lanes of group g that fall inside the run.
        if first < run_first + run_length:
            w0, w1, w2, w3 = philox_group(np.uint64(g), run_stream, np.uint64(0), k0, k1)
            z0, z1, z2, z3, ok0, ok1, ok2, ok3 = group_candidates(method, w0, w1, w2, w3, p)
            values = (z0, z1, z2, z3)
            accepted = (ok0, ok1, ok2, ok3)
            for lane in range(group):
                _keep(out, o, first + lane, run_first, run_length, values[lane], accepted[lane], p, fmt,
                      tx * group + lane, pending_list, pending_count)
        cuda.syncthreads()
        # Pass 2: the block's threads share out the rejected elements.
        k = tx
        while k < pending_count[0]:
            i = tile_group * group + pending_list[k]
            attempt = 1
            while not _draw(out, o + (i - run_first), i, attempt, group, method, k0, k1, run_stream, p, fmt):
                attempt += 1
                if attempt == MAX_ATTEMPTS:
                    cuda.atomic.add(failures, 0, 1)
                    break
            k += THREADS
        cuda.syncthreads()
        tile += cuda.gridDim.x


_SOURCES: dict[str, object] = {}
_KERNELS: dict[str, object] = {}


def kernel_source(kind: str):
    """The plain-Python kernel for one output kind, with its names bound for CUDA (for compile_ptx)."""
    if kind not in _SOURCES:
        names = KINDS[kind]
        suffix = "_" + kind
        draw = cuda_device(specialize(draw_template, suffix, **names))
        keep = cuda_device(specialize(_keep_template, suffix, cuda=cuda_module(), **names))
        _SOURCES[kind] = for_cuda(
            specialize(_fill_kernel_template, suffix, cuda=cuda_module(), _draw=draw, _keep=keep, **names)
        )
    return _SOURCES[kind]


def kernel(kind: str):
    """The compiled (lazily, per argument types) CUDA kernel for an output kind."""
    if kind not in _KERNELS:
        _KERNELS[kind] = cuda_module().jit(kernel_source(kind))
    return _KERNELS[kind]


def launch_device(out, block, plan, keys, cuda_stream=0, failures=None):
    """Launch the fill kernel on a 1-D device array ``out`` (storage dtype of ``plan``).

    Args:
        out: a Numba device array, or anything Numba accepts as one (a NumPy array in the simulator).
        block, plan, keys: as in ``fill_cpu.launch``.
        cuda_stream: a Numba stream (0: the default stream).
        failures: an int64 device array of one element to count failures into; allocated if None.

    Returns:
        The failures array (reading a device array synchronises; ``launch_reported`` reads a
        host-mapped one once the launch has finished).
    """
    cuda = cuda_module()
    if failures is None:
        failures = cuda.to_device(np.zeros(1, np.int64), stream=cuda_stream)
    if block.size == 0:
        return failures
    tiles_per_run = ((block.run_length + plan.group - 1) // plan.group + 1 + THREADS - 1) // THREADS
    ntiles = (block.size // block.run_length) * tiles_per_run
    blocks = int(min(ntiles, MAX_BLOCKS))
    geometry = [cuda.to_device(a, stream=cuda_stream) for a in (block.lead_counts, block.lead_starts, block.lead_strides)]
    fill = kernel(kind_of(plan.double, plan.fmt))
    keys, *scalars = plan.kernel_arguments(block, keys)
    keys = cuda.to_device(keys, stream=cuda_stream)
    fill[blocks, THREADS, cuda_stream](out, *geometry, keys, *scalars, failures)
    return failures


def launch_cupy(result, block, plan, keys):
    """Fill the CuPy array ``result`` on CuPy's current stream, without synchronising; failures are
    reported as ``launch_reported`` says."""
    import cupy

    cuda = cuda_module()
    flat = result.reshape(-1).view(plan.storage_dtype)
    nb_stream = cuda.external_stream(cupy.cuda.get_current_stream().ptr)
    launch_reported(cuda.as_cuda_array(flat, sync=False), block, plan, keys, nb_stream)


# Failure reports ------------------------------------------------------------------------------------

# At most this many launches wait for their report; one more waits for the oldest to finish (the only
# synchronisation, and only with that many kernels in flight).
MAX_PENDING = 4096


class _Report(NamedTuple):
    counter: object  # a host-mapped int64 array of one element, which the launch counts failures into
    event: object  # recorded on the launch's stream after the launch
    description: str  # what was drawn, for the error
    device: object  # the device whose context the counter is mapped into


_REPORTS: collections.deque = collections.deque()
_SPARE: dict[object, list] = {}  # per device: counters checked and zeroed, ready for another launch
_LOCK = threading.Lock()


def launch_reported(out, block, plan, keys, cuda_stream=0) -> None:
    """``launch_device`` with its failures reported without a synchronisation.

    First raises the failures of earlier launches that have finished (``check_failures``); then
    launches with a host-mapped counter and records an event after the launch on ``cuda_stream``.

    Raises:
        RuntimeError: an earlier launch left elements without a value (see the module docstring).
    """
    check_failures(wait=False)
    if block.size == 0:
        return
    cuda = cuda_module()
    device = _device_id(cuda)
    with _LOCK:
        spares = _SPARE.setdefault(device, [])
        counter = spares.pop() if spares else None
        oldest = _REPORTS[0] if len(_REPORTS) >= MAX_PENDING else None
    if oldest is not None:
        oldest.event.synchronize()
        check_failures(wait=False)
    if counter is None:
        counter = cuda.mapped_array(1, np.int64)
        counter[0] = 0
    launch_device(out, block, plan, keys, cuda_stream, counter)
    event = cuda.event() if simulator_enabled() else cuda.event(timing=False)  # the simulator's take no options
    event.record(cuda_stream)
    with _LOCK:
        _REPORTS.append(_Report(counter, event, f"{plan.dtype.name} fill (parameters {plan.params})", device))


def check_failures(wait: bool = False) -> None:
    """Raise the failures of the finished launches of ``launch_reported`` (each reported once).

    Args:
        wait: wait for every launch so far to finish first (synchronises with their streams); else
            only the launches already finished are read, without synchronising.

    Raises:
        RuntimeError: elements of those launches found no value within their bounds after
            ``MAX_ATTEMPTS`` attempts (they hold NaN), in the words of the CPU's error.
    """
    failed = []
    while True:
        with _LOCK:
            if not _REPORTS or not (wait or _finished(_REPORTS[0].event)):
                break
            report = _REPORTS.popleft()
        if wait:
            report.event.synchronize()
        count = int(report.counter[0])
        if count:
            failed.append((count, report.description))
            report.counter[0] = 0
        with _LOCK:
            _SPARE.setdefault(report.device, []).append(report.counter)
    if failed:
        details = "; ".join(f"{count} element(s) of a {description}" for count, description in failed)
        raise RuntimeError(
            f"GPU fill: {details} found no value within the bounds after {MAX_ATTEMPTS} attempts: the interval "
            "is too narrow for that dtype's arithmetic; those elements hold NaN (reported after the kernel "
            "finished, at the next warpinit GPU call or warpinit.check_gpu_failures())"
        )


def _finished(event) -> bool:
    """Whether the work before ``event`` has finished, without waiting (the simulator's events have no
    query: its kernels run synchronously)."""
    query = getattr(event, "query", None)
    return query is None or bool(query())


def _device_id(cuda):
    return getattr(cuda.get_current_device(), "id", 0)
