"""Plain-loop float64 reference, written from spec.md and nothing else.

Used by the tests only.  Deliberately naive: no vectorisation, no shared
code with the package, the formulas exactly as the spec writes them.
"""
import itertools
import math
from fractions import Fraction

import numpy as np


def out_len(L, k, s, p, ceil_mode):
    num = L + 2 * p - k
    o = (math.ceil(num / s) if ceil_mode else math.floor(num / s)) + 1
    if ceil_mode and (o - 1) * s >= L + p:
        o -= 1
    return o


def as_tuple(v, d):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * d


def params(x_spatial, kernel_size, stride, padding, ceil_mode):
    d = len(x_spatial)
    k = as_tuple(kernel_size, d)
    s = k if stride is None else as_tuple(stride, d)
    p = as_tuple(padding, d)
    o = tuple(out_len(L, kk, ss, pp, ceil_mode) for L, kk, ss, pp in zip(x_spatial, k, s, p))
    return k, s, p, o


def window(o_idx, spatial, k, s, p):
    """[(input index, kernel offset)] of the clipped window of output o_idx."""
    ranges = []
    for o, L, kk, ss, pp in zip(o_idx, spatial, k, s, p):
        start = o * ss - pp
        ranges.append([(i, i - start) for i in range(start, start + kk) if 0 <= i < L])
    cells = []
    for combo in itertools.product(*ranges):
        cells.append((tuple(c[0] for c in combo), tuple(c[1] for c in combo)))
    return cells


def softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    tot = sum(e)
    return [v / tot for v in e]


def window_mean(vals, mean_dtype=None):
    """The spec's m; with ``mean_dtype``, as that dtype accumulates it (left to
    right, then / |R|): dsc near m = 0 and IDW near ties are so sensitive to m
    that a float32 computation can only be compared with its own rounding of m."""
    if mean_dtype is None:
        return sum(vals) / len(vals)
    t = np.dtype(mean_dtype).type
    total = t(0)
    with np.errstate(over="ignore", invalid="ignore"):
        for v in vals:
            total = t(total + t(v))
        return float(total / t(len(vals)))


def window_weights(method, vals, b, mean_dtype=None):
    """Per-cell weights of one window (spec: Per-window weights)."""
    n = len(vals)
    m = window_mean(vals, mean_dtype)
    if any(math.isnan(v) for v in vals):
        return [math.nan] * n

    def dsc(v):
        if v == 0 and m == 0:
            return 1.0
        if not (math.isfinite(v) and math.isfinite(m)):
            return 2 * abs(v * m) / (v * v + m * m)  # IEEE: inf / inf = nan
        # Exact rational arithmetic: v * v would overflow (|v| > 1e154) or
        # underflow to 0 / 0 (subnormal v) in float64.
        fv, fm = Fraction(v), Fraction(m)
        return float(2 * abs(fv * fm) / (fv * fv + fm * fm))

    def edscw():
        return softmax([dsc(v) for v in vals])

    def em():
        top = max(vals)
        e = [math.exp(v - top) for v in vals]
        tot = sum(e)
        return [v / tot for v in e]

    if method == "edscwpool":
        return edscw()
    if method == "empool":
        return em()
    if method == "idwpool":
        delta = [abs(v - m) for v in vals]
        if any(dl == 0 for dl in delta):
            nz = sum(1 for dl in delta if dl == 0)
            return [1.0 / nz if dl == 0 else 0.0 for dl in delta]
        if not all(math.isfinite(dl) for dl in delta):
            inv = [1.0 / dl for dl in delta]
            tot = sum(inv)
            return [v / tot for v in inv]
        # Exact: 1 / delta overflows for subnormal delta.
        inv = [1 / Fraction(dl) for dl in delta]
        tot = sum(inv)
        return [float(v / tot) for v in inv]
    bc = min(max(b, 0.0), 1.0)
    return [bc * a + (1 - bc) * c for a, c in zip(edscw(), em())]


def pool(method, x, beta=None, kernel_size=2, stride=None, padding=0, ceil_mode=False, mean_dtype=None):
    """(y, w) for batched x of shape (N, C, *L), float64 (``mean_dtype``: see ``window_mean``)."""
    x = np.asarray(x, dtype=np.float64)
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    k, s, p, o = params(spatial, kernel_size, stride, padding, ceil_mode)
    y = np.zeros((N, C) + o)
    w = np.zeros((N, C) + o + k)
    if method == "adapool":
        bfull = np.broadcast_to(np.asarray(beta, dtype=np.float64), (N, C) + o)
    for n in range(N):
        for c in range(C):
            for o_idx in itertools.product(*[range(v) for v in o]):
                cells = window(o_idx, spatial, k, s, p)
                vals = [float(x[(n, c) + idx]) for idx, _ in cells]
                b = float(bfull[(n, c) + o_idx]) if method == "adapool" else 0.0
                ws = window_weights(method, vals, b, mean_dtype)
                y[(n, c) + o_idx] = sum(wi * v for wi, v in zip(ws, vals))
                for (idx, off), wi in zip(cells, ws):
                    w[(n, c) + o_idx + off] = wi
    return y, w


def unpool(y, w, x_spatial, kernel_size, stride=None, padding=0, normalize="sum"):
    """adaUnPool of batched y (N, C, *O) with weights w (N, C, *O, *k)."""
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    d = len(x_spatial)
    k = as_tuple(kernel_size, d)
    s = k if stride is None else as_tuple(stride, d)
    p = as_tuple(padding, d)
    N, C = y.shape[:2]
    o = y.shape[2:]
    out = np.zeros((N, C) + tuple(x_spatial))
    cover = np.zeros(tuple(x_spatial))
    for o_idx in itertools.product(*[range(v) for v in o]):
        for idx, _ in window(o_idx, x_spatial, k, s, p):
            cover[idx] += 1
    for n in range(N):
        for c in range(C):
            for o_idx in itertools.product(*[range(v) for v in o]):
                cells = window(o_idx, x_spatial, k, s, p)
                for idx, off in cells:
                    term = y[(n, c) + o_idx] * w[(n, c) + o_idx + off]
                    if normalize == "window":
                        term *= len(cells) / cover[idx]
                    out[(n, c) + idx] += term
    return out


def finite_difference(f, a, eps=1e-6):
    """Central differences of the scalar function f at array a (float64)."""
    a = np.array(a, dtype=np.float64)
    grad = np.zeros_like(a)
    flat = a.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f(a)
        flat[i] = old - eps
        down = f(a)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def adaptive_window(o_idx, spatial, out):
    """Cells of adaptive window o_idx: [(input index, offset in the weights)],
    window o of a dim being [floor(o*L/O), ceil((o+1)*L/O)) (PyTorch's rule)."""
    ranges = []
    for o, L, O in zip(o_idx, spatial, out):
        start, end = (o * L) // O, -(-(o + 1) * L // O)
        ranges.append([(i, i - start) for i in range(start, end)])
    return [(tuple(c[0] for c in cell), tuple(c[1] for c in cell)) for cell in itertools.product(*ranges)]


def adaptive_pool(method, x, beta, out):
    """(y, w) of adaptive pooling of batched float64 x (N, C, *L) to the spatial size ``out``."""
    x = np.asarray(x, dtype=np.float64)
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    k = tuple(max(-(-(o + 1) * L // O) - (o * L) // O for o in range(O)) for L, O in zip(spatial, out))
    y = np.zeros((N, C) + tuple(out))
    w = np.zeros((N, C) + tuple(out) + k)
    if method == "adapool":
        bfull = np.broadcast_to(np.asarray(beta, dtype=np.float64), (N, C) + tuple(out))
    for n in range(N):
        for c in range(C):
            for o_idx in itertools.product(*[range(v) for v in out]):
                cells = adaptive_window(o_idx, spatial, out)
                vals = [float(x[(n, c) + idx]) for idx, _ in cells]
                b = float(bfull[(n, c) + o_idx]) if method == "adapool" else 0.0
                ws = window_weights(method, vals, b)
                y[(n, c) + o_idx] = sum(wi * v for wi, v in zip(ws, vals))
                for (_, off), wi in zip(cells, ws):
                    w[(n, c) + o_idx + off] = wi
    return y, w


def adaptive_unpool(y, w, x_spatial, normalize="sum"):
    """adaUnPool over adaptive windows: batched y (N, C, *O), weights w (N, C, *O, *K)."""
    y = np.asarray(y, dtype=np.float64)
    N, C = y.shape[:2]
    out_size = y.shape[2:]
    out = np.zeros((N, C) + tuple(x_spatial))
    cover = np.zeros(tuple(x_spatial))
    for o_idx in itertools.product(*[range(v) for v in out_size]):
        for idx, _ in adaptive_window(o_idx, x_spatial, out_size):
            cover[idx] += 1
    for n in range(N):
        for c in range(C):
            for o_idx in itertools.product(*[range(v) for v in out_size]):
                cells = adaptive_window(o_idx, x_spatial, out_size)
                for idx, off in cells:
                    term = y[(n, c) + o_idx] * w[(n, c) + o_idx + off]
                    if normalize == "window":
                        term *= len(cells) / cover[idx]
                    out[(n, c) + idx] += term
    return out
