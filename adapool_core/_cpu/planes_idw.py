"""Plane-block kernels for IDW: ``planes``' lanes over 16 planes, IDW's window passes.

``planes`` (a chunk owns blocks of B planes, x transposed per block into
xt[(cell, l)], every window, edge windows included, one loop over its cells
with the B lanes innermost) with ``vector_idw``'s three passes per window:
the mean, then the smallest distance dmin (and the count of zero
distances), then the dmin-scaled sums.  Each pass is branch-free over the
lanes (a lane whose window has dmin == 0 computes its sums too, NaN where
0 / 0, and a select takes the mean instead).  Every lane adds its cells in
the order of ``window_stats`` with the same operations, and the per-cell
formulas are ``window``'s (``idw_weight``, ``add_idw_grad``; the exact
backward's ``idw_cell_terms``, the direct and the mean's terms of a cell
from one pass, 2 divisions instead of 6) on a per-lane ``Stats``: outputs
and weights equal the general kernels' bit for bit, gradients up to
rounding (the order of the operations, and of an input cell's windows:
here ascending output index).  The chunk
loops (``planes.PLANE_KERNELS``, which call these blocks for IDW), tail
blocks and the NaN/inf policy (such planes again by the general code) are
``planes``'.
"""
from __future__ import annotations

import numpy as np
from numba import literally, njit

from .._methods import IDW
from .fastexp import JIT
from .planes import (B, FIN, GD, GM, MEAN, SM, TOTAL, VIA, VMAX, YM, ZD, ZM, add_window_finiteness,
                     add_window_grads, lanes_finite)
from .scratch import at
from .window import Stats, add_idw_grad, idw_cell_terms, idw_weight, split_grad, window

# IDW's per-lane rows of ``planes``' scratch s, besides TOTAL, MEAN, VIA and FIN: rows the
# other methods' quantities take, which IDW does not need.
DMIN, NZERO, ZI, SI, YI, GI, GIZ = VMAX, ZD, ZM, SM, YM, GD, GM
assert FIN not in (DMIN, NZERO, ZI, SI, YI, GI, GIZ, TOTAL, MEAN, VIA)


@njit(inline="always", **JIT)
def lane_stats(count, s, l, T):
    """Lane l's Stats, IDW fields only (the IDW formulas of ``window`` read no others)."""
    zero = T(0)
    return Stats(count, s[MEAN + l], zero, zero, zero, zero, zero, s[DMIN + l], s[ZI + l], s[YI + l])


@njit(inline="always", **JIT)
def plane_idw_stats(xt, D2, D3, w, need_nzero, s, T):
    """``window_stats`` (IDW) of window w in every lane into s, and with need_nzero
    ``zero_distance_count``; returns the cell count."""
    lo1, lo2, lo3 = w.lo
    hi1, hi2, hi3 = w.hi
    for l in range(B):
        s[TOTAL + l] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                base = ((i1 * D2 + i2) * D3 + i3) * B
                for l in range(B):
                    s[TOTAL + l] += xt[at(base + l)]
    count = (hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3)
    add_window_finiteness(s, T)
    for l in range(B):
        s[MEAN + l] = s[TOTAL + l] / T(count)
        s[DMIN + l] = T(np.inf)
        s[NZERO + l] = T(0)
        s[ZI + l] = T(0)
        s[SI + l] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                base = ((i1 * D2 + i2) * D3 + i3) * B
                for l in range(B):
                    dist = abs(xt[at(base + l)] - s[MEAN + l])
                    s[DMIN + l] = dist if dist < s[DMIN + l] else s[DMIN + l]
                if need_nzero:
                    for l in range(B):
                        s[NZERO + l] += T(1) if xt[at(base + l)] - s[MEAN + l] == 0 else T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                base = ((i1 * D2 + i2) * D3 + i3) * B
                for l in range(B):
                    v = xt[at(base + l)]
                    e = s[DMIN + l] / abs(v - s[MEAN + l])  # NaN where dmin == 0: not used
                    s[ZI + l] += e
                    s[SI + l] += e * v
    for l in range(B):
        s[YI + l] = s[MEAN + l] if s[DMIN + l] == 0 else s[SI + l] / s[ZI + l]
    return count


@njit(**JIT)
def plane_idw_forward_block(x, bv, g, nc0, nv, method, y, mask, want_mask, s, lane_nc, xt, yt, T):
    """Outputs (and masks) of planes nc0 .. nc0+nv-1 (``plane_forward_block``'s arguments;
    method is IDW); returns whether every window's cells were finite."""
    literally(method)
    for l in range(B):
        s[FIN + l] = T(0)
    D2, D3 = g.L[1], g.L[2]
    O1, O2, O3 = g.O
    for o1 in range(O1):
        for o2 in range(O2):
            for o3 in range(O3):
                w = window(g, o1, o2, o3)
                count = plane_idw_stats(xt, D2, D3, w, want_mask, s, T)
                out = ((o1 * O2 + o2) * O3 + o3) * B
                for l in range(B):
                    yt[at(out + l)] = s[YI + l]
                if want_mask:
                    st1, st2, st3 = w.start
                    for l in range(nv):
                        st = lane_stats(count, s, l, T)
                        for i1 in range(w.lo[0], w.hi[0]):
                            for i2 in range(w.lo[1], w.hi[1]):
                                for i3 in range(w.lo[2], w.hi[2]):
                                    wt = idw_weight(xt[((i1 * D2 + i2) * D3 + i3) * B + l], st, T)
                                    mask[nc0 + l, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3] = (
                                        wt / s[NZERO + l] if s[DMIN + l] == 0 else wt)
    return lanes_finite(s)


@njit(**JIT)
def plane_idw_backward_block(gyf, bv, g, method, exact, gxt, gbf, s, lane_nc, xt, wgt, T):
    """gxt (zeroed) += dL/dx of one block (``plane_backward_block``'s arguments; method
    is IDW, gbf unused): ``backward_window`` (IDW) lane-wise; returns whether every
    window's cells were finite."""
    literally(method)
    for l in range(B):
        s[FIN + l] = T(0)
    D2, D3 = g.L[1], g.L[2]
    O1, O2, O3 = g.O
    n_out = O1 * O2 * O3
    for o1 in range(O1):
        for o2 in range(O2):
            for o3 in range(O3):
                w = window(g, o1, o2, o3)
                count = plane_idw_stats(xt, D2, D3, w, not exact, s, T)
                out = (o1 * O2 + o2) * O3 + o3
                for l in range(B):
                    _, _, s[GI + l] = split_grad(IDW, gyf[at(lane_nc[l] * n_out + out)], T(0), T)
                    s[GIZ + l] = s[GI + l] / s[ZI + l]  # inf / NaN where dmin == 0: not used
                    s[VIA + l] = T(0)
                lo1, lo2, lo3 = w.lo
                hi1, hi2, hi3 = w.hi
                # Into wgt first, then added to gxt, as in ``plane_backward_block``.
                k = 0
                for i1 in range(lo1, hi1):
                    for i2 in range(lo2, hi2):
                        for i3 in range(lo3, hi3):
                            base = ((i1 * D2 + i2) * D3 + i3) * B
                            # exact as a constant in each loop: no branch LLVM cannot flatten
                            if exact:
                                # The direct term and the mean's (none where dmin == 0: the output
                                # is the mean, and every cell gets gI / count below) in one pass.
                                for l in range(B):
                                    direct, via = idw_cell_terms(s[GIZ + l], xt[at(base + l)], s[MEAN + l],
                                                                 s[DMIN + l], s[YI + l], T)
                                    s[VIA + l] += T(0) if s[DMIN + l] == 0 else via
                                    wgt[at(k + l)] = direct - via
                            else:
                                for l in range(B):
                                    wgt[at(k + l)] = add_idw_grad(T(0), s[GI + l], xt[at(base + l)],
                                                                  lane_stats(count, s, l, T), s[NZERO + l], False, T)
                            k += B
                if exact:  # the mean's share, the same for every cell of the window
                    for l in range(B):
                        s[VIA + l] = s[VIA + l] / T(count)
                        s[GIZ + l] = s[GI + l] / T(count)  # each cell's gradient where dmin == 0
                    for c in range(0, k, B):
                        for l in range(B):
                            wgt[at(c + l)] = s[GIZ + l] if s[DMIN + l] == 0 else wgt[at(c + l)] + s[VIA + l]
                add_window_grads(gxt, wgt, w, D2, D3)
    return lanes_finite(s)
