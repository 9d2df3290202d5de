"""Keras under a distribution: build one Dense kernel split over a mesh of 8 XLA host devices,
warpinit's initializer (each device draws its own block) against Keras's own (which Keras compiles
with ``jax.jit`` and output shardings for variables this large). JAX only; its own process, because
XLA's host device count is fixed when JAX starts.

    python -m warpinit.bench.keras_layouts [--rows 4096] [--units 2048] [--repeats 5]

Prints one JSON line: {"keras": [seconds...], "warpinit": [seconds...], ...}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096, help="inputs of the Dense layer (kernel rows)")
    parser.add_argument("--units", type=int, default=2048, help="units of the Dense layer (kernel columns)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    # First in XLA_FLAGS: XLA stops reading flags at a bare token that thread-limiting recipes add.
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8 " + os.environ.get("XLA_FLAGS", "")
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import keras

    import warpinit.keras as wk

    mesh = keras.distribution.DeviceMesh((4, 2), ["data", "model"], devices=jax.devices())
    layouts = keras.distribution.LayoutMap(mesh)
    layouts[".*kernel"] = ("data", "model")
    distribution = keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="data")

    def build(module):
        layer = keras.layers.Dense(args.units, kernel_initializer=module.GlorotUniform(seed=1))
        layer.build((None, args.rows))
        layer.kernel.value.block_until_ready()
        return layer

    times = {"keras": [], "warpinit": []}
    with distribution.scope():
        for module in (keras.initializers, wk):  # warm-up: tracing, compilation
            build(module)
        for _ in range(args.repeats):
            for name, module in (("keras", keras.initializers), ("warpinit", wk)):
                gc.collect()
                start = time.perf_counter()
                layer = build(module)
                times[name].append(time.perf_counter() - start)
                assert len(layer.kernel.value.sharding.device_set) == 8
                del layer
    print(json.dumps({"rows": args.rows, "units": args.units, "devices": 8, **times}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
