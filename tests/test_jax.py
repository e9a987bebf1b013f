"""JAX adapter: results equal the NumPy functions' under jit and vmap;
gradients equal finite differences (float64) and the array-level backward."""
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install jax)")
jnp = jax.numpy

import adapool_core as ap  # noqa: E402
import adapool_core.jax as apj  # noqa: E402
from support import METHODS  # noqa: E402
from reference import finite_difference  # noqa: E402

GEOMETRY = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)  # overlap, padding, ceil_mode


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def spatial_out(d, size):
    return ap.empool1d(np.zeros((1, 1, size)), **GEOMETRY).shape[-1:] * d


def call(module, method, d, x, beta, **kw):
    fn = getattr(module, f"{method}{d}d")
    return fn(x, beta, **kw) if method == "adapool" else fn(x, **kw)


def inputs(d, size=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 2) + (size,) * d)
    beta = 0.1 + 0.8 * rng.random(spatial_out(d, size))  # inside (0, 1): beta is differentiable
    return x, beta


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_jit_equals_numpy(method, d):
    x, beta = (a.astype(np.float32) for a in inputs(d))
    fn = jax.jit(lambda x, b: call(apj, method, d, x, b, return_mask=True, **GEOMETRY))
    y, w = fn(jnp.asarray(x), jnp.asarray(beta))
    y_ref, w_ref = call(ap, method, d, x, beta, return_mask=True, **GEOMETRY)
    assert y.dtype == jnp.float32 and y.shape == y_ref.shape and w.shape == w_ref.shape
    np.testing.assert_array_equal(np.asarray(y), y_ref)
    np.testing.assert_array_equal(np.asarray(w), w_ref)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_grad_equals_finite_differences(method, d, x64):
    x, beta = inputs(d, seed=d)
    r = np.random.default_rng(7).standard_normal(call(ap, method, d, x, beta, **GEOMETRY).shape)

    def loss(x, beta):  # sum(y * r): every output's gradient gets its own weight
        return jnp.sum(call(apj, method, d, x, beta, **GEOMETRY) * r)

    gx, gb = jax.jit(jax.grad(loss, argnums=(0, 1)))(jnp.asarray(x), jnp.asarray(beta))
    fd_x = finite_difference(lambda a: float(np.sum(call(ap, method, d, a, beta, **GEOMETRY) * r)), x)
    np.testing.assert_allclose(np.asarray(gx), fd_x, rtol=1e-6, atol=1e-7)
    if method == "adapool":
        fd_b = finite_difference(lambda b: float(np.sum(call(ap, method, d, x, b, **GEOMETRY) * r)), beta)
        np.testing.assert_allclose(np.asarray(gb), fd_b, rtol=1e-6, atol=1e-7)
    else:
        assert not np.any(np.asarray(gb))  # beta is not an input of these methods


@pytest.mark.parametrize("method", METHODS)
def test_paper_gradient_is_the_array_level_paper_gradient(method):
    x, beta = (a.astype(np.float32) for a in inputs(2))
    gy = np.ones(call(ap, method, 2, x, beta, **GEOMETRY).shape, np.float32)
    gx = jax.grad(lambda x: jnp.sum(call(apj, method, 2, x, beta, mode="paper", **GEOMETRY)))(jnp.asarray(x))
    kw = dict(GEOMETRY, mode="paper")
    if method == "adapool":
        gx_ref, _ = ap.adapool2d_backward(gy, x, beta, **kw)
    else:
        gx_ref = getattr(ap, f"{method}2d_backward")(gy, x, **kw)
    np.testing.assert_array_equal(np.asarray(gx), gx_ref)


@pytest.mark.parametrize("beta_axis", [None, 0])
def test_vmap_matches_a_loop(beta_axis):
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((4, 2, 3, 6, 6)).astype(np.float32)
    betas = rng.random((4, 3, 1, 1)).astype(np.float32)  # per channel, one set per vmapped element
    beta = betas if beta_axis == 0 else betas[0]

    def loss(x, b):
        return jnp.sum(apj.adapool2d(x, b, **GEOMETRY) ** 2)

    ys = jax.jit(jax.vmap(lambda x, b: apj.adapool2d(x, b, **GEOMETRY), in_axes=(0, beta_axis)))(
        jnp.asarray(xs), jnp.asarray(beta))
    gxs, gbs = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, beta_axis))(jnp.asarray(xs), jnp.asarray(beta))
    assert gbs.shape == (4, 3, 1, 1)  # per-example gradients of beta
    for i in range(4):
        b = betas[i] if beta_axis == 0 else betas[0]
        y = ap.adapool2d(xs[i], b, **GEOMETRY)
        gx, gb = ap.adapool2d_backward(2 * y, xs[i], b, **GEOMETRY)
        np.testing.assert_array_equal(np.asarray(ys[i]), y)
        np.testing.assert_allclose(np.asarray(gxs[i]), gx, rtol=1e-6)
        np.testing.assert_allclose(np.asarray(gbs[i]), gb, rtol=1e-5)


def test_nested_vmap_of_unbatched_inputs():
    xs = np.random.default_rng(4).standard_normal((2, 3, 4, 8)).astype(np.float32)  # (V1, V2, C, L)
    ys = jax.vmap(jax.vmap(lambda x: apj.idwpool1d(x, 2)))(jnp.asarray(xs))
    assert ys.shape == (2, 3, 4, 4)
    np.testing.assert_array_equal(np.asarray(ys), ap.idwpool1d(xs.reshape(6, 4, 8), 2).reshape(2, 3, 4, 4))


def test_adaunpool_jit_grad_vmap():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 7)).astype(np.float32)
    y, w = apj.adapool2d(jnp.asarray(x), 0.3, return_mask=True, **GEOMETRY)
    unpool = jax.jit(lambda y, w: apj.adaunpool2d(y, w, 3, 2, 1, output_size=(7, 7), normalize="window"))
    out = unpool(y, w)
    ref = ap.adaunpool2d(np.asarray(y), np.asarray(w), 3, 2, 1, output_size=(7, 7), normalize="window")
    np.testing.assert_array_equal(np.asarray(out), ref)
    g = np.random.default_rng(6).standard_normal(ref.shape).astype(np.float32)
    gy, gw = jax.grad(lambda y, w: jnp.sum(unpool(y, w) * g), argnums=(0, 1))(y, w)
    np.testing.assert_allclose(np.asarray(gy), ap.adaunpool2d_backward(
        g, np.asarray(y), np.asarray(w), 3, 2, 1, output_size=(7, 7), normalize="window"), rtol=1e-6)
    # The weights are differentiable too (spec: "Gradients through the weights").
    _, want_gw = ap.adaunpool2d_backward(g, np.asarray(y), np.asarray(w), 3, 2, 1, output_size=(7, 7),
                                         normalize="window", return_grad_w=True)
    assert np.any(want_gw)
    np.testing.assert_allclose(np.asarray(gw), want_gw, rtol=1e-6)
    per_sample = jax.vmap(unpool)(y, w)  # vmapped over N: unbatched calls folded into one
    np.testing.assert_array_equal(np.asarray(per_sample), ref)


def test_bfloat16_in_bfloat16_out():
    x = np.random.default_rng(8).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = jax.jit(lambda x: apj.empool2d(x))(jnp.asarray(x, jnp.bfloat16))
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), ap.empool2d(x), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("method", ["adapool", "empool"])
def test_second_derivative_is_a_clear_error(method):
    x = jnp.asarray(inputs(2)[0].astype(np.float32))

    def grad_norm(x):
        return jnp.sum(jax.grad(lambda x: jnp.sum(call(apj, method, 2, x, 0.5) ** 2))(x) ** 2)

    with pytest.raises(NotImplementedError, match="higher-order derivatives"):
        jax.grad(grad_norm)(x)


@pytest.mark.parametrize("call_,exc,words", [
    (lambda: apj.empool2d(jnp.zeros((1, 1, 4, 4)), kernel_size=5), ValueError, ["kernel_size:", "(5, 5)"]),
    (lambda: apj.empool2d(jnp.zeros((1, 1, 4, 4)), grad="approx"), ValueError, ["grad:", "approx"]),
    (lambda: apj.adapool2d(jnp.zeros((1, 2, 4, 4)), jnp.zeros((3, 3))), ValueError, ["beta:", "(3, 3)"]),
    (lambda: jax.jit(apj.empool1d)(jnp.zeros((1, 4, 4, 4))), ValueError, ["x:", "4-D"]),
])
def test_errors_at_trace_time_name_the_argument(call_, exc, words):
    with pytest.raises(exc) as info:
        call_()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
