"""Plane-block kernels: lanes over planes, for overlapping windows and short rows.

The row and vector kernels put the windows of one output row in the lanes;
on short rows (a 20-wide input, 16 interior windows) and overlapping
windows their per-row work dominates.  Here a chunk owns whole blocks of
``B`` consecutive planes nc of the canonical (NC, D1, D2, D3) input, and the
lanes are the planes of a block: every plane has the same window geometry,
so every window, edge windows included, is the same loop over its valid
cells with ``for l in range(B)`` innermost (a constant trip count, which
LLVM vectorises).  Per block, x is transposed into per-chunk scratch
xt[(cell, l)] = x[nc0 + l, cell], and eM's exps, shifted by each plane's
max, once per cell into et (``shared_exps``).  Each window's per-lane
statistics come from one pass over its cells (sum, max, eM's sums of et),
and a second for eDSCW's (which needs the mean); the outputs go to
yt[(o, l)], transposed into y at the end of the block.  The per-cell
formulas are ``window``'s.

Blocks start at multiples of B from the first plane of the call; a lane's
result depends on its plane alone, not on the block it shares (each lane
runs the same operations), so results depend neither on the thread count
nor on how ``_beta_slices`` cuts the planes.  A tail block's missing lanes
compute on copies of its first plane and are discarded.  A block with a
window holding a non-finite value (NaN, inf) is flagged (by the window's sum,
``add_window_finiteness``), and ``launch`` computes the whole
call again by the general per-window kernels, so the NaN/inf policy is
exactly theirs; not calling the general code from here keeps it out of
these kernels' compilation (the first call's time).  The backward
owns whole planes too, so it needs no phase classes: it accumulates the
block's dL/dx in scratch gxt and adds it to gx.  Where the forward shares eM's
exps and a plane is small, the backward shares them too (``PLANE_SHARED_KERNELS``,
``backward_shares_em_exps``).

As in ``vector``, arrays are read through flat offsets and the helpers of the
hot loops are inlined: a slice, or a call taking arrays, updates the array's
reference count, an atomic every thread shares.  IDW's block kernels are
``planes_idw``'s (its weights need the window mean and smallest distance
first), in these chunk loops.
"""
from __future__ import annotations

import numpy as np
from numba import literally, njit
from numba.extending import register_jitable

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT, shared_exp_margin
from .rows import RowKernels
from .scratch import SLOT, at, spread_empty, stack_empty
from .window import (BetaView, add_em_weight_term, beta_grad, beta_plane_offset, blend, cell_weight, clamped_beta_at,
                     dsc_partials, dscw_score, em_score, geometry, split_grad, window)

# Planes per block: the lanes of every inner loop (16 float32 = one AVX-512
# register, two AVX2 ones).
B = 16

# Per-lane quantities of one window, rows of B in one flat scratch array
# ``s`` (s[ROW + l]): the window statistics (as ``Stats``), the clamped beta,
# the output gradient's eDSCW and eM shares, the gradient through the mean,
# the windows' finiteness sums (``add_window_finiteness``), the plane's eM shift (``shared_exps``) and 1 where
# the window keeps its own max instead (``plane_window_stats``).  One array read at constant offsets lets LLVM
# prove the rows disjoint: with one array per quantity it emitted a run-time
# alias check per pair in every 16-lane loop (and gave up on vectorising the
# backward's, past its limit of checks).  The block kernels keep these rows on their own stack
# (``scratch.stack_empty``): LLVM then knows no store to an array argument changes them and
# keeps a window's sums in registers across its cell loops (same run, 2 threads: forward
# and forward+backward 5-35% faster, eM's forward on k3 s1 and k5 s1 the most); the chunk's
# array s carries shared_exps' row (SHIFT) and IDW's rows.  Their per-window loops over the
# lanes run to ``nl`` = B read at run time: at a constant 16, LLVM unrolled them into scalar
# code (16 scalar divisions each) instead of vectorising them (1 thread, time.thread_time,
# same session: eDSCW forward k3 s2 float32 5.9 -> 5.0 ms, 3-D 6.6 -> 5.7; adaPool backward
# k3 s2 23.9 -> 22.2).
TOTAL, VMAX, MEAN, ZD, SD, ZM, SM, YD, YM, BC, GD, GM, VIA, FIN, SHIFT, OWN = [r * B for r in range(16)]
N_ROWS = 16
SCRATCH_LEN = N_ROWS * B


@njit(**JIT)
def plane_scratch(dtype):
    """(s, lane_nc): the per-lane scratch and the plane each lane reads."""
    return np.empty(N_ROWS * B, dtype=dtype), np.empty(B, dtype=np.int64)


@njit(inline="always", **JIT)
def block_lanes(lane_nc, nc0, NC):
    """Fills lane_nc for the block at plane nc0; returns its count of valid lanes
    (a tail block's other lanes read plane nc0)."""
    nv = min(B, NC - nc0)
    for l in range(B):
        lane_nc[l] = nc0 + l if l < nv else nc0
    return nv


@njit(inline="always", **JIT)
def to_lanes(src, size, lane_nc, dst):
    """dst[p * B + l] = src[lane_nc[l] * size + p] for p < size (src flat, (planes, size)).

    No finiteness check here: its per-cell sums over gathered loads stay scalar (measured
    a third of the transpose's time, 3-D (4, 32, 8, 56, 56) float32); the window
    statistics check their sums instead (``add_window_finiteness``)."""
    for p in range(size):
        for l in range(B):
            dst[at(p * B + l)] = src[at(lane_nc[l] * size + p)]


@njit(inline="always", **JIT)
def add_window_finiteness(s, T):
    """s[FIN + l] += the window's sum times 0: NaN from then on where the window holds a NaN or
    an inf (or its sum overflows: the general kernels redo the call, as for a NaN).  The
    windows' cells are the only ones the outputs read: a NaN in a cell no window covers
    changes nothing, in these kernels and in the general ones."""
    for l in range(B):
        s[FIN + l] += s[TOTAL + l] * T(0)


@njit(inline="always", **JIT)
def lanes_finite(s):
    """Whether every lane's s[FIN + l] is still 0 (s[FIN + l] zeroed at the block's start)."""
    ok = True
    for l in range(B):
        ok = ok and s[FIN + l] == 0
    return ok


@njit(inline="always", **JIT)
def from_lanes(src, size, nc0, nv, dst, add):
    """dst[(nc0 + l) * size + p] = (or +=) src[p * B + l] for the nv valid lanes (a
    non-finite block's sums too: ``launch`` zeroes dst and redoes the call)."""
    for l in range(nv):
        base = (nc0 + l) * size
        if add:
            for p in range(size):
                dst[at(base + p)] += src[at(p * B + l)]
        else:
            for p in range(size):
                dst[at(base + p)] = src[at(p * B + l)]


@njit(inline="always", **JIT)
def shared_exps(xt, size, et, s, T):
    """eM's exps shared by a plane's windows: s[SHIFT + l] = the max of lane l's plane
    (xt: ``to_lanes``' layout, size cells), et[p * B + l] = exp(xt[p * B + l] - s[SHIFT + l])."""
    for l in range(B):
        s[SHIFT + l] = -T(np.inf)
    for p in range(size):
        for l in range(B):
            v = xt[at(p * B + l)]
            s[SHIFT + l] = v if v > s[SHIFT + l] else s[SHIFT + l]
    for p in range(size):
        for l in range(B):
            et[at(p * B + l)] = em_score(xt[at(p * B + l)], s[SHIFT + l])


@njit(inline="always", **JIT)
def plane_window_stats(xt, et, D2, D3, w, need_d, need_m, share_m, s, scores, store, nl, T):
    """``window_stats`` (eDSCW, eM) of window w in every lane into s; returns (cell count,
    whether a lane keeps its own max).  Without share_m every lane keeps its
    own max and et is not read.  With store (the backward's, a constant: the
    forward's code stores nothing) the second pass keeps each cell's scores for
    the gradient loop, in the window's cell order, B lanes each: eDSCW's at
    scores[k + l], eM's at scores[len(scores) // 2 + k + l] (with share_m, the shared
    exps copied from et in the first pass; where a lane keeps its own max, the second
    pass stores every lane's again: the others' shift is the plane's, the same exps).

    eM sums the plane's shared exps et (``shared_exps``): the weights are invariant
    to the shift.  A window whose max is more than ``shared_exp_margin`` below the
    plane's max would lose its weights' precision (or see them underflow): in that
    lane it keeps its own max, recomputing its exps.  s[VMAX + l] holds the shift
    used (the plane's max or the window's): the mask and the backward use it with zM."""
    lo1, lo2, lo3 = w.lo
    hi1, hi2, hi3 = w.hi
    for l in range(nl):
        s[TOTAL + l] = T(0)
        s[VMAX + l] = -T(np.inf)
        s[ZM + l] = T(0)
        s[SM + l] = T(0)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                base = ((i1 * D2 + i2) * D3 + i3) * B
                for l in range(B):
                    v = xt[at(base + l)]
                    s[TOTAL + l] += v  # every method: add_window_finiteness reads it
                    if need_m:
                        s[VMAX + l] = v if v > s[VMAX + l] else s[VMAX + l]
                    if need_m and share_m:
                        e = et[at(base + l)]
                        s[ZM + l] += e
                        s[SM + l] += e * v
                        if store:
                            k = (((i1 - lo1) * (hi2 - lo2) + i2 - lo2) * (hi3 - lo3) + i3 - lo3) * B
                            scores[at(len(scores) // 2 + k + l)] = e
    count = (hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3)
    add_window_finiteness(s, T)
    n_own = 0
    if need_m:
        margin = shared_exp_margin(T)
        for l in range(nl):
            own = not share_m or s[VMAX + l] < s[SHIFT + l] - margin
            s[OWN + l] = T(1) if own else T(0)
            s[VMAX + l] = s[VMAX + l] if own else s[SHIFT + l]
            s[ZM + l] = T(0) if own else s[ZM + l]
            s[SM + l] = T(0) if own else s[SM + l]
            n_own += 1 if own else 0
    else:
        for l in range(nl):
            s[OWN + l] = T(0)
    fallback = n_own > 0
    for l in range(nl):
        s[MEAN + l] = s[TOTAL + l] / T(count)
        s[ZD + l] = T(0)
        s[SD + l] = T(0)
    if need_d or fallback:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    base = ((i1 * D2 + i2) * D3 + i3) * B
                    # From the cell, not a counter: a counter (dead without store) measured
                    # the eM forward 5-10% slower.
                    k = (((i1 - lo1) * (hi2 - lo2) + i2 - lo2) * (hi3 - lo3) + i3 - lo3) * B
                    if need_d:
                        for l in range(B):
                            v = xt[at(base + l)]
                            e = dscw_score(v, s[MEAN + l], T)
                            s[ZD + l] += e
                            s[SD + l] += e * v
                            if store:
                                scores[at(k + l)] = e
                    if fallback:
                        for l in range(B):
                            v = xt[at(base + l)]
                            e = em_score(v, s[VMAX + l])
                            own = s[OWN + l] != 0
                            s[ZM + l] = s[ZM + l] + e if own else s[ZM + l]
                            s[SM + l] = s[SM + l] + e * v if own else s[SM + l]
                            if store:
                                scores[at(len(scores) // 2 + k + l)] = e
    for l in range(nl):
        s[YD + l] = s[SD + l] / s[ZD + l] if need_d else T(0)
        s[YM + l] = s[SM + l] / s[ZM + l] if need_m else T(0)
    return count, fallback


@njit(**JIT)
def plane_forward_block(x, bv, g, nc0, nv, method, y, mask, want_mask, chunk_s, lane_nc, xt, et, share_m, yt, T):
    """Outputs (and masks) of planes nc0 .. nc0+nv-1 (lane_nc filled, x in xt; with
    share_m, eM's shared exps in et, and their shifts in chunk_s); returns whether every
    window's cells were finite."""
    literally(method)
    s = stack_empty(SCRATCH_LEN, x.dtype)  # the window's per-lane rows stay in registers
    beta_at = stack_empty(B, lane_nc.dtype)  # each lane's beta offset, once per block
    nl = lane_nc.shape[0]  # B, as a run-time trip count: per-window lane loops vectorised, not unrolled
    for l in range(nl):
        s[SHIFT + l] = chunk_s[SHIFT + l]
        s[FIN + l] = T(0)
        beta_at[l] = beta_plane_offset(bv, lane_nc[l])
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    D2, D3 = g.L[1], g.L[2]
    O1, O2, O3 = g.O
    for o1 in range(O1):
        for o2 in range(O2):
            for o3 in range(O3):
                w = window(g, o1, o2, o3)
                plane_window_stats(xt, et, D2, D3, w, need_d, need_m, share_m, s, et, False, nl, T)
                out = ((o1 * O2 + o2) * O3 + o3) * B
                if method == ADA:
                    for l in range(nl):
                        _, s[BC + l] = clamped_beta_at(bv, beta_at[l], o1, o2, o3, T)
                for l in range(nl):
                    yt[at(out + l)] = blend(method, s[BC + l], s[YD + l], s[YM + l], T)
                if want_mask:
                    st1, st2, st3 = w.start
                    for l in range(nv):
                        for i1 in range(w.lo[0], w.hi[0]):
                            for i2 in range(w.lo[1], w.hi[1]):
                                for i3 in range(w.lo[2], w.hi[2]):
                                    v = xt[((i1 * D2 + i2) * D3 + i3) * B + l]
                                    mask[nc0 + l, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3] = cell_weight(
                                        method, s[BC + l], v, s[MEAN + l], s[VMAX + l], s[ZD + l], s[ZM + l], T)
    return lanes_finite(s)


@njit(inline="always", **JIT)
def add_window_grads(gxt, wgt, w, D2, D3):
    """gxt += the window's cell gradients wgt (in the window's cell order, B lanes each)."""
    k = 0
    for i1 in range(w.lo[0], w.hi[0]):
        for i2 in range(w.lo[1], w.hi[1]):
            for i3 in range(w.lo[2], w.hi[2]):
                base = ((i1 * D2 + i2) * D3 + i3) * B
                for l in range(B):
                    gxt[at(base + l)] += wgt[k + l]
                k += B


@njit(**JIT)
def plane_backward_block(gyf, bv, g, method, exact, gxt, gbf, chunk_s, lane_nc, xt, et, share_m, wgt, wvia, scores,
                         T):
    """gxt (zeroed) += dL/dx of one block and gb = dL/dbeta per output cell (ADA; gyf, gbf:
    gy and gb flat) (lane_nc filled, x in xt): ``backward_window`` lane-wise.  gy and gb
    are read and written per lane in place: scratch for them measured 0.1x the input in
    forward+backward's peak memory (2 threads, (8, 64, 56, 56) k3 s1).  With share_m,
    eM's weights are the plane's shared exps et (``shared_exps``, shifts in chunk_s), as
    in the forward: one exp per cell instead of one per (cell, window) pair.

    The window's eDSCW scores, and its eM scores where it does not share et, come from
    ``plane_window_stats``' pass (scores, 2 * len(wgt)), not computed again (an exp
    each, and eDSCW's division).
    One pass over a window's cells computes its direct gradients and (exact mode)
    eDSCW's gradient through the mean, with one ``dsc_partials`` per cell; those terms go
    to wvia and are summed after (accumulating them in s in that loop measured 2x slower,
    eDSCW k3 s1), and the mean's share, spread equally over the window, is added with
    the direct ones."""
    literally(method)
    s = stack_empty(SCRATCH_LEN, xt.dtype)  # as in plane_forward_block
    beta_at = stack_empty(B, lane_nc.dtype)
    nl = lane_nc.shape[0]
    for l in range(nl):
        s[SHIFT + l] = chunk_s[SHIFT + l]
        s[FIN + l] = T(0)
        beta_at[l] = beta_plane_offset(bv, lane_nc[l])
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    D2, D3 = g.L[1], g.L[2]
    O1, O2, O3 = g.O
    n_out = O1 * O2 * O3
    n_cells = len(scores) // 2
    for o1 in range(O1):
        for o2 in range(O2):
            for o3 in range(O3):
                w = window(g, o1, o2, o3)
                count, _ = plane_window_stats(xt, et, D2, D3, w, need_d, need_m, share_m, s, scores, True, nl, T)
                out = (o1 * O2 + o2) * O3 + o3
                for l in range(nl):
                    s[BC + l] = T(0)
                if method == ADA:  # a tail block's copies of plane nc0 write its own value again
                    for l in range(nl):
                        b, s[BC + l] = clamped_beta_at(bv, beta_at[l], o1, o2, o3, T)
                        gy_at = gyf[at(lane_nc[l] * n_out + out)]
                        gbf[at(lane_nc[l] * n_out + out)] = beta_grad(gy_at, b, s[YD + l], s[YM + l], T)
                # GD, GM divided by the window's normalisers here, once, not each score
                # per cell: gD * (e / zD) becomes (gD / zD) * e (equal but for rounding).
                for l in range(nl):
                    gd, gm, _ = split_grad(method, gyf[at(lane_nc[l] * n_out + out)], s[BC + l], T)
                    s[GD + l] = gd / s[ZD + l] if need_d else T(0)
                    s[GM + l] = gm / s[ZM + l] if need_m else T(0)
                    s[VIA + l] = T(0)
                lo1, lo2, lo3 = w.lo
                hi1, hi2, hi3 = w.hi
                # The window's cell gradients into wgt first, then added to gxt: the loop
                # that adds them into gxt itself measured 2x slower (eM, k5 s1).
                k = 0
                for i1 in range(lo1, hi1):
                    for i2 in range(lo2, hi2):
                        for i3 in range(lo3, hi3):
                            base = ((i1 * D2 + i2) * D3 + i3) * B
                            for l in range(B):
                                v = xt[at(base + l)]
                                gr = T(0)
                                if need_d:
                                    gw = s[GD + l] * scores[at(k + l)]
                                    gr += gw
                                    if exact:
                                        d_dv, d_dm = dsc_partials(v, s[MEAN + l], v - s[YD + l], T)
                                        gr += gw * d_dv
                                        wvia[at(k + l)] = gw * d_dm
                                if need_m:
                                    gr = add_em_weight_term(gr, s[GM + l], v, scores[at(n_cells + k + l)], s[YM + l],
                                                            exact, T)
                                wgt[at(k + l)] = gr
                            k += B
                if exact and need_d:  # the mean's share, the same for every cell of the window
                    for c in range(0, k, B):
                        for l in range(B):
                            s[VIA + l] += wvia[at(c + l)]
                    for l in range(nl):
                        s[VIA + l] = s[VIA + l] / T(count)
                    for c in range(0, k, B):
                        for l in range(B):
                            wgt[at(c + l)] += s[VIA + l]
                add_window_grads(gxt, wgt, w, D2, D3)
    return lanes_finite(s)


# The largest shared-exps scratch (bytes per thread) the backward allocates: (8, 256, 20, 20)
# k5 s1 (25.6 KB float32, 51 KB float64) shares, (8, 64, 56, 56) k3 s1 (200 KB float32) does not.
BACKWARD_SHARED_EXPS_MAX_BYTES = 64 * 1024


@register_jitable
def shares_em_exps(method, kernel, stride):
    """Whether eM shares its exps between a plane's windows (``shared_exps``): where they
    overlap enough to repay the extra pass over the plane (forward measured 2.5x faster
    on k5 s1, 2x slower on k2 s2 and k3 s2)."""
    volume = kernel[0] * kernel[1] * kernel[2]
    return (method == EM or method == ADA) and volume >= 4 * stride[0] * stride[1] * stride[2]


def backward_shares_em_exps(geom, method, dtype):
    """Whether the plane backward shares eM's exps (``PLANE_SHARED_KERNELS``): as the
    forward, while that scratch (a third P * B array per thread, beside xt and gxt) stays
    small.  On (8, 64, 56, 56) k3 s1 (3136-cell planes) it took forward+backward's peak
    from 2.20x to 2.26x the input, past test_memory's bound.  The rule reads the plane
    geometry alone (never the thread count or a slice's planes): results do not depend on them."""
    plane_bytes = geom.in_size[0] * geom.in_size[1] * geom.in_size[2] * B * np.dtype(dtype).itemsize
    return shares_em_exps(method, geom.kernel, geom.stride) and plane_bytes <= BACKWARD_SHARED_EXPS_MAX_BYTES


@njit(inline="always", **JIT)
def chunk_setup(x, out_shape, kernel, stride, padding, beta, bstr, C):
    """(Geometry, BetaView, cells of a plane P, outputs of a plane O, s, lane_nc, xt) of a chunk."""
    g = geometry(x.shape, out_shape, kernel, stride, padding)
    s, lane_nc = plane_scratch(x.dtype)
    P = g.L[0] * g.L[1] * g.L[2]
    return (g, BetaView(beta, bstr, C), P, g.O[0] * g.O[1] * g.O[2], s, lane_nc,
            spread_empty(P * B, x.dtype, 0))


@njit(**JIT)
def plane_forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, nonfinite, r0, r1):
    """Blocks r0 .. r1-1 (planes r0*B .. r1*B-1) of the plane forward; nonfinite[blk] = 1
    where block blk holds a NaN or an inf (``launch`` then takes the general kernels)."""
    literally(method)
    T = x.dtype.type
    g, bv, P, O, s, lane_nc, xt = chunk_setup(x, y.shape, kernel, stride, padding, beta, bstr, C)
    yt = spread_empty(O * B, x.dtype, 3)
    share_m = shares_em_exps(method, g.k, g.s)
    et = spread_empty(P * B if share_m else 0, x.dtype, 1)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    for blk in range(r0, r1):
        nc0 = blk * B
        nv = block_lanes(lane_nc, nc0, x.shape[0])
        to_lanes(xf, P, lane_nc, xt)
        if method == IDW:
            finite = plane_idw_forward_block(x, bv, g, nc0, nv, method, y, mask, want_mask, s, lane_nc, xt, yt, T)
        else:
            if share_m:
                shared_exps(xt, P, et, s, T)
            finite = plane_forward_block(x, bv, g, nc0, nv, method, y, mask, want_mask, s, lane_nc, xt, et, share_m,
                                         yt, T)
        from_lanes(yt, O, nc0, nv, yf, False)
        nonfinite[blk] = 0 if finite else 1


@njit(inline="always", **JIT)
def plane_backward_blocks(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0, r1,
                          share_m):
    """Blocks r0 .. r1-1 of the plane backward: gx += dL/dx, gb = dL/dbeta per output cell (ADA);
    nonfinite as in ``plane_forward_chunk``.  share_m (a constant: each chunk kernel below
    compiles one case, and a first call only the one it takes) shares eM's exps."""
    T = x.dtype.type
    g, bv, P, O, s, lane_nc, xt = chunk_setup(x, gy.shape, kernel, stride, padding, beta, bstr, C)
    gxt = spread_empty(P * B, x.dtype, 1)
    et = spread_empty(P * B, x.dtype, 3) if share_m else xt  # unread without share_m: no padded page
    # The window buffers share one allocation (each page of padding counts in forward+backward's
    # peak memory), a SLOT apart beyond their sizes.
    n_pairs = g.k[0] * g.k[1] * g.k[2] * B
    gap = SLOT // 4
    window_scratch = spread_empty(4 * n_pairs + 2 * gap, x.dtype, 2)
    wgt = window_scratch[:n_pairs]
    wvia = window_scratch[n_pairs + gap:2 * n_pairs + gap]
    scores = window_scratch[2 * n_pairs + 2 * gap:]
    xf = x.reshape(-1)
    gxf = gx.reshape(-1)
    gyf = gy.reshape(-1)
    gbf = gb.reshape(-1)
    for blk in range(r0, r1):
        nc0 = blk * B
        nv = block_lanes(lane_nc, nc0, x.shape[0])
        to_lanes(xf, P, lane_nc, xt)
        gxt[:] = 0
        if method == IDW:
            finite = plane_idw_backward_block(gyf, bv, g, method, exact, gxt, gbf, s, lane_nc, xt, wgt, T)
        else:
            if share_m:
                shared_exps(xt, P, et, s, T)
            finite = plane_backward_block(gyf, bv, g, method, exact, gxt, gbf, s, lane_nc, xt, et, share_m, wgt, wvia,
                                          scores, T)
        from_lanes(gxt, P, nc0, nv, gxf, True)
        nonfinite[blk] = 0 if finite else 1


@njit(**JIT)
def plane_backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0, r1):
    """``plane_backward_blocks``, each window's eM exps its own."""
    literally(method)
    plane_backward_blocks(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0, r1,
                          False)


@njit(**JIT)
def plane_shared_backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0,
                                r1):
    """``plane_backward_blocks`` with eM's exps shared by a plane's windows (``backward_shares_em_exps``)."""
    literally(method)
    plane_backward_blocks(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0, r1,
                          True)


PLANE_KERNELS = RowKernels(plane_forward_chunk, plane_backward_chunk, B)
# The same forward; the backward sharing eM's exps (its own compilation: the flag as a run-time
# value in one kernel measured eM's backward 4-7% slower on rows that do not share (1 thread);
# both constant cases in one kernel put 2 s on a cold first backward call, 8.8 -> 10.6 s).
PLANE_SHARED_KERNELS = RowKernels(plane_forward_chunk, plane_shared_backward_chunk, B)

# Last: planes_idw builds on this module's names (the chunks above look these up when they compile).
from .planes_idw import plane_idw_backward_block, plane_idw_forward_block  # noqa: E402
