"""The general kernels: window by window, any geometry, method and dtype.

Forward runs ``prange`` over rows ``(nc, o1, o2)`` so that a single image with
a few channels still fills every core.  The backward scatters each window's
gradient into the input; to stay race-free and deterministic without
atomics it visits the windows in the phase classes of
``PoolGeometry.phase_classes`` (docs/cuda.md): windows of one class never
share an input cell, so within a class each thread owns the cells it writes,
and every cell receives its terms in a fixed order whatever the thread count.
"""
from __future__ import annotations

from numba import literally, njit, prange

from .._methods import ADA, EDSCW, EM, IDW
from .fastexp import JIT
from .window import (BetaView, add_beta_weight_grad, add_dscw_grad, add_dscw_mean_grad, add_dscw_weight_grad,
                     add_dscw_weight_mean_grad, add_em_grad, add_em_weight_grad, add_idw_grad, add_idw_mean_grad,
                     add_idw_weight_grad, add_idw_weight_mean_grad, beta_grad, blend, cell_weight, clamped_beta,
                     geometry, idw_weight, phase_class, phase_row, split_grad, weight_dots, window, window_stats,
                     zero_distance_count)

@njit(**JIT)
def forward_window(x, bv, g, nc, o1, o2, o3, method, y, mask, want_mask, T):
    """One output cell (and its mask) the plain way: edge windows and IDW."""
    literally(method)
    w = window(g, o1, o2, o3)
    st = window_stats(x, nc, w, method, T)
    bc = T(0)
    if method == ADA:
        _, bc = clamped_beta(bv, nc, o1, o2, o3, T)
    y[nc, o1, o2, o3] = st.yI if method == IDW else blend(method, bc, st.yD, st.yM, T)
    if want_mask:
        nzero = T(0)
        if method == IDW and st.dmin == 0:
            nzero = zero_distance_count(x, nc, w, st.mean, T)
        st1, st2, st3 = w.start
        for i1 in range(w.lo[0], w.hi[0]):
            for i2 in range(w.lo[1], w.hi[1]):
                for i3 in range(w.lo[2], w.hi[2]):
                    v = x[nc, i1, i2, i3]
                    if method == IDW:
                        wt = idw_weight(v, st, T)
                        if st.dmin == 0:
                            wt = wt / nzero
                    else:
                        wt = cell_weight(method, bc, v, st.mean, st.vmax, st.zD, st.zM, T)
                    mask[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3] = wt


@njit(parallel=True, **JIT)
def pool_forward(x, beta, bstr, C, kernel, stride, padding, method, y, mask, want_mask):
    """y[nc, o] = pooled window o of x[nc]; mask[nc, o, k] = cell weights if want_mask."""
    literally(method)  # one small compilation per method (see rows.py), dead branches gone
    T = x.dtype.type
    NC, O1, O2, O3 = y.shape
    for row in prange(NC * O1 * O2):
        # The structures are built inside the parallel body: Numba's parfor
        # cannot pass a namedtuple into it.
        g = geometry(x.shape, y.shape, kernel, stride, padding)
        bv = BetaView(beta, bstr, C)
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        for o3 in range(O3):
            forward_window(x, bv, g, nc, o1, o2, o3, method, y, mask, want_mask, T)


@njit(**JIT)
def backward_window(x, gy, bv, g, gx, gb, nc, o1, o2, o3, method, exact, gw, has_gw, T):
    """gx += one window's gradient g * dy/dx, the plain way (edge windows and
    IDW); and beta's gradient for adaPool.  With has_gw, the cotangent gw of
    the window's weights adds its path (to x in exact mode, to beta always)."""
    literally(method)
    w = window(g, o1, o2, o3)
    st = window_stats(x, nc, w, method, T)
    grad_out = gy[nc, o1, o2, o3]
    b = T(0)
    bc = T(0)
    if method == ADA:
        b, bc = clamped_beta(bv, nc, o1, o2, o3, T)
    gD, gM, gI = split_grad(method, grad_out, bc, T)
    need_d = method == EDSCW or method == ADA
    need_m = method == EM or method == ADA
    need_i = method == IDW
    idw_mean_only = need_i and st.dmin == 0
    lo1, lo2, lo3 = w.lo
    hi1, hi2, hi3 = w.hi
    st1, st2, st3 = w.start
    # The weights' cotangent: sums sum_i gw_i w_i per softmax, then gbar of each.
    rD = T(0)
    rM = T(0)
    rI = T(0)
    if has_gw:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    rD, rM, rI = weight_dots(rD, rM, rI, method, gw[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3],
                                             x[nc, i1, i2, i3], st, T)
    barD, _, _ = split_grad(method, rD, bc, T)
    _, barM, _ = split_grad(method, rM, bc, T)
    _, _, barI = split_grad(method, rI, bc, T)
    weights_path = has_gw and exact
    via_mean = T(0)
    if exact and not idw_mean_only:
        for i1 in range(lo1, hi1):
            for i2 in range(lo2, hi2):
                for i3 in range(lo3, hi3):
                    v = x[nc, i1, i2, i3]
                    if need_d:
                        via_mean = add_dscw_mean_grad(via_mean, gD, v, st.mean, st.zD, st.yD, T)
                    if need_i:
                        via_mean = add_idw_mean_grad(via_mean, gI, v, st, T)
                    if weights_path:
                        gwD, _, gwI = split_grad(method, gw[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3], bc, T)
                        if need_d:
                            via_mean = add_dscw_weight_mean_grad(via_mean, gwD, barD, v, st.mean, st.zD, T)
                        if need_i:
                            via_mean = add_idw_weight_mean_grad(via_mean, gwI, barI, v, st, T)
        via_mean = via_mean / T(st.count)
    nzero = T(0)
    if idw_mean_only and not exact:
        nzero = zero_distance_count(x, nc, w, st.mean, T)
    for i1 in range(lo1, hi1):
        for i2 in range(lo2, hi2):
            for i3 in range(lo3, hi3):
                v = x[nc, i1, i2, i3]
                grad = via_mean
                if need_d:
                    grad = add_dscw_grad(grad, gD, v, st.mean, st.zD, st.yD, exact, T)
                if need_m:
                    grad = add_em_grad(grad, gM, v, st.vmax, st.zM, st.yM, exact, T)
                if need_i:
                    grad = add_idw_grad(grad, gI, v, st, nzero, exact, T)
                if weights_path:
                    gwD, gwM, gwI = split_grad(method, gw[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3], bc, T)
                    if need_d:
                        grad = add_dscw_weight_grad(grad, gwD, barD, v, st.mean, st.zD, T)
                    if need_m:
                        grad = add_em_weight_grad(grad, gwM, barM, v, st.vmax, st.zM, T)
                    if need_i:
                        grad = add_idw_weight_grad(grad, gwI, barI, v, st, T)
                gx[nc, i1, i2, i3] += grad
    if method == ADA:
        gbeta = beta_grad(grad_out, b, st.yD, st.yM, T)
        if has_gw:
            gbeta = add_beta_weight_grad(gbeta, b, rD, rM, T)
        gb[nc, o1, o2, o3] = gbeta


@njit(parallel=True, **JIT)
def pool_backward(x, gy, beta, bstr, C, kernel, stride, padding, method, exact, gx, gb, phase_classes, gw, has_gw):
    """gx += dL/dx (gx must be zeroed); gb[nc, o] = dL/dbeta before reduction (ADA only).
    With has_gw, gw (shaped as the weights) is the weights' cotangent.

    Window by window, one phase class after another (``phase_classes``:
    ``PoolGeometry.phase_classes(3)``).
    """
    literally(method)
    T = x.dtype.type
    NC, O3 = x.shape[0], gy.shape[3]
    for cls in range(phase_classes.shape[0]):
        for row in prange(NC * phase_classes[cls, 6] * phase_classes[cls, 7]):
            g = geometry(x.shape, gy.shape, kernel, stride, padding)  # inside: see pool_forward
            bv = BetaView(beta, bstr, C)
            pc = phase_class(phase_classes, cls)
            nc, o1, o2 = phase_row(row, pc)
            for o3 in range(pc.phase[2], O3, pc.step[2]):
                backward_window(x, gy, bv, g, gx, gb, nc, o1, o2, o3, method, exact, gw, has_gw, T)
