"""A run's results as Markdown, the form bench/RESULTS.md and the README quote.

    python -m warpinit.bench.report bench-results/results.json > table.md

One table per op: a row per (size or variant, library) with the median time (limits: their best), the
spread, the rate (Mvalues/s; GFLOP/s for orthogonal), the percentages of the limits measured in the
same run and warpinit's speed-up over the peer (``runner.compare``); a figure the spread makes
meaningless is marked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cases import BITS_LIMIT, LIMIT, MODEL_LIBRARIES, is_limit
from .runner import NOISY_MARK, NOISY_SPREAD, compare, mark, spread_of


def _label(row: dict) -> str:
    if row["op"] in MODEL_LIBRARIES:
        return f"{row['variant']} ({row.get('work', 0) / 1e6:.1f} M parameters)" + (", tiny" if row.get("tiny") else "")
    if row["op"] == "keras_model":
        return f"{row['variant']} ({row['batch']} × Dense({row['size']}))"
    if row.get("variant"):
        return f"{row['variant']} ({row['batch']} × {row['size']}²)" if row["batch"] > 1 else f"{row['variant']} ({row['size']}²)"
    if row["op"] == "orthogonal":
        return f"{row['batch']} × {row['size']}²"
    return f"{row['size']:.0e}"


def _time(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1e3:.3g} ms"


def markdown(report: dict) -> str:
    """Markdown for a results.json report: a header line naming the machine, then a table per op."""
    from .machine import describe

    rows = report["results"]
    lines = [f"{report['machine']['date'][:10]}, {describe(report['machine'])}; device {report['device']}, "
             f"{report['dtype']}, {report['threads']} threads, median of {report['repeats']} (limits: best)."]
    figures = compare(rows)
    flagged = False
    for op in dict.fromkeys(row["op"] for row in rows):
        unit = "GFLOP/s" if op == "orthogonal" else "M parameters/s" if op in MODEL_LIBRARIES else "Mvalues/s"
        scale = 1e9 if op == "orthogonal" else 1e6
        lines += ["", f"### {op}", "", f"| case | library | median | spread | {unit} | % limit | % fresh | warpinit × |",
                  "|---|---|---|---|---|---|---|---|"]
        for row, figure in figures:
            if row["op"] != op or row["skipped"]:
                continue
            rate = row.get("flops_per_second") or row.get("values_per_second")
            cells = []
            for value, noisy, form in ((figure["percent"], figure["noisy_percent"], "{:.1f} %"),
                                       (figure["percent_fresh"], figure["noisy_percent_fresh"], "{:.1f} %"),
                                       (figure["speedup"], figure["noisy_speedup"], "{:.2f}")):
                cells.append("" if value is None else form.format(value) + mark(noisy))
                flagged |= noisy
            name = f"**{row['library']}**" if row["library"] == "warpinit" else row["library"]
            seconds = row.get("best", row["median"]) if is_limit(row["library"]) else row["median"]
            lines.append(f"| {_label(row)} | {name} | {_time(seconds)} | {100 * spread_of(row):.0f} % | {rate / scale:,.1f} | "
                         + " | ".join(cells) + " |")
        measured = [r for r in rows if r["op"] == op and not r["skipped"]]
        if op in ("keras_model", "models"):
            lines += _keras_summary(measured, "initializer" if op == "keras_model" else "model")
        elif op in ("torch_models", "torch_sharded") and measured:
            lines += _models_summary(measured)
    if flagged:
        lines += ["", f"{NOISY_MARK} a case spread more than {100 * NOISY_SPREAD:.0f} % (or exceeds its limit): the ratio "
                  "does not measure the code."]
    return "\n".join(lines) + "\n"


def _keras_summary(rows: list[dict], kind: str) -> list[str]:
    """keras_model (or models) as a table of initializer (model) x backend: Keras's median build ->
    warpinit's, with the speed-up, and below it the same for the cold build (``times[0]``: the
    process's first build of the full model, on memory fresh from the OS). Where the op measured its
    floors ("limit": of any initializer; "limit-bits": of any that draws every value's random bits),
    each cell ends with their builds of the same kind (median, cold) and the speed-up over Keras that
    each leaves room for."""
    cells: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        initializer, backend = row["variant"].split("/")
        cells.setdefault((initializer, backend), {})[row["library"]] = row
    initializers = list(dict.fromkeys(i for i, _ in cells))
    backends = list(dict.fromkeys(b for _, b in cells))
    lines = []
    for title, pick in (("median build", lambda r: r["median"]), ("cold build (first of the process)", lambda r: r["times"][0])):
        lines += ["", f"Keras → warpinit, {title}:", "", f"| {kind} | " + " | ".join(backends) + " |",
                  "|---" * (len(backends) + 1) + "|"]
        for initializer in initializers:
            entries = []
            for backend in backends:
                pair = cells.get((initializer, backend), {})
                if "keras" in pair and "warpinit" in pair:
                    theirs, ours = pick(pair["keras"]), pick(pair["warpinit"])
                    text = f"{_time(theirs)} → {_time(ours)}: {theirs / ours:.1f}×"
                    floors = [f"{name} {_time(pick(pair[name]))}: {theirs / pick(pair[name]):.1f}×"
                              for name in (LIMIT, BITS_LIMIT) if name in pair]
                    if floors:
                        text += f" ({'; '.join(floors)})"
                    entries.append(text)
                else:
                    entries.append("")
            lines.append(f"| {initializer} | " + " | ".join(entries) + " |")
    return lines


def _models_summary(rows: list[dict]) -> list[str]:
    """torch_models and torch_sharded as one line per model (or process count): the peer's median,
    then each warpinit library's with its speed-up, and the peak memory each added against the model's
    bytes (torch_sharded: the CPU time of the busiest process too, and the peak against one process's
    share of the model)."""
    libraries = list(dict.fromkeys(row["library"] for row in rows))
    peer = MODEL_LIBRARIES[rows[0]["op"]][0]
    lines = ["", "Median (peak memory added / " + ("one process's share" if rows[0]["op"] == "torch_sharded" else "model bytes")
             + "):", "", "| case | " + " | ".join(libraries) + " |", "|---" * (len(libraries) + 1) + "|"]
    for variant in dict.fromkeys(row["variant"] for row in rows):
        by = {row["library"]: row for row in rows if row["variant"] == variant}
        entries = []
        for library in libraries:
            row = by.get(library)
            if row is None:
                entries.append("")
                continue
            text = _time(row["median"])
            if library != peer and peer in by:
                text += f": {by[peer]['median'] / row['median']:.1f}×"
            if row.get("cpu_s") is not None:
                text += f", CPU {_time(row['cpu_s'])}"
            base = row.get("share_bytes") or row.get("model_bytes")
            if base and row.get("peak_added_bytes") is not None:
                text += f" ({row['peak_added_bytes'] / base:.2f}×)"
            entries.append(text)
        lines.append(f"| {variant} | " + " | ".join(entries) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpinit.bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.json written by warpinit bench")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
