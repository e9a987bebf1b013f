"""Adaptive pooling in the torch adapter (spec: "Adaptive windows"): custom ops
over the array-level ``adaptive_*`` functions, the public functions
``adaptive_{method}{d}d`` / ``adaptive_adaunpool{d}d`` and the modules
``Adaptive{Method}Pool{d}d``, drop-in for ``nn.AdaptiveAvgPool{d}d``.

The weights from ``return_mask=True`` are differentiable, as for the regular
windows.  Eager and static shapes only: the weights' last dims (the longest
window) depend on the sizes' values, so these ops do not trace with symbolic
sizes.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn
from torch.nn.parameter import UninitializedParameter
from torch.nn.modules.lazy import LazyModuleMixin

from .._api import FUNCTIONS, METHODS, RANKS
from .._typing import AdaptiveSize, DataFormat
from .._geometry import (adaptive_geometry, adaptive_unpool_geometry, channels_last_beta_shape, check_data_format,
                         check_mode, check_normalize)
from ._functional import channels_first, channels_last, layer_call, pooled_channels_last
from ._custom_ops import _DOUBLE_BACKWARD, launch_scope

_CLASS_NAMES = {"adapool": "AdaPool", "edscwpool": "EDSCWPool", "empool": "EMPool", "idwpool": "IDWPool"}


@torch.library.custom_op("adapool_core::adaptive_pool", mutates_args=())
def adaptive_pool_op(x: Tensor, beta: Optional[Tensor], method: str, d: int, output_size: list[int],
                     return_mask: bool, mode: str) -> tuple[Tensor, Tensor]:
    args = (x,) if beta is None else (x, beta)
    with launch_scope(x.device):
        out = FUNCTIONS[f"adaptive_{method}{d}d"](*args, output_size, return_mask)
    return out if return_mask else (out, x.new_empty(0))


@adaptive_pool_op.register_fake
def _adaptive_pool_fake(x, beta, method, d, output_size, return_mask, mode):
    geom = adaptive_geometry(tuple(x.shape), d, output_size, f"adaptive_{method}{d}d")
    return x.new_empty(geom.out_shape), x.new_empty(geom.mask_shape if return_mask else (0,))


@torch.library.custom_op("adapool_core::adaptive_pool_backward", mutates_args=())
def adaptive_pool_backward_op(grad_out: Tensor, x: Tensor, beta: Optional[Tensor], method: str, d: int,
                              output_size: list[int], mode: str, grad_w: Optional[Tensor]) -> tuple[Tensor, Tensor]:
    backward = FUNCTIONS[f"adaptive_{method}{d}d_backward"]
    with launch_scope(x.device):
        if beta is None:
            return backward(grad_out, x, output_size, mode, grad_w), x.new_empty(0)
        return backward(grad_out, x, beta, output_size, mode, grad_w)


@adaptive_pool_backward_op.register_fake
def _adaptive_pool_backward_fake(grad_out, x, beta, method, d, output_size, mode, grad_w):
    return torch.empty_like(x, memory_format=torch.contiguous_format), (
        x.new_empty(0) if beta is None else torch.empty_like(beta, memory_format=torch.contiguous_format))


def _pool_setup(ctx, inputs, output):
    x, beta, method, d, output_size, return_mask, mode = inputs
    if not return_mask:
        ctx.mark_non_differentiable(output[1])
    ctx.return_mask = return_mask
    ctx.save_for_backward(x, beta)
    ctx.config = (method, d, output_size, mode)


def _pool_autograd(ctx, grad_y, grad_w):
    x, beta = ctx.saved_tensors
    grad_x, grad_beta = adaptive_pool_backward_op(grad_y, x, beta, *ctx.config, grad_w if ctx.return_mask else None)
    return grad_x, (None if beta is None else grad_beta), None, None, None, None, None


def _no_double_backward(ctx, *grads):
    raise RuntimeError(_DOUBLE_BACKWARD.format(op="adapool_core::adaptive_pool"))


torch.library.register_autograd("adapool_core::adaptive_pool_backward", _no_double_backward)


@torch.library.custom_op("adapool_core::adaptive_unpool", mutates_args=())
def adaptive_unpool_op(y: Tensor, w: Tensor, d: int, input_size: list[int], normalize: str) -> Tensor:
    with launch_scope(y.device):
        return FUNCTIONS[f"adaptive_adaunpool{d}d"](y, w, input_size, normalize)


@adaptive_unpool_op.register_fake
def _adaptive_unpool_fake(y, w, d, input_size, normalize):
    return y.new_empty(tuple(y.shape[:-d]) + tuple(input_size))


@torch.library.custom_op("adapool_core::adaptive_unpool_grads", mutates_args=())
def adaptive_unpool_grads_op(grad_out: Tensor, y: Tensor, w: Tensor, d: int, input_size: list[int],
                             normalize: str) -> tuple[Tensor, Tensor]:
    with launch_scope(y.device):
        return FUNCTIONS[f"adaptive_adaunpool{d}d_backward"](grad_out, y, w, input_size, normalize, True)


@adaptive_unpool_grads_op.register_fake
def _adaptive_unpool_grads_fake(grad_out, y, w, d, input_size, normalize):
    return (torch.empty_like(y, memory_format=torch.contiguous_format),
            torch.empty_like(w, memory_format=torch.contiguous_format))


def _unpool_setup(ctx, inputs, output):
    y, w, *config = inputs
    ctx.save_for_backward(y, w)
    ctx.config = tuple(config)


def _unpool_autograd(ctx, grad_x):
    y, w = ctx.saved_tensors
    grad_y, grad_w = adaptive_unpool_grads_op(grad_x, y, w, *ctx.config)
    return grad_y, grad_w, None, None, None


torch.library.register_autograd("adapool_core::adaptive_unpool", _unpool_autograd, setup_context=_unpool_setup)
torch.library.register_autograd("adapool_core::adaptive_unpool_grads", _no_double_backward)


def _resolved(x: Tensor, d: int, output_size, func: str) -> list[int]:
    """output_size with None replaced by the input's size, validated by ``_geometry``."""
    geom = adaptive_geometry(tuple(x.shape), d, output_size, func)
    return list(geom.out_size[3 - d:])


def adaptive_pool(method: str, d: int, x: Tensor, beta, output_size, return_mask: bool = False,
                  mode: str = "exact", data_format: str = "channels_first"):
    """``y`` or ``(y, w)`` of adaptive ``method`` pooling (the public functions' body);
    ``data_format="channels_last"`` transposes around it (views, as ``_functional.pool``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a torch.Tensor, got {type(x).__name__}")
    check_mode(mode, "mode")
    if check_data_format(data_format):
        x_cl, x = x, channels_first(x, d)
        if isinstance(beta, Tensor) and 0 < beta.dim() <= x.dim():
            geom = adaptive_geometry(tuple(x.shape), d, output_size, f"adaptive_{method}{d}d")
            channels_last_beta_shape(tuple(beta.shape), geom)  # the array level's message
            beta = channels_first(beta.reshape((1,) * (x_cl.dim() - beta.dim()) + tuple(beta.shape)), d)
        out = adaptive_pool(method, d, x, beta, output_size, return_mask, mode)
        return pooled_channels_last(out, d, return_mask)
    if method == "adapool" and not isinstance(beta, Tensor):
        beta = torch.as_tensor(beta, dtype=x.dtype, device=x.device)
    size = _resolved(x, d, output_size, f"adaptive_{method}{d}d")
    y, w = adaptive_pool_op(x, beta, method, d, size, bool(return_mask), mode)
    return (y, w) if return_mask else y


torch.library.register_autograd("adapool_core::adaptive_pool", _pool_autograd, setup_context=_pool_setup)


def adaptive_unpool(d: int, y: Tensor, w: Tensor, input_size, normalize: str = "sum",
                    data_format: str = "channels_first") -> Tensor:
    """adaUnPool over adaptive windows (the public functions' body)."""
    check_normalize(normalize)
    if check_data_format(data_format):
        if input_size is not None and not isinstance(input_size, int) and len(input_size) == y.dim():
            sizes = list(input_size)  # a full shape: its channels first
            input_size = sizes[:-1 - d] + sizes[-1:] + sizes[-1 - d:-1]
        out = adaptive_unpool(d, channels_first(y, d), channels_first(w, d, d), input_size, normalize)
        return channels_last(out, d)
    geom = adaptive_unpool_geometry(tuple(y.shape), tuple(w.shape), d, input_size, f"adaptive_adaunpool{d}d")
    return adaptive_unpool_op(y, w, d, list(geom.in_size[3 - d:]), normalize)


# --- public functions and modules ----------------------------------------------------------

def _pool_function(method: str, d: int):
    name = f"adaptive_{method}{d}d"
    if method == "adapool":
        def fn(x: Tensor, beta: Union[Tensor, float], output_size: AdaptiveSize, return_mask: bool = False,
               mode: str = "exact", *,
               data_format: DataFormat = "channels_first") -> Union[Tensor, tuple[Tensor, Tensor]]:
            return adaptive_pool(method, d, x, beta, output_size, return_mask, mode, data_format)
        call = f"{name}(x, 0.5, 3)"
    else:
        def fn(x: Tensor, output_size: AdaptiveSize, return_mask: bool = False,
               mode: str = "exact", *,
               data_format: DataFormat = "channels_first") -> Union[Tensor, tuple[Tensor, Tensor]]:
            return adaptive_pool(method, d, x, None, output_size, return_mask, mode, data_format)
        call = f"{name}(x, 3)"
    spatial = ", ".join(["7"] * d)
    fn.__doc__ = f"""Adaptive ``{method}{d}d`` of a tensor: pools ``x`` to ``output_size``.

    Windows as ``torch.nn.functional.adaptive_avg_pool{d}d``: along a dim of length ``L`` pooled
    to ``O``, window ``o`` is ``[floor(o*L/O), ceil((o+1)*L/O))``; ``None`` in ``output_size``
    keeps that dim.  With ``return_mask=True`` the weights ``(N, C, *O, *K)`` (``K``: the longest
    window per dim, zero-padded) are differentiable, for ``adaptive_adaunpool{d}d``.

    Parameters
    ----------
    x : Tensor
        ``(N, C, *L)`` or ``(C, *L)``.
    output_size : int or tuple
        ``O`` per spatial dim (``None`` keeps the dim).
    return_mask : bool, default False
        Also return the weights.
    mode : {{"exact", "paper"}}, default "exact"
        The gradient, as for ``{method}{d}d``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only: ``(N, C, *L)`` or ``(N, *L, C)``; the output, the weights
        ``(N, *O, *K, C)`` and a per-channel beta ``(1, .., 1, C)`` follow it.

    Returns
    -------
    Tensor or (Tensor, Tensor)

    Shape
    -----
    - ``x``: ``(N, C, *L)`` or ``(C, *L)`` (``(N, *L, C)`` with ``"channels_last"``)
    - output: ``(N, C, *O)``; weights ``(N, C, *O, *K)``

    Raises
    ------
    TypeError
        ``x`` is not a floating tensor, or an argument has the wrong type.
    ValueError
        Wrong rank, an ``output_size`` entry < 1, an unknown ``mode`` or ``data_format``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import {name}
    >>> x = torch.rand(1, 3, {spatial})
    >>> {call}.shape
    torch.Size([1, 3, {", ".join(["3"] * d)}])
    """
    return name, fn


def _unpool_function(d: int):
    name = f"adaptive_adaunpool{d}d"

    def fn(y: Tensor, w: Tensor, input_size: Union[int, Sequence[int]], normalize: str = "sum", *,
           data_format: DataFormat = "channels_first") -> Tensor:
        return adaptive_unpool(d, y, w, input_size, normalize, data_format)

    fn.__doc__ = f"""adaUnPool of an adaptive {d}-D pooling; differentiable with respect to ``y`` and ``w``.

    Parameters
    ----------
    y, w : Tensor
        From ``adaptive_*{d}d(..., return_mask=True)``.
    input_size : int or tuple of ints
        The pooled input's spatial size.
    normalize : {{"sum", "window"}}, default "sum"
        As for ``adaunpool{d}d``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only: the layout of ``y``, ``w`` and the result.

    Returns
    -------
    Tensor
        The unpooled tensor, ``(N, C, *input_size)``.

    Shape
    -----
    - ``y``: ``(N, C, *O)``; ``w``: ``(N, C, *O, *K)`` (channels last: ``(N, *O, C)``, ``(N, *O, *K, C)``)

    Raises
    ------
    TypeError
        A tensor is not floating, or an argument has the wrong type.
    ValueError
        ``w``'s shape does not match ``y`` and ``input_size``, or an unknown ``normalize`` or ``data_format``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import adaptive_adapool{d}d, {name}
    >>> y, w = adaptive_adapool{d}d(torch.ones(1, 3, {", ".join(["7"] * d)}), 0.5, 3, return_mask=True)
    >>> bool(torch.allclose({name}(y, w, {(7,) * d}, normalize="window"), torch.tensor(1.0)))
    True
    """
    return name, fn


class _AdaptivePoolNd(nn.Module):
    """Adaptive pooling layer, drop-in for ``nn.AdaptiveAvgPool{d}d``."""

    method = ""
    d = 0

    def __init__(self, output_size: AdaptiveSize, *, return_mask: bool = False, mode: str = "exact",
                 data_format: DataFormat = "channels_first") -> None:
        super().__init__()
        check_mode(mode, "mode")
        check_data_format(data_format)
        self.output_size = output_size
        self.return_mask = return_mask
        self.mode = mode
        self.data_format = data_format

    def forward(self, x: Tensor):
        """Pool ``x`` to ``output_size``."""
        return adaptive_pool(self.method, self.d, x, None, self.output_size, self.return_mask, self.mode,
                             self.data_format)

    def extra_repr(self) -> str:
        """``output_size`` and the options, for ``repr``."""
        return (f"output_size={self.output_size}, return_mask={self.return_mask}, mode={self.mode!r}, "
                f"data_format={self.data_format!r}")


class _AdaptiveAdaPoolNd(LazyModuleMixin, _AdaptivePoolNd):
    """Adaptive adaPool layer with a trainable ``beta`` (``beta_shape``: "map", the output's size
    (default), "channel" ``(C, 1, ..)``, "scalar", or a shape)."""

    method = "adapool"

    def __init__(self, output_size: AdaptiveSize, *, beta: float = 0.5,
                 beta_shape: Union[str, Sequence[int]] = "map", return_mask: bool = False, mode: str = "exact",
                 data_format: DataFormat = "channels_first", device=None, dtype=None) -> None:
        super().__init__(output_size, return_mask=return_mask, mode=mode, data_format=data_format)
        self.beta_init = float(beta)
        if isinstance(beta_shape, str):
            if beta_shape not in ("map", "channel", "scalar"):
                raise ValueError(f"beta_shape: expected 'map', 'channel', 'scalar' or a shape, got {beta_shape!r}")
            self.beta_kind = beta_shape
        else:
            self.beta_kind = tuple(beta_shape)
        if self.beta_kind == "scalar" or isinstance(self.beta_kind, tuple):
            shape = (1,) * self.d if self.beta_kind == "scalar" else self.beta_kind
            self.beta = nn.Parameter(torch.full(shape, self.beta_init, device=device, dtype=dtype))
        else:
            self.beta = UninitializedParameter(device=device, dtype=dtype)

    def initialize_parameters(self, x: Tensor) -> None:
        """Size the lazy ``beta`` from the first input (LazyModuleMixin's hook); ``beta`` stays
        channels-first whatever ``data_format`` (as the other layers')."""
        if self.has_uninitialized_params():
            if check_data_format(self.data_format):
                x = channels_first(x, self.d)
            geom = adaptive_geometry(tuple(x.shape), self.d, self.output_size, type(self).__name__)
            shape = geom.out_size[3 - self.d:] if self.beta_kind == "map" else (geom.c,) + (1,) * self.d
            with torch.no_grad():
                self.beta.materialize(shape)
                self.beta.fill_(self.beta_init)

    def forward(self, x: Tensor):
        """Pool ``x`` to ``output_size`` with the layer's ``beta``."""
        # The layer's beta is channels-first: layer_call pools channels first.
        return layer_call(lambda xc: adaptive_pool("adapool", self.d, xc, self.beta, self.output_size,
                                                   self.return_mask, self.mode),
                          x, self.d, self.data_format, self.return_mask)


class _AdaptiveAdaUnpoolNd(nn.Module):
    """adaUnPool after an adaptive pooling layer."""

    d = 0

    def __init__(self, normalize: str = "sum", *, data_format: DataFormat = "channels_first") -> None:
        super().__init__()
        check_normalize(normalize)
        check_data_format(data_format)
        self.normalize = normalize
        self.data_format = data_format

    def forward(self, y: Tensor, w: Tensor, input_size) -> Tensor:
        """Unpool ``y`` with ``w`` to ``input_size``."""
        return adaptive_unpool(self.d, y, w, input_size, self.normalize, self.data_format)


_LAYER_SHAPE_RAISES = """
    Shape
    -----
    - input: ``(N, C, *L)`` or ``(C, *L)`` (``(N, *L, C)`` with ``"channels_last"``)
    - output: ``(N, C, *O)``; weights ``(N, C, *O, *K)``

    Raises
    ------
    ValueError
        An ``output_size`` entry < 1, an unknown ``mode`` or ``data_format`` (at construction or call).
"""


def _layer_doc(name: str, method: str, d: int) -> str:
    beta = """
    beta : float, default 0.5
        Initial value of the trainable ``beta``.
    beta_shape : {"map", "channel", "scalar"} or tuple of ints, default "map"
        ``beta``'s shape: the output's size (lazy: sized by the first input), ``(C, 1, ..)``,
        one value, or the shape given.""" if method == "adapool" else ""
    return f"""Adaptive ``{method}`` over {d}-D inputs (a torch.nn layer), drop-in for
    ``nn.AdaptiveAvgPool{d}d``: windows ``[floor(o*L/O), ceil((o+1)*L/O))``.

    Parameters
    ----------
    output_size : int or tuple
        ``O`` per spatial dim (``None`` keeps the dim).{beta}
    return_mask : bool, default False
        Also return the (differentiable) weights.
    mode : {{"exact", "paper"}}, default "exact"
        The gradient, as for ``{method}{d}d``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only: the layout of the input, output and weights.

    Returns
    -------
    Tensor or (Tensor, Tensor)
        Calling the layer: the pooled tensor, and the weights with ``return_mask=True``.
{_LAYER_SHAPE_RAISES}
    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import {name}
    >>> {name}(3)(torch.rand(1, 2, {', '.join(['7'] * d)})).shape
    torch.Size([1, 2, {', '.join(['3'] * d)}])
    """


def _unpool_layer_doc(name: str, d: int) -> str:
    return f"""adaUnPool after an adaptive {d}-D pooling (a torch.nn layer); differentiable with
    respect to ``y`` and ``w``.

    Parameters
    ----------
    normalize : {{"sum", "window"}}, default "sum"
        As for ``adaunpool{d}d``.
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only: the layout of ``y``, ``w`` and the result.

    Returns
    -------
    Tensor
        Calling the layer as ``layer(y, w, input_size)``: the unpooled tensor.

    Shape
    -----
    - ``y``: ``(N, C, *O)``; ``w``: ``(N, C, *O, *K)``; output ``(N, C, *input_size)``

    Raises
    ------
    ValueError
        ``w``'s shape does not match ``y`` and ``input_size``, or an unknown ``normalize``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import AdaptiveAdaPool{d}d, {name}
    >>> y, w = AdaptiveAdaPool{d}d(3, return_mask=True)(torch.ones(1, 2, {', '.join(['7'] * d)}))
    >>> {name}(normalize="window")(y, w, {(7,) * d}).shape
    torch.Size([1, 2, {', '.join(['7'] * d)}])
    """


def adaptive_public(module: str) -> dict:
    """``{name: function or class}``: the adaptive functions, their softpool aliases and the modules."""
    table = {}
    for d in RANKS:
        made = dict(_pool_function(method, d) for method in METHODS)
        made.update([_unpool_function(d)])
        for name, fn in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = module
            table[name] = fn
        table[f"adaptive_softpool{d}d"] = table[f"adaptive_empool{d}d"]
        for method in METHODS:
            name = f"Adaptive{_CLASS_NAMES[method]}{d}d"
            base = _AdaptiveAdaPoolNd if method == "adapool" else _AdaptivePoolNd
            table[name] = type(name, (base,), {"method": method, "d": d, "__doc__": _layer_doc(name, method, d),
                                               "__module__": module})
        name = f"AdaptiveAdaUnpool{d}d"
        table[name] = type(name, (_AdaptiveAdaUnpoolNd,), {"d": d, "__module__": module,
                                                            "__doc__": _unpool_layer_doc(name, d)})
        table["AdaptiveSoftPool%dd" % d] = table[f"AdaptiveEMPool{d}d"]
    return table
