"""The libraries warpinit is compared with, behind one small interface.

Each peer says whether it is installed (never an error when it is not: the runner lists it as skipped
with the pip extra that brings it) and builds, for a benchmark case, a zero-argument function that
produces one result and returns once the values exist (device work synchronised), or None when the
library has no such operation. Every peer runs with the same number of threads (``set_threads``),
set before its first use.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

SAMPLING = ("truncated_normal", "normal", "uniform")
OPS = SAMPLING + ("orthogonal", "keras_model", "torch_init", "jax_init", "models", "torch_models", "torch_sharded")
ARRAY_OPS = SAMPLING + ("orthogonal",)
# warpinit's own rows: its allocating calls, and its samplers into a preallocated out=.
OURS = ("warpinit", "warpinit-out")


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # importable module that must be present
    install: str  # what brings it
    build: Callable[[object], Callable[[], object] | None]  # Case -> function to time, or None

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


def set_threads(threads: int) -> None:
    """Give every library ``threads`` threads. Call before any peer is imported."""
    value = str(threads)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                 "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        os.environ[name] = value
    flags = os.environ.get("XLA_FLAGS", "")
    # The usual recipe for XLA's CPU threads. Its last token is not a flag: XLA reads no flag after it,
    # so it goes after the user's own flags, and anything appended later must be put first instead.
    if "intra_op_parallelism_threads" not in flags:
        os.environ["XLA_FLAGS"] = (flags + f" --xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={value}").strip()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def _numpy_dtype(dtype: str):
    import ml_dtypes

    return ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


def _empty(shape, dtype, device):
    if device == "cuda":
        import cupy

        return cupy.empty(shape, dtype=_numpy_dtype(dtype))
    return np.empty(shape, dtype=_numpy_dtype(dtype))


def _synchronised(function, device):
    """``function`` itself on the CPU; on CUDA, followed by a synchronisation of CuPy's stream."""
    if device != "cuda":
        return function
    import cupy

    def run():
        function()
        cupy.cuda.get_current_stream().synchronize()

    return run


def _warpinit(case):
    """What a user calls: the result is allocated by the call."""
    if case.op == "torch_init":
        return _torch_init(case, warpinit=True)
    if case.op == "jax_init":
        return _jax_init(case, warpinit=True)
    import warpinit as wi

    size, dtype, device = case.size, case.dtype, case.device
    if case.op == "orthogonal":
        batch = case.batch if case.batch > 1 else None
        return _synchronised(lambda: wi.orthogonal((size, size), batch=batch, dtype=dtype, seed=1, device=device),
                             device)
    sampler = getattr(wi, case.op)
    return _synchronised(lambda: sampler((size,), dtype=dtype, seed=1, device=device), device)


def _warpinit_out(case):
    """The samplers filling a preallocated ``out=``: the same work without the fresh pages."""
    if case.op not in SAMPLING:
        return None
    import warpinit as wi

    sampler = getattr(wi, case.op)
    out = _empty((case.size,), case.dtype, case.device)
    return _synchronised(lambda: sampler((case.size,), dtype=case.dtype, seed=1, device=case.device, out=out),
                         case.device)


def _numpy(case):
    if case.op not in ARRAY_OPS or case.device != "cpu" or case.dtype not in ("float32", "float64"):
        return None
    return _array_module(np, np.random.default_rng(1), case)


def _cupy(case):
    """CuPy's own generator on the GPU (the same redraw loop and QR as the NumPy peer)."""
    if case.op not in ARRAY_OPS or case.device != "cuda" or case.dtype not in ("float32", "float64"):
        return None
    import cupy

    return _synchronised(_array_module(cupy, cupy.random.default_rng(1), case), case.device)


def _array_module(xp, rng, case):
    """What a NumPy (or CuPy) user writes, with the array module ``xp`` and its Generator ``rng``."""
    kind = xp.dtype(case.dtype)
    if case.op == "orthogonal":
        shape = (case.batch, case.size, case.size)

        def orthogonal():
            # What Keras's numpy backend does: QR of a Gaussian, Q times the signs of R's diagonal.
            q, r = xp.linalg.qr(rng.standard_normal(shape, dtype=kind))
            return q * xp.sign(xp.diagonal(r, axis1=1, axis2=2))[:, None, :]

        return orthogonal
    size = case.size
    out = xp.empty(size, dtype=kind)

    def truncated_normal():
        # Draw, then redraw the values outside [-2, 2] until none is left.
        rng.standard_normal(size, dtype=kind, out=out)
        bad = xp.flatnonzero(xp.abs(out) > 2.0)
        while bad.size:
            out[bad] = rng.standard_normal(int(bad.size), dtype=kind)
            bad = bad[xp.abs(out[bad]) > 2.0]
        return out

    return {
        "truncated_normal": truncated_normal,
        "normal": lambda: rng.standard_normal(size, dtype=kind, out=out),
        "uniform": lambda: rng.random(size, dtype=kind, out=out),
    }[case.op]


def _tensorflow(case):
    if case.op not in SAMPLING:
        return None
    import tensorflow as tf

    tf_device = "/GPU:0" if case.device == "cuda" else "/CPU:0"
    kind = getattr(tf, case.dtype)
    shape = (case.size,)
    function = {
        "truncated_normal": lambda: tf.random.truncated_normal(shape, dtype=kind, seed=1),
        "normal": lambda: tf.random.normal(shape, dtype=kind, seed=1),
        "uniform": lambda: tf.random.uniform(shape, dtype=kind, seed=1),
    }[case.op]

    def run():
        with tf.device(tf_device):
            result = function()
        if case.device == "cuda":  # wait for the device as the other peers do, without copying back
            tf.test.experimental.sync_devices()
        return result

    return run


def _keras(case):
    """Keras 3 initializers on the TensorFlow backend (the default; one backend per process)."""
    if case.op != "orthogonal":
        return None
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    initializer = keras.initializers.Orthogonal(seed=1)
    shape = (case.size, case.size)

    def run():
        for _ in range(case.batch):
            initializer(shape, dtype=case.dtype)

    return run


def _torch(case):
    if case.op == "torch_init":
        return _torch_init(case, warpinit=False)
    if case.op not in ARRAY_OPS:
        return None
    import torch

    dtype = getattr(torch, case.dtype)
    if case.op == "orthogonal":
        out = torch.empty(case.batch, case.size, case.size, dtype=dtype, device=case.device)

        def orthogonal():
            for member in out:  # what torch.nn.init offers: one matrix at a time
                torch.nn.init.orthogonal_(member)

        return _torch_synchronised(orthogonal, case.device)
    out = torch.empty(case.size, dtype=dtype, device=case.device)
    function = {
        "truncated_normal": lambda: torch.nn.init.trunc_normal_(out, a=-2.0, b=2.0),
        "normal": lambda: torch.nn.init.normal_(out),
        "uniform": lambda: torch.nn.init.uniform_(out),
    }[case.op]
    return _torch_synchronised(function, case.device)


def _torch_qr(case):
    """torch.linalg.qr on the whole stack at once, with the sign fix: PyTorch's batched route."""
    if case.op != "orthogonal":
        return None
    import torch

    shape = (case.batch, case.size, case.size)
    dtype = getattr(torch, case.dtype)

    def orthogonal():
        q, r = torch.linalg.qr(torch.randn(shape, dtype=dtype, device=case.device))
        return q * torch.sign(torch.diagonal(r, dim1=1, dim2=2)).unsqueeze(1)

    return _torch_synchronised(orthogonal, case.device)


def _torch_synchronised(function, device):
    if device != "cuda":
        return function
    import torch

    def run():
        function()
        torch.cuda.synchronize()

    return run


def _jax(case):
    if case.op == "jax_init":
        return _jax_init(case, warpinit=False)
    if case.op not in ARRAY_OPS:
        return None
    import jax
    import jax.numpy as jnp

    kind = getattr(jnp, case.dtype)
    if case.dtype == "float64" and not jax.config.jax_enable_x64:
        return None
    key = jax.random.key(1)
    if case.op == "orthogonal":
        init = jax.nn.initializers.orthogonal()
        shape = (case.size, case.size)
        if case.batch == 1:
            function = jax.jit(lambda k: init(k, shape, kind))
            return lambda: function(key).block_until_ready()
        stack = jax.jit(jax.vmap(lambda k: init(k, shape, kind)))
        keys = jax.random.split(key, case.batch)
        return lambda: stack(keys).block_until_ready()
    shape = (case.size,)
    function = jax.jit({
        "truncated_normal": lambda k: jax.random.truncated_normal(k, -2.0, 2.0, shape, kind),
        "normal": lambda k: jax.random.normal(k, shape, kind),
        "uniform": lambda k: jax.random.uniform(k, shape, kind),
    }[case.op])
    return lambda: function(key).block_until_ready()


def _torch_init(case, warpinit: bool):
    """warpinit.torch or torch.nn.init filling one units x units weight in place, or (variant
    "initialize") re-initializing a Sequential of ``batch`` Linear(units, units) layers: warpinit's
    batched initialize() against each layer's reset_parameters()."""
    import torch

    dtype = getattr(torch, case.dtype)
    n = case.size
    if case.variant == "initialize":
        model = torch.nn.Sequential(*[torch.nn.Linear(n, n, dtype=dtype, device=case.device) for _ in range(case.batch)])
        if warpinit:
            import warpinit.torch as wt

            return _torch_synchronised(lambda: wt.initialize(model, seed=1), case.device)
        return _torch_synchronised(lambda: [layer.reset_parameters() for layer in model], case.device)
    if warpinit:
        import warpinit.torch as module

        arguments = {"seed": 1}
    else:
        module, arguments = torch.nn.init, {}
    if case.variant == "trunc_normal_":
        arguments.update(std=0.02, a=-0.04, b=0.04)
    function = getattr(module, case.variant)
    weight = torch.empty(n, n, dtype=dtype, device=case.device)
    return _torch_synchronised(lambda: function(weight, **arguments), case.device)


def _jax_init(case, warpinit: bool):
    """An initializer of warpinit.jax or jax.nn.initializers on a units x units matrix. JAX's run
    inside jax.jit, as Flax runs them; warpinit's eagerly, or inside jax.jit for "jit:" variants."""
    import jax
    import jax.numpy as jnp

    if case.dtype == "float64" and not jax.config.jax_enable_x64:
        return None
    if warpinit:
        import warpinit.jax as module
    else:
        module = jax.nn.initializers
    jitted = case.variant.startswith("jit:") or not warpinit
    init = getattr(module, case.variant.removeprefix("jit:"))()
    shape, dtype, key = (case.size, case.size), getattr(jnp, case.dtype), jax.random.key(1)
    function = jax.jit(lambda k: init(k, shape, dtype)) if jitted else (lambda k: init(k, shape, dtype))
    return lambda: function(key).block_until_ready()


PEERS = {
    "warpinit": Peer("warpinit", "warpinit", "pip install warpinit", _warpinit),
    "warpinit-out": Peer("warpinit-out", "warpinit", "pip install warpinit", _warpinit_out),
    "numpy": Peer("numpy", "numpy", "pip install numpy", _numpy),
    "tf": Peer("tf", "tensorflow", "pip install 'warpinit[bench]' (tensorflow-cpu)", _tensorflow),
    "keras": Peer("keras", "keras", "pip install 'warpinit[bench]' (keras, tensorflow-cpu)", _keras),
    "torch": Peer("torch", "torch", "pip install torch==2.13.0 (CPU build)", _torch),
    "torch-qr": Peer("torch-qr", "torch", "pip install torch==2.13.0 (CPU build)", _torch_qr),
    "jax": Peer("jax", "jax", "pip install 'jax[cpu]'", _jax),
    "cupy": Peer("cupy", "cupy", "pip install 'warpinit[cuda13]' (a CUDA GPU)", _cupy),
}
