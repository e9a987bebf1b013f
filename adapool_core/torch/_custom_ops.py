"""The four ``torch.library`` custom ops (``adapool_core::pool``,
``pool_backward``, ``unpool``, ``unpool_backward``) that carry the
array-level kernels through autograd, ``torch.compile`` and ``torch.export``.

Fake implementations give the output shapes; on symbolic sizes they use the
branch-free size rule of ``_composite`` so that dynamic dims stay dynamic.
CUDA tensors launch on their own device and on torch's current stream there.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import Tensor

from .._api import FUNCTIONS
from .._geometry import pool_geometry, unpool_geometry
from ._composite import pooled_length

_DOUBLE_BACKWARD = (
    "adapool_core.torch: double backward (the gradient of {op}'s gradient) is not implemented; "
    "differentiate adaPool only once (create_graph=True is fine as long as that graph is not "
    "differentiated through the pooling again)"
)


def is_static(shape) -> bool:
    """Whether every size is a plain int (not a symbol of torch.compile / torch.export)."""
    return all(type(n) is int for n in shape)


def launch_scope(device: torch.device):
    """Launches inside go to ``device`` and to torch's current stream on it (CPU: nothing to do)."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    from .. import _cuda

    index = device.index if device.index is not None else torch.cuda.current_device()
    return _cuda.launch_scope(index, torch.cuda.current_stream(index).cuda_stream)


def _name(method: str, d: int) -> str:
    return f"{method}{d}d"


@torch.library.custom_op("adapool_core::pool", mutates_args=())
def pool_op(x: Tensor, beta: Optional[Tensor], method: str, d: int, kernel_size: list[int],
            stride: list[int], padding: list[int], ceil_mode: bool, return_mask: bool,
            mode: str) -> tuple[Tensor, Tensor]:
    args = (x,) if beta is None else (x, beta)
    with launch_scope(x.device):
        out = FUNCTIONS[_name(method, d)](*args, kernel_size, stride, padding, ceil_mode, return_mask)
    return out if return_mask else (out, x.new_empty(0))


def pooled_shape(shape, d: int, kernel_size, stride, padding, ceil_mode, func: str):
    """``(out_shape, mask_shape)``: checked by ``_geometry`` on plain sizes, by formula on symbols."""
    if is_static(shape):
        geom = pool_geometry(tuple(shape), d, kernel_size, stride, padding, ceil_mode, func)
        return geom.out_shape, geom.mask_shape
    out = tuple(shape[:-d]) + tuple(pooled_length(n, k, s, p, ceil_mode) for n, k, s, p in
                                    zip(shape[-d:], kernel_size, stride, padding))
    return out, out + tuple(kernel_size)


@pool_op.register_fake
def _pool_fake(x, beta, method, d, kernel_size, stride, padding, ceil_mode, return_mask, mode):
    out, mask = pooled_shape(x.shape, d, kernel_size, stride, padding, ceil_mode, _name(method, d))
    return x.new_empty(out), x.new_empty(mask if return_mask else (0,))


@torch.library.custom_op("adapool_core::pool_backward", mutates_args=())
def pool_backward_op(grad_out: Tensor, x: Tensor, beta: Optional[Tensor], method: str, d: int,
                     kernel_size: list[int], stride: list[int], padding: list[int], ceil_mode: bool,
                     mode: str, grad_w: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    backward = FUNCTIONS[_name(method, d) + "_backward"]
    with launch_scope(x.device):
        if beta is None:
            return (backward(grad_out, x, kernel_size, stride, padding, ceil_mode, mode, grad_w),
                    x.new_empty(0))
        return backward(grad_out, x, beta, kernel_size, stride, padding, ceil_mode, mode, grad_w)


@pool_backward_op.register_fake
def _pool_backward_fake(grad_out, x, beta, method, d, kernel_size, stride, padding, ceil_mode, mode,
                        grad_w=None):
    return torch.empty_like(x, memory_format=torch.contiguous_format), (
        x.new_empty(0) if beta is None else torch.empty_like(beta, memory_format=torch.contiguous_format))


def _pool_setup(ctx, inputs, output):
    x, beta, method, d, kernel_size, stride, padding, ceil_mode, return_mask, mode = inputs
    if not return_mask:
        ctx.mark_non_differentiable(output[1])  # the empty placeholder
    ctx.return_mask = return_mask
    ctx.save_for_backward(x, beta)
    ctx.config = (method, d, kernel_size, stride, padding, ceil_mode, mode)


def _pool_autograd(ctx, grad_y, grad_w):
    # The returned weights are differentiable: their cotangent adds its path.
    x, beta = ctx.saved_tensors
    if not ctx.return_mask:
        grad_w = None
    grad_x, grad_beta = pool_backward_op(grad_y, x, beta, *ctx.config, grad_w)
    return (grad_x, None if beta is None else grad_beta) + (None,) * 8


torch.library.register_autograd("adapool_core::pool", _pool_autograd, setup_context=_pool_setup)


def _no_double_backward(ctx, *grads):
    raise RuntimeError(_DOUBLE_BACKWARD.format(op="adapool_core::pool"))


torch.library.register_autograd("adapool_core::pool_backward", _no_double_backward)


@torch.library.custom_op("adapool_core::unpool", mutates_args=())
def unpool_op(y: Tensor, w: Tensor, d: int, kernel_size: list[int], stride: list[int], padding: list[int],
              output_size: Optional[list[int]], normalize: str) -> Tensor:
    with launch_scope(y.device):
        return FUNCTIONS[f"adaunpool{d}d"](y, w, kernel_size, stride, padding, output_size, normalize)


def unpooled_shape(y_shape, w_shape, d: int, kernel_size, stride, padding, output_size, func: str):
    """The unpooled shape: checked by ``_geometry`` on plain sizes, by formula on symbols."""
    if is_static(y_shape) and is_static(w_shape) and (output_size is None or is_static(output_size)):
        return unpool_geometry(tuple(y_shape), tuple(w_shape), d, kernel_size, stride, padding, output_size,
                               func).in_shape
    if output_size is None:  # the smallest input size that pools to y's
        size = tuple((o - 1) * s + k - 2 * p for o, s, k, p in zip(y_shape[-d:], stride, kernel_size, padding))
    else:
        size = tuple(output_size)[-d:]
    return tuple(y_shape[:-d]) + size


@unpool_op.register_fake
def _unpool_fake(y, w, d, kernel_size, stride, padding, output_size, normalize):
    return y.new_empty(unpooled_shape(y.shape, w.shape, d, kernel_size, stride, padding, output_size,
                                      f"adaunpool{d}d"))


@torch.library.custom_op("adapool_core::unpool_backward", mutates_args=())
def unpool_backward_op(grad_out: Tensor, y: Tensor, w: Tensor, d: int, kernel_size: list[int],
                       stride: list[int], padding: list[int], output_size: Optional[list[int]],
                       normalize: str) -> Tensor:
    with launch_scope(y.device):
        return FUNCTIONS[f"adaunpool{d}d_backward"](grad_out, y, w, kernel_size, stride, padding, output_size,
                                                    normalize)


@unpool_backward_op.register_fake
def _unpool_backward_fake(grad_out, y, w, d, kernel_size, stride, padding, output_size, normalize):
    return torch.empty_like(y, memory_format=torch.contiguous_format)


def _unpool_setup(ctx, inputs, output):
    y, w, *config = inputs
    ctx.save_for_backward(y, w)
    ctx.config = tuple(config)


@torch.library.custom_op("adapool_core::unpool_grads", mutates_args=())
def unpool_grads_op(grad_out: Tensor, y: Tensor, w: Tensor, d: int, kernel_size: list[int],
                    stride: list[int], padding: list[int], output_size: Optional[list[int]],
                    normalize: str) -> tuple[Tensor, Tensor]:
    """adaUnPool's gradients for y and for w (``unpool_backward`` gives y's alone)."""
    with launch_scope(y.device):
        return FUNCTIONS[f"adaunpool{d}d_backward"](grad_out, y, w, kernel_size, stride, padding, output_size,
                                                    normalize, True)


@unpool_grads_op.register_fake
def _unpool_grads_fake(grad_out, y, w, d, kernel_size, stride, padding, output_size, normalize):
    return (torch.empty_like(y, memory_format=torch.contiguous_format),
            torch.empty_like(w, memory_format=torch.contiguous_format))


def _no_unpool_grads_double_backward(ctx, *grads):
    raise RuntimeError(_DOUBLE_BACKWARD.format(op="adapool_core::unpool (with respect to w)"))


torch.library.register_autograd("adapool_core::unpool_grads", _no_unpool_grads_double_backward)


def _unpool_autograd(ctx, grad_x):
    y, w = ctx.saved_tensors
    if ctx.needs_input_grad[1]:  # the weights train too (pool -> unpool with return_mask=True)
        return unpool_grads_op(grad_x, y, w, *ctx.config) + (None,) * 6
    return (unpool_backward_op(grad_x, y, w, *ctx.config),) + (None,) * 7


def _unpool_backward_autograd(ctx, grad_grad_y):
    # adaUnPool is linear in y: the gradient of its gradient is adaUnPool itself.
    _, w = ctx.saved_tensors
    return (unpool_op(grad_grad_y, w, *ctx.config), None, None) + (None,) * 6


def _unpool_backward_setup(ctx, inputs, output):
    _, y, w, *config = inputs
    ctx.save_for_backward(y, w)
    ctx.config = tuple(config)


torch.library.register_autograd("adapool_core::unpool", _unpool_autograd, setup_context=_unpool_setup)
torch.library.register_autograd("adapool_core::unpool_backward", _unpool_backward_autograd,
                                setup_context=_unpool_backward_setup)
