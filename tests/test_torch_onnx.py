"""ONNX export (issue 12): torch.onnx.export(dynamo=True) of models with the
library's layers gives standard ONNX operators that onnxruntime runs, equal to
PyTorch within 1e-4 (float32), also at another batch size."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch)")
onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx onnxscript)")
pytest.importorskip("onnxscript", reason="onnxscript is not installed (pip install onnxscript)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

import adapool_core.torch as apt  # noqa: E402

CLASSES = ["AdaPool", "EDSCWPool", "EMPool", "IDWPool"]


class PoolUnpool(torch.nn.Module):
    def __init__(self, cls, d, k, s, p, ceil_mode):
        super().__init__()
        self.pool = getattr(apt, f"{cls}{d}d")(k, s, p, ceil_mode, return_mask=True)
        self.unpool = apt.__dict__[f"AdaUnpool{d}d"](k, s, p)
        self.plain = getattr(apt, f"{cls}{d}d")(2)

    def forward(self, x):
        y, w = self.pool(x)
        return self.plain(x), y, self.unpool(y, w, output_size=x.shape)


def _check(model, x, other, path):
    model(x)  # materializes a lazy beta
    program = torch.onnx.export(model, (x,), path, dynamo=True,
                                dynamic_shapes=({0: torch.export.Dim("batch", min=2, max=16)},))
    assert program is not None
    graph = onnx.load(path)
    assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}  # standard operators only
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for inputs in (x, other):
        got = session.run(None, {session.get_inputs()[0].name: inputs.numpy()})
        for g, e in zip(got, model(inputs)):
            np.testing.assert_allclose(g, e.detach().numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_onnx_export_every_method_and_rank(cls, d, tmp_path):
    torch.manual_seed(d)
    size = (7,) * d if d < 3 else (5, 6, 7)
    model = PoolUnpool(cls, d, 3, 2, 1, True).eval()
    if cls == "AdaPool":
        model(torch.randn((2, 3) + size))
        with torch.no_grad():
            model.pool.beta.uniform_()
    _check(model, torch.randn((2, 3) + size), torch.randn((5, 3) + size), str(tmp_path / "m.onnx"))
