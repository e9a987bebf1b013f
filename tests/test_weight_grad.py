"""Gradients through the returned weights (spec: "Gradients through the
weights"): the pooling backward's ``grad_w`` and adaUnPool's backward with
``return_grad_w``, chained as pool -> unpool -> loss, against float64 finite
differences of the loop reference (tests/reference_grad.py)."""
import numpy as np
import pytest

import adapool_core as ap
import reference as ref
from reference_grad import pool_unpool_gradient
from support import METHODS, call_backward, call_pool, rel_err

SHAPES = {1: (2, 2, 9), 2: (1, 2, 7, 6), 3: (1, 1, 5, 4, 5)}
WINDOWS = {
    "overlap_pad_ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "disjoint": dict(kernel_size=2, stride=2, padding=0, ceil_mode=False),
}


def chain_gradient(method, d, x, beta, g, kw, normalize):
    """(gx, gbeta) of sum(g * unpool(*pool(x, beta))) from the library's backward functions."""
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
    unpool_kw = dict(kernel_size=kw["kernel_size"], stride=kw["stride"], padding=kw["padding"],
                     output_size=x.shape[-d:], normalize=normalize)
    gy, gw = getattr(ap, f"adaunpool{d}d_backward")(g, y, w, return_grad_w=True, **unpool_kw)
    return call_backward(ap, method, d, gy, x, beta, grad_w=gw, **kw)


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_pool_unpool_gradient_matches_finite_differences(method, d, window, normalize):
    rng = np.random.default_rng(7 + d)
    kw = WINDOWS[window]
    x = rng.standard_normal(SHAPES[d])
    y_shape = call_pool(ap, "empool", d, x, None, **kw).shape
    beta = rng.uniform(0.1, 0.9, y_shape[-d:]) if method == "adapool" else None  # away from the clamp's kinks
    g = rng.standard_normal(x.shape)
    gx, gbeta = chain_gradient(method, d, x, beta, g, kw, normalize)
    fd_x, fd_beta = pool_unpool_gradient(method, x, beta, g, normalize=normalize, **kw)
    assert rel_err(gx, fd_x) < 1e-6
    if method == "adapool":
        assert gbeta.shape == beta.shape
        assert rel_err(gbeta, fd_beta) < 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_weight_path_is_what_grad_w_adds(method):
    """grad_w = 0 changes nothing; a nonzero one changes grad_x (exact) and
    grad_beta, and in paper mode only grad_beta (the weights are constants for x)."""
    rng = np.random.default_rng(1)
    kw = WINDOWS["overlap_pad_ceil"]
    x = rng.standard_normal((1, 2, 7, 6))
    beta = 0.4 if method == "adapool" else None
    y, w = call_pool(ap, method, 2, x, beta, return_mask=True, **kw)
    g = rng.standard_normal(y.shape)
    for mode in ("exact", "paper"):
        plain = call_backward(ap, method, 2, g, x, beta, mode=mode, **kw)
        zero = call_backward(ap, method, 2, g, x, beta, mode=mode, grad_w=np.zeros_like(w), **kw)
        some = call_backward(ap, method, 2, g, x, beta, mode=mode, grad_w=rng.standard_normal(w.shape), **kw)
        np.testing.assert_allclose(zero[0], plain[0], rtol=1e-12, atol=1e-14)
        assert (np.abs(some[0] - plain[0]).max() > 1e-6) == (mode == "exact")
        if method == "adapool":
            assert abs(float(some[1]) - float(plain[1])) > 1e-6


def test_unpool_grad_w_is_the_bilinear_derivative():
    """adaUnPool's gradient for w: grad_out_i * y_r (sum), times |R_r| / cover_i (window); 0 off the input."""
    rng = np.random.default_rng(2)
    kw = dict(kernel_size=3, stride=2, padding=1)
    x = rng.standard_normal((1, 2, 7, 6))
    y, w = ap.adapool2d(x, 0.5, return_mask=True, **kw)
    g = rng.standard_normal(x.shape)
    for normalize in ("sum", "window"):
        gy, gw = ap.adaunpool2d_backward(g, y, w, output_size=(7, 6), normalize=normalize,
                                         return_grad_w=True, **kw)
        np.testing.assert_array_equal(gy, ap.adaunpool2d_backward(g, y, w, output_size=(7, 6),
                                                                  normalize=normalize, **kw))
        fd = ref.finite_difference(
            lambda wv: float((g * ref.unpool(y, wv, (7, 6), 3, 2, 1, normalize)).sum()), w)
        inside = w != 0
        np.testing.assert_allclose(gw[inside], fd[inside], rtol=1e-7, atol=1e-9)
        assert np.all(gw[~inside] == 0)


def test_grad_w_of_a_wrong_shape_is_an_error():
    x = np.ones((1, 1, 4, 4))
    with pytest.raises(ValueError, match="grad_w"):
        ap.adapool2d_backward(np.ones((1, 1, 2, 2)), x, 0.5, grad_w=np.ones((1, 1, 2, 2)))
