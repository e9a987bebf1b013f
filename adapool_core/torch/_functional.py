"""The private implementations behind every public function and module,
and the generated public functions (``adapool2d``, ``adaunpool3d``, ...).

Paths: eager and ``torch.compile``/``torch.export`` call the custom ops
(``_custom_ops``); ONNX export and ``torch.func`` transforms call the
plain-torch composite (``_composite``), which both can trace.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from .._adapters import DEFAULT_MODE, resolve_mode
from .._api import FUNCTIONS, METHODS, RANKS
from .._geometry import (beta_strides, channels_last_beta_shape, check_data_format, check_mode, check_normalize,
                         pool_geometry, to_channels_first, to_channels_last, unpool_geometry)
from .._typing import DataFormat, GradMode, Normalize, Size
from . import _composite
from ._custom_ops import is_static, pool_op, unpool_op



def use_composite() -> bool:
    """Whether the caller traces for ONNX or runs under a ``torch.func`` transform."""
    return torch.onnx.is_in_onnx_export() or torch._C._functorch.peek_interpreter_stack() is not None


def _ints(value, d: int) -> list:
    """int-or-sequence as the ops' int list (validated by ``_geometry`` before)."""
    return [value] * d if isinstance(value, int) else list(value)


def _check_tensor(value, name: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")


def channels_first(t: Tensor, d: int, trailing: int = 0) -> Tensor:
    """A channels-last tensor as a channels-first view (``_geometry.to_channels_first`` on torch)."""
    return to_channels_first(t, d, torch, trailing)


def channels_last(t: Tensor, d: int, trailing: int = 0) -> Tensor:
    """The inverse of :func:`channels_first` (a view)."""
    return to_channels_last(t, d, torch, trailing)


def pooled_channels_last(out, d: int, return_mask: bool):
    """A channels-first pooling's ``y``, or ``(y, w)`` with ``return_mask``, as channels-last views."""
    return (channels_last(out[0], d), channels_last(out[1], d, d)) if return_mask else channels_last(out, d)


def layer_call(pool_call, x: Tensor, d: int, data_format: str, return_mask: bool):
    """``pool_call(x)`` in a layer's layout: channels last, ``x`` goes in as channels
    first (so a layer's channels-first ``beta`` applies as it is) and the results come back."""
    if data_format != "channels_last":
        return pool_call(x)
    return pooled_channels_last(pool_call(channels_first(x, d)), d, return_mask)


def pool(method: str, d: int, x: Tensor, beta, kernel_size, stride, padding, ceil_mode, return_mask, mode,
         data_format: str = "channels_first"):
    """The pooling of every torch function and layer; ``data_format="channels_last"`` transposes around it
    (views: autograd carries the gradient through the transposes)."""
    _check_tensor(x, "x")
    if check_data_format(data_format):
        x_cl, x = x, channels_first(x, d)
        if isinstance(beta, Tensor) and 0 < beta.dim() <= x.dim():
            if not torch.compiler.is_compiling() and is_static(x.shape):  # the array level's message
                geom = pool_geometry(tuple(x.shape), d, kernel_size, stride, padding, ceil_mode, f"{method}{d}d")
                channels_last_beta_shape(tuple(beta.shape), geom)
            # Broadcast like the channels-last output (N, *O, C), then channels first.
            beta = channels_first(beta.reshape((1,) * (x_cl.dim() - beta.dim()) + tuple(beta.shape)), d)
        out = pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask, mode)
        return pooled_channels_last(out, d, return_mask)
    if method == "adapool" and not isinstance(beta, Tensor):
        beta = torch.as_tensor(beta, dtype=x.dtype, device=x.device)
    if not torch.compiler.is_compiling() and is_static(x.shape):
        # Eager: every check of _geometry before any work.  Traced: the fake
        # implementation checks what it can (plain sizes) while tracing.
        check_mode(mode, "mode")
        geom = pool_geometry(tuple(x.shape), d, kernel_size, stride, padding, ceil_mode, f"{method}{d}d")
        if beta is not None:
            beta_strides(tuple(beta.shape), geom)
    k = _ints(kernel_size, d)
    s = k if stride is None else _ints(stride, d)
    args = (x, beta, k, s, _ints(padding, d), bool(ceil_mode))
    if use_composite():
        return _composite.pool(method, d, *args, bool(return_mask), mode)
    y, w = pool_op(x, beta, method, d, *args[2:], bool(return_mask), mode)
    return (y, w) if return_mask else y


def unpool(d: int, y: Tensor, w: Tensor, kernel_size, stride, padding, output_size, normalize,
           data_format: str = "channels_first"):
    """The adaUnPool of every torch function and layer (``data_format`` as in :func:`pool`)."""
    _check_tensor(y, "y")
    _check_tensor(w, "w")
    if check_data_format(data_format):
        if output_size is not None and len(output_size) == y.dim():  # a full shape: its channels first
            sizes = list(output_size)
            output_size = sizes[:-1 - d] + sizes[-1:] + sizes[-1 - d:-1]
        out = unpool(d, channels_first(y, d), channels_first(w, d, d), kernel_size, stride, padding, output_size,
                     normalize)
        return channels_last(out, d)
    size = None if output_size is None else _ints(output_size, d)
    if not torch.compiler.is_compiling() and is_static(y.shape) and (size is None or is_static(size)):
        check_normalize(normalize)
        unpool_geometry(tuple(y.shape), tuple(w.shape), d, kernel_size, stride, padding, output_size,
                        f"adaunpool{d}d")
    k = _ints(kernel_size, d)
    s = k if stride is None else _ints(stride, d)
    if use_composite():
        return _composite.unpool(d, y, w, k, s, _ints(padding, d), size, normalize)
    return unpool_op(y, w, d, k, s, _ints(padding, d), size, normalize)


# --- generated public functions ------------------------------------------------------------

_POOL_PARAMETERS = """    x : Tensor
        ``(N, C, *L)`` or unbatched ``(C, *L)``, ``len(L) == {d}``, floating dtype, CPU or CUDA.
{beta}    kernel_size : int or tuple of {d} ints, default 2
    stride : int or tuple of {d} ints, optional
        Default: ``kernel_size``.
    padding : int or tuple of {d} ints, default 0
        At most ``kernel_size // 2``; padding cells are not window members (windows are clipped).
    ceil_mode : bool, default False
        PyTorch's ``ceil_mode``.
    return_mask : bool, default False
        Also return the window weights (no gradient), for ``adaunpool{d}d``.
    mode : {{"exact", "paper"}}, default "exact"
        The gradient: the true derivative, or the paper's (weights held constant).
    grad : str, optional
        Deprecated alias of ``mode`` (DeprecationWarning); giving both is a TypeError.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only.  ``"channels_last"``: ``x`` is ``(N, *L, C)``, the output ``(N, *O, C)``, the
        weights ``(N, *O, *kernel_size, C)``, and ``beta`` broadcasts to ``(N, *O, C)`` (per location
        ``(*O, 1)``, per channel ``(1, ..., 1, C)``).  Transposed views around the channels-first
        computation: autograd carries the gradient through."""
_BETA = """    beta : Tensor or float
        Blend ``clamp(beta, 0, 1) * eDSCW + (1 - clamp(beta, 0, 1)) * eM``; broadcasts to the output
        shape: one value per output location ``O``, a scalar, ``(C, 1, ...)`` or the full shape.
"""
_SHAPE = """    Shape
    -----
    Output ``(N, C, *O)`` with ``O = floor((L + 2*padding - kernel_size) / stride) + 1`` per dim
    (``ceil`` with ``ceil_mode``, minus one if the last window would start in the right padding);
    weights ``(N, C, *O, *kernel_size)``."""


def _pool_function(method: str, d: int):
    name = f"{method}{d}d"
    if method == "adapool":
        def fn(x: Tensor, beta: Union[Tensor, float], kernel_size: Size = 2, stride: Optional[Size] = None,
               padding: Size = 0, ceil_mode: bool = False, return_mask: bool = False,
               mode: GradMode = DEFAULT_MODE, *, grad: Optional[GradMode] = None,
               data_format: DataFormat = "channels_first") -> Tensor | tuple[Tensor, Tensor]:
            return pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name), data_format)
        call = f"{name}(x, 0.5, 2)"
    else:
        def fn(x: Tensor, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, return_mask: bool = False, mode: GradMode = DEFAULT_MODE, *,
               grad: Optional[GradMode] = None,
               data_format: DataFormat = "channels_first") -> Tensor | tuple[Tensor, Tensor]:
            return pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name), data_format)
        call = f"{name}(x, 2)"
    summary = (FUNCTIONS[name].__doc__ or "").strip().splitlines()[0]
    fn.__doc__ = f"""{summary}

    PyTorch: differentiable (``mode``), ``torch.compile``/``torch.export`` with dynamic sizes,
    ONNX export and ``torch.func`` transforms (through the plain-torch composite).

    Parameters
    ----------
{_POOL_PARAMETERS.format(d=d, beta=_BETA if method == "adapool" else "")}

    Returns
    -------
    Tensor or (Tensor, Tensor)
        ``y``, or ``(y, w)`` with ``return_mask=True``.

{_SHAPE}

    Raises
    ------
    TypeError
        ``x`` not a tensor or not floating; ``mode`` and ``grad`` both given.
    ValueError
        Wrong rank, kernel larger than the padded input, padding > kernel_size // 2, bad ``beta``
        shape, unknown ``mode`` or ``data_format``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import {name}
    >>> x = torch.rand(1, 3, {", ".join(["8"] * d)})
    >>> {call}.shape
    torch.Size([1, 3, {", ".join(["4"] * d)}])
    """
    return name, fn


def _unpool_function(d: int):
    name = f"adaunpool{d}d"

    def fn(y: Tensor, w: Tensor, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
           output_size: Optional[Sequence[int]] = None, normalize: Normalize = "sum", *,
           data_format: DataFormat = "channels_first") -> Tensor:
        return unpool(d, y, w, kernel_size, stride, padding, output_size, normalize, data_format)

    fn.__doc__ = f"""adaUnPool: ``x_hat_i = sum over windows r containing i of y_r * w_(r,i)``.

    PyTorch: differentiable with respect to ``y`` (twice: it is linear in ``y``).

    Parameters
    ----------
    y, w : Tensor
        From a {d}-D pooling with ``return_mask=True``: ``(N, C, *O)`` and ``(N, C, *O, *kernel_size)``.
    kernel_size, stride, padding : int or tuple of {d} ints
        Those of the pooling.
    output_size : sequence of int, optional
        The unpooled spatial size (or full shape); default: the smallest that pools to ``O``.
    normalize : {{"sum", "window"}}, default "sum"
        ``"window"`` scales each term by its window's cell count over the cell's cover count.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only.  ``"channels_last"``: ``y`` ``(N, *O, C)``, ``w`` ``(N, *O, *kernel_size, C)``,
        the result ``(N, *L, C)``.

    Returns
    -------
    Tensor
        ``(N, C, *L)``.

    Shape
    -----
    ``L = (O - 1) * stride + kernel_size - 2 * padding`` per dim unless ``output_size`` is given.

    Raises
    ------
    TypeError
        ``y`` or ``w`` not a tensor.
    ValueError
        ``w`` of a wrong shape, an ``output_size`` that does not pool to ``O``, unknown ``normalize``
        or ``data_format``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import adapool{d}d, {name}
    >>> y, w = adapool{d}d(torch.rand(1, 3, {", ".join(["8"] * d)}), 0.5, 2, return_mask=True)
    >>> {name}(y, w, 2).shape
    torch.Size([1, 3, {", ".join(["8"] * d)}])
    """
    return name, fn


def public_functions(module: str) -> dict:
    """``{name: function}``: every pooling, adaUnPool and the ``softpool`` aliases."""
    table = {}
    for d in RANKS:
        made = dict(_pool_function(method, d) for method in METHODS)
        made.update([_unpool_function(d)])
        for name, fn in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = module
            table[name] = fn
        table[f"softpool{d}d"] = table[f"empool{d}d"]
    return table
