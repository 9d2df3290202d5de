"""The PNG ``warpinit bench`` writes next to its JSON: throughput against size, per library.

One panel per op: for the samplers, values/s against the number of values (log-log), one line per
library and the memory-write limits measured in the same run (into preallocated and into fresh
memory) as black lines; for orthogonal, GFLOP/s per stack shape with the SGEMM limit of each BLAS;
for keras_model, the time to build and initialize the model per initializer and backend, Keras's own
against warpinit's; for torch_init and jax_init, the time of each function, the framework's own
against warpinit's face; for the real-model ops, the time of each model (or process count) per
library. Needs matplotlib (the bench extra); it is imported only here, with the non-interactive Agg
backend.
"""

from __future__ import annotations

from pathlib import Path

from .cases import FRESH_LIMIT, is_limit

INSTALL = "pip install 'warpinit[bench]' (matplotlib)"
# One colour per library in every panel.
_COLOURS = {"warpinit": "C0", "numpy": "C1", "tf": "C2", "torch": "C3", "jax": "C4", "keras": "C5",
            "torch-qr": "C6", "cupy": "C7", "transformers": "C8", "warpinit-meta": "C9"}


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _measured(rows: list[dict]) -> list[dict]:
    return [row for row in rows if not row.get("skipped") and row.get("median")]


def _rate(row: dict) -> float:
    return row.get("flops_per_second") or row.get("values_per_second")


def write(rows: list[dict], path: Path, title: str) -> Path:
    """Draw the measured rows of a run (``Result.as_dict()`` items) into the PNG ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = _measured(rows)
    ops = list(dict.fromkeys(row["op"] for row in rows))
    if not ops:
        raise ValueError("plot: no measured case to draw")
    columns = min(len(ops), 3)
    rows_of_panels = -(-len(ops) // columns)
    figure, axes = pyplot.subplots(rows_of_panels, columns, figsize=(5.4 * columns, 4.4 * rows_of_panels),
                                   squeeze=False)
    for axis in axes.flat[len(ops):]:
        axis.set_visible(False)
    for axis, op in zip(axes.flat, ops):
        selected = [row for row in rows if row["op"] == op]
        if op in _VARIANT_TITLES:
            _variants_panel(axis, [row for row in selected if not is_limit(row["library"])], _VARIANT_TITLES[op])
        elif op == "orthogonal":
            _orthogonal_panel(axis, selected)
        else:
            _sampling_panel(axis, selected, op)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def _libraries(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(row["library"] for row in rows))


def _sampling_panel(axis, rows: list[dict], op: str) -> None:
    for library in _libraries(rows):
        points = sorted((row["size"], _rate(row) / 1e6) for row in rows if row["library"] == library)
        sizes, rates = zip(*points)
        if is_limit(library):
            fresh = library == FRESH_LIMIT
            axis.plot(sizes, rates, "k+:" if fresh else "kx--", label="limit (fresh memory)" if fresh else "limit (memory write)")
        else:
            axis.plot(sizes, rates, "o-", label=library, color=_COLOURS.get(library),
                      linewidth=2.5 if library == "warpinit" else 1.2)
    axis.set(xscale="log", yscale="log", xlabel="values", ylabel="M values / s", title=f"{op} ({rows[0]['dtype']})")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7, framealpha=0.7)


def _orthogonal_panel(axis, rows: list[dict]) -> None:
    shapes = list(dict.fromkeys((row["batch"], row["size"]) for row in rows))
    positions = range(len(shapes))
    for library in _libraries(rows):
        rates = {(row["batch"], row["size"]): _rate(row) / 1e9 for row in rows if row["library"] == library}
        values = [rates.get(shape, float("nan")) for shape in shapes]
        if is_limit(library):
            axis.plot(positions, values, "x--", color="0.3", label=f"{library} (GEMM)", linewidth=0.8)
        else:
            axis.plot(positions, values, "o-", label=library, color=_COLOURS.get(library),
                      linewidth=2.5 if library == "warpinit" else 1.2)
    axis.set_xticks(list(positions), [f"{batch}x{n}²" for batch, n in shapes], fontsize=7)
    axis.set(yscale="log", xlabel="stack of matrices", ylabel="GFLOP/s ((4/3) n³ per matrix)",
             title=f"orthogonal ({rows[0]['dtype']})")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend(fontsize=7)


_VARIANT_TITLES = {
    "keras_model": "Keras: {batch} x Dense({units}), build + initialize",
    "torch_init": "torch.nn.init vs warpinit.torch, {units}² ({batch} Linear for initialize)",
    "jax_init": "jax.nn.initializers vs warpinit.jax, {units}²",
    "models": "keras-hub backbones: Keras's build vs deferred() + initialize()",
    "torch_models": "transformers: from_config vs fast_init and meta + initialize",
    "torch_sharded": "FSDP2-sharded Llama: torch's init vs warpinit (slowest process)",
}


def _variants_panel(axis, rows: list[dict], title: str) -> None:
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    libraries = sorted(_libraries(rows), key=lambda library: library != "warpinit")  # warpinit first
    width = 0.8 / max(len(libraries), 1)
    for number, library in enumerate(libraries):
        medians = {row["variant"]: row["median"] for row in rows if row["library"] == library}
        axis.bar([i + number * width for i in range(len(variants))],
                 [medians.get(variant, float("nan")) for variant in variants], width, label=library,
                 color=_COLOURS.get(library))
    axis.set_xticks([i + width * (len(libraries) - 1) / 2 for i in range(len(variants))], variants,
                    rotation=45, ha="right", fontsize=7)
    batch = max(row["batch"] for row in rows)
    axis.set(yscale="log", ylabel="seconds", title=title.format(batch=batch, units=rows[0]["size"]))
    axis.grid(True, axis="y", which="both", alpha=0.3)
    axis.legend(fontsize=7)
