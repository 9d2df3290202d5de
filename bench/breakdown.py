"""Where the CPU samplers' time goes: thread scaling, the redraw pass, fresh pages.

    python -m warpinit.bench.breakdown [--size 1e7] [--repeats 15]

Every figure is the best of ``repeats`` calls, the variants compared taking turns within one process
(a busy machine slows them alike), float32:

* thread scaling: each sampler into a preallocated ``out=`` with 1 and with 2 threads (Numba's
  ``set_num_threads``; the loops are compute-bound, so the ratio should approach 2);
* the redraw pass: ``truncated_normal`` within +-2 standard deviations against the same call with
  infinite bounds, which runs the same first pass (the normal candidates and the bounds check) and
  rejects nothing: the difference is the redraw pass's share;
* fresh pages: each sampler allocating its result against filling ``out=``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time


def _best(functions: dict, repeats: int, before=None) -> dict:
    """The best time of each function of ``functions``, calling them in turn ``repeats`` times
    (``before(name)`` first, each time)."""
    best = dict.fromkeys(functions, math.inf)
    for function in functions.values():
        function()  # compilation, first-touch of preallocated buffers
    for _ in range(repeats):
        for name, function in functions.items():
            if before:
                before(name)
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def run(size: int, repeats: int) -> list[str]:
    import numba
    import numpy as np

    import warpinit as wi

    out = np.empty(size, np.float32)
    threads = numba.get_num_threads()
    lines = [f"{size:.0e} float32 values, best of {repeats}, Mvalues/s", "",
             "| sampler | 1 thread | 2 threads | scaling | out= | allocating | allocating / out= |",
             "|---|---|---|---|---|---|---|"]
    for op in ("uniform", "normal", "truncated_normal"):
        sampler = getattr(wi, op)
        counts = {1: lambda: sampler(size, seed=1, out=out), 2: lambda: sampler(size, seed=1, out=out)}
        scaling = _best(counts, repeats, before=lambda count: numba.set_num_threads(min(count, threads)))
        numba.set_num_threads(threads)
        fresh = _best({"out": lambda: sampler(size, seed=1, out=out), "allocating": lambda: sampler(size, seed=1)},
                      repeats)
        rate = {key: size / seconds / 1e6 for key, seconds in {**scaling, **fresh}.items()}
        lines.append(f"| {op} | {rate[1]:,.0f} | {rate[2]:,.0f} | {scaling[1] / scaling[2]:.2f} | {rate['out']:,.0f} | "
                     f"{rate['allocating']:,.0f} | {fresh['out'] / fresh['allocating']:.2f} |")
    lines += ["", "| truncated normal | threads | +-2 sd | infinite bounds (no redraw) | redraw pass's share |",
              "|---|---|---|---|---|"]
    for count in sorted({1, threads}):
        numba.set_num_threads(count)
        bounds = _best({"two": lambda: wi.truncated_normal(size, seed=1, out=out),
                        "none": lambda: wi.truncated_normal(size, lower=-math.inf, upper=math.inf, seed=1, out=out)},
                       repeats)
        lines.append(f"| {size:.0e} | {count} | {size / bounds['two'] / 1e6:,.0f} | {size / bounds['none'] / 1e6:,.0f} | "
                     f"{100 * (1 - bounds['none'] / bounds['two']):.0f} % |")
    numba.set_num_threads(threads)
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m warpinit.bench.breakdown", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=float, default=1e7, help="values per call (default 1e7)")
    parser.add_argument("--repeats", type=int, default=15, help="calls per variant (default 15)")
    args = parser.parse_args(argv)
    print("\n".join(run(int(args.size), args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
