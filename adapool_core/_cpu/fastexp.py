"""exp for the kernels: float64 uses libm; float32 uses a polynomial that LLVM
can vectorise (a scalar libm call per element is what made the first row
kernels slow).  Also the jit options every kernel of the package shares."""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic, overload

# error_model="numpy": float division by zero gives inf/nan (IEEE) instead of raising.
JIT = dict(cache=True, nogil=True, error_model="numpy")


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


def exp_c(v):
    """exp in the precision of v (compiled code uses the overload below); CUDA's exp_c."""
    return math.exp(v)


@overload(exp_c, jit_options=JIT)
def _exp_c_overload(v):
    if v == types.float32:
        return lambda v: exp_f32(v)
    return lambda v: math.exp(v)
