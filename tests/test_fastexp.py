"""The kernels' polynomial exp on [0, 1] (eDSCW's exp(dsc)): error bound on a dense grid."""
import numpy as np
import pytest
from numba import njit

from adapool_core._cpu.fastexp import binade_scale, exp_unit


@njit(cache=False)
def _exp_unit_all(v, out):
    for i in range(v.size):
        out[i] = exp_unit(v[i])


def _ulps(dtype, got, exact):
    """|got - exact| in units of the last place of exact, in dtype."""
    spacing = np.spacing(exact.astype(dtype)).astype(np.longdouble)
    return np.abs(got.astype(np.longdouble) - exact) / np.abs(spacing)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_unit_within_two_ulp_on_unit_interval(dtype):
    # [0, 1] densely, and a little past 1 (dsc's rounding can give 1 + 1 ulp).
    v = np.concatenate([np.linspace(0, 1, 1 << 20), 1 + np.arange(8) * np.finfo(dtype).eps]).astype(dtype)
    got = np.empty_like(v)
    _exp_unit_all(v, got)
    exact = np.exp(v.astype(np.longdouble))  # 80-bit on x86: 11 more bits than float64
    worst = _ulps(dtype, got, exact).max()
    assert worst < 2, f"exp_unit {np.dtype(dtype).name}: max error {worst} ulp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_unit_propagates_nan(dtype):
    got = np.empty(1, dtype)
    _exp_unit_all(np.array([np.nan], dtype), got)
    assert np.isnan(got[0])


@njit(cache=False)
def _binade_scale_all(v, out):
    for i in range(v.size):
        out[i] = binade_scale(v[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binade_scale_puts_values_in_one_to_two(dtype):
    """A power of 2 for every v >= 0 (subnormal, huge, inf and NaN included); v times it
    lies in [1, 2) for normal v below the top binade, in [2, 4) there, and keeps a
    subnormal's bits."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(3)
    normal = (rng.uniform(1, 2, 4000) * 2.0 ** rng.integers(info.minexp, info.maxexp - 1, 4000)).astype(dtype)
    top = (rng.uniform(1, 2, 50) * 2.0 ** (info.maxexp - 1)).astype(dtype)
    sub = (rng.uniform(0, 1, 50) * info.smallest_normal).astype(dtype)
    v = np.concatenate([normal, top, sub, np.array([info.max, info.smallest_subnormal, np.inf, np.nan], dtype)])
    got = np.empty_like(v)
    _binade_scale_all(v, got)
    mantissa, _ = np.frexp(got)
    assert np.all(mantissa == 0.5), "not a power of 2"
    scaled = v * got
    assert np.all((scaled[:len(normal)] >= 1) & (scaled[:len(normal)] < 2))
    assert np.all((scaled[len(normal):len(normal) + 50] >= 2) & (scaled[len(normal):len(normal) + 50] < 4))
    sub_scaled = scaled[len(normal) + 50:len(normal) + 100]
    np.testing.assert_array_equal(sub_scaled / got[len(normal) + 50:len(normal) + 100], sub)  # exact
    assert np.all(sub_scaled < 2)
    np.testing.assert_array_equal(got[-2:], [2.0 ** info.minexp] * 2)  # inf, NaN: the top binade's
