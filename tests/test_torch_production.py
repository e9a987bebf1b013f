"""PyTorch in production (issue 12): any input size, dynamic shapes, export,
ONNX, torch.func, device/stream of launches, model surgery, mode= alias."""
import contextlib
import sys
import types
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

import adapool_core.torch as apt  # noqa: E402
import reference as ref  # noqa: E402
from adapool_core import _cuda, _ops  # noqa: E402
from adapool_core.torch import _composite  # noqa: E402
from conftest import METHODS  # noqa: E402

CASES = [(3, 2, 1, True), (2, 2, 0, False), (3, 1, 1, False), (2, 3, 1, True)]  # k, s, p, ceil_mode


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_composite_matches_the_reference(method, d):
    rng = np.random.default_rng(d)
    for k, s, p, ceil_mode in CASES:
        size = (5,) * d
        x = rng.standard_normal((2, 2) + size)
        out = ref.params(size, k, s, p, ceil_mode)[3]
        beta = rng.random(out) if method == "adapool" else None
        y_ref, w_ref = ref.pool(method, x, beta, k, s, p, ceil_mode)
        y, w = _composite.pool(method, d, torch.tensor(x), None if beta is None else torch.tensor(beta),
                               [k] * d, [s] * d, [p] * d, ceil_mode, True)
        np.testing.assert_allclose(y.numpy(), y_ref, atol=1e-12)
        np.testing.assert_allclose(w.numpy(), w_ref, atol=1e-12)
        for normalize in ("sum", "window"):
            u = _composite.unpool(d, torch.tensor(y_ref), torch.tensor(w_ref), [k] * d, [s] * d, [p] * d,
                                  list(size), normalize)
            np.testing.assert_allclose(u.numpy(), ref.unpool(y_ref, w_ref, size, k, s, p, normalize), atol=1e-12)


# --- mode= and its deprecated alias grad= ---------------------------------------------------

def test_grad_alias_warns_and_matches_mode():
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    with pytest.warns(DeprecationWarning, match="mode="):
        y_old = apt.adapool2d(x, 0.3, 2, grad="paper")
    y_new = apt.adapool2d(x, 0.3, 2, mode="paper")
    g_old, = torch.autograd.grad(y_old.sum(), x)
    g_new, = torch.autograd.grad(y_new.sum(), x)
    assert torch.equal(g_old, g_new)
    with pytest.warns(DeprecationWarning, match="mode="):
        assert apt.AdaPool2d(2, grad="paper").mode == "paper"
    with pytest.raises(TypeError, match="mode"):
        apt.empool2d(x, 2, mode="paper", grad="paper")
    with pytest.raises(TypeError, match="mode"):
        apt.EMPool2d(2, mode="paper", grad="exact")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        apt.EMPool2d(2, mode="paper")


# --- any input size ----------------------------------------------------------------------

def test_beta_map_is_resampled_to_other_sizes_and_state_dict_loads_across_sizes():
    pool = apt.AdaPool2d(2, beta=0.3).double()
    pool(torch.randn(2, 3, 8, 8, dtype=torch.float64))
    assert tuple(pool.beta.shape) == (4, 4)
    with torch.no_grad():
        pool.beta.copy_(torch.rand(4, 4, dtype=torch.float64))
    x = torch.randn(2, 3, 16, 12, dtype=torch.float64, requires_grad=True)
    y = pool(x)
    assert y.shape == (2, 3, 8, 6)
    resampled = torch.nn.functional.interpolate(pool.beta[None, None].detach(), size=(8, 6), mode="bilinear")[0, 0]
    torch.testing.assert_close(y, apt.adapool2d(x, resampled, 2))
    y.sum().backward()
    assert pool.beta.grad is not None and pool.beta.grad.abs().sum() > 0  # resampling is differentiable
    fresh = apt.AdaPool2d(2).double()
    fresh.load_state_dict(pool.state_dict())  # lazy: takes the saved shape, then runs at any size
    torch.testing.assert_close(fresh(x), y)
    assert fresh(torch.randn(1, 3, 6, 6, dtype=torch.float64)).shape == (1, 3, 3, 3)


@pytest.mark.parametrize("beta_shape,expected", [("channel", (3, 1, 1)), ("scalar", (1, 1))])
def test_channel_and_scalar_beta_are_one_argument_away(beta_shape, expected):
    pool = apt.AdaPool2d(2, beta=0.2, beta_shape=beta_shape)
    for size in (8, 12):
        x = torch.randn(2, 3, size, size)
        torch.testing.assert_close(pool(x), apt.adapool2d(x, 0.2, 2))
    assert tuple(pool.beta.shape) == expected


# --- torch.func ------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_torch_func_grad_vjp_jacrev_vmap_match_eager(method):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64, generator=gen)
    beta = 0.1 + 0.8 * torch.rand(4, 4, dtype=torch.float64, generator=gen)

    def pool(x, beta):
        fn = getattr(apt, f"{method}2d")
        return fn(x, beta, 3, 2, 1, True) if method == "adapool" else fn(x, 3, 2, 1, True)

    def loss(x, beta):
        return pool(x, beta).pow(2).sum()

    xe, be = x.clone().requires_grad_(), beta.clone().requires_grad_()
    loss(xe, be).backward()
    gx, gb = torch.func.grad(loss, argnums=(0, 1))(x, beta)
    torch.testing.assert_close(gx, xe.grad)
    if method == "adapool":
        torch.testing.assert_close(gb, be.grad)
    y, vjp = torch.func.vjp(lambda x: pool(x, beta), x)
    torch.testing.assert_close(y, pool(x, beta))
    torch.testing.assert_close(vjp(torch.ones_like(y))[0], torch.autograd.grad(pool(xe, beta).sum(), xe)[0])
    jac = torch.func.jacrev(lambda x: pool(x, beta))(x[:1, :1])
    assert jac.shape == (1, 1, 4, 4, 1, 1, 6, 6)
    per_sample = torch.func.vmap(torch.func.grad(lambda xi: loss(xi[None], beta)))(x)
    for i in range(x.shape[0]):
        xi = x[i:i + 1].clone().requires_grad_()
        torch.testing.assert_close(per_sample[i], torch.autograd.grad(loss(xi, beta), xi)[0][0])


# --- dynamic shapes ----------------------------------------------------------------------------

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.pool = apt.AdaPool2d(3, 2, 1, True, return_mask=True)
        self.unpool = apt.AdaUnpool2d(3, 2, 1)
        self.soft = apt.SoftPool2d(2)

    def forward(self, x):
        h = self.conv(x)
        y, w = self.pool(h)
        return self.soft(self.unpool(y, w, output_size=h.shape) + h)


def _net():
    torch.manual_seed(0)
    net = Net()
    net(torch.randn(2, 3, 8, 8))  # materializes the lazy beta
    return net


def test_compile_dynamic_compiles_once_for_many_sizes():
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    net, counter = _net(), CompileCounter()
    compiled = torch.compile(net, dynamic=True, backend=counter)
    # The first input is not square: duck sizing would otherwise tie height to width.
    for n, h, w in [(2, 8, 10), (3, 12, 10), (4, 16, 16), (5, 10, 14), (2, 20, 8)]:
        x = torch.randn(n, 3, h, w)
        torch.testing.assert_close(compiled(x), net(x))
    assert counter.frame_count == 1


def test_export_with_dynamic_batch_and_spatial_dims():
    net = _net()
    # Spatial sizes from 4: below it an output size of 1 would be a different (broadcasting) graph.
    batch = torch.export.Dim("batch", min=2, max=64)
    height, width = (torch.export.Dim(n, min=4, max=64) for n in ("height", "width"))
    program = torch.export.export(net, (torch.randn(2, 3, 8, 10),),
                                  dynamic_shapes={"x": {0: batch, 2: height, 3: width}})
    for shape in [(3, 3, 12, 10), (5, 3, 9, 16)]:
        x = torch.randn(shape)
        torch.testing.assert_close(program.module()(x), net(x))


# --- CUDA device and stream of the launch (CuPy mocked: no GPU needed) --------------------------

class _FakeCuPy:
    """Just enough of CuPy: a current device, per-device current streams, kernels that record them."""

    ndarray = type("ndarray", (), {})

    def __init__(self):
        self.device, self.streams, self.launches = 0, {}, []
        fake = self

        class Device:
            def __init__(self, index=None):
                self.id = fake.device if index is None else index

            def __enter__(self):
                self.previous, fake.device = fake.device, self.id
                return self

            def __exit__(self, *exc):
                fake.device = self.previous

        class ExternalStream:
            def __init__(self, ptr, device_id=-1):
                self.ptr, self.device_id = ptr, device_id

            @contextlib.contextmanager
            def _use(self):
                previous = fake.streams.get(self.device_id)
                fake.streams[self.device_id] = self.ptr
                try:
                    yield
                finally:
                    fake.streams[self.device_id] = previous

            def __enter__(self):
                self._ctx = self._use()
                return self._ctx.__enter__()

            def __exit__(self, *exc):
                return self._ctx.__exit__(*exc)

        class RawModule:
            def __init__(self, **kw):
                pass

            def get_function(self, name):
                return lambda grid, block, args: fake.launches.append(
                    (name, fake.device, fake.streams.get(fake.device, "cupy-default")))

        self.cuda = types.SimpleNamespace(Device=Device, ExternalStream=ExternalStream)
        self.RawModule = RawModule


@pytest.fixture
def fake_cupy(monkeypatch):
    fake = _FakeCuPy()
    monkeypatch.setattr(_cuda, "_cupy", fake)
    monkeypatch.setattr(_cuda, "_modules", {})
    monkeypatch.setattr(_cuda, "_functions", {})
    monkeypatch.setattr(_cuda, "compile_options", lambda: ())
    return fake


def test_cupy_arrays_launch_on_their_device_and_cupys_current_stream(fake_cupy):
    with _ops.device_scope("cuda:1"):
        _cuda._launch_cupy("adapool::pool_forward<float>", 1, 256, ())
    _cuda._launch_cupy("adapool::pool_forward<float>", 1, 256, ())
    assert fake_cupy.launches == [("adapool::pool_forward<float>", 1, "cupy-default"),
                                  ("adapool::pool_forward<float>", 0, "cupy-default")]


def test_torch_tensors_launch_on_their_device_and_torchs_current_stream(fake_cupy, monkeypatch):
    from adapool_core.torch import _custom_ops

    monkeypatch.setattr(torch.cuda, "current_stream", lambda index: types.SimpleNamespace(cuda_stream=1000 + index))
    with _custom_ops.launch_scope(torch.device("cuda", 1)):
        _cuda._launch_cupy("adapool::unpool_forward<double>", 1, 256, ())
    assert fake_cupy.launches == [("adapool::unpool_forward<double>", 1, 1001)]
    assert isinstance(_custom_ops.launch_scope(torch.device("cpu")), contextlib.nullcontext)


def _gpu_ready():
    if not torch.cuda.is_available():
        return False
    try:
        _cuda.require_cupy()
        return True
    except Exception:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready(), reason="needs a CUDA GPU with CuPy")
def test_gpu_side_stream():
    x = torch.randn(4, 3, 32, 32, device="cuda")
    expected = apt.adapool2d(x, 0.4, 2)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        y = apt.adapool2d(x, 0.4, 2)
    torch.cuda.current_stream().wait_stream(stream)
    torch.testing.assert_close(y, expected)


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready() or torch.cuda.device_count() < 2,
                    reason="needs two CUDA GPUs (a tensor on a non-current device)")
def test_gpu_tensor_on_non_current_device():
    x = torch.randn(2, 3, 16, 16, device="cuda:1")
    with torch.cuda.device(0):
        y = apt.adapool2d(x, 0.4, 2)
    assert y.device == x.device
    torch.testing.assert_close(y.cpu(), apt.adapool2d(x.cpu(), 0.4, 2))


# --- model surgery ---------------------------------------------------------------------------

def test_replace_pooling_in_place_counts_and_keeps_geometry():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                                torch.nn.Sequential(torch.nn.AvgPool1d(2)), torch.nn.AvgPool3d(2))
    assert apt.replace_pooling(model, "em", mode="paper") == 3
    assert isinstance(model[1], apt.EMPool2d) and model[1].mode == "paper"
    assert (model[1].kernel_size, model[1].stride, model[1].padding, model[1].ceil_mode) == (3, 2, 1, True)
    assert isinstance(model[2][0], apt.EMPool1d) and isinstance(model[3], apt.EMPool3d)
    assert apt.replace_pooling(model) == 0


def test_replace_pooling_refuses_or_skips_what_it_cannot_reproduce():
    def model():
        return torch.nn.Sequential(torch.nn.MaxPool2d(2, dilation=2), torch.nn.AvgPool2d(3, 1, 1),
                                   torch.nn.AvgPool2d(2, divisor_override=3), torch.nn.MaxPool2d(2, return_indices=True),
                                   torch.nn.AvgPool2d(2))
    m = model()
    with pytest.raises(ValueError, match="dilation.*count_include_pad.*divisor_override.*return_indices"):
        apt.replace_pooling(m)
    assert isinstance(m[4], torch.nn.AvgPool2d)  # nothing replaced
    with pytest.warns(UserWarning, match="skipped 0 .*1 .*2 .*3 "):
        assert apt.replace_pooling(m, "ada", on_unsupported="skip") == 1
    assert isinstance(m[4], apt.AdaPool2d) and isinstance(m[0], torch.nn.MaxPool2d)
