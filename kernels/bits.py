"""Bit-level helpers shared by the CPU and CUDA kernels: bitcasts and rounding to 16-bit floats.

Numba has no float16/bfloat16 arrays, so 16-bit outputs are computed in float32 and rounded here to
the 16-bit format with round-to-nearest-even: bfloat16 in integer arithmetic on the float32 bit
pattern, float16 by the hardware's IEEE conversion where the target has one (F16C on x86, Arm64, the
GPU) and in integer arithmetic elsewhere, to the same bits. The kernels write the returned bits into a
``uint16`` view of the output and take their accept/reject decisions on the returned float32 value,
which equals the 16-bit value exactly; bounds therefore hold after rounding. One routine per format
serves the CPU, the CUDA simulator and the GPU.

Integers are carried as ``uint64`` holding 32-bit values, so the CUDA simulator (NumPy scalars)
never overflows a ``uint32`` and never promotes a mixed ``uint64``/``int64`` expression to float64.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import shared, shared_intrinsic

# Format codes of the 16-bit outputs (kernels take them as a runtime argument).
FORMAT_BFLOAT16 = 1
FORMAT_FLOAT16 = 2

_U16 = np.uint64(16)
_U13 = np.uint64(13)
_U1 = np.uint64(1)
_SIGN32 = np.uint64(0x80000000)
_ABS32 = np.uint64(0x7FFFFFFF)
_BF16_ROUND = np.uint64(0x7FFF)
_F16_ROUND = np.uint64(0xFFF)
_F16_REBIAS = np.uint64(0x38000000)  # (127 - 15) << 23: float32 exponent bias minus float16's
_F16_MIN_NORMAL32 = np.uint64(0x38800000)  # 2**-14 as float32 bits
_F16_INF = np.uint64(0x7C00)
_F16_SUBNORMAL_MAGIC32 = np.uint64(0x4B000000)  # float32 bits of 2**23
_F32_TWO_POW_24 = np.float32(2.0**24)
_F32_TWO_POW_23 = np.float32(2.0**23)
_F32_TWO_POW_M24 = np.float32(2.0**-24)
_F32_INF = np.float32(np.inf)
_F32_ZERO = np.float32(0.0)


def _float32_bits_py(x):
    return np.uint64(np.float32(x).view(np.uint32))


def _float32_from_bits_py(bits):
    return np.uint32(bits).view(np.float32)


def _float64_bits_py(x):
    return np.float64(x).view(np.uint64)


def _float64_from_bits_py(bits):
    return np.uint64(bits).view(np.float64)


@shared_intrinsic(_float32_bits_py)
@intrinsic
def float32_bits(typingctx, x):
    """The IEEE bit pattern of a float32, zero-extended to uint64."""
    if x != types.float32:
        return None
    signature = types.uint64(types.float32)

    def codegen(context, builder, sig, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))

    return signature, codegen


@shared_intrinsic(_float32_from_bits_py)
@intrinsic
def float32_from_bits(typingctx, bits):
    """The float32 whose IEEE bit pattern is the low 32 bits of a uint64."""
    if bits != types.uint64:
        return None
    signature = types.float32(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return signature, codegen


@shared_intrinsic(_float64_bits_py)
@intrinsic
def float64_bits(typingctx, x):
    """The IEEE bit pattern of a float64, as uint64."""
    if x != types.float64:
        return None
    signature = types.uint64(types.float64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return signature, codegen


@shared_intrinsic(_float64_from_bits_py)
@intrinsic
def float64_from_bits(typingctx, bits):
    """The float64 whose IEEE bit pattern is ``bits`` (uint64)."""
    if bits != types.uint64:
        return None
    signature = types.float64(types.uint64)

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return signature, codegen


def _round_bfloat16_py(x):
    b = _float32_bits_py(x)
    rounded = (b + _BF16_ROUND + ((b >> _U16) & _U1)) >> _U16
    return rounded, _float32_from_bits_py(rounded << _U16)


@shared_intrinsic(_round_bfloat16_py)
@intrinsic
def round_bfloat16(typingctx, x):
    """Round a finite or infinite float32 to bfloat16, nearest-even.

    Args:
        x: float32 value (never NaN in warpinit's kernels).

    Returns:
        (bits, value): the bfloat16 bit pattern as uint64 and the same number as float32.

    The integer steps of ``_round_bfloat16_py`` (the simulator's twin), written in 32-bit integers:
    as Numba code they would run in 64-bit ones, which vector code holds half as many of per
    register. No step overflows 32 bits for a float32 that is not NaN."""
    if x != types.float32:
        return None
    signature = types.Tuple((types.uint64, types.float32))(types.float32)

    def codegen(context, builder, sig, args):
        word = ir.IntType(32)
        b = builder.bitcast(args[0], word)
        lsb = builder.and_(builder.lshr(b, ir.Constant(word, 16)), ir.Constant(word, 1))
        rounded = builder.add(builder.add(b, ir.Constant(word, int(_BF16_ROUND))), lsb)
        value = builder.bitcast(builder.and_(rounded, ir.Constant(word, 0xFFFF0000)), ir.FloatType())
        bits = builder.zext(builder.lshr(rounded, ir.Constant(word, 16)), ir.IntType(64))
        return context.make_tuple(builder, sig.return_type, (bits, value))

    return signature, codegen


@shared
def round_float16_integer(x):
    """Round a float32 to IEEE float16, nearest-even, with subnormals and overflow to infinity, in
    integer steps: what ``round_float16`` runs on an x86 CPU without F16C's conversions.

    Args:
        x: float32 value (never NaN in warpinit's kernels).

    Returns:
        (bits, value): the float16 bit pattern as uint64 and the same number as float32.
    """
    b = float32_bits(x)
    sign = (b & _SIGN32) >> _U16
    a = b & _ABS32
    is_normal = a >= _F16_MIN_NORMAL32
    # Normal float16 range: drop 13 mantissa bits with nearest-even, rebias the exponent. (The
    # operands are clamped into each branch's range so that no lane over- or underflows.)
    a_normal = a if is_normal else _F16_MIN_NORMAL32
    normal = (a_normal - _F16_REBIAS + _F16_ROUND + ((a_normal >> _U13) & _U1)) >> _U13
    normal = normal if normal < _F16_INF else _F16_INF
    # Subnormal range: |x| * 2**24 rounded to an integer by adding 2**23 (exact, nearest-even).
    x_subnormal = _F32_ZERO if is_normal else abs(x)
    subnormal = float32_bits(x_subnormal * _F32_TWO_POW_24 + _F32_TWO_POW_23) - _F16_SUBNORMAL_MAGIC32
    h = normal if is_normal else subnormal
    value = float16_bits_to_float32(h)
    return sign | h, -value if sign != np.uint64(0) else value


def _round_float16_py(x):
    h = np.float32(x).astype(np.float16)
    return np.uint64(h.view(np.uint16)), np.float32(h)


def _native_half(context) -> bool:
    """Whether the target of ``context`` converts float32 to float16 in hardware with IEEE
    nearest-even: an x86 CPU with F16C, an Arm64 CPU, or the GPU (``cvt.rn.f16.f32``)."""
    from numba.core.cpu import CPUContext

    if not isinstance(context, CPUContext):
        return True
    triple, _, features = context.codegen().magic_tuple()
    if triple.startswith(("aarch64", "arm64")):
        return True
    return triple.startswith("x86_64") and "+f16c" in features.split(",")


@shared_intrinsic(_round_float16_py)
@intrinsic
def round_float16(typingctx, x):
    """Round a float32 to IEEE float16, nearest-even, with subnormals and overflow to infinity.

    Args:
        x: float32 value (never NaN in warpinit's kernels).

    Returns:
        (bits, value): the float16 bit pattern as uint64 and the same number as float32.

    IEEE 754 defines this rounding exactly, so the CPU's or GPU's own conversion (LLVM's
    ``fptrunc`` to half: ``vcvtps2ph`` on x86, which converts a whole vector of lanes in one
    instruction) gives the bits of ``round_float16_integer``, which serves targets without one. The
    simulator's twin is NumPy's conversion. Both assume the default floating-point environment
    (round to nearest), as all of warpinit's arithmetic does."""
    if x != types.float32:
        return None
    signature = types.Tuple((types.uint64, types.float32))(types.float32)

    def codegen(context, builder, sig, args):
        if not _native_half(context):
            return context.compile_internal(builder, round_float16_integer.py_func, sig, args)
        half = builder.fptrunc(args[0], ir.HalfType())
        bits = builder.zext(builder.bitcast(half, ir.IntType(16)), ir.IntType(64))
        value = builder.fpext(half, ir.FloatType())
        return context.make_tuple(builder, sig.return_type, (bits, value))

    return signature, codegen


@shared
def float16_bits_to_float32(h):
    """The float32 equal to a non-negative float16 bit pattern ``h`` (uint64, sign bit clear)."""
    normal = float32_from_bits((h << _U13) + _F16_REBIAS)
    subnormal = np.float32(h) * _F32_TWO_POW_M24
    finite = normal if h >= np.uint64(0x400) else subnormal
    return _F32_INF if h >= _F16_INF else finite


@shared
def round_16bit(x, fmt):
    """Round float32 ``x`` to the 16-bit format ``fmt`` (FORMAT_BFLOAT16 or FORMAT_FLOAT16).

    Returns:
        (bits, value) as in ``round_bfloat16``.
    """
    if fmt == FORMAT_BFLOAT16:
        return round_bfloat16(x)
    return round_float16(x)
