"""Flat kernels: global pooling, one window over each whole row, lanes over its cells.

Global pooling (``_geometry.global_geometry``) reaches the backend as 1-D
pooling of rows (NC, 1, 1, n) with one window covering each row.  There is
no run of windows to put in the lanes (``vector``) and one window per plane
(``planes``, whose transposes then cost more than the window itself), so
here the lanes are ``B`` consecutive cells of the row: every pass over the
row's blocks of B cells runs ``for l in range(block_width(j, n))`` on
accumulator lanes s[ROW + l] (no reduction whose order LLVM chooses), the
last block's ``n % B`` tail cells go to lanes 0 .. tail-1, and the lanes are
summed in lane order.  One loop for full and tail blocks: the loop over 16
lanes at a constant trip count measured no faster (IDW 1.4x slower; LLVM
unrolls it fully, then cannot vectorise the unrolled accumulators).  The
passes are ``window_stats``' (the sum and max, then eDSCW's and eM's exps,
or IDW's smallest distance and scaled sums); eM's shift is the row's max,
which is the window's.  Masks and gradients use ``window``'s per-cell formulas; the
backward writes each cell's direct terms as it goes and adds the mean's
share (exact mode), gathered in lanes, in a second pass over the row.

A chunk owns whole rows and a row's result depends on the row alone:
results depend neither on the thread count nor on how ``_beta_slices``
cuts the rows.  A row whose sum is not finite (a NaN or an inf, or an
overflowing sum) is flagged and skipped, and ``launch`` computes the whole
call again with the general kernels (``planes``' policy and machinery,
one row per "block").  Arrays are read through flat offsets (see
``planes``).
"""
from __future__ import annotations

import numpy as np
from numba import literally, njit

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT
from .planes import B
from .rows import RowKernels
from .scratch import at
from .window import (BetaView, Stats, add_em_weight_term, add_idw_grad, add_idw_mean_grad, beta_grad, blend, bounds,
                     cell_weight, clamped_beta, dsc_partials, dscw_score, em_score, idw_weight, split_grad)

# Accumulator lanes, rows of B in one flat scratch array s (one array read at constant
# offsets: LLVM proves the rows disjoint, as in ``planes``).
A0, A1, A2, A3 = [r * B for r in range(4)]
N_ACC = 4


@njit(inline="always", **JIT)
def lanes_sum(s, row, T):
    """s[row + 0] + ... + s[row + B-1], in lane order."""
    t = T(0)
    for l in range(B):
        t += s[row + l]
    return t


@njit(inline="always", **JIT)
def lanes_min(s, row, T):
    m = T(np.inf)
    for l in range(B):
        m = s[row + l] if s[row + l] < m else m
    return m


@njit(inline="always", **JIT)
def block_width(j, n):
    """Cells in block j of a row of n (B, or the tail's n % B in the last block)."""
    return min(B, n - j * B)


@njit(inline="always", **JIT)
def row_sum_max(xf, base, n, s, T):
    """(sum, max) of the n cells from xf[base]."""
    for l in range(B):
        s[A0 + l] = T(0)
        s[A1 + l] = -T(np.inf)
    for j in range(-(-n // B)):
        c = base + j * B
        for l in range(block_width(j, n)):
            v = xf[at(c + l)]
            s[A0 + l] += v
            s[A1 + l] = v if v > s[A1 + l] else s[A1 + l]
    vmax = -T(np.inf)
    for l in range(B):
        vmax = s[A1 + l] if s[A1 + l] > vmax else vmax
    return lanes_sum(s, A0, T), vmax


@njit(inline="always", **JIT)
def softmax_scores(v, mean, vmax, need_d, need_m, T):
    """(eDSCW's, eM's) unnormalised weight of cell v (0 where the method needs none)."""
    eD = dscw_score(v, mean, T) if need_d else T(0)
    eM = em_score(v, vmax) if need_m else T(0)
    return eD, eM


@njit(inline="always", **JIT)
def row_softmax_sums(xf, base, n, mean, vmax, need_d, need_m, s, T):
    """(zD, sD, zM, sM): eDSCW's and eM's normalisers and weighted sums over the row (0 where
    the method needs none).  The cell helpers return scalars and the loops update s: helpers
    updating s measured 4x slower (not vectorised)."""
    for r in range(N_ACC * B):
        s[r] = T(0)
    for j in range(-(-n // B)):
        c = base + j * B
        for l in range(block_width(j, n)):
            v = xf[at(c + l)]
            eD, eM = softmax_scores(v, mean, vmax, need_d, need_m, T)
            s[A0 + l] += eD
            s[A1 + l] += eD * v
            s[A2 + l] += eM
            s[A3 + l] += eM * v
    return lanes_sum(s, A0, T), lanes_sum(s, A1, T), lanes_sum(s, A2, T), lanes_sum(s, A3, T)


@njit(inline="always", **JIT)
def row_idw_stats(xf, base, n, mean, need_nzero, s, T):
    """(IDW Stats, zero-distance count (with need_nzero)) of the row of the given mean.
    The loop bodies update s themselves (helpers doing it measured 4x slower: see
    ``row_softmax_sums``)."""
    for l in range(B):
        s[A0 + l] = T(np.inf)
        s[A1 + l] = T(0)
    nblocks = -(-n // B)
    for j in range(nblocks):
        c = base + j * B
        for l in range(block_width(j, n)):
            dist = abs(xf[at(c + l)] - mean)
            s[A0 + l] = dist if dist < s[A0 + l] else s[A0 + l]
            if need_nzero:
                s[A1 + l] += T(1) if dist == 0 else T(0)
    dmin = lanes_min(s, A0, T)
    nzero = lanes_sum(s, A1, T)
    zI = T(0)
    yI = mean
    if dmin != 0:
        for l in range(B):
            s[A0 + l] = T(0)
            s[A1 + l] = T(0)
        for j in range(nblocks):
            c = base + j * B
            for l in range(block_width(j, n)):
                v = xf[at(c + l)]
                e = dmin / abs(v - mean)
                s[A0 + l] += e
                s[A1 + l] += e * v
        zI = lanes_sum(s, A0, T)
        yI = lanes_sum(s, A1, T) / zI
    zero = T(0)
    return Stats(n, mean, zero, zero, zero, zero, zero, dmin, zI, yI), nzero


@njit(inline="always", **JIT)
def row_stats(xf, base, n, method, need_nzero, s, T):
    """(Stats, IDW's zero-distance count, whether the row's sum is finite) of the row from xf[base]."""
    total, vmax = row_sum_max(xf, base, n, s, T)
    mean = total / T(n)
    nzero = T(0)
    if method == IDW:
        st, nzero = row_idw_stats(xf, base, n, mean, need_nzero, s, T)
    else:
        need_d = method == EDSCW or method == ADA
        need_m = method == EM or method == ADA
        zD, sD, zM, sM = row_softmax_sums(xf, base, n, mean, vmax, need_d, need_m, s, T)
        zero = T(0)
        st = Stats(n, mean, vmax, zD, sD / zD if need_d else zero, zM, sM / zM if need_m else zero, zero, zero,
                   zero)
    return st, nzero, total * T(0) == T(0)


@njit(inline="always", **JIT)
def mask_offset(n, kernel, stride, padding):
    """Position of the row's first cell in the window's weights (the padding before it)."""
    start, lo, _ = bounds(0, kernel[2], stride[2], padding[2], n, 1)
    return lo - start


@njit(**JIT)
def flat_forward_chunk(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask, nonfinite, r0, r1):
    """Rows r0 .. r1-1 of the flat forward: y[r] and (want_mask) the weights of row r's window;
    nonfinite[r] = 1 where the row's sum is not finite (the row is skipped: ``launch`` then
    takes the general kernels)."""
    literally(method)
    T = x.dtype.type
    n = x.shape[3]
    K = mask.shape[6]
    off = mask_offset(n, kernel, stride, padding)
    bv = BetaView(beta, bstr, C)
    s = np.empty(N_ACC * B, dtype=x.dtype)
    xf = x[r0:r1].reshape(-1)  # as in ``flat_backward_chunk``
    yf = y.reshape(-1)
    mf = mask[r0:r1].reshape(-1)
    for q in range(r1 - r0):
        r = r0 + q
        base = q * n
        st, nzero, finite = row_stats(xf, base, n, method, want_mask, s, T)
        nonfinite[r] = 0 if finite else 1
        if not finite:
            continue
        bc = T(0)
        if method == ADA:
            _, bc = clamped_beta(bv, r, 0, 0, 0, T)
        yf[r] = st.yI if method == IDW else blend(method, bc, st.yD, st.yM, T)
        if want_mask:
            mb = q * K + off
            if method == IDW:
                shares = nzero if st.dmin == 0 else T(1)  # equal shares among zero distances
                for i in range(n):
                    mf[at(mb + i)] = idw_weight(xf[at(base + i)], st, T) / shares
            else:
                for i in range(n):
                    mf[at(mb + i)] = cell_weight(method, bc, xf[at(base + i)], st.mean, st.vmax, st.zD, st.zM, T)


@njit(inline="always", **JIT)
def cell_grad(v, method, gD, gM, gI, st, nzero, exact, via_idw, T):
    """(cell v's direct gradient, its term of the gradient through the mean (exact mode)):
    ``backward_window``'s terms."""
    gr = T(0)
    via = T(0)
    if method == IDW:
        gr = add_idw_grad(gr, gI, v, st, nzero, exact, T)
        if via_idw:
            via = add_idw_mean_grad(via, gI, v, st, T)
    else:
        if method == EDSCW or method == ADA:
            gw = gD * (dscw_score(v, st.mean, T) / st.zD)
            gr += gw
            if exact:
                d_dv, d_dm = dsc_partials(v, st.mean, v - st.yD, T)
                gr += gw * d_dv
                via = gw * d_dm
        if method == EM or method == ADA:
            gr = add_em_weight_term(gr, gM, v, em_score(v, st.vmax) / st.zM, st.yM, exact, T)
    return gr, via


@njit(**JIT)
def flat_backward_chunk(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, nonfinite, r0, r1):
    """Rows r0 .. r1-1 of the flat backward: gx += dL/dx, gb = dL/dbeta per row (ADA);
    nonfinite as in ``flat_forward_chunk``."""
    literally(method)
    T = x.dtype.type
    n = x.shape[3]
    bv = BetaView(beta, bstr, C)
    s = np.empty(N_ACC * B, dtype=x.dtype)
    # The chunk's rows as views, indexed from 0: indexing the whole arrays from row r0
    # kept LLVM from vectorising the gradient loop (measured 2.6x slower, eM).
    xf = x[r0:r1].reshape(-1)
    gxf = gx[r0:r1].reshape(-1)
    gyf = gy.reshape(-1)
    gbf = gb.reshape(-1)
    wv = np.empty(n, dtype=x.dtype)
    for q in range(r1 - r0):
        r = r0 + q
        base = q * n
        st, nzero, finite = row_stats(xf, base, n, method, not exact, s, T)
        nonfinite[r] = 0 if finite else 1
        if not finite:
            continue
        b, bc = T(0), T(0)
        if method == ADA:
            b, bc = clamped_beta(bv, r, 0, 0, 0, T)
            gbf[r] = beta_grad(gyf[r], b, st.yD, st.yM, T)
        gD, gM, gI = split_grad(method, gyf[r], bc, T)
        # The mean's share: eDSCW's in exact mode, IDW's in exact mode where dmin > 0
        # (where dmin == 0 the output is the mean: add_idw_grad's own terms).
        via_idw = method == IDW and exact and st.dmin != 0
        via = exact and (method == EDSCW or method == ADA) or via_idw
        # One plain loop (LLVM vectorises it; no reduction in it), the mean's terms into wv.
        for i in range(n):
            gr, wv[i] = cell_grad(xf[at(base + i)], method, gD, gM, gI, st, nzero, exact, via_idw, T)
            gxf[at(base + i)] += gr
        if via:
            total, _ = row_sum_max(wv, 0, n, s, T)
            share = total / T(n)
            for i in range(n):
                gxf[at(base + i)] += share


FLAT_KERNELS = RowKernels(flat_forward_chunk, flat_backward_chunk, 1)
