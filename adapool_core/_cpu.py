"""CPU backend: Numba kernels, pure functions on NumPy arrays.

Every kernel works on the canonical 3-D form (see ``_geometry``): arrays are
``(NC, D1, D2, D3)``; 1-D and 2-D problems arrive with singleton leading
spatial dims.  One kernel per direction serves every method (``_methods``).

Parallelism: each kernel runs ``prange`` over rows ``(nc, o1, o2)`` (forward,
adaUnPool's backward) so that a single image with a few channels still fills
every core.  The pooling backward scatters each window's gradient into the
input, and adaUnPool's forward each window's values;
to stay race-free and deterministic without atomics it visits the windows in
phase classes (output indices congruent modulo ``ceil(k / s)`` in every dim):
windows of one class never share an input cell, so within a class each
thread owns the cells it writes, and every cell receives its terms in a fixed
order whatever the thread count.

Speed (see docs/benchmarks.md): float32 problems whose last-axis window is
2 or 3 wide at stride 2 (2x2/2 and 3x3/2 pooling) go to row kernels that
vectorise across the windows of an output row, with an exp made of
multiplications and additions instead of a libm call per element.  Those
kernels own whole rows, so their backward needs phase classes over the two
leading dims only.  Everything else takes the general per-window kernels.

Outputs are allocated by the caller (the backend functions at the end) and
passed in; kernels allocate only per-thread scratch of a few floats per
output column.
"""
from __future__ import annotations

import functools
import math
import threading

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from ._geometry import compute_dtype as array_dtype  # the dtype kernels take arrays in: half types as float32
from ._geometry import cover_counts
from ._methods import ADA, EDSCW, EM, IDW

# error_model="numpy": float division by zero gives inf/nan (IEEE) instead of raising.
xp = np  # the array module of this backend

_JIT = dict(cache=True, nogil=True, error_model="numpy")


# ---------------------------------------------------------------------------
# exp: float64 uses libm; float32 uses a polynomial that LLVM can vectorise
# (a scalar libm call per element is what made the first version slow).
# ---------------------------------------------------------------------------

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


@njit(**_JIT)  # LLVM inlines it (Numba-level inlining of its selects trips an SSA warning)
def _exp_f32(v):
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


def _exp(v):
    """exp in the precision of v (compiled code uses the overload below)."""
    return math.exp(v)


@overload(_exp, jit_options=_JIT)
def _exp_overload(v):
    if v == types.float32:
        return lambda v: _exp_f32(v)
    return lambda v: math.exp(v)


@njit(inline="always", **_JIT)
def _bounds(o, k, s, p, length):
    """Start of window ``o`` (may be negative) and its clipped [lo, hi)."""
    start = o * s - p
    lo = start if start > 0 else 0
    hi = start + k
    if hi > length:
        hi = length
    return start, lo, hi


@njit(inline="always", **_JIT)
def _dsc(v, m, T):
    """Dice-Sorensen coefficient 2|v m| / (v^2 + m^2), 1 at v = m = 0.

    Written as 2r / (1 + r^2) with r = min(|v|,|m|) / max(|v|,|m|), so it
    neither overflows nor underflows for any finite v, m.
    """
    a = abs(v)
    b = abs(m)
    if a >= b:
        hi = a
        lo = b
    else:
        hi = b
        lo = a
    if hi == 0:
        return T(1)
    r = lo / hi
    return T(2) * r / (T(1) + r * r)


@njit(inline="always", **_JIT)
def _sign(v, T):
    if v > 0:
        return T(1)
    if v < 0:
        return T(-1)
    return T(0)


@njit(inline="always", **_JIT)
def _dsc_partials(v, m, u, T):
    """(u * d dsc / d v, u * d dsc / d m); zero at v = m = 0 and d|u|/du = 0 at u = 0.

    d/dv = 2 sgn(v) |m| (m^2 - v^2) / (v^2 + m^2)^2, symmetric in (v, m);
    scaled by hi = max(|v|, |m|) like ``_dsc``.  The factor u (= x - y, of
    the order of hi) is applied as u / hi before the product: 1 / hi alone
    overflows for subnormal hi (and inf * 0 made the gradient NaN).
    """
    a = abs(v)
    b = abs(m)
    hi = a if a >= b else b
    if hi == 0:
        return T(0), T(0)
    ra = a / hi
    rb = b / hi
    den = ra * ra + rb * rb
    den = den * den
    dv = T(2) * _sign(v, T) * rb * (rb * rb - ra * ra) / den
    dm = T(2) * _sign(m, T) * ra * (ra * ra - rb * rb) / den
    scale = u / hi
    return (dv * scale if dv != 0 else T(0)), (dm * scale if dm != 0 else T(0))


@njit(inline="always", **_JIT)
def _window_stats(x, nc, lo1, hi1, lo2, hi2, lo3, hi3, method, T):
    """Forward quantities of one clipped window.

    Returns (count, mean, max, zD, yD, zM, yM, dmin, zI, yI): the softmax
    normalisers and outputs of eDSCW, eM and IDW (each only where the method
    needs it), with IDW's weights scaled by the smallest distance dmin so that
    they stay in [0, 1].
    """
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    need_i = method == IDW
    count = (hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3)
    total = T(0)
    vmax = -T(np.inf)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                v = x[nc, i1, i2, i3]
                total += v
                if v > vmax:
                    vmax = v
    mean = total / T(count)
    zD = T(0)
    sD = T(0)
    zM = T(0)
    sM = T(0)
    dmin = T(np.inf)
    if need_d or need_m:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    v = x[nc, i1, i2, i3]
                    if need_d:
                        e = _exp(_dsc(v, mean, T))
                        zD += e
                        sD += e * v
                    if need_m:
                        e = _exp(v - vmax)
                        zM += e
                        sM += e * v
    zI = T(0)
    yI = T(0)
    if need_i:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    dist = abs(x[nc, i1, i2, i3] - mean)
                    if dist < dmin:
                        dmin = dist
        if dmin == 0:
            yI = mean
        else:
            sI = T(0)
            for i1 in range(lo1, hi1):
                for i2 in range(lo2, hi2):
                    for i3 in range(lo3, hi3):
                        v = x[nc, i1, i2, i3]
                        e = dmin / abs(v - mean)
                        zI += e
                        sI += e * v
            yI = sI / zI
    return count, mean, vmax, zD, sD / zD, zM, sM / zM, dmin, zI, yI


@njit(inline="always", **_JIT)
def _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T):
    """(beta value, clamp(beta, 0, 1)) for one output cell."""
    n = nc // C
    c = nc - n * C
    b = beta[n * bstr[0] + c * bstr[1] + o1 * bstr[2] + o2 * bstr[3] + o3 * bstr[4]]
    bc = b
    if bc < 0:
        bc = T(0)
    if bc > 1:
        bc = T(1)
    return b, bc


@njit(inline="always", **_JIT)
def _idw_weight(v, mean, dmin, zI, T):
    """IDW weight of one cell; equal shares among zero-distance cells when dmin == 0
    (the caller divides by their count)."""
    dist = abs(v - mean)
    if dmin == 0:
        return T(1) if dist == 0 else T(0)
    return (dmin / dist) / zI


@njit(inline="always", **_JIT)
def _forward_window(x, beta, bstr, C, nc, o1, o2, o3, st1, lo1, hi1, st2, lo2, hi2, k3, s3, p3, L3,
                    method, y, mask, want_mask, T):
    """One output cell (and its mask) the plain way: edge windows and IDW."""
    st3, lo3, hi3 = _bounds(o3, k3, s3, p3, L3)
    count, mean, vmax, zD, yD, zM, yM, dmin, zI, yI = _window_stats(
        x, nc, lo1, hi1, lo2, hi2, lo3, hi3, method, T)
    bc = T(0)
    if method == ADA:
        _, bc = _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T)
        y[nc, o1, o2, o3] = bc * yD + (T(1) - bc) * yM
    elif method == EDSCW:
        y[nc, o1, o2, o3] = yD
    elif method == EM:
        y[nc, o1, o2, o3] = yM
    else:
        y[nc, o1, o2, o3] = yI
    if want_mask:
        nzero = T(0)
        if method == IDW and dmin == 0:
            for i1 in range(lo1, hi1):
                for i2 in range(lo2, hi2):
                    for i3 in range(lo3, hi3):
                        if x[nc, i1, i2, i3] - mean == 0:
                            nzero += T(1)
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    v = x[nc, i1, i2, i3]
                    if method == IDW:
                        w = _idw_weight(v, mean, dmin, zI, T)
                        if dmin == 0:
                            w = w / nzero
                    else:
                        wD = _exp(_dsc(v, mean, T)) / zD if method != EM else T(0)
                        wM = _exp(v - vmax) / zM if method != EDSCW else T(0)
                        if method == ADA:
                            w = bc * wD + (T(1) - bc) * wM
                        elif method == EDSCW:
                            w = wD
                        else:
                            w = wM
                    mask[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3] = w


@njit(inline="always", **_JIT)
def _window_backward(x, gx, g, nc, lo1, hi1, lo2, hi2, lo3, hi3, method, exact, bc, T):
    """Add window's gradient g * dy/dx to gx; returns yD - yM (for beta's gradient).

    Exact mode, with w = softmax(z) and y = sum w_i x_i: dy/dz_k = w_k (x_k - y).
    eM: z = x.  eDSCW: z_k = dsc(x_k, mean).  IDW: z_k = -log|x_k - mean|.
    The mean's share is gathered in a first pass (``via_mean``) and spread
    equally over the window.  Paper mode: g * w_i, weights held constant.
    """
    count, mean, vmax, zD, yD, zM, yM, dmin, zI, yI = _window_stats(
        x, nc, lo1, hi1, lo2, hi2, lo3, hi3, method, T)
    gD = T(0)
    gM = T(0)
    gI = T(0)
    if method == ADA:
        gD = g * bc
        gM = g * (T(1) - bc)
    elif method == EDSCW:
        gD = g
    elif method == EM:
        gM = g
    else:
        gI = g
    # Select by method, not by the value of g, so that 0 * NaN stays NaN.
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    need_i = method == IDW
    idw_mean_only = need_i and dmin == 0
    nzero = T(0)
    via_mean = T(0)
    if exact and not idw_mean_only:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    v = x[nc, i1, i2, i3]
                    if need_d:
                        wD = _exp(_dsc(v, mean, T)) / zD
                        _, d_dm = _dsc_partials(v, mean, v - yD, T)
                        via_mean += gD * wD * d_dm
                    if need_i:
                        wI = _idw_weight(v, mean, dmin, zI, T)
                        # -d(-log|v - mean|)/d mean = 1 / (v - mean)
                        via_mean += gI * wI * (v - yI) / (v - mean)
        via_mean = via_mean / T(count)
    if idw_mean_only and not exact:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    if x[nc, i1, i2, i3] - mean == 0:
                        nzero += T(1)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                v = x[nc, i1, i2, i3]
                grad = via_mean
                if need_d:
                    wD = _exp(_dsc(v, mean, T)) / zD
                    grad += gD * wD
                    if exact:
                        d_dv, _ = _dsc_partials(v, mean, v - yD, T)
                        grad += gD * wD * d_dv
                if need_m:
                    wM = _exp(v - vmax) / zM
                    # 1 + (v - yM), not (1 + v) - yM: for |v| >> 1 the 1 would be lost.
                    grad += gM * wM * (T(1) + (v - yM)) if exact else gM * wM
                if need_i:
                    if idw_mean_only:
                        if exact:
                            grad += gI / T(count)
                        elif v - mean == 0:
                            grad += gI / nzero
                    else:
                        wI = _idw_weight(v, mean, dmin, zI, T)
                        grad += gI * wI
                        if exact:
                            grad -= gI * wI * (v - yI) / (v - mean)
                gx[nc, i1, i2, i3] += grad
    return yD - yM


@njit(parallel=True, **_JIT)
def pool_forward(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask):
    """y[nc, o] = pooled window o of x[nc]; mask[nc, o, k] = cell weights if want_mask.

    The general kernel: window by window, any geometry, method and dtype.
    """
    T = x.dtype.type
    NC, L1, L2, L3 = x.shape
    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    for row in prange(NC * O1 * O2):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        st1, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
        st2, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
        for o3 in range(O3):
            _forward_window(x, beta, bstr, C, nc, o1, o2, o3, st1, lo1, hi1, st2, lo2, hi2,
                            k3, s3, p3, L3, method, y, mask, want_mask, T)


@njit(inline="always", **_JIT)
def _backward_window(x, gy, beta, bstr, C, gx, gb, nc, o1, o2, o3, lo1, hi1, lo2, hi2, k3, s3, p3, L3,
                     method, exact, T):
    """One window's gradient the plain way (edge windows and IDW), and beta's."""
    _, lo3, hi3 = _bounds(o3, k3, s3, p3, L3)
    g = gy[nc, o1, o2, o3]
    b = T(0)
    bc = T(0)
    if method == ADA:
        b, bc = _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T)
    diff = _window_backward(x, gx, g, nc, lo1, hi1, lo2, hi2, lo3, hi3, method, exact, bc, T)
    if method == ADA:
        # Outside [0, 1] the clamp is flat (0); a NaN beta stays NaN.
        gb[nc, o1, o2, o3] = g * diff if (b >= 0 and b <= 1) else (b if b != b else T(0))


@njit(inline="always", **_JIT)
def _phase_count(k, s):
    """How many consecutive windows can share an input cell along one dim."""
    return (k + s - 1) // s


@njit(inline="always", **_JIT)
def _phase_size(n_out, ph, c):
    """How many of the output indices ph, ph + c, ph + 2c, ... lie below n_out."""
    return (n_out - ph + c - 1) // c


@njit(inline="always", **_JIT)
def _phase_row(row, ph1, ph2, c1, c2, n1, n2):
    """(nc, o1, o2) of the row-th row of phase class (ph1, ph2)."""
    return row // (n1 * n2), ph1 + ((row // n2) % n1) * c1, ph2 + (row % n2) * c2


@njit(parallel=True, **_JIT)
def pool_backward(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb):
    """gx += dL/dx (gx must be zeroed); gb[nc, o] = dL/dbeta before reduction (ADA only).

    The general kernel, window by window, in phase classes over all three dims.
    """
    T = x.dtype.type
    NC, L1, L2, L3 = x.shape
    O1, O2, O3 = gy.shape[1], gy.shape[2], gy.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    c1 = _phase_count(k1, s1)
    c2 = _phase_count(k2, s2)
    c3 = _phase_count(k3, s3)
    for ph1 in range(c1):
        n1 = _phase_size(O1, ph1, c1)
        for ph2 in range(c2):
            n2 = _phase_size(O2, ph2, c2)
            for ph3 in range(c3):
                for row in prange(NC * n1 * n2):
                    nc, o1, o2 = _phase_row(row, ph1, ph2, c1, c2, n1, n2)
                    _, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
                    _, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
                    for o3 in range(ph3, O3, c3):
                        _backward_window(x, gy, beta, bstr, C, gx, gb, nc, o1, o2, o3, lo1, hi1, lo2, hi2,
                                         k3, s3, p3, L3, method, exact, T)


# ---------------------------------------------------------------------------
# Row kernels (float32, the common last-axis windows).  A thread owns whole
# output rows (nc, o1, o2) and computes all interior windows of a row (those
# entirely inside the input along the last axis) together, in passes over
# the row: each pass loops over the windows o with the few cells of a window
# innermost and unrolled, so LLVM vectorises across windows (lanes = windows:
# no reassociation, each window sums its cells in the order of
# ``_window_stats``).  Per-window values live in the rows of the scratch
# ``st`` (a few floats per window).  Edge windows take the per-window path.
# ---------------------------------------------------------------------------

_TOT, _MAX, _MEAN, _ZD, _SD, _ZM, _SM, _GD, _GM, _VM = range(10)
_N_STATS = 10


@njit(inline="always", **_JIT)
def _interior(k, s, p, length, n_out):
    """[a, b): output indices whose window [o*s - p, o*s - p + k) lies inside [0, length)."""
    a = (p + s - 1) // s
    b = (length + p - k) // s + 1
    if b > n_out:
        b = n_out
    if b < a:
        b = a
    return a, b


@njit(inline="always", **_JIT)
def _row_stats(x, nc, lo1, hi1, lo2, hi2, col0, n, K3, S3, need_d, need_m, st, T):
    """Mean, max, softmax normalisers and weighted sums of windows o < n of one row;
    window o covers columns col0 + o*S3 + [0, K3).  Returns the cell count."""
    # One 1-D view per statistic keeps each inner loop's memory streams simple
    # enough for LLVM's vectoriser.
    st_tot, st_max, st_mean = st[_TOT], st[_MAX], st[_MEAN]
    st_zd, st_sd, st_zm, st_sm = st[_ZD], st[_SD], st[_ZM], st[_SM]
    for o in range(n):
        st_tot[o] = T(0)
        st_max[o] = -T(np.inf)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for o in range(n):
                base = o * S3
                tot = st_tot[o]
                vmax = st_max[o]
                for j in range(K3):
                    v = xr[base + j]
                    tot += v
                    vmax = v if v > vmax else vmax
                st_tot[o] = tot
                st_max[o] = vmax
    count = (hi1 - lo1) * (hi2 - lo2) * K3
    for o in range(n):
        st_mean[o] = st_tot[o] / T(count)
        st_zd[o] = T(0)
        st_sd[o] = T(0)
        st_zm[o] = T(0)
        st_sm[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            if need_d:
                for o in range(n):
                    base = o * S3
                    mean = st_mean[o]
                    z = st_zd[o]
                    sw = st_sd[o]
                    for j in range(K3):
                        v = xr[base + j]
                        e = _exp(_dsc(v, mean, T))
                        z += e
                        sw += e * v
                    st_zd[o] = z
                    st_sd[o] = sw
            if need_m:
                for o in range(n):
                    base = o * S3
                    vmax = st_max[o]
                    z = st_zm[o]
                    sw = st_sm[o]
                    for j in range(K3):
                        v = xr[base + j]
                        e = _exp(v - vmax)
                        z += e
                        sw += e * v
                    st_zm[o] = z
                    st_sm[o] = sw
    return count


@njit(inline="always", **_JIT)
def _row_forward(x, beta, bstr, C, nc, o1, o2, st1, lo1, hi1, st2, lo2, hi2, oa, n, p3, K3, S3,
                 method, y, mask, want_mask, st, T):
    """Outputs (and masks) of the interior windows oa .. oa+n-1 of one row."""
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    col0 = oa * S3 - p3
    _row_stats(x, nc, lo1, hi1, lo2, hi2, col0, n, K3, S3, need_d, need_m, st, T)
    for o in range(n):
        o3 = oa + o
        yD = st[_SD, o] / st[_ZD, o]
        yM = st[_SM, o] / st[_ZM, o]
        if method == ADA:
            _, bc = _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T)
            y[nc, o1, o2, o3] = bc * yD + (T(1) - bc) * yM
            st[_GD, o] = bc  # kept for the mask
        elif method == EDSCW:
            y[nc, o1, o2, o3] = yD
        else:
            y[nc, o1, o2, o3] = yM
    if want_mask:
        for o in range(n):
            o3 = oa + o
            bc = st[_GD, o]
            mean = st[_MEAN, o]
            vmax = st[_MAX, o]
            for i1 in range(lo1, hi1):
                for i2 in range(lo2, hi2):
                    for j in range(K3):
                        v = x[nc, i1, i2, col0 + o * S3 + j]
                        wD = _exp(_dsc(v, mean, T)) / st[_ZD, o] if method != EM else T(0)
                        wM = _exp(v - vmax) / st[_ZM, o] if method != EDSCW else T(0)
                        if method == ADA:
                            w = bc * wD + (T(1) - bc) * wM
                        elif method == EDSCW:
                            w = wD
                        else:
                            w = wM
                        mask[nc, o1, o2, o3, i1 - st1, i2 - st2, j] = w


@njit(inline="always", **_JIT)
def _row_chunk(chunk, n_chunks, n_rows):
    """[r0, r1): the rows of one chunk of an even split."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks


@njit(inline="always", **_JIT)
def _row_backward(x, gy, beta, bstr, C, gx, gb, nc, o1, o2, lo1, hi1, lo2, hi2, oa, n, p3, K3, S3,
                  method, exact, st, T):
    """``_window_backward`` for the interior windows oa .. oa+n-1 of one row, in passes.

    The cell gradients are added to gx one kernel column j at a time, j
    descending: within a j the windows write distinct cells (vectorisable),
    and each cell receives its windows' terms in ascending o3 order.
    """
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    col0 = oa * S3 - p3
    count = _row_stats(x, nc, lo1, hi1, lo2, hi2, col0, n, K3, S3, need_d, need_m, st, T)
    st_mean, st_max, st_vm = st[_MEAN], st[_MAX], st[_VM]
    st_zd, st_sd, st_zm, st_sm = st[_ZD], st[_SD], st[_ZM], st[_SM]
    st_gd, st_gm = st[_GD], st[_GM]
    for o in range(n):
        o3 = oa + o
        g = gy[nc, o1, o2, o3]
        st_sd[o] = st_sd[o] / st_zd[o]  # yD from here on
        st_sm[o] = st_sm[o] / st_zm[o]  # yM
        if method == ADA:
            b, bc = _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T)
            st_gd[o] = g * bc
            st_gm[o] = g * (T(1) - bc)
            gb[nc, o1, o2, o3] = g * (st_sd[o] - st_sm[o]) if (b >= 0 and b <= 1) else (b if b != b else T(0))
        elif method == EDSCW:
            st_gd[o] = g
        else:
            st_gm[o] = g
        st_vm[o] = T(0)
    st_yd, st_ym = st_sd, st_sm
    if exact and need_d:
        # The mean's share of the gradient, spread equally over the window.
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                xr = x[nc, i1, i2, col0:]
                for o in range(n):
                    base = o * S3
                    mean = st_mean[o]
                    zd = st_zd[o]
                    yd = st_yd[o]
                    gd = st_gd[o]
                    vm = st_vm[o]
                    for j in range(K3):
                        v = xr[base + j]
                        wD = _exp(_dsc(v, mean, T)) / zd
                        _, d_dm = _dsc_partials(v, mean, v - yd, T)
                        vm += gd * wD * d_dm
                    st_vm[o] = vm
        for o in range(n):
            st_vm[o] = st_vm[o] / T(count)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            gxr = gx[nc, i1, i2, col0:]
            for jj in range(K3):
                j = K3 - 1 - jj
                for o in range(n):
                    col = o * S3 + j
                    v = xr[col]
                    grad = st_vm[o]
                    if need_d:
                        gd = st_gd[o]
                        wD = _exp(_dsc(v, st_mean[o], T)) / st_zd[o]
                        grad += gd * wD
                        if exact:
                            d_dv, _ = _dsc_partials(v, st_mean[o], v - st_yd[o], T)
                            grad += gd * wD * d_dv
                    if need_m:
                        gm = st_gm[o]
                        wM = _exp(v - st_max[o]) / st_zm[o]
                        grad += gm * wM * (T(1) + (v - st_ym[o])) if exact else gm * wM
                    gxr[col] += grad


@njit(inline="always", **_JIT)
def _forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, K3, S3):
    """Output rows r0 .. r1-1 of the row kernel's forward."""
    T = x.dtype.type
    NC, L1, L2, L3 = x.shape
    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    oa, ob = _interior(K3, S3, p3, L3, O3)
    n = ob - oa
    st = np.empty((_N_STATS, n), dtype=x.dtype)
    for row in range(r0, r1):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        st1, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
        st2, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
        if n > 0:
            _row_forward(x, beta, bstr, C, nc, o1, o2, st1, lo1, hi1, st2, lo2, hi2, oa, n, p3,
                         K3, S3, method, y, mask, want_mask, st, T)
        for o3 in range(O3):
            if o3 < oa or o3 >= ob:
                _forward_window(x, beta, bstr, C, nc, o1, o2, o3, st1, lo1, hi1, st2, lo2, hi2,
                                K3, S3, p3, L3, method, y, mask, want_mask, T)


@njit(inline="always", **_JIT)
def _backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                    ph1, ph2, n1, n2, r0, r1, K3, S3):
    """Rows r0 .. r1-1 of phase class (ph1, ph2) of the row kernel's backward."""
    T = x.dtype.type
    NC, L1, L2, L3 = x.shape
    O1, O2, O3 = gy.shape[1], gy.shape[2], gy.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    c1 = _phase_count(k1, s1)
    c2 = _phase_count(k2, s2)
    oa, ob = _interior(K3, S3, p3, L3, O3)
    n = ob - oa
    st = np.empty((_N_STATS, n), dtype=x.dtype)
    for row in range(r0, r1):
        nc, o1, o2 = _phase_row(row, ph1, ph2, c1, c2, n1, n2)
        _, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
        _, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
        for o3 in range(O3):
            if o3 == oa and n > 0:
                _row_backward(x, gy, beta, bstr, C, gx, gb, nc, o1, o2, lo1, hi1, lo2, hi2,
                              oa, n, p3, K3, S3, method, exact, st, T)
            if o3 < oa or o3 >= ob:
                _backward_window(x, gy, beta, bstr, C, gx, gb, nc, o1, o2, o3, lo1, hi1,
                                 lo2, hi2, K3, S3, p3, L3, method, exact, T)


# (window width, stride) along the last axis that get row kernels: the
# common 2x2/2 and 3x3/2 poolings.  Each is a compile-time specialisation of
# the same code (literal arguments to the inlined chunk functions).
_ROW_CASES = ((2, 2), (3, 2))


@njit(**_JIT)
def _forward_rows_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1):
    # A plain function called from the parallel loop, not inlined into it:
    # LLVM vectorises the row passes better here than in Numba's parfor body
    # (measured 1.5x).
    if kernel[2] == 2:
        _forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, 2, 2)
    else:
        _forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, 3, 2)


@njit(**_JIT)
def _backward_rows_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                         ph1, ph2, n1, n2, r0, r1):
    if kernel[2] == 2:
        _backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                        ph1, ph2, n1, n2, r0, r1, 2, 2)
    else:
        _backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                        ph1, ph2, n1, n2, r0, r1, 3, 2)


@njit(parallel=True, **_JIT)
def pool_forward_rows(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, n_chunks):
    """pool_forward for a last-axis (kernel, stride) in _ROW_CASES and any method but
    IDW: the row passes for interior windows, per-window code for edge windows."""
    n_rows = y.shape[0] * y.shape[1] * y.shape[2]
    n_ch = min(n_rows, n_chunks)
    for chunk in prange(n_ch):
        r0, r1 = _row_chunk(chunk, n_ch, n_rows)
        _forward_rows_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1)


@njit(parallel=True, **_JIT)
def pool_backward_rows(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, n_chunks):
    """pool_backward for the cases of pool_forward_rows.

    A thread owns whole output rows (nc, o1, o2), so windows overlapping
    along the last axis need no phases; rows are visited in phase classes
    over (o1, o2) only.  Each cell receives its windows' terms in ascending
    o3 order within a row.
    """
    O1, O2 = gy.shape[1], gy.shape[2]
    c1 = _phase_count(kernel[0], stride[0])
    c2 = _phase_count(kernel[1], stride[1])
    for ph1 in range(c1):
        n1 = _phase_size(O1, ph1, c1)
        for ph2 in range(c2):
            n2 = _phase_size(O2, ph2, c2)
            n_rows = gy.shape[0] * n1 * n2
            n_ch = min(n_rows, n_chunks)
            for chunk in prange(n_ch):
                r0, r1 = _row_chunk(chunk, n_ch, n_rows)
                _backward_rows_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                                     ph1, ph2, n1, n2, r0, r1)


def _row_kernels(x3, geom, method):
    """The row kernels for this problem, or None for the general kernels.

    Row kernels serve float32 (their exp vectorises; float64 keeps libm's
    scalar exp, where rows gain little) and every method but IDW.
    """
    if x3.dtype != np.float32 or method == IDW:
        return None
    if (geom.kernel[2], geom.stride[2]) not in _ROW_CASES:
        return None
    return pool_forward_rows, pool_backward_rows


@njit(parallel=True, **_JIT)
def unpool_forward(y, w, kernel, stride, padding, by_window, out):
    """out[nc, i] += y[r] * w[r, i] for every window r containing i (adaUnPool; out zeroed).

    by_window (normalize='window'): each term times its window's cell count;
    the caller divides by the number of windows covering each cell.  Scatters
    window by window in phase classes, like
    ``pool_backward``: no two threads write one cell, and every cell adds its
    terms in the same order whatever the thread count.
    """
    T = y.dtype.type
    NC, L1, L2, L3 = out.shape
    O1, O2, O3 = y.shape[1], y.shape[2], y.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    c1 = _phase_count(k1, s1)
    c2 = _phase_count(k2, s2)
    c3 = _phase_count(k3, s3)
    for ph1 in range(c1):
        n1 = _phase_size(O1, ph1, c1)
        for ph2 in range(c2):
            n2 = _phase_size(O2, ph2, c2)
            for ph3 in range(c3):
                for row in prange(NC * n1 * n2):
                    nc, o1, o2 = _phase_row(row, ph1, ph2, c1, c2, n1, n2)
                    st1, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
                    st2, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
                    for o3 in range(ph3, O3, c3):
                        st3, lo3, hi3 = _bounds(o3, k3, s3, p3, L3)
                        v = y[nc, o1, o2, o3]
                        if by_window:
                            v = v * T((hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3))
                        for i1 in range(lo1, hi1):
                            for i2 in range(lo2, hi2):
                                for i3 in range(lo3, hi3):
                                    out[nc, i1, i2, i3] += v * w[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3]


@njit(parallel=True, **_JIT)
def unpool_backward(g, w, kernel, stride, padding, by_window, gy):
    """gy[nc, o] = sum over cells i of window o of g[i] * w[o, i]; the weights are held constant.

    by_window (normalize='window'): times the window's cell count; the caller
    has divided g by the number of windows covering each cell."""
    T = g.dtype.type
    NC, L1, L2, L3 = g.shape
    O1, O2, O3 = gy.shape[1], gy.shape[2], gy.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    for row in prange(NC * O1 * O2):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        st1, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
        st2, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
        for o3 in range(O3):
            st3, lo3, hi3 = _bounds(o3, k3, s3, p3, L3)
            acc = T(0)
            for i1 in range(lo1, hi1):
                for i2 in range(lo2, hi2):
                    for i3 in range(lo3, hi3):
                        acc += g[nc, i1, i2, i3] * w[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3]
            if by_window:
                acc = acc * T((hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3))
            gy[nc, o1, o2, o3] = acc


def _n_chunks():
    """Row chunks per kernel launch: a few per thread (read here, not in the
    kernel: numba.get_num_threads() inside a kernel defeats its disk cache)."""
    return 4 * numba.get_num_threads()


# ---------------------------------------------------------------------------
# Backend interface: pure functions on canonical, contiguous arrays of the
# compute dtype.  ``_ops`` converts, validates and reshapes; the CUDA backend
# offers the same four functions.
# ---------------------------------------------------------------------------

_WORKQUEUE_LOCK = threading.Lock()


def _launch(kernel, *args):
    """Run a parallel kernel.  Numba's fallback threading layer (workqueue,
    used where neither TBB nor OpenMP is installed) aborts the process when
    two Python threads enter parallel code at once, so launches are
    serialised there; with tbb/omp they run concurrently."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel launch yet: the layer is not chosen
        layer = None
    if layer in ("tbb", "omp"):
        return kernel(*args)
    with _WORKQUEUE_LOCK:
        return kernel(*args)


def forward(x3, beta_flat, bstr, geom, method, want_mask):
    """(y3, mask3 or None) for x3 of shape geom.in_shape3."""
    y3 = np.empty(geom.out_shape3, dtype=x3.dtype)
    mask3 = np.zeros(geom.mask_shape3 if want_mask else (0,) * 7, dtype=x3.dtype)
    args = (x3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, y3, mask3, want_mask)
    rows = _row_kernels(x3, geom, method)
    if rows is None:
        _launch(pool_forward, *args)
    else:
        _launch(rows[0], *args, _n_chunks())
    return y3, (mask3 if want_mask else None)


def backward(x3, gy3, beta_flat, bstr, geom, method, exact):
    """(gx3, gb3) where gb3 (ADA only, else None) is dL/dbeta per output cell."""
    gx3 = np.zeros(geom.in_shape3, dtype=x3.dtype)
    gb3 = np.empty(geom.out_shape3 if method == ADA else (0, 0, 0, 0), dtype=x3.dtype)
    args = (x3, gy3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, exact, gx3, gb3)
    rows = _row_kernels(x3, geom, method)
    if rows is None:
        _launch(pool_backward, *args)
    else:
        _launch(rows[1], *args, _n_chunks())
    return gx3, (gb3 if method == ADA else None)


@functools.lru_cache(maxsize=16)
def _cover(geom, dtype):
    """(D1, D2, D3) array: how many windows contain each cell, 1 where none does;
    None where windows never overlap (nothing to divide).  Cached: read only."""
    c1, c2, c3 = cover_counts(geom)
    if max(c1.max(), c2.max(), c3.max()) <= 1:
        return None
    cover = np.maximum(c1[:, None, None] * c2[None, :, None] * c3[None, None, :], 1).astype(dtype)
    cover.flags.writeable = False
    return cover


def unpool(y3, w3, geom, by_window):
    out3 = np.zeros(geom.in_shape3, dtype=y3.dtype)  # cells no window covers stay 0
    _launch(unpool_forward, y3, w3, geom.kernel, geom.stride, geom.padding, by_window, out3)
    cover = _cover(geom, out3.dtype) if by_window else None
    if cover is not None:
        out3 /= cover
    return out3


def unpool_grad(g3, w3, geom, by_window):
    gy3 = np.empty(geom.out_shape3, dtype=g3.dtype)
    cover = _cover(geom, g3.dtype) if by_window else None
    if cover is not None:
        g3 = g3 / cover
    _launch(unpool_backward, g3, w3, geom.kernel, geom.stride, geom.padding, by_window, gy3)
    return gy3
