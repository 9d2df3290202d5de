"""The Keras model benchmark: build and initialize a stack of Dense layers, Keras's initializers
against warpinit's (``deferred()`` + ``initialize()``), in the same process and backend.

Keras fixes its backend per process, so ``run(backend, ...)`` starts subprocesses that run this
module: one per library, one after the other, so that neither inherits the other's allocator state or
spinning thread pools; each does one warm-up build of a tiny model (imports, tracing, compilation),
then ``repeats`` builds of the full stack.

    python -m warpinit.bench.keras_model --backend torch --initializer orthogonal --layers 16 --units 2048
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

INITIALIZERS = {"orthogonal": "Orthogonal", "glorot_uniform": "GlorotUniform", "truncated_normal": "TruncatedNormal"}
BACKENDS = {"numpy": "numpy", "torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}


def _build(keras, library: str, initializer: str, layers: int, units: int):
    import warpinit.keras as wk

    module = keras.initializers if library == "keras" else wk
    make = getattr(module, INITIALIZERS[initializer])

    def model():
        stack = [keras.Input((units,))]
        stack += [keras.layers.Dense(units, kernel_initializer=make(seed=k)) for k in range(layers)]
        return keras.Sequential(stack)

    if library == "keras":
        return model()
    with wk.deferred():
        built = model()
    wk.initialize(built, seed=1)
    return built


def _time(keras, library, initializer, layers, units, repeats):
    """Seconds of ``repeats`` builds of the full model, after a warm-up build of a tiny one.

    As ``timeit`` does, Python's cyclic garbage collector is kept out of the timed builds: Keras models
    hold reference cycles, so without a collection between builds the previous model's memory came
    back at whatever moment a collection happened to run - inside a later build (a 200 ms pause), or
    not before it (every page of the next model fresh from the OS) - and single builds of the same
    model varied threefold. The first timed build is the process's first of the full size: its
    memory is fresh from the OS for both libraries (``times[0]``, reported as the cold build)."""
    _build(keras, library, initializer, 1, 64)  # warm-up: imports, tracing, compilation
    times = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            model = _build(keras, library, initializer, layers, units)
            keras.ops.convert_to_numpy(model.layers[-1].kernel[:1, :1])  # values exist
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
        del model
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initializer", choices=tuple(INITIALIZERS), required=True)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--units", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--library", choices=("keras", "warpinit"), required=True)
    args = parser.parse_args(argv)
    import keras

    times = _time(keras, args.library, args.initializer, args.layers, args.units, args.repeats)
    print(json.dumps({"backend": keras.backend.backend(), args.library: times}))
    return 0


def run(backend: str, initializer: str, layers: int, units: int, repeats: int, timeout: float = 1800) -> dict:
    """Times of both libraries on ``backend``, from a subprocess: {"keras": [...], "warpinit": [...]}."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    times = {}
    for library in ("keras", "warpinit"):
        command = [sys.executable, "-m", "warpinit.bench.keras_model", "--initializer", initializer,
                   "--layers", str(layers), "--units", str(units), "--repeats", str(repeats), "--library", library]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"keras_model on {backend} failed: {result.stderr.strip().splitlines()[-1:]}")
        times.update(json.loads(result.stdout.strip().splitlines()[-1]))
    return times


if __name__ == "__main__":
    sys.exit(main())
