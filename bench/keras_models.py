"""The real-model benchmark: keras-hub backbones built by Keras against deferred() + initialize().

Keras fixes its backend per process, so ``run(backend, model, ...)`` measures in subprocesses running
this module. Each first builds a tiny version of the model with every library it times (imports,
tracing, compilation). A library's cold build, reported apart from the median, is the first full build
of a subprocess of its own (memory fresh from the OS, no other library's allocator state). The other
builds come from one subprocess in which every library builds the full model in turn, so that the
ratios are of builds run side by side in one process and a busy spell of the machine falls on every
library alike (``--tiny``: the timed builds are of the tiny version too, a check of the plumbing).
With ``--profile`` the warpinit side also reports where its time goes: building the layers under
``deferred()``, and ``initialize``'s drawing, handing over and bookkeeping.

Two more libraries are floors, measured the same way:

* "limit", the floor of any whole-model initializer on the machine: the layers built under
  ``deferred()`` and every variable written once into a new tensor of the backend, by ``initialize``
  with its drawing replaced by a parallel constant fill (the same tensors, hand-over and bookkeeping;
  no random numbers). What it takes beyond the pure fill is the backend's: Keras's layers and the
  first touch of the model's fresh memory.
* "limit-bits", the same with every random variable drawn as uniform values from its own keys: the
  floor of any initializer whose every value comes from its own counter-based random bits (the
  counter contract), at the speed of warpinit's cheapest sampler, without the Gaussian transform.

    python -m warpinit.bench.keras_models --model llama --library all --repeats 3 --profile
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

from .cases import BITS_LIMIT, LIMIT, MODEL_LIBRARIES
from .runner import SETTLE_SECONDS

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
def _instead_of_drawing(library: str):
    """Inside: the whole-model engine writes, where it would draw a distribution's values, a constant
    (a parallel fill of the storage; ``LIMIT``) or uniform values from the same keys (``BITS_LIMIT``:
    the random bits every value of the counter contract costs, and no transform; constants stay a
    fill). Outside the CPU it draws as usual."""
    from warpinit import _distributions

    from .cases import STORAGE, _parallel_fill

    fill, draw = _parallel_fill(), _distributions.generate

    def generate(distribution, shape, dtype, keys, device, result=None):
        if result is None or device != "cpu":
            return draw(distribution, shape, dtype, keys, device, result)
        if library == BITS_LIMIT and distribution.random:
            return draw(_distributions.uniform(0.0, 1.0), shape, dtype, keys, device, result)
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
    with _instead_of_drawing(library) if library in (LIMIT, BITS_LIMIT) else contextlib.nullcontext():
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


def _time(libraries, model: str, repeats: int, profile: bool, tiny: bool = False):
    """Seconds of ``repeats`` builds of the full model per library, after a tiny warm-up build of
    each. With several libraries the builds take turns (round r starts at library r, so none always
    follows the same one), after one untimed full build that takes the process's fresh memory; the
    same spell of a noisy machine then falls on every library, and each build waits ``SETTLE_SECONDS``
    for the previous one's thread pools (torch's OpenMP, TensorFlow's, XLA's, Numba's) to stop
    spinning. Python's cyclic collector is kept out of the timed builds (as ``timeit`` does), and runs
    between them."""
    import keras

    taking_turns = len(libraries) > 1
    for library in libraries:
        _build(library, model, tiny=True)
    if taking_turns:
        _build(libraries[0], model, tiny=tiny)
    times, parts = {library: [] for library in libraries}, {} if profile else None
    for round_ in range(repeats):
        start_at = round_ % len(libraries)
        for library in libraries[start_at:] + libraries[:start_at]:
            gc.collect()
            if taking_turns:  # the last build's thread pools stop spinning before the next starts
                time.sleep(SETTLE_SECONDS)
            gc.disable()
            try:
                start = time.perf_counter()
                built = _build(library, model, tiny=tiny, profile=parts if library == "warpinit" else None)
                keras.ops.convert_to_numpy(built.variables[-1])  # the values exist
                times[library].append(time.perf_counter() - start)
            finally:
                gc.enable()
            del built
    report = dict(times)
    if profile:
        report["parts"] = parts
        report["initialize profile"] = _profile_initialize(model)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(CONFIGS), required=True)
    parser.add_argument("--library", choices=LIBRARIES + ("all",), required=True,
                        help="one library, or all of them taking turns in this process")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also report where warpinit's time goes")
    parser.add_argument("--tiny", action="store_true", help="time the tiny warm-up model (a check, not a measurement)")
    args = parser.parse_args(argv)
    import keras

    libraries = LIBRARIES if args.library == "all" else (args.library,)
    report = _time(libraries, args.model, args.repeats, args.profile and "warpinit" in libraries, args.tiny)
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
    """Every library of ``LIBRARIES`` on ``backend``: {"keras": [s...], "warpinit": [s...], ...,
    "parameters": n}, ``repeats`` builds each. The first is the library's cold build, the first full
    build of a subprocess of its own; the others come from one more subprocess in which the libraries'
    builds take turns."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")

    def subprocess_report(library: str, count: int, with_profile: bool) -> dict:
        command = [sys.executable, "-m", "warpinit.bench.keras_models", "--model", model, "--library", library,
                   "--repeats", str(count)] + (["--profile"] if with_profile else []) + (["--tiny"] if tiny else [])
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"keras_models {model} on {backend} failed: {result.stderr.strip().splitlines()[-3:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    report = {}
    for library in LIBRARIES:
        report.update(subprocess_report(library, 1, profile and repeats == 1 and library == "warpinit"))
    if repeats > 1:
        turns = subprocess_report("all", repeats - 1, profile)
        for library in LIBRARIES:
            turns[library] = report[library] + turns[library]
        report.update(turns)
    return report


def results(variant: str, repeats: int, tiny: bool = False) -> dict:
    """The rows of ``warpinit bench --ops models`` for ``variant`` ("model/backend"):
    {library: {"times": [...], "parameters": n}} (the first time: the cold build)."""
    model, backend = variant.split("/")
    report = run(backend, model, repeats, tiny=tiny)
    return {library: {"times": report[library], "parameters": report["parameters"]} for library in LIBRARIES}


if __name__ == "__main__":
    sys.exit(main())
