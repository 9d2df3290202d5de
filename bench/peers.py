"""The libraries warpinit is compared with, behind one small interface.

Each peer says whether it is installed (never an error when it is not: the runner lists it as skipped
with the pip extra that brings it) and builds, for an op, a size and a dtype, a zero-argument function
that generates one tensor and returns once the values exist (device work synchronised). Every peer
runs with the same number of threads (``set_threads``), set before its first use.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

OPS = ("truncated_normal", "normal", "uniform")


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # importable module that must be present
    install: str  # what brings it
    build: Callable[[str, int, str, str], Callable[[], object] | None]

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


def set_threads(threads: int) -> None:
    """Give every library ``threads`` threads. Call before any peer is imported."""
    value = str(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = value
    flags = os.environ.get("XLA_FLAGS", "")
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={value}").strip()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _warpinit(op: str, size: int, dtype: str, device: str):
    import warpinit as wi

    sampler = getattr(wi, op)
    if device == "cuda":
        import cupy

        out = cupy.empty(size, dtype=_numpy_dtype(dtype))

        def run():
            sampler((size,), dtype=dtype, seed=1, device="cuda", out=out)
            cupy.cuda.get_current_stream().synchronize()

        return run
    out = np.empty(size, dtype=_numpy_dtype(dtype))
    return lambda: sampler((size,), dtype=dtype, seed=1, device="cpu", out=out)


def _numpy(op: str, size: int, dtype: str, device: str):
    if device != "cpu" or dtype not in ("float32", "float64"):
        return None
    rng = np.random.default_rng(1)
    kind = np.dtype(dtype)
    out = np.empty(size, dtype=kind)

    def truncated_normal():
        # What a NumPy user writes: draw, then redraw the values outside [-2, 2] until none is left.
        rng.standard_normal(size, dtype=kind, out=out)
        bad = np.flatnonzero(np.abs(out) > 2.0)
        while bad.size:
            out[bad] = rng.standard_normal(bad.size, dtype=kind)
            bad = bad[np.abs(out[bad]) > 2.0]
        return out

    return {
        "truncated_normal": truncated_normal,
        "normal": lambda: rng.standard_normal(size, dtype=kind, out=out),
        "uniform": lambda: rng.random(size, dtype=kind, out=out),
    }[op]


def _tensorflow(op: str, size: int, dtype: str, device: str):
    import tensorflow as tf

    tf_device = "/GPU:0" if device == "cuda" else "/CPU:0"
    kind = getattr(tf, dtype)
    function = {
        "truncated_normal": lambda: tf.random.truncated_normal((size,), dtype=kind, seed=1),
        "normal": lambda: tf.random.normal((size,), dtype=kind, seed=1),
        "uniform": lambda: tf.random.uniform((size,), dtype=kind, seed=1),
    }[op]

    def run():
        with tf.device(tf_device):
            return function().numpy() if device == "cuda" else function()

    return run


def _torch(op: str, size: int, dtype: str, device: str):
    import torch

    out = torch.empty(size, dtype=getattr(torch, dtype), device=device)
    function = {
        "truncated_normal": lambda: torch.nn.init.trunc_normal_(out, a=-2.0, b=2.0),
        "normal": lambda: torch.nn.init.normal_(out),
        "uniform": lambda: torch.nn.init.uniform_(out),
    }[op]
    if device == "cuda":
        def run():
            function()
            torch.cuda.synchronize()

        return run
    return function


def _jax(op: str, size: int, dtype: str, device: str):
    import jax
    import jax.numpy as jnp

    kind = getattr(jnp, dtype)
    if dtype == "float64" and not jax.config.jax_enable_x64:
        return None
    key = jax.random.key(1)
    function = jax.jit({
        "truncated_normal": lambda k: jax.random.truncated_normal(k, -2.0, 2.0, (size,), kind),
        "normal": lambda k: jax.random.normal(k, (size,), kind),
        "uniform": lambda k: jax.random.uniform(k, (size,), kind),
    }[op])
    return lambda: function(key).block_until_ready()


def _numpy_dtype(dtype: str):
    import ml_dtypes

    return ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


PEERS = {
    "warpinit": Peer("warpinit", "warpinit", "pip install warpinit", _warpinit),
    "numpy": Peer("numpy", "numpy", "pip install numpy", _numpy),
    "tf": Peer("tf", "tensorflow", "pip install 'warpinit[bench]' (tensorflow-cpu)", _tensorflow),
    "torch": Peer("torch", "torch", "pip install torch==2.13.0 (CPU build)", _torch),
    "jax": Peer("jax", "jax", "pip install 'jax[cpu]'", _jax),
}
