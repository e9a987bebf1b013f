"""adaUnPool kernels: scatter (forward) and gather (backward) of window weights."""
from __future__ import annotations

from numba import njit, prange

from .fastexp import JIT
from .window import geometry, phase_class, phase_row, window


@njit(parallel=True, **JIT)
def unpool_forward(y, w, kernel, stride, padding, by_window, out, phase_classes):
    """out[nc, i] += y[r] * w[r, i] for every window r containing i (adaUnPool; out zeroed).

    by_window (normalize='window'): each term times its window's cell count;
    the caller divides by the number of windows covering each cell.  Scatters
    window by window in the phase classes of ``phase_classes``
    (``PoolGeometry.phase_classes(3)``), like ``pool_backward``: no two
    threads write one cell, and every cell adds its terms in the same order
    whatever the thread count.
    """
    T = y.dtype.type
    NC, O3 = out.shape[0], y.shape[3]
    for cls in range(phase_classes.shape[0]):
        for row in prange(NC * phase_classes[cls, 6] * phase_classes[cls, 7]):
            # The structures are built inside the parallel body: Numba's parfor
            # cannot pass a namedtuple into it.
            g = geometry(out.shape, y.shape, kernel, stride, padding)
            pc = phase_class(phase_classes, cls)
            nc, o1, o2 = phase_row(row, pc)
            for o3 in range(pc.phase[2], O3, pc.step[2]):
                win = window(g, o1, o2, o3)
                (st1, st2, st3), (lo1, lo2, lo3), (hi1, hi2, hi3) = win.start, win.lo, win.hi
                v = y[nc, o1, o2, o3]
                if by_window:
                    v = v * T((hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3))
                for i1 in range(lo1, hi1):
                    for i2 in range(lo2, hi2):
                        for i3 in range(lo3, hi3):
                            out[nc, i1, i2, i3] += v * w[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3]


@njit(parallel=True, **JIT)
def unpool_backward(g, w, y, kernel, stride, padding, by_window, gy, gw, want_gw):
    """gy[nc, o] = sum over cells i of window o of g[i] * w[o, i]; with want_gw,
    gw[nc, o, j] = g[i] * y[o] for cell j (input index i) of window o (gw zeroed:
    cells outside the input stay 0).

    by_window (normalize='window'): both times the window's cell count; the
    caller has divided g by the number of windows covering each cell."""
    T = g.dtype.type
    NC, O1, O2, O3 = gy.shape
    for row in prange(NC * O1 * O2):
        geo = geometry(g.shape, gy.shape, kernel, stride, padding)  # inside: see unpool_forward
        nc = row // (O1 * O2)
        o1 = (row // O2) % O1
        o2 = row % O2
        for o3 in range(O3):
            win = window(geo, o1, o2, o3)
            (st1, st2, st3), (lo1, lo2, lo3), (hi1, hi2, hi3) = win.start, win.lo, win.hi
            count = T((hi1 - lo1) * (hi2 - lo2) * (hi3 - lo3))
            acc = T(0)
            yv = y[nc, o1, o2, o3] if want_gw else T(0)
            for i1 in range(lo1, hi1):
                for i2 in range(lo2, hi2):
                    for i3 in range(lo3, hi3):
                        acc += g[nc, i1, i2, i3] * w[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3]
                        if want_gw:
                            term = g[nc, i1, i2, i3] * yv
                            if by_window:
                                term = term * count
                            gw[nc, o1, o2, o3, i1 - st1, i2 - st2, i3 - st3] = term
            if by_window:
                acc = acc * count
            gy[nc, o1, o2, o3] = acc
