"""exp for the kernels: polynomials that LLVM can vectorise (a scalar libm call
per element is what made the first row kernels slow), float32 and float64.
Also the jit options every kernel of the package shares."""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic, overload

# error_model="numpy": float division by zero gives inf/nan (IEEE) instead of raising.
# fastmath={"contract"}: LLVM may fuse a * b + c into one fused multiply-add (one rounding
# instead of two), and nothing else (no reassociation, NaN and inf kept): the exp
# polynomials and the weighted sums are chains of them.  Measured (docs/benchmarks.md,
# "Designs tried"): forwards 13-33% faster, backwards 4-16% (1 thread), float64 the most.
# cache=True: Numba keys each function's disk cache on its own source file, not on the
# helpers it inlined from other modules.  After an edit to a formula module (``window``,
# this one) a kept cache hands the kernels in other files the old formulas: develop and
# measure on a fresh NUMBA_CACHE_DIR (an installed package changes its files together).
JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})


@intrinsic
def _f32_bits(typingctx, v):
    """Reinterpret a float32 as int32 (a bitcast: defined for every value, NaN included)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvm_ir.IntType(32))
    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, i):
    """Reinterpret an int32 as float32."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvm_ir.FloatType())
    return types.float32(types.int32), codegen


_F = np.float32
_LOG2E = _F(1.44269504088896341)
_LN2_HI = _F(0.693359375)  # ln 2 split in two (Cody-Waite) so k * ln2 is exact
_LN2_LO = _F(-2.12194440e-4)
_ROUND = _F(12582912.0)  # 1.5 * 2**23: t + _ROUND rounds t to an integer held in the low mantissa bits
_ROUND_BITS = np.int32(0x4B400000)  # bit pattern of _ROUND
_EXP_LOWEST = _F(-87.0)  # below this exp(v) < 1.7e-38 is returned as 0 (keeps 2**k normal)
# Cephes expf minimax polynomial for exp(r) on |r| <= ln(2)/2 (error < 1.4 ulp, measured).
_P0, _P1, _P2 = _F(1.9875691500e-4), _F(1.3981999507e-3), _F(8.3334519073e-3)
_P3, _P4, _P5 = _F(4.1665795894e-2), _F(1.6666665459e-1), _F(5.0000001201e-1)


@njit(**JIT)  # LLVM inlines it (Numba-level inlining of its selects trips an SSA warning)
def exp_f32(v):
    """exp(v) for float32 v <= 88 (every caller passes v <= 1): branch-free, vectorisable.

    exp(v) = 2**k * exp(r), k = round(v / ln 2), r = v - k ln 2.  Only
    additions, multiplications, compares and bitcasts, so NaN propagates
    (NaN in, NaN out) and there is no float-to-int conversion of NaN.
    """
    vc = v if not v < _EXP_LOWEST else _EXP_LOWEST
    t = vc * _LOG2E + _ROUND
    k = t - _ROUND
    r = vc - k * _LN2_HI
    r = r - k * _LN2_LO
    poly = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    poly = poly * (r * r) + r + _F(1)
    scale = _bits_f32((_f32_bits(t) - _ROUND_BITS + np.int32(127)) << np.int32(23))
    e = poly * scale
    return _F(0) if v < _EXP_LOWEST else e


@intrinsic
def _f64_bits(typingctx, v):
    """Reinterpret a float64 as int64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvm_ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _bits_f64(typingctx, i):
    """Reinterpret an int64 as float64."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], llvm_ir.DoubleType())
    return types.float64(types.int64), codegen


_D = np.float64
_LOG2E_D = _D(1.4426950408889634)
_LN2_HI_D = _D(6.93147180369123816490e-01)  # fdlibm's split of ln 2: k * _LN2_HI_D is exact for |k| < 2**11
_LN2_LO_D = _D(1.90821492927058770002e-10)
_ROUND_D = _D(6755399441055744.0)  # 1.5 * 2**52
_ROUND_BITS_D = np.int64(0x4338000000000000)
_EXP_LOWEST_D = _D(-708.0)  # below this exp(v) < 3.3e-308 is returned as 0 (keeps 2**k normal)
# Taylor coefficients 1/n! of exp(r), n = 13 .. 2: on |r| <= ln(2)/2 the
# truncation error is below 2e-16 relative; measured <= 2 ulp with rounding.
_TAYLOR_D = tuple(_D(1.0 / math.factorial(n)) for n in range(13, 1, -1))


@njit(**JIT)
def exp_f64(v):
    """exp(v) for float64 v <= 709: ``exp_f32``'s method (Cody-Waite reduction, a
    degree-13 polynomial, 2**k by bitcast), branch-free and vectorisable; NaN in, NaN out."""
    vc = v if not v < _EXP_LOWEST_D else _EXP_LOWEST_D
    t = vc * _LOG2E_D + _ROUND_D
    k = t - _ROUND_D
    r = vc - k * _LN2_HI_D
    r = r - k * _LN2_LO_D
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _TAYLOR_D
    poly = ((((((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7) * r + c6) * r + c5) * r
             + c4) * r + c3) * r + c2
    poly = poly * (r * r) + r + _D(1)
    scale = _bits_f64((_f64_bits(t) - _ROUND_BITS_D + np.int64(1023)) << np.int64(52))
    e = poly * scale
    return _D(0) if v < _EXP_LOWEST_D else e


# exp on [0, 1] (eDSCW's argument: dsc lies in [0, 1]) needs no range reduction:
# near-minimax polynomials (Chebyshev fits by mpmath.chebyfit, highest degree
# first), degree 7 for float32 and 12 for float64; measured <= 1.3 ulp on
# [0, 1] (tests/test_fastexp.py).  Both are accurate a little past 1 (dsc's
# rounding can give 1 + 1 ulp).
_UNIT_F32 = tuple(_F(c) for c in (
    0.0003294060657466164, 0.0011574931412234326, 0.008537126242750374, 0.04156894257381071,
    0.16669188690101835, 0.4999968213897212, 1.0000001520051718, 0.9999999988114732))
_UNIT_F64 = tuple(_D(c) for c in (
    3.4573934358248052e-09, 2.0775221016944477e-08, 2.83027861230932e-07, 2.747489483280322e-06,
    2.4807687097255107e-05, 0.0001984096152915534, 0.0013888899518720021, 0.008333333088348964,
    0.04166666670284243, 0.16666666666349206, 0.5000000000001446, 0.9999999999999974, 1.0))


@njit(**JIT)
def exp_unit_f32(v):
    """exp(v) for float32 v in [0, 1]: one Horner polynomial, branch-free; NaN in, NaN out."""
    c7, c6, c5, c4, c3, c2, c1, c0 = _UNIT_F32
    return ((((((c7 * v + c6) * v + c5) * v + c4) * v + c3) * v + c2) * v + c1) * v + c0


@njit(**JIT)
def exp_unit_f64(v):
    """exp(v) for float64 v in [0, 1]: ``exp_unit_f32``'s method at degree 12."""
    c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2, c1, c0 = _UNIT_F64
    return (((((((((((c12 * v + c11) * v + c10) * v + c9) * v + c8) * v + c7) * v + c6) * v + c5) * v + c4) * v
               + c3) * v + c2) * v + c1) * v + c0


def _per_precision(python_fn, f32, f64):
    """Give python_fn its compiled form: f32 for float32 arguments, else f64."""
    @overload(python_fn, jit_options=JIT)
    def _overload(v):
        if v == types.float32:
            return lambda v: f32(v)
        return lambda v: f64(v)


def exp_unit(v):
    """exp for v in [0, 1] in the precision of v (compiled: ``exp_unit_f32``/``_f64``)."""
    return math.exp(v)


_per_precision(exp_unit, exp_unit_f32, exp_unit_f64)


def shared_exp_margin(T):
    """How far (in the exponent) below a shared shift eM may put a window's max and
    still share exp(x - shift) between windows: well above exp's underflow point
    (-87 float32, -708 float64), so the weights keep their full relative precision
    (compiled code uses the overload below)."""
    return 60.0 if T is np.float32 else 600.0


@overload(shared_exp_margin, jit_options=JIT)
def _shared_exp_margin_overload(T):
    if T.instance_type == types.float32:
        return lambda T: np.float32(60.0)
    return lambda T: np.float64(600.0)


def exp_c(v):
    """exp in the precision of v (compiled: ``exp_f32``/``exp_f64``); CUDA's exp_c."""
    return math.exp(v)


_per_precision(exp_c, exp_f32, exp_f64)


# Scaling by a power of 2 is exact: ``dsc`` and ``dsc_partials`` put the larger of |v|,
# |m| into [1, 2) so that their squares neither overflow nor underflow, without the
# division by it that costs as much as an exp in float64.
@njit(**JIT)
def binade_scale_f32(v):
    """2^-e for float32 v >= 0 in [2^e, 2^(e+1)) (2^127 for subnormal v, 2^-126 from 2^127 up,
    inf and NaN included): v times it is in [1, 2) for normal v below 2^127."""
    e = min((_f32_bits(v) >> np.int32(23)) & np.int32(0xFF), np.int32(253))
    return _bits_f32((np.int32(254) - e) << np.int32(23))


@njit(**JIT)
def binade_scale_f64(v):
    """``binade_scale_f32`` for float64 (2^1023 for subnormal v, 2^-1022 from 2^1023 up)."""
    e = min((_f64_bits(v) >> np.int64(52)) & np.int64(0x7FF), np.int64(2045))
    return _bits_f64((np.int64(2046) - e) << np.int64(52))


def binade_scale(v):
    """2^-floor(log2(v)) for v > 0 in the precision of v (compiled: ``binade_scale_f32``/``_f64``)."""
    return 2.0 ** -math.floor(math.log2(v))


_per_precision(binade_scale, binade_scale_f32, binade_scale_f64)
