"""Global pooling (``output_size=1`` in every dim, or one unpadded window the size of the
input): the CPU backend pools the flattened rows (``_geometry.global_geometry``, one
reduction per (n, c)).  Values, weights and exact gradients (with the weights' path)
against the float64 loop reference and finite differences, every method and rank."""
import numpy as np
import pytest

import adapool_core as ap
import reference as ref
from adapool_core._geometry import adaptive_geometry, global_geometry, pool_geometry
from support import METHODS, rel_err

SHAPES = {1: (2, 3, 9), 2: (2, 3, 5, 4), 3: (1, 2, 3, 4, 3)}


def call(method, d, x, beta, **kw):
    fn = getattr(ap, f"adaptive_{method}{d}d")
    return fn(x, beta, 1, **kw) if method == "adapool" else fn(x, 1, **kw)


def backward(method, d, g, x, beta, **kw):
    fn = getattr(ap, f"adaptive_{method}{d}d_backward")
    return fn(g, x, beta, 1, **kw) if method == "adapool" else (fn(g, x, 1, **kw), None)


def test_global_geometry_flattens_only_global_pooling():
    flat = global_geometry(adaptive_geometry((2, 3, 5, 4), 2, 1, "f"))
    assert (flat.in_shape3, flat.kernel, flat.out_shape3) == ((6, 1, 1, 20), (1, 1, 20), (6, 1, 1, 1))
    assert global_geometry(flat) is None  # flat already: no recursion
    assert global_geometry(adaptive_geometry((2, 3, 5, 4), 2, (1, 2), "f")) is None
    assert global_geometry(pool_geometry((2, 3, 4, 4), 2, 4, None, 1, False, "f")) is None  # padded
    assert global_geometry(pool_geometry((2, 3, 4, 4), 2, 4, None, 0, False, "f")) is not None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_values_and_weights_match_the_reference(method, d, dtype):
    rng = np.random.default_rng(d)
    x = rng.standard_normal(SHAPES[d])
    beta = rng.uniform(0.1, 0.9, (SHAPES[d][1],) + (1,) * d) if method == "adapool" else None
    y, w = call(method, d, x.astype(dtype), beta, return_mask=True)
    y_ref, w_ref = ref.adaptive_pool(method, x, beta, (1,) * d)
    assert y.shape == y_ref.shape and w.shape == w_ref.shape and y.dtype == dtype
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(y, y_ref, **tol)
    np.testing.assert_allclose(w, w_ref, **tol)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_gradients_match_finite_differences(method, d):
    """grad_out and the weights' cotangent (pool -> adaptive unpool -> loss), for x and beta."""
    rng = np.random.default_rng(10 + d)
    x = rng.standard_normal(SHAPES[d])
    beta = rng.uniform(0.1, 0.9, (1,) * (d + 2)) if method == "adapool" else None
    spatial = x.shape[2:]
    g = rng.standard_normal(x.shape)
    gy_out = rng.standard_normal(x.shape[:2] + (1,) * d)

    def loss(xv, bv):
        y, w = ref.adaptive_pool(method, xv, bv, (1,) * d)
        return float((g * ref.adaptive_unpool(y, w, spatial, "sum")).sum() + (gy_out * y).sum())

    y, w = call(method, d, x, beta, return_mask=True)
    gy, gw = getattr(ap, f"adaptive_adaunpool{d}d_backward")(g, y, w, spatial, return_grad_w=True)
    gx, gb = backward(method, d, gy + gy_out, x, beta, grad_w=gw)
    assert rel_err(gx, ref.finite_difference(lambda v: loss(v, beta), x)) < 1e-6
    if beta is not None:
        assert rel_err(gb, ref.finite_difference(lambda v: loss(x, v), beta)) < 1e-6
    # Without the weights' cotangent (the vector kernels): the plain gradient of sum(gy_out * y).
    gx0, _ = backward(method, d, gy_out, x, beta)
    fd = ref.finite_difference(lambda v: float((gy_out * ref.adaptive_pool(method, v, beta, (1,) * d)[0]).sum()), x)
    assert rel_err(gx0, fd) < 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_whole_input_window_is_global_pooling(method):
    """A plain window the size of the input takes the same path and gives the adaptive result."""
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 5))
    beta = (0.3,) if method == "adapool" else ()
    y = getattr(ap, f"{method}2d")(x, *beta, (6, 5))
    np.testing.assert_allclose(y, call(method, 2, x, *(beta or (None,))), rtol=1e-13)
