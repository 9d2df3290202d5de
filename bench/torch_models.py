"""The PyTorch real-model benchmark: transformers models built by ``from_config`` against warpinit.

Three routes per model, each in its own subprocess (fresh allocator, its own peak memory):
``from_config`` (transformers' own initialization, torch's generator), ``fast_init`` around the same
``from_config``, and a meta-device build + ``initialize(model, seed, device="cpu")``. Each subprocess
does a warm-up build of a tiny version (imports, compilation), then ``repeats`` full builds, and reports
the times, the model's bytes and the peak resident memory the first full build added above what the
process held before it (Linux's high-water mark, reset before the build; later builds reuse the memory
the previous model freed). With ``--profile`` the warpinit routes also say where the time goes
(construction, drawing, the rest); with ``--tiny`` the timed builds are of the tiny version too (a
check of the plumbing, not a measurement).

    python -m warpinit.bench.torch_models --model llama --route fast_init --repeats 3 --profile
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

from . import memory

# About 1.1 B (Llama, TinyLlama's shape), 124 M (GPT-2) and 110 M (BERT) parameters.
CONFIGS = {
    "llama": ("LlamaConfig", "AutoModelForCausalLM",
              dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                   num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)),
    "gpt2": ("GPT2Config", "AutoModelForCausalLM", dict(vocab_size=50257, n_embd=768, n_layer=12, n_head=12)),
    "bert": ("BertConfig", "AutoModelForMaskedLM", dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                                                        num_attention_heads=12, intermediate_size=3072)),
}
TINY = {"llama": dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=2),
        "gpt2": dict(vocab_size=256, n_embd=64, n_layer=1, n_head=4),
        "bert": dict(vocab_size=256, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=128)}
ROUTES = ("from_config", "fast_init", "meta_initialize")


def _model(name: str, tiny: bool):
    import transformers

    config_class, model_class, config = CONFIGS[name]
    config = {**config, **(TINY[name] if tiny else {})}
    transformers.logging.set_verbosity_error()
    return getattr(transformers, model_class).from_config(getattr(transformers, config_class)(**config))


def _build(name: str, route: str, tiny: bool = False):
    import torch

    import warpinit.torch as wt

    if route == "from_config":
        return _model(name, tiny)
    if route == "fast_init":
        with wt.fast_init(seed=1):
            return _model(name, tiny)
    with torch.device("meta"):
        model = _model(name, tiny)
    wt.initialize(model, seed=1, device="cpu")
    return model


def _profile(name: str, route: str) -> dict:
    """Cumulative seconds of one full build's parts: drawing (the whole-model engine and single
    fills) and everything else (module construction, transformers' bookkeeping)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    gc.collect()
    start = time.perf_counter()
    profiler.enable()
    model = _build(name, route)
    profiler.disable()
    total = time.perf_counter() - start
    del model
    stats = pstats.Stats(profiler)
    drawing = sum(entry[3] for key, entry in stats.stats.items()
                  if key[0].endswith("_whole_model.py") and key[2] == "run")
    construction = sum(entry[3] for key, entry in stats.stats.items()
                       if key[0].endswith("modeling_utils.py") and key[2] in ("from_config", "_from_config"))
    return {"build": total, "drawing": drawing, "model code (from_config, profiled)": construction}


def measure(name: str, route: str, repeats: int, profile: bool, tiny: bool = False) -> dict:
    import torch

    torch.manual_seed(0)
    _build(name, route, tiny=True)  # warm-up: imports, kernel compilation
    times, peak, nbytes, parameters = [], None, 0, 0
    for repeat in range(repeats):
        gc.collect()
        gc.disable()
        try:
            # The first full build's peak: it starts from the warm-up's footprint, with no freed model
            # to reuse.
            resettable = repeat == 0 and memory.reset_peak()
            before = memory.status("VmRSS")
            start = time.perf_counter()
            model = _build(name, route, tiny)
            times.append(time.perf_counter() - start)
            if resettable:
                peak = memory.status("VmHWM") - before
        finally:
            gc.enable()
        nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
        parameters = sum(p.numel() for p in model.parameters())
        del model
    report = {"model": name, "route": route, "times": times, "model_bytes": nbytes, "parameters": parameters,
              "peak_added_bytes": peak, "threads": torch.get_num_threads()}
    if profile and route != "from_config":
        report["profile"] = _profile(name, route)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(CONFIGS), required=True)
    parser.add_argument("--route", choices=ROUTES, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="time the tiny warm-up model (a check, not a measurement)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.route, args.repeats, args.profile, args.tiny)))
    return 0


def run(name: str, repeats: int, profile: bool = False, timeout: float = 3600, tiny: bool = False) -> dict:
    """Every route of ``name``, each from its own subprocess: {route: report}."""
    reports = {}
    for route in ROUTES:
        command = [sys.executable, "-m", "warpinit.bench.torch_models", "--model", name, "--route", route,
                   "--repeats", str(repeats)] + (["--profile"] if profile else []) + (["--tiny"] if tiny else [])
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"torch_models {name} {route} failed: {result.stderr.strip().splitlines()[-3:]}")
        reports[route] = json.loads(result.stdout.strip().splitlines()[-1])
    return reports


# The libraries of ``warpinit bench --ops torch_models``: the route each times.
LIBRARIES = {"transformers": "from_config", "warpinit": "fast_init", "warpinit-meta": "meta_initialize"}


def results(name: str, repeats: int, tiny: bool = False) -> dict:
    """The rows of ``warpinit bench --ops torch_models`` for model ``name``: {library: {"times": [...],
    "parameters": n, "model_bytes": b, "peak_added_bytes": p}}."""
    reports = run(name, repeats, tiny=tiny)
    return {library: {key: reports[route][key] for key in ("times", "parameters", "model_bytes", "peak_added_bytes")}
            for library, route in LIBRARIES.items()}


if __name__ == "__main__":
    sys.exit(main())
