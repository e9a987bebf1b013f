"""By hand (slow: C++ code generation): torch.compile with the default inductor
backend, fullgraph, on a model whose lazy AdaPool2d is first called compiled.

    PYTHONPATH=. python3 scripts/torch_inductor_check.py
"""
import time

import torch

import adapool_core.torch as apt
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1), apt.AdaPool2d(2), apt.EMPool2d(2))
x = torch.randn(2, 2, 8, 8, requires_grad=True)
t = time.time()
c = torch.compile(model, fullgraph=True)   # lazy beta: first call under compile
y = c(x)
y.sum().backward()
print("lazy+inductor ok", time.time() - t, model[1].beta.shape, model[1].beta.grad is not None)
torch.testing.assert_close(y, model(x))
print("match")
