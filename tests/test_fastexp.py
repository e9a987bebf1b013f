"""The kernels' polynomial exp on [0, 1] (eDSCW's exp(dsc)): error bound on a dense grid."""
import numpy as np
import pytest
from numba import njit

from adapool_core._cpu.fastexp import exp_unit


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
