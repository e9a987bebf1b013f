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

Outputs are allocated by the caller (``_ops``) and passed in; kernels never
allocate.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

from ._geometry import compute_dtype as array_dtype  # the dtype kernels take arrays in: half types as float32
from ._geometry import cover_counts
from ._methods import ADA, EDSCW, EM, IDW

# error_model="numpy": float division by zero gives inf/nan (IEEE) instead of raising.
xp = np  # the array module of this backend

_JIT = dict(cache=True, nogil=True, error_model="numpy")


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
def _dsc_partials(v, m, T):
    """(d dsc / d v, d dsc / d m); zero at v = m = 0 and d|u|/du = 0 at u = 0.

    d/dv = 2 sgn(v) |m| (m^2 - v^2) / (v^2 + m^2)^2, symmetric in (v, m);
    scaled by max(|v|, |m|) like ``_dsc``.
    """
    a = abs(v)
    b = abs(m)
    hi = a if a >= b else b
    if hi == 0:
        return T(0), T(0)
    ra = a / hi
    rb = b / hi
    den = ra * ra + rb * rb
    den = den * den * hi
    return (T(2) * _sign(v, T) * rb * (rb * rb - ra * ra) / den,
            T(2) * _sign(m, T) * ra * (ra * ra - rb * rb) / den)


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
                        e = math.exp(_dsc(v, mean, T))
                        zD += e
                        sD += e * v
                    if need_m:
                        e = math.exp(v - vmax)
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


@njit(parallel=True, **_JIT)
def pool_forward(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask):
    """y[nc, o] = pooled window o of x[nc]; mask[nc, o, k] = cell weights if want_mask."""
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
                                wD = math.exp(_dsc(v, mean, T)) / zD if method != EM else T(0)
                                wM = math.exp(v - vmax) / zM if method != EDSCW else T(0)
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
                        wD = math.exp(_dsc(v, mean, T)) / zD
                        _, d_dm = _dsc_partials(v, mean, T)
                        via_mean += gD * wD * (v - yD) * d_dm
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
                    wD = math.exp(_dsc(v, mean, T)) / zD
                    grad += gD * wD
                    if exact:
                        d_dv, _ = _dsc_partials(v, mean, T)
                        grad += gD * wD * (v - yD) * d_dv
                if need_m:
                    wM = math.exp(v - vmax) / zM
                    grad += gM * wM * (T(1) + v - yM) if exact else gM * wM
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
def pool_backward(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb):
    """gx += dL/dx (gx must be zeroed); gb[nc, o] = dL/dbeta before reduction (ADA only)."""
    T = x.dtype.type
    NC, L1, L2, L3 = x.shape
    O1, O2, O3 = gy.shape[1], gy.shape[2], gy.shape[3]
    k1, k2, k3 = kernel
    s1, s2, s3 = stride
    p1, p2, p3 = padding
    c1 = (k1 + s1 - 1) // s1
    c2 = (k2 + s2 - 1) // s2
    c3 = (k3 + s3 - 1) // s3
    for ph1 in range(c1):
        n1 = (O1 - ph1 + c1 - 1) // c1
        for ph2 in range(c2):
            n2 = (O2 - ph2 + c2 - 1) // c2
            for ph3 in range(c3):
                for row in prange(NC * n1 * n2):
                    nc = row // (n1 * n2)
                    o1 = ph1 + ((row // n2) % n1) * c1
                    o2 = ph2 + (row % n2) * c2
                    _, lo1, hi1 = _bounds(o1, k1, s1, p1, L1)
                    _, lo2, hi2 = _bounds(o2, k2, s2, p2, L2)
                    for o3 in range(ph3, O3, c3):
                        _, lo3, hi3 = _bounds(o3, k3, s3, p3, L3)
                        g = gy[nc, o1, o2, o3]
                        b = T(0)
                        bc = T(0)
                        if method == ADA:
                            b, bc = _clamped_beta(beta, bstr, nc, C, o1, o2, o3, T)
                        diff = _window_backward(x, gx, g, nc, lo1, hi1, lo2, hi2, lo3, hi3,
                                                method, exact, bc, T)
                        if method == ADA:
                            gb[nc, o1, o2, o3] = g * diff if (b >= 0 and b <= 1) else T(0)


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
    c1 = (k1 + s1 - 1) // s1
    c2 = (k2 + s2 - 1) // s2
    c3 = (k3 + s3 - 1) // s3
    for ph1 in range(c1):
        n1 = (O1 - ph1 + c1 - 1) // c1
        for ph2 in range(c2):
            n2 = (O2 - ph2 + c2 - 1) // c2
            for ph3 in range(c3):
                for row in prange(NC * n1 * n2):
                    nc = row // (n1 * n2)
                    o1 = ph1 + ((row // n2) % n1) * c1
                    o2 = ph2 + (row % n2) * c2
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


# ---------------------------------------------------------------------------
# Backend interface: pure functions on canonical, contiguous arrays of the
# compute dtype.  ``_ops`` converts, validates and reshapes; the CUDA backend
# offers the same four functions.
# ---------------------------------------------------------------------------

def forward(x3, beta_flat, bstr, geom, method, want_mask):
    """(y3, mask3 or None) for x3 of shape geom.in_shape3."""
    y3 = np.empty(geom.out_shape3, dtype=x3.dtype)
    mask3 = np.zeros(geom.mask_shape3 if want_mask else (0,) * 7, dtype=x3.dtype)
    pool_forward(x3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding,
                 method, y3, mask3, want_mask)
    return y3, (mask3 if want_mask else None)


def backward(x3, gy3, beta_flat, bstr, geom, method, exact):
    """(gx3, gb3) where gb3 (ADA only, else None) is dL/dbeta per output cell."""
    gx3 = np.zeros(geom.in_shape3, dtype=x3.dtype)
    gb3 = np.empty(geom.out_shape3 if method == ADA else (0, 0, 0, 0), dtype=x3.dtype)
    pool_backward(x3, gy3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding,
                  method, exact, gx3, gb3)
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
    unpool_forward(y3, w3, geom.kernel, geom.stride, geom.padding, by_window, out3)
    cover = _cover(geom, out3.dtype) if by_window else None
    if cover is not None:
        out3 /= cover
    return out3


def unpool_grad(g3, w3, geom, by_window):
    gy3 = np.empty(geom.out_shape3, dtype=g3.dtype)
    cover = _cover(geom, g3.dtype) if by_window else None
    if cover is not None:
        g3 = g3 / cover
    unpool_backward(g3, w3, geom.kernel, geom.stride, geom.padding, by_window, gy3)
    return gy3
