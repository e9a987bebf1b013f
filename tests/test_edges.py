"""Edge values (constant and all-zero windows, IDW cells at the mean, large
magnitudes, NaN), dtypes, memory ownership and layout."""
import numpy as np
import pytest

import adapool_core as ap
import reference as ref
from support import METHODS, call_backward, call_pool, rel_err

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("value", [0.0, 2.5, -3.0])
def test_constant_windows_give_the_constant(method, value):
    x = np.full((1, 2, 6, 6), value)
    y, w = call_pool(ap, method, 2, x, 0.5, kernel_size=3, stride=2, padding=1, return_mask=True)
    np.testing.assert_allclose(y, value, rtol=1e-14, atol=0)
    assert np.isfinite(w).all()
    gx, gb = call_backward(ap, method, 2, np.ones_like(y), x, 0.5, kernel_size=3, stride=2, padding=1)
    assert np.isfinite(gx).all()
    if gb is not None:
        assert gb == pytest.approx(0.0)


def test_all_zero_window_gradient_is_finite():
    # dsc is 1 at x = m = 0 and its gradient 0 there (spec: conventions).
    x = np.zeros((1, 1, 4))
    for method in METHODS:
        gx, _ = call_backward(ap, method, 1, np.ones((1, 1, 2)), x, 0.5)
        assert np.isfinite(gx).all()


def test_idw_cell_at_mean_takes_all_weight():
    # Window [1, 2, 3]: the mean 2 is a cell, so y = m and w = [0, 1, 0].
    x = np.array([[[1.0, 2.0, 3.0, 0.0, 4.0, 8.0]]])
    y, w = ap.idwpool1d(x, 3, return_mask=True)
    assert y[0, 0, 0] == 2.0
    assert y[0, 0, 1] == pytest.approx(ref.pool("idwpool", x, None, 3)[0][0, 0, 1], rel=1e-14)
    np.testing.assert_array_equal(w[0, 0, 0], [0.0, 1.0, 0.0])
    # Exact gradient differentiates y = m there: 1/3 to each cell.
    gx = ap.idwpool1d_backward(np.array([[[1.0, 0.0]]]), x, 3)
    np.testing.assert_allclose(gx[0, 0, :3], 1 / 3, rtol=1e-14)
    # Two cells at the mean share the weight.
    x2 = np.array([[[2.0, 2.0, 1.0, 3.0]]])
    _, w2 = ap.idwpool1d(x2, 4, return_mask=True)
    np.testing.assert_array_equal(w2[0, 0, 0], [0.5, 0.5, 0.0, 0.0])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_magnitudes_do_not_overflow(method, dtype, rng):
    x = (1e3 * rng.standard_normal((2, 3, 8, 8))).astype(dtype)
    y = call_pool(ap, method, 2, x, 0.5)
    assert np.isfinite(y).all()
    y_ref, _ = ref.pool(method, x, 0.5, 2)
    assert rel_err(y, y_ref) <= (1e-12 if dtype == np.float64 else 1e-5)
    gx, _ = call_backward(ap, method, 2, np.ones_like(y), x, 0.5)
    assert np.isfinite(gx).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_gives_nan_for_its_window_only(method, dtype, rng):
    x = rng.standard_normal((1, 1, 6, 6)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    y = call_pool(ap, method, 2, x, 0.5)
    nan = np.isnan(y[0, 0])
    expected = np.zeros((3, 3), bool)
    expected[1, 1] = True
    np.testing.assert_array_equal(nan, expected)
    gx, _ = call_backward(ap, method, 2, np.ones_like(y), x, 0.5)
    assert np.isnan(gx[0, 0, 2:4, 2:4]).all()
    assert np.isfinite(np.delete(gx[0, 0].reshape(-1), [14, 15, 20, 21])).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_half_precision_computes_in_float32(method, dtype_name, rng):
    dtype = np.dtype(ml_dtypes.bfloat16) if dtype_name == "bfloat16" else np.dtype(np.float16)
    for scale in (1e-3, 1.0, 1e2):
        x = (scale * rng.standard_normal((2, 3, 8, 8))).astype(dtype)
        beta = rng.uniform(0, 1, (4, 4)).astype(dtype)
        y, w = call_pool(ap, method, 2, x, beta, return_mask=True)
        assert y.dtype == dtype and w.dtype == dtype
        y_ref, _ = ref.pool(method, x.astype(np.float64), beta.astype(np.float64), 2)
        assert rel_err(y.astype(np.float64), y_ref) <= 1e-2
        gx, gb = call_backward(ap, method, 2, np.ones_like(y), x, beta)
        assert gx.dtype == dtype
        if gb is not None:
            assert gb.dtype == dtype and gb.shape == beta.shape


@pytest.mark.parametrize("method", METHODS)
def test_inputs_untouched_outputs_fresh_noncontiguous_ok(method, rng):
    base = rng.standard_normal((2, 3, 10, 12))
    x = base[:, :, ::2, 1::2].transpose(0, 1, 3, 2)  # non-contiguous view
    assert not x.flags.c_contiguous
    before = base.copy()
    beta = np.full((3, 2), 0.4)
    y = call_pool(ap, method, 2, x, beta)
    y_c = call_pool(ap, method, 2, np.ascontiguousarray(x), beta)
    np.testing.assert_array_equal(y, y_c)
    g = np.ones_like(y)
    gx, _ = call_backward(ap, method, 2, g, x, beta)
    np.testing.assert_array_equal(base, before)
    assert not np.shares_memory(y, base) and not np.shares_memory(gx, base)
    # A float64 contiguous input is read in place but never written.
    xc = np.ascontiguousarray(x)
    xc_before = xc.copy()
    call_pool(ap, method, 2, xc, beta, return_mask=True)
    call_backward(ap, method, 2, g, xc, beta)
    np.testing.assert_array_equal(xc, xc_before)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_unbatched_equals_batched(d, rng):
    x = rng.standard_normal((3,) + (5,) * d)
    beta = rng.uniform(0, 1, (3,) + (1,) * d)
    y = ap.__dict__[f"adapool{d}d"](x, beta, 3, 2, 1)
    yb = ap.__dict__[f"adapool{d}d"](x[None], beta, 3, 2, 1)
    np.testing.assert_array_equal(y, yb[0])
    gx, gb = ap.__dict__[f"adapool{d}d_backward"](np.ones_like(y), x, beta, 3, 2, 1)
    assert gx.shape == x.shape and gb.shape == beta.shape
