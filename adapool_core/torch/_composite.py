"""adaPool in plain torch operations: windows by padding and strided slices,
masks for the clipped cells.

This is the readable form of the contract (``/work/shared/spec.md``): each
formula appears once, over a window axis of ``K = prod(kernel_size)`` cells.
The adapter uses it where the custom ops cannot go: ONNX export (every
operation here is a standard ONNX operator) and ``torch.func`` transforms
(autograd and vmap of plain operations).  Sizes may be symbolic: nothing here
branches on a tensor's size, so ``torch.export`` keeps them dynamic.

Differences from the kernels, all at points the contract leaves to
conventions: autograd of ``where`` and ``abs`` gives the spec's conventions
(``d|u|/du = 0`` at 0, IDW with a zero distance differentiates the mean);
adaUnPool sums by a transposed convolution with an identity kernel, so an
infinite pooled value also turns the cells of its neighbours' windows to NaN.
"""
from __future__ import annotations

import itertools
import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def pooled_length(length, k: int, s: int, p: int, ceil_mode: bool):
    """PyTorch's output size rule, without branches (``length`` may be a SymInt)."""
    if not ceil_mode:
        return (length + 2 * p - k) // s + 1
    # ceil(...) + 1, minus one when the last window would start in the right padding:
    # at most the number of window starts before length + p.
    return torch.sym_min(-((k - length - 2 * p) // s) + 1, -(-(length + p) // s))


def _windows(a: Tensor, d: int, k, s, p, out) -> Tensor:
    """``(..., *L) -> (..., *O, K)``: every window's cells, padding cells read 0."""
    pads = []
    for kk, ss, pp in zip(reversed(k), reversed(s), reversed(p)):
        pads += [pp, pp + ss - 1]  # the right pad covers ceil_mode's last window (statically)
    padded = F.pad(a, pads)
    cells = []
    for offset in itertools.product(*(range(kk) for kk in k)):
        index = tuple(slice(j, j + (o - 1) * ss + 1, ss) for j, o, ss in zip(offset, out, s))
        cells.append(padded[(Ellipsis,) + index])
    return torch.stack(cells, dim=-1)


def _softmax(scores: Tensor, valid: Tensor) -> Tensor:
    return torch.softmax(torch.where(valid, scores, float("-inf")), dim=-1)


def pool(method: str, d: int, x: Tensor, beta: Optional[Tensor], kernel_size: Sequence[int],
         stride: Sequence[int], padding: Sequence[int], ceil_mode: bool, return_mask: bool,
         mode: str = "exact"):
    """``y`` or ``(y, w)`` of ``{method}{d}d`` (geometry already validated, as int lists)."""
    batched = x.dim() == d + 2
    if not batched:
        x = x.unsqueeze(0)
    k, s, p = list(kernel_size), list(stride), list(padding)
    out = [pooled_length(n, kk, ss, pp, ceil_mode) for n, kk, ss, pp in zip(x.shape[2:], k, s, p)]
    xw = _windows(x, d, k, s, p, out)                               # (N, C, *O, K)
    valid = _windows(torch.ones_like(x[:1, :1]), d, k, s, p, out) > 0  # (1, 1, *O, K)
    count = valid.sum(-1, keepdim=True).to(x.dtype)
    mean = xw.sum(-1, keepdim=True) / count  # padding cells read 0
    paper = mode == "paper"

    def pooled(w: Tensor) -> Tensor:  # paper mode: the weights are constants
        return ((w.detach() if paper else w) * xw).sum(-1)

    if method in ("edscwpool", "adapool"):
        num = 2 * (xw * mean).abs()
        den = xw * xw + mean * mean
        zero = den == 0  # dsc = 1 where x_i = m = 0; the safe denominator keeps its gradient 0
        dsc = torch.where(zero, torch.ones_like(den), num / torch.where(zero, torch.ones_like(den), den))
        w_d = _softmax(dsc, valid)
    if method in ("empool", "adapool"):
        w_m = _softmax(xw, valid)
    if method == "adapool":
        b = beta.clamp(0, 1)
        y = b * pooled(w_d) + (1 - b) * pooled(w_m)
        w = b.unsqueeze(-1) * w_d + (1 - b.unsqueeze(-1)) * w_m
    elif method == "edscwpool":
        y, w = pooled(w_d), w_d
    elif method == "empool":
        y, w = pooled(w_m), w_m
    else:  # idwpool
        delta = (xw - mean).abs()
        at_mean = valid & (delta == 0)
        any_at_mean = at_mean.any(-1, keepdim=True)
        safe = torch.where(at_mean | ~valid, torch.ones_like(delta), delta)
        inverse = torch.where(valid & ~at_mean, 1 / safe, torch.zeros_like(delta))
        total = inverse.sum(-1, keepdim=True)
        w_far = inverse / torch.where(total == 0, torch.ones_like(total), total)
        w_at = at_mean.to(x.dtype) / at_mean.sum(-1, keepdim=True).clamp(min=1).to(x.dtype)
        w = torch.where(any_at_mean, w_at, w_far)
        # where a distance is 0 the output is the mean, and differentiates as the mean
        y = torch.where(any_at_mean.squeeze(-1), mean.squeeze(-1), pooled(w_far))
    if not batched:
        y = y.squeeze(0)
    if not return_mask:
        return y
    if paper:  # the weights are constants for x; adapool's still carry beta's share
        w = (b.unsqueeze(-1) * w_d.detach() + (1 - b.unsqueeze(-1)) * w_m.detach() if method == "adapool"
             else w.detach())
    mask = w.reshape(tuple(xw.shape[:-1]) + tuple(k))
    return y, (mask if batched else mask.squeeze(0))


def unpool(d: int, y: Tensor, w: Tensor, kernel_size: Sequence[int], stride: Sequence[int],
           padding: Sequence[int], output_size: Optional[Sequence], normalize: str) -> Tensor:
    """adaUnPool: ``x_hat_i = sum_r y_r * w_(r,i)`` (``normalize="window"``: times ``|R_r| / cover_i``)."""
    batched = y.dim() == d + 2
    if not batched:
        y, w = y.unsqueeze(0), w.unsqueeze(0)
    k, s, p = list(kernel_size), list(stride), list(padding)
    n, c, out = y.shape[0], y.shape[1], list(y.shape[2:])
    if output_size is None:  # the smallest input size that pools to y's
        size = [(o - 1) * ss + kk - 2 * pp for o, ss, kk, pp in zip(out, s, k, p)]
    else:
        size = list(output_size)[-d:]
    cells = math.prod(k)
    identity = torch.eye(cells, dtype=y.dtype, device=y.device).reshape([cells, 1] + k)
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[d - 1]

    def scatter(windows: Tensor) -> Tensor:
        """``(B, *O, K)`` -> ``(B, *L)``: each window cell added where it lies, padding cropped."""
        lead = windows.shape[0]
        summed = conv_t(windows.reshape([lead] + out + [cells]).movedim(-1, 1), identity, stride=s)
        summed = F.pad(summed, [q for ss in reversed(s) for q in (0, ss - 1)])
        index = tuple(slice(pp, pp + L) for pp, L in zip(p, size))
        return summed[(slice(None), 0) + index]

    terms = y.unsqueeze(-1) * w.reshape(list(y.shape) + [cells])
    if normalize == "window":
        ones = torch.ones([1, 1] + size, dtype=y.dtype, device=y.device)
        window_cells = _windows(ones, d, k, s, p, out)                   # (1, 1, *O, K)
        count = window_cells.sum(-1, keepdim=True)
        cover = scatter(window_cells.reshape([1] + out + [cells]))         # windows covering each cell
        terms = terms * count
    result = scatter(terms.reshape([n * c] + out + [cells])).reshape([n, c] + size)
    if normalize == "window":
        result = result / torch.where(cover == 0, torch.ones_like(cover), cover)
    return result if batched else result.squeeze(0)
