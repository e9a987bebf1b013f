"""torch: the weights from return_mask=True are differentiable; gradcheck in
float64 of pool -> unpool -> loss with respect to x and beta, every method
and rank, overlap, padding, both normalize modes; custom ops and composite."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch adapter tests need torch")
import adapool_core.torch as apt  # noqa: E402
from support import METHODS  # noqa: E402

SHAPES = {1: (1, 2, 7), 2: (1, 2, 5, 4), 3: (1, 1, 4, 3, 4)}
WINDOWS = {"overlap_pad": dict(kernel_size=3, stride=2, padding=1), "disjoint": dict(kernel_size=2, stride=2)}


def chain(method, d, kw, normalize, g):
    pool = getattr(apt, f"{method}{d}d")
    unpool = getattr(apt, f"adaunpool{d}d")

    def loss(x, beta=None):
        y, w = pool(x, beta, return_mask=True, **kw) if method == "adapool" else pool(x, return_mask=True, **kw)
        return (g * unpool(y, w, output_size=x.shape[-d:], normalize=normalize, **kw)).sum()
    return loss


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_pool_unpool_gradcheck(method, d, window, normalize):
    gen = torch.Generator().manual_seed(d)
    x = torch.randn(SHAPES[d], generator=gen, dtype=torch.float64, requires_grad=True)
    kw = WINDOWS[window]
    g = torch.randn(SHAPES[d], generator=gen, dtype=torch.float64)
    loss = chain(method, d, kw, normalize, g)
    if method == "adapool":
        o = getattr(apt, f"empool{d}d")(x, **kw).shape[-d:]
        beta = (0.1 + 0.8 * torch.rand(tuple(o), generator=gen, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(loss, (x, beta), eps=1e-6, atol=1e-6, rtol=1e-5)
    else:
        assert torch.autograd.gradcheck(loss, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_weights_gradient_matches_the_composite(method):
    """The custom ops' gradient through the weights equals the plain-torch composite's (torch.func path)."""
    from adapool_core.torch import _composite
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 2, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    kw = WINDOWS["overlap_pad"]
    beta = torch.full((3, 3), 0.3, dtype=torch.float64, requires_grad=True) if method == "adapool" else None
    g = torch.randn(1, 2, 3, 3, 3, 3, generator=gen, dtype=torch.float64)
    _, w = (apt.adapool2d(x, beta, return_mask=True, **kw) if method == "adapool"
            else getattr(apt, f"{method}2d")(x, return_mask=True, **kw))
    inputs = (x,) if beta is None else (x, beta)
    got = torch.autograd.grad((g * w).sum(), inputs)
    _, w_ref = _composite.pool(method, 2, x, beta, [3, 3], [2, 2], [1, 1], False, True, "exact")
    want = torch.autograd.grad((g * w_ref).sum(), inputs)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)
