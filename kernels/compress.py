"""Finding a tile's sentinels eight elements at a time (CPU kernels only).

The redraw pass of ``fill_cpu`` starts by listing the offsets of the sentinels that the first pass
left in a tile. Element by element (``fill_cpu._find_pending_template``), each found offset's slot
depends on the count before it, so that loop stays scalar and costs as much as the redraws
themselves, or more. ``compress_pending`` does eight elements per step: it loads eight outputs,
compares them with the sentinel in one vector compare (a mask of eight bits), packs the offsets of
the set lanes to the front of a vector of eight and stores all eight lanes at the list's end, of
which the first popcount(mask) count. The packing is AVX-512's ``vpcompressq`` (register form: the
memory form is microcoded on some AMD cores) where the CPU functions are compiled for AVX-512
(``_jit.avx512``); on every other CPU it is a lookup: a 2 KiB table gives, for each of the 256
masks, the positions of its set lanes as eight bytes, which widen to 64-bit lanes and add to the
step's first offset (two loads, two widening moves, two adds and two stores on AVX2).

The list it builds is the scalar loop's, offset for offset (ascending), so the values drawn do not
depend on which scan ran.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import avx512
from .samplers import SENTINEL16

BLOCK = 8  # elements per step; also the slack the offsets list needs past its last slot

_I1, _I8, _I64 = ir.IntType(1), ir.IntType(8), ir.IntType(64)
_LANES = ir.VectorType(_I64, BLOCK)
_MASK = ir.VectorType(_I1, BLOCK)
_BYTES = ir.VectorType(_I8, BLOCK)
_BROADCAST = ir.Constant(ir.VectorType(ir.IntType(32), BLOCK), [0] * BLOCK)  # lane 0 into every lane


def set_lanes(mask: int) -> list[int]:
    """The table's row for ``mask`` (0 <= mask < 256): the lanes whose bit is set, ascending, then
    zeros up to eight entries."""
    lanes = [lane for lane in range(BLOCK) if mask >> lane & 1]
    return lanes + [0] * (BLOCK - len(lanes))


_TABLE = ir.Constant(ir.ArrayType(_BYTES, 1 << BLOCK), [ir.Constant(_BYTES, set_lanes(m)) for m in range(1 << BLOCK)])
_TABLE_NAME = "warpinit_compress_set_lanes"


def _packed_by_table(builder, first, mask):
    """The offsets first + l of the set lanes l of ``mask`` (<8 x i1>) packed to the front (<8 x i64>)."""
    table = builder.module.globals.get(_TABLE_NAME) or cgutils.global_constant(builder.module, _TABLE_NAME, _TABLE)
    row = builder.zext(builder.bitcast(mask, _I8), _I64)
    lanes = builder.load(builder.gep(table, [ir.Constant(_I64, 0), row]), align=BLOCK)
    return builder.add(first, builder.zext(lanes, _LANES))


def _packed_by_compress(builder, first, mask):
    """As ``_packed_by_table``, with AVX-512's compress."""
    lanes = builder.add(first, ir.Constant(_LANES, list(range(BLOCK))))
    compress = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_LANES, [_LANES, _LANES, _MASK]),
                                              "llvm.x86.avx512.mask.compress.v8i64")
    return builder.call(compress, [lanes, ir.Constant(_LANES, [0] * BLOCK), mask])


@intrinsic
def compress_pending(typingctx, out, o, j, offsets, n):
    """Append to ``offsets[n:]`` the offsets ``j + l`` (l < 8, ascending) whose ``out[o + l]`` is
    pending (NaN for float32/float64 ``out``, ``samplers.SENTINEL16`` for a uint16 view); return n
    plus their number.

    Args:
        out: 1-D float32, float64 or uint16 array; out[o:o+8] must exist.
        o, j, n: int64.
        offsets: 1-D int64 array with at least n + 8 slots: all eight of offsets[n:n+8] are written,
            those past the returned count with garbage.
    """
    if not (isinstance(out, types.Array) and out.dtype in (types.float32, types.float64, types.uint16)
            and isinstance(offsets, types.Array) and offsets.dtype == types.int64):
        return None
    signature = types.int64(out, types.int64, types.int64, offsets, types.int64)

    def codegen(context, builder, sig, args):
        values, o, j, offset_list, n = args
        element = context.get_data_type(sig.args[0].dtype)
        vector = ir.VectorType(element, BLOCK)
        data = context.make_array(sig.args[0])(context, builder, values).data
        loaded = builder.load(builder.bitcast(builder.gep(data, [o]), vector.as_pointer()),
                              align=context.get_abi_sizeof(element))
        if isinstance(element, ir.IntType):
            mask = builder.icmp_unsigned("==", loaded, ir.Constant(vector, [int(SENTINEL16)] * BLOCK))
        else:
            mask = builder.fcmp_unordered("uno", loaded, loaded)
        first = builder.insert_element(ir.Constant(_LANES, None), j, ir.Constant(_I64, 0))
        first = builder.shuffle_vector(first, ir.Constant(_LANES, None), _BROADCAST)
        pack = _packed_by_compress if avx512(context.codegen()) else _packed_by_table
        packed = pack(builder, first, mask)
        slots = context.make_array(sig.args[3])(context, builder, offset_list).data
        builder.store(packed, builder.bitcast(builder.gep(slots, [n]), _LANES.as_pointer()), align=8)
        found = builder.zext(builder.ctpop(builder.bitcast(mask, _I8)), _I64)
        return builder.add(n, found)

    return signature, codegen
