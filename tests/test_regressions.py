"""Regression tests, one per bug found by the hostile-input work (issue 7),
each named after the bug it pins.  The kernel bugs existed in cuda/adapool.cu
too: those tests run on every backend of NumPy arrays (``numpy_backend``:
Numba, and the CUDA kernels through their g++ emulation)."""
import numpy as np
import pytest

import adapool_core as ap
from support import METHODS, call_backward, call_pool


def test_big_endian_float64_was_computed_in_float32(rng):
    # compute_dtype compared dtypes with ==, and '>f8' != float64, so a
    # big-endian float64 input silently lost precision.
    x = rng.standard_normal((2, 3, 9))
    for method in METHODS:
        y = call_pool(ap, method, 1, x, 0.5, kernel_size=3)
        y_be = call_pool(ap, method, 1, x.astype(">f8"), 0.5, kernel_size=3)
        assert y_be.dtype == np.dtype(">f8")
        np.testing.assert_array_equal(y_be, y)
        gx, _ = call_backward(ap, method, 1, np.ones_like(y), x, 0.5, kernel_size=3)
        gx_be, _ = call_backward(ap, method, 1, np.ones_like(y).astype(">f8"), x.astype(">f8"), 0.5, kernel_size=3)
        np.testing.assert_array_equal(gx_be, gx)


def test_empty_spatial_dim_gave_nan_from_an_empty_window():
    # L = 0 with k = 2, p = 1 passed "kernel <= padded size" and pooled an
    # empty window (0/0 = NaN); the spec has |R| >= 1.
    with pytest.raises(ValueError, match=r"x: expected every spatial size >= 1.*\(0,\)"):
        ap.empool1d(np.zeros((1, 1, 0)), 2, padding=1)
    with pytest.raises(ValueError, match=r"x: expected every spatial size >= 1.*\(3, 0\)"):
        ap.adapool2d(np.zeros((2, 3, 0)), 0.5, 2, padding=1)


@pytest.mark.parametrize("stride", [2**62, 2**63 - 1, 2**63, 2**64])
@pytest.mark.parametrize("method", METHODS)
def test_huge_stride_overflowed_int64(method, stride, rng, numpy_backend):
    # 2**63 raised OverflowError naming nothing; 2**63 - 1 wrapped k + s - 1
    # in the backward's phase count and silently returned a zero gradient.
    # A stride past the padded input gives one window, as stride = L does.
    x = rng.standard_normal((1, 2, 7))
    kw = dict(kernel_size=3, padding=1, ceil_mode=True)
    y = call_pool(ap, method, 1, x, 0.5, stride=stride, **kw)
    y_ref = call_pool(ap, method, 1, x, 0.5, stride=9, **kw)
    np.testing.assert_array_equal(y, y_ref)
    g = rng.standard_normal(y.shape)
    gx, _ = call_backward(ap, method, 1, g, x, 0.5, stride=stride, **kw)
    gx_ref, _ = call_backward(ap, method, 1, g, x, 0.5, stride=9, **kw)
    assert gx_ref[..., :2].any()
    np.testing.assert_array_equal(gx, gx_ref)
    _, w = call_pool(ap, method, 1, x, 0.5, stride=stride, return_mask=True, **kw)
    np.testing.assert_array_equal(ap.adaunpool1d(y, w, 3, stride, 1, output_size=7),
                                  ap.adaunpool1d(y, w, 3, 9, 1, output_size=7))


def test_ragged_nested_list_error_named_no_argument():
    with pytest.raises(ValueError, match="x: expected a rectangular nested sequence"):
        ap.empool1d([[[1.0, 2.0], [3.0]]])
    with pytest.raises(ValueError, match="beta: expected a rectangular nested sequence"):
        ap.adapool1d(np.zeros((1, 1, 4)), [[0.1], [0.2, 0.3]])


def test_unpool_output_size_numpy_int_or_float_raised_a_bare_len_error(rng):
    y, w = ap.empool1d(rng.standard_normal((1, 2, 6)), 2, return_mask=True)
    np.testing.assert_array_equal(ap.adaunpool1d(y, w, output_size=np.int64(6)), ap.adaunpool1d(y, w, output_size=6))
    with pytest.raises(TypeError, match=r"output_size: expected an int or a tuple of 1 .*6\.0"):
        ap.adaunpool1d(y, w, output_size=6.0)
    with pytest.raises(TypeError, match="output_size:"):
        ap.adaunpool1d(y, w, output_size=np.array(6.0))


def test_return_mask_accepted_any_truthy_value():
    x = np.zeros((1, 1, 4))
    with pytest.raises(TypeError, match="return_mask: expected a bool, got str 'no'"):
        ap.empool1d(x, 2, return_mask="no")
    y, w = ap.empool1d(x, 2, return_mask=np.True_)
    assert w.shape == (1, 1, 2, 2)


def test_unpool_backward_blamed_output_size_for_a_bad_grad_out():
    y, w = np.ones((1, 1, 3)), np.ones((1, 1, 3, 2))
    with pytest.raises(ValueError, match="grad_out:"):
        ap.adaunpool1d_backward(np.float64(1.0), y, w)


@pytest.mark.parametrize("dtype,big", [(np.float32, 1e30), (np.float64, 1e200)])
def test_em_exact_gradient_lost_the_one_for_large_values(dtype, big, numpy_backend):
    # grad = w (1 + v - y) was evaluated as (1 + v) - y: for |v| >> 1 the 1
    # vanished and the max cell's gradient came out 0 instead of 1.
    x = np.array([[[big, -big, 1.0]]], dtype)
    gx = ap.empool1d_backward(np.ones((1, 1, 1), dtype), x, 3)
    np.testing.assert_array_equal(gx, np.array([[[1.0, 0.0, 0.0]]], dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["edscwpool", "adapool"])
def test_dsc_gradient_was_nan_for_subnormal_windows(method, dtype, numpy_backend):
    # d dsc / dv has a 1 / max(|v|, |m|) factor that overflows for subnormal
    # windows (inf * 0 = NaN).  eDSCW is scale-invariant (y(a x) = a y(x)), so
    # its gradient at a power-of-two-scaled x equals the gradient at x.
    # Window means exact; 2**16 units keep 16 significant bits in the
    # subnormal range, hence the 1e-3 tolerance.
    tiny = np.finfo(dtype).smallest_subnormal
    units = 2.0**16 * np.array([[[1.0, 2.0, 0.0, 3.0, 5.0, 4.0]]], dtype)
    x = units * tiny
    assert (x / tiny == units).all() and (np.abs(x) < np.finfo(dtype).tiny).all()
    g = np.array([[[1.0, -2.0]]], dtype)
    gx, _ = call_backward(ap, method, 1, g, x, 1.0, kernel_size=3)
    gx_units, _ = call_backward(ap, method, 1, g, units, 1.0, kernel_size=3)
    assert np.isfinite(gx).all()
    np.testing.assert_allclose(gx, gx_units, rtol=1e-3, atol=1e-3)


def test_nan_beta_gradient_was_silently_zero(rng, numpy_backend):
    # dL/dbeta was 0 for a NaN beta (the "outside [0, 1]" branch) while the
    # output was NaN; NaN now propagates to beta's gradient.
    x = rng.standard_normal((1, 2, 6))
    beta = np.array([0.5, np.nan, 1.5])
    y = ap.adapool1d(x, beta, 2)
    assert np.isnan(y[:, :, 1]).all() and np.isfinite(y[:, :, [0, 2]]).all()
    _, gb = ap.adapool1d_backward(np.ones_like(y), x, beta, 2)
    assert np.isnan(gb[1]) and gb[2] == 0 and np.isfinite(gb[0])
