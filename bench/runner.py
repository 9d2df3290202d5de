"""``warpinit bench``: time warpinit and its peers side by side and print the comparison.

Every case runs once to warm up (compilation, allocation, autotuning), pauses, runs untimed again
for ``RAMP_SECONDS`` after the pause, then runs ``repeats`` times (the ops of
``cases.SUBPROCESS_OPS`` run in subprocesses of their own, which warm up and time themselves:
every library of a model or backend from one call); the median is reported with the
spread ((max - min) / median) in percent. A limit case (the machine's ceiling, ``cases.is_limit``)
runs at least ``cases.LIMIT_REPEATS`` times and is reported by its best time: the ceiling is what the
machine can do, not a typical run of a busy machine.

``compare`` derives the figures of a run, for the same op, size and dtype: the speed-up over each peer
(the peer's median over the median of warpinit's allocating call), "% limit" (a case's rate against the
fastest limit: the preallocated fill for sampling, the fastest SGEMM for orthogonal) and "% fresh"
(against the fill into fresh memory, for the samplers). A limit measured for several ops (the fill of
1e7 values for each sampler, the SGEMM for each orthogonal stack) counts by its best in the run. A
figure whose cases spread more than ``NOISY_SPREAD`` (or a share of a limit above 100 %) is flagged:
the machine was too busy for that ratio to measure the code.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from .cases import FRESH_LIMIT, LIMIT_REPEATS, MODEL_LIBRARIES, SUBPROCESS_OPS, Case, is_limit

# The spread beyond which a ratio is flagged as meaningless (see the module docstring).
NOISY_SPREAD = 0.25
NOISY_MARK = "?"


@dataclass
class Result:
    case: Case
    times: list[float]
    skipped: str | None = None
    work: float | None = None  # what the subprocess of a real-model op reports (parameters); else case.work
    extra: dict = field(default_factory=dict)  # the memory figures of the real-model ops

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rate(self) -> float:
        """Work per second (values for the samplers, flops for orthogonal, parameters for the real-model
        ops): of the median time, or of the best time for a limit."""
        work = self.case.work if self.work is None else self.work
        return work / (min(self.times) if is_limit(self.case.library) else self.median)

    @property
    def spread(self) -> float:
        return (max(self.times) - min(self.times)) / self.median

    def as_dict(self) -> dict:
        row = asdict(self.case)
        row.update(times=self.times, skipped=self.skipped, **self.extra)
        if self.work is not None:
            row.update(work=self.work)
        if not self.skipped:
            unit = "flops_per_second" if self.case.op == "orthogonal" else "values_per_second"
            row.update(median=self.median, best=min(self.times), spread=self.spread, **{unit: self.rate})
        return row


SETTLE_SECONDS = 0.5
# After the pause, the case runs untimed for this long first: a vCPU left idle wakes up slowly (on the
# small VMs measured, the first calls after a 3 s pause took 1.5-2.5 times as long as the later ones).
RAMP_SECONDS = 0.5
UNSUPPORTED = "not supported by this library"
# What the real-model ops need installed: (module, the pip command that brings it).
_NEEDS = {"keras_model": (("keras", "pip install 'warpinit[bench]'"),),
          "models": (("keras", "pip install 'warpinit[bench]'"), ("keras_hub", "pip install 'warpinit[bench]' (keras-hub)")),
          "torch_models": (("torch", "pip install torch==2.13.0"), ("transformers", "pip install 'warpinit[bench]' (transformers)")),
          "torch_sharded": (("torch", "pip install torch==2.13.0"), ("transformers", "pip install 'warpinit[bench]' (transformers)"))}


_SUBPROCESS_RUNS: dict = {}


def _subprocess_rows(case: Case, repeats: int) -> dict:
    """{library: {"times": [...], "parameters": n, ...}} of a case's op and variant, from the
    subprocesses of its bench module (run once for all libraries of the variant)."""
    from . import keras_model, keras_models, torch_models, torch_sharded

    if case.op == "keras_model":
        initializer, backend = case.variant.split("/")
        times = keras_model.run(backend, initializer, case.batch, case.size, repeats)
        return {library: {"times": times[library]} for library in ("keras", "warpinit")}
    module = {"models": keras_models, "torch_models": torch_models, "torch_sharded": torch_sharded}[case.op]
    return module.results(case.variant, repeats, case.tiny)


def _measure_in_subprocesses(case: Case, repeats: int) -> Result:
    """A case of ``SUBPROCESS_OPS``: every library of its variant measured by the op's subprocesses."""
    if case.device != "cpu":
        return Result(case, [], skipped="runs on the CPU only")
    missing = [install for module, install in _NEEDS[case.op] if importlib.util.find_spec(module) is None]
    if missing:
        return Result(case, [], skipped=f"not installed ({missing[0]})")
    key = (case.op, case.variant, case.batch, case.size, case.tiny, repeats)
    if key not in _SUBPROCESS_RUNS:
        try:
            _SUBPROCESS_RUNS[key] = _subprocess_rows(case, repeats)
        except Exception as error:  # a backend or model that fails is reported, not fatal
            _SUBPROCESS_RUNS[key] = {"error": f"{type(error).__name__}: {error}"}
    rows = _SUBPROCESS_RUNS[key]
    if "error" in rows:
        return Result(case, [], skipped=rows["error"])
    row = dict(rows[case.library])
    times, parameters = row.pop("times"), row.pop("parameters", None)
    return Result(case, times, work=None if parameters is None else float(parameters), extra=row)


def measure(case: Case, repeats: int, settle: float = SETTLE_SECONDS) -> Result:
    """Warm up once, let the machine settle, then time ``repeats`` calls.

    The pause matters on a small machine: TensorFlow's and XLA's thread pools spin for a while after
    their work ends, and would slow whatever case runs next. After a pause the case runs untimed
    for RAMP_SECONDS (once at least), so that the timed calls do not start on an idle CPU."""
    from .peers import PEERS

    if case.op in SUBPROCESS_OPS:
        return _measure_in_subprocesses(case, repeats)
    if not is_limit(case.library) and not PEERS[case.library].available():
        return Result(case, [], skipped=f"not installed ({PEERS[case.library].install})")
    try:
        function = case.build()
    except Exception as error:  # a peer that fails to set up is reported, not fatal
        return Result(case, [], skipped=f"{type(error).__name__}: {error}")
    if function is None:
        return Result(case, [], skipped=UNSUPPORTED)
    function()
    if settle > 0:
        time.sleep(settle)
        ramp = time.perf_counter() + RAMP_SECONDS
        function()
        while time.perf_counter() < ramp:
            function()
    times = []
    for _ in range(max(repeats, LIMIT_REPEATS) if is_limit(case.library) else repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return Result(case, times)


def run(case_list: list[Case], repeats: int, progress=None, settle: float = SETTLE_SECONDS) -> list[Result]:
    """Measure every case in order; ``progress(number, total, case)`` is called before each."""
    results = []
    for number, case in enumerate(case_list, 1):
        if progress:
            progress(number, len(case_list), case)
        results.append(measure(case, repeats, settle))
    return results


def _rate(row: dict) -> float:
    return row.get("flops_per_second") or row.get("values_per_second")


def spread_of(row: dict) -> float:
    """(max - min) / median of a row's times."""
    times = row["times"]
    return row.get("spread", (max(times) - min(times)) / statistics.median(times))


def compare(rows: list[dict]) -> list[tuple[dict, dict]]:
    """The figures of a run's rows (``Result.as_dict()`` items, skipped ones included), in order: for
    each row a dict with "percent" (of the fastest limit), "percent_fresh" (of the fill into fresh
    memory), "speedup" (warpinit's over this peer), each None where it does not apply, and their
    flags "noisy_percent", "noisy_percent_fresh", "noisy_speedup"."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["op"], row["size"], row["batch"], row["dtype"], row.get("variant", "")), []).append(row)
    # A limit measures the machine, not the op: the same fill (or SGEMM) measured for several ops of
    # the run counts by its best, which a busy spell during one op's measurement cannot lower.
    best: dict[tuple, dict] = {}
    for row in rows:
        if is_limit(row["library"]) and not row["skipped"]:
            key = _limit_key(row)
            if key not in best or _rate(row) > _rate(best[key]):
                best[key] = row
    figures = {}
    for group in groups.values():
        measured = [row for row in group if not row["skipped"]]
        # The ceiling is the fastest limit of the group (on a busy machine the fill into fresh memory can
        # happen to beat the preallocated one).
        limits = [best[_limit_key(row)] for row in measured if is_limit(row["library"])]
        limit = max(limits, key=_rate, default=None)
        fresh = next((best[_limit_key(row)] for row in measured if row["library"] == FRESH_LIMIT), None)
        ours = next((row for row in measured if row["library"] == "warpinit"), None)
        for row in measured:
            figure = {"percent": None, "percent_fresh": None, "speedup": None, "noisy_percent": False,
                      "noisy_percent_fresh": False, "noisy_speedup": False}
            noisy = not is_limit(row["library"]) and spread_of(row) > NOISY_SPREAD
            if limit:
                figure["percent"] = 100 * _rate(row) / _rate(limit)
                figure["noisy_percent"] = noisy or figure["percent"] > 100.05
            if fresh:
                figure["percent_fresh"] = 100 * _rate(row) / _rate(fresh)
                figure["noisy_percent_fresh"] = noisy
            if ours and not is_limit(row["library"]) and not row["library"].startswith("warpinit"):
                figure["speedup"] = row["median"] / ours["median"]
                figure["noisy_speedup"] = noisy or spread_of(ours) > NOISY_SPREAD
            figures[id(row)] = figure
    return [(row, figures.get(id(row), {})) for row in rows]


def _limit_key(row: dict) -> tuple:
    """What a limit row measured: the same key for the same fill or GEMM, whatever op it served (a
    real-model op's limit is its own model and backend's)."""
    if row["op"] in MODEL_LIBRARIES:
        return row["library"], row["op"], row.get("variant", ""), row.get("tiny", False)
    size = "gemm" if row["op"] == "orthogonal" else row["size"]
    return row["library"], row["dtype"], row["device"], size


def memory(row: dict) -> str:
    """The peak memory a real-model row added, against the model's bytes (or a process's share of
    them, for torch_sharded, after the busiest process's CPU seconds); "" for the other ops."""
    if row.get("peak_added_bytes") is None:
        return ""
    base = row.get("share_bytes") or row["model_bytes"]
    cpu = f"  cpu {row['cpu_s'] * 1e3:.0f}ms" if row.get("cpu_s") is not None else ""
    return f"{cpu}  peak {row['peak_added_bytes'] / base:.2f}x {'share' if 'share_bytes' in row else 'model'}"


def mark(noisy: bool) -> str:
    return NOISY_MARK if noisy else ""


def label(row: dict) -> tuple[str, str]:
    """(op, case) as the table names them: sizes for the samplers, stacks for the others."""
    op, size, batch, variant = row["op"], row["size"], row["batch"], row.get("variant", "")
    if op == "keras_model":
        return f"keras:{variant}", f"{batch}x{size}"
    if op in MODEL_LIBRARIES:
        return f"{op}:{variant.replace(' processes', 'proc')}", f"{row.get('work', 0) / 1e6:.1f}M"
    if variant:
        return f"{op}:{variant}", f"{batch}x{size}^2"
    if op == "orthogonal":
        return op, f"{batch}x{size}^2"
    return op, f"{size:.0e}"


def table(results: list[Result]) -> str:
    """The comparison table: one row per case, grouped by (op, size, batch, dtype). Rates are
    Mvalues/s for the samplers, GFLOP/s for orthogonal (limits: of their best time) and M parameters/s
    for the real-model ops, whose rows end with their peak memory against the model's bytes."""
    lines = [f"{'op':<30} {'size':>11} {'dtype':<8} {'library':<12} {'median':>10} {'spread':>7} "
             f"{'rate':>10} {'% limit':>8} {'% fresh':>8} {'warpinit x':>11}"]
    rows = [result.as_dict() for result in results]
    flagged = False
    for row, figure in compare(rows):
        if row["skipped"] == UNSUPPORTED:  # a peer without this op: kept in the JSON, not in the table
            continue
        op, case = label(row)
        head = f"{op:<30} {case:>11} {row['dtype']:<8} {row['library']:<12}"
        if row["skipped"]:
            lines.append(f"{head} skipped: {row['skipped']}")
            continue
        scale = 1e9 if row["op"] == "orthogonal" else 1e6
        cells = []
        for value, noisy, unit in ((figure["percent"], figure["noisy_percent"], "%"),
                                   (figure["percent_fresh"], figure["noisy_percent_fresh"], "%"),
                                   (figure["speedup"], figure["noisy_speedup"], "x")):
            text = "-" if value is None else f"{value:.1f}{unit}" if unit == "%" else f"{value:.2f}{unit}"
            cells.append(text + mark(noisy))
            flagged |= noisy
        seconds = row["best"] if is_limit(row["library"]) else row["median"]
        lines.append(f"{head} {seconds * 1e3:8.2f}ms {100 * spread_of(row):6.1f}% {_rate(row) / scale:10.1f} "
                     f"{cells[0]:>8} {cells[1]:>8} {cells[2]:>11}{memory(row)}")
    if flagged:
        lines.append(f"{NOISY_MARK}: a case spread more than {100 * NOISY_SPREAD:.0f} % (or exceeds its limit): the "
                     "machine was too busy for this ratio to mean anything; run again on a quiet machine.")
    return "\n".join(lines)


def progress_bar(number: int, total: int, case: Case, stream=sys.stderr) -> None:
    if not stream.isatty():
        return
    width = 30
    filled = width * number // total
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {number}/{total} {case.name:<60}")
    if number == total:
        stream.write("\n")
    stream.flush()
