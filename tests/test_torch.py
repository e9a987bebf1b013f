"""PyTorch adapter: autograd (gradcheck), modules, torch.compile, training,
state_dict, dtypes and layouts.  Compile tests are few: they are slow."""
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

import adapool_core as ap  # noqa: E402
import adapool_core.torch as apt  # noqa: E402
from support import METHODS, rel_err  # noqa: E402

CLASSES = {"adapool": "AdaPool", "edscwpool": "EDSCWPool", "empool": "EMPool", "idwpool": "IDWPool"}
# Overlapping windows, padding and ceil_mode at once: every index path of the kernels.
GEOMETRY = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)


def out_spatial(d, size, kernel_size=3, stride=2, padding=1, ceil_mode=True):
    return ap.empool1d(np.zeros((1, 1, size)), kernel_size, stride, padding, ceil_mode).shape[-1:] * d


def call(method, d, x, beta, **kw):
    fn = getattr(apt, f"{method}{d}d")
    return fn(x, beta, **kw) if method == "adapool" else fn(x, **kw)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_gradcheck_float64(method, d):
    gen = torch.Generator().manual_seed(d)
    x = torch.randn((2, 2) + (5,) * d, dtype=torch.float64, generator=gen, requires_grad=True)
    if method == "adapool":
        # Away from 0 and 1, where the clamp makes beta's gradient one-sided.
        beta = (0.1 + 0.8 * torch.rand(out_spatial(d, 5), dtype=torch.float64, generator=gen)).requires_grad_()
        assert torch.autograd.gradcheck(lambda x, b: apt.__dict__[f"adapool{d}d"](x, b, **GEOMETRY), (x, beta))
    else:
        assert torch.autograd.gradcheck(lambda x: call(method, d, x, None, **GEOMETRY), (x,))


@pytest.mark.parametrize("method", METHODS)
def test_paper_gradient_is_the_array_level_paper_gradient(method):
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    beta = torch.full((1, 1), 0.3, dtype=torch.float64, requires_grad=True)
    y = call(method, 2, x, beta, mode="paper", **GEOMETRY)
    g = torch.randn_like(y)
    y.backward(g)
    kw = dict(GEOMETRY, mode="paper")
    if method == "adapool":
        gx, gb = ap.adapool2d_backward(g.numpy(), x.detach().numpy(), beta.detach().numpy(), **kw)
        np.testing.assert_allclose(beta.grad.numpy(), gb)
    else:
        gx = getattr(ap, f"{method}2d_backward")(g.numpy(), x.detach().numpy(), **kw)
    np.testing.assert_allclose(x.grad.numpy(), gx)
    exact = torch.autograd.grad(call(method, 2, x, beta, **GEOMETRY), x, g)[0]
    assert not torch.allclose(exact, x.grad)  # the two modes do differ


def test_adaunpool_gradcheck_and_double_backward():
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    y, w = apt.adapool2d(x, 0.4, return_mask=True, **GEOMETRY)
    assert not w.requires_grad
    y = y.detach().requires_grad_()
    unpool = lambda y: apt.adaunpool2d(y, w, 3, 2, 1, output_size=(7, 7))  # noqa: E731
    assert torch.autograd.gradcheck(unpool, (y,))
    assert torch.autograd.gradgradcheck(unpool, (y,))  # linear in y: the double backward is adaUnPool


def test_double_backward_of_pooling_is_a_clear_error():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(apt.adapool2d(x, 0.5).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_module_equals_functional(method, d):
    x = torch.randn((2, 3) + (7,) * d, dtype=torch.float64, requires_grad=True)
    module = getattr(apt, f"{CLASSES[method]}{d}d")(3, 2, 1, True).double()
    y = module(x)
    beta = module.beta if method == "adapool" else None
    if beta is not None:
        assert tuple(beta.shape) == out_spatial(d, 7) and torch.all(beta == 0.5)
    y_fn = call(method, d, x, beta, **GEOMETRY)
    assert torch.equal(y, y_fn)
    (g_module,) = torch.autograd.grad(y.sum(), x)
    (g_fn,) = torch.autograd.grad(y_fn.sum(), x)
    assert torch.equal(g_module, g_fn)


def test_softpool_is_empool():
    assert apt.SoftPool2d is apt.EMPool2d and apt.softpool3d is apt.empool3d


@pytest.mark.parametrize("beta,beta_shape,expected", [
    (0.5, (1, 1), (1, 1)),            # one shared value
    (0.2, (3, 1, 1), (3, 1, 1)),      # per channel
    (torch.full((4, 4), 0.7), None, (4, 4)),
])
def test_beta_shape_given(beta, beta_shape, expected):
    module = apt.AdaPool2d(2, beta=beta, beta_shape=beta_shape)
    assert isinstance(module.beta, torch.nn.Parameter) and tuple(module.beta.shape) == expected
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(module(x), apt.adapool2d(x, module.beta.detach(), 2))


def test_beta_is_clamped_in_the_forward_only():
    module = apt.AdaPool2d(2, beta=1.5, beta_shape=(1, 1))
    x = torch.randn(2, 3, 8, 8)
    y = module(x)
    torch.testing.assert_close(y, apt.edscwpool2d(x, 2))  # clamp(1.5) = 1: pure eDSCW
    y.sum().backward()
    assert module.beta.item() == 1.5 and module.beta.grad.item() == 0.0  # outside [0, 1]: no gradient


def test_adaunpool_module_takes_the_pooling_weights():
    x = torch.randn(2, 3, 8, 8)
    pool = apt.AdaPool2d(2, return_mask=True)
    y, w = pool(x)
    assert w.shape == (2, 3, 4, 4, 2, 2)
    unpooled = apt.AdaUnpool2d(2)(y, w)
    torch.testing.assert_close(unpooled, apt.adaunpool2d(y, w, 2))
    assert unpooled.shape == x.shape


def test_state_dict_round_trip_including_lazy_beta():
    def model():
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), apt.AdaPool2d(2),
                                   apt.AdaPool2d(2, beta=0.3, beta_shape=(1, 1)))
    x = torch.randn(2, 3, 8, 8)
    trained = model()
    trained(x)  # materializes the lazy beta: (4, 4)
    with torch.no_grad():
        trained[1].beta.uniform_()
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    fresh = model()  # beta still lazy: load_state_dict gives it its shape
    fresh.load_state_dict(torch.load(buffer))
    assert fresh[1].beta.shape == (4, 4)
    torch.testing.assert_close(fresh[1].beta, trained[1].beta)
    torch.testing.assert_close(fresh(x), trained(x))


def test_swap_avgpool_for_adapool_and_train():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AvgPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(8, 2))
    net[2] = apt.AdaPool2d(2)  # the one-line swap
    # Two classes: a bright square in the top-left or the bottom-right corner.
    x = torch.randn(32, 1, 12, 12) * 0.1
    labels = torch.arange(32) % 2
    x[labels == 0, :, :4, :4] += 1
    x[labels == 1, :, -4:, -4:] += 1
    net(x[:1])  # materialize the lazy beta before the optimizer sees it
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        loss.backward()
        assert net[2].beta.grad is not None and net[2].beta.grad.abs().sum() > 0
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert not torch.all(net[2].beta == 0.5)  # beta learned something


def test_compile_fullgraph_forward_and_backward():
    torch._dynamo.reset()
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), apt.AdaPool2d(3, 2, 1, True),
                                apt.EDSCWPool2d(2))
    x = torch.randn(2, 2, 9, 9, requires_grad=True)
    model(x)  # materialize the lazy beta
    # aot_eager: dynamo + AOTAutograd (fake implementations, the backward graph)
    # without C++ code generation, which would dominate the test time.
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y_ref = model(x)
    torch.testing.assert_close(y, y_ref)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, model[1].beta), g)
    grads_ref = torch.autograd.grad(y_ref, (x, model[1].beta), g)
    for got, ref in zip(grads, grads_ref):
        torch.testing.assert_close(got, ref)


def test_compile_fullgraph_pool_unpool_functions():
    torch._dynamo.reset()

    def round_trip(x):
        y, w = apt.empool1d(x, 2, return_mask=True)
        return apt.adaunpool1d(y * 2, w, 2, normalize="window") + apt.idwpool1d(x, 3, 1, 1).sum()

    x = torch.randn(2, 3, 8)
    torch.testing.assert_close(torch.compile(round_trip, fullgraph=True, backend="aot_eager")(x), round_trip(x))


def _layout(x, layout):
    if layout == "channels_last":
        return x.to(memory_format=torch.channels_last)
    if layout == "transposed":  # non-contiguous view
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    return x


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed"])
@pytest.mark.parametrize("dtype,tol", [("float32", 1e-5), ("float64", 1e-12), ("float16", 1e-2), ("bfloat16", 1e-2)])
def test_dtype_and_layout_matrix(dtype, tol, layout, batched):
    tdt = getattr(torch, dtype)
    x64 = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    x = _layout(x64.to(tdt), layout)
    if not batched:
        x64, x = x64[0], x[0]
    x.requires_grad_()
    beta = torch.full((4, 3), 0.3, dtype=tdt, requires_grad=True)
    y = apt.adapool2d(x, beta, 2)
    assert y.dtype == tdt and y.shape == (x.shape[:-2] + (4, 3))
    y.backward(torch.ones_like(y))
    assert x.grad.dtype == tdt and beta.grad.dtype == tdt and x.grad.shape == x.shape
    # Against the array-level float64 result for the same (rounded) input.
    xr = x.detach().double().numpy()
    y_ref = ap.adapool2d(xr, 0.3, 2)
    gx_ref, _ = ap.adapool2d_backward(np.ones_like(y_ref), xr, 0.3, 2)
    assert rel_err(y.detach().double().numpy(), y_ref) <= tol
    assert rel_err(x.grad.double().numpy(), gx_ref) <= tol


@pytest.mark.parametrize("call_,exc,words", [
    (lambda: apt.AdaPool2d(2)(torch.zeros(8, 8)), ValueError, ["x:", "2-D"]),
    (lambda: apt.EMPool2d(3, padding=2)(torch.zeros(1, 1, 8, 8)), ValueError, ["padding:", "(2, 2)"]),
    (lambda: apt.EMPool2d(2, mode="approx"), ValueError, ["mode:", "approx"]),
    (lambda: apt.empool2d(np.zeros((1, 1, 4, 4))), TypeError, ["x:", "torch.Tensor", "ndarray"]),
    (lambda: apt.adapool2d(torch.zeros(1, 2, 8, 8), torch.zeros(3, 4)), ValueError, ["beta:", "(3, 4)"]),
    (lambda: apt.AdaPool2d(2, beta=torch.zeros(4, 4), beta_shape=(1, 1)), ValueError, ["beta_shape:", "(4, 4)"]),
    (lambda: apt.empool2d(torch.zeros(1, 1, 4, 4, dtype=torch.int64)), TypeError, ["x:", "int64"]),
])
def test_errors_name_the_argument(call_, exc, words):
    with pytest.raises(exc) as info:
        call_()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensors_stay_on_their_device():
    pytest.importorskip("cupy", reason="CuPy is not installed")
    x = torch.randn(2, 3, 8, 8, device="cuda", requires_grad=True)
    module = apt.AdaPool2d(2).cuda()
    y = module(x)
    assert y.device == x.device
    y.sum().backward()
    assert x.grad.device == x.device and module.beta.grad.device == x.device
    y_cpu = apt.adapool2d(x.detach().cpu(), module.beta.detach().cpu(), 2)
    torch.testing.assert_close(y.detach().cpu(), y_cpu, rtol=1e-5, atol=1e-6)
