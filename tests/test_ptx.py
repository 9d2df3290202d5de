"""Every CUDA kernel compiles to PTX for sm_80 and sm_90 without a driver (no simulator here)."""

import numpy as np
import pytest
from numba import types

from warpinit.kernels import fill_cuda, orthogonal_cuda, plan
from warpinit.kernels._jit import cuda_module, simulator_enabled

pytestmark = pytest.mark.skipif(simulator_enabled(), reason="PTX compilation needs the real numba.cuda target")

_OUT = {"float32": types.float32, "bfloat16": types.uint16, "float16": types.uint16, "float64": types.float64}
_PARAMS = len(plan.uniform(0.0, 1.0, np.dtype(np.float32)).params)  # every plan has as many


def _signature(kind):
    compute = types.float64 if kind == "float64" else types.float32
    index = types.Array(types.int64, 1, "C")
    return (
        types.Array(_OUT[kind], 1, "C"), index, index, index, types.Array(types.uint64, 2, "C"),
        types.int64, types.int64, types.int64, types.int64,
        types.UniTuple(compute, _PARAMS), types.int64, types.Array(types.int64, 1, "C"),
    )


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
@pytest.mark.parametrize("kind", sorted(_OUT))
def test_fill_kernel_compiles_to_ptx(kind, cc):
    ptx, _ = cuda_module().compile_ptx(fill_cuda.kernel_source(kind), _signature(kind), cc=cc)
    assert f".target sm_{cc[0]}{cc[1]}" in ptx
    assert ".entry" in ptx
    # Everything is inlined: no calls to device functions that would need the driver to link.
    assert "call.uni" not in ptx or "__internal" in ptx
    if kind == "float16":
        assert "cvt.rn.f16.f32" in ptx  # the GPU's own round-to-nearest-even conversion


def _orthogonal_signatures(dtype):
    a3, a2 = types.Array(dtype, 3, "C"), types.Array(dtype, 2, "C")
    return {"reflectors": (a3, a2), "small": (a3, a2, a3), "larft": (a3, a2, a3)}


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
@pytest.mark.parametrize("dtype", [types.float32, types.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", ["reflectors", "small", "larft"])
def test_orthogonal_kernels_compile_to_ptx(name, dtype, cc):
    signature = _orthogonal_signatures(dtype)[name]
    ptx, _ = cuda_module().compile_ptx(orthogonal_cuda.kernel_source(name), signature, cc=cc)
    assert f".target sm_{cc[0]}{cc[1]}" in ptx and ".entry" in ptx


@pytest.mark.parametrize("cc", [(8, 0), (9, 0)], ids=["sm_80", "sm_90"])
def test_scale_round_kernel_compiles_to_ptx(cc):
    signature = (types.Array(types.float32, 1, "C"), types.float32, types.Array(types.uint16, 1, "C"), types.int64)
    ptx, _ = cuda_module().compile_ptx(orthogonal_cuda.kernel_source("scale_round"), signature, cc=cc)
    assert f".target sm_{cc[0]}{cc[1]}" in ptx and ".entry" in ptx
