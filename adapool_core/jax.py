"""JAX adapter: the same functions, differentiable and traceable.

Two implementations, chosen per call by ``implementation=``:

- ``"xla"``: ``adapool_core._jax_xla``, pure ``jax.numpy``/``lax``.  No host
  callback: runs under ``jit`` on any backend (GPU and TPU arrays stay on
  the device), exports with ``jax.export``, ``vmap``-s natively, and
  differentiates to any order, including through the returned weights and
  adaUnPool's ``w``.
- ``"callback"``: the Numba kernels through ``jax.pure_callback`` (below).
  Faster on the CPU (``adapool bench --jax``), but a
  host round trip elsewhere and not exportable.
- ``"auto"`` (default): ``"callback"`` when JAX's default backend is the CPU,
  ``"xla"`` otherwise.  Pass ``implementation="xla"`` to ``jax.export`` on a
  CPU-only machine (host callbacks cannot be serialized).

``data_format="channels_last"`` takes and returns ``(N, *S, C)`` arrays (and
weights ``(N, *O, *k, C)``, per-channel beta ``(1, .., 1, C)``); the adapter
transposes to channels-first around the implementation (XLA fuses it).

The callback path: each function is a ``jax.custom_vjp`` whose forward and backward are
``jax.pure_callback`` calls of the array-level functions of ``adapool_core``
(Numba on the host), so they work under ``jax.jit``, ``jax.grad`` and
``jax.vmap`` (``vmap_method="broadcast_all"``: a vmapped call is one host
call, the vmapped axes folded into the batch axis).  Arguments are checked
by ``_geometry`` when traced (shapes are static).

Gradients: ``mode="exact"`` (default) or ``"paper"`` as in the array-level
``*_backward`` functions (``grad=`` is its deprecated alias); ``beta`` is differentiable.  The weights returned
with ``return_mask=True`` are differentiable, and ``adaunpool{d}d`` is
differentiable with respect to ``y`` and ``w``, so adaUnPool trains the pooling
that produced the weights.  Higher-order derivatives are not implemented: differentiating
a gradient raises ``NotImplementedError``.

Copies: a callback receives host NumPy views of the operands and JAX copies
the results into its own buffers; arrays on a GPU go through the host.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import _jax_xla
from ._adapters import adapter_functions
from ._api import FUNCTIONS
from ._docs import adaptive_doc
from ._geometry import (adaptive_geometry, adaptive_unpool_geometry, beta_strides, channels_last_beta_shape,
                        check_data_format, check_mode, check_normalize, pool_geometry, to_channels_first,
                        to_channels_last, unpool_geometry)
from ._ops import _sum_to_shape
from ._typing import AdaptiveSize, Beta, DataFormat, GradMode, Implementation, Normalize, Size

IMPLEMENTATIONS = ("auto", "xla", "callback")


@dataclass(frozen=True)
class _Config:
    """Static (hashable) arguments of one call; the shapes are the unbatched operands'."""

    method: str  # "adapool", ... or "adaunpool"
    d: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    ceil_mode: bool = False
    return_mask: bool = False
    mode: str = "exact"
    output_size: Optional[tuple] = None
    normalize: str = "sum"
    batched: bool = True  # the operands have a batch axis N (else they are (C, *spatial))
    in_shape: tuple = ()
    out_shape: tuple = ()
    mask_shape: tuple = ()
    beta_shape: Optional[tuple] = None
    adaptive: bool = False  # adaptive windows: output_size is the pooled (pool) or the input (unpool) size

    @property
    def geometry(self):
        return self.kernel_size, self.stride, self.padding

    @property
    def prefix(self) -> str:
        return "adaptive_" if self.adaptive else ""

    @property
    def pool_args(self) -> tuple:
        """The window arguments of the array-level pooling functions."""
        return (self.output_size,) if self.adaptive else (*self.geometry, self.ceil_mode)

    @property
    def unpool_args(self) -> tuple:
        """The window arguments of the array-level adaUnPool functions."""
        return (self.output_size,) if self.adaptive else (*self.geometry, self.output_size)


# --- vmap: the callbacks see the vmapped axes in front; fold them into N -------------------

def _fold(a, base_shape, batched: bool):
    """(*V, [N,] C, *S) -> (V*N, C, *S): one batched problem for the host function."""
    nv = a.ndim - len(base_shape)
    if nv == 0:
        return a
    return a.reshape((-1,) + tuple(base_shape[1:] if batched else base_shape))


def _vmapped(a, base_shape):
    return tuple(a.shape[: a.ndim - len(base_shape)])


def _fold_beta(beta, cfg: _Config, vmapped):
    """beta (*V, *beta_shape) broadcast to (*V, *out_shape) and folded like x."""
    if not vmapped:
        return beta
    pad = (1,) * (len(cfg.out_shape) - len(cfg.beta_shape))
    full = np.broadcast_to(beta.reshape(vmapped + pad + cfg.beta_shape), vmapped + cfg.out_shape)
    return _fold(full, cfg.out_shape, cfg.batched)


def _unfold_beta_grad(g, cfg: _Config, vmapped):
    """The folded full-shape gradient of beta summed back to (*V, *beta_shape)."""
    if not vmapped:
        return g
    aligned = (1,) * (len(cfg.out_shape) - len(cfg.beta_shape)) + cfg.beta_shape
    return _sum_to_shape(g.reshape(vmapped + cfg.out_shape), vmapped + aligned).reshape(vmapped + cfg.beta_shape)


# --- host functions (NumPy in, NumPy out) --------------------------------------------------

def _host_pool(cfg: _Config, x, beta=None):
    vmapped = _vmapped(x, cfg.in_shape)
    fn = FUNCTIONS[f"{cfg.prefix}{cfg.method}{cfg.d}d"]
    args = (_fold(x, cfg.in_shape, cfg.batched),)
    if beta is not None:
        args += (_fold_beta(beta, cfg, vmapped),)
    out = fn(*args, *cfg.pool_args, cfg.return_mask)
    if cfg.return_mask:
        return out[0].reshape(vmapped + cfg.out_shape), out[1].reshape(vmapped + cfg.mask_shape)
    return out.reshape(vmapped + cfg.out_shape)


def _host_pool_backward(cfg: _Config, grad_y, x, beta=None):
    vmapped = _vmapped(x, cfg.in_shape)
    fn = FUNCTIONS[f"{cfg.prefix}{cfg.method}{cfg.d}d_backward"]
    args = (_fold(grad_y, cfg.out_shape, cfg.batched), _fold(x, cfg.in_shape, cfg.batched))
    if beta is None:
        return fn(*args, *cfg.pool_args, cfg.mode).reshape(vmapped + cfg.in_shape)
    grad_x, grad_beta = fn(*args, _fold_beta(beta, cfg, vmapped), *cfg.pool_args, cfg.mode)
    return grad_x.reshape(vmapped + cfg.in_shape), _unfold_beta_grad(grad_beta, cfg, vmapped)


def _host_pool_backward_w(cfg: _Config, grad_y, grad_w, x, beta=None):
    """``_host_pool_backward`` with the cotangent of the returned weights."""
    vmapped = _vmapped(x, cfg.in_shape)
    fn = FUNCTIONS[f"{cfg.prefix}{cfg.method}{cfg.d}d_backward"]
    args = (_fold(grad_y, cfg.out_shape, cfg.batched), _fold(x, cfg.in_shape, cfg.batched))
    gw = _fold(grad_w, cfg.mask_shape, cfg.batched)
    if beta is None:
        return fn(*args, *cfg.pool_args, cfg.mode, gw).reshape(vmapped + cfg.in_shape)
    grad_x, grad_beta = fn(*args, _fold_beta(beta, cfg, vmapped), *cfg.pool_args, cfg.mode, gw)
    return grad_x.reshape(vmapped + cfg.in_shape), _unfold_beta_grad(grad_beta, cfg, vmapped)


def _host_unpool(cfg: _Config, y, w):
    vmapped = _vmapped(y, cfg.out_shape)
    out = FUNCTIONS[f"{cfg.prefix}adaunpool{cfg.d}d"](
        _fold(y, cfg.out_shape, cfg.batched), _fold(w, cfg.mask_shape, cfg.batched), *cfg.unpool_args, cfg.normalize)
    return out.reshape(vmapped + cfg.in_shape)


def _host_unpool_grads(cfg: _Config, grad_x, y, w):
    """adaUnPool's gradients for y and w."""
    vmapped = _vmapped(y, cfg.out_shape)
    grad_y, grad_w = FUNCTIONS[f"{cfg.prefix}adaunpool{cfg.d}d_backward"](
        _fold(grad_x, cfg.in_shape, cfg.batched), _fold(y, cfg.out_shape, cfg.batched),
        _fold(w, cfg.mask_shape, cfg.batched), *cfg.unpool_args, cfg.normalize, True)
    return grad_y.reshape(vmapped + cfg.out_shape), grad_w.reshape(vmapped + cfg.mask_shape)


def _callback(host, cfg: _Config, result, *args):
    return jax.pure_callback(functools.partial(host, cfg), result, *args, vmap_method="broadcast_all")


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _backward_callback(host, cfg: _Config, result, *args):
    """A backward pass: differentiating it again is the clear error below."""
    return _callback(host, cfg, result, *args)


def _backward_callback_fwd(host, cfg, result, *args):
    return _callback(host, cfg, result, *args), None


def _backward_callback_bwd(host, cfg, result, residuals, cotangent):
    raise NotImplementedError(
        f"adapool_core.jax: higher-order derivatives (the gradient of {cfg.method}{cfg.d}d's gradient) "
        f"are not implemented; differentiate adaPool only once")


_backward_callback.defvjp(_backward_callback_fwd, _backward_callback_bwd)


def _like(shape, a):
    return jax.ShapeDtypeStruct(shape, a.dtype)


# --- custom_vjp functions -------------------------------------------------------------------

def _pool_result(cfg: _Config, x):
    y = _like(cfg.out_shape, x)
    return (y, _like(cfg.mask_shape, x)) if cfg.return_mask else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _pool(cfg: _Config, x, beta):
    args = (x,) if beta is None else (x, beta)
    return _callback(_host_pool, cfg, _pool_result(cfg, x), *args)


def _pool_fwd(cfg, x, beta):
    return _pool(cfg, x, beta), (x, beta)


def _pool_bwd(cfg, residuals, cotangent):
    x, beta = residuals
    if cfg.return_mask:  # the weights are differentiable: their cotangent adds its path
        host, grads = _host_pool_backward_w, tuple(cotangent)
    else:
        host, grads = _host_pool_backward, (cotangent,)
    if beta is None:
        return _backward_callback(host, cfg, _like(x.shape, x), *grads, x), None
    result = (_like(x.shape, x), _like(beta.shape, beta))
    return tuple(_backward_callback(host, cfg, result, *grads, x, beta))


_pool.defvjp(_pool_fwd, _pool_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _unpool(cfg: _Config, y, w):
    return _callback(_host_unpool, cfg, _like(cfg.in_shape, y), y, w)


def _unpool_fwd(cfg, y, w):
    return _unpool(cfg, y, w), (y, w)


def _unpool_bwd(cfg, residuals, grad_x):
    y, w = residuals
    return tuple(_backward_callback(_host_unpool_grads, cfg, (_like(y.shape, y), _like(w.shape, w)), grad_x, y, w))


_unpool.defvjp(_unpool_fwd, _unpool_bwd)


# --- public functions -------------------------------------------------------------------

def _use_xla(implementation) -> bool:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation: expected 'auto', 'xla' or 'callback', got {implementation!r}")
    if implementation == "auto":
        return jax.default_backend() != "cpu"
    return implementation == "xla"


def _pool_call(method: str, d: int, x, beta, kernel_size, stride, padding, ceil_mode, return_mask, mode,
               data_format="channels_first", implementation="auto"):
    check_mode(mode, "mode")
    channels_last = check_data_format(data_format)
    xla = _use_xla(implementation)
    x = jnp.asarray(x)
    if channels_last:
        x = to_channels_first(x, d, jnp)
    geom = pool_geometry(x.shape, d, kernel_size, stride, padding, ceil_mode, f"{method}{d}d")
    if beta is not None:
        beta = jnp.asarray(beta)
        if not jnp.issubdtype(beta.dtype, jnp.floating):
            beta = beta.astype(x.dtype)
        if channels_last and beta.ndim:
            beta = beta.reshape(channels_last_beta_shape(beta.shape, geom))
        beta_strides(tuple(beta.shape), geom)  # the shape check, at trace time
    k, s, p = geom.kernel[3 - d:], geom.stride[3 - d:], geom.padding[3 - d:]
    if xla:
        out_size = geom.out_size[3 - d:]
        pads = _jax_xla.torch_pads(geom.in_size[3 - d:], k, s, p, out_size)
        out = _jax_xla.pool(method, x, beta, k, s, pads, bool(return_mask), mode, out_size)
    else:
        cfg = _Config(method, d, k, s, p, bool(ceil_mode), bool(return_mask), mode, batched=geom.batched,
                      in_shape=geom.in_shape, out_shape=geom.out_shape, mask_shape=geom.mask_shape,
                      beta_shape=None if beta is None else tuple(beta.shape))
        out = _pool(cfg, x, beta)
    if not channels_last:
        return out
    if return_mask:
        return to_channels_last(out[0], d, jnp), to_channels_last(out[1], d, jnp, d)
    return to_channels_last(out, d, jnp)


def _unpool_call(d: int, y, w, kernel_size, stride, padding, output_size, normalize,
                 data_format="channels_first", implementation="auto"):
    check_normalize(normalize)
    channels_last = check_data_format(data_format)
    xla = _use_xla(implementation)
    y, w = jnp.asarray(y), jnp.asarray(w)
    if channels_last:
        y, w = to_channels_first(y, d, jnp), to_channels_first(w, d, jnp, d)
        if output_size is not None and np.ndim(output_size) == 1 and len(output_size) == y.ndim:
            output_size = to_channels_first(np.broadcast_to(False, tuple(output_size)), d, np).shape
    geom = unpool_geometry(y.shape, w.shape, d, kernel_size, stride, padding, output_size, f"adaunpool{d}d")
    k, s, p = geom.kernel[3 - d:], geom.stride[3 - d:], geom.padding[3 - d:]
    if xla:
        in_size, out_size = geom.in_size[3 - d:], geom.out_size[3 - d:]
        out = _jax_xla.unpool(y, w, in_size, k, s, _jax_xla.torch_pads(in_size, k, s, p, out_size), normalize)
    else:
        cfg = _Config("adaunpool", d, k, s, p, output_size=geom.in_size[3 - d:], normalize=normalize,
                      batched=geom.batched, in_shape=geom.in_shape, out_shape=geom.out_shape,
                      mask_shape=geom.mask_shape)
        out = _unpool(cfg, y, w)
    return to_channels_last(out, d, jnp) if channels_last else out


def _shape(d: int, n: int) -> str:
    return ", ".join([str(n)] * d)


def _examples(name: str, d: int) -> str:
    """Doctest lines with jax arrays, under ``jit`` and ``grad``."""
    if name.startswith("adaunpool"):
        return f"""
>>> import jax.numpy as jnp
>>> from adapool_core.jax import adapool{d}d, adaunpool{d}d
>>> y, w = adapool{d}d(jnp.ones((1, 3, {_shape(d, 8)})), 0.5, return_mask=True)
>>> x_hat = adaunpool{d}d(y, w, kernel_size=2, normalize="window")
>>> x_hat.shape
(1, 3, {_shape(d, 8)})
>>> bool(jnp.allclose(x_hat, 1.0))  # "window" gives a constant input back
True
"""
    beta = ", 0.5" if name.startswith("adapool") else ""
    return f"""
>>> import jax
>>> import jax.numpy as jnp
>>> from adapool_core.jax import {name}
>>> x = jnp.ones((1, 3, {_shape(d, 8)}), dtype=jnp.float32)
>>> y = jax.jit({name})(x{beta})
>>> y.shape
(1, 3, {_shape(d, 4)})
>>> grad_x = jax.grad(lambda x: {name}(x{beta}, mode="paper").sum())(x)
>>> grad_x.shape
(1, 3, {_shape(d, 8)})
"""


_PUBLIC = adapter_functions(
    __name__, _pool_call, _unpool_call,
    "JAX: works under ``jit``, ``grad`` (``mode=\"exact\"`` or ``\"paper\"``) and ``vmap``; "
    "``implementation`` picks the XLA or the callback path (module docstring).",
    "JAX: differentiable with respect to ``y`` and ``w`` (both implementations), under ``jit``, ``grad`` "
    "and ``vmap``.",
    array="jax.Array", array_doc="jax.Array", examples=_examples)


# --- adaptive pooling (spec: "Adaptive windows") --------------------------------------------

def _adaptive_pool_call(method: str, d: int, x, beta, output_size, return_mask=False, mode="exact",
                        data_format="channels_first", implementation="auto"):
    check_mode(mode, "mode")
    channels_last = check_data_format(data_format)
    xla = _use_xla(implementation)
    x = jnp.asarray(x)
    if channels_last:
        x = to_channels_first(x, d, jnp)
    geom = adaptive_geometry(x.shape, d, output_size, f"adaptive_{method}{d}d")
    if beta is not None:
        beta = jnp.asarray(beta)
        if not jnp.issubdtype(beta.dtype, jnp.floating):
            beta = beta.astype(x.dtype)
        if channels_last and beta.ndim:
            beta = beta.reshape(channels_last_beta_shape(beta.shape, geom))
        beta_strides(tuple(beta.shape), geom)
    if xla:
        out = _jax_xla.adaptive_pool(method, x, beta, geom.out_size[3 - d:], bool(return_mask), mode)
    else:
        cfg = _Config(method, d, (), (), (), return_mask=bool(return_mask), mode=mode,
                      output_size=geom.out_size[3 - d:], batched=geom.batched, in_shape=geom.in_shape,
                      out_shape=geom.out_shape, mask_shape=geom.mask_shape,
                      beta_shape=None if beta is None else tuple(beta.shape), adaptive=True)
        out = _pool(cfg, x, beta)
    if not channels_last:
        return out
    if return_mask:
        return to_channels_last(out[0], d, jnp), to_channels_last(out[1], d, jnp, d)
    return to_channels_last(out, d, jnp)


def _adaptive_unpool_call(d: int, y, w, input_size, normalize="sum", data_format="channels_first",
                          implementation="auto"):
    check_normalize(normalize)
    channels_last = check_data_format(data_format)
    xla = _use_xla(implementation)
    y, w = jnp.asarray(y), jnp.asarray(w)
    if channels_last:
        y, w = to_channels_first(y, d, jnp), to_channels_first(w, d, jnp, d)
        if input_size is not None and np.ndim(input_size) == 1 and len(input_size) == y.ndim:
            input_size = to_channels_first(np.broadcast_to(False, tuple(input_size)), d, np).shape
    geom = adaptive_unpool_geometry(y.shape, w.shape, d, input_size, f"adaptive_adaunpool{d}d")
    if xla:
        out = _jax_xla.adaptive_unpool(y, w, geom.in_size[3 - d:], normalize)
    else:
        cfg = _Config("adaunpool", d, (), (), (), output_size=geom.in_size[3 - d:], normalize=normalize,
                      batched=geom.batched, in_shape=geom.in_shape, out_shape=geom.out_shape,
                      mask_shape=geom.mask_shape, adaptive=True)
        out = _unpool(cfg, y, w)
    return to_channels_last(out, d, jnp) if channels_last else out


_ADAPTIVE_NOTE = ("JAX: under ``jit``, ``grad`` and ``vmap``; ``implementation`` picks the XLA or the callback "
                  "path (module docstring).")


def _make_adaptive_pool(method: str, d: int):
    if method == "adapool":
        def fn(x: jax.Array, beta: Beta, output_size: AdaptiveSize, return_mask: bool = False,
               mode: GradMode = "exact", *, data_format: DataFormat = "channels_first",
               implementation: Implementation = "auto") -> jax.Array | tuple[jax.Array, jax.Array]:
            return _adaptive_pool_call(method, d, x, beta, output_size, return_mask, mode, data_format,
                                       implementation)
    else:
        def fn(x: jax.Array, output_size: AdaptiveSize, return_mask: bool = False,
               mode: GradMode = "exact", *, data_format: DataFormat = "channels_first",
               implementation: Implementation = "auto") -> jax.Array | tuple[jax.Array, jax.Array]:
            return _adaptive_pool_call(method, d, x, None, output_size, return_mask, mode, data_format,
                                       implementation)
    name = f"adaptive_{method}{d}d"
    beta = ", 0.5" if method == "adapool" else ""
    example = (f">>> import jax.numpy as jnp\n>>> from adapool_core.jax import {name}\n"
               f">>> {name}(jnp.ones((1, 2, {', '.join(['7'] * d)})){beta}, 3).shape\n"
               f"(1, 2, {', '.join(['3'] * d)})\n")
    fn.__doc__ = adaptive_doc("pool", method, d, "jax.Array", example, _ADAPTIVE_NOTE, implementation=True)
    return name, fn


def _make_adaptive_unpool(d: int):
    def fn(y: jax.Array, w: jax.Array, input_size: Size, normalize: Normalize = "sum", *,
           data_format: DataFormat = "channels_first", implementation: Implementation = "auto") -> jax.Array:
        return _adaptive_unpool_call(d, y, w, input_size, normalize, data_format, implementation)
    name = f"adaptive_adaunpool{d}d"
    fn.__doc__ = adaptive_doc("unpool", "", d, "jax.Array", (
        f">>> import jax.numpy as jnp\n>>> from adapool_core.jax import adaptive_adapool{d}d, {name}\n"
        f">>> y, w = adaptive_adapool{d}d(jnp.ones((1, 2, {', '.join(['7'] * d)})), 0.5, 3, return_mask=True)\n"
        f">>> {name}(y, w, {(7,) * d}).shape\n(1, 2, {', '.join(['7'] * d)})\n"), implementation=True)
    return name, fn


def _adaptive_functions() -> dict:
    table = {}
    for d in (1, 2, 3):
        made = dict(_make_adaptive_pool(method, d) for method in ("adapool", "edscwpool", "empool", "idwpool"))
        made.update([_make_adaptive_unpool(d)])
        for name, fn in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = __name__
            table[name] = fn
        table[f"adaptive_softpool{d}d"] = table[f"adaptive_empool{d}d"]
    return table


_PUBLIC.update(_adaptive_functions())
globals().update(_PUBLIC)
__all__ = sorted(_PUBLIC)
