"""The redraw pass's scan lists a tile's sentinels eight elements a step exactly as an element-by-element
scan does, on every CPU: packed by AVX-512's compress where the CPU functions are compiled for it, by
the table of set lanes elsewhere."""

import llvmlite.binding as ll
import numpy as np
import pytest

from warpinit.kernels import compress, fill_cpu
from warpinit.kernels._jit import avx512, specialize
from warpinit.kernels.samplers import KINDS, SENTINEL16

_DTYPES = {"float32": np.float32, "float64": np.float64, "bfloat16": np.uint16, "float16": np.uint16}

pending = None  # bound per kind by ``specialize``


def _element_by_element(out, o, count, offsets, fmt):
    n = 0
    for j in range(count):
        offsets[n] = j
        n += np.int64(pending(out, o + j, fmt))
    return n


def _scans(kind):
    return tuple(fill_cpu._kernel(specialize(template, f"_{name}_test_{kind}", **KINDS[kind]))
                 for name, template in (("scalar", _element_by_element), ("steps", fill_cpu._find_pending_template)))


def test_table_rows_list_the_set_lanes():
    for mask in range(1 << compress.BLOCK):
        row = compress.set_lanes(mask)
        count = bin(mask).count("1")
        assert len(row) == compress.BLOCK and row[:count] == [lane for lane in range(8) if mask >> lane & 1]


@pytest.mark.parametrize("kind", sorted(_DTYPES))
def test_scan_lists_the_element_by_element_offsets(kind):
    scalar, steps = _scans(kind)
    dtype = _DTYPES[kind]
    sentinel = SENTINEL16 if dtype is np.uint16 else dtype(np.nan)
    rng = np.random.default_rng(5)
    for count, share in [(0, 0.5), (1, 1.0), (7, 1.0), (8, 1.0), (9, 0.5), (23, 0.3), (64, 0.0), (1000, 0.05),
                         (16384, 0.0455), (16384, 0.5), (16384, 0.9), (16385, 1.0)]:
        for o in (0, 3):  # the span's start within the array (unaligned loads)
            out = (rng.integers(0, 1000, o + count + 5)).astype(dtype)
            if dtype is not np.uint16:
                out[0] = np.inf  # an infinity is not pending
            hit = np.flatnonzero(rng.random(count) < share)
            out[o + hit] = sentinel
            expected = np.full(hit.size + compress.BLOCK, -1, np.int64)
            found = np.full(hit.size + compress.BLOCK, -1, np.int64)
            n_scalar = scalar(out, o, count, expected, 0)
            n_steps = steps(out, o, count, found, 0)
            assert n_scalar == n_steps == hit.size, (count, share, o)
            np.testing.assert_array_equal(found[:n_steps], hit)
            np.testing.assert_array_equal(expected[:n_scalar], hit)


@pytest.mark.skipif(not ll.get_process_triple().startswith("x86_64"), reason="x86-64 assembly")
def test_scan_packs_with_vpcompressq_only_on_avx512():
    _, steps = _scans("float32")
    out = np.zeros(16, np.float32)
    steps(out, 0, 16, np.zeros(16 + compress.BLOCK, np.int64), 0)
    asm = "\n".join(steps.inspect_asm(signature) for signature in steps.signatures)
    assert ("vpcompressq" in asm) == avx512()
    assert (compress._TABLE_NAME in asm) != avx512()
