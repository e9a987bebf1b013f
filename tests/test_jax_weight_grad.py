"""jax: the weights from return_mask=True are differentiable; jax.grad of
pool -> unpool -> loss equals the array-level chain (grad_w, return_grad_w),
which tests/test_weight_grad.py checks against finite differences."""
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="the JAX adapter tests need jax")
import adapool_core as ap  # noqa: E402
import adapool_core.jax as apj  # noqa: E402
from support import METHODS, call_backward, call_pool  # noqa: E402

KW = dict(kernel_size=3, stride=2, padding=1)


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_jax_grad_through_the_weights(method, d, normalize, x64):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((1, 2) + (5,) * d)  # 2 channels, windows 3/2 with padding
    o = call_pool(ap, "empool", d, x, None, **KW).shape[-d:]
    beta = rng.uniform(0.1, 0.9, o) if method == "adapool" else None
    g = rng.standard_normal(x.shape)
    pool, unpool = getattr(apj, f"{method}{d}d"), getattr(apj, f"adaunpool{d}d")
    size = x.shape[-d:]

    def loss(xv, bv):
        y, w = pool(xv, bv, return_mask=True, **KW) if method == "adapool" else pool(xv, return_mask=True, **KW)
        return (g * unpool(y, w, output_size=size, normalize=normalize, **KW)).sum()

    gx, gb = jax.grad(loss, argnums=(0, 1) if beta is not None else (0,))(x, beta) + ((None,) if beta is None
                                                                                      else ())
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **KW)
    gy, gw = getattr(ap, f"adaunpool{d}d_backward")(g, y, w, output_size=size, normalize=normalize,
                                                    return_grad_w=True, **KW)
    want_x, want_b = call_backward(ap, method, d, gy, x, beta, grad_w=gw, **KW)
    np.testing.assert_allclose(np.asarray(gx), want_x, rtol=1e-10, atol=1e-12)
    if beta is not None:
        np.testing.assert_allclose(np.asarray(gb), want_b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_jax_adaptive_grad_equals_the_array_level(method, d, x64):
    """Adaptive pooling under jit and grad, through the weights, equals the array-level chain."""
    rng = np.random.default_rng(10 + d)
    x = rng.standard_normal((1, 2) + (5,) * d)
    out = (3,) * d
    beta = rng.uniform(0.1, 0.9, out) if method == "adapool" else None
    g = rng.standard_normal(x.shape)
    pool, unpool = getattr(apj, f"adaptive_{method}{d}d"), getattr(apj, f"adaptive_adaunpool{d}d")
    args = () if beta is None else (beta,)

    def loss(xv, *bv):
        y, w = pool(xv, *bv, out, return_mask=True)
        return (g * unpool(y, w, x.shape[2:], normalize="window")).sum()

    grads = jax.jit(jax.grad(loss, argnums=tuple(range(1 + len(args)))))(x, *args)
    y, w = getattr(ap, f"adaptive_{method}{d}d")(x, *args, out, return_mask=True)
    np.testing.assert_allclose(np.asarray(jax.jit(lambda v: pool(v, *args, out))(x)), y, rtol=1e-12)
    gy, gw = getattr(ap, f"adaptive_adaunpool{d}d_backward")(g, y, w, x.shape[2:], normalize="window",
                                                             return_grad_w=True)
    want = getattr(ap, f"adaptive_{method}{d}d_backward")(gy, x, *args, out, grad_w=gw)
    want = want if isinstance(want, tuple) else (want,)
    for a, b in zip(grads, want):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-10, atol=1e-12)
