"""torch.compile with the default inductor backend (C++ code generation, hence
slow), fullgraph, on a model whose lazy AdaPool2d is first called compiled."""
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")

import adapool_core.torch as apt  # noqa: E402

pytestmark = pytest.mark.slow


def test_inductor_fullgraph_compiles_a_lazy_adapool_and_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), apt.AdaPool2d(2), apt.EMPool2d(2))
    x = torch.randn(2, 2, 8, 8, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True)  # lazy beta: its first call is under compile
    y = compiled(x)
    y.sum().backward()
    assert model[1].beta.shape == (4, 4)
    assert model[1].beta.grad is not None and torch.isfinite(model[1].beta.grad).all()
    assert x.grad is not None and x.grad.shape == x.shape
    torch.testing.assert_close(y, model(x))
