"""Row kernels: the common last-axis windows (2x2/2 and 3x3/2 pooling), float32 and float64.

A thread owns whole output rows (nc, o1, o2) and computes all interior
windows of a row (those entirely inside the input along the last axis)
together, in passes over the row: each pass loops over the windows o with
the few cells of a window innermost and unrolled, so LLVM vectorises across
windows (lanes = windows: no reassociation, each window sums its cells in
the order of ``window_stats``).  Per-window values live in a RowStats (one
short array per quantity).  Edge windows take the general per-window code.
The per-cell formulas are those of ``window``, shared with the general
kernels.

``ROW_KERNELS`` is the table of cases: (last-axis window width, stride) ->
the forward and backward kernels built for it.  ``row_kernels`` chooses from
it; each entry is a compile-time specialisation of the same code (K3, S3
and the method as ``literally`` arguments).  Every other geometry takes
``vector`` (any K3 and S3 at run time).  On these two cases the row kernels
measured 11-35% faster than ``vector`` in float32 and float64, but for the
backward of 3x3/2, which is ``vector``'s (``ROW_KERNELS``; docs/benchmarks.md,
``benchmarks/row_vs_vector.py``).
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import literally, njit

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT
from .general import backward_window, forward_window
from .scratch import spread_width
from .window import (BetaView, add_dscw_grad, add_dscw_mean_grad, add_em_grad, beta_grad, beta_plane_offset, blend,
                     cell_weight, clamped_beta_at, dscw_score, em_score, geometry, phase_class, phase_row, split_grad,
                     window)

# Per-window quantities of the interior windows of one row (each a 1-D array
# over the windows): the window statistics (as Stats), the clamped beta, the
# output gradient's eDSCW and eM shares, and the gradient through the mean.
RowStats = namedtuple("RowStats", ("total", "vmax", "mean", "zD", "sD", "yD", "zM", "sM", "yM",
                                   "bc", "gD", "gM", "via_mean"))


@njit(**JIT)
def row_stats_scratch(n, dtype):
    """A RowStats for n windows (one allocation, one 1-D view per quantity: it
    keeps each inner loop's memory streams simple enough for LLVM's vectoriser)."""
    a = np.empty((13, spread_width(n, dtype)), dtype=dtype)  # rows apart mod 4 KiB
    return RowStats(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12])


@njit(**JIT)
def interior(k, s, p, length, n_out):
    """[a, b): output indices whose window [o*s - p, o*s - p + k) lies inside [0, length)."""
    a = (p + s - 1) // s
    b = (length + p - k) // s + 1
    if b > n_out:
        b = n_out
    if b < a:
        b = a
    return a, b


@njit(**JIT)
def row_chunk(chunk, n_chunks, n_rows):
    """[r0, r1): the rows of one chunk of an even split."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks


@njit(**JIT)
def row_window_stats(x, nc, w, n, K3, S3, need_d, need_m, rs, T):
    """``window_stats`` (eDSCW, eM) of the interior windows o < n of one row into rs;
    w is the window of the first one, window o covers columns w.start[2] + o*S3 + [0, K3).
    Returns the cell count of a window."""
    literally(K3)
    literally(S3)
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    rs_total, rs_max, rs_mean = rs.total, rs.vmax, rs.mean
    rs_zd, rs_sd, rs_zm, rs_sm = rs.zD, rs.sD, rs.zM, rs.sM
    for o in range(n):
        rs_total[o] = T(0)
        rs_max[o] = -T(np.inf)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            for o in range(n):
                base = o * S3
                tot = rs_total[o]
                vmax = rs_max[o]
                for j in range(K3):
                    v = xr[base + j]
                    tot += v
                    vmax = v if v > vmax else vmax
                rs_total[o] = tot
                rs_max[o] = vmax
    count = (hi1 - lo1) * (hi2 - lo2) * K3
    for o in range(n):
        rs_mean[o] = rs_total[o] / T(count)
        rs_zd[o] = T(0)
        rs_sd[o] = T(0)
        rs_zm[o] = T(0)
        rs_sm[o] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            if need_d:
                for o in range(n):
                    base = o * S3
                    mean = rs_mean[o]
                    z = rs_zd[o]
                    sw = rs_sd[o]
                    for j in range(K3):
                        v = xr[base + j]
                        e = dscw_score(v, mean, T)
                        z += e
                        sw += e * v
                    rs_zd[o] = z
                    rs_sd[o] = sw
            if need_m:
                for o in range(n):
                    base = o * S3
                    vmax = rs_max[o]
                    z = rs_zm[o]
                    sw = rs_sm[o]
                    for j in range(K3):
                        v = xr[base + j]
                        e = em_score(v, vmax)
                        z += e
                        sw += e * v
                    rs_zm[o] = z
                    rs_sm[o] = sw
    for o in range(n):
        rs.yD[o] = rs_sd[o] / rs_zd[o]
        rs.yM[o] = rs_sm[o] / rs_zm[o]
    return count


@njit(**JIT)
def row_forward(x, bv, nc, o1, o2, oa, n, w, K3, S3, method, y, mask, want_mask, rs, T):
    """Outputs (and masks) of the interior windows oa .. oa+n-1 of one row; w is window oa's."""
    literally(K3)
    literally(S3)
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    beta_at = beta_plane_offset(bv, nc)  # once per row, not per window (an integer division)
    row_window_stats(x, nc, w, n, K3, S3, need_d, need_m, rs, T)
    for o in range(n):
        o3 = oa + o
        bc = T(0)
        if method == ADA:
            _, bc = clamped_beta_at(bv, beta_at, o1, o2, o3, T)
        rs.bc[o] = bc
        y[nc, o1, o2, o3] = blend(method, bc, rs.yD[o], rs.yM[o], T)
    if want_mask:
        st1, st2, col0 = w.start
        for o in range(n):
            o3 = oa + o
            bc = rs.bc[o]
            mean = rs.mean[o]
            vmax = rs.vmax[o]
            for i1 in range(w.lo[0], w.hi[0]):
                for i2 in range(w.lo[1], w.hi[1]):
                    for j in range(K3):
                        v = x[nc, i1, i2, col0 + o * S3 + j]
                        mask[nc, o1, o2, o3, i1 - st1, i2 - st2, j] = cell_weight(
                            method, bc, v, mean, vmax, rs.zD[o], rs.zM[o], T)


@njit(**JIT)
def row_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, w, K3, S3, method, exact, rs, T):
    """``backward_window`` for the interior windows oa .. oa+n-1 of one row, in passes;
    w is window oa's.

    The cell gradients are added to gx one kernel column j at a time, j
    descending: within a j the windows write distinct cells (vectorisable),
    and each cell receives its windows' terms in ascending o3 order.
    """
    literally(K3)
    literally(S3)
    literally(method)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    beta_at = beta_plane_offset(bv, nc)
    count = row_window_stats(x, nc, w, n, K3, S3, need_d, need_m, rs, T)
    lo1, lo2, col0 = w.lo[0], w.lo[1], w.start[2]
    hi1, hi2 = w.hi[0], w.hi[1]
    rs_mean, rs_max, rs_vm = rs.mean, rs.vmax, rs.via_mean
    rs_zd, rs_yd, rs_zm, rs_ym = rs.zD, rs.yD, rs.zM, rs.yM
    rs_gd, rs_gm = rs.gD, rs.gM
    for o in range(n):
        o3 = oa + o
        g = gy[nc, o1, o2, o3]
        b = T(0)
        bc = T(0)
        if method == ADA:
            b, bc = clamped_beta_at(bv, beta_at, o1, o2, o3, T)
            gb[nc, o1, o2, o3] = beta_grad(g, b, rs_yd[o], rs_ym[o], T)
        gD, gM, _ = split_grad(method, g, bc, T)
        rs_gd[o] = gD
        rs_gm[o] = gM
        rs_vm[o] = T(0)
    if exact and need_d:
        # The mean's share of the gradient, spread equally over the window.
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                xr = x[nc, i1, i2, col0:]
                for o in range(n):
                    base = o * S3
                    mean = rs_mean[o]
                    zd = rs_zd[o]
                    yd = rs_yd[o]
                    gd = rs_gd[o]
                    vm = rs_vm[o]
                    for j in range(K3):
                        vm = add_dscw_mean_grad(vm, gd, xr[base + j], mean, zd, yd, T)
                    rs_vm[o] = vm
        for o in range(n):
            rs_vm[o] = rs_vm[o] / T(count)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            xr = x[nc, i1, i2, col0:]
            gxr = gx[nc, i1, i2, col0:]
            for jj in range(K3):
                j = K3 - 1 - jj
                for o in range(n):
                    col = o * S3 + j
                    v = xr[col]
                    grad = rs_vm[o]
                    if need_d:
                        grad = add_dscw_grad(grad, rs_gd[o], v, rs_mean[o], rs_zd[o], rs_yd[o], exact, T)
                    if need_m:
                        grad = add_em_grad(grad, rs_gm[o], v, rs_max[o], rs_zm[o], rs_ym[o], exact, T)
                    gxr[col] += grad


@njit(**JIT)
def forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, K3, S3):
    """Output rows r0 .. r1-1 of the row kernel's forward."""
    literally(K3)
    literally(S3)
    literally(method)
    T = x.dtype.type
    g = geometry(x.shape, y.shape, kernel, stride, padding)
    bv = BetaView(beta, bstr, C)
    O1, O2, O3 = g.O
    oa, ob = interior(K3, S3, g.p[2], g.L[2], O3)
    n = ob - oa
    rs = row_stats_scratch(n, x.dtype)
    for row in range(r0, r1):
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        if n > 0:
            row_forward(x, bv, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method, y, mask, want_mask,
                        rs, T)
        for o3 in range(O3):
            if o3 < oa or o3 >= ob:
                forward_window(x, bv, g, nc, o1, o2, o3, method, y, mask, want_mask, T)


@njit(**JIT)
def backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                   phase_classes, cls, r0, r1, K3, S3):
    """Rows r0 .. r1-1 of phase class cls (of phase_classes) of the row kernel's backward."""
    literally(K3)
    literally(S3)
    literally(method)
    T = x.dtype.type
    g = geometry(x.shape, gy.shape, kernel, stride, padding)
    bv = BetaView(beta, bstr, C)
    pc = phase_class(phase_classes, cls)
    O3 = g.O[2]
    oa, ob = interior(K3, S3, g.p[2], g.L[2], O3)
    n = ob - oa
    rs = row_stats_scratch(n, x.dtype)
    no_gw = np.zeros((1, 1, 1, 1, 1, 1, 1), x.dtype)  # row kernels serve calls without a weights' cotangent
    for row in range(r0, r1):
        nc, o1, o2 = phase_row(row, pc)
        for o3 in range(O3):
            if o3 == oa and n > 0:
                row_backward(x, gy, bv, gx, gb, nc, o1, o2, oa, n, window(g, o1, o2, oa), K3, S3, method, exact,
                             rs, T)
            if o3 < oa or o3 >= ob:
                backward_window(x, gy, bv, g, gx, gb, nc, o1, o2, o3, method, exact, no_gw, False, T)


# The chunk functions are the kernels: ``launch`` runs them on Python threads
# (they release the GIL), each on a share of the rows, instead of a Numba
# parfor: a parfor wrapper cost about 4 s of compilation per kernel on its
# own, and LLVM vectorises the row passes better outside a parfor body
# (measured 1.5x).  One module-level function per case, ``method`` a
# compile-time literal: closures over dispatchers defeat Numba's disk cache.

@njit(**JIT)
def forward_chunk_k2s2(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1):
    literally(method)
    forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, 2, 2)


@njit(**JIT)
def forward_chunk_k3s2(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1):
    literally(method)
    forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, r0, r1, 3, 2)


@njit(**JIT)
def backward_chunk_k2s2(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                         phase_classes, cls, r0, r1):
    literally(method)
    backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb,
                   phase_classes, cls, r0, r1, 2, 2)


# plane_block: 0 where a chunk owns output rows (nc, o1, o2); B where it owns
# blocks of B planes (``planes``: the backward then needs no phase classes).
RowKernels = namedtuple("RowKernels", ("forward", "backward", "plane_block"), defaults=(0,))

# (last-axis window width, stride) -> its row kernels: the only place that
# lists the cases.  A backward of None is the vector kernels' (``row_kernels``):
# on 3x3/2 the vector backward, which shares eM's exps between the overlapping
# windows of a row, measured 2-23% faster than the row kernel's (adaPool 13-23%;
# 1 thread, (2, 16, 256, 256), ``benchmarks/row_vs_vector.py``) while the row
# forward stays 11-35% ahead.
ROW_KERNELS = {
    (2, 2): RowKernels(forward_chunk_k2s2, backward_chunk_k2s2),
    (3, 2): RowKernels(forward_chunk_k3s2, None),
}


def row_kernels(x3, geom, method):
    """The RowKernels for this problem, or None (``vector``'s or the general kernels).

    Row kernels serve float32 and float64 and every method but IDW.
    """
    if method == IDW:
        return None
    rows = ROW_KERNELS.get((geom.kernel[2], geom.stride[2]))
    if rows is not None and rows.backward is None:
        from .vector import VECTOR_KERNELS  # here: vector imports this module
        rows = rows._replace(backward=VECTOR_KERNELS.backward)
    return rows
