"""warpinit.torch under torch.distributed: named checks run by every process of a CPU (gloo) group.

    python run_ranks.py WORLD OUT [CHECK ...]

starts WORLD processes (``torch.multiprocessing``, spawn) that join one gloo group through a file in
the directory OUT, run the checks (default: those of ``CHECKS[WORLD]``) in order and write
OUT/rank<r>.json after each one: {check: "ok", or the error's traceback}. Every collective has a
timeout, the processes are joined with a deadline and killed past it; the exit status is 0 when every
process exited cleanly (failed checks included: the test reads the files).

Each check builds a model sharded as torch shards it (FSDP2's ``fully_shard``, tensor parallelism,
DTensors on a 2-D mesh), initializes it with warpinit, and compares what every process gathers
(``full_tensor()``) with the single-process ``initialize`` of the same model and seed, computed in the
same process: bit for bit, every parameter and buffer.
"""

import datetime
import functools
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

SEED = 20240917
COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=90)


# Models ------------------------------------------------------------------------------------------


def _classes():
    import torch

    nn = torch.nn

    class Orthogonal(nn.Linear):
        """A Linear whose weight ``OVERRIDES`` draws orthogonal."""

    class Truncated(nn.Linear):
        """A Linear whose weight ``OVERRIDES`` draws from a truncated normal."""

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = Orthogonal(16, 40)  # column-parallel: an orthogonal matrix split across processes
            self.down = nn.Linear(40, 16)  # row-parallel (torch's forward needs even shards here)

        def forward(self, x):
            return self.down(torch.relu(self.up(x)))

    return Orthogonal, Truncated, MLP


def _overrides():
    import warpinit.torch as wt

    orthogonal, truncated, _ = _CLASSES
    return dict(weight={truncated: functools.partial(wt.trunc_normal_, std=0.05, a=-0.06, b=0.08),
                        orthogonal: wt.orthogonal_})


def _stack():
    """Every sampler and dtype, uneven shards (and an empty one on 4 processes), a padding row."""
    import torch

    nn = torch.nn
    orthogonal, truncated, _ = _CLASSES
    return nn.Sequential(
        nn.Embedding(37, 24, padding_idx=3),  # normal, float32, a zero padding row
        nn.Linear(24, 31, dtype=torch.bfloat16),  # kaiming uniform, uniform bias
        truncated(31, 13, dtype=torch.float64),  # truncated normal
        orthogonal(13, 26, dtype=torch.float16),  # orthogonal
        nn.Linear(26, 3, dtype=torch.float16),  # 3 rows: one process of 4 holds none
    )


def _llama_config():
    import transformers

    transformers.logging.set_verbosity_error()
    return transformers.LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                    pad_token_id=0)


def _llama():
    import transformers

    return transformers.AutoModelForCausalLM.from_config(_llama_config())


def _on_meta(build):
    import torch

    with torch.device("meta"):
        return build()


def _fully_shard(model, mesh, layers):
    from torch.distributed.fsdp import fully_shard

    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


# Comparisons -------------------------------------------------------------------------------------


def _gathered(model) -> dict:
    from torch.distributed.tensor import DTensor

    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return {name: (tensor.full_tensor() if isinstance(tensor, DTensor) else tensor).detach()
            for name, tensor in tensors}


def _assert_same(sharded, reference, *, buffers=True) -> None:
    """Every gathered tensor of ``sharded`` equals ``reference``'s bit for bit."""
    import torch

    ours = _gathered(sharded)
    theirs = _gathered(reference)
    if not buffers:
        names = {name for name, _ in reference.named_parameters()}
        ours = {name: value for name, value in ours.items() if name in names}
        theirs = {name: value for name, value in theirs.items() if name in names}
    assert ours.keys() == theirs.keys(), (sorted(ours), sorted(theirs))
    for name, value in theirs.items():
        mine = ours[name]
        assert mine.dtype == value.dtype and mine.shape == value.shape, (name, mine.dtype, value.dtype)
        assert torch.isfinite(mine.float()).all(), name
        assert torch.equal(mine.view(torch.uint8), value.view(torch.uint8)), \
            f"{name}: {int((mine != value).sum())} of {value.numel()} elements differ"


def _assert_distributed(model) -> None:
    """Every parameter is a DTensor whose local tensor has torch's local shape (not the global one)."""
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    for name, parameter in model.named_parameters():
        assert isinstance(parameter, DTensor), name
        expected, _ = compute_local_shape_and_global_offset(parameter.shape, parameter.device_mesh,
                                                            parameter.placements)
        assert tuple(parameter.to_local().shape) == tuple(expected), (name, parameter.to_local().shape, expected)


# Checks ------------------------------------------------------------------------------------------


def check_fsdp_stack(rank, world):
    """fully_shard of a Linear/Embedding stack (meta), every sampler and dtype: the gathered weights
    are the single-process ones, also after a failed initialize(); FSDP2 gathers what was drawn."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))
    model = _on_meta(_stack)
    _fully_shard(model, mesh, list(model))

    def fails(module):
        raise KeyError("init_fn fails")

    try:  # a failed initialize() puts the shards back on the meta device, and FSDP2 with them
        wt.initialize(model, seed=SEED, init_fn=fails)
    except KeyError:
        pass
    assert all(parameter.is_meta for parameter in model.parameters())
    wt.initialize(model, seed=SEED, **_overrides())
    reference = _on_meta(_stack)
    wt.initialize(reference, seed=SEED, **_overrides())
    _assert_distributed(model)
    _assert_same(model, reference)
    assert torch.count_nonzero(model[0].weight.full_tensor()[3]) == 0  # the padding row
    # What FSDP2 all-gathers (its padded shard) holds the values: a forward pass sees the weights.
    tokens = torch.tensor([[1, 3, 36]])
    assert torch.equal(model[0](tokens).detach(), reference[0](tokens).detach())


def check_fast_init_dtensors(rank, world):
    """fast_init over a sharded model's own code: reset_parameters, nn.init calls, fills of indexed
    parts (a random fill, an item assignment) - the same values as the same code unsharded."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))
    model = _stack()
    reference = _stack()
    _fully_shard(model, mesh, list(model))

    def code(module):
        for sub in module.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
        torch.nn.init.trunc_normal_(module[2].weight, std=0.05, a=-0.06, b=0.08)
        torch.nn.init.xavier_normal_(module[1].weight)
        with torch.no_grad():
            embedding = module[0].weight
            embedding[5:9, 2:].normal_(0.0, 3.0)  # a random fill of an indexed part
            embedding[1] = 2.0
            embedding[30] = embedding[6]  # a copy from another part (read as torch reads it)
            torch.nn.init.constant_(embedding[10:20][2:4, :3], -1.5)  # a part of a part
            torch.nn.init.zeros_(embedding[-1])
            module[4].bias.zero_()
            total = embedding[5:9].sum()  # reading a part
        return float(total.full_tensor() if hasattr(total, "full_tensor") else total)

    with wt.fast_init(seed=SEED):
        total = code(model)
        try:
            model[0].weight[2].mul_(2.0)
        except NotImplementedError as error:
            assert "mul_" in str(error), str(error)
        else:
            raise AssertionError("an in-place multiplication of an indexed part of a DTensor went through")
    with wt.fast_init(seed=SEED):
        expected = code(reference)
    _assert_same(model, reference)
    assert abs(total - expected) <= 1e-5 * abs(expected), (total, expected)
    assert torch.all(model[0].weight.full_tensor()[1] == 2.0)


def check_fsdp_llama(rank, world):
    """fully_shard of a transformers Llama built on the meta device: initialize() runs its own
    scheme (reset_parameters, _init_weights with a padding row) on DTensors; a training step works,
    and a second initialize() after it reaches what FSDP2 gathers."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))
    model = _on_meta(_llama)
    _fully_shard(model, mesh, list(model.model.layers))
    wt.initialize(model, seed=SEED, device="cpu")
    reference = _on_meta(_llama)
    wt.initialize(reference, seed=SEED, device="cpu")
    _assert_distributed(model)
    _assert_same(model, reference)
    tokens = torch.arange(24).reshape(2, 12) % 1000
    loss = model(input_ids=tokens, labels=tokens).loss
    expected = reference(input_ids=tokens, labels=tokens).loss
    assert torch.allclose(loss, expected, rtol=1e-5), (float(loss), float(expected))
    loss.backward()
    assert all(torch.isfinite(p.grad.full_tensor()).all() for p in model.parameters())
    # Re-initialized after FSDP2 ran (its shards resharded, its buffers set up): what it gathers next.
    wt.initialize(model, seed=SEED + 1)
    wt.initialize(reference, seed=SEED + 1)
    _assert_same(model, reference)
    loss = model(input_ids=tokens, labels=tokens).loss
    expected = reference(input_ids=tokens, labels=tokens).loss
    assert torch.allclose(loss, expected, rtol=1e-5), (float(loss), float(expected))


def check_fast_init_llama(rank, world):
    """transformers' _init_weights (normal_ on DTensors, zeros_ on a padding row) under fast_init on
    a sharded Llama: the unsharded model's values."""
    from torch.distributed.device_mesh import init_device_mesh

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))
    model = _on_meta(_llama)
    _fully_shard(model, mesh, list(model.model.layers))
    model.to_empty(device="cpu")
    reference = _on_meta(_llama)
    reference.to_empty(device="cpu")
    with wt.fast_init(seed=SEED):
        model.apply(model._init_weights)
    with wt.fast_init(seed=SEED):
        reference.apply(reference._init_weights)
    _assert_same(model, reference, buffers=False)


def check_tensor_parallel(rank, world):
    """ColwiseParallel/RowwiseParallel of an MLP on the meta device, an orthogonal weight split by
    rows: the gathered weights and the forward pass are the single-process ones."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))
    mlp = _CLASSES[2]
    model = parallelize_module(_on_meta(mlp), mesh, {"up": ColwiseParallel(), "down": RowwiseParallel()})
    wt.initialize(model, seed=SEED, device="cpu", **_overrides())
    reference = _on_meta(mlp)
    wt.initialize(reference, seed=SEED, device="cpu", **_overrides())
    _assert_distributed(model)
    _assert_same(model, reference)
    x = torch.linspace(-1.0, 1.0, 48).reshape(3, 16)
    assert torch.allclose(model(x), reference(x), atol=1e-6)
    # warpinit.torch's nn.init look-alikes on DTensors, a seed and stream of their own.
    for fill in (functools.partial(wt.trunc_normal_, std=0.5, a=-0.3, b=0.9, seed=5, stream=2),
                 functools.partial(wt.orthogonal_, gain=2.0, seed=6), functools.partial(wt.xavier_uniform_, seed=7)):
        fill(model.up.weight)
        fill(model.down.weight)
        fill(reference.up.weight)
        fill(reference.down.weight)
        _assert_same(model, reference)


def check_mesh_2d(rank, world):
    """A 2-D mesh: FSDP2 over tensor parallelism (strided shards), and DTensors placed (Shard(0),
    Shard(1)), (Replicate(), Shard(0)), (Shard(1), Shard(1)) and (_StridedShard, Shard): the gathered
    tensors are the single-process ones; a forward pass works."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module
    from torch.distributed.tensor.placement_types import _StridedShard

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("dp", "tp"))
    mlp = _CLASSES[2]
    model = parallelize_module(_on_meta(mlp), mesh["tp"], {"up": ColwiseParallel(), "down": RowwiseParallel()})
    fully_shard(model, mesh=mesh["dp"])
    assert any(isinstance(p, _StridedShard) for p in model.up.weight.placements), model.up.weight.placements
    wt.initialize(model, seed=SEED, device="cpu", **_overrides())
    reference = _on_meta(mlp)
    wt.initialize(reference, seed=SEED, device="cpu", **_overrides())
    _assert_distributed(model)
    _assert_same(model, reference)
    x = torch.linspace(-1.0, 1.0, 48).reshape(3, 16)
    assert torch.allclose(model(x), reference(x), atol=1e-6)

    shapes = {"a": (7, 9), "b": (5, 6), "c": (3, 10), "d": (11, 4)}
    placements = {"a": [Shard(0), Shard(1)], "b": [Replicate(), Shard(0)], "c": [Shard(1), Shard(1)],
                  "d": [_StridedShard(0, split_factor=2), Shard(0)]}

    class Holder(torch.nn.Module):
        def __init__(self, distributed):
            super().__init__()
            for name, shape in shapes.items():
                tensor = torch.empty(shape, device="meta")
                if distributed:
                    tensor = distribute_tensor(tensor, mesh, placements[name], src_data_rank=None)
                self.register_parameter(name, torch.nn.Parameter(tensor))

    def init(module):
        torch.nn.init.normal_(module.a, 1.0, 2.0)
        torch.nn.init.uniform_(module.b, -3.0, 0.5)
        torch.nn.init.trunc_normal_(module.c, std=0.3, a=-0.2, b=0.4)
        torch.nn.init.kaiming_uniform_(module.d)

    held = Holder(True)
    wt.initialize(held, seed=SEED, init_fn=init)
    unsharded = Holder(False)
    wt.initialize(unsharded, seed=SEED, init_fn=init)
    _assert_distributed(held)
    _assert_same(held, unsharded)


def check_unsupported_placements(rank, world):
    """Partial and custom placements: a ValueError naming the parameter and the placement, before
    anything is materialized; fast_init's fills of such a DTensor too."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Partial, Shard

    import warpinit.torch as wt

    mesh = init_device_mesh("cpu", (world,))

    class Custom(Shard):
        """A placement of the user's own."""

    for placement, label in ((Partial(), "Partial"), (Custom(0), "Custom")):
        class Holder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.ok = torch.nn.Parameter(torch.empty(4, 3, device="meta"))
                self.odd = torch.nn.Parameter(DTensor.from_local(torch.empty(4, 3, device="meta"), mesh, [placement],
                                                                 run_check=False))

            def reset_parameters(self):
                torch.nn.init.normal_(self.ok)
                torch.nn.init.normal_(self.odd)

        holder = Holder()
        try:
            wt.initialize(holder, seed=SEED)
        except ValueError as error:
            message = str(error)
            assert "'odd'" in message and label in message, message
        else:
            raise AssertionError(f"a {label} placement was initialized")
        assert holder.ok.is_meta and holder.odd.is_meta  # nothing materialized
        real = DTensor.from_local(torch.zeros(4, 3), mesh, [placement], run_check=False)
        try:
            with wt.fast_init(seed=SEED):
                torch.nn.init.normal_(real)
        except ValueError as error:
            assert label in str(error), str(error)
        else:
            raise AssertionError(f"fast_init drew a {label} placement")
        assert torch.count_nonzero(real.to_local()) == 0


def _resident(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def check_memory_per_process(rank, world):
    """A model four times the size of its largest tensor, sharded with fully_shard on the meta
    device: initialize() raises each process's peak resident memory (Linux VmHWM, reset just before
    through /proc/self/clear_refs) by about its own share, well below a share plus half the largest
    tensor - which a process drawing (or materializing) any tensor whole would exceed."""
    import torch
    from torch.distributed.device_mesh import init_device_mesh

    import warpinit.torch as wt

    nn = torch.nn

    def build():
        return nn.Sequential(nn.Embedding(4096, 1024), nn.Linear(1024, 4096, bias=False),
                             nn.Linear(4096, 1024, bias=False), nn.Linear(1024, 4096, bias=False))

    mesh = init_device_mesh("cpu", (world,))
    wt.initialize(nn.Sequential(nn.Embedding(8, 4), nn.Linear(4, 8, bias=False)), seed=SEED)  # compiled kernels
    model = _on_meta(build)
    _fully_shard(model, mesh, list(model))
    total = sum(p.numel() * p.element_size() for p in model.parameters())
    largest = max(p.numel() * p.element_size() for p in model.parameters())
    share = total / world
    gc.collect()
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")  # resets VmHWM to the current resident size
    before = _resident("VmRSS")
    wt.initialize(model, seed=SEED)
    added = _resident("VmHWM") - before
    report = f"process {rank}: peak +{added / 2**20:.1f} MiB for a share of {share / 2**20:.1f} MiB " \
             f"(model {total / 2**20:.1f} MiB, largest tensor {largest / 2**20:.1f} MiB)"
    print(report, flush=True)
    assert 0.5 * share < added < share + largest / 2, report
    local = sum(p.to_local().numel() * p.element_size() for p in model.parameters())
    assert local == total // world, (local, total)


CHECKS = {
    2: ["fsdp_stack", "fast_init_dtensors", "fsdp_llama", "fast_init_llama", "tensor_parallel",
        "unsupported_placements", "memory_per_process"],
    4: ["fsdp_stack", "fast_init_dtensors", "tensor_parallel", "mesh_2d", "memory_per_process"],
}
_CLASSES = None


def _worker(rank, world, out, names):
    global _CLASSES
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    _CLASSES = _classes()
    results = {}
    path = Path(out) / f"rank{rank}.json"
    dist.init_process_group("gloo", init_method=f"file://{Path(out) / 'rendezvous'}", rank=rank, world_size=world,
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        for name in names:
            start = time.perf_counter()
            try:
                globals()[f"check_{name}"](rank, world)
                results[name] = "ok"
            except Exception:  # noqa: BLE001 - every check reports, the next one still runs
                results[name] = traceback.format_exc()
            results[f"{name} seconds"] = round(time.perf_counter() - start, 2)
            path.write_text(json.dumps(results))
            dist.barrier()
    finally:
        dist.destroy_process_group()


def main(argv) -> int:
    # One thread per process: the group's processes share the machine's cores (the spawned processes
    # inherit this before they import numba and torch).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    # Large blocks go back to the system when freed: what earlier checks freed cannot hide a peak.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 17))
    import torch.multiprocessing as mp

    world, out = int(argv[0]), argv[1]
    names = argv[2:] or CHECKS[world]
    unknown = [name for name in names if f"check_{name}" not in globals()]
    if unknown:
        raise SystemExit(f"unknown checks: {unknown}")
    deadline = time.monotonic() + float(os.environ.get("WARPINIT_RANKS_TIMEOUT", "400"))
    context = mp.start_processes(_worker, args=(world, out, names), nprocs=world, join=False, start_method="spawn")
    try:
        while not context.join(timeout=max(1.0, deadline - time.monotonic())):
            if time.monotonic() > deadline:
                print("run_ranks: deadline passed; killing the processes", file=sys.stderr)
                return 1
    finally:
        for process in context.processes:
            if process.is_alive():
                process.kill()
                process.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
