"""The benchmark cases: one list, shared by ``warpinit bench`` and the pytest-benchmark suites.

A case is (op, size, dtype, library, device, batch); ``build()`` returns the zero-argument function to
time and ``work`` what it does: values for the samplers, flops for ``orthogonal`` (``batch`` matrices
of ``size`` x ``size``, counted as (4/3) n^3 each: the accumulation of Q from n reflectors, the least
any QR-based method does). The library "limit" is the machine's own ceiling for the op, measured in
the same run: for sampling, a parallel fill of a preallocated array of the same size and dtype (the
memory-write bandwidth every sampler pays at least); for ``orthogonal``, a GEMM (the rate at which
those flops could run at best).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .peers import OPS, PEERS

LIMIT = "limit"
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
    variant: str = ""  # keras_model: "initializer/backend"; torch_init, jax_init: the function

    @property
    def name(self) -> str:
        if self.op in ("keras_model",) + tuple(ADAPTER_VARIANTS):
            return f"{self.op}-{self.batch}x{self.size}-{self.variant}-{self.library}"
        if self.op == "orthogonal":
            return f"orthogonal-{self.batch}x{self.size}^2-{self.dtype}-{self.library}-{self.device}"
        return f"{self.op}-{self.size:.0e}-{self.dtype}-{self.library}-{self.device}"

    @property
    def work(self) -> float:
        """Values produced (sampling, keras_model) or flops done (orthogonal; for its limit, the GEMM's)."""
        if self.op in ("keras_model",) + tuple(ADAPTER_VARIANTS):
            return float(self.batch * self.size * self.size)
        if self.op != "orthogonal":
            return float(self.size)
        if self.library == LIMIT:
            return 2.0 * GEMM_LIMIT_SIZE**3
        return self.batch * 4.0 / 3.0 * float(self.size) ** 3

    def build(self) -> Callable[[], object] | None:
        """The function that produces one result, or None when the library cannot do this case."""
        if self.library == LIMIT:
            if self.op == "orthogonal":
                return gemm_limit(self.dtype, self.device)
            return fill_limit(int(self.work), self.dtype, self.device)
        return PEERS[self.library].build(self)


def cases(ops=OPS, sizes=DEFAULT_SIZES, dtype="float32", libraries=tuple(PEERS), device="cpu",
          orthogonal_shapes=ORTHOGONAL_SHAPES, keras_backends=(), keras_stack=(KERAS_LAYERS, KERAS_UNITS)) -> list[Case]:
    """Every (op, size, library) case, with the limit case of each (op, size) first. The keras_model
    op has two libraries, Keras's own initializers and warpinit's, per initializer and backend; the
    torch_init and jax_init ops compare warpinit's face with the framework's own, per function, on
    ``keras_stack``'s units (and its layers for a whole module)."""
    result = []
    for op in ops:
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
            result.append(Case(op, size, dtype, LIMIT, device, batch))
            result.extend(Case(op, size, dtype, library, device, batch) for library in libraries
                          if device == "cuda" or library not in GPU_ONLY)
    return result


def gemm_limit(dtype: str, device: str):
    """A square GEMM of GEMM_LIMIT_SIZE in ``dtype`` (float32 for 16-bit): the flop-rate ceiling."""
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
    out = np.empty_like(a)
    return lambda: np.matmul(a, a, out=out)


def fill_limit(size: int, dtype: str, device: str):
    """A parallel fill of a preallocated array: the write bandwidth ceiling of a sampler."""
    import ml_dtypes

    kind = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if device == "cuda":
        import cupy

        out = cupy.empty(size, dtype=kind)

        def run():
            out.fill(1)
            cupy.cuda.get_current_stream().synchronize()

        return run
    storage = np.empty(size, dtype=kind).view({2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(kind).itemsize])
    fill = _parallel_fill()
    one = storage.dtype.type(1)
    return lambda: fill(storage, one)


_FILL = None


def _parallel_fill():
    global _FILL
    if _FILL is None:
        import numba

        @numba.njit(parallel=True, cache=True)
        def fill(out, value):
            for i in numba.prange(out.size):
                out[i] = value

        _FILL = fill
    return _FILL
