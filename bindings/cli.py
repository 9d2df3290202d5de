"""The ``warpinit`` command line. ``warpinit bench`` is the main job: the side-by-side benchmark."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(float(part)) for part in text.split(",") if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be comma-separated numbers such as 1e7,1e8, got {text!r}") from None
    if not sizes or any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return sizes


def _shapes(text: str) -> tuple[tuple[int, int], ...]:
    try:
        shapes = tuple(tuple(int(x) for x in part.lower().split("x")) for part in text.split(",") if part)
    except ValueError:
        shapes = ()
    if not shapes or any(len(s) != 2 or min(s) <= 0 for s in shapes):
        raise argparse.ArgumentTypeError(f"orthogonal shapes are BATCHxN items such as 1x4096,64x1024, got {text!r}")
    return shapes


def _choices(allowed):
    def parse(text: str) -> tuple[str, ...]:
        items = tuple(part for part in text.split(",") if part)
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {text!r}")
        return items

    return parse


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part)
    except ValueError:
        counts = ()
    if not counts or min(counts) <= 0:
        raise argparse.ArgumentTypeError(f"process counts are positive integers such as 1,2,4, got {text!r}")
    return counts


def _stack(text: str) -> tuple[int, int]:
    try:
        layers, units = (int(x) for x in text.lower().split("x"))
    except ValueError:
        layers = units = 0
    if layers <= 0 or units <= 0:
        raise argparse.ArgumentTypeError(f"the stack is LAYERSxUNITS such as 16x2048, got {text!r}")
    return layers, units


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 60.0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds in [0, 60], got {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    from warpinit.bench.cases import DEFAULT_SIZES, MODELS, PROCESSES, QUICK_SIZES
    from warpinit.bench.runner import RAMP_SECONDS, SETTLE_SECONDS
    from warpinit.bench.peers import OPS, OURS, PEERS, SAMPLING

    top = argparse.ArgumentParser(prog="warpinit", description="Fast, reproducible weight initialisation.")
    commands = top.add_subparsers(dest="command", required=True)
    bench = commands.add_parser(
        "bench",
        help="time warpinit against tf.random, PyTorch, JAX and NumPy side by side",
        description="Time warpinit against its installed peers on the same sizes and threads, and print "
        "the speed-ups and the fraction of the machine's limit measured in the same run.",
    )
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    bench.add_argument("--ops", type=_choices(OPS), default=SAMPLING,
                       help=f"comma-separated ops among {','.join(OPS)} (default: {','.join(SAMPLING)})")
    bench.add_argument("--sizes", type=_sizes, default=None,
                       help=f"comma-separated element counts (default: {','.join(f'{s:.0e}' for s in DEFAULT_SIZES)})")
    bench.add_argument("--orthogonal-shapes", type=_shapes, default=None,
                       help="comma-separated BATCHxN stacks of N x N matrices for the orthogonal op "
                       "(default: 1x2048,1x4096,64x1024,1024x128)")
    bench.add_argument("--keras-backends", type=_choices(("numpy", "torch", "jax", "tensorflow")),
                       default=("numpy", "torch", "jax", "tensorflow"),
                       help="Keras backends of the keras_model op, one subprocess each (default: all four)")
    bench.add_argument("--stack", type=_stack, default=None,
                       help="LAYERSxUNITS of the model ops: keras_model's Dense stack, torch_init's Linear stack "
                       "and the UNITSxUNITS matrix of torch_init and jax_init (default: 16x2048, quick: 4x512)")
    bench.add_argument("--models", type=_choices(MODELS), default=MODELS,
                       help="models of the real-model ops: keras-hub backbones of models (llama, gemma, gpt2, bert), "
                       "transformers models of torch_models (llama, gpt2, bert); default: all")
    bench.add_argument("--processes", type=_counts, default=PROCESSES,
                       help="comma-separated process counts of torch_sharded (default: 1,2,4)")
    bench.add_argument("--dtype", choices=("float16", "bfloat16", "float32", "float64"), default="float32")
    others = tuple(p for p in PEERS if p not in OURS)
    bench.add_argument("--peers", type=_choices(others), default=others, help="comma-separated peers to compare with")
    bench.add_argument("--quick", action="store_true",
                       help=f"small sizes ({','.join(f'{s:.0e}' for s in QUICK_SIZES)}), tiny real models (a check of "
                       "the plumbing, not a measurement) and 3 repeats")
    bench.add_argument("--repeats", type=_positive, default=None, help="timed repeats per case (default: 5, quick: 3)")
    bench.add_argument("--threads", type=_positive, default=os.cpu_count(), help="threads for every library")
    bench.add_argument("--settle", type=_seconds, default=SETTLE_SECONDS,
                       help=f"pause in seconds before timing each case, then {RAMP_SECONDS} s of untimed calls "
                            f"(default: {SETTLE_SECONDS})")
    bench.add_argument("--out", type=Path, default=Path("bench-results"),
                       help="folder for results.json, results.png, table.txt and table.md (default: ./bench-results)")
    top.subcommands = {"bench": bench}
    return top


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    top = parser()
    args, unknown = top.parse_known_args(argv)
    if unknown:  # reported with the subcommand's usage, which lists its flags
        top.subcommands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "bench":
        return _bench(args, argv)
    return 2


def _bench(args, argv: list[str]) -> int:
    from warpinit.bench import peers

    peers.set_threads(args.threads)  # before any peer is imported

    from warpinit import _devices
    from warpinit.bench import cases, machine, plot, report, runner

    try:
        device = _devices.resolve("warpinit bench", args.device)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    sizes = args.sizes or (cases.QUICK_SIZES if args.quick else cases.DEFAULT_SIZES)
    repeats = args.repeats or (3 if args.quick else 5)
    libraries = peers.OURS + tuple(args.peers)
    shapes = args.orthogonal_shapes or (cases.QUICK_ORTHOGONAL_SHAPES if args.quick else cases.ORTHOGONAL_SHAPES)
    stack = args.stack or ((cases.QUICK_KERAS_LAYERS, cases.QUICK_KERAS_UNITS) if args.quick
                                 else (cases.KERAS_LAYERS, cases.KERAS_UNITS))
    case_list = cases.cases(args.ops, sizes, args.dtype, libraries, device, shapes, args.keras_backends, stack,
                            args.models, args.processes, tiny=args.quick)
    facts = machine.facts()
    header = (f"warpinit bench: {machine.describe(facts)}\n"
              f"device={device} dtype={args.dtype} threads={args.threads} repeats={repeats} date={facts['date']}")
    print(header, flush=True)
    results = runner.run(case_list, repeats, progress=runner.progress_bar, settle=args.settle)
    table = runner.table(results)
    print(table)

    args.out.mkdir(parents=True, exist_ok=True)
    rows = [result.as_dict() for result in results]
    summary = {"machine": facts, "device": device, "dtype": args.dtype, "threads": args.threads,
              "repeats": repeats, "command": ["warpinit", *argv],
              "results": rows}
    (args.out / "results.json").write_text(json.dumps(summary, indent=1))
    (args.out / "table.txt").write_text(header + "\n" + table + "\n")
    (args.out / "table.md").write_text(report.markdown(summary))
    written = ["results.json", "table.txt", "table.md"]
    if not plot.available():
        print(f"plot skipped: matplotlib is not installed ({plot.INSTALL})")
    elif any(not row["skipped"] for row in rows):
        plot.write(rows, args.out / "results.png", f"warpinit bench, {facts['date'][:10]}: {machine.describe(facts)}")
        written.append("results.png")
    print(f"written to {args.out}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
