"""PyTorch adapter: autograd-aware functions and ``nn.Module`` layers.

Swap a pooling layer in one line::

    model.pool = AdaPool2d(2)          # was nn.AvgPool2d(2)

Every function here converts only: tensors go to the array-level functions
of ``adapool_core`` through DLPack (zero-copy on the CPU, see ``_interop``)
and come back as tensors on the same device.  Four ``torch.library`` custom
ops (``adapool_core::pool``, ``pool_backward``, ``unpool``,
``unpool_backward``) carry them through autograd and ``torch.compile``
(fake implementations give the output shapes, so ``fullgraph=True`` traces
without graph breaks).

Gradients: ``grad="exact"`` (default) is the true derivative; ``grad="paper"``
is the reference implementation's (weights held constant).  ``beta`` gets
its gradient in both.  The weights returned with ``return_mask=True`` carry
no gradient (adaUnPool holds them constant, as in the reference).  Double
backward (a gradient of a gradient) of pooling is not implemented and raises
an error; adaUnPool is linear in ``y``, so its double backward works.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from ._adapters import adapter_functions
from ._api import FUNCTIONS, METHODS, RANKS
from ._geometry import beta_strides, check_mode, check_normalize, pool_geometry, unpool_geometry

_DOUBLE_BACKWARD = (
    "adapool_core.torch: double backward (the gradient of {op}'s gradient) is not implemented; "
    "differentiate adaPool only once (create_graph=True is fine as long as that graph is not "
    "differentiated through the pooling again)"
)


def _name(method: str, d: int) -> str:
    return f"{method}{d}d"


# --- custom ops: each calls the array-level function with the tensors as they are ----------

@torch.library.custom_op("adapool_core::pool", mutates_args=())
def _pool_op(x: Tensor, beta: Optional[Tensor], method: str, d: int, kernel_size: list[int],
             stride: list[int], padding: list[int], ceil_mode: bool, return_mask: bool,
             grad: str) -> tuple[Tensor, Tensor]:
    args = (x,) if beta is None else (x, beta)
    out = FUNCTIONS[_name(method, d)](*args, kernel_size, stride, padding, ceil_mode, return_mask)
    return out if return_mask else (out, x.new_empty(0))


@_pool_op.register_fake
def _pool_fake(x, beta, method, d, kernel_size, stride, padding, ceil_mode, return_mask, grad):
    geom = pool_geometry(x.shape, d, kernel_size, stride, padding, ceil_mode, _name(method, d))
    return x.new_empty(geom.out_shape), x.new_empty(geom.mask_shape if return_mask else (0,))


@torch.library.custom_op("adapool_core::pool_backward", mutates_args=())
def _pool_backward_op(grad_out: Tensor, x: Tensor, beta: Optional[Tensor], method: str, d: int,
                      kernel_size: list[int], stride: list[int], padding: list[int], ceil_mode: bool,
                      grad: str) -> tuple[Tensor, Tensor]:
    backward = FUNCTIONS[_name(method, d) + "_backward"]
    if beta is None:
        return backward(grad_out, x, kernel_size, stride, padding, ceil_mode, grad), x.new_empty(0)
    return backward(grad_out, x, beta, kernel_size, stride, padding, ceil_mode, grad)


@_pool_backward_op.register_fake
def _pool_backward_fake(grad_out, x, beta, method, d, kernel_size, stride, padding, ceil_mode, grad):
    return torch.empty_like(x, memory_format=torch.contiguous_format), (
        x.new_empty(0) if beta is None else torch.empty_like(beta, memory_format=torch.contiguous_format))


def _pool_setup(ctx, inputs, output):
    x, beta, method, d, kernel_size, stride, padding, ceil_mode, _, grad = inputs
    ctx.mark_non_differentiable(output[1])  # the weights: constants, as in adaUnPool
    ctx.save_for_backward(x, beta)
    ctx.config = (method, d, kernel_size, stride, padding, ceil_mode, grad)


def _pool_autograd(ctx, grad_y, _grad_w):
    x, beta = ctx.saved_tensors
    grad_x, grad_beta = _pool_backward_op(grad_y, x, beta, *ctx.config)
    return (grad_x, None if beta is None else grad_beta) + (None,) * 8


torch.library.register_autograd("adapool_core::pool", _pool_autograd, setup_context=_pool_setup)


def _no_double_backward(ctx, *grads):
    raise RuntimeError(_DOUBLE_BACKWARD.format(op="adapool_core::pool"))


torch.library.register_autograd("adapool_core::pool_backward", _no_double_backward)


@torch.library.custom_op("adapool_core::unpool", mutates_args=())
def _unpool_op(y: Tensor, w: Tensor, d: int, kernel_size: list[int], stride: list[int], padding: list[int],
               output_size: Optional[list[int]], normalize: str) -> Tensor:
    return FUNCTIONS[f"adaunpool{d}d"](y, w, kernel_size, stride, padding, output_size, normalize)


@_unpool_op.register_fake
def _unpool_fake(y, w, d, kernel_size, stride, padding, output_size, normalize):
    geom = unpool_geometry(y.shape, w.shape, d, kernel_size, stride, padding, output_size, f"adaunpool{d}d")
    return y.new_empty(geom.in_shape)


@torch.library.custom_op("adapool_core::unpool_backward", mutates_args=())
def _unpool_backward_op(grad_out: Tensor, y: Tensor, w: Tensor, d: int, kernel_size: list[int],
                        stride: list[int], padding: list[int], output_size: Optional[list[int]],
                        normalize: str) -> Tensor:
    return FUNCTIONS[f"adaunpool{d}d_backward"](grad_out, y, w, kernel_size, stride, padding, output_size,
                                                normalize)


@_unpool_backward_op.register_fake
def _unpool_backward_fake(grad_out, y, w, d, kernel_size, stride, padding, output_size, normalize):
    return torch.empty_like(y, memory_format=torch.contiguous_format)


def _unpool_setup(ctx, inputs, output):
    y, w, *config = inputs
    ctx.save_for_backward(y, w)
    ctx.config = tuple(config)


def _unpool_autograd(ctx, grad_x):
    y, w = ctx.saved_tensors
    return (_unpool_backward_op(grad_x, y, w, *ctx.config),) + (None,) * 7


def _unpool_backward_autograd(ctx, grad_grad_y):
    # adaUnPool is linear in y: the gradient of its gradient is adaUnPool itself.
    _, w = ctx.saved_tensors
    return (_unpool_op(grad_grad_y, w, *ctx.config), None, None) + (None,) * 6


def _unpool_backward_setup(ctx, inputs, output):
    _, y, w, *config = inputs
    ctx.save_for_backward(y, w)
    ctx.config = tuple(config)


torch.library.register_autograd("adapool_core::unpool", _unpool_autograd, setup_context=_unpool_setup)
torch.library.register_autograd("adapool_core::unpool_backward", _unpool_backward_autograd,
                                setup_context=_unpool_backward_setup)


# --- the one private implementation behind every function and module ----------------------

def _ints(value, d: int) -> list[int]:
    """int-or-sequence as the ops' int list (validated by ``_geometry`` before)."""
    return [value] * d if isinstance(value, int) else list(value)


def _check_tensor(value, name: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")


def _pool(method: str, d: int, x: Tensor, beta, kernel_size, stride, padding, ceil_mode, return_mask, grad):
    _check_tensor(x, "x")
    func = _name(method, d)
    if method == "adapool" and not isinstance(beta, Tensor):
        beta = torch.as_tensor(beta, dtype=x.dtype, device=x.device)
    if not torch.compiler.is_compiling():
        # Eager: every check of _geometry before any work.  Compiled: the fake
        # implementation runs the same checks while tracing.
        check_mode(grad, "grad")
        geom = pool_geometry(tuple(x.shape), d, kernel_size, stride, padding, ceil_mode, func)
        if beta is not None:
            beta_strides(tuple(beta.shape), geom)
    k = _ints(kernel_size, d)
    s = k if stride is None else _ints(stride, d)
    y, w = _pool_op(x, beta, method, d, k, s, _ints(padding, d), bool(ceil_mode), bool(return_mask), grad)
    return (y, w) if return_mask else y


def _unpool(d: int, y: Tensor, w: Tensor, kernel_size, stride, padding, output_size, normalize):
    _check_tensor(y, "y")
    _check_tensor(w, "w")
    if not torch.compiler.is_compiling():  # as in _pool: the fake implementation checks when compiled
        check_normalize(normalize)
        unpool_geometry(tuple(y.shape), tuple(w.shape), d, kernel_size, stride, padding, output_size,
                        f"adaunpool{d}d")
    k = _ints(kernel_size, d)
    s = k if stride is None else _ints(stride, d)
    size = None if output_size is None else _ints(output_size, d)
    return _unpool_op(y, w, d, k, s, _ints(padding, d), size, normalize)


# --- modules ------------------------------------------------------------------------------

class _PoolNd(nn.Module):
    """Pooling layer; subclasses set ``method`` and ``d``."""

    method: str
    d: int

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, *, return_mask=False,
                 grad="exact"):
        super().__init__()
        check_mode(grad, "grad")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.return_mask, self.grad = ceil_mode, return_mask, grad

    def _beta(self):
        return None

    def forward(self, x: Tensor):
        return _pool(self.method, self.d, x, self._beta(), self.kernel_size, self.stride, self.padding,
                     self.ceil_mode, self.return_mask, self.grad)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, return_mask={self.return_mask}, grad={self.grad!r}")


class _AdaPoolNd(LazyModuleMixin, _PoolNd):
    """adaPool layer with a trainable ``beta`` (clamped to [0, 1] in the forward only)."""

    method = "adapool"

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, *, beta=0.5, beta_shape=None,
                 return_mask=False, grad="exact", device=None, dtype=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, return_mask=return_mask, grad=grad)
        factory = {"device": device, "dtype": dtype}
        if isinstance(beta, Tensor):
            if beta_shape is not None and tuple(beta_shape) != tuple(beta.shape):
                raise ValueError(f"beta_shape: expected None or beta's shape {tuple(beta.shape)}, "
                                 f"got {tuple(beta_shape)}")
            self.beta = nn.Parameter(beta.detach().to(**{k: v for k, v in factory.items() if v is not None}).clone())
            self.beta_init = None
        elif beta_shape is None:  # lazy: one value per output location, sized by the first input
            self.beta = UninitializedParameter(**factory)
            self.beta_init = float(beta)
        else:
            self.beta = nn.Parameter(torch.full(tuple(beta_shape), float(beta), **factory))
            self.beta_init = float(beta)

    def initialize_parameters(self, x: Tensor) -> None:  # LazyModuleMixin's hook
        if self.has_uninitialized_params():
            geom = pool_geometry(tuple(x.shape), self.d, self.kernel_size, self.stride, self.padding,
                                 self.ceil_mode, type(self).__name__)
            with torch.no_grad():
                self.beta.materialize(geom.out_size[3 - self.d:])
                self.beta.fill_(self.beta_init)

    def _beta(self):
        return self.beta

    def extra_repr(self) -> str:
        shape = "lazy" if self.has_uninitialized_params() else tuple(self.beta.shape)
        return super().extra_repr() + f", beta_shape={shape}"


class _AdaUnpoolNd(nn.Module):
    """adaUnPool layer: ``forward(y, w, output_size=None)`` with ``(y, w)`` from a pooling layer
    built with ``return_mask=True``."""

    d: int

    def __init__(self, kernel_size, stride=None, padding=0, *, normalize="sum"):
        super().__init__()
        check_normalize(normalize)
        self.kernel_size, self.stride, self.padding, self.normalize = kernel_size, stride, padding, normalize

    def forward(self, y: Tensor, w: Tensor, output_size=None) -> Tensor:
        return _unpool(self.d, y, w, self.kernel_size, self.stride, self.padding, output_size, self.normalize)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"normalize={self.normalize!r}")


_CLASS_NAMES = {"adapool": "AdaPool", "edscwpool": "EDSCWPool", "empool": "EMPool", "idwpool": "IDWPool"}


def _make_class(base, name: str, d: int, method: str | None, function: str):
    doc = f"""{d}-D layer over :func:`{function}`: same arguments, same result (see its docstring).

    ``{name}(kernel_size, stride=None, padding=0, ceil_mode=False)`` as ``nn.AvgPool{d}d``."""
    if method == "adapool":
        doc += """  ``beta``: the initial value (default 0.5) or an initial tensor;
    ``beta_shape``: its shape (e.g. the output's spatial size, or all-ones to share one value);
    without either, beta is lazy and takes the output's spatial size from the first input."""
    namespace = {"d": d, "__doc__": doc, "__module__": __name__, "__qualname__": name}
    if method is not None:
        namespace["method"] = method
    return type(name, (base,), namespace)


def _build():
    table = adapter_functions(
        __name__, _pool, _unpool,
        "PyTorch: tensors in (``beta`` a tensor or a float), tensors out; differentiable with\n"
        "    ``grad=\"exact\"`` (default) or ``\"paper\"``; ``torch.compile(fullgraph=True)`` traces it.",
        "PyTorch: differentiable with respect to ``y`` (twice: it is linear in ``y``).")
    for d in RANKS:
        for method in METHODS:
            cls = f"{_CLASS_NAMES[method]}{d}d"
            table[cls] = _make_class(_AdaPoolNd if method == "adapool" else _PoolNd, cls, d, method,
                                     f"{method}{d}d")
        table[f"AdaUnpool{d}d"] = _make_class(_AdaUnpoolNd, f"AdaUnpool{d}d", d, None, f"adaunpool{d}d")
        table[f"SoftPool{d}d"] = table[f"EMPool{d}d"]
    return table


_PUBLIC = _build()
globals().update(_PUBLIC)
__all__ = sorted(_PUBLIC)
