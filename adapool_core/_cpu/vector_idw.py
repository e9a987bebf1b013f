"""Vector kernels for IDW: any last-axis window width and stride, float32 and float64.

``vector``'s design (lanes = the interior windows of one output row, one
contiguous column per window offset, edge windows on the general code) for
inverse-distance weighting, whose weights need three passes over a window:
the mean, then the smallest distance dmin (and the count of zero distances),
then the dmin-scaled sums.  Each pass is a branch-free loop over the lanes
(a window with dmin == 0 computes its sums too, NaN where 0 / 0, and a
select takes the mean instead), so LLVM vectorises it for any K3 and S3.
Every lane adds its cells in the order of ``window_stats`` with the same
operations, and the per-cell formulas are ``window``'s (``idw_weight``,
``add_idw_grad``, ``add_idw_mean_grad``) on a per-lane ``Stats``: outputs
and weights equal the general kernels' bit for bit, gradients up to the
order in which an input cell sums its windows' terms (here ascending o3,
whatever the chunking).  Docs/benchmarks.md ("IDW vector kernels") lists
the designs tried.

With stride 1 a column is a slice of the input row; other strides gather it
(``vector.gather_column``).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from .._methods import IDW
from .fastexp import JIT
from .general import backward_window, forward_window
from .rows import RowKernels, interior
from .scratch import spread_width
from .vector import gather_column
from .window import (BetaView, PhaseClass, Stats, add_idw_grad, add_idw_mean_grad, geometry, idw_weight, phase_class,
                     phase_row, split_grad, window)

# Per-window quantities of the interior windows of one row (1-D arrays over
# the windows): the IDW fields of Stats (nzero: cells at zero distance), the
# output gradient gI, the gradient through the mean, a gathered column and
# the cell gradients (or weights) of one window offset.
IdwRowStats = namedtuple("IdwRowStats", ("total", "mean", "dmin", "nzero", "zI", "sI", "yI", "gI", "via_mean",
                                         "col", "cell"))


@njit(**JIT)
def idw_scratch(n, dtype):
    """An IdwRowStats for n windows (one allocation: one 1-D view per quantity)."""
    a = np.empty((11, spread_width(max(n, 1), dtype)), dtype=dtype)  # rows apart mod 4 KiB
    return IdwRowStats(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10])


@njit(inline="always", **JIT)
def lane_column(xr, j, n, S3, col):
    """Cell j of the n windows of a row as a contiguous array: a slice of xr
    at stride 1, else gathered into col."""
    if S3 == 1:
        return xr[j:j + n]
    gather_column(xr, j, n, S3, col)
    return col


@njit(inline="always", **JIT)
def lane_stats(count, vs, o, T):
    """Window o's Stats, IDW fields only (the IDW formulas of ``window`` read no others)."""
    zero = T(0)
    return Stats(count, vs.mean[o], zero, zero, zero, zero, zero, vs.dmin[o], vs.zI[o], vs.yI[o])


@njit(**JIT)
def idw_row_stats(x, nc, w, n, K3, S3, need_nzero, vs, T):
    """``window_stats`` (IDW) of the interior windows o < n of one row into vs, and
    with need_nzero ``zero_distance_count``; w is the window of the first one, window
    o covers columns w.start[2] + o*S3 + [0, K3).  Returns the cell count of a window."""
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    total, mean, dmin, nzero, zI, sI = vs.total, vs.mean, vs.dmin, vs.nzero, vs.zI, vs.sI
    for o in range(n):
        total[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for j in range(K3):
                c = lane_column(xr, j, n, S3, vs.col)
                for o in range(n):
                    total[o] += c[o]
    count = (hi1 - lo1) * (hi2 - lo2) * K3
    for o in range(n):
        mean[o] = total[o] / T(count)
        dmin[o] = T(np.inf)
        nzero[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for j in range(K3):
                c = lane_column(xr, j, n, S3, vs.col)
                for o in range(n):
                    dist = abs(c[o] - mean[o])
                    dmin[o] = dist if dist < dmin[o] else dmin[o]
                if need_nzero:
                    for o in range(n):
                        nzero[o] += T(1) if c[o] - mean[o] == 0 else T(0)
    for o in range(n):
        zI[o] = T(0)
        sI[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for j in range(K3):
                c = lane_column(xr, j, n, S3, vs.col)
                for o in range(n):
                    v = c[o]
                    e = dmin[o] / abs(v - mean[o])  # NaN where dmin == 0: not used
                    zI[o] += e
                    sI[o] += e * v
    for o in range(n):
        vs.yI[o] = mean[o] if dmin[o] == 0 else sI[o] / zI[o]
    return count


@njit(**JIT)
def idw_row_forward(x, nc, o1, o2, oa, n, w, K3, S3, y, mask, want_mask, vs, T):
    """Outputs (and masks) of the interior windows oa .. oa+n-1 of one row; w is window oa's."""
    count = idw_row_stats(x, nc, w, n, K3, S3, want_mask, vs, T)
    for o in range(n):
        y[nc, o1, o2, oa + o] = vs.yI[o]
    if want_mask:
        st1, st2, col0 = w.start
        cell = vs.cell
        for i1 in range(w.lo[0], w.hi[0]):
            for i2 in range(w.lo[1], w.hi[1]):
                xr = x[nc, i1, i2, col0:]
                for j in range(K3):
                    c = lane_column(xr, j, n, S3, vs.col)
                    for o in range(n):
                        wt = idw_weight(c[o], lane_stats(count, vs, o, T), T)
                        cell[o] = wt / vs.nzero[o] if vs.dmin[o] == 0 else wt
                    for o in range(n):
                        mask[nc, o1, o2, oa + o, i1 - st1, i2 - st2, j] = cell[o]


@njit(**JIT)
def idw_row_backward(x, gy, gx, nc, o1, o2, oa, n, w, K3, S3, exact, vs, T):
    """``backward_window`` (IDW) for the interior windows oa .. oa+n-1 of one row, per
    window offset; w is window oa's.  j descends, so each cell receives its windows'
    terms in ascending o3 order (as in ``vector``), whatever the chunking."""
    count = idw_row_stats(x, nc, w, n, K3, S3, not exact, vs, T)
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    gI, via_mean, dmin, cell = vs.gI, vs.via_mean, vs.dmin, vs.cell
    for o in range(n):
        _, _, gI[o] = split_grad(IDW, gy[nc, o1, o2, oa + o], T(0), T)
        via_mean[o] = T(0)
    if exact:
        # The mean's share of the gradient (none where dmin == 0: the output is the mean).
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                xr = x[nc, i1, i2, col0:]
                for j in range(K3):
                    c = lane_column(xr, j, n, S3, vs.col)
                    for o in range(n):
                        via = add_idw_mean_grad(via_mean[o], gI[o], c[o], lane_stats(count, vs, o, T), T)
                        via_mean[o] = via_mean[o] if dmin[o] == 0 else via
        for o in range(n):
            via_mean[o] = via_mean[o] / T(count)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            gxr = gx[nc, i1, i2, col0:]
            for jj in range(K3):
                j = K3 - 1 - jj
                c = lane_column(xr, j, n, S3, vs.col)
                # exact as a constant in each loop: the loops hold no branch LLVM cannot flatten
                if exact:
                    for o in range(n):
                        cell[o] = add_idw_grad(via_mean[o], gI[o], c[o], lane_stats(count, vs, o, T), T(0), True, T)
                else:
                    for o in range(n):
                        cell[o] = add_idw_grad(T(0), gI[o], c[o], lane_stats(count, vs, o, T), vs.nzero[o], False, T)
                if S3 == 1:
                    gcol = gxr[j:j + n]
                    for o in range(n):
                        gcol[o] += cell[o]
                else:
                    for o in range(n):
                        gxr[j + o * S3] += cell[o]


@njit(**JIT)
def idw_forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1):
    """Output rows r0 .. r1-1 of the IDW vector forward (interior windows by the row,
    edge windows one by one); method is IDW (the launcher's argument list)."""
    T = x.dtype.type
    g = geometry(x.shape, y.shape, kernel, stride, padding)
    oa, ob = interior(g.k[2], g.s[2], g.p[2], g.L[2], g.O[2])
    vs = idw_scratch(ob - oa, x.dtype)
    pc = PhaseClass((0, 0, 0), (1, 1, 1), g.O)  # every row, in order
    for row in range(r0, r1):
        nc, o1, o2 = phase_row(row, pc)
        for o3 in range(g.O[2]):
            if o3 == oa and ob > oa:
                idw_row_forward(x, nc, o1, o2, oa, ob - oa, window(g, o1, o2, oa), g.k[2], g.s[2], y, mask,
                                want_mask, vs, T)
            if o3 < oa or o3 >= ob:
                forward_window(x, BetaView(beta, bstr, C), g, nc, o1, o2, o3, method, y, mask, want_mask, T)


@njit(**JIT)
def idw_backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                       phase_classes, cls, r0, r1):
    """Rows r0 .. r1-1 of phase class cls (``PoolGeometry.phase_classes(2)``) of the IDW
    vector backward; method is IDW, gb unused (the launcher's argument list)."""
    T = x.dtype.type
    g = geometry(x.shape, gy.shape, kernel, stride, padding)
    oa, ob = interior(g.k[2], g.s[2], g.p[2], g.L[2], g.O[2])
    vs = idw_scratch(ob - oa, x.dtype)
    pc = phase_class(phase_classes, cls)
    no_gw = np.zeros((1, 1, 1, 1, 1, 1, 1), x.dtype)  # calls with a weights' cotangent take the general kernels
    for row in range(r0, r1):
        nc, o1, o2 = phase_row(row, pc)
        for o3 in range(g.O[2]):
            if o3 == oa and ob > oa:
                idw_row_backward(x, gy, gx, nc, o1, o2, oa, ob - oa, window(g, o1, o2, oa), g.k[2], g.s[2], exact, vs,
                                 T)
            if o3 < oa or o3 >= ob:
                backward_window(x, gy, BetaView(beta, bstr, C), g, gx, gb, nc, o1, o2, o3, method, exact, no_gw,
                                False, T)


VECTOR_IDW_KERNELS = RowKernels(idw_forward_chunk, idw_backward_chunk)
