"""PyTorch adapter: autograd-aware functions and ``nn.Module`` layers.

Swap a pooling layer in one line::

    model.pool = AdaPool2d(2)          # was nn.AvgPool2d(2)

or every one of them: ``replace_pooling(model, "ada")``.

Tensors go to the array-level functions of ``adapool_core`` through DLPack
(zero-copy on the CPU) and come back on the same device; CUDA launches go to
the tensor's device and torch's current stream there.  Four
``torch.library`` custom ops (``adapool_core::pool``, ``pool_backward``,
``unpool``, ``unpool_backward``) carry them through autograd,
``torch.compile`` and ``torch.export`` (fake implementations work on
symbolic sizes, so dynamic shapes stay dynamic).  ONNX export and
``torch.func`` transforms use a plain-torch composite of the same formulas
(``_composite``): the exported graph holds standard ONNX operators only.

Gradients: ``mode="exact"`` (default) is the true derivative; ``mode="paper"``
is the reference implementation's (weights held constant); ``grad=`` is a
deprecated alias of ``mode``.  ``beta`` gets its gradient in both.  The
weights returned with ``return_mask=True`` are differentiable (their path
reaches ``x`` in "exact" mode and ``beta`` in both), so adaUnPool trains the
pooling that produced them.  Double
backward of pooling is not implemented and raises an error; adaUnPool is
linear in ``y``, so its double backward works.
"""
from ._adaptive import adaptive_public
from ._functional import public_functions
from ._modules import public_classes
from ._surgery import replace_pooling

_PUBLIC = {**public_functions(__name__), **public_classes(__name__), "replace_pooling": replace_pooling}
replace_pooling.__module__ = __name__
_PUBLIC.update(adaptive_public(__name__))
globals().update(_PUBLIC)
__all__ = sorted(_PUBLIC)
