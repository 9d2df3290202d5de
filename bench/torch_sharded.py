"""Sharded initialization under torch.distributed: per-process time and memory, warpinit against torch.

One transformers Llama, built on the meta device and sharded with FSDP2's ``fully_shard`` (every
decoder layer, then the root) over 1, 2 and 4 CPU processes (gloo), is initialized two ways:

- ``torch``: ``model.to_empty(device="cpu")``, then the model's own ``init_weights()`` under torch's
  random number generator (for DTensors, torch's random ops and its RNG tracker);
- ``warpinit``: ``warpinit.torch.initialize(model, seed, device="cpu")``, which materializes the
  shards and runs the same scheme (``reset_parameters``, then ``init_weights``) on warpinit's kernels.

Each (route, processes) pair runs in processes of its own, with ``threads`` threads each (torch and
Numba alike; by default cores // processes, ``--threads`` to fix it). Every process warms up on a tiny model (imports, kernel compilation,
RNG tracker), then times ``repeats`` initializations of a freshly sharded model: wall and CPU seconds,
and the peak resident memory the initialization added (Linux VmHWM, reset just before it). A step
ends when its slowest process ends: the report gives, per pair, the median over repeats of the slowest
process's time, and the largest peak among the processes next to each one's share of the model. The
JSON report goes to stdout.

    python -m warpinit.bench.torch_sharded [--processes 1,2,4] [--repeats 3] [--layers 8] [--hidden 1024] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import memory

ROUTES = ("torch", "warpinit")
SEED = 1


def _config(layers: int, hidden: int, vocabulary: int):
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.LlamaConfig(vocab_size=vocabulary, hidden_size=hidden, intermediate_size=hidden * 11 // 4,
                                    num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                                    num_key_value_heads=max(1, hidden // 256), max_position_embeddings=2048)


def _sharded(config, mesh):
    import torch
    import transformers
    from torch.distributed.fsdp import fully_shard

    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def _initialize(route: str, model) -> None:
    if route == "torch":
        model.to_empty(device="cpu")
        model.init_weights()
    else:
        import warpinit.torch as wt

        wt.initialize(model, seed=SEED, device="cpu")


def _process(rank, processes, route, shape, repeats, threads, out):
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh

    torch.set_num_threads(threads)
    # torch's own route draws through DTensor random ops, which warn on a CPU mesh at every call.
    warnings.filterwarnings("ignore", message="DTensor random operators may not have complete support")
    dist.init_process_group("gloo", init_method=f"file://{Path(out) / 'rendezvous'}", rank=rank,
                            world_size=processes)
    try:
        mesh = init_device_mesh("cpu", (processes,))
        _initialize(route, _sharded(_config(1, 64, 256), mesh))  # warm-up
        config = _config(*shape)
        times, cpu, peaks, resettable, model_bytes, local_bytes = [], [], [], True, 0, 0
        for _ in range(repeats):
            model = _sharded(config, mesh)
            gc.collect()
            dist.barrier()
            gc.disable()
            try:
                resettable = memory.reset_peak() and resettable
                before = memory.status("VmRSS")
                start_cpu, start = time.process_time(), time.perf_counter()
                _initialize(route, model)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                peaks.append(memory.status("VmHWM") - before)
            finally:
                gc.enable()
            model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
            local_bytes = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
            parameters = sum(p.numel() for p in model.parameters())
            del model
            dist.barrier()
        report = {"rank": rank, "times": times, "cpu_times": cpu, "peak_added_bytes": peaks,
                  "peak_reset": resettable, "model_bytes": model_bytes, "local_bytes": local_bytes, "parameters": parameters,
                  "threads": torch.get_num_threads()}
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


def _spawn(route: str, processes: int, shape, repeats: int, threads: int, timeout: float) -> list[dict]:
    """Run one (route, processes) pair; the reports of its processes, by rank."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        context = mp.start_processes(_process, args=(processes, route, shape, repeats, threads, out),
                                     nprocs=processes, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        try:
            while not context.join(timeout=max(1.0, deadline - time.monotonic())):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"torch_sharded: {route} on {processes} processes ran past {timeout} s")
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
        ranks = [json.loads((Path(out) / f"rank{rank}.json").read_text()) for rank in range(processes)]
    return ranks


def measure(route: str, processes: int, shape, repeats: int, timeout: float = 1800, threads: int | None = None) -> dict:
    """One (route, processes) pair in ``processes`` fresh processes of ``threads`` threads each
    (default: the cores shared out): the aggregated report."""
    threads = threads or max(1, (os.cpu_count() or 1) // processes)
    # Inherited by the spawned processes, and put back afterwards: the threads of each process, and a
    # fixed mmap threshold (large blocks go back to the system when freed, so that a repeat's peak is
    # its own, not hidden in memory a previous model left resident).
    settings = {"OMP_NUM_THREADS": str(threads), "NUMBA_NUM_THREADS": str(threads), "MALLOC_MMAP_THRESHOLD_": str(1 << 17)}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        ranks = _spawn(route, processes, shape, repeats, threads, timeout)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    slowest = [max(rank["times"][k] for rank in ranks) for k in range(repeats)]
    busiest = [max(rank["cpu_times"][k] for rank in ranks) for k in range(repeats)]
    return {
        "route": route, "processes": processes, "threads_per_process": threads,
        "time_s": statistics.median(slowest), "times_s": slowest, "cpu_s": statistics.median(busiest),
        "peak_added_bytes": max(max(rank["peak_added_bytes"]) for rank in ranks),
        "share_bytes": ranks[0]["model_bytes"] / processes, "local_bytes": [rank["local_bytes"] for rank in ranks],
        "peak_reset": all(rank["peak_reset"] for rank in ranks), "model_bytes": ranks[0]["model_bytes"],
        "parameters": ranks[0]["parameters"],
    }


def run(processes=(1, 2, 4), repeats: int = 3, layers: int = 8, hidden: int = 1024, vocabulary: int = 32000,
        threads: int | None = None) -> dict:
    """Every route on every process count: the JSON-ready report."""
    shape = (layers, hidden, vocabulary)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    runs = [measure(route, count, shape, repeats, threads=threads) for count in processes for route in ROUTES]
    by = {(entry["route"], entry["processes"]): entry for entry in runs}
    ratios = {str(count): by[("torch", count)]["time_s"] / by[("warpinit", count)]["time_s"] for count in processes}
    return {
        "model": {"kind": "llama", "layers": layers, "hidden": hidden, "vocabulary": vocabulary,
                  "bytes": runs[0]["model_bytes"]},
        "cores": os.cpu_count(), "load_average_before": load,
        "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "runs": runs, "torch_over_warpinit_time": ratios,
    }


# The model of ``warpinit bench --ops torch_sharded`` (layers, hidden, vocabulary), and its tiny
# version (the warm-up model: a check of the plumbing, not a measurement).
SHAPE, TINY = (8, 1024, 32000), (1, 64, 256)


def results(variant: str, repeats: int, tiny: bool = False) -> dict:
    """The rows of ``warpinit bench --ops torch_sharded`` for ``variant`` ("N processes"): {library:
    {"times": [...], "parameters": n, "cpu_s": c, "model_bytes": b, "peak_added_bytes": p, "share_bytes": s,
    "threads_per_process": t}}: the times those of the slowest process of each repeat, ``cpu_s`` the
    median CPU seconds of the busiest process (the work of one process, which falls as 1/processes
    where the wall time cannot: on a machine with fewer cores than processes x threads)."""
    processes = int(variant.split()[0])
    rows = {}
    for route in ROUTES:
        entry = measure(route, processes, TINY if tiny else SHAPE, repeats)
        rows[route] = {"times": entry["times_s"], "parameters": entry["parameters"],
                       **{key: entry[key] for key in ("cpu_s", "model_bytes", "peak_added_bytes", "share_bytes",
                                                      "threads_per_process")}}
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,4", help="comma-separated process counts")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--vocabulary", type=int, default=32000)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per process (default: the cores shared out among the processes)")
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")
    processes = tuple(int(count) for count in args.processes.split(","))
    report = run(processes, args.repeats, args.layers, args.hidden, args.vocabulary, args.threads)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
