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


# --- adaptive functions -----------------------------------------------------------------------

ADAPTIVE_SIZES = {1: (3,), 2: (3, None), 3: (2, 1, 3)}  # unequal windows, a kept dim, global


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_adaptive_channels_last_is_channels_first_transposed(method, d):
    rng = np.random.default_rng(20 + d)
    x = rng.standard_normal((2, 3) + (5,) * d)
    size = ADAPTIVE_SIZES[d]
    beta = rng.random((3,) + (1,) * d)
    beta_cl = last(beta, 0)
    pool = getattr(ap, f"adaptive_{method}{d}d")
    backward = getattr(ap, f"adaptive_{method}{d}d_backward")
    y, w = pool(*args(method, x, beta), size, return_mask=True)
    y_cl, w_cl = pool(*args(method, last(x), beta_cl), size, return_mask=True, **CL)
    np.testing.assert_array_equal(y_cl, last(y))
    np.testing.assert_array_equal(w_cl, last(w))
    g, gw = rng.standard_normal(y.shape), rng.standard_normal(w.shape)
    grads = backward(g, *args(method, x, beta), size, "exact", gw)
    grads_cl = backward(last(g), *args(method, last(x), beta_cl), size, "exact", last(gw), **CL)
    if method == "adapool":
        (gx, gb), (gx_cl, gb_cl) = grads, grads_cl
        np.testing.assert_allclose(gb_cl, last(gb, 0), rtol=1e-12, atol=1e-14)
        assert np.any(gb_cl)
    else:
        gx, gx_cl = grads, grads_cl
    np.testing.assert_array_equal(gx_cl, last(gx))
    assert np.any(gx_cl)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_adaptive_adaunpool_channels_last(d, normalize):
    rng = np.random.default_rng(30 + d)
    x = rng.standard_normal((2, 3) + (5,) * d)
    y, w = getattr(ap, f"adaptive_adapool{d}d")(x, 0.4, ADAPTIVE_SIZES[d], return_mask=True)
    unpool = getattr(ap, f"adaptive_adaunpool{d}d")
    backward = getattr(ap, f"adaptive_adaunpool{d}d_backward")
    u = unpool(y, w, (5,) * d, normalize=normalize)
    u_cl = unpool(last(y), last(w), (5,) * d, normalize=normalize, **CL)
    np.testing.assert_array_equal(u_cl, last(u))
    g = rng.standard_normal(u.shape)
    gy, gw = backward(g, y, w, (5,) * d, normalize=normalize, return_grad_w=True)
    gy_cl, gw_cl = backward(last(g), last(y), last(w), (5,) * d, normalize=normalize, return_grad_w=True, **CL)
    np.testing.assert_array_equal(gy_cl, last(gy))
    np.testing.assert_array_equal(gw_cl, last(gw))


@pytest.mark.parametrize("d", [1, 2])
def test_adaptive_adapters_channels_last(d):
    """The torch and jax adaptive functions take data_format like the array level (weights included)."""
    rng = np.random.default_rng(40 + d)
    x = rng.standard_normal((2, 3) + (6,) * d)
    y, w = ap.__dict__[f"adaptive_adapool{d}d"](x, 0.3, 4, return_mask=True)
    u = ap.__dict__[f"adaptive_adaunpool{d}d"](y, w, (6,) * d)
    checked = 0
    for name in ("torch", "jax"):
        try:
            mod = __import__(f"adapool_core.{name}", fromlist=["_"])
        except ImportError:
            continue
        conv = (lambda a: __import__("torch").from_numpy(np.ascontiguousarray(a))) if name == "torch" else \
            (lambda a: __import__("jax.numpy").numpy.asarray(a))
        y_cl, w_cl = getattr(mod, f"adaptive_adapool{d}d")(conv(last(x)), 0.3, 4, return_mask=True, **CL)
        np.testing.assert_allclose(np.asarray(y_cl), last(y), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(w_cl), last(w), rtol=1e-5, atol=1e-6)
        u_cl = getattr(mod, f"adaptive_adaunpool{d}d")(y_cl, w_cl, (6,) * d, **CL)
        np.testing.assert_allclose(np.asarray(u_cl), last(u), rtol=1e-5, atol=1e-6)
        checked += 1
    if not checked:
        pytest.skip("neither torch nor jax is installed")
