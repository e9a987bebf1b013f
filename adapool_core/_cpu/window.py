"""Per-cell formulas and window statistics, shared by the general and the row kernels.

Each formula is written once here and once in ``cuda/adapool.cu``, under the
same name (``dsc``, ``dsc_partials``, ``dscw_score``, ``em_score``,
``cell_weight``, ``blend``, ``idw_weight``, ``window_stats``,
``zero_distance_count``, ``clamped_beta``, ``split_grad``,
``add_dscw_grad``, ``add_dscw_mean_grad``, ``add_em_grad``,
``add_idw_grad``, ``add_idw_mean_grad``, ``beta_grad``) and in the same
order of floating-point operations; docs/math.md derives them.  Gradient
helpers take the running sum and return it with their terms added, so the
additions happen in the order the kernels always used.

``T`` is the scalar type of the arrays (float32 or float64): constants are
made in it so float32 kernels stay in float32.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import literally, njit

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT, binade_scale, exp_c, exp_unit

# The canonical 3-D geometry inside the kernels (CUDA's Geometry): 3-tuples
# of input size L, output size O, kernel k, stride s, padding p.
Geometry = namedtuple("Geometry", ("L", "O", "k", "s", "p"))
# beta read as if broadcast to (N, C, O1, O2, O3): element strides, 0 on broadcast dims.
BetaView = namedtuple("BetaView", ("values", "strides", "channels"))
# Window of one output cell clipped to the input (CUDA's Window): cells
# lo <= i < hi, first (possibly negative, in the padding) index start.
Window = namedtuple("Window", ("start", "lo", "hi"))
# Forward quantities of one clipped window (CUDA's Stats): the cell count and
# mean, the max, the softmax normalisers and outputs of eDSCW (zD, yD), eM
# (zM, yM) and IDW (zI, yI; weights scaled by the smallest distance dmin).
# Each only where the method needs it.
Stats = namedtuple("Stats", ("count", "mean", "vmax", "zD", "yD", "zM", "yM", "dmin", "zI", "yI"))
# One row of PoolGeometry.phase_classes: output indices o_d = phase_d + q * step_d, q < size_d.
PhaseClass = namedtuple("PhaseClass", ("phase", "step", "size"))


@njit(inline="always", **JIT)
def phase_class(table, i):
    """Row i of a phase-class table (PoolGeometry.phase_classes) as a PhaseClass."""
    return PhaseClass((table[i, 0], table[i, 1], table[i, 2]), (table[i, 3], table[i, 4], table[i, 5]),
                      (table[i, 6], table[i, 7], table[i, 8]))


@njit(inline="always", **JIT)
def phase_row(row, pc):
    """(nc, o1, o2) of the row-th output row (nc, o1, o2) of phase class pc."""
    n1, n2 = pc.size[0], pc.size[1]
    return row // (n1 * n2), pc.phase[0] + ((row // n2) % n1) * pc.step[0], pc.phase[1] + (row % n2) * pc.step[1]


@njit(inline="always", **JIT)
def geometry(x_shape, y_shape, kernel, stride, padding):
    """The kernels' Geometry from the input and output shapes and the window arguments."""
    return Geometry((x_shape[1], x_shape[2], x_shape[3]), (y_shape[1], y_shape[2], y_shape[3]),
                    kernel, stride, padding)


@njit(inline="always", **JIT)
def bounds(o, k, s, p, length, n_out):
    """Start of window ``o`` along one dim (may be negative) and its clipped [lo, hi).

    Stride 0 marks an adaptive dim (``PoolGeometry.adaptive``): window ``o`` is
    ``[floor(o*L/O), ceil((o+1)*L/O))``, PyTorch's adaptive rule."""
    if s == 0:
        a = (o * length) // n_out
        return a, a, -((-(o + 1) * length) // n_out)
    start = o * s - p
    lo = start if start > 0 else 0
    hi = start + k
    if hi > length:
        hi = length
    return start, lo, hi


@njit(inline="always", **JIT)
def window(g, o1, o2, o3):
    """The Window of output cell (o1, o2, o3)."""
    st1, lo1, hi1 = bounds(o1, g.k[0], g.s[0], g.p[0], g.L[0], g.O[0])
    st2, lo2, hi2 = bounds(o2, g.k[1], g.s[1], g.p[1], g.L[1], g.O[1])
    st3, lo3, hi3 = bounds(o3, g.k[2], g.s[2], g.p[2], g.L[2], g.O[2])
    return Window((st1, st2, st3), (lo1, lo2, lo3), (hi1, hi2, hi3))


@njit(inline="always", **JIT)
def dsc(v, m, T):
    """Dice-Sorensen coefficient 2|v m| / (v^2 + m^2), 1 at v = m = 0.

    Written as 2 lo hi / (lo^2 + hi^2) with (lo, hi) = (min, max)(|v|, |m|) scaled
    by a power of 2 (``binade_scale``: exact) that puts hi in [1, 2), so it neither
    overflows nor underflows for any finite v, m; one division (2r / (1 + r^2) with
    r = lo / hi took two, and a float64 division costs as much as an exp:
    docs/benchmarks.md).  For an infinite hi: 0, NaN if lo is infinite too (as lo / hi).
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
    scale = binade_scale(hi)
    hs = hi * scale
    ls = lo * scale
    d = T(2) * ls * hs / (hs * hs + ls * ls)
    return lo - lo if hi == T(np.inf) else d


@njit(inline="always", **JIT)
def sign_c(v, T):
    if v > 0:
        return T(1)
    if v < 0:
        return T(-1)
    return T(0)


@njit(inline="always", **JIT)
def dsc_partials(v, m, u, T):
    """(u * d dsc / d v, u * d dsc / d m); zero at v = m = 0 and d|u|/du = 0 at u = 0.

    d/dv = 2 sgn(v) |m| (m^2 - v^2) / (v^2 + m^2)^2, symmetric in (v, m), of
    degree -1: with (ra, rb) = (|v|, |m|) scaled by the power of 2 that puts
    hi = max(|v|, |m|) in [1, 2) (``binade_scale``, as ``dsc``), u * d/dv =
    2 sgn(v) rb (rb^2 - ra^2) * (u * scale) / (ra^2 + rb^2)^2: one division
    (five before; a float64 division costs as much as the rest of the backward's
    gradient loop: docs/benchmarks.md).  Nonzero partials only are multiplied by
    the scaled u (inf * 0 made the gradient NaN where u * scale overflows).
    """
    a = abs(v)
    b = abs(m)
    hi = a if a >= b else b
    if hi == 0:
        return T(0), T(0)
    scale = binade_scale(hi)
    ra = a * scale
    rb = b * scale
    den = ra * ra + rb * rb
    den = den * den
    # (rb - ra) (rb + ra), not rb^2 - ra^2: exactly 0 at |v| = |m| even where one
    # square is fused into a multiply-add (``JIT``), and no cancellation near there.
    dv = T(2) * sign_c(v, T) * rb * ((rb - ra) * (rb + ra))
    dm = T(2) * sign_c(m, T) * ra * ((ra - rb) * (ra + rb))
    q = (u * scale) / den
    return (dv * q if dv != 0 else T(0)), (dm * q if dm != 0 else T(0))


@njit(inline="always", **JIT)
def dscw_score(v, mean, T):
    """eDSCW's unnormalised weight exp(dsc(v, mean)) of one cell (dsc is in [0, 1]:
    ``exp_unit`` needs no range reduction)."""
    return exp_unit(dsc(v, mean, T))


@njit(inline="always", **JIT)
def em_score(v, vmax):
    """eM's unnormalised weight exp(v - max) of one cell (at most 1)."""
    return exp_c(v - vmax)


@njit(inline="always", **JIT)
def blend(method, bc, d, m, T):
    """adaPool's blend bc * d + (1 - bc) * m of an eDSCW and an eM quantity;
    the one the method uses for eDSCW and eM."""
    if method == ADA:
        return bc * d + (T(1) - bc) * m
    if method == EDSCW:
        return d
    return m


@njit(inline="always", **JIT)
def idw_weight(v, st, T):
    """IDW weight of one cell; equal shares among zero-distance cells when dmin == 0
    (the caller divides by their count)."""
    dist = abs(v - st.mean)
    if st.dmin == 0:
        return T(1) if dist == 0 else T(0)
    return (st.dmin / dist) / st.zI


@njit(inline="always", **JIT)
def cell_weight(method, bc, v, mean, vmax, zD, zM, T):
    """Mask weight of one cell for eDSCW, eM and adaPool (IDW: ``idw_weight``)."""
    wD = dscw_score(v, mean, T) / zD if method != EM else T(0)
    wM = em_score(v, vmax) / zM if method != EDSCW else T(0)
    return blend(method, bc, wD, wM, T)


@njit(**JIT)
def window_stats(x, nc, w, method, T):
    """The Stats of window w of image nc of x."""
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    need_i = method == IDW
    lo1, lo2, lo3 = w.lo
    hi1, hi2, hi3 = w.hi
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
                        e = dscw_score(v, mean, T)
                        zD += e
                        sD += e * v
                    if need_m:
                        e = em_score(v, vmax)
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
    return Stats(count, mean, vmax, zD, sD / zD, zM, sM / zM, dmin, zI, yI)


@njit(**JIT)
def zero_distance_count(x, nc, w, mean, T):
    """Number of cells of window w whose value equals the mean (IDW with dmin == 0)."""
    nzero = T(0)
    for i1 in range(w.lo[0], w.hi[0]):
        for i2 in range(w.lo[1], w.hi[1]):
            for i3 in range(w.lo[2], w.hi[2]):
                if x[nc, i1, i2, i3] - mean == 0:
                    nzero += T(1)
    return nzero


@njit(inline="always", **JIT)
def clamped_beta(bv, nc, o1, o2, o3, T):
    """(beta value, clamp(beta, 0, 1)) for output cell (nc, o1, o2, o3)."""
    return clamped_beta_at(bv, beta_plane_offset(bv, nc), o1, o2, o3, T)


@njit(inline="always", **JIT)
def beta_plane_offset(bv, nc):
    """Where plane nc's beta values start in bv.values (``clamped_beta_at``'s offset).
    The plane kernels take it once per block and lane: its integer division in every
    window's 16 lanes measured 5-10% of their adaPool forward and backward."""
    n = nc // bv.channels
    c = nc - n * bv.channels
    return n * bv.strides[0] + c * bv.strides[1]


@njit(inline="always", **JIT)
def clamped_beta_at(bv, offset, o1, o2, o3, T):
    """``clamped_beta`` of output cell (o1, o2, o3) of the plane whose ``beta_plane_offset`` is offset."""
    bstr = bv.strides
    b = bv.values[offset + o1 * bstr[2] + o2 * bstr[3] + o3 * bstr[4]]
    bc = b
    if bc < 0:
        bc = T(0)
    if bc > 1:
        bc = T(1)
    return b, bc


@njit(inline="always", **JIT)
def split_grad(method, g, bc, T):
    """(gD, gM, gI): the output gradient g shared among eDSCW, eM and IDW.

    Selected by method, not by the value of g, so that 0 * NaN stays NaN.
    """
    if method == ADA:
        return g * bc, g * (T(1) - bc), T(0)
    if method == EDSCW:
        return g, T(0), T(0)
    if method == EM:
        return T(0), g, T(0)
    return T(0), T(0), g


# Exact mode, with w = softmax(z) and y = sum w_i x_i: dy/dz_k = w_k (x_k - y).
# eM: z = x.  eDSCW: z_k = dsc(x_k, mean).  IDW: z_k = -log|x_k - mean|.
# The mean's share (add_*_mean_grad) is gathered over the window first and
# spread equally over its cells.  Paper mode: g * w_i, weights held constant.

@njit(inline="always", **JIT)
def add_dscw_mean_grad(via_mean, gD, v, mean, zD, yD, T):
    """via_mean plus one cell's eDSCW term of the gradient through the mean (exact mode)."""
    wD = dscw_score(v, mean, T) / zD
    _, d_dm = dsc_partials(v, mean, v - yD, T)
    return via_mean + gD * wD * d_dm


@njit(inline="always", **JIT)
def add_idw_mean_grad(via_mean, gI, v, st, T):
    """via_mean plus one cell's IDW term of the gradient through the mean (exact mode, dmin > 0)."""
    wI = idw_weight(v, st, T)
    # -d(-log|v - mean|)/d mean = 1 / (v - mean)
    return via_mean + gI * wI * (v - st.yI) / (v - st.mean)


@njit(inline="always", **JIT)
def idw_cell_terms(gIz, v, mean, dmin, yI, T):
    """(gI wI, gI wI (v - yI) / (v - mean)) of one cell (dmin > 0) from gIz = gI / zI
    (once per window): IDW's direct gradient and the cell's term of the gradient
    through the mean (``add_idw_grad``, ``add_idw_mean_grad``) with two divisions
    for both, not three each (the plane kernels; float64 divisions bound them)."""
    d = v - mean
    direct = gIz * (dmin / abs(d))
    return direct, direct * ((v - yI) / d)


@njit(inline="always", **JIT)
def add_dscw_grad(grad, gD, v, mean, zD, yD, exact, T):
    """grad plus eDSCW's direct gradient for one cell."""
    wD = dscw_score(v, mean, T) / zD
    grad += gD * wD
    if exact:
        d_dv, _ = dsc_partials(v, mean, v - yD, T)
        grad += gD * wD * d_dv
    return grad


@njit(inline="always", **JIT)
def add_em_grad(grad, gM, v, vmax, zM, yM, exact, T):
    """grad plus eM's gradient for one cell."""
    return add_em_weight_term(grad, gM, v, em_score(v, vmax) / zM, yM, exact, T)


@njit(inline="always", **JIT)
def add_em_weight_term(grad, gM, v, wM, yM, exact, T):
    """grad plus eM's gradient for one cell of eM weight wM (kernels sharing exps pass theirs)."""
    # 1 + (v - yM), not (1 + v) - yM: for |v| >> 1 the 1 would be lost.
    return grad + (gM * wM * (T(1) + (v - yM)) if exact else gM * wM)


@njit(inline="always", **JIT)
def add_idw_grad(grad, gI, v, st, nzero, exact, T):
    """grad plus IDW's direct gradient for one cell.  Where dmin == 0 the
    output is the mean (exact) or the mean of the nzero zero-distance cells."""
    if st.dmin == 0:
        if exact:
            return grad + gI / T(st.count)
        if v - st.mean == 0:
            return grad + gI / nzero
        return grad
    wI = idw_weight(v, st, T)
    grad += gI * wI
    if exact:
        grad -= gI * wI * (v - st.yI) / (v - st.mean)
    return grad


@njit(inline="always", **JIT)
def beta_grad(g, b, yD, yM, T):
    """dL/dbeta of one output cell: g (yD - yM) inside [0, 1]; outside the
    clamp is flat (0); a NaN beta stays NaN."""
    return g * (yD - yM) if (b >= 0 and b <= 1) else (b if b != b else T(0))


# Gradients through the returned weights (docs/math.md): with a cotangent gw
# for w = softmax(z), dL/dz_k = w_k (gw_k - gbar), gbar = sum_i gw_i w_i; the
# same chain through z as the output's (dy/dz_k = w_k (x_k - y)) with
# (gw_k - gbar) in place of g (x_k - y).  The weights of an IDW window with
# dmin == 0 are piecewise constant: no gradient.

@njit(inline="always", **JIT)
def weight_dots(rD, rM, rI, method, gwv, v, st, T):
    """(rD, rM, rI) plus one cell's gw * wD, gw * wM, gw * wI (each where the method uses it)."""
    if method == EDSCW or method == ADA:
        rD += gwv * (dscw_score(v, st.mean, T) / st.zD)
    if method == EM or method == ADA:
        rM += gwv * (em_score(v, st.vmax) / st.zM)
    if method == IDW and st.dmin != 0:
        rI += gwv * idw_weight(v, st, T)
    return rD, rM, rI


@njit(inline="always", **JIT)
def add_dscw_weight_mean_grad(via_mean, gwD, barD, v, mean, zD, T):
    """via_mean plus one cell's eDSCW weight-cotangent term through the mean."""
    wD = dscw_score(v, mean, T) / zD
    _, d_dm = dsc_partials(v, mean, gwD - barD, T)
    return via_mean + wD * d_dm


@njit(inline="always", **JIT)
def add_idw_weight_mean_grad(via_mean, gwI, barI, v, st, T):
    """via_mean plus one cell's IDW weight-cotangent term through the mean (dmin > 0)."""
    wI = idw_weight(v, st, T)
    return via_mean + wI * (gwI - barI) / (v - st.mean)


@njit(inline="always", **JIT)
def add_dscw_weight_grad(grad, gwD, barD, v, mean, zD, T):
    """grad plus eDSCW's direct weight-cotangent term for one cell."""
    wD = dscw_score(v, mean, T) / zD
    d_dv, _ = dsc_partials(v, mean, gwD - barD, T)
    return grad + wD * d_dv


@njit(inline="always", **JIT)
def add_em_weight_grad(grad, gwM, barM, v, vmax, zM, T):
    """grad plus eM's weight-cotangent term for one cell."""
    wM = em_score(v, vmax) / zM
    return grad + wM * (gwM - barM)


@njit(inline="always", **JIT)
def add_idw_weight_grad(grad, gwI, barI, v, st, T):
    """grad plus IDW's direct weight-cotangent term for one cell (none where dmin == 0)."""
    if st.dmin == 0:
        return grad
    wI = idw_weight(v, st, T)
    return grad - wI * (gwI - barI) / (v - st.mean)


@njit(inline="always", **JIT)
def add_beta_weight_grad(gb, b, rD, rM, T):
    """gb plus the weights' share of dL/dbeta, sum gw (wD - wM), inside [0, 1]."""
    return gb + (rD - rM) if (b >= 0 and b <= 1) else gb
