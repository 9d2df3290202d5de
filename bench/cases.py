"""The benchmark cases: one list, shared by ``warpinit bench`` and the pytest-benchmark suites.

A case is (op, size, dtype, library); ``build()`` returns the zero-argument function to time. The
library "limit" is the machine's own ceiling for the op, measured in the same run: for sampling, a
parallel fill of a preallocated array of the same size and dtype (the memory-write bandwidth every
sampler must pay at least).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .peers import OPS, PEERS

LIMIT = "limit"
DEFAULT_SIZES = (10**7, 10**8)
QUICK_SIZES = (10**6, 10**7)


@dataclass(frozen=True)
class Case:
    op: str
    size: int
    dtype: str
    library: str
    device: str = "cpu"

    @property
    def name(self) -> str:
        return f"{self.op}-{self.size:.0e}-{self.dtype}-{self.library}-{self.device}"

    def build(self) -> Callable[[], object] | None:
        """The function that produces one tensor, or None when the library cannot do this case."""
        if self.library == LIMIT:
            return fill_limit(self.size, self.dtype, self.device)
        return PEERS[self.library].build(self.op, self.size, self.dtype, self.device)


def cases(ops=OPS, sizes=DEFAULT_SIZES, dtype="float32", libraries=tuple(PEERS), device="cpu") -> list[Case]:
    """Every (op, size, library) case, with the limit case of each (op, size) first."""
    result = []
    for op in ops:
        for size in sizes:
            result.append(Case(op, size, dtype, LIMIT, device))
            result.extend(Case(op, size, dtype, library, device) for library in libraries)
    return result


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
    import numba

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
