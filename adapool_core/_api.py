"""The public functions: one per method, rank and direction, each a thin
wrapper that names itself and forwards to ``_ops``.

Their annotations (names from ``_typing``) are what ``python -m
adapool_core._stubgen`` writes into the committed ``__init__.pyi``.
"""
from __future__ import annotations

from typing import Optional

from . import _ops
from ._docs import adaptive_doc, pool_backward_doc, pool_doc, unpool_backward_doc, unpool_doc
from ._typing import AdaptiveSize, ArrayT, Beta, DataFormat, GradMode, Normalize, Size

METHODS = ("adapool", "edscwpool", "empool", "idwpool")
RANKS = (1, 2, 3)


def _shape(d: int, n: int) -> str:
    return ", ".join([str(n)] * d)


def _pool_examples(method: str, d: int) -> str:
    name = f"{method}{d}d"
    beta = ", 0.5" if method == "adapool" else ""
    return f"""
>>> import numpy as np
>>> from adapool_core import {name}
>>> x = np.ones((1, 3, {_shape(d, 8)}), dtype=np.float32)
>>> y = {name}(x{beta})
>>> y.shape
(1, 3, {_shape(d, 4)})
>>> bool(np.allclose(y, 1.0))  # a constant window pools to its value
True
>>> y, w = {name}(x{beta}, kernel_size=2, return_mask=True)
>>> w.shape
(1, 3, {_shape(d, 4)}, {_shape(d, 2)})
"""


def _pool_backward_examples(method: str, d: int) -> str:
    fwd = f"{method}{d}d"
    if method == "adapool":
        return f"""
>>> import numpy as np
>>> from adapool_core import {fwd}, {fwd}_backward
>>> x = np.random.default_rng(0).standard_normal((1, 2, {_shape(d, 8)}))
>>> beta = np.full(({_shape(d, 4)}), 0.5)
>>> y = {fwd}(x, beta)
>>> grad_x, grad_beta = {fwd}_backward(np.ones_like(y), x, beta, mode="exact")
>>> grad_x.shape, grad_beta.shape
((1, 2, {_shape(d, 8)}), ({_shape(d, 4)}{"," if d == 1 else ""}))
"""
    return f"""
>>> import numpy as np
>>> from adapool_core import {fwd}, {fwd}_backward
>>> x = np.random.default_rng(0).standard_normal((1, 2, {_shape(d, 8)}))
>>> y = {fwd}(x)
>>> grad_x = {fwd}_backward(np.ones_like(y), x, mode="paper")
>>> grad_x.shape
(1, 2, {_shape(d, 8)})
"""


def _unpool_examples(d: int) -> str:
    return f"""
>>> import numpy as np
>>> from adapool_core import adapool{d}d, adaunpool{d}d
>>> x = np.ones((1, 3, {_shape(d, 8)}), dtype=np.float32)
>>> y, w = adapool{d}d(x, 0.5, return_mask=True)
>>> x_hat = adaunpool{d}d(y, w, kernel_size=2, normalize="window")
>>> x_hat.shape
(1, 3, {_shape(d, 8)})
>>> bool(np.allclose(x_hat, 1.0))  # "window" gives a constant input back
True
"""


def _unpool_backward_examples(d: int) -> str:
    return f"""
>>> import numpy as np
>>> from adapool_core import adapool{d}d, adaunpool{d}d_backward
>>> y, w = adapool{d}d(np.ones((1, 3, {_shape(d, 8)}), dtype=np.float32), 0.5, return_mask=True)
>>> grad_y = adaunpool{d}d_backward(np.ones((1, 3, {_shape(d, 8)}), dtype=np.float32), y, w, kernel_size=2)
>>> grad_y.shape
(1, 3, {_shape(d, 4)})
"""


def _make_pool(method: str, d: int):
    name = f"{method}{d}d"
    if method == "adapool":
        def fn(x: ArrayT, beta: Beta, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, return_mask: bool = False, *,
               data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
            return _ops.pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask,
                             data_format, func=name)
    else:
        def fn(x: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, return_mask: bool = False, *,
               data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
            return _ops.pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask,
                             data_format, func=name)
    fn.__doc__ = pool_doc(method, d, "array", _pool_examples(method, d))
    return name, fn


def _make_pool_backward(method: str, d: int):
    name = f"{method}{d}d_backward"
    fwd = f"{method}{d}d"
    if method == "adapool":
        def fn(grad_out: ArrayT, x: ArrayT, beta: Beta, kernel_size: Size = 2, stride: Optional[Size] = None,
               padding: Size = 0, ceil_mode: bool = False, mode: GradMode = "exact",
               grad_w: Optional[ArrayT] = None, *,
               data_format: DataFormat = "channels_first") -> tuple[ArrayT, ArrayT]:
            return _ops.pool_backward(method, d, grad_out, x, beta, kernel_size, stride, padding, ceil_mode,
                                      mode, data_format, grad_w, func=fwd)
    else:
        def fn(grad_out: ArrayT, x: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None,
               padding: Size = 0, ceil_mode: bool = False, mode: GradMode = "exact",
               grad_w: Optional[ArrayT] = None, *,
               data_format: DataFormat = "channels_first") -> ArrayT:
            return _ops.pool_backward(method, d, grad_out, x, None, kernel_size, stride, padding, ceil_mode,
                                      mode, data_format, grad_w, func=fwd)
    fn.__doc__ = pool_backward_doc(method, d, "array", _pool_backward_examples(method, d))
    return name, fn


def _make_unpool(d: int):
    name = f"adaunpool{d}d"

    def fn(y: ArrayT, w: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
           output_size: Optional[Size] = None, normalize: Normalize = "sum", *,
           data_format: DataFormat = "channels_first") -> ArrayT:
        return _ops.unpool(d, y, w, kernel_size, stride, padding, output_size, normalize, data_format,
                           func=name)

    fn.__doc__ = unpool_doc(d, "array", _unpool_examples(d))
    return name, fn


def _make_unpool_backward(d: int):
    name = f"adaunpool{d}d_backward"
    fwd = f"adaunpool{d}d"

    def fn(grad_out: ArrayT, y: ArrayT, w: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None,
           padding: Size = 0, output_size: Optional[Size] = None, normalize: Normalize = "sum",
           return_grad_w: bool = False, *,
           data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
        return _ops.unpool_backward(d, grad_out, y, w, kernel_size, stride, padding, output_size, normalize,
                                    data_format, return_grad_w, func=fwd)

    fn.__doc__ = unpool_backward_doc(d, "array", _unpool_backward_examples(d))
    return name, fn


def _build(prefix: str, pool_makers, unpool_makers, table: dict) -> dict:
    """Add every function that the makers make (name prefix ``prefix``), for every
    method and rank, and the ``softpool`` aliases of ``empool``, to ``table``."""
    for d in RANKS:
        for method in METHODS:
            for make in pool_makers:
                name, fn = make(method, d)
                table[name] = fn
        for make in unpool_makers:
            name, fn = make(d)
            table[name] = fn
        table[f"{prefix}softpool{d}d"] = table[f"{prefix}empool{d}d"]
        table[f"{prefix}softpool{d}d_backward"] = table[f"{prefix}empool{d}d_backward"]
    for name, fn in table.items():
        if fn.__name__ == "fn":
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = "adapool_core"
    return table


# --- adaptive pooling (spec: "Adaptive windows") ---------------------------------------------

def _adaptive_pool_examples(method: str, d: int) -> str:
    name = f"adaptive_{method}{d}d"
    beta = ", 0.5" if method == "adapool" else ""
    return f"""
>>> import numpy as np
>>> from adapool_core import {name}, {name}_backward
>>> x = np.random.default_rng(0).standard_normal((1, 2, {_shape(d, 7)}))
>>> y, w = {name}(x{beta}, 3, return_mask=True)
>>> y.shape, w.shape
((1, 2, {_shape(d, 3)}), (1, 2, {_shape(d, 3)}, {_shape(d, 3)}))
>>> g = {name}_backward(np.ones_like(y), x{beta}, 3)
>>> (g[0] if isinstance(g, tuple) else g).shape
(1, 2, {_shape(d, 7)})
"""


def _make_adaptive_pool(method: str, d: int):
    name = f"adaptive_{method}{d}d"
    if method == "adapool":
        def fn(x: ArrayT, beta: Beta, output_size: AdaptiveSize, return_mask: bool = False, *,
               data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
            return _ops.pool(method, d, x, beta, output_size, None, 0, False, return_mask, data_format,
                             func=name, adaptive=True)
    else:
        def fn(x: ArrayT, output_size: AdaptiveSize, return_mask: bool = False, *,
               data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
            return _ops.pool(method, d, x, None, output_size, None, 0, False, return_mask, data_format,
                             func=name, adaptive=True)
    fn.__doc__ = adaptive_doc("pool", method, d, "array", _adaptive_pool_examples(method, d))
    return name, fn


def _make_adaptive_pool_backward(method: str, d: int):
    name = f"adaptive_{method}{d}d_backward"
    fwd = f"adaptive_{method}{d}d"
    if method == "adapool":
        def fn(grad_out: ArrayT, x: ArrayT, beta: Beta, output_size: AdaptiveSize, mode: GradMode = "exact",
               grad_w: Optional[ArrayT] = None, *,
               data_format: DataFormat = "channels_first") -> tuple[ArrayT, ArrayT]:
            return _ops.pool_backward(method, d, grad_out, x, beta, output_size, None, 0, False, mode,
                                      data_format, grad_w, func=fwd, adaptive=True)
    else:
        def fn(grad_out: ArrayT, x: ArrayT, output_size: AdaptiveSize, mode: GradMode = "exact",
               grad_w: Optional[ArrayT] = None, *,
               data_format: DataFormat = "channels_first") -> ArrayT:
            return _ops.pool_backward(method, d, grad_out, x, None, output_size, None, 0, False, mode,
                                      data_format, grad_w, func=fwd, adaptive=True)
    fn.__doc__ = adaptive_doc("backward", method, d, "array", _adaptive_pool_examples(method, d))
    return name, fn


def _adaptive_unpool_examples(d: int) -> str:
    return f"""
>>> import numpy as np
>>> from adapool_core import adaptive_adapool{d}d, adaptive_adaunpool{d}d, adaptive_adaunpool{d}d_backward
>>> x = np.ones((1, 2, {_shape(d, 7)}))
>>> y, w = adaptive_adapool{d}d(x, 0.5, 3, return_mask=True)
>>> x_hat = adaptive_adaunpool{d}d(y, w, {d * (7,)}, normalize="window")
>>> bool(np.allclose(x_hat, 1.0))  # "window" gives a constant input back
True
>>> grad_y, grad_w = adaptive_adaunpool{d}d_backward(x, y, w, {d * (7,)}, return_grad_w=True)
>>> grad_y.shape == y.shape and grad_w.shape == w.shape
True
"""


def _make_adaptive_unpool(d: int):
    name = f"adaptive_adaunpool{d}d"

    def fn(y: ArrayT, w: ArrayT, input_size: Size, normalize: Normalize = "sum", *,
           data_format: DataFormat = "channels_first") -> ArrayT:
        return _ops.unpool(d, y, w, None, None, 0, input_size, normalize, data_format, func=name, adaptive=True)

    fn.__doc__ = adaptive_doc("unpool", "", d, "array", _adaptive_unpool_examples(d))
    return name, fn


def _make_adaptive_unpool_backward(d: int):
    name = f"adaptive_adaunpool{d}d_backward"
    fwd = f"adaptive_adaunpool{d}d"

    def fn(grad_out: ArrayT, y: ArrayT, w: ArrayT, input_size: Optional[Size] = None, normalize: Normalize = "sum",
           return_grad_w: bool = False, *,
           data_format: DataFormat = "channels_first") -> ArrayT | tuple[ArrayT, ArrayT]:
        return _ops.unpool_backward(d, grad_out, y, w, None, None, 0, input_size, normalize, data_format,
                                    return_grad_w, func=fwd, adaptive=True)

    fn.__doc__ = adaptive_doc("unpool_backward", "", d, "array", _adaptive_unpool_examples(d))
    return name, fn


FUNCTIONS = _build("", (_make_pool, _make_pool_backward), (_make_unpool, _make_unpool_backward), {})
_build("adaptive_", (_make_adaptive_pool, _make_adaptive_pool_backward),
       (_make_adaptive_unpool, _make_adaptive_unpool_backward), FUNCTIONS)
