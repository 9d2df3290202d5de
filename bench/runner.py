"""``warpinit bench``: time warpinit and its peers side by side and print the comparison.

Every case runs once to warm up (compilation, allocation, autotuning), pauses, then runs ``repeats``
times; the median is reported with the spread (min-max) in percent. Speed-ups are warpinit's median
against each peer's, for the same op, size and dtype in the same run; "% limit" is a case's rate as a
fraction of the limit case measured in that run (memory-write bandwidth for sampling, GEMM flop rate
for orthogonal).
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import asdict, dataclass

from .cases import LIMIT, Case


@dataclass
class Result:
    case: Case
    times: list[float]
    skipped: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def rate(self) -> float:
        """Work per second: values for the samplers, flops for orthogonal."""
        return self.case.work / self.median

    @property
    def spread(self) -> float:
        return (max(self.times) - min(self.times)) / self.median

    def as_dict(self) -> dict:
        row = asdict(self.case)
        row.update(times=self.times, skipped=self.skipped)
        if not self.skipped:
            unit = "flops_per_second" if self.case.op == "orthogonal" else "values_per_second"
            row.update(median=self.median, **{unit: self.rate})
        return row


SETTLE_SECONDS = 0.5
UNSUPPORTED = "not supported by this library"


_KERAS_RUNS: dict = {}


def _measure_keras_model(case: Case, repeats: int) -> Result:
    """Both libraries of a keras_model case run in one subprocess of the case's backend."""
    from . import keras_model

    initializer, backend = case.variant.split("/")
    key = (case.variant, case.batch, case.size, repeats)
    if key not in _KERAS_RUNS:
        try:
            _KERAS_RUNS[key] = keras_model.run(backend, initializer, case.batch, case.size, repeats)
        except Exception as error:  # a backend that is not installed, or fails, is reported
            _KERAS_RUNS[key] = {"error": f"{type(error).__name__}: {error}"}
    run = _KERAS_RUNS[key]
    if "error" in run:
        return Result(case, [], skipped=run["error"])
    return Result(case, run[case.library])


def measure(case: Case, repeats: int, settle: float = SETTLE_SECONDS) -> Result:
    """Warm up once, let the machine settle, then time ``repeats`` calls.

    The pause matters on a small machine: TensorFlow's and XLA's thread pools spin for a while after
    their work ends, and would slow whatever case runs next."""
    from .peers import PEERS

    if case.op == "keras_model":
        return _measure_keras_model(case, repeats)
    if case.library != LIMIT and not PEERS[case.library].available():
        return Result(case, [], skipped=f"not installed ({PEERS[case.library].install})")
    try:
        function = case.build()
    except Exception as error:  # a peer that fails to set up is reported, not fatal
        return Result(case, [], skipped=f"{type(error).__name__}: {error}")
    if function is None:
        return Result(case, [], skipped=UNSUPPORTED)
    function()
    time.sleep(settle)
    times = []
    for _ in range(repeats):
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


def table(results: list[Result]) -> str:
    """The comparison table: one row per case, grouped by (op, size, batch, dtype). Rates are
    Mvalues/s for the samplers and GFLOP/s for orthogonal."""
    lines = [f"{'op':<30} {'size':>11} {'dtype':<8} {'library':<9} {'median':>10} {'spread':>7} "
             f"{'rate':>10} {'% limit':>8} {'warpinit x':>11}"]
    groups: dict[tuple, list[Result]] = {}
    for result in results:
        case = result.case
        groups.setdefault((case.op, case.size, case.batch, case.dtype, case.variant), []).append(result)
    for (op, size, batch, dtype, variant), group in groups.items():
        limit = next((r for r in group if r.case.library == LIMIT and not r.skipped), None)
        ours = next((r for r in group if r.case.library == "warpinit" and not r.skipped), None)
        scale, label = (1e9, f"{batch}x{size}^2") if op == "orthogonal" else (1e6, f"{size:.0e}")
        if op == "keras_model":
            op, label = f"keras:{variant}", f"{batch}x{size}"
        elif variant:
            op, label = f"{op}:{variant}", f"{batch}x{size}^2"
        for r in group:
            if r.skipped == UNSUPPORTED:  # a peer without this op: kept in the JSON, not in the table
                continue
            head = f"{op:<30} {label:>11} {dtype:<8} {r.case.library:<9}"
            if r.skipped:
                lines.append(f"{head} skipped: {r.skipped}")
                continue
            percent = f"{100 * r.rate / limit.rate:7.1f}%" if limit else "       -"
            if ours and r.case.library not in ("warpinit", LIMIT):
                speedup = f"{r.median / ours.median:10.2f}x"
            else:
                speedup = "          -"
            lines.append(f"{head} {r.median * 1e3:8.2f}ms {100 * r.spread:6.1f}% {r.rate / scale:10.1f} {percent} {speedup}")
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
