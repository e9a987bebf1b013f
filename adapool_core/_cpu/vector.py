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
results match the general kernels' up to exp's rounding (eM's exps are
shared between the overlapping windows of a row: ``vector_window_stats``).
Edge windows take the general per-window code.

Arrays are read through flat offsets in the passes, never sliced, and the
per-offset gather is inlined: a slice, or a call with array arguments,
updates the array's reference count, an atomic on a counter all threads
share (it had cost more than the arithmetic on short rows).

The chunk functions are the kernels; ``launch`` runs them on Python threads
(``rows`` says why).  ``method`` is a compile-time literal; K3 and S3 are
run-time values, so one compilation serves every geometry.  IDW has its
own row kernels in ``vector_idw`` (its distances need the window mean, then
the smallest distance, before any weight: more passes).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import literally, njit

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT, shared_exp_margin
from .general import backward_window, forward_window
from .rows import RowKernels, interior
from .scratch import at, spread_width
from .window import (BetaView, add_dscw_grad, add_dscw_mean_grad, add_em_grad, beta_grad, beta_plane_offset, blend,
                     cell_weight, clamped_beta_at, dscw_score, em_score, geometry, phase_class, phase_row, split_grad,
                     window)

# Per-window quantities of the interior windows of one row (1-D arrays over
# the windows): ``rows.RowStats``'s, plus the gathered column of one window
# offset (col), the gradients of that offset's cells (grad), a gathered column
# of the shared eM exps (ecol) and eM's output gradient over its normaliser (gMz).
VectorStats = namedtuple("VectorStats", ("total", "vmax", "mean", "zD", "sD", "yD", "zM", "sM", "yM",
                                         "bc", "gD", "gM", "via_mean", "col", "grad", "ecol", "gMz"))


@njit(**JIT)
def vector_scratch(n, dtype):
    """A VectorStats for n windows (one allocation: one 1-D view per quantity)."""
    a = np.empty((17, spread_width(max(n, 1), dtype)), dtype=dtype)  # rows apart mod 4 KiB
    return VectorStats(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12],
                       a[13], a[14], a[15], a[16])


@njit(**JIT)
def shared_exp_scratch(g, n, dtype):
    """Room for eM's shared exps of one row's band (``vector_window_stats``), flat:
    a band-wide row per input row of a window."""
    width = (n - 1) * g.s[2] + g.k[2] if n > 0 else 1
    return np.empty(g.k[0] * g.k[1] * width, dtype=dtype)


@njit(**JIT)
def gather_column(xr, j, n, S3, col):
    """col[o] = xr[j + o * S3] for the n windows of a row: cell j of each."""
    for o in range(n):
        col[o] = xr[j + o * S3]


@njit(inline="always", **JIT)
def gather_lanes(flat, start, j, n, S3, col):
    """col[o] = flat[start + j + o * S3]: cell j of the n windows o of a row, from a
    flat array (offsets, not slices: a slice's reference count is an atomic update
    of the array's shared counter, per row and thread; a plain copy at stride 1)."""
    if S3 == 1:
        for o in range(n):
            col[o] = flat[at(start + j + o)]
    else:
        for o in range(n):
            col[o] = flat[at(start + j + o * S3)]


@njit(inline="always", **JIT)
def row_start(shape, nc, i1, i2, i3):
    """Flat offset of x[nc, i1, i2, i3] in a C-contiguous array of this shape."""
    return ((nc * shape[1] + i1) * shape[2] + i2) * shape[3] + i3


@njit(**JIT)
def own_max_em_sums(x, nc, w, o, K3, S3, vmax, T):
    """(zM, sM) of interior window o with its own max vmax (``vector_window_stats``'s
    fallback where the row's shared shift would underflow its weights)."""
    zm = T(0)
    sm = T(0)
    c0 = w.start[2] + o * S3
    for i1 in range(w.lo[0], w.hi[0]):
        for i2 in range(w.lo[1], w.hi[1]):
            for j in range(K3):
                v = x[nc, i1, i2, c0 + j]
                e = em_score(v, vmax)
                zm += e
                sm += e * v
    return zm, sm


@njit(**JIT)
def vector_window_stats(xf, shape, nc, w, n, K3, S3, need_d, need_m, share_m, vs, E, T):
    """``window_stats`` (eDSCW, eM) of the interior windows o < n of one row into vs;
    xf is x flat, w the window of the first one: window o covers columns
    w.start[2] + o*S3 + [0, K3).

    With share_m (overlapping windows along the row), eM's exps are shared:
    exp(x - c) once per cell of the row's band into E (a band-wide row of E
    per input row (i1, i2)), with c the largest window max of the row; a
    window's eM weights are invariant to the shift, so each window only sums
    E.  A window whose max is more than ``shared_exp_margin`` below c keeps
    its own max (``own_max_em_sums``).  vs.vmax then holds each window's
    shift (c or its own max): the mask and the backward use it with zM.
    Returns (cell count of a window, c)."""
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    total, vmax, mean, col, ecol = vs.total, vs.vmax, vs.mean, vs.col, vs.ecol
    zd, sd, zm, sm = vs.zD, vs.sD, vs.zM, vs.sM
    for o in range(n):
        total[o] = T(0)
        vmax[o] = -T(np.inf)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            start = row_start(shape, nc, i1, i2, col0)
            for j in range(K3):
                gather_lanes(xf, start, j, n, S3, col)
                for o in range(n):
                    v = col[o]
                    total[o] += v
                    vmax[o] = v if v > vmax[o] else vmax[o]
    count = (hi1 - lo1) * (hi2 - lo2) * K3
    c = -T(np.inf)
    if share_m:
        for o in range(n):
            c = vmax[o] if vmax[o] > c else c
        floor = c - shared_exp_margin(T)
        for o in range(n):
            vmax[o] = c if vmax[o] >= floor else vmax[o]
    width = (n - 1) * S3 + K3
    for o in range(n):
        mean[o] = total[o] / T(count)
        zd[o] = T(0)
        sd[o] = T(0)
        zm[o] = T(0)
        sm[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            start = row_start(shape, nc, i1, i2, col0)
            estart = ((i1 - lo1) * (hi2 - lo2) + i2 - lo2) * width
            if share_m:
                for t in range(width):
                    E[at(estart + t)] = em_score(xf[at(start + t)], c)
            for j in range(K3):
                gather_lanes(xf, start, j, n, S3, col)
                if need_d:
                    for o in range(n):
                        v = col[o]
                        e = dscw_score(v, mean[o], T)
                        zd[o] += e
                        sd[o] += e * v
                if share_m:
                    gather_lanes(E, estart, j, n, S3, ecol)
                    for o in range(n):
                        e = ecol[o]
                        zm[o] += e
                        sm[o] += e * col[o]
                elif need_m:
                    for o in range(n):
                        v = col[o]
                        e = em_score(v, vmax[o])
                        zm[o] += e
                        sm[o] += e * v
    for o in range(n):
        vs.yD[o] = sd[o] / zd[o]
        vs.yM[o] = sm[o] / zm[o]
    return count, c


@njit(**JIT)
def vector_forward(x, bv, nc, o1, o2, oa, n, w, K3, S3, method, y, mask, want_mask, vs, E, T):
    """Outputs (and masks) of the interior windows oa .. oa+n-1 of one row; w is window oa's."""
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    share_m = need_m and S3 < K3
    beta_at = beta_plane_offset(bv, nc)  # once per row, not per window (an integer division)
    _, c = vector_window_stats(x.reshape(-1), x.shape, nc, w, n, K3, S3, need_d, need_m, share_m, vs, E, T)
    if share_m:
        for o in range(n):
            if vs.vmax[o] != c:
                vs.zM[o], sm = own_max_em_sums(x, nc, w, o, K3, S3, vs.vmax[o], T)
                vs.yM[o] = sm / vs.zM[o]
    for o in range(n):
        o3 = oa + o
        bc = T(0)
        if method == ADA:
            _, bc = clamped_beta_at(bv, beta_at, o1, o2, o3, T)
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
def add_own_max_em_grads(x, gx, nc, w, o, K3, S3, vs, exact, T):
    """gx plus eM's gradient from interior window o, which kept its own max
    (``vector_window_stats``): the shared exps do not serve it."""
    c0 = w.start[2] + o * S3
    for i1 in range(w.lo[0], w.hi[0]):
        for i2 in range(w.lo[1], w.hi[1]):
            for j in range(K3):
                v = x[nc, i1, i2, c0 + j]
                gx[nc, i1, i2, c0 + j] += add_em_grad(T(0), vs.gM[o], v, vs.vmax[o], vs.zM[o], vs.yM[o], exact, T)


@njit(**JIT)
def vector_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, w, K3, S3, method, exact, vs, E, T):
    """``backward_window`` for the interior windows oa .. oa+n-1 of one row, per window
    offset; w is window oa's.

    The cell gradients of one offset j go to a contiguous column first, then
    into gx; j descends, so each cell receives its windows' terms in
    ascending o3 order (as in ``rows``), whatever the chunking.  With shared
    eM exps (``vector_window_stats``) eM's term of a cell is
    e * gM / zM * (1 + x - yM) (exact) or e * gM / zM (paper), e read from E;
    windows that kept their own max add theirs afterwards.
    """
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    share_m = need_m and S3 < K3
    beta_at = beta_plane_offset(bv, nc)
    xf = x.reshape(-1)
    gxf = gx.reshape(-1)
    shape = x.shape
    count, c = vector_window_stats(xf, shape, nc, w, n, K3, S3, need_d, need_m, share_m, vs, E, T)
    if share_m:
        for o in range(n):
            if vs.vmax[o] != c:
                vs.zM[o], sm = own_max_em_sums(x, nc, w, o, K3, S3, vs.vmax[o], T)
                vs.yM[o] = sm / vs.zM[o]
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    mean, vmax, via_mean, grad, col, ecol = vs.mean, vs.vmax, vs.via_mean, vs.grad, vs.col, vs.ecol
    zd, yd, zm, ym, gd, gm, gmz = vs.zD, vs.yD, vs.zM, vs.yM, vs.gD, vs.gM, vs.gMz
    width = (n - 1) * S3 + K3
    for o in range(n):
        o3 = oa + o
        g = gy[nc, o1, o2, o3]
        b = T(0)
        bc = T(0)
        if method == ADA:
            b, bc = clamped_beta_at(bv, beta_at, o1, o2, o3, T)
            gb[nc, o1, o2, o3] = beta_grad(g, b, yd[o], ym[o], T)
        gD, gM, _ = split_grad(method, g, bc, T)
        gd[o] = gD
        gm[o] = gM
        gmz[o] = gM / zm[o] if vmax[o] == c else T(0)
        via_mean[o] = T(0)
    if exact and need_d:
        # The mean's share of the gradient, spread equally over the window.
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                start = row_start(shape, nc, i1, i2, col0)
                for j in range(K3):
                    gather_lanes(xf, start, j, n, S3, col)
                    for o in range(n):
                        via_mean[o] = add_dscw_mean_grad(via_mean[o], gd[o], col[o], mean[o], zd[o], yd[o], T)
        for o in range(n):
            via_mean[o] = via_mean[o] / T(count)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            start = row_start(shape, nc, i1, i2, col0)
            estart = ((i1 - lo1) * (hi2 - lo2) + i2 - lo2) * width
            for jj in range(K3):
                j = K3 - 1 - jj
                gather_lanes(xf, start, j, n, S3, col)
                for o in range(n):
                    gr = via_mean[o]
                    if need_d:
                        gr = add_dscw_grad(gr, gd[o], col[o], mean[o], zd[o], yd[o], exact, T)
                    grad[o] = gr
                if share_m:
                    gather_lanes(E, estart, j, n, S3, ecol)
                    if exact:
                        for o in range(n):
                            grad[o] += gmz[o] * ecol[o] * (T(1) + (col[o] - ym[o]))
                    else:
                        for o in range(n):
                            grad[o] += gmz[o] * ecol[o]
                elif need_m:
                    for o in range(n):
                        grad[o] = add_em_grad(grad[o], gm[o], col[o], vmax[o], zm[o], ym[o], exact, T)
                for o in range(n):
                    gxf[at(start + j + o * S3)] += grad[o]
    if share_m:
        for o in range(n):
            if vmax[o] != c:
                add_own_max_em_grads(x, gx, nc, w, o, K3, S3, vs, exact, T)


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
    E = shared_exp_scratch(g, n, x.dtype)
    for row in range(r0, r1):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        if n > 0:
            vector_forward(x, bv, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method, y, mask, want_mask,
                           vs, E, T)
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
    E = shared_exp_scratch(g, n, x.dtype)
    no_gw = np.zeros((1, 1, 1, 1, 1, 1, 1), x.dtype)  # vector kernels serve calls without a weights' cotangent
    for row in range(r0, r1):
        nc, o1, o2 = phase_row(row, pc)
        for o3 in range(O3):
            if o3 == oa and n > 0:
                vector_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method,
                                exact, vs, E, T)
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
