"""data_format="channels_last": every array-level function equals the channels-first one, transposed
(forward, weights, backward with grad_x and grad_beta, adaUnPool and its backward)."""
import numpy as np
import pytest

import adapool_core as ap
from conftest import METHODS

GEOMETRY = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)  # overlap, padding, ceil_mode
CL = dict(data_format="channels_last")


def last(a, axis=1):
    return np.moveaxis(a, axis, -1)


def args(method, x, beta):
    return (x, beta) if method == "adapool" else (x,)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("beta_kind", ["per_channel", "per_location"])
def test_channels_last_is_channels_first_transposed(method, d, beta_kind):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((2, 3) + (5,) * d)
    out = ap.empool1d(np.zeros((1, 1, 5)), **GEOMETRY).shape[-1:] * d
    if beta_kind == "per_channel":
        beta = rng.random((3,) + (1,) * d)
        beta_cl = last(beta, 0)  # (1, .., 1, C)
    else:
        beta = rng.random(out)
        beta_cl = beta[..., None]  # (*O, 1)
    pool, backward = getattr(ap, f"{method}{d}d"), getattr(ap, f"{method}{d}d_backward")
    y, w = pool(*args(method, x, beta), return_mask=True, **GEOMETRY)
    y_cl, w_cl = pool(*args(method, last(x), beta_cl), return_mask=True, **GEOMETRY, **CL)
    assert w_cl.shape == (2,) + out + (3,) * d + (3,)  # (N, *O, *k, C)
    np.testing.assert_array_equal(y_cl, last(y))
    np.testing.assert_array_equal(w_cl, last(w))
    g = rng.standard_normal(y.shape)
    grads = backward(g, *args(method, x, beta), **GEOMETRY)
    grads_cl = backward(last(g), *args(method, last(x), beta_cl), **GEOMETRY, **CL)
    if method == "adapool":
        (gx, gb), (gx_cl, gb_cl) = grads, grads_cl
        assert gb_cl.shape == beta_cl.shape
        np.testing.assert_allclose(gb_cl, last(gb, 0) if beta_kind == "per_channel" else gb[..., None],
                                   rtol=1e-12, atol=1e-14)
        assert np.any(gb_cl)
    else:
        gx, gx_cl = grads, grads_cl
    np.testing.assert_array_equal(gx_cl, last(gx))


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_adaunpool_channels_last(d, normalize):
    rng = np.random.default_rng(10 + d)
    x = rng.standard_normal((2, 3) + (5,) * d)
    y, w = getattr(ap, f"adapool{d}d")(x, 0.4, return_mask=True, **GEOMETRY)
    unpool, backward = getattr(ap, f"adaunpool{d}d"), getattr(ap, f"adaunpool{d}d_backward")
    u = unpool(y, w, 3, 2, 1, output_size=(5,) * d, normalize=normalize)
    # output_size with leading dims is given in the caller's layout: (N, *S, C)
    u_cl = unpool(last(y), last(w), 3, 2, 1, output_size=(2,) + (5,) * d + (3,), normalize=normalize, **CL)
    np.testing.assert_array_equal(u_cl, last(u))
    g = rng.standard_normal(u.shape)
    gy = backward(g, y, w, 3, 2, 1, normalize=normalize)
    gy_cl = backward(last(g), last(y), last(w), 3, 2, 1, normalize=normalize, **CL)
    np.testing.assert_array_equal(gy_cl, last(gy))


def test_unbatched_channels_last():
    x = np.random.default_rng(0).standard_normal((3, 6, 6))
    np.testing.assert_array_equal(ap.idwpool2d(last(x, 0), **CL), last(ap.idwpool2d(x), 0))


def test_data_format_errors_name_the_argument():
    x = np.zeros((1, 4, 4, 3))
    with pytest.raises(ValueError, match="data_format: expected 'channels_first' or 'channels_last', got 'NHWC'"):
        ap.empool2d(x, data_format="NHWC")
    with pytest.raises(ValueError, match=r"beta: .*channels-last output shape \(1, 2, 2, 3\).*got \(3, 1, 1\)"):
        ap.adapool2d(x, np.ones((3, 1, 1)), **CL)  # a channels-first per-channel beta
