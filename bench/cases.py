"""The benchmark cases: one list, shared by ``warpinit bench`` and the pytest-benchmark suites.

A case is (op, size, dtype, library, device, batch); ``build()`` returns the zero-argument function to
time and ``work`` what it does: values for the samplers, flops for ``orthogonal`` (``batch`` matrices
of ``size`` x ``size``, counted as (4/3) n^3 each: the accumulation of Q from n reflectors, the least
any QR-based method does). The libraries named "limit..." are the machine's own ceilings for the op,
measured in the same run and reported by their best time (``LIMIT_REPEATS`` repeats at least):

* sampling: "limit", a parallel fill of a preallocated array of the same size and dtype (the
  memory-write bandwidth every sampler pays at least), and "limit-fresh", the same fill into a
  freshly allocated array (what an allocating call pays at least: the OS's fresh pages too);
* ``orthogonal``: a square SGEMM (DGEMM for float64) of every BLAS in the process: "limit" is NumPy's,
  "limit-scipy", "limit-torch", "limit-jax" and "limit-tf" those of the installed peers (the rate at
  which the flops could run at best is the fastest of them).

warpinit itself is timed twice for the samplers: "warpinit" allocates its result, "warpinit-out" fills
a preallocated ``out=``.

The real-model ops run in subprocesses of their own (``SUBPROCESS_OPS``; the runner measures them) and
count their work in parameters, which the subprocess reports: ``models`` (keras-hub backbones, Keras's
own build against ``deferred()`` + ``initialize()``, per model and Keras backend, with the floor of any
initializer as its "limit": the same build with a constant fill for every draw), ``torch_models``
(transformers' ``from_config`` against it under ``fast_init`` and against a meta build +
``initialize``) and ``torch_sharded`` (an FSDP2-sharded Llama initialized by torch and by warpinit on
1, 2 and 4 processes). ``tiny`` builds each at the size of its warm-up model (a check of the plumbing,
not a measurement).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .peers import OPS, PEERS, SAMPLING

LIMIT = "limit"
FRESH_LIMIT = "limit-fresh"
# The real-model floor that also draws every random value's bits (uniform values, no transform).
BITS_LIMIT = "limit-bits"
# The SGEMM ceilings of orthogonal: library -> the module that must be installed (None: NumPy).
GEMM_LIMITS = {LIMIT: None, "limit-scipy": "scipy", "limit-torch": "torch", "limit-jax": "jax", "limit-tf": "tensorflow"}
# A limit is the best of at least this many repeats: the ceiling, not a typical run on a busy machine.
LIMIT_REPEATS = 15
DEFAULT_SIZES = (10**7, 10**8)
QUICK_SIZES = (10**6, 10**7)
# (batch, n) of the orthogonal cases: single large matrices and the stacks of a Dense model.
ORTHOGONAL_SHAPES = ((1, 2048), (1, 4096), (64, 1024), (1024, 128))
QUICK_ORTHOGONAL_SHAPES = ((1, 1024), (16, 512), (256, 128))
# The keras_model op: a Sequential stack of LAYERS Dense(UNITS) layers, per initializer and backend.
KERAS_LAYERS, KERAS_UNITS = 16, 2048
QUICK_KERAS_LAYERS, QUICK_KERAS_UNITS = 4, 512
KERAS_INITIALIZERS = ("orthogonal", "glorot_uniform", "truncated_normal")
# The framework-face ops: warpinit.torch against torch.nn.init, warpinit.jax against
# jax.nn.initializers, on one units x units matrix, or (torch "initialize") on a stack of Linear layers
# of the same size as the Keras op. "jit:" runs warpinit's initializer inside jax.jit (a host callback).
ADAPTER_VARIANTS = {
    "torch_init": ("trunc_normal_", "kaiming_uniform_", "orthogonal_", "initialize"),
    "jax_init": ("truncated_normal", "glorot_uniform", "orthogonal", "jit:glorot_uniform"),
}
# The real-model ops: the libraries of each (the first is the peer; the speed-ups divide by
# "warpinit") and the models or process counts they run.
MODEL_LIBRARIES = {
    "models": ("keras", "warpinit", LIMIT, BITS_LIMIT),
    "torch_models": ("transformers", "warpinit", "warpinit-meta"),
    "torch_sharded": ("torch", "warpinit"),
}
SUBPROCESS_OPS = ("keras_model",) + tuple(MODEL_LIBRARIES)
KERAS_HUB_MODELS = ("llama", "gemma", "gpt2", "bert")
TRANSFORMERS_MODELS = ("llama", "gpt2", "bert")
MODELS = tuple(dict.fromkeys(KERAS_HUB_MODELS + TRANSFORMERS_MODELS))
PROCESSES = (1, 2, 4)
GEMM_LIMIT_SIZE = 2048
# Peers that only run on a GPU: left out of CPU runs.
GPU_ONLY = ("cupy",)


@dataclass(frozen=True)
class Case:
    op: str
    size: int
    dtype: str
    library: str
    device: str = "cpu"
    batch: int = 1
    variant: str = ""  # keras_model: "initializer/backend"; models: "model/backend"; torch_init,
    # jax_init: the function; torch_models: the model; torch_sharded: "N processes"
    tiny: bool = False  # the real-model ops: build the warm-up size (see the module docstring)

    @property
    def name(self) -> str:
        if self.op in MODEL_LIBRARIES:
            return f"{self.op}-{self.variant.replace(' ', '')}-{self.library}" + ("-tiny" if self.tiny else "")
        if self.op in ("keras_model",) + tuple(ADAPTER_VARIANTS):
            return f"{self.op}-{self.batch}x{self.size}-{self.variant}-{self.library}"
        if self.op == "orthogonal":
            return f"orthogonal-{self.batch}x{self.size}^2-{self.dtype}-{self.library}-{self.device}"
        return f"{self.op}-{self.size:.0e}-{self.dtype}-{self.library}-{self.device}"

    @property
    def work(self) -> float:
        """Values produced (sampling, keras_model) or flops done (orthogonal; for its limit, the GEMM's);
        0 for the real-model ops, whose subprocesses report their parameter counts."""
        if self.op in MODEL_LIBRARIES:
            return 0.0
        if self.op in ("keras_model",) + tuple(ADAPTER_VARIANTS):
            return float(self.batch * self.size * self.size)
        if self.op != "orthogonal":
            return float(self.size)
        if is_limit(self.library):
            return 2.0 * GEMM_LIMIT_SIZE**3
        return self.batch * 4.0 / 3.0 * float(self.size) ** 3

    def build(self) -> Callable[[], object] | None:
        """The function that produces one result, or None when the library cannot do this case."""
        if is_limit(self.library):
            if self.op == "orthogonal":
                return gemm_limit(self.library, self.dtype, self.device)
            return fill_limit(int(self.work), self.dtype, self.device, fresh=self.library == FRESH_LIMIT)
        return PEERS[self.library].build(self)


def is_limit(library: str) -> bool:
    """Whether ``library`` names one of the machine's ceilings rather than a library."""
    return library == LIMIT or library.startswith(LIMIT + "-")


def _limits(op: str, device: str) -> tuple[str, ...]:
    if op == "orthogonal":
        if device == "cuda":
            return (LIMIT,)
        return tuple(name for name, module in GEMM_LIMITS.items()
                     if module is None or importlib.util.find_spec(module) is not None)
    return (LIMIT, FRESH_LIMIT) if op in SAMPLING else (LIMIT,)


def cases(ops=OPS, sizes=DEFAULT_SIZES, dtype="float32", libraries=tuple(PEERS), device="cpu",
          orthogonal_shapes=ORTHOGONAL_SHAPES, keras_backends=(), keras_stack=(KERAS_LAYERS, KERAS_UNITS),
          models=MODELS, processes=PROCESSES, tiny=False) -> list[Case]:
    """Every (op, size, library) case, with the limit cases of each (op, size) first. The keras_model
    op has two libraries, Keras's own initializers and warpinit's, per initializer and backend; the
    torch_init and jax_init ops compare warpinit's face with the framework's own, per function, on
    ``keras_stack``'s units (and its layers for a whole module). The real-model ops run each of
    ``models`` they have (``models`` on every one of ``keras_backends``), and ``torch_sharded`` each
    process count of ``processes``, with every library of ``MODEL_LIBRARIES``."""
    result = []
    for op in ops:
        if op in MODEL_LIBRARIES:
            if op == "torch_sharded":
                variants = [f"{count} processes" for count in processes]
            elif op == "models":
                variants = [f"{model}/{backend}" for model in models if model in KERAS_HUB_MODELS
                            for backend in keras_backends]
            else:
                variants = [model for model in models if model in TRANSFORMERS_MODELS]
            result.extend(Case(op, 0, "float32", library, device, 1, variant, tiny)
                          for variant in variants for library in MODEL_LIBRARIES[op])
            continue
        if op == "keras_model":
            layers, units = keras_stack
            for backend in keras_backends:
                for initializer in KERAS_INITIALIZERS:
                    result.extend(Case(op, units, dtype, library, device, layers, f"{initializer}/{backend}")
                                  for library in ("keras", "warpinit"))
            continue
        if op in ADAPTER_VARIANTS:
            layers, units = keras_stack
            framework = "torch" if op == "torch_init" else "jax"
            for variant in ADAPTER_VARIANTS[op]:
                batch = layers if variant == "initialize" else 1
                result.append(Case(op, units, dtype, LIMIT, device, batch, variant))
                result.extend(Case(op, units, dtype, library, device, batch, variant)
                              for library in ("warpinit", framework) if library in libraries)
            continue
        shapes = orthogonal_shapes if op == "orthogonal" else [(1, size) for size in sizes]
        for batch, size in shapes:
            result.extend(Case(op, size, dtype, limit, device, batch) for limit in _limits(op, device))
            result.extend(Case(op, size, dtype, library, device, batch) for library in libraries
                          if device == "cuda" or library not in GPU_ONLY)
    return result


def gemm_limit(library: str, dtype: str, device: str):
    """A square GEMM of GEMM_LIMIT_SIZE in ``dtype`` (float32 for 16-bit) by the BLAS of ``library``
    (a GEMM_LIMITS name): the flop-rate ceiling."""
    kind = np.float64 if dtype == "float64" else np.float32
    n = GEMM_LIMIT_SIZE
    if device == "cuda":
        import cupy

        a = cupy.random.standard_normal((n, n), dtype=kind)
        out = cupy.empty_like(a)

        def run():
            cupy.matmul(a, a, out=out)
            cupy.cuda.get_current_stream().synchronize()

        return run
    a = np.random.default_rng(0).standard_normal((n, n)).astype(kind)
    module = GEMM_LIMITS[library]
    if module is None:
        out = np.empty_like(a)
        return lambda: np.matmul(a, a, out=out)
    if module == "scipy":
        from scipy.linalg import blas

        gemm = blas.dgemm if kind == np.float64 else blas.sgemm
        at, out = np.asfortranarray(a), np.asfortranarray(np.empty_like(a))
        return lambda: gemm(1.0, at, at, beta=0.0, c=out, overwrite_c=True)
    if module == "torch":
        import torch

        ta = torch.from_numpy(a)
        tout = torch.empty_like(ta)
        return lambda: torch.mm(ta, ta, out=tout)
    if module == "jax":
        import jax

        if kind == np.float64 and not jax.config.jax_enable_x64:
            return None
        ja = jax.device_put(a)
        product = jax.jit(lambda x: x @ x)
        return lambda: product(ja).block_until_ready()
    import tensorflow as tf

    ta = tf.constant(a)
    return lambda: tf.linalg.matmul(ta, ta).numpy()


def fill_limit(size: int, dtype: str, device: str, fresh: bool = False):
    """A parallel fill of an array: the write-bandwidth ceiling of a sampler. ``fresh``: into an
    array allocated by each call (NumPy's allocator, as warpinit's allocating calls), else into one
    preallocated array."""
    import ml_dtypes

    kind = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if device == "cuda":
        import cupy

        preallocated = None if fresh else cupy.empty(size, dtype=kind)

        def run():
            out = cupy.empty(size, dtype=kind) if fresh else preallocated
            out.fill(1)
            cupy.cuda.get_current_stream().synchronize()
            return out

        return run
    storage = STORAGE[np.dtype(kind).itemsize]
    fill = _parallel_fill()
    one = storage(1)
    if fresh:
        return lambda: fill(np.empty(size, dtype=storage), one)
    preallocated = np.empty(size, dtype=storage)
    return lambda: fill(preallocated, one)


# The unsigned integer type a fill writes for values of each item size (the fill stores bits).
STORAGE = {2: np.uint16, 4: np.uint32, 8: np.uint64}
_FILL = None


def _parallel_fill():
    """The fill compiled as warpinit's kernels are (the CPU's widest vectors)."""
    global _FILL
    if _FILL is None:
        import numba

        from warpinit.kernels._jit import cpu_jit

        @cpu_jit(parallel=True, cache=True)
        def fill(out, value):
            for i in numba.prange(out.size):
                out[i] = value
            return out

        _FILL = fill
    return _FILL
