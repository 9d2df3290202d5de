"""warpinit.torch on DTensors under torch.distributed: 2 and 4 CPU processes (gloo).

Each world size runs once (tests/torch_distributed/run_ranks.py in a subprocess leading its own process group,
killed with its processes past a deadline), every process running the same named checks; each check
is a test here that passes when every process reported it ok: FSDP2's ``fully_shard`` of a
Linear/Embedding stack (every sampler and dtype, uneven and empty shards, a padding row) and of a
transformers Llama, ``fast_init`` over sharded models' own code, tensor parallelism
(Colwise/RowwiseParallel, an orthogonal weight split by rows), a 2-D mesh (FSDP2 over tensor
parallelism, explicit placements), unsupported placements refused, and each process's peak memory
about its own share. Gathered weights equal the single-process ``initialize`` bit for bit. Then
warpinit.torch without any process group, and the sharded benchmark at a tiny size.
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

SCRIPT = Path(__file__).parent / "torch_distributed" / "run_ranks.py"
# A deadline for each world size's run (the processes kill themselves a little earlier).
TIMEOUT = 480


def _checks():
    spec = importlib.util.spec_from_file_location("run_ranks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # standard library imports only
    return module.CHECKS


CHECKS = _checks()
_RUNS = {}


def _run(world, directory):
    """(exit status or None past the deadline, output, {rank: {check: "ok" or the error}})."""
    env = dict(os.environ, WARPINIT_RANKS_TIMEOUT=str(TIMEOUT - 40))
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(world), str(directory)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
        status = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the script and every process it started
        output, _ = process.communicate()
        status = None
    reports = {}
    for rank in range(world):
        path = Path(directory) / f"rank{rank}.json"
        if path.exists():
            reports[rank] = json.loads(path.read_text())
    return status, output, reports


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    def get(world):
        if world not in _RUNS:
            _RUNS[world] = _run(world, tmp_path_factory.mktemp(f"world{world}"))
        return _RUNS[world]

    return get


@pytest.mark.parametrize("world, check", [(world, check) for world, checks in CHECKS.items() for check in checks])
def test_every_process_passes(ranks, world, check):
    status, output, reports = ranks(world)
    failures = {rank: reports.get(rank, {}).get(check, "no report") for rank in range(world)}
    failures = {rank: result for rank, result in failures.items() if result != "ok"}
    assert not failures, "\n".join(f"process {rank}: {result}" for rank, result in failures.items()) + \
        f"\n(exit status {status}; output tail:\n{output[-3000:]})"


@pytest.mark.parametrize("world", sorted(CHECKS))
def test_every_process_exits_cleanly_within_the_deadline(ranks, world):
    status, output, reports = ranks(world)
    assert status == 0, f"exit status {status} (None: killed at the deadline); output tail:\n{output[-3000:]}"
    assert sorted(reports) == list(range(world))


def test_warpinit_torch_needs_no_process_group():
    """Without torch.distributed in use, warpinit.torch imports none of it and initializes plain
    models as before (DTensor support costs such programs nothing)."""
    code = ("import sys, torch, warpinit.torch as wt\n"
            "model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Embedding(5, 2, padding_idx=1))\n"
            "wt.initialize(model, seed=3)\n"
            "with wt.fast_init(seed=3):\n"
            "    model[1].weight[2].normal_()\n"
            "assert torch.all(model[1].weight[1] == 0)\n"
            "loaded = [name for name in ('torch.distributed.tensor', 'torch.distributed.fsdp')\n"
            "          if name in sys.modules]\n"
            "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_sharded_benchmark_reports_both_routes_per_process():
    """bench/torch_sharded.py at a tiny size, on one process (the suite's time): a JSON report of both
    routes with the process's time and peak memory."""
    command = [sys.executable, "-m", "warpinit.bench.torch_sharded", "--processes", "1", "--repeats", "1",
               "--layers", "1", "--hidden", "64", "--vocabulary", "256"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert [(run["route"], run["processes"]) for run in report["runs"]] == [("torch", 1), ("warpinit", 1)]
    for run in report["runs"]:
        assert run["time_s"] > 0 and run["cpu_s"] > 0 and run["peak_added_bytes"] >= 0
        assert run["local_bytes"] == [report["model"]["bytes"]] and run["share_bytes"] == report["model"]["bytes"]
    assert report["torch_over_warpinit_time"]["1"] > 0
