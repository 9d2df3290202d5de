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

from .cases import is_limit
from .runner import NOISY_MARK, NOISY_SPREAD, compare, mark, spread_of


def _label(row: dict) -> str:
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
        unit = "GFLOP/s" if op == "orthogonal" else "Mvalues/s"
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
        if op == "keras_model":
            lines += _keras_summary([r for r in rows if r["op"] == op and not r["skipped"]])
    if flagged:
        lines += ["", f"{NOISY_MARK} a case spread more than {100 * NOISY_SPREAD:.0f} % (or exceeds its limit): the ratio "
                  "does not measure the code."]
    return "\n".join(lines) + "\n"


def _keras_summary(rows: list[dict]) -> list[str]:
    """keras_model as a table of initializer x backend: Keras's median build -> warpinit's, with the
    speed-up, and below it the same for the cold build (``times[0]``: the process's first build of
    the full model, on memory fresh from the OS)."""
    cells: dict[tuple[str, str], dict[str, dict]] = {}
    for row in rows:
        initializer, backend = row["variant"].split("/")
        cells.setdefault((initializer, backend), {})[row["library"]] = row
    initializers = list(dict.fromkeys(i for i, _ in cells))
    backends = list(dict.fromkeys(b for _, b in cells))
    lines = []
    for title, pick in (("median build", lambda r: r["median"]), ("cold build (first of the process)", lambda r: r["times"][0])):
        lines += ["", f"Keras → warpinit, {title}:", "", "| initializer | " + " | ".join(backends) + " |",
                  "|---" * (len(backends) + 1) + "|"]
        for initializer in initializers:
            entries = []
            for backend in backends:
                pair = cells.get((initializer, backend), {})
                if "keras" in pair and "warpinit" in pair:
                    theirs, ours = pick(pair["keras"]), pick(pair["warpinit"])
                    entries.append(f"{_time(theirs)} → {_time(ours)}: {theirs / ours:.1f}×")
                else:
                    entries.append("")
            lines.append(f"| {initializer} | " + " | ".join(entries) + " |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpinit.bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results.json written by warpinit bench")
    args = parser.parse_args(argv)
    sys.stdout.write(markdown(json.loads(args.results.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
