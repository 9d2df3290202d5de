"""The small-matrix orthogonal kernel's row updates as explicit vector code (CPU kernels only).

``orthogonal._member_small`` applies four reflectors at a time to a member that stays in cache: for
three rows of Q at once it adds their weighted sum into the four rows of W, then subtracts the
weighted rows of W from them. Its rows are short (a member has at most 512 columns, and block j0
touches columns j0..m-1), and LLVM compiles each such loop with a preamble that checks at run time
whether the seven rows overlap (about a hundred instructions), then a 16-lane loop and a scalar
remainder: at 64 columns the preamble costs as much as the arithmetic.

``rank_step_add`` and ``rank_step_subtract`` do one step of such a loop, ``LANES_BYTES`` bytes of
columns (16 float32 or 8 float64), as LLVM vector loads, multiply-adds and stores of their own, so
the loop around them needs no overlap check; ``add_steps`` and ``subtract_steps`` run the steps over
whole vectors, and the caller does the rest with its scalar loop. The arithmetic has the scalar
loop's terms in its order: for each target row t,

    target_t[j] (+ or -)= ((weights[t][0] * source_0[j] + weights[t][1] * source_1[j]) + ...)

with every product after the first fused into its addition where the CPU has FMA (``llvm.fmuladd``,
as the kernels' ``contract`` fast-math flag allows). There are no bounds checks: the steps stay
within the columns they are given.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import cpu_jit

LANES_BYTES = 64  # one AVX-512 register; two AVX2 ones


def _rank_step(subtract: bool):
    @intrinsic
    def step(typingctx, targets, sources, weights, j):
        """targets: UniTuple of T 1-D arrays; sources: UniTuple of S 1-D arrays of the same float
        dtype; weights: UniTuple of T * S floats of that dtype, row t the weights of target t; j:
        int64, the first column; columns j..j + LANES_BYTES / itemsize - 1 must exist in every row."""
        if not (isinstance(targets, types.UniTuple) and isinstance(sources, types.UniTuple)
                and isinstance(weights, types.UniTuple) and isinstance(targets.dtype, types.Array)
                and targets.dtype.ndim == 1 and sources.dtype == targets.dtype
                and targets.dtype.dtype in (types.float32, types.float64)
                and weights.dtype == targets.dtype.dtype and len(weights) == len(targets) * len(sources)):
            return None
        signature = types.void(targets, sources, weights, types.int64)

        def codegen(context, builder, sig, args):
            target_rows, source_rows, weight_values, column = args
            array_type = sig.args[0].dtype
            element = context.get_data_type(array_type.dtype)
            size = context.get_abi_sizeof(element)
            vector = ir.VectorType(element, LANES_BYTES // size)
            fmuladd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fmuladd.v{vector.count}{element.intrinsic_name}")

            def pointer(rows, index):
                row = builder.extract_value(rows, index)
                data = context.make_array(array_type)(context, builder, row).data
                return builder.bitcast(builder.gep(data, [column]), vector.as_pointer())

            def broadcast(value):
                lanes = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(ir.IntType(32), 0))
                return builder.shuffle_vector(lanes, ir.Constant(vector, None),
                                              ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count))

            count = len(sig.args[1])
            loaded = [builder.load(pointer(source_rows, k), align=size) for k in range(count)]
            for t in range(len(sig.args[0])):
                weight = [broadcast(builder.extract_value(weight_values, t * count + k)) for k in range(count)]
                total = builder.fmul(weight[0], loaded[0])
                for k in range(1, count):
                    total = builder.call(fmuladd, [weight[k], loaded[k], total])
                where = pointer(target_rows, t)
                old = builder.load(where, align=size)
                builder.store(builder.fsub(old, total) if subtract else builder.fadd(old, total), where, align=size)
            return context.get_dummy_value()

        return signature, codegen

    return step


@cpu_jit(forceinline=True)
def lanes(row):
    """Columns of ``row``'s dtype in one step."""
    return LANES_BYTES // row.itemsize


def _steps(step):
    @cpu_jit(forceinline=True)
    def steps(targets, sources, weights, start, stop):
        """``step`` over the columns from ``start`` (int64) in whole vectors that end by ``stop``;
        returns the first column left to do element by element."""
        width = lanes(targets[0])
        j = np.int64(start)
        while j + width <= stop:
            step(targets, sources, weights, j)
            j += width
        return j

    return steps


rank_step_add = _rank_step(False)
rank_step_subtract = _rank_step(True)
# targets[t] += (or -=) the weighted sum of the sources, over whole vectors of columns.
add_steps = _steps(rank_step_add)
subtract_steps = _steps(rank_step_subtract)
