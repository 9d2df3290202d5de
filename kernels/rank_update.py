"""The small-matrix orthogonal kernel's block update, Q <- (I - V T V^T) Q, as explicit vector code
(CPU kernels only).

``orthogonal._member_small`` applies four reflectors at a time to a member that stays in cache. For
one block (its four columns of V packed row by row from row ``first_row`` on, and their 4 x 4 upper
triangular T), ``apply_block`` runs three passes over Q's rows from ``first_row`` and its columns
from ``first_column``, in strips of whole vectors of columns:

    W = V^T Q      tiles of TILE_ROWS rows; for each tile and strip, the strip's four rows of W are
                   loaded into registers, the tile's rows multiplied in, and W stored back
    W = T W        strip by strip
    Q -= V W       tiles and strips again, the strip of W in registers, each row updated once

Each element of Q is read twice and written once per block, each row's four weights are read once
per strip and pass (from the packed block: one cache line for several rows, however long Q's rows
are), and the loops have no overlap checks (LLVM's, around a Numba loop over seven rows, cost as
much as the arithmetic of a short row). A strip is two vectors (``LANES_BYTES`` bytes each: 16
float32 or 8 float64) where the CPU has AVX-512 (32 vector registers: eight accumulators in flight
hide the multiply-add latency) and one vector elsewhere (on AVX2's 16 registers two would spill); a
strip of one vector ends the columns when they hold an odd number of vectors. The row loops take
``UNROLL`` rows an iteration, written out: LLVM unrolled them so only when it optimised the code a
second time (as it did inside each layer of a ``prange`` driver), and the loop of one row an
iteration ran slower (bench/RESULTS.md). Q's columns from ``first_column`` on must be a whole
number of vectors: the caller pads its rows (the padding columns are zero, and stay zero).

The arithmetic, for each column j (every product after the first fused into its addition where the
CPU has FMA, ``llvm.fmuladd``, as the kernels' ``contract`` flag allows):

    w_r = sum over rows i, in order, of V[i, r] Q[i, j]                   for r = 0..3
    u_r = t[r][r] w_r + t[r][r+1] w_{r+1} + ... + t[r][3] w_3
    Q[i, j] = Q[i, j] - (((V[i, 0] u_0 + V[i, 1] u_1) + V[i, 2] u_2) + V[i, 3] u_3)

The same terms in the same order whatever the strip width and tiling, so an AVX-512 CPU and an AVX2
one round alike where both fuse. There are no bounds checks: the caller passes indices inside its
arrays.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import avx512, cpu_jit

LANES_BYTES = 64  # one AVX-512 register; two AVX2 ones
BLOCK = 4  # reflectors per block
UNROLL = 2  # rows per iteration of the row loops
TILE_ROWS = 128  # rows whose sums advance together before the next strip
# The upper triangle of T, row by row: the order of ``apply_block``'s ``t``.
T_ENTRIES = tuple((r, c) for r in range(BLOCK) for c in range(r, BLOCK))


def _is_matrix(array) -> bool:
    return (isinstance(array, types.Array) and array.ndim == 2 and array.layout in "CA"
            and array.dtype in (types.float32, types.float64))


@intrinsic
def apply_block(typingctx, q, v, t, first_row, first_column, w):
    """Q[first_row:, first_column:] <- (I - V T V^T) Q[first_row:, first_column:] for one block.

    Args:
        q: (n, p) float32/float64, rows strided, elements contiguous; p - first_column a multiple of
            ``lanes(q)``.
        v: (n - first_row, BLOCK) C-contiguous, q's dtype: the block's reflectors from row
            ``first_row`` on (zero above their diagonals; a block of fewer reflectors has zero
            columns for the others, and zero rows and columns in T).
        t: UniTuple of the ``T_ENTRIES`` of T, q's dtype.
        first_row, first_column: int64.
        w: (BLOCK, p) scratch, q's dtype, laid out as q.
    """
    if not (_is_matrix(q) and _is_matrix(v) and v.layout == "C" and v.dtype == q.dtype
            and _is_matrix(w) and w.dtype == q.dtype
            and isinstance(t, types.UniTuple) and len(t) == len(T_ENTRIES) and t.dtype == q.dtype
            and isinstance(first_row, types.Integer) and isinstance(first_column, types.Integer)):
        return None
    signature = types.void(q, v, t, types.int64, types.int64, w)

    def codegen(context, builder, sig, args):
        q_value, v_value, t_values, row0, column0, w_value = args
        array_type = sig.args[0]
        element = context.get_data_type(array_type.dtype)
        size = context.get_abi_sizeof(element)
        lanes = LANES_BYTES // size
        vector = ir.VectorType(element, lanes)
        index = ir.IntType(64)
        fmuladd = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fmuladd.v{lanes}{element.intrinsic_name}")
        q_array = context.make_array(array_type)(context, builder, q_value)
        v_array = context.make_array(sig.args[1])(context, builder, v_value)
        w_array = context.make_array(sig.args[5])(context, builder, w_value)
        rows = builder.extract_value(q_array.shape, 0)
        end = builder.extract_value(q_array.shape, 1)
        size_value = ir.Constant(index, size)
        # (data pointer, elements per row) of q and w: rows may be strided, their elements are not
        q_rows = (q_array.data, builder.sdiv(builder.extract_value(q_array.strides, 0), size_value))
        w_rows = (w_array.data, builder.sdiv(builder.extract_value(w_array.strides, 0), size_value))
        one = ir.Constant(index, 1)

        def splat(value):
            lane = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(lane, ir.Constant(vector, None),
                                          ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))

        t_entry = {rc: splat(builder.extract_value(t_values, k)) for k, rc in enumerate(T_ENTRIES)}

        def weights(i):
            """The block's reflectors at row i of q (row i - first_row of v), each in every lane."""
            row = builder.mul(builder.sub(i, row0), ir.Constant(index, BLOCK))
            return [splat(builder.load(builder.gep(v_array.data, [builder.add(row, ir.Constant(index, r))]), align=size))
                    for r in range(BLOCK)]

        def at(array, i, j):
            data, pitch = array
            where = builder.gep(data, [builder.add(builder.mul(i, pitch), j)])
            return builder.bitcast(where, vector.as_pointer())

        def vectors_of(j, width):
            return [builder.add(j, ir.Constant(index, k * lanes)) for k in range(width)]

        width = 2 if avx512(context.codegen()) else 1
        step = ir.Constant(index, width * lanes)

        def over_strips(body):
            strips = builder.sdiv(builder.sub(end, column0), step)
            with cgutils.for_range(builder, strips) as loop:
                body(vectors_of(builder.add(column0, builder.mul(loop.index, step)), width))
            if width > 1:
                done = builder.add(column0, builder.mul(strips, step))
                with builder.if_then(builder.icmp_signed("<", done, end)):
                    body(vectors_of(done, 1))

        tile = ir.Constant(index, TILE_ROWS)

        def over_tiles(body):
            tiles = builder.sdiv(builder.add(builder.sub(rows, row0), ir.Constant(index, TILE_ROWS - 1)), tile)
            with cgutils.for_range(builder, tiles) as loop:
                first = builder.add(row0, builder.mul(loop.index, tile))
                last = builder.add(first, tile)
                last = builder.select(builder.icmp_signed("<", last, rows), last, rows)
                body(first, last)

        unroll = ir.Constant(index, UNROLL)

        def over_rows(first, last, body):
            """body(i) for the rows i = first..last - 1 in order, UNROLL rows an iteration."""
            grouped = builder.add(first, builder.mul(builder.sdiv(builder.sub(last, first), unroll), unroll))
            with cgutils.for_range_slice(builder, first, grouped, unroll) as (i, _):
                for k in range(UNROLL):
                    body(builder.add(i, ir.Constant(index, k)))
            with cgutils.for_range_slice(builder, grouped, last, one) as (i, _):
                body(i)

        def clear(offsets):
            for r in range(BLOCK):
                for j in offsets:
                    builder.store(ir.Constant(vector, 0.0), at(w_rows, ir.Constant(index, r), j), align=size)

        def accumulate(first, last, offsets):
            sums = [[cgutils.alloca_once(builder, vector) for _ in offsets] for _ in range(BLOCK)]
            for r in range(BLOCK):
                for k, j in enumerate(offsets):
                    builder.store(builder.load(at(w_rows, ir.Constant(index, r), j), align=size), sums[r][k])

            def row(i):
                weight = weights(i)
                for k, j in enumerate(offsets):
                    x = builder.load(at(q_rows, i, j), align=size)
                    for r in range(BLOCK):
                        builder.store(builder.call(fmuladd, [weight[r], x, builder.load(sums[r][k])]), sums[r][k])

            over_rows(first, last, row)
            for r in range(BLOCK):
                for k, j in enumerate(offsets):
                    builder.store(builder.load(sums[r][k]), at(w_rows, ir.Constant(index, r), j), align=size)

        def multiply(offsets):
            for j in offsets:
                where = [at(w_rows, ir.Constant(index, r), j) for r in range(BLOCK)]
                sums = [builder.load(p, align=size) for p in where]
                for r in range(BLOCK):
                    total = builder.fmul(t_entry[r, r], sums[r])
                    for d in range(r + 1, BLOCK):
                        total = builder.call(fmuladd, [t_entry[r, d], sums[d], total])
                    builder.store(total, where[r], align=size)

        def subtract(first, last, offsets):
            u = [[builder.load(at(w_rows, ir.Constant(index, r), j), align=size) for j in offsets]
                 for r in range(BLOCK)]

            def row(i):
                weight = weights(i)
                for k, j in enumerate(offsets):
                    where = at(q_rows, i, j)
                    total = builder.fmul(weight[0], u[0][k])
                    for r in range(1, BLOCK):
                        total = builder.call(fmuladd, [weight[r], u[r][k], total])
                    builder.store(builder.fsub(builder.load(where, align=size), total), where, align=size)

            over_rows(first, last, row)

        over_strips(clear)
        over_tiles(lambda first, last: over_strips(lambda offsets: accumulate(first, last, offsets)))
        over_strips(multiply)
        over_tiles(lambda first, last: over_strips(lambda offsets: subtract(first, last, offsets)))
        return context.get_dummy_value()

    return signature, codegen


@cpu_jit(forceinline=True)
def lanes(array):
    """Columns of ``array``'s dtype in one vector."""
    return LANES_BYTES // array.itemsize


@cpu_jit(forceinline=True)
def padded_columns(m, dtype_size):
    """The row length, in elements, that holds m columns in whole vectors (elements of dtype_size bytes)."""
    per_vector = LANES_BYTES // dtype_size
    return (m + per_vector - 1) // per_vector * per_vector


@cpu_jit(forceinline=True)
def row_pitch(columns, dtype_size):
    """A row stride, in elements, for rows of ``columns`` (whole vectors): an odd number of vectors, so
    that rows fall on different cache sets and a row's stores do not alias the next rows' loads
    (addresses 4 KiB apart)."""
    per_vector = LANES_BYTES // dtype_size
    vectors = columns // per_vector
    return (vectors | 1) * per_vector
