"""data_format="channels_last" in the torch adapter: functions and layers equal the channels-first ones,
transposed (forward, weights, autograd gradients of x and beta, adaUnPool)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")
import adapool_core.torch as apt  # noqa: E402

from support import METHODS  # noqa: E402

GEOMETRY = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
CL = dict(data_format="channels_last")


def _pool(method, d):
    return getattr(apt, f"{method}{d}d")


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_functions_channels_last_are_transposed_channels_first(method, d):
    gen = torch.Generator().manual_seed(d)
    x = torch.randn((2, 3) + (7,) * d, generator=gen, dtype=torch.float64)
    x_cf = x.clone().requires_grad_(True)
    x_cl = torch.movedim(x, 1, -1).clone().requires_grad_(True)
    args_cf, args_cl, betas = (x_cf,), (x_cl,), ()
    if method == "adapool":  # per channel: (C, 1, ..) channels first, (1, .., C) channels last
        b = torch.rand((3,) + (1,) * d, generator=gen, dtype=torch.float64)
        b_cf = b.clone().requires_grad_(True)
        b_cl = b.reshape((1,) * d + (3,)).clone().requires_grad_(True)
        args_cf, args_cl, betas = (x_cf, b_cf), (x_cl, b_cl), (b_cf, b_cl)
    y_cf, w_cf = _pool(method, d)(*args_cf, **GEOMETRY, return_mask=True)
    y_cl, w_cl = _pool(method, d)(*args_cl, **GEOMETRY, return_mask=True, **CL)
    torch.testing.assert_close(y_cl, torch.movedim(y_cf, 1, -1), rtol=0, atol=0)
    torch.testing.assert_close(w_cl, torch.movedim(w_cf, 1, -1), rtol=0, atol=0)
    r = torch.randn(y_cf.shape, generator=gen, dtype=torch.float64)
    (y_cf * r).sum().backward()
    (y_cl * torch.movedim(r, 1, -1)).sum().backward()
    torch.testing.assert_close(x_cl.grad, torch.movedim(x_cf.grad, 1, -1), rtol=1e-12, atol=1e-12)
    if betas:
        torch.testing.assert_close(betas[1].grad.reshape(-1), betas[0].grad.reshape(-1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_unpool_channels_last_is_transposed_channels_first(d):
    gen = torch.Generator().manual_seed(10 + d)
    x = torch.randn((2, 3) + (6,) * d, generator=gen, dtype=torch.float64)
    y, w = _pool("adapool", d)(x, 0.5, 2, return_mask=True)
    y_cf = y.clone().requires_grad_(True)
    y_cl = torch.movedim(y, 1, -1).clone().requires_grad_(True)
    unpool = getattr(apt, f"adaunpool{d}d")
    out_cf = unpool(y_cf, w, 2, normalize="window")
    out_cl = unpool(y_cl, torch.movedim(w, 1, -1), 2, normalize="window", output_size=x.movedim(1, -1).shape,
                    **CL)
    torch.testing.assert_close(out_cl, torch.movedim(out_cf, 1, -1), rtol=0, atol=0)
    r = torch.randn(out_cf.shape, generator=gen, dtype=torch.float64)
    (out_cf * r).sum().backward()
    (out_cl * torch.movedim(r, 1, -1)).sum().backward()
    torch.testing.assert_close(y_cl.grad, torch.movedim(y_cf.grad, 1, -1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("beta_shape", [None, "channel"])
def test_layer_channels_last_is_transposed_channels_first(beta_shape):
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    layer_cf = apt.AdaPool2d(3, 2, 1, beta=0.3, beta_shape=beta_shape, return_mask=True, dtype=torch.float64)
    layer_cl = apt.AdaPool2d(3, 2, 1, beta=0.3, beta_shape=beta_shape, return_mask=True, dtype=torch.float64,
                             **CL)
    x_cf, x_cl = x.clone().requires_grad_(True), x.movedim(1, -1).clone().requires_grad_(True)
    y_cf, w_cf = layer_cf(x_cf)
    y_cl, w_cl = layer_cl(x_cl)
    assert layer_cl.beta.shape == layer_cf.beta.shape  # one state_dict for both layouts
    torch.testing.assert_close(y_cl, y_cf.movedim(1, -1), rtol=0, atol=0)
    torch.testing.assert_close(w_cl, w_cf.movedim(1, -1), rtol=0, atol=0)
    (y_cf ** 2).sum().backward()
    (y_cl ** 2).sum().backward()
    torch.testing.assert_close(x_cl.grad, x_cf.grad.movedim(1, -1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer_cl.beta.grad, layer_cf.beta.grad, rtol=1e-12, atol=1e-12)
    assert float(layer_cf.beta.grad.abs().sum()) > 0
    back = apt.AdaUnpool2d(3, 2, 1, **CL)(y_cl, w_cl, output_size=x_cl.shape)
    torch.testing.assert_close(back, apt.AdaUnpool2d(3, 2, 1)(y_cf, w_cf, x.shape).movedim(1, -1))


def test_channels_last_gradcheck():
    x = torch.randn(1, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    b = torch.full((1, 2), 0.4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, b: apt.adapool1d(x, b, 2, 1, **CL), (x, b))


def test_layout_errors_name_the_argument():
    with pytest.raises(ValueError, match="data_format: expected 'channels_first' or 'channels_last', got 'NHWC'"):
        apt.empool2d(torch.zeros(1, 4, 4, 1), data_format="NHWC")
    with pytest.raises(ValueError, match="data_format: expected"):
        apt.EMPool2d(2, data_format="NCHW")
    with pytest.raises(ValueError, match="beta: expected a shape that broadcasts to the channels-last output"):
        apt.adapool2d(torch.zeros(1, 4, 4, 3), torch.full((3, 1, 1), 0.5), **CL)
    assert np.array_equal(apt.empool1d(torch.ones(1, 4, 2), **CL).shape, (1, 2, 2))
