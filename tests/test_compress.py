"""The redraw pass's AVX-512 scan lists a tile's sentinels exactly as the scalar scan does."""

import llvmlite.binding as ll
import numpy as np
import pytest

from warpinit.kernels import compress, fill_cpu
from warpinit.kernels._jit import avx512, specialize
from warpinit.kernels.samplers import KINDS, SENTINEL16

pytestmark = pytest.mark.skipif(not avx512(), reason="the CPU functions are not compiled for AVX-512")

_DTYPES = {"float32": np.float32, "float64": np.float64, "bfloat16": np.uint16, "float16": np.uint16}


def _scans(kind):
    return tuple(fill_cpu._kernel(specialize(template, f"_{name}_test_{kind}", **KINDS[kind]))
                 for name, template in (("scalar", fill_cpu._find_pending_template),
                                        ("compress", fill_cpu._find_pending_compress_template)))


@pytest.mark.parametrize("kind", sorted(_DTYPES))
def test_compress_scan_lists_the_scalar_scans_offsets(kind):
    scalar, wide = _scans(kind)
    dtype = _DTYPES[kind]
    sentinel = SENTINEL16 if dtype is np.uint16 else dtype(np.nan)
    rng = np.random.default_rng(5)
    for count, share in [(0, 0.5), (1, 1.0), (7, 1.0), (8, 1.0), (9, 0.5), (23, 0.3), (64, 0.0), (1000, 0.05),
                         (16384, 0.0455), (16384, 0.9), (16385, 1.0)]:
        for o in (0, 3):  # the span's start within the array (unaligned loads)
            out = (rng.integers(0, 1000, o + count + 5)).astype(dtype)
            if dtype is not np.uint16:
                out[0] = np.inf  # an infinity is not pending
            hit = np.flatnonzero(rng.random(count) < share)
            out[o + hit] = sentinel
            expected = np.full(hit.size + compress.BLOCK, -1, np.int64)
            found = np.full(hit.size + compress.BLOCK, -1, np.int64)
            n_scalar = scalar(out, o, count, expected, 0)
            n_wide = wide(out, o, count, found, 0)
            assert n_scalar == n_wide == hit.size, (count, share, o)
            np.testing.assert_array_equal(found[:n_wide], hit)
            np.testing.assert_array_equal(expected[:n_scalar], hit)


def test_compress_is_compiled_to_vpcompressq():
    _, wide = _scans("float32")
    out = np.zeros(16, np.float32)
    wide(out, 0, 16, np.zeros(16 + compress.BLOCK, np.int64), 0)
    asm = "\n".join(wide.inspect_asm(signature) for signature in wide.signatures)
    assert "vpcompressq" in asm
    assert ll.get_process_triple().startswith("x86_64")
