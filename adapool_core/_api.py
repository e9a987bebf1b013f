"""The public functions: one per method, rank and direction, each a thin
wrapper that names itself and forwards to ``_ops``."""
from __future__ import annotations

from . import _ops

METHODS = ("adapool", "edscwpool", "empool", "idwpool")
RANKS = (1, 2, 3)

_SHAPES = """
    Shapes (PyTorch's rule, per spatial dim): ``x`` is ``(N, C, *L)`` or
    unbatched ``(C, *L)`` (``data_format="channels_last"``: ``(N, *L, C)``, and
    every result and weight in that layout too); the output is ``(N, C, *O)`` with
    ``O = floor((L + 2p - k) / s) + 1`` (``ceil`` with ``ceil_mode``, minus one
    if the last window would start in the right padding).  Padding cells are
    not part of a window: windows are clipped to the input."""

_POOL_DOC = {
    "adapool": "adaPool: ``clamp(beta, 0, 1) * eDSCW + (1 - clamp(beta, 0, 1)) * eM`` per window.",
    "edscwpool": "eDSCW pooling: weights ``softmax(dsc(x_i, mean))`` (Dice-Sorensen to the window mean).",
    "empool": "eM pooling (SoftPool): weights ``softmax(x_i)``.",
    "idwpool": "IDW pooling: weights proportional to ``1 / |x_i - mean|``.",
}


def _make_pool(method: str, d: int):
    name = f"{method}{d}d"
    if method == "adapool":
        def fn(x, beta, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False,
               data_format="channels_first"):
            return _ops.pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask,
                             data_format, func=name)
    else:
        def fn(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False,
               data_format="channels_first"):
            return _ops.pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask,
                             data_format, func=name)
    example = "np.random.rand(1, 3, " + ", ".join(["8"] * d) + ").astype(np.float32)"
    call = f"{name}(x, 0.5)" if method == "adapool" else f"{name}(x)"
    fn.__doc__ = f"""{_POOL_DOC[method]}

    {d}-D pooling of ``x`` with ``kernel_size``, ``stride`` (default: kernel_size),
    ``padding`` (at most kernel_size // 2) and ``ceil_mode``, as in PyTorch.
{_SHAPES}
    {"``beta`` broadcasts to the output shape: one value per output location ``O``, a scalar, ``(C, 1, ...)`` or the full shape." if method == "adapool" else ""}
    With ``return_mask=True`` returns ``(y, w)``, ``w`` of shape ``(*y.shape, *kernel_size)``
    holding each window cell's weight (0 outside the input), for ``adaunpool{d}d``.

    Example::

        >>> import numpy as np
        >>> from adapool_core import {name}
        >>> x = {example}
        >>> {call}.shape
        (1, 3, {", ".join(["4"] * d)})
    """
    return name, fn


def _make_pool_backward(method: str, d: int):
    name = f"{method}{d}d_backward"
    fwd = f"{method}{d}d"
    if method == "adapool":
        def fn(grad_out, x, beta, kernel_size=2, stride=None, padding=0, ceil_mode=False, mode="exact",
               data_format="channels_first"):
            return _ops.pool_backward(method, d, grad_out, x, beta, kernel_size, stride, padding, ceil_mode,
                                      mode, data_format, func=fwd)
        returns = "``(grad_x, grad_beta)``; ``grad_beta`` has beta's shape (summed over broadcast dims)"
    else:
        def fn(grad_out, x, kernel_size=2, stride=None, padding=0, ceil_mode=False, mode="exact",
               data_format="channels_first"):
            return _ops.pool_backward(method, d, grad_out, x, None, kernel_size, stride, padding, ceil_mode,
                                      mode, data_format, func=fwd)
        returns = "``grad_x``"
    fn.__doc__ = f"""Gradient of ``{fwd}``: returns {returns}.

    ``mode="exact"`` (default) is the true derivative (through the mean and the
    weights); ``mode="paper"`` treats the weights as constants, as the paper's
    reference implementation does.  Arguments as for ``{fwd}``.
    """
    return name, fn


def _make_unpool(d: int):
    name = f"adaunpool{d}d"

    def fn(y, w, kernel_size=2, stride=None, padding=0, output_size=None, normalize="sum",
           data_format="channels_first"):
        return _ops.unpool(d, y, w, kernel_size, stride, padding, output_size, normalize, data_format,
                           func=name)

    fn.__doc__ = f"""adaUnPool: ``x_hat_i = sum over windows r containing i of y_r * w_(r,i)``.

    ``y`` and ``w`` come from a {d}-D pooling with ``return_mask=True`` and the same
    ``kernel_size``, ``stride`` and ``padding``.  ``output_size`` (spatial, or with
    leading dims) picks the unpooled size where several pool to ``y``'s (as in
    PyTorch's MaxUnpool); default: the smallest.  ``normalize="window"``
    scales each term by its window's cell count and divides by the number of
    windows covering the cell, so a constant input comes back on every covered
    cell (exactly up to the rounding of the weights, a few ulp); cells no
    window covers are 0.
    """
    return name, fn


def _make_unpool_backward(d: int):
    name = f"adaunpool{d}d_backward"
    fwd = f"adaunpool{d}d"

    def fn(grad_out, y, w, kernel_size=2, stride=None, padding=0, output_size=None, normalize="sum",
           data_format="channels_first"):
        return _ops.unpool_backward(d, grad_out, y, w, kernel_size, stride, padding, output_size, normalize,
                                    data_format, func=fwd)

    fn.__doc__ = f"""Gradient of ``{fwd}`` with respect to ``y`` (weights held constant).

    Without ``output_size`` the unpooled size is ``grad_out``'s (checked against ``y``).
    """
    return name, fn


def _build():
    table = {}
    for d in RANKS:
        for method in METHODS:
            for make in (_make_pool, _make_pool_backward):
                name, fn = make(method, d)
                table[name] = fn
        for make in (_make_unpool, _make_unpool_backward):
            name, fn = make(d)
            table[name] = fn
        table[f"softpool{d}d"] = table[f"empool{d}d"]
        table[f"softpool{d}d_backward"] = table[f"empool{d}d_backward"]
    for name, fn in table.items():
        if fn.__name__ == "fn":
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = "adapool_core"
    return table


FUNCTIONS = _build()
