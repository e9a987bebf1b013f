"""XLA-native JAX implementation of the adaPool family (``jax.numpy`` / ``lax`` only).

No host callback: it runs under ``jit`` on any backend (CPU, GPU, TPU),
``vmap``-s, differentiates (to any order) and exports with ``jax.export``.
Inputs are channels-first ``(N, C, *S)`` with ``d = len(S)`` in 1..3;
``adapool_core.jax`` validates the arguments (``_geometry``), moves a
channels-last layout and calls :func:`pool` / :func:`unpool`.

Windows (:class:`Strided`): per dim an explicit padding pair ``(lo, hi)``
(PyTorch's symmetric padding and ceil_mode are one such pair; Flax's
``"SAME"`` and asymmetric pairs are others).  The padded input is cut into
``K = prod(k)`` strided slices, one per kernel offset, stacked as
``(N, C, *O, K)``; a static membership mask drops the padding cells (they are
not window members, spec).  Adaptive windows (:class:`Adaptive`,
:func:`adaptive_pool`) have unequal sizes: one gather cuts every window padded
to the longest one per dim, the cells past its end reading 0 and masked out
the same way; adaUnPool sums back with the transposed scatter-add.

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
from dataclasses import dataclass
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


def _dim_windows(L: int, k: int, s: int, lo: int, O: int):
    """(O, k) input index of cell j of window o, and whether it is inside the input (strided windows)."""
    idx = np.arange(O)[:, None] * s - lo + np.arange(k)[None, :]
    return idx, (idx >= 0) & (idx < L)


def _adaptive_dim_windows(L: int, O: int):
    """(O, K) input index of cell j of adaptive window o and whether it is a member: the window is
    ``[floor(o*L/O), ceil((o+1)*L/O))`` (spec), K the longest; cells past a shorter window's end are not."""
    o = np.arange(O)
    start, end = (o * L) // O, -(-(o + 1) * L // O)
    idx = start[:, None] + np.arange(int(np.max(end - start)))[None, :]
    return idx, idx < end[:, None]


class _Windows:
    """The windows of one pooling: per spatial dim an (O, K) index and member table (:meth:`dims`).

    Membership, window cell counts and cover are outer products of the per-dim tables;
    the subclasses cut the patches and sum them back.  Frozen dataclasses: hashable, static.
    """

    in_size: tuple
    out_size: tuple

    def dims(self) -> list:
        raise NotImplementedError

    @property
    def cell_shape(self) -> tuple:
        """K per dim: the weights' window axes."""
        return tuple(idx.shape[1] for idx, _ in self.dims())

    def members(self):
        """(*O, K) membership (bool) and (*O, 1) window cell counts."""
        d = len(self.in_size)
        member = np.ones((), bool)
        count = np.ones((), np.float64)
        for i, (_, m) in enumerate(self.dims()):
            shape = [1] * (2 * d)
            shape[i], shape[d + i] = m.shape
            member = member & m.reshape(shape)
            cshape = [1] * d
            cshape[i] = m.shape[0]
            count = count * m.sum(1).reshape(cshape)
        return member.reshape(tuple(self.out_size) + (-1,)), count.reshape(tuple(self.out_size) + (1,))

    def cover(self) -> np.ndarray:
        """(*S,) how many windows contain each input cell."""
        total = np.ones(())
        d = len(self.in_size)
        for i, (L, (idx, m)) in enumerate(zip(self.in_size, self.dims())):
            cnt = np.zeros(L)
            np.add.at(cnt, idx[m], 1)
            shape = [1] * d
            shape[i] = L
            total = total * cnt.reshape(shape)
        return total


@dataclass(frozen=True)
class Strided(_Windows):
    """Windows of size ``kernel`` every ``stride``, the input padded by ``pads`` (lo, hi) per dim."""

    in_size: tuple
    kernel: tuple
    stride: tuple
    pads: Pairs
    out_size: tuple

    def dims(self) -> list:
        return [_dim_windows(L, k, s, lo, O) for L, k, s, (lo, _), O in
                zip(self.in_size, self.kernel, self.stride, self.pads, self.out_size)]

    def _padded(self):
        """Per dim (lo, hi) to pad so every window's span lies inside the padded array."""
        return tuple((lo, max(0, (o - 1) * s + k - L - lo)) for L, k, s, (lo, _), o in
                     zip(self.in_size, self.kernel, self.stride, self.pads, self.out_size))

    def patches(self, x):
        """(N, C, *S) -> (N, C, *O, K): one strided slice of the zero-padded input per kernel offset."""
        xp = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0)] * 2 + [(lo, hi, 0) for lo, hi in self._padded()])
        cols = []
        for offset in itertools.product(*(range(k) for k in self.kernel)):
            limit = x.shape[:2] + tuple(j + (o - 1) * s + 1 for j, o, s in zip(offset, self.out_size, self.stride))
            cols.append(lax.slice(xp, (0, 0) + offset, limit, (1, 1) + tuple(self.stride)))
        return jnp.stack(cols, axis=-1)

    def unpatches(self, c):
        """The transpose of :meth:`patches`: (N, C, *O, K) summed back onto (N, C, *S)."""
        grid = self._padded()
        full = tuple(lo + L + hi for L, (lo, hi) in zip(self.in_size, grid))
        total = None
        zero = jnp.zeros((), c.dtype)
        for j, offset in enumerate(itertools.product(*(range(k) for k in self.kernel))):
            config = [(0, 0, 0)] * 2
            for q, o, s, P in zip(offset, self.out_size, self.stride, full):
                config.append((q, P - q - ((o - 1) * s + 1), s - 1))
            placed = lax.pad(c[..., j], zero, config)
            total = placed if total is None else total + placed
        start = (0, 0) + tuple(lo for lo, _ in grid)
        return lax.slice(total, start, tuple(a + b for a, b in zip(start, c.shape[:2] + tuple(self.in_size))))


@dataclass(frozen=True)
class Adaptive(_Windows):
    """Adaptive windows of ``in_size`` pooled to ``out_size`` (spec "Adaptive windows"), each padded
    to the longest window of its dim; the cells past a window's end are not members (0 in the patches)."""

    in_size: tuple
    out_size: tuple

    def dims(self) -> list:
        return [_adaptive_dim_windows(L, O) for L, O in zip(self.in_size, self.out_size)]

    def _flat_index(self) -> np.ndarray:
        """(*O, K) index into the flattened spatial axes; non-members point one past the end."""
        d = len(self.in_size)
        flat = np.zeros((), np.int64)
        for i, (idx, _) in enumerate(self.dims()):
            shape = [1] * (2 * d)
            shape[i], shape[d + i] = idx.shape
            flat = flat * self.in_size[i] + idx.reshape(shape)
        member, _ = self.members()
        flat = flat.reshape(member.shape)
        return np.where(member, flat, int(np.prod(self.in_size)))

    def patches(self, x):
        """(N, C, *S) -> (N, C, *O, K): one gather; the non-member cells read 0 (as padding does)."""
        flat = x.reshape(x.shape[:2] + (-1,))
        return jnp.take(flat, jnp.asarray(self._flat_index()), axis=2, mode="fill", fill_value=0)

    def unpatches(self, c):
        """The transpose of :meth:`patches`: a scatter-add of (N, C, *O, K) onto (N, C, *S)."""
        index = self._flat_index().reshape(-1)
        total = jnp.zeros(c.shape[:2] + (int(np.prod(self.in_size)),), c.dtype)
        total = total.at[:, :, index].add(c.reshape(c.shape[:2] + (-1,)), mode="drop")
        return total.reshape(c.shape[:2] + tuple(self.in_size))


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


@functools.partial(jax.checkpoint, static_argnums=(0, 3, 4, 5))
def _pool_cf(method, x, beta, windows: _Windows, return_mask, mode):
    member_np, count_np = windows.members()
    member = jnp.asarray(member_np)
    X = windows.patches(x)
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
        return y, w.reshape(y.shape + windows.cell_shape)
    return y


def _compute_dtype(dtype):
    return jnp.float64 if dtype == jnp.float64 else jnp.float32


def _pool_with(method, x, beta, d: int, windows_for, return_mask, mode):
    """Pool (N, C, *S) or (C, *S) ``x`` over ``windows_for(S)``, computing in float32 or float64."""
    batched = x.ndim == d + 2
    if not batched:
        x = x[None]  # beta broadcasts against (1, C, *O) as against (C, *O)
    dtype = x.dtype
    ct = _compute_dtype(dtype)
    if beta is not None:
        beta = jnp.asarray(beta).astype(ct)
    out = _pool_cf(method, x.astype(ct), beta, windows_for(tuple(x.shape[2:])), bool(return_mask), mode)
    outs = out if return_mask else (out,)
    outs = tuple(o.astype(dtype) if batched else o[0].astype(dtype) for o in outs)
    return outs if return_mask else outs[0]


def pool(method: str, x, beta, kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
         return_mask: bool = False, mode: str = "exact", out_size: Optional[Sequence[int]] = None):
    """Pool a channels-first ``(N, C, *S)`` or unbatched ``(C, *S)`` array.

    ``pads`` is one ``(lo, hi)`` pair per spatial dim; ``out_size`` defaults to
    :func:`out_size_for`.  float16/bfloat16 compute in float32 and return the
    input dtype.  ``beta`` (adapool only) broadcasts to the output shape.
    """
    def windows_for(in_size):
        out = out_size_for(in_size, kernel, stride, pads) if out_size is None else out_size
        return Strided(in_size, tuple(kernel), tuple(stride), tuple(map(tuple, pads)), tuple(out))
    return _pool_with(method, x, beta, len(kernel), windows_for, return_mask, mode)


def adaptive_pool(method: str, x, beta, out_size: Sequence[int], return_mask: bool = False, mode: str = "exact"):
    """Adaptive pooling of a channels-first ``(N, C, *S)`` or ``(C, *S)`` array to ``out_size``, as :func:`pool`."""
    return _pool_with(method, x, beta, len(out_size), lambda in_size: Adaptive(in_size, tuple(out_size)),
                      return_mask, mode)


def _unpool_with(y, w, windows: _Windows, normalize: str):
    d = len(windows.in_size)
    batched = y.ndim == d + 2
    if not batched:
        y, w = y[None], w[None]
    dtype = y.dtype
    ct = _compute_dtype(dtype)
    y, w = y.astype(ct), w.astype(ct)
    c = y[..., None] * w.reshape(y.shape + (-1,))
    if normalize == "window":
        _, count = windows.members()
        c = c * jnp.asarray(count, ct)
    out = windows.unpatches(c)
    if normalize == "window":
        cover = windows.cover()
        out = out / jnp.asarray(np.where(cover == 0, 1.0, cover), ct)
    out = out.astype(dtype)
    return out if batched else out[0]


def unpool(y, w, in_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], pads: Pairs,
           normalize: str = "sum"):
    """adaUnPool of channels-first ``y`` ``(N, C, *O)`` and ``w`` ``(N, C, *O, *k)`` onto ``(N, C, *in_size)``.

    Differentiable in ``y`` and ``w`` (it is bilinear in them).
    """
    windows = Strided(tuple(in_size), tuple(kernel), tuple(stride), tuple(map(tuple, pads)),
                      tuple(y.shape[-len(kernel):]))
    return _unpool_with(y, w, windows, normalize)


def adaptive_unpool(y, w, in_size: Sequence[int], normalize: str = "sum"):
    """adaUnPool over the adaptive windows of ``in_size`` pooled to ``y``'s spatial size, as :func:`unpool`."""
    return _unpool_with(y, w, Adaptive(tuple(in_size), tuple(y.shape[-len(in_size):])), normalize)
