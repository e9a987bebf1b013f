"""torch adapter, adaptive pooling: gradcheck of pool -> adaptive unpool ->
loss (weights differentiable), every method and rank; modules as drop-in
replacements of nn.AdaptiveAvgPool{d}d (shapes); values equal the array level."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch adapter tests need torch")
import adapool_core as ap  # noqa: E402
import adapool_core.torch as apt  # noqa: E402
from support import METHODS  # noqa: E402

CASES = {1: ((1, 2, 7), (3,)), 2: ((1, 2, 5, 4), (3, 3)), 3: ((1, 1, 4, 3, 3), (3, 2, 4))}


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_adaptive_pool_unpool_gradcheck(method, d, normalize):
    shape, out = CASES[d]
    gen = torch.Generator().manual_seed(d)
    x = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    pool, unpool = getattr(apt, f"adaptive_{method}{d}d"), getattr(apt, f"adaptive_adaunpool{d}d")

    def loss(x, *beta):
        y, w = pool(x, *beta, out, return_mask=True)
        return (g * unpool(y, w, shape[2:], normalize=normalize)).sum() + y.sum()

    inputs = (x,)
    if method == "adapool":
        inputs += ((0.1 + 0.8 * torch.rand(out, generator=gen, dtype=torch.float64)).requires_grad_(),)
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_modules_are_drop_in_for_adaptive_avg_pool(method, d):
    names = {"adapool": "AdaPool", "edscwpool": "EDSCWPool", "empool": "EMPool", "idwpool": "IDWPool"}
    rng = np.random.default_rng(d)
    for _ in range(3):
        spatial = tuple(int(v) for v in rng.integers(1, 8, d))
        out = tuple(int(v) for v in rng.integers(1, 9, d))
        x = torch.rand((2, 3) + spatial, dtype=torch.float64)
        layer = getattr(apt, f"Adaptive{names[method]}{d}d")(out)
        want = getattr(torch.nn, f"AdaptiveAvgPool{d}d")(out)(x)
        got = layer(x)
        assert got.shape == want.shape
        beta = (0.5,) if method == "adapool" else ()
        np.testing.assert_allclose(got.detach().numpy(),
                                   getattr(ap, f"adaptive_{method}{d}d")(x.numpy(), *beta, out), rtol=1e-12)
    if method == "adapool":
        assert tuple(layer.beta.shape) == out and layer.beta.requires_grad


@pytest.mark.parametrize("layer", ["AdaptiveAdaPool2d", "AdaptiveEMPool2d"])
def test_layers_channels_last_are_channels_first_transposed(layer):
    """data_format on the layers: output, weights and AdaptiveAdaUnpool2d; beta stays channels-first."""
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64)
    first = getattr(apt, layer)(3, return_mask=True)
    last = getattr(apt, layer)(3, return_mask=True, data_format="channels_last")
    y, w = first(x)
    y_cl, w_cl = last(x.permute(0, 2, 3, 1))
    torch.testing.assert_close(y_cl, y.permute(0, 2, 3, 1))
    torch.testing.assert_close(w_cl, w.permute(0, 2, 3, 4, 5, 1))
    if hasattr(first, "beta"):
        assert last.beta.shape == first.beta.shape == (3, 3)
    u = apt.AdaptiveAdaUnpool2d()(y, w, (7, 6))
    u_cl = apt.AdaptiveAdaUnpool2d(data_format="channels_last")(y_cl, w_cl, (7, 6))
    torch.testing.assert_close(u_cl, u.permute(0, 2, 3, 1))
