"""adapool_core.flax: nnx layers with Flax's pooling conventions, equal to the array-level functions;
a small model trains (loss falls, beta receives gradient)."""
import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="JAX is not installed (pip install jax)")
nnx = pytest.importorskip("flax.nnx", reason="Flax is not installed (pip install flax)")
optax = pytest.importorskip("optax", reason="optax is not installed (pip install optax)")
jnp = jax.numpy

import adapool_core as ap  # noqa: E402
from adapool_core.flax import AdaPool, EDSCWPool, EMPool, IDWPool  # noqa: E402


@pytest.mark.parametrize("layer,method", [(EDSCWPool, "edscwpool"), (EMPool, "empool"), (IDWPool, "idwpool")])
def test_layer_equals_the_array_level_function(layer, method):
    x = np.random.default_rng(0).standard_normal((2, 7, 7, 3)).astype(np.float32)  # NHWC
    y = layer((3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))(jnp.asarray(x))
    ref = getattr(ap, f"{method}2d")(x, 3, 2, 1, data_format="channels_last")
    np.testing.assert_allclose(np.asarray(y), ref, rtol=2e-6, atol=1e-6)


def test_same_and_asymmetric_padding_clip_windows():
    x = np.random.default_rng(1).standard_normal((1, 5, 2)).astype(np.float32)  # (N, L, C)
    y = EMPool((2,), strides=(2,), padding="SAME")(jnp.asarray(x))  # pads (0, 1): last window is x[4] alone
    assert y.shape == (1, 3, 2)
    np.testing.assert_allclose(np.asarray(y)[0, 2], x[0, 4], rtol=1e-6)
    y = EMPool((2,), strides=(2,), padding=((1, 0),))(jnp.asarray(x))  # first window is x[0] alone
    assert y.shape == (1, 3, 2)
    np.testing.assert_allclose(np.asarray(y)[0, 0], x[0, 0], rtol=1e-6)


def test_adapool_per_channel_beta_equals_the_array_level_function():
    x = np.random.default_rng(2).standard_normal((2, 6, 6, 3)).astype(np.float32)
    pool = AdaPool((2, 2), strides=(2, 2), num_channels=3, beta_init=0.25)
    assert pool.beta[...].shape == (1, 1, 3)
    ref = ap.adapool2d(x, np.full((1, 1, 3), 0.25, np.float32), 2, data_format="channels_last")
    np.testing.assert_allclose(np.asarray(pool(jnp.asarray(x))), ref, rtol=2e-6, atol=1e-6)


def test_bad_padding_names_the_argument():
    with pytest.raises(ValueError, match="padding: expected 0 <= lo, hi < window size"):
        EMPool((2, 2), padding=((2, 0), (0, 0)))(jnp.ones((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="padding: expected 'VALID', 'SAME'"):
        EMPool((2, 2), padding="FULL")(jnp.ones((1, 4, 4, 1)))


class _Model(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 4, (3, 3), rngs=rngs)
        self.pool = AdaPool((2, 2), strides=(2, 2), out_shape=(4, 4), rngs=rngs)
        self.head = nnx.Linear(4 * 4 * 4, 2, rngs=rngs)

    def __call__(self, x):
        return self.head(self.pool(nnx.relu(self.conv(x))).reshape(x.shape[0], -1))


def test_a_small_model_trains_and_beta_gets_gradient():
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((16, 8, 8, 1)).astype(np.float32))
    labels = jnp.asarray((np.asarray(x).mean(axis=(1, 2, 3)) > 0).astype(np.int32))
    model = _Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), labels).mean()

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss, grads

    losses = []
    for _ in range(20):
        loss, grads = step(model, optimizer)
        losses.append(float(loss))
    assert losses[-1] < 0.8 * losses[0], losses
    assert np.any(np.asarray(grads.pool.beta[...]) != 0)
    assert not np.allclose(np.asarray(model.pool.beta[...]), 0.5)  # beta moved
