"""Vector kernels: any last-axis window width and stride, float32 and float64.

The generalisation of ``rows`` (which unrolls the cells of a window of a
fixed width): a chunk owns whole output rows (nc, o1, o2) and computes the
interior windows of a row (entirely inside the input along the last axis)
together.  The loops run per window offset: for each cell (i1, i2, j) of
the window shape, one strided pass gathers cell j of every window of the
row into a contiguous column (``col[o] = x[.., start + o * S3 + j]``), then
the per-cell formulas of ``window`` run over that column into per-window
accumulators.  The inner loops are contiguous and branch-free, so LLVM
vectorises them for any K3 and S3 (lanes = windows), and every window still
adds its cells in the order of ``window_stats`` (i1, i2, j ascending):
results match the general kernels' up to exp's rounding.  Edge windows
take the general per-window code.

The chunk functions are the kernels; ``launch`` runs them on Python threads
(``rows`` says why).  ``method`` is a compile-time literal; K3 and S3 are
run-time values, so one compilation serves every geometry.  IDW takes the
general kernels (its distances need the window mean before any weight).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import literally, njit

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT
from .general import backward_window, forward_window
from .rows import RowKernels, interior
from .window import (BetaView, add_dscw_grad, add_dscw_mean_grad, add_em_grad, beta_grad, blend, cell_weight,
                     clamped_beta, dscw_score, em_score, geometry, phase_class, phase_row, split_grad, window)

# Per-window quantities of the interior windows of one row (1-D arrays over
# the windows): ``rows.RowStats``'s, plus the gathered column of one window
# offset (col) and the gradients of that offset's cells (grad).
VectorStats = namedtuple("VectorStats", ("total", "vmax", "mean", "zD", "sD", "yD", "zM", "sM", "yM",
                                         "bc", "gD", "gM", "via_mean", "col", "grad"))


@njit(**JIT)
def vector_scratch(n, dtype):
    """A VectorStats for n windows (one allocation: one 1-D view per quantity)."""
    a = np.empty((15, max(n, 1)), dtype=dtype)
    return VectorStats(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
                       a[13], a[14])


@njit(**JIT)
def gather_column(xr, j, n, S3, col):
    """col[o] = xr[j + o * S3] for the n windows of a row: cell j of each."""
    for o in range(n):
        col[o] = xr[j + o * S3]


@njit(**JIT)
def vector_window_stats(x, nc, w, n, K3, S3, need_d, need_m, vs, T):
    """``window_stats`` (eDSCW, eM) of the interior windows o < n of one row into vs;
    w is the window of the first one, window o covers columns w.start[2] + o*S3 + [0, K3).
    Returns the cell count of a window."""
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    total, vmax, mean, col = vs.total, vs.vmax, vs.mean, vs.col
    zd, sd, zm, sm = vs.zD, vs.sD, vs.zM, vs.sM
    for o in range(n):
        total[o] = T(0)
        vmax[o] = -T(np.inf)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for j in range(K3):
                gather_column(xr, j, n, S3, col)
                for o in range(n):
                    v = col[o]
                    total[o] += v
                    vmax[o] = v if v > vmax[o] else vmax[o]
    count = (hi1 - lo1) * (hi2 - lo2) * K3
    for o in range(n):
        mean[o] = total[o] / T(count)
        zd[o] = T(0)
        sd[o] = T(0)
        zm[o] = T(0)
        sm[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for j in range(K3):
                gather_column(xr, j, n, S3, col)
                if need_d:
                    for o in range(n):
                        v = col[o]
                        e = dscw_score(v, mean[o], T)
                        zd[o] += e
                        sd[o] += e * v
                if need_m:
                    for o in range(n):
                        v = col[o]
                        e = em_score(v, vmax[o])
                        zm[o] += e
                        sm[o] += e * v
    for o in range(n):
        vs.yD[o] = sd[o] / zd[o]
        vs.yM[o] = sm[o] / zm[o]
    return count


@njit(**JIT)
def vector_forward(x, bv, nc, o1, o2, oa, n, w, K3, S3, method, y, mask, want_mask, vs, T):
    """Outputs (and masks) of the interior windows oa .. oa+n-1 of one row; w is window oa's."""
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    vector_window_stats(x, nc, w, n, K3, S3, need_d, need_m, vs, T)
    for o in range(n):
        o3 = oa + o
        bc = T(0)
        if method == ADA:
            _, bc = clamped_beta(bv, nc, o1, o2, o3, T)
        vs.bc[o] = bc
        y[nc, o1, o2, o3] = blend(method, bc, vs.yD[o], vs.yM[o], T)
    if want_mask:
        st1, st2, col0 = w.start
        for o in range(n):
            o3 = oa + o
            for i1 in range(w.lo[0], w.hi[0]):
                for i2 in range(w.lo[1], w.hi[1]):
                    for j in range(K3):
                        v = x[nc, i1, i2, col0 + o * S3 + j]
                        mask[nc, o1, o2, o3, i1 - st1, i2 - st2, j] = cell_weight(
                            method, vs.bc[o], v, vs.mean[o], vs.vmax[o], vs.zD[o], vs.zM[o], T)


@njit(**JIT)
def vector_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, w, K3, S3, method, exact, vs, T):
    """``backward_window`` for the interior windows oa .. oa+n-1 of one row, per window
    offset; w is window oa's.

    The cell gradients of one offset j go to a contiguous column first, then
    into gx; j descends, so each cell receives its windows' terms in
    ascending o3 order (as in ``rows``), whatever the chunking.
    """
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    count = vector_window_stats(x, nc, w, n, K3, S3, need_d, need_m, vs, T)
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    mean, vmax, via_mean, col, grad = vs.mean, vs.vmax, vs.via_mean, vs.col, vs.grad
    zd, yd, zm, ym, gd, gm = vs.zD, vs.yD, vs.zM, vs.yM, vs.gD, vs.gM
    for o in range(n):
        o3 = oa + o
        g = gy[nc, o1, o2, o3]
        b = T(0)
        bc = T(0)
        if method == ADA:
            b, bc = clamped_beta(bv, nc, o1, o2, o3, T)
            gb[nc, o1, o2, o3] = beta_grad(g, b, yd[o], ym[o], T)
        gD, gM, _ = split_grad(method, g, bc, T)
        gd[o] = gD
        gm[o] = gM
        via_mean[o] = T(0)
    if exact and need_d:
        # The mean's share of the gradient, spread equally over the window.
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                xr = x[nc, i1, i2, col0:]
                for j in range(K3):
                    gather_column(xr, j, n, S3, col)
                    for o in range(n):
                        via_mean[o] = add_dscw_mean_grad(via_mean[o], gd[o], col[o], mean[o], zd[o], yd[o], T)
        for o in range(n):
            via_mean[o] = via_mean[o] / T(count)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            gxr = gx[nc, i1, i2, col0:]
            for jj in range(K3):
                j = K3 - 1 - jj
                gather_column(xr, j, n, S3, col)
                for o in range(n):
                    v = col[o]
                    gr = via_mean[o]
                    if need_d:
                        gr = add_dscw_grad(gr, gd[o], v, mean[o], zd[o], yd[o], exact, T)
                    if need_m:
                        gr = add_em_grad(gr, gm[o], v, vmax[o], zm[o], ym[o], exact, T)
                    grad[o] = gr
                for o in range(n):
                    gxr[j + o * S3] += grad[o]


@njit(**JIT)
def vector_forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1):
    """Output rows r0 .. r1-1 of the vector forward (interior windows by the row,
    edge windows one by one)."""
    literally(method)
    T = x.dtype.type
    g = geometry(x.shape, y.shape, kernel, stride, padding)
    bv = BetaView(beta, bstr, C)
    O1, O2, O3 = g.O
    K3, S3 = g.k[2], g.s[2]
    oa, ob = interior(K3, S3, g.p[2], g.L[2], O3)
    n = ob - oa
    vs = vector_scratch(n, x.dtype)
    for row in range(r0, r1):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        if n > 0:
            vector_forward(x, bv, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method, y, mask, want_mask,
                           vs, T)
        for o3 in range(O3):
            if o3 < oa or o3 >= ob:
                forward_window(x, bv, g, nc, o1, o2, o3, method, y, mask, want_mask, T)


@njit(**JIT)
def vector_backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                          phase_classes, cls, r0, r1):
    """Rows r0 .. r1-1 of phase class cls (``PoolGeometry.phase_classes(2)``) of the vector backward."""
    literally(method)
    T = x.dtype.type
    g = geometry(x.shape, gy.shape, kernel, stride, padding)
    bv = BetaView(beta, bstr, C)
    pc = phase_class(phase_classes, cls)
    O3 = g.O[2]
    K3, S3 = g.k[2], g.s[2]
    oa, ob = interior(K3, S3, g.p[2], g.L[2], O3)
    n = ob - oa
    vs = vector_scratch(n, x.dtype)
    no_gw = np.zeros((1, 1, 1, 1, 1, 1, 1), x.dtype)  # vector kernels serve calls without a weights' cotangent
    for row in range(r0, r1):
        nc, o1, o2 = phase_row(row, pc)
        for o3 in range(O3):
            if o3 == oa and n > 0:
                vector_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method,
                                exact, vs, T)
            if o3 < oa or o3 >= ob:
                backward_window(x, gy, bv, g, gx, gb, nc, o1, o2, o3, method, exact, no_gw, False, T)


VECTOR_KERNELS = RowKernels(vector_forward_chunk, vector_backward_chunk)


def vector_kernels(x3, geom, method):
    """The vector RowKernels for this problem (IDW: ``vector_idw``'s), or None for the
    general kernels (an adaptive last axis: stride 0, whose windows ``interior`` cannot place)."""
    if geom.stride[2] == 0:
        return None
    from .vector_idw import VECTOR_IDW_KERNELS  # here: vector_idw imports this module
    return VECTOR_IDW_KERNELS if method == IDW else VECTOR_KERNELS
