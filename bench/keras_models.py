"""The real-model benchmark: keras-hub backbones built by Keras against deferred() + initialize().

Keras fixes its backend per process, so ``run(backend, model, ...)`` starts one subprocess per
library running this module, one after the other (neither inherits the other's allocator state or
thread pools). Each does a warm-up build of a tiny version of the model (imports, tracing,
compilation), then ``repeats`` builds of the full one; the first full build is the process's cold
one (memory fresh from the OS), reported apart from the median (``--tiny``: the timed builds are of
the tiny version too, a check of the plumbing). With ``--profile`` the warpinit side
also reports where its time goes: building the layers under ``deferred()``, and ``initialize``'s
drawing, handing over and bookkeeping.

The third library, "limit", is the floor of any whole-model initializer on the machine: the layers
built under ``deferred()`` and every variable written once into a new tensor of the backend, by
``initialize`` with its drawing replaced by a parallel constant fill (the same tensors, hand-over and
bookkeeping; no random numbers). What it takes beyond the pure fill is the backend's: Keras's layers
and the first touch of the model's fresh memory.

    python -m warpinit.bench.keras_models --model llama --library warpinit --repeats 3 --profile
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import time

from .cases import LIMIT, MODEL_LIBRARIES

# Configurations of about 100-200 M parameters (the published small sizes, or close to them).
CONFIGS = {
    "llama": ("LlamaBackbone", dict(vocabulary_size=32000, num_layers=12, num_query_heads=16, num_key_value_heads=8,
                                    hidden_dim=1024, intermediate_dim=2816)),
    "gemma": ("GemmaBackbone", dict(vocabulary_size=32000, num_layers=12, num_query_heads=8, num_key_value_heads=1,
                                    hidden_dim=1024, intermediate_dim=4096, head_dim=128)),
    "gpt2": ("GPT2Backbone", dict(vocabulary_size=50257, num_layers=12, num_heads=12, hidden_dim=768,
                                  intermediate_dim=3072, max_sequence_length=1024)),
    "bert": ("BertBackbone", dict(vocabulary_size=30522, num_layers=12, num_heads=12, hidden_dim=768,
                                  intermediate_dim=3072, max_sequence_length=512)),
}
TINY = dict(vocabulary_size=256, num_layers=1, hidden_dim=64, intermediate_dim=128)


def _config(model: str, tiny: bool) -> tuple[str, dict]:
    name, config = CONFIGS[model]
    if not tiny:
        return name, dict(config)
    small = {**config, **TINY}
    for key in ("num_query_heads", "num_heads"):
        if key in small:
            small[key] = 4
    if "num_key_value_heads" in small:
        small["num_key_value_heads"] = min(small["num_key_value_heads"], 2)
    if "head_dim" in small:
        small["head_dim"] = 16
    if "max_sequence_length" in small:
        small["max_sequence_length"] = 64
    return name, small


LIBRARIES = MODEL_LIBRARIES["models"]


@contextlib.contextmanager
def _fill_instead_of_drawing():
    """Inside: the whole-model engine writes a constant (a parallel fill of the storage) where it
    would draw a distribution's values."""
    from warpinit import _distributions

    from .cases import STORAGE, _parallel_fill

    fill, draw = _parallel_fill(), _distributions.generate

    def generate(distribution, shape, dtype, keys, device, result=None):
        if result is None or device != "cpu":
            return draw(distribution, shape, dtype, keys, device, result)
        storage = STORAGE[result.dtype.itemsize]
        fill(result.reshape(-1).view(storage), storage(1))
        return result

    _distributions.generate = generate
    try:
        yield
    finally:
        _distributions.generate = draw


def _build(library: str, model: str, tiny: bool = False, profile: dict | None = None):
    import keras_hub

    import warpinit.keras as wk

    name, config = _config(model, tiny)
    make = getattr(keras_hub.models, name)
    if library == "keras":
        return make(**config)
    start = time.perf_counter()
    with wk.deferred():
        built = make(**config)
    middle = time.perf_counter()
    with _fill_instead_of_drawing() if library == LIMIT else contextlib.nullcontext():
        wk.initialize(built, seed=1)
    if profile is not None:
        profile.setdefault("build under deferred()", []).append(middle - start)
        profile.setdefault("initialize", []).append(time.perf_counter() - middle)
    return built


def _profile_initialize(model: str) -> dict:
    """Where ``initialize`` spends its time on one full build: cumulative seconds of its parts."""
    import cProfile
    import pstats

    import warpinit.keras as wk

    import keras_hub

    name, config = _config(model, False)
    with wk.deferred():
        built = getattr(keras_hub.models, name)(**config)
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    wk.initialize(built, seed=1)
    profiler.disable()
    stats = pstats.Stats(profiler)
    parts = {
        "drawing (kernels)": ("_distributions.py", "generate"),
        "handing over (backend tensors, assign)": ("_keras_tensors.py", "assign"),
        "new backend tensors": ("_keras_tensors.py", "destination"),
        "finding initializers": ("_keras_model.py", "_classify"),
        "initialize, in all": ("_keras_model.py", "initialize"),
    }
    result = {}
    for label, (file, function) in parts.items():
        result[label] = sum(entry[3] for key, entry in stats.stats.items()
                            if key[0].endswith(file) and key[2] == function)
    return result


def _time(library: str, model: str, repeats: int, profile: bool, tiny: bool = False):
    """Seconds of ``repeats`` builds of the full model after a tiny warm-up build; Python's cyclic
    collector is kept out of the timed builds (as ``timeit`` does), and runs between them."""
    import keras

    _build(library, model, tiny=True)
    times, parts = [], {} if profile else None
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            built = _build(library, model, tiny=tiny, profile=parts)
            keras.ops.convert_to_numpy(built.variables[-1])  # the values exist
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
        del built
    report = {library: times}
    if profile:
        report["parts"] = parts
        report["initialize profile"] = _profile_initialize(model)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(CONFIGS), required=True)
    parser.add_argument("--library", choices=LIBRARIES, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also report where warpinit's time goes")
    parser.add_argument("--tiny", action="store_true", help="time the tiny warm-up model (a check, not a measurement)")
    args = parser.parse_args(argv)
    import keras

    report = _time(args.library, args.model, args.repeats, args.profile and args.library == "warpinit", args.tiny)
    params = _count(args.model, args.tiny)
    print(json.dumps({"backend": keras.backend.backend(), "model": args.model, "parameters": params, **report}))
    return 0


def _count(model: str, tiny: bool = False) -> int:
    import warpinit.keras as wk

    import keras_hub

    name, config = _config(model, tiny)
    with wk.deferred():
        built = getattr(keras_hub.models, name)(**config)
    return sum(_size(variable) for variable in built.weights)


def _size(variable) -> int:
    count = 1
    for dimension in variable.shape:
        count *= int(dimension)
    return count


def run(backend: str, model: str, repeats: int, profile: bool = False, timeout: float = 3600,
        tiny: bool = False) -> dict:
    """Every library of ``LIBRARIES`` on ``backend``, each from its own subprocess: {"keras": [s...],
    "warpinit": [s...], "limit": [s...], "parameters": n, ...}."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    report = {}
    for library in LIBRARIES:
        command = [sys.executable, "-m", "warpinit.bench.keras_models", "--model", model, "--library", library,
                   "--repeats", str(repeats)] + (["--profile"] if profile else []) + (["--tiny"] if tiny else [])
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"keras_models {model} on {backend} failed: {result.stderr.strip().splitlines()[-3:]}")
        report.update(json.loads(result.stdout.strip().splitlines()[-1]))
    return report


def results(variant: str, repeats: int, tiny: bool = False) -> dict:
    """The rows of ``warpinit bench --ops models`` for ``variant`` ("model/backend"):
    {library: {"times": [...], "parameters": n}} (the first time: the cold build)."""
    model, backend = variant.split("/")
    report = run(backend, model, repeats, tiny=tiny)
    return {library: {"times": report[library], "parameters": report["parameters"]} for library in LIBRARIES}


if __name__ == "__main__":
    sys.exit(main())
