"""The XLA-native JAX path (implementation="xla"): values against the float64 loop reference,
exact gradients against the array-level backward (Numba) and finite differences, no host callback
under jit, vmap, jax.export with a serialize/deserialize round trip, and channels-last."""
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install jax)")
jnp = jax.numpy

import adapool_core as ap  # noqa: E402
import adapool_core.jax as apj  # noqa: E402
import reference  # noqa: E402
from conftest import METHODS, call_backward, call_pool  # noqa: E402
from reference import finite_difference  # noqa: E402

GEOMETRY = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)  # overlap, padding, ceil_mode
XLA = dict(implementation="xla")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def inputs(d, size=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + (size,) * d)
    out = ap.empool1d(np.zeros((1, 1, size)), **GEOMETRY).shape[-1:] * d
    return x, 0.1 + 0.8 * rng.random(out)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_values_and_weights_equal_the_float64_reference(method, d, x64):
    x, beta = inputs(d, seed=d)
    y, w = jax.jit(lambda x, b: call_pool(apj, method, d, x, b, return_mask=True, **GEOMETRY, **XLA))(x, beta)
    y_ref, w_ref = reference.pool(method, x, beta, **GEOMETRY)
    assert y.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_gradients_equal_the_array_level_backward(method, d, mode, x64):
    x, beta = inputs(d, seed=10 + d)
    r = np.random.default_rng(7).standard_normal(call_pool(ap, method, d, x, beta, **GEOMETRY).shape)

    def loss(x, b):
        return jnp.sum(call_pool(apj, method, d, x, b, mode=mode, **GEOMETRY, **XLA) * r)

    gx, gb = jax.jit(jax.grad(loss, argnums=(0, 1)))(x, beta)
    gx_ref, gb_ref = call_backward(ap, method, d, r, x, beta, mode=mode, **GEOMETRY)
    np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-10, atol=1e-12)
    if method == "adapool":
        np.testing.assert_allclose(np.asarray(gb), gb_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_gradient_equals_finite_differences(method, x64):
    x, beta = inputs(2, seed=3)
    r = np.random.default_rng(8).standard_normal(call_pool(ap, method, 2, x, beta, **GEOMETRY).shape)
    gx = jax.grad(lambda x: jnp.sum(call_pool(apj, method, 2, x, beta, **GEOMETRY, **XLA) * r))(x)
    fd = finite_difference(lambda a: float(np.sum(call_pool(ap, method, 2, a, beta, **GEOMETRY) * r)), x)
    np.testing.assert_allclose(np.asarray(gx), fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_conventions_give_finite_gradients_and_nan_propagates(method, x64):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 1.0  # zero windows (x_i = m = 0, delta = 0) next to a nonzero one
    gx = jax.grad(lambda x: jnp.sum(call_pool(apj, method, 2, x, 0.5, **XLA)))(x)
    gx_ref, _ = call_backward(ap, method, 2, np.ones((1, 1, 2, 2)), x, 0.5)
    assert np.all(np.isfinite(np.asarray(gx)))
    np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-12, atol=1e-14)
    x[0, 0, 3, 3] = np.nan
    y = np.asarray(call_pool(apj, method, 2, x, 0.5, **XLA))
    assert np.isnan(y[0, 0, 1, 1]) and not np.any(np.isnan(y[0, 0, 0]))


@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_adaunpool_values_and_gradients(normalize, x64):
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 7))
    y, w = ap.adapool2d(x, 0.3, return_mask=True, **GEOMETRY)
    unpool = jax.jit(lambda y, w: apj.adaunpool2d(y, w, 3, 2, 1, output_size=(7, 7), normalize=normalize, **XLA))
    np.testing.assert_allclose(np.asarray(unpool(y, w)), reference.unpool(y, w, (7, 7), 3, 2, 1, normalize),
                               rtol=1e-12, atol=1e-13)
    g = np.random.default_rng(6).standard_normal(x.shape)
    gy, gw = jax.grad(lambda y, w: jnp.sum(unpool(y, w) * g), argnums=(0, 1))(y, w)
    gy_ref = ap.adaunpool2d_backward(g, y, w, 3, 2, 1, output_size=(7, 7), normalize=normalize)
    np.testing.assert_allclose(np.asarray(gy), gy_ref, rtol=1e-12, atol=1e-13)
    def loss_w(part):  # finite differences over the first sample and channel's weights
        full = w.copy()
        full[:1, :1] = part
        return float(np.sum(ap.adaunpool2d(y, full, 3, 2, 1, output_size=(7, 7), normalize=normalize) * g))

    fd_w = finite_difference(loss_w, w[:1, :1])
    np.testing.assert_allclose(np.asarray(gw)[:1, :1], fd_w, rtol=1e-6, atol=1e-7)  # w is differentiable here


def test_jit_lowers_without_a_host_callback():
    x = jnp.ones((2, 3, 8, 8), jnp.float32)
    fn = jax.jit(jax.grad(lambda x: jnp.sum(apj.adapool2d(x, 0.5, return_mask=True, **XLA)[0])))
    text = fn.lower(x).as_text()
    assert "callback" not in text.lower() and "custom_call" not in text
    callback_text = jax.jit(lambda x: apj.empool2d(x, implementation="callback")).lower(x).as_text()
    assert "callback" in callback_text.lower()  # the check above can fail


def test_vmap_matches_a_loop():
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((4, 2, 3, 6, 6)).astype(np.float32)
    betas = rng.random((4, 3, 1, 1)).astype(np.float32)
    ys = jax.jit(jax.vmap(lambda x, b: apj.adapool2d(x, b, **GEOMETRY, **XLA)))(xs, betas)
    for i in range(4):
        np.testing.assert_allclose(np.asarray(ys[i]), ap.adapool2d(xs[i], betas[i], **GEOMETRY), rtol=2e-6,
                                   atol=1e-6)


def test_export_serialize_round_trip():
    from jax import export
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    fn = jax.jit(lambda x: apj.adapool2d(x, 0.4, **GEOMETRY, **XLA))
    blob = export.export(fn)(jax.ShapeDtypeStruct(x.shape, x.dtype)).serialize()
    restored = export.deserialize(blob)
    np.testing.assert_allclose(np.asarray(restored.call(x)), ap.adapool2d(x, 0.4, **GEOMETRY), rtol=2e-6,
                               atol=1e-6)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("implementation", ["xla", "callback"])
def test_channels_last_is_channels_first_transposed(method, d, implementation):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((2, 3) + (5,) * d).astype(np.float32)
    beta = rng.random((3,) + (1,) * d).astype(np.float32)
    beta_cl = np.moveaxis(beta, 0, -1)
    kw = dict(GEOMETRY, return_mask=True, implementation=implementation)
    y, w = call_pool(apj, method, d, x, beta, **kw)
    y_cl, w_cl = call_pool(apj, method, d, np.moveaxis(x, 1, -1), beta_cl, data_format="channels_last", **kw)
    np.testing.assert_allclose(np.asarray(y_cl), np.moveaxis(np.asarray(y), 1, -1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(w_cl), np.moveaxis(np.asarray(w), 1, -1), rtol=1e-6, atol=1e-7)
    r = rng.standard_normal(y.shape).astype(np.float32)
    grads = jax.grad(lambda x, b: jnp.sum(call_pool(apj, method, d, x, b, **GEOMETRY,
                                                    implementation=implementation) * r), argnums=(0, 1))
    gx, gb = grads(x, beta)
    gx_cl, gb_cl = jax.grad(lambda x, b: jnp.sum(call_pool(
        apj, method, d, x, b, **GEOMETRY, implementation=implementation, data_format="channels_last")
        * np.moveaxis(r, 1, -1)), argnums=(0, 1))(np.moveaxis(x, 1, -1), beta_cl)
    np.testing.assert_allclose(np.asarray(gx_cl), np.moveaxis(np.asarray(gx), 1, -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gb_cl), np.moveaxis(np.asarray(gb), 0, -1), rtol=1e-5, atol=1e-6)


def test_implementation_errors_name_the_argument():
    with pytest.raises(ValueError, match="implementation: expected 'auto', 'xla' or 'callback', got 'gpu'"):
        apj.empool2d(jnp.zeros((1, 1, 4, 4)), implementation="gpu")
    with pytest.raises(TypeError, match="unexpected keyword argument 'layout'"):
        apj.empool2d(jnp.zeros((1, 1, 4, 4)), layout="NHWC")
