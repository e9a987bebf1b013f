"""dsc and dsc_partials (``_cpu/window.py``), written with one division each over a
power-of-2 scaling: a few ulp from an 80-bit reference over every exponent, NaN and
inf as the two-division forms gave them."""
import numpy as np
import pytest
from numba import njit

from adapool_core._cpu.window import dsc, dsc_partials


@njit(cache=False)
def _both(v, m, u, d, dv, dm):
    T = v.dtype.type
    for i in range(v.size):
        d[i] = dsc(v[i], m[i], T)
        dv[i], dm[i] = dsc_partials(v[i], m[i], u[i], T)


def _run(v, m, u):
    d, dv, dm = (np.empty_like(v) for _ in range(3))
    _both(v, m, u, d, dv, dm)
    return d, dv, dm


def _reference(v, m, u):
    v, m, u = (a.astype(np.longdouble) for a in (v, m, u))
    a, b = np.abs(v), np.abs(m)
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    r = lo / hi
    den = (1 + r * r) ** 2
    # d dsc / dv = 2 sgn(v) |m| (m^2 - v^2) / (v^2 + m^2)^2, scaled by hi
    ra, rb = a / hi, b / hi
    dv = u / hi * 2 * np.sign(v) * rb * (rb - ra) * (rb + ra) / den
    dm = u / hi * 2 * np.sign(m) * ra * (ra - rb) * (ra + rb) / den
    return 2 * r / (1 + r * r), dv, dm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dsc_and_partials_within_a_few_ulp_over_every_exponent(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(5)
    n = 20000
    scale_v = 2.0 ** rng.integers(info.minexp, info.maxexp - 2, n)
    with np.errstate(over="ignore"):  # the few past dtype's range are dropped below
        v = (rng.standard_normal(n) * scale_v).astype(dtype)
        m = (rng.standard_normal(n) * scale_v * 2.0 ** rng.integers(-30, 30, n)).astype(dtype)
        u = (rng.standard_normal(n) * np.maximum(np.abs(v), np.abs(m))).astype(dtype)  # x - y: of the order of hi
    ok = np.isfinite(v) & np.isfinite(m) & np.isfinite(u) & (v != 0) & (m != 0)
    v, m, u = v[ok], m[ok], u[ok]
    got = _run(v, m, u)
    want = _reference(v, m, u)
    tiny = np.longdouble(info.smallest_normal)
    for name, g, w in zip(("dsc", "d/dv", "d/dm"), got, want):
        # relative error where the exact value is a normal number of dtype; near |v| = |m| the
        # partials are differences of nearly equal numbers, bounded by their cancellation
        ulp = np.abs(g.astype(np.longdouble) - w) / np.maximum(np.abs(w), tiny) / np.longdouble(info.eps)
        well_conditioned = np.abs(np.abs(v) - np.abs(m)) > 1e-3 * np.maximum(np.abs(v), np.abs(m))
        worst = ulp[(np.abs(w) > tiny) & (np.abs(w) < np.longdouble(info.max)) & well_conditioned].max()
        assert worst < 8, f"{name} {np.dtype(dtype).name}: {worst} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dsc_special_values(dtype):
    info = np.finfo(dtype)
    inf, nan = np.inf, np.nan
    v = np.array([0, inf, inf, nan, 1, info.smallest_subnormal, info.max, 3], dtype)
    m = np.array([0, 1, inf, 1, nan, info.smallest_subnormal, info.max, -3], dtype)
    u = np.ones_like(v)
    d, dv, dm = _run(v, m, u)
    np.testing.assert_array_equal(d[[0, 1, 5, 6, 7]], [1, 0, 1, 1, 1])  # v = m = 0: 1; |v| = |m|: 1; inf: 0
    assert np.isnan(d[[2, 3, 4]]).all()
    np.testing.assert_array_equal(dv[[0, 5, 6, 7]], 0)  # no NaN at 0, no overflow at the extremes
    np.testing.assert_array_equal(dm[[0, 5, 6, 7]], 0)
    assert np.isnan(dv[[1, 2, 3, 4]]).all() and np.isnan(dm[[1, 2, 3, 4]]).all()
