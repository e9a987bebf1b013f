"""XLA-native JAX implementation of the adaPool family (``jax.numpy`` / ``lax`` only).

No host callback: it runs under ``jit`` on any backend (CPU, GPU, TPU),
``vmap``-s, differentiates (to any order) and exports with ``jax.export``.
Inputs are channels-first ``(N, C, *S)`` with ``d = len(S)`` in 1..3;
``adapool_core.jax`` validates the arguments (``_geometry``), moves a
channels-last layout and calls :func:`pool` / :func:`unpool`.

Windows: per dim an explicit padding pair ``(lo, hi)`` (PyTorch's symmetric
padding and ceil_mode are one such pair; Flax's ``"SAME"`` and asymmetric
pairs are others).  The padded input is cut into ``K = prod(k)`` strided
slices, one per kernel offset, stacked as ``(N, C, *O, K)``; a static
membership mask drops the padding cells (they are not window members, spec).

Gradients follow the spec's conventions: ``d|u|/du = 0`` at 0 (:func:`_abs0`),
the dsc gradient is 0 at ``x_i = m = 0``, IDW with a zero distance
differentiates ``y = m``, the max shift is a ``stop_gradient``; every
``where`` whose untaken branch could be inf/NaN also guards its operand
(the double-where), so no NaN leaks into a gradient.  ``mode="paper"``
keeps the forward value and treats the weights as constants.

Memory: the pooling is wrapped in ``jax.checkpoint``: reverse mode saves only
the input (and beta) and recomputes the ``(N, C, *O, K)`` intermediates in the
backward pass, instead of keeping a dozen of them alive between the passes.
"""
from __future__ import annotations

import functools
import itertools
from typing import Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Pairs = Tuple[Tuple[int, int], ...]


def out_size_for(in_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Pairs) -> tuple:
    """Output size per dim for explicit padding pairs: ``floor((L + lo + hi - k) / s) + 1``."""
    return tuple((L + lo + hi - k) // s + 1 for L, k, s, (lo, hi) in zip(in_size, kernel, stride, pads))


def torch_pads(in_size, kernel, stride, padding, out_size) -> Pairs:
    """The pairs that PyTorch's symmetric ``padding`` (and ceil_mode's extra room) amount to."""
    return tuple((p, max(0, (o - 1) * s + k - L - p))
                 for L, k, s, p, o in zip(in_size, kernel, stride, padding, out_size))


def _dim_members(L: int, k: int, s: int, lo: int, O: int) -> np.ndarray:
    """(O, k) bool: whether cell j of window o is inside the input."""
    idx = np.arange(O)[:, None] * s - lo + np.arange(k)[None, :]
    return (idx >= 0) & (idx < L)


def _members(in_size, kernel, stride, pads, out_size):
    """(*O, K) membership (float) and (*O, 1) window cell counts, as outer products of per-dim masks."""
    d = len(in_size)
    per = [_dim_members(L, k, s, lo, O) for L, k, s, (lo, _), O in zip(in_size, kernel, stride, pads, out_size)]
    member = np.ones((), bool)
    count = np.ones((), np.float64)
    for i, m in enumerate(per):
        shape = [1] * (2 * d)
        shape[i], shape[d + i] = m.shape
        member = member & m.reshape(shape)
        cshape = [1] * d
        cshape[i] = m.shape[0]
        count = count * m.sum(1).reshape(cshape)
    return member.reshape(tuple(out_size) + (-1,)), count.reshape(tuple(out_size) + (1,))


def _cover(in_size, kernel, stride, pads, out_size) -> np.ndarray:
    """(*S,) how many windows contain each input cell (outer product of per-dim counts)."""
    total = np.ones(())
    d = len(in_size)
    for i, (L, k, s, (lo, _), O) in enumerate(zip(in_size, kernel, stride, pads, out_size)):
        m = _dim_members(L, k, s, lo, O)
        idx = np.arange(O)[:, None] * s - lo + np.arange(k)[None, :]
        cnt = np.zeros(L)
        np.add.at(cnt, idx[m], 1)
        shape = [1] * d
        shape[i] = L
        total = total * cnt.reshape(shape)
    return total


def _padded(in_size, kernel, stride, pads, out_size):
    """Per dim (lo, hi) to pad so every window's span lies inside the padded array."""
    return tuple((lo, max(0, (o - 1) * s + k - L - lo)) for L, k, s, (lo, _), o in
                 zip(in_size, kernel, stride, pads, out_size))


def _patches(x, kernel, stride, pads, out_size):
    """(N, C, *S) -> (N, C, *O, K): one strided slice of the zero-padded input per kernel offset."""
    in_size = x.shape[2:]
    grid = _padded(in_size, kernel, stride, pads, out_size)
    xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(lo, hi, 0) for lo, hi in grid])
    cols = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        start = (0, 0) + offset
        limit = x.shape[:2] + tuple(j + (o - 1) * s + 1 for j, o, s in zip(offset, out_size, stride))
        cols.append(lax.slice(xp, start, limit, (1, 1) + tuple(stride)))
    return jnp.stack(cols, axis=-1)


def _unpatches(c, in_size, kernel, stride, pads, out_size):
    """The transpose of :func:`_patches`: (N, C, *O, K) summed back onto (N, C, *S)."""
    grid = _padded(in_size, kernel, stride, pads, out_size)
    full = tuple(lo + L + hi for L, (lo, hi) in zip(in_size, grid))
    total = None
    zero = jnp.zeros((), c.dtype)
    for j, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        config = [(0, 0, 0)] * 2
        for q, o, s, P in zip(offset, out_size, stride, full):
            span = (o - 1) * s + 1
            config.append((q, P - q - span, s - 1))
        placed = lax.pad(c[..., j], zero, config)
        total = placed if total is None else total + placed
    start = (0, 0) + tuple(lo for lo, _ in grid)
    return lax.slice(total, start, tuple(a + b for a, b in zip(start, c.shape[:2] + tuple(in_size))))


def _abs0(u):
    """|u| whose derivative is sign(u): 0 at u = 0 (spec convention; jnp.abs gives 1 there)."""
    return u * lax.stop_gradient(jnp.sign(u))


def _em_weights(X, member, mean):
    # NaN: the max is NaN, every weight NaN.
    shift = lax.stop_gradient(jnp.max(jnp.where(member, X, -jnp.inf), axis=-1, keepdims=True))
    e = jnp.exp(jnp.where(member, X - shift, -jnp.inf))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _edscw_weights(X, member, mean):
    # dsc = 2r / (1 + r^2), r = min(|x|,|m|) / max(|x|,|m|): no overflow or underflow (as _cpu._dsc).
    a, b = _abs0(X), _abs0(mean)
    hi, lo = jnp.maximum(a, b), jnp.minimum(a, b)
    both_zero = hi == 0
    r = lo / jnp.where(both_zero, 1.0, hi)
    dsc = jnp.where(both_zero, 1.0, 2.0 * r / (1.0 + r * r))
    e = jnp.where(member, jnp.exp(dsc), 0.0)  # dsc in [0, 1]: no shift needed
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _idw_weights(X, member, mean):
    """IDW weights and whether the window has a zero distance (then y = m)."""
    delta = _abs0(X - mean)
    zero = member & (delta == 0)
    n_zero = jnp.sum(zero, axis=-1, keepdims=True)
    has_zero = n_zero > 0
    use = member & ~zero
    inv = jnp.where(use, 1.0 / jnp.where(use, delta, 1.0), 0.0)
    total = jnp.sum(inv, axis=-1, keepdims=True)
    w = jnp.where(has_zero, zero / jnp.maximum(n_zero, 1).astype(X.dtype),
                  inv / jnp.where(has_zero, 1.0, total))
    return w, has_zero[..., 0]


def _weighted(w, X, mode):
    """sum_i w_i x_i; in paper mode the same value, differentiated with the weights held constant."""
    y = jnp.sum(w * X, axis=-1)
    if mode == "exact":
        return y
    dx = X - lax.stop_gradient(X)  # value 0, gradient identity
    return lax.stop_gradient(y) + jnp.sum(lax.stop_gradient(w) * dx, axis=-1)


def _clamped_beta(beta):
    """clamp(beta, 0, 1) with d/dbeta = 1 on [0, 1] inclusive, 0 outside (spec)."""
    inside = (beta >= 0) & (beta <= 1)
    return jnp.where(inside, beta, lax.stop_gradient(jnp.clip(beta, 0, 1)))


@functools.partial(jax.checkpoint, static_argnums=(0, 3, 4, 5, 6, 7, 8))
def _pool_cf(method, x, beta, kernel, stride, pads, out_size, return_mask, mode):
    member_np, count_np = _members(x.shape[2:], kernel, stride, pads, out_size)
    member = jnp.asarray(member_np)
    X = _patches(x, kernel, stride, pads, out_size)
    mean = jnp.sum(X, axis=-1, keepdims=True) / jnp.asarray(count_np, x.dtype)
    if method == "idwpool":
        w, has_zero = _idw_weights(X, member, mean)
        y = _weighted(w, X, mode)
        if mode == "exact":  # a zero distance: y = m, differentiated as m (paper: the equal shares held)
            y = jnp.where(has_zero, mean[..., 0], y)
    elif method == "empool":
        w = _em_weights(X, member, mean)
        y = _weighted(w, X, mode)
    elif method == "edscwpool":
        w = _edscw_weights(X, member, mean)
        y = _weighted(w, X, mode)
    else:
        b = _clamped_beta(jnp.broadcast_to(beta, X.shape[:-1]))
        wD, wM = _edscw_weights(X, member, mean), _em_weights(X, member, mean)
        y = b * _weighted(wD, X, mode) + (1 - b) * _weighted(wM, X, mode)
        w = b[..., None] * wD + (1 - b[..., None]) * wM if return_mask else None
    if return_mask:
        return y, w.reshape(y.shape + tuple(kernel))
    return y


def _compute_dtype(dtype):
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


def pool(method: str, x, beta, kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
         return_mask: bool = False, mode: str = "exact", out_size: Optional[Sequence[int]] = None):
    """Pool a channels-first ``(N, C, *S)`` or unbatched ``(C, *S)`` array.

    ``pads`` is one ``(lo, hi)`` pair per spatial dim; ``out_size`` defaults to
    :func:`out_size_for`.  float16/bfloat16 compute in float32 and return the
    input dtype.  ``beta`` (adapool only) broadcasts to the output shape.
    """
    d = len(kernel)
    batched = x.ndim == d + 2
    if not batched:
        x = x[None]  # beta broadcasts against (1, C, *O) as against (C, *O)
    if out_size is None:
        out_size = out_size_for(x.shape[2:], kernel, stride, pads)
    dtype = x.dtype
    ct = _compute_dtype(dtype)
    if beta is not None:
        beta = jnp.asarray(beta).astype(ct)
    out = _pool_cf(method, x.astype(ct), beta, tuple(kernel), tuple(stride), tuple(map(tuple, pads)),
                   tuple(out_size), bool(return_mask), mode)
    outs = out if return_mask else (out,)
    outs = tuple(o.astype(dtype) if batched else o[0].astype(dtype) for o in outs)
    return outs if return_mask else outs[0]


def unpool(y, w, in_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
           normalize: str = "sum"):
    """adaUnPool of channels-first ``y`` ``(N, C, *O)`` and ``w`` ``(N, C, *O, *k)`` onto ``(N, C, *in_size)``.

    Differentiable in ``y`` and ``w`` (it is bilinear in them).
    """
    d = len(kernel)
    batched = y.ndim == d + 2
    if not batched:
        y, w = y[None], w[None]
    dtype = y.dtype
    ct = _compute_dtype(dtype)
    out_size = y.shape[2:]
    y, w = y.astype(ct), w.astype(ct)
    c = y[..., None] * w.reshape(y.shape + (-1,))
    if normalize == "window":
        _, count = _members(in_size, kernel, stride, pads, out_size)
        c = c * jnp.asarray(count, ct)
    out = _unpatches(c, tuple(in_size), kernel, stride, pads, out_size)
    if normalize == "window":
        cover = _cover(in_size, kernel, stride, pads, out_size)
        out = out / jnp.asarray(np.where(cover == 0, 1.0, cover), ct)
    out = out.astype(dtype)
    return out if batched else out[0]
