"""``warpinit bench`` end to end: the table, results.json, results.png and table.txt, and its errors.

The full run happens once, in a subprocess (the command sets every library's thread count before
importing it), at tiny sizes with every peer installed here; the argument errors run in-process
because argparse rejects them before anything is imported.
"""

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from warpinit import cli
from warpinit.bench import cases, machine, peers, runner

SIZES = (10**4, 3 * 10**4)
CPU_PEERS = ("numpy", "tf", "keras", "torch", "torch-qr", "jax")


def _installed(library: str) -> bool:
    return peers.PEERS[library].available()


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "warpinit", "bench", "--sizes", ",".join(map(str, SIZES)),
               "--ops", "truncated_normal,normal,uniform,orthogonal,keras_model,torch_init,jax_init", "--orthogonal-shapes", "2x16",
               "--stack", "2x32", "--keras-backends", "numpy", "--peers", ",".join(CPU_PEERS),
               "--repeats", "2", "--settle", "0", "--threads", "2", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, out


def test_table_has_a_row_per_library_and_case(bench_run):
    stdout, _ = bench_run
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("op "))
    for column in ("median", "spread", "rate", "% limit", "% fresh", "warpinit x"):
        assert column in header
    for op in ("truncated_normal", "normal", "uniform"):
        for size in SIZES:
            rows = {line.split()[3]: line for line in lines if line.split()[:2] == [op, f"{size:.0e}"]}
            assert {"warpinit", "warpinit-out", "limit", "limit-fresh"} <= set(rows), (op, size, rows)
            for library in ("numpy", "tf", "torch", "jax"):
                if _installed(library):
                    assert re.search(r"\d\.\d\dx\??$", rows[library].rstrip()), rows[library]  # a measured speed-up
    for size in SIZES:  # a limit counts by its best over the ops of the run: that one is 100 %
        limits = [line.split() for line in lines if line.split()[1:2] == [f"{size:.0e}"] and line.split()[3].startswith("limit")]
        assert any(fields[3] == "limit-fresh" and fields[-2].rstrip("?") == "100.0%" for fields in limits), limits
        assert any(fields[-3].rstrip("?") == "100.0%" for fields in limits), limits
    orthogonal = [line for line in lines if line.startswith("orthogonal ")]
    libraries = {line.split()[3] for line in orthogonal}
    assert libraries >= {"limit", "warpinit", "numpy"} and "warpinit-out" not in libraries
    for library, module in (("limit-scipy", "scipy"), ("limit-torch", "torch"), ("limit-jax", "jax"), ("limit-tf", "tensorflow")):
        assert (library in libraries) == (importlib.util.find_spec(module) is not None)
    keras_rows = [line for line in lines if line.startswith("keras:")]
    if _installed("keras"):
        assert {line.split()[0] for line in keras_rows} == {f"keras:{name}/numpy" for name in cases.KERAS_INITIALIZERS}
        assert {line.split()[3] for line in keras_rows} == {"keras", "warpinit"}
    for op, framework in (("torch_init", "torch"), ("jax_init", "jax")):
        if _installed(framework):
            for variant in cases.ADAPTER_VARIANTS[op]:
                rows = [line for line in lines if line.startswith(f"{op}:{variant} ")]
                assert {line.split()[3] for line in rows} == {"limit", "warpinit", framework}, rows
    assert "cupy" not in stdout  # a GPU-only peer is left out of a CPU run


def test_json_holds_machine_facts_and_every_case(bench_run):
    _, out = bench_run
    report = json.loads((out / "results.json").read_text())
    facts = report["machine"]
    assert facts["cpu"] and facts["cores"] >= 1 and facts["gpus"] == []
    assert facts["date"].startswith("20") and facts["python"].count(".") == 2
    assert {"warpinit", "numpy", "numba"} <= set(facts["versions"])
    assert facts["environment"]["NUMBA_NUM_THREADS"] == "2"  # the settings a figure depends on
    for library, module in (("torch", "torch"), ("jax", "jax"), ("tensorflow", "tensorflow"), ("keras", "keras")):
        assert (library in facts["versions"]) == (importlib.util.find_spec(module) is not None)
    assert report["device"] == "cpu" and report["threads"] == 2 and report["repeats"] == 2
    assert report["command"][:2] == ["warpinit", "bench"]
    rows = report["results"]
    libraries = peers.OURS + CPU_PEERS
    expected = cases.cases(("truncated_normal", "normal", "uniform", "orthogonal"), SIZES, "float32", libraries,
                           "cpu", ((2, 16),))
    assert len([r for r in rows if r["op"] in peers.ARRAY_OPS]) == len(expected)
    for row in rows:
        if row["skipped"]:
            assert row["library"] not in ("warpinit", "limit"), row
            continue
        if cases.is_limit(row["library"]):  # the best of more repeats gives the rate
            case = cases.Case(**{field: row[field] for field in ("op", "size", "dtype", "library", "device", "batch", "variant")})
            assert len(row["times"]) == cases.LIMIT_REPEATS and row["best"] == min(row["times"])
            assert (row.get("flops_per_second") or row["values_per_second"]) == pytest.approx(case.work / row["best"])
        else:
            assert len(row["times"]) == 2 and all(t > 0 for t in row["times"])
            assert row["median"] == pytest.approx(sorted(row["times"])[0] / 2 + sorted(row["times"])[1] / 2)
        rate = row.get("flops_per_second") or row.get("values_per_second")
        assert rate > 0
    # The table files: what the command printed, and the Markdown that RESULTS.md quotes.
    table = (out / "table.txt").read_text()
    assert table.splitlines()[0].startswith("warpinit bench: ") and "op " in table
    markdown = (out / "table.md").read_text()
    for op in ("truncated_normal", "normal", "uniform", "orthogonal"):
        assert f"### {op}\n" in markdown
    assert markdown.count("| **warpinit** |") == len([r for r in rows if r["library"] == "warpinit" and not r["skipped"]])
    if _installed("keras"):  # the initializer x backend summary: median and cold (first) build
        for title, pick in (("median build", lambda r: r["median"]), ("cold build", lambda r: r["times"][0])):
            section = markdown.split(f"Keras → warpinit, {title}")[1].split("\n\n")[1].splitlines()
            assert section[0] == "| initializer | numpy |"
            for name in cases.KERAS_INITIALIZERS:
                pair = {r["library"]: pick(r) for r in rows if r["op"] == "keras_model" and r["variant"] == f"{name}/numpy"}
                line = next(line for line in section if line.startswith(f"| {name} |"))
                assert line.endswith(f": {pair['keras'] / pair['warpinit']:.1f}× |")


def test_png_is_a_plot(bench_run):
    _, out = bench_run
    data = (out / "results.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("matplotlib.image").imread(str(out / "results.png"))
    height, width = image.shape[:2]
    assert width > 1500 and height > 800  # seven panels in three rows of three


@pytest.fixture(scope="module")
def models_run(tmp_path_factory):
    """The real-model ops at their tiny sizes (``--quick``): one keras-hub model on one backend, one
    transformers model, two process counts of the sharded model."""
    out = tmp_path_factory.mktemp("models")
    command = [sys.executable, "-m", "warpinit", "bench", "--quick", "--ops", "models,torch_models,torch_sharded",
               "--keras-backends", "jax", "--models", "gpt2", "--processes", "1,2", "--settle", "0",
               "--threads", "2", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads((out / "results.json").read_text()), (out / "table.md").read_text()


def _ready(op: str) -> bool:
    needs = {"models": ("keras", "keras_hub", "jax"), "torch_models": ("torch", "transformers"),
             "torch_sharded": ("torch", "transformers")}[op]
    return all(importlib.util.find_spec(module) for module in needs)


@pytest.mark.parametrize("op, variants", [("models", ["gpt2/jax"]), ("torch_models", ["gpt2"]),
                                          ("torch_sharded", ["1 processes", "2 processes"])])
def test_real_model_ops_time_every_library(models_run, op, variants):
    stdout, report, markdown = models_run
    rows = [row for row in report["results"] if row["op"] == op]
    assert [row["variant"] for row in rows] == [v for v in variants for _ in cases.MODEL_LIBRARIES[op]]
    if not _ready(op):
        assert all(row["skipped"].startswith("not installed (pip install") for row in rows)
        return
    peer = cases.MODEL_LIBRARIES[op][0]
    for variant in variants:
        by = {row["library"]: row for row in rows if row["variant"] == variant}
        assert set(by) == set(cases.MODEL_LIBRARIES[op]) and not any(row["skipped"] for row in by.values())
        # The work is the model's parameter count, reported by the subprocess: the same for every library.
        assert len({row["work"] for row in by.values()}) == 1 and by[peer]["work"] > 1000
        for row in by.values():
            assert row["tiny"] and len(row["times"]) == 3 and all(t > 0 for t in row["times"])
            # A limit's rate is of its best time (the machine's ceiling), a library's of its median.
            timed = min(row["times"]) if cases.is_limit(row["library"]) else row["median"]
            assert row["values_per_second"] == pytest.approx(row["work"] / timed)
            if op != "models":  # the memory figures beside each time
                assert row["model_bytes"] == 4 * row["work"] and row["peak_added_bytes"] is not None
            if op == "torch_sharded":  # and the work of the busiest process
                assert 0 < row["cpu_s"] and row["share_bytes"] == row["model_bytes"] / int(variant.split()[0])
        label = f"{op}:{variant.replace(' processes', 'proc')}"
        lines = {line.split()[3]: line for line in stdout.splitlines() if line.split()[:1] == [label]}
        assert set(lines) == set(cases.MODEL_LIBRARIES[op])
        # warpinit's speed-up over the peer; none over warpinit's other route.
        assert re.search(r"\d\.\d\dx\??(  (cpu|peak) .*)?$", lines[peer].rstrip()), lines[peer]
        for library in cases.MODEL_LIBRARIES[op][1:]:
            assert not re.search(r"\d\.\d\dx\??(  (cpu|peak) .*)?$", lines[library].rstrip()), lines[library]
        if op == "models":  # the floor of any initializer, as the op's limit: warpinit's share of it
            assert re.search(r"  \d+\.\d%\??  ", lines["warpinit"]), lines["warpinit"]
        else:
            assert "  peak " in lines[peer] and ("  cpu " in lines[peer]) == (op == "torch_sharded")
    assert f"### {op}\n" in markdown
    summary = {"models": "| model | jax |", "torch_models": "| case | transformers | warpinit | warpinit-meta |",
               "torch_sharded": "| case | torch | warpinit |"}[op]
    assert summary in markdown
    if op == "models":  # each cell ends with what both floors leave room for
        assert re.search(r"\(limit [^;|]+: \d+\.\d×; limit-bits [^|]+: \d+\.\d×\)", markdown), markdown


def test_real_model_ops_without_their_library_are_skipped(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name, *a))
    result = runner.measure(cases.Case("torch_models", 0, "float32", "warpinit", variant="gpt2", tiny=True), 1, 0)
    assert result.skipped == "not installed (pip install 'warpinit[bench]' (transformers))"
    result = runner.measure(cases.Case("torch_sharded", 0, "float32", "torch", "cuda", variant="2 processes"), 1, 0)
    assert result.skipped == "runs on the CPU only"


@pytest.mark.parametrize("flags", [
    ["--ops", "bogus"],
    ["--models", "resnet"],
    ["--processes", "0"],
    ["--processes", "two"],
    ["--ops", ""],
    ["--sizes", "ten"],
    ["--sizes", "0"],
    ["--orthogonal-shapes", "16"],
    ["--stack", "4"],
    ["--keras-backends", "theano"],
    ["--peers", "mxnet"],
    ["--dtype", "int8"],
    ["--device", "tpu"],
    ["--repeats", "0"],
    ["--threads", "-2"],
    ["--settle", "-1"],
    ["--no-such-flag"],
])
def test_bad_flags_are_usage_errors(flags, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", *flags])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "usage: warpinit bench" in error and "error:" in error


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    assert "usage: warpinit" in capsys.readouterr().err


def test_cuda_without_a_gpu_is_an_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(peers, "set_threads", lambda threads: None)  # keep this process's environment
    assert cli.main(["bench", "--device", "cuda", "--out", str(tmp_path)]) == 1
    assert "device='cuda'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_missing_peer_is_skipped_with_its_extra(monkeypatch):
    missing = peers.Peer("ghost", "no_such_module_for_warpinit", "pip install ghost", lambda case: None)
    monkeypatch.setitem(peers.PEERS, "ghost", missing)
    result = runner.measure(cases.Case("normal", 100, "float32", "ghost"), repeats=1, settle=0)
    assert result.skipped == "not installed (pip install ghost)"
    assert "skipped: not installed (pip install ghost)" in runner.table([result])


def test_after_the_pause_a_case_runs_untimed_before_its_timed_calls(monkeypatch):
    """The pause lets other libraries' threads go quiet; the calls right after it would meet an idle
    CPU, so the case runs untimed for RAMP_SECONDS first, and only the repeats are timed."""
    calls = []
    monkeypatch.setitem(peers.PEERS, "counter", peers.Peer("counter", "numpy", "", lambda case: lambda: calls.append(1)))
    monkeypatch.setattr(runner, "RAMP_SECONDS", 0.05)
    result = runner.measure(cases.Case("normal", 100, "float32", "counter"), repeats=3, settle=0.01)
    assert len(result.times) == 3
    assert len(calls) > 1 + 1 + 3  # the warm-up, the ramp (many calls in 50 ms), the repeats
    calls.clear()
    assert len(runner.measure(cases.Case("normal", 100, "float32", "counter"), repeats=3, settle=0).times) == 3
    assert len(calls) == 1 + 3  # no pause, no ramp


def test_run_without_matplotlib_still_writes_json(monkeypatch, capsys, tmp_path):
    from warpinit.bench import plot

    monkeypatch.setattr(peers, "set_threads", lambda threads: None)
    monkeypatch.setattr(plot, "available", lambda: False)
    code = cli.main(["bench", "--sizes", "1000", "--ops", "uniform", "--peers", "numpy", "--repeats", "1",
                     "--settle", "0", "--out", str(tmp_path)])
    assert code == 0
    assert "plot skipped" in capsys.readouterr().out and plot.INSTALL.startswith("pip install")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "table.md", "table.txt"]


def test_progress_bar_draws_on_a_terminal_only():
    class Terminal:
        def __init__(self, tty):
            self.tty, self.text = tty, ""

        def isatty(self):
            return self.tty

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    case = cases.Case("normal", 10, "float32", "warpinit")
    terminal, pipe = Terminal(True), Terminal(False)
    for number in (1, 2):
        runner.progress_bar(number, 2, case, terminal)
        runner.progress_bar(number, 2, case, pipe)
    assert "1/2" in terminal.text and "2/2" in terminal.text and terminal.text.endswith("\n")
    assert pipe.text == ""


def test_machine_description_names_cpu_and_gpu():
    facts = machine.facts()
    line = machine.describe(facts)
    assert facts["cpu"] in line and f"{facts['cores']} cores" in line and "no GPU" in line
    assert machine.describe(dict(facts, gpus=["NVIDIA H200"])).endswith("NVIDIA H200")
