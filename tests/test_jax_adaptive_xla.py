"""Adaptive pooling on the XLA-native JAX path (implementation="xla"): values and weights against the
float64 loop reference (unequal windows, O < L, O == L and O > L), gradients against the array-level
backward and finite differences (x, beta, through the weights, adaUnPool's y and w), channels-last,
vmap, no host callback under jit, and jax.export with a serialize/deserialize round trip."""
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install jax)")
jnp = jax.numpy

import adapool_core as ap  # noqa: E402
import adapool_core.jax as apj  # noqa: E402
import reference  # noqa: E402
from conftest import METHODS  # noqa: E402
from reference import finite_difference  # noqa: E402

XLA = dict(implementation="xla")
# (input size, output size) per rank: unequal windows (7 -> 3: lengths 3, 3, 3 overlapping; 5 -> 3),
# O == L (5 -> 5) and O > L (3 -> 5, 4 -> 6: repeated cells).
SIZES = {1: [((7,), (3,)), ((4,), (6,))],
         2: [((7, 5), (3, 5)), ((3, 5), (5, 3))],
         3: [((5, 4, 3), (2, 3, 5))]}
CASES = [(d, size, out) for d, pairs in SIZES.items() for size, out in pairs]


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def pool_fn(module, method, d):
    return getattr(module, f"adaptive_{method}{d}d")


def beta_args(method, beta):
    return (beta,) if method == "adapool" else ()


def inputs(size, out, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, 3) + tuple(size)), 0.1 + 0.8 * rng.random(out)


@pytest.mark.parametrize("d, size, out", CASES)
@pytest.mark.parametrize("method", METHODS)
def test_values_and_weights_equal_the_float64_reference(method, d, size, out, x64):
    x, beta = inputs(size, out, seed=d)
    args = beta_args(method, beta)
    y, w = jax.jit(lambda x, *b: pool_fn(apj, method, d)(x, *b, out, return_mask=True, **XLA))(x, *args)
    y_ref, w_ref = reference.adaptive_pool(method, x, beta, out)
    assert y.dtype == jnp.float64 and w.shape == w_ref.shape
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(w), w_ref, rtol=1e-12, atol=1e-13)
    y_unbatched = pool_fn(apj, method, d)(x[0], *args, out, **XLA)  # (C, *L) in, (C, *O) out
    np.testing.assert_allclose(np.asarray(y_unbatched), y_ref[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("d, size, out", CASES)
@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_adaunpool_equals_the_float64_reference(d, size, out, normalize, x64):
    x, beta = inputs(size, out, seed=20 + d)
    y, w = reference.adaptive_pool("adapool", x, beta, out)
    unpool = jax.jit(lambda y, w: getattr(apj, f"adaptive_adaunpool{d}d")(y, w, size, normalize, **XLA))
    np.testing.assert_allclose(np.asarray(unpool(y, w)), reference.adaptive_unpool(y, w, size, normalize),
                               rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("d, size, out", CASES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_gradients_equal_the_array_level_backward(method, d, size, out, mode, x64):
    """Both gradient modes, x and beta, against the array level (tested against the reference)."""
    x, beta = inputs(size, out, seed=10 + d)
    args = beta_args(method, beta)
    r = np.random.default_rng(7).standard_normal((2, 3) + out)

    def loss(x, *b):
        return jnp.sum(pool_fn(apj, method, d)(x, *b, out, mode=mode, **XLA) * r)

    grads = jax.jit(jax.grad(loss, argnums=tuple(range(1 + len(args)))))(x, *args)
    want = getattr(ap, f"adaptive_{method}{d}d_backward")(r, x, *args, out, mode=mode)
    want = want if isinstance(want, tuple) else (want,)
    for got, ref in zip(grads, want, strict=True):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d, size, out", [CASES[0], CASES[3]])
@pytest.mark.parametrize("method", METHODS)
def test_gradient_through_the_weights_equals_finite_differences(method, d, size, out, x64):
    """pool (return_mask=True) -> adaptive adaUnPool -> loss, with the output's own term: the gradients
    of x and beta (dL/dbeta included) against float64 finite differences of the loop reference."""
    x, beta = inputs(size, out, seed=30 + d)
    x, beta = x[:1, :2], beta  # keep the finite differences small
    rng = np.random.default_rng(31)
    g, r = rng.standard_normal(x.shape), rng.standard_normal((1, 2) + out)
    args = beta_args(method, beta)
    unpool = getattr(apj, f"adaptive_adaunpool{d}d")

    def loss(xv, *bv):
        y, w = pool_fn(apj, method, d)(xv, *bv, out, return_mask=True, **XLA)
        return jnp.sum(g * unpool(y, w, size, "window", **XLA)) + jnp.sum(r * y)

    def loss_ref(xv, bv):
        y, w = reference.adaptive_pool(method, xv, bv, out)
        return float(np.sum(g * reference.adaptive_unpool(y, w, size, "window")) + np.sum(r * y))

    grads = jax.grad(loss, argnums=tuple(range(1 + len(args))))(x, *args)
    np.testing.assert_allclose(np.asarray(grads[0]), finite_difference(lambda v: loss_ref(v, beta), x),
                               rtol=1e-6, atol=1e-7)
    if method == "adapool":
        np.testing.assert_allclose(np.asarray(grads[1]), finite_difference(lambda v: loss_ref(x, v), beta),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_adaunpool_gradients_of_y_and_w(normalize, x64):
    size, out = (7, 5), (3, 5)
    x, beta = inputs(size, out, seed=5)
    y, w = ap.adaptive_adapool2d(x, beta, out, return_mask=True)
    g = np.random.default_rng(6).standard_normal(x.shape)
    unpool = jax.jit(lambda y, w: apj.adaptive_adaunpool2d(y, w, size, normalize, **XLA))
    gy, gw = jax.grad(lambda y, w: jnp.sum(unpool(y, w) * g), argnums=(0, 1))(y, w)
    gy_ref, gw_ref = ap.adaptive_adaunpool2d_backward(g, y, w, size, normalize=normalize, return_grad_w=True)
    np.testing.assert_allclose(np.asarray(gy), gy_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(gw), gw_ref, rtol=1e-12, atol=1e-13)

    def loss_w(part):  # finite differences over the first sample and channel's weights
        full = w.copy()
        full[:1, :1] = part
        return float(np.sum(reference.adaptive_unpool(y, full, size, normalize) * g))

    np.testing.assert_allclose(np.asarray(gw)[:1, :1], finite_difference(loss_w, w[:1, :1]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_channels_last_is_channels_first_transposed(method, d):
    size, out = SIZES[d][0]
    rng = np.random.default_rng(d)
    x = rng.standard_normal((2, 3) + size).astype(np.float32)
    beta = rng.random((3,) + (1,) * d).astype(np.float32)
    beta_cl = np.moveaxis(beta, 0, -1)
    args, args_cl = beta_args(method, beta), beta_args(method, beta_cl)
    fn = pool_fn(apj, method, d)
    y, w = fn(x, *args, out, return_mask=True, **XLA)
    y_cl, w_cl = fn(np.moveaxis(x, 1, -1), *args_cl, out, return_mask=True, data_format="channels_last", **XLA)
    np.testing.assert_allclose(np.asarray(y_cl), np.moveaxis(np.asarray(y), 1, -1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(w_cl), np.moveaxis(np.asarray(w), 1, -1), rtol=1e-6, atol=1e-7)
    u = getattr(apj, f"adaptive_adaunpool{d}d")(y, w, size, "window", **XLA)
    u_cl = getattr(apj, f"adaptive_adaunpool{d}d")(y_cl, w_cl, size, "window", data_format="channels_last", **XLA)
    np.testing.assert_allclose(np.asarray(u_cl), np.moveaxis(np.asarray(u), 1, -1), rtol=1e-6, atol=1e-7)
    r = rng.standard_normal(y.shape).astype(np.float32)
    gx = jax.grad(lambda x: jnp.sum(fn(x, *args, out, **XLA) * r))(x)
    gx_cl = jax.grad(lambda x: jnp.sum(fn(x, *args_cl, out, data_format="channels_last", **XLA)
                                       * np.moveaxis(r, 1, -1)))(np.moveaxis(x, 1, -1))
    np.testing.assert_allclose(np.asarray(gx_cl), np.moveaxis(np.asarray(gx), 1, -1), rtol=1e-5, atol=1e-6)


def test_vmap_matches_a_loop():
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((4, 2, 3, 7, 5)).astype(np.float32)
    betas = rng.random((4, 3, 1, 1)).astype(np.float32)

    def chain(x, b):
        y, w = apj.adaptive_adapool2d(x, b, (3, 4), return_mask=True, **XLA)
        return y, apj.adaptive_adaunpool2d(y, w, (7, 5), "window", **XLA)

    ys, us = jax.jit(jax.vmap(chain))(xs, betas)
    gb = jax.vmap(jax.grad(lambda x, b: jnp.sum(chain(x, b)[0]), argnums=1))(xs, betas)
    for i in range(4):
        y, w = ap.adaptive_adapool2d(xs[i], betas[i], (3, 4), return_mask=True)
        np.testing.assert_allclose(np.asarray(ys[i]), y, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(us[i]), ap.adaptive_adaunpool2d(y, w, (7, 5), "window"),
                                   rtol=2e-6, atol=1e-6)
        _, gb_ref = ap.adaptive_adapool2d_backward(np.ones_like(y), xs[i], betas[i], (3, 4))
        np.testing.assert_allclose(np.asarray(gb[i]), gb_ref, rtol=2e-5, atol=1e-5)


def test_jit_lowers_without_a_host_callback():
    x = jnp.ones((2, 3, 7, 5), jnp.float32)

    def loss(x, implementation):
        y, w = apj.adaptive_adapool2d(x, 0.5, 3, return_mask=True, implementation=implementation)
        return jnp.sum(apj.adaptive_adaunpool2d(y, w, (7, 5), implementation=implementation))

    text = jax.jit(jax.grad(lambda x: loss(x, "xla"))).lower(x).as_text()
    assert "callback" not in text.lower() and "custom_call" not in text
    callback_text = jax.jit(lambda x: loss(x, "callback")).lower(x).as_text()
    assert "callback" in callback_text.lower()  # the check above can fail


def test_export_serialize_round_trip():
    from jax import export
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 7, 5)).astype(np.float32)

    def chain(x):
        y, w = apj.adaptive_adapool2d(x, 0.4, (3, 4), return_mask=True, **XLA)
        return y, apj.adaptive_adaunpool2d(y, w, (7, 5), "window", **XLA)

    blob = export.export(jax.jit(chain))(jax.ShapeDtypeStruct(x.shape, x.dtype)).serialize()
    y, u = export.deserialize(blob).call(x)
    y_ref, w_ref = ap.adaptive_adapool2d(x, 0.4, (3, 4), return_mask=True)
    np.testing.assert_allclose(np.asarray(y), y_ref, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(u), ap.adaptive_adaunpool2d(y_ref, w_ref, (7, 5), "window"),
                               rtol=2e-6, atol=1e-6)


def test_implementation_errors_name_the_argument():
    with pytest.raises(ValueError, match="implementation: expected 'auto', 'xla' or 'callback', got 'gpu'"):
        apj.adaptive_empool2d(jnp.zeros((1, 1, 4, 4)), 2, implementation="gpu")
    with pytest.raises(ValueError, match="implementation: expected 'auto', 'xla' or 'callback', got 'tpu'"):
        apj.adaptive_adaunpool1d(jnp.zeros((1, 1, 2)), jnp.zeros((1, 1, 2, 2)), 4, implementation="tpu")
