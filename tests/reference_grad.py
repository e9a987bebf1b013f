"""Exact-gradient reference: dL/dx and dL/dbeta of L = sum(g * y) for the
spec's outputs, one window at a time, written from spec.md's formulas.

Independent of the package (no shared code) and of ``reference.finite_difference``
(which needs well-scaled inputs): every derivative is the closed form of the
spec's definitions, evaluated with exact rational arithmetic where float64
would overflow or underflow (the Dice-Sorensen partials carry 1 / (v^2 + m^2)).
Validated against central finite differences of ``reference.pool`` in
``tests/test_fuzz.py::test_gradient_reference_matches_finite_differences``.

Besides the gradient, each window returns rounding bounds: ``relative`` is
the same sum with every term replaced by its absolute value and every
difference a - b by |a| + |b| (``eps * relative`` is the natural float error
of the formula); ``absolute`` is the sensitivity to an absolute error in the
differences x - y (``ulp * absolute`` covers subnormal rounding, where the
relative precision of a float is lost).
"""
import itertools
import math
from fractions import Fraction

import numpy as np

import reference as ref


def _float(q):
    """Fraction -> float, +-inf where it overflows."""
    try:
        return float(q)
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def _sign(v):
    return (v > 0) - (v < 0)


def _dsc_and_partials(v, m):
    """dsc(v, m), d dsc/dv, d dsc/dm as Fractions; (1, 0, 0) at v = m = 0."""
    if v == 0 and m == 0:
        return Fraction(1), Fraction(0), Fraction(0)
    fv, fm = Fraction(v), Fraction(m)
    den = fv * fv + fm * fm
    dsc = 2 * abs(fv * fm) / den
    d_dv = 2 * _sign(v) * abs(fm) * (fm * fm - fv * fv) / (den * den)
    d_dm = 2 * _sign(m) * abs(fv) * (fv * fv - fm * fm) / (den * den)
    return dsc, d_dv, d_dm


def _softmax(z):
    top = max(z)
    e = [math.exp(v - top) for v in z]
    tot = sum(e)
    return [v / tot for v in e]


def _em(vals):
    """(y, dy/dv list, relative bound list, absolute bound list)."""
    w = _softmax(vals)
    y = sum(wi * v for wi, v in zip(w, vals))
    grad = [wi * (1 + (v - y)) for wi, v in zip(w, vals)]
    rel = [wi * (1 + abs(v) + abs(y)) for wi, v in zip(w, vals)]
    return y, grad, rel, [Fraction(wi) for wi in w]


def _edscw(vals, m):
    n = len(vals)
    parts = [_dsc_and_partials(v, m) for v in vals]
    w = _softmax([float(p[0]) for p in parts])
    y = sum(wi * v for wi, v in zip(w, vals))
    fy = Fraction(y)
    fw = [Fraction(wi) for wi in w]
    # dy/dv_j = w_j + w_j (v_j - y) dsc_v(v_j) + (1/n) sum_i w_i (v_i - y) dsc_m(v_i)
    via_mean = sum(wi * (Fraction(v) - fy) * p[2] for wi, v, p in zip(fw, vals, parts)) / n
    mean_rel = sum(wi * (abs(Fraction(v)) + abs(fy)) * abs(p[2]) for wi, v, p in zip(fw, vals, parts)) / n
    mean_abs = sum(wi * abs(p[2]) for wi, p in zip(fw, parts)) / n
    grad = [_float(wi + wi * (Fraction(v) - fy) * p[1] + via_mean) for wi, v, p in zip(fw, vals, parts)]
    rel = [_float(wi + wi * (abs(Fraction(v)) + abs(fy)) * abs(p[1]) + mean_rel) for wi, v, p in zip(fw, vals, parts)]
    absb = [wi * abs(p[1]) + mean_abs for wi, p in zip(fw, parts)]
    return y, grad, rel, absb


def _idw(vals, m):
    n = len(vals)
    delta = [abs(v - m) for v in vals]  # float, as the spec's delta_i (ties decided in float)
    if any(dl == 0 for dl in delta):
        return m, [1.0 / n] * n, [1.0 / n] * n, [Fraction(0)] * n  # y = m
    inv = [1 / Fraction(dl) for dl in delta]
    tot = sum(inv)
    fw = [q / tot for q in inv]
    w = [float(q) for q in fw]
    y = sum(wi * v for wi, v in zip(w, vals))
    fy, fm = Fraction(y), Fraction(m)
    fw = [Fraction(wi) for wi in w]
    # z_i = -log|v_i - m|: dz_i/dv_j = -(delta_ij - 1/n) / (v_i - m)
    terms = [wi * (Fraction(v) - fy) / (Fraction(v) - fm) for wi, v in zip(fw, vals)]
    term_rel = [wi * (abs(Fraction(v)) + abs(fy)) / Fraction(dl) for wi, v, dl in zip(fw, vals, delta)]
    term_abs = [wi / Fraction(dl) for wi, dl in zip(fw, delta)]
    via_mean, mean_rel, mean_abs = sum(terms) / n, sum(term_rel) / n, sum(term_abs) / n
    grad = [_float(wi - t + via_mean) for wi, t in zip(fw, terms)]
    rel = [_float(wi + t + mean_rel) for wi, t in zip(fw, term_rel)]
    absb = [t + mean_abs for t in term_abs]
    return y, grad, rel, absb


def window_gradient(method, vals, b):
    """(dy/dv, dy/db, relative bound, absolute bound, bound of dy/db) for one window of floats.

    Bounds: ``eps * relative + ulp * absolute`` covers float rounding of
    relative size eps in every term plus absolute errors up to ulp in the
    differences x - y (subnormal rounding).
    """
    n = len(vals)
    if not all(math.isfinite(v) for v in vals):
        nan = [math.nan] * n
        return nan, math.nan, [0.0] * n, [Fraction(0)] * n, 0.0
    m = sum(vals) / n  # as ``reference.pool``: float64, left to right
    if method == "empool":
        _, grad, rel, absb = _em(vals)
        return grad, 0.0, rel, absb, 0.0
    if method == "edscwpool":
        _, grad, rel, absb = _edscw(vals, m)
        return grad, 0.0, rel, absb, 0.0
    if method == "idwpool":
        _, grad, rel, absb = _idw(vals, m)
        return grad, 0.0, rel, absb, 0.0
    if math.isnan(b):
        return [math.nan] * n, math.nan, [0.0] * n, [Fraction(0)] * n, 0.0
    bc = Fraction(min(max(b, 0.0), 1.0))
    yD, gD, rD, aD = _edscw(vals, m)
    yM, gM, rM, aM = _em(vals)
    mix = lambda a, c: [bc * Fraction(u) + (1 - bc) * Fraction(v) for u, v in zip(a, c)]  # noqa: E731
    db = (yD - yM) if 0 <= b <= 1 else 0.0
    return ([_float(q) for q in mix(gD, gM)], db, [_float(q) for q in mix(rD, rM)], mix(aD, aM),
            abs(yD) + abs(yM))


def pool_gradient(method, x, beta, g, kernel_size, stride=None, padding=0, ceil_mode=False, eps=0.0, ulp=0.0):
    """(gx, gbeta_full, gx_tol, gbeta_tol) for batched float64 x (N, C, *L).

    ``gbeta_full`` has the output's shape (before summing to beta's shape);
    the tolerances are ``eps * relative + ulp * absolute`` (``window_gradient``) times |g|.
    """
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    k, s, p, o = ref.params(spatial, kernel_size, stride, padding, ceil_mode)
    bfull = (np.broadcast_to(np.asarray(beta, dtype=np.float64), (N, C) + o) if method == "adapool"
             else np.zeros((N, C) + o))
    gx, gx_tol = np.zeros_like(x), np.zeros_like(x)
    gb, gb_tol = np.zeros((N, C) + o), np.zeros((N, C) + o)
    for n in range(N):
        for c in range(C):
            for o_idx in itertools.product(*[range(v) for v in o]):
                cells = ref.window(o_idx, spatial, k, s, p)
                vals = [float(x[(n, c) + idx]) for idx, _ in cells]
                gr = float(g[(n, c) + o_idx])
                grad, db, rel, absb, db_rel = window_gradient(method, vals, float(bfull[(n, c) + o_idx]))
                for (idx, _), dv, r, a in zip(cells, grad, rel, absb):
                    gx[(n, c) + idx] += gr * dv
                    gx_tol[(n, c) + idx] += abs(gr) * (eps * r + _float(Fraction(ulp) * a))
                gb[(n, c) + o_idx] = gr * db
                gb_tol[(n, c) + o_idx] = abs(gr) * eps * db_rel
    return gx, gb, gx_tol, gb_tol


def pool_unpool_gradient(method, x, beta, g, kernel_size, stride=None, padding=0, ceil_mode=False,
                         normalize="sum", eps=1e-6):
    """(gx, gbeta) of L = sum(g * unpool(*pool(x, beta))) by float64 central
    finite differences of ``reference.pool`` and ``reference.unpool``: the
    gradient through the outputs and through the weights (spec: "Gradients
    through the weights").  ``gbeta`` has beta's shape (None for other methods)."""
    x = np.asarray(x, dtype=np.float64)
    spatial = x.shape[2:]

    def loss(xv, bv):
        y, w = ref.pool(method, xv, bv, kernel_size, stride, padding, ceil_mode)
        return float((g * ref.unpool(y, w, spatial, kernel_size, stride, padding, normalize)).sum())

    gx = ref.finite_difference(lambda xv: loss(xv, beta), x, eps)
    gbeta = ref.finite_difference(lambda bv: loss(x, bv), beta, eps) if method == "adapool" else None
    return gx, gbeta
