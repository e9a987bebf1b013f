"""``nn.Module`` layers: thin holders of arguments (and adaPool's ``beta``)
over the functions of ``_functional``.

Any input size: adaPool's default ``beta`` is a learned map of one value per
output location, sized by the first input.  At another output size the map is
resampled, differentiably ((bi/tri)linear, ``align_corners=False``), to the
current output's spatial size; the parameter itself keeps its shape, so a
state_dict saved at one input size loads and runs at every other.  Per-channel
(``beta_shape="channel"``) and shared (``beta_shape="scalar"``) betas broadcast
and are never resampled.
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

from .._api import METHODS, RANKS
from .._geometry import check_normalize, pool_geometry
from ._composite import pooled_length
from ._custom_ops import is_static
from .._adapters import DEFAULT_MODE, resolve_mode
from .._geometry import check_data_format
from .._typing import DataFormat, GradMode, Normalize, Size
from ._functional import _ints, channels_first, layer_call, pool, unpool

_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}


def resample_beta(beta: Tensor, out_size: Sequence) -> Tensor:
    """A spatial beta map ``(*B)`` resampled to ``out_size`` (itself when the sizes match)."""
    if is_static(out_size) and tuple(beta.shape) == tuple(out_size):
        return beta
    # Symbolic sizes (compile, export) always resample: at equal sizes it is the identity.
    return F.interpolate(beta[None, None], size=list(out_size), mode=_INTERPOLATION[beta.dim()],
                         align_corners=False)[0, 0]


class _PoolNd(nn.Module):
    """Pooling layer; subclasses set ``method`` and ``d``."""

    method: str
    d: int

    def __init__(self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
                 ceil_mode: bool = False, *, return_mask: bool = False, mode: GradMode = DEFAULT_MODE,
                 grad: Optional[GradMode] = None, data_format: DataFormat = "channels_first") -> None:
        super().__init__()
        self.mode = resolve_mode(mode, grad, type(self).__name__)
        check_data_format(data_format)
        self.data_format = data_format
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.return_mask = ceil_mode, return_mask

    def _beta(self, x: Tensor) -> Optional[Tensor]:
        return None

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """Pool ``x`` (``(N, C, *L)`` or ``(C, *L)``; channels last ``(N, *L, C)``): ``y``, or ``(y, w)``
        with ``return_mask``.

        Parameters
        ----------
        x : Tensor
            The input.

        Returns
        -------
        Tensor or (Tensor, Tensor)
            As the function of the same name.

        Examples
        --------
        >>> import torch
        >>> from adapool_core.torch import EMPool2d
        >>> EMPool2d(2).forward(torch.rand(2, 3, 8, 8)).shape
        torch.Size([2, 3, 4, 4])
        """
        # The layer's beta is channels-first (a map of O, or (C, 1, ...)): layer_call pools channels first.
        return layer_call(lambda xc: pool(self.method, self.d, xc, self._beta(xc), self.kernel_size, self.stride,
                                          self.padding, self.ceil_mode, self.return_mask, self.mode),
                          x, self.d, self.data_format, self.return_mask)

    def extra_repr(self) -> str:
        """The arguments, for ``repr``.

        Returns
        -------
        str

        Examples
        --------
        >>> from adapool_core.torch import EMPool1d
        >>> EMPool1d(2).extra_repr()
        "kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, mode='exact'"
        """
        layout = "" if self.data_format == "channels_first" else f", data_format={self.data_format!r}"
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"ceil_mode={self.ceil_mode}, return_mask={self.return_mask}, mode={self.mode!r}{layout}")


class _AdaPoolNd(LazyModuleMixin, _PoolNd):
    """adaPool layer with a trainable ``beta`` (clamped to [0, 1] in the forward only)."""

    method = "adapool"

    def __init__(self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0,
                 ceil_mode: bool = False, *, beta: Union[float, Tensor] = 0.5,
                 beta_shape: Union[str, Sequence[int], None] = None, return_mask: bool = False,
                 mode: GradMode = DEFAULT_MODE, grad: Optional[GradMode] = None,
                 data_format: DataFormat = "channels_first", device: Union[torch.device, str, None] = None,
                 dtype: Optional[torch.dtype] = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, return_mask=return_mask, mode=mode, grad=grad,
                         data_format=data_format)
        factory = {"device": device, "dtype": dtype}
        self.beta_kind = "map"
        if isinstance(beta_shape, str):
            if beta_shape not in ("map", "channel", "scalar"):
                raise ValueError(f"beta_shape: expected 'map', 'channel', 'scalar', a shape or None, "
                                 f"got {beta_shape!r}")
            self.beta_kind, beta_shape = beta_shape, ((1,) * self.d if beta_shape == "scalar" else None)
        if isinstance(beta, Tensor):
            if beta_shape is not None and tuple(beta_shape) != tuple(beta.shape):
                raise ValueError(f"beta_shape: expected None or beta's shape {tuple(beta.shape)}, "
                                 f"got {tuple(beta_shape)}")
            self.beta = nn.Parameter(beta.detach().to(**{k: v for k, v in factory.items() if v is not None}).clone())
            self.beta_init = None
        elif beta_shape is None:  # lazy: sized by the first input (a map of the output, or per channel)
            self.beta = UninitializedParameter(**factory)
            self.beta_init = float(beta)
        else:
            self.beta = nn.Parameter(torch.full(tuple(beta_shape), float(beta), **factory))
            self.beta_init = float(beta)

    def initialize_parameters(self, x: Tensor) -> None:
        """LazyModuleMixin's hook: size the lazy ``beta`` from the first input.

        Parameters
        ----------
        x : Tensor
            The first input: ``beta`` becomes its output's spatial size (``beta_shape="map"``)
            or ``(C, 1, ...)`` (``"channel"``).

        Examples
        --------
        >>> import torch
        >>> from adapool_core.torch import AdaPool2d
        >>> pool = AdaPool2d(2)
        >>> pool.initialize_parameters(torch.rand(1, 3, 8, 8))
        >>> tuple(pool.beta.shape)
        (4, 4)
        """
        if self.has_uninitialized_params():
            if self.data_format == "channels_last":
                x = channels_first(x, self.d)
            geom = pool_geometry(tuple(x.shape), self.d, self.kernel_size, self.stride, self.padding,
                                 self.ceil_mode, type(self).__name__)
            shape = geom.out_size[3 - self.d:] if self.beta_kind == "map" else (geom.c,) + (1,) * self.d
            with torch.no_grad():
                self.beta.materialize(shape)
                self.beta.fill_(self.beta_init)

    def _beta(self, x: Tensor) -> Tensor:
        beta = self.beta
        if beta.dim() != self.d or all(n == 1 for n in beta.shape):
            return beta  # broadcasts: scalar, per channel, or a full shape (checked by the function)
        k = _ints(self.kernel_size, self.d)
        s = k if self.stride is None else _ints(self.stride, self.d)
        out = [pooled_length(n, kk, ss, pp, self.ceil_mode)
               for n, kk, ss, pp in zip(x.shape[-self.d:], k, s, _ints(self.padding, self.d))]
        return resample_beta(beta, out)

    def extra_repr(self) -> str:
        """The arguments and ``beta``'s shape, for ``repr``.

        Returns
        -------
        str

        Examples
        --------
        >>> from adapool_core.torch import AdaPool1d
        >>> AdaPool1d(2).extra_repr().endswith("beta_shape=lazy")
        True
        """
        shape = "lazy" if self.has_uninitialized_params() else tuple(self.beta.shape)
        return super().extra_repr() + f", beta_shape={shape}"


class _AdaUnpoolNd(nn.Module):
    """adaUnPool layer: ``forward(y, w, output_size=None)``."""

    d: int

    def __init__(self, kernel_size: Size, stride: Optional[Size] = None, padding: Size = 0, *,
                 normalize: Normalize = "sum", data_format: DataFormat = "channels_first") -> None:
        super().__init__()
        check_normalize(normalize)
        check_data_format(data_format)
        self.kernel_size, self.stride, self.padding, self.normalize = kernel_size, stride, padding, normalize
        self.data_format = data_format

    def forward(self, y: Tensor, w: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        """Unpool ``y`` with the weights ``w`` of a pooling built with ``return_mask=True``.

        Parameters
        ----------
        y, w : Tensor
            The pooling's output and weights.
        output_size : sequence of int, optional
            The unpooled size (e.g. ``x.shape``); default the smallest.

        Returns
        -------
        Tensor

        Examples
        --------
        >>> import torch
        >>> from adapool_core.torch import AdaPool2d, AdaUnpool2d
        >>> x = torch.rand(1, 3, 9, 9)
        >>> y, w = AdaPool2d(2, return_mask=True)(x)
        >>> AdaUnpool2d(2)(y, w, output_size=x.shape).shape
        torch.Size([1, 3, 9, 9])
        """
        return unpool(self.d, y, w, self.kernel_size, self.stride, self.padding, output_size, self.normalize,
                      self.data_format)

    def extra_repr(self) -> str:
        """The arguments, for ``repr``.

        Returns
        -------
        str

        Examples
        --------
        >>> from adapool_core.torch import AdaUnpool1d
        >>> AdaUnpool1d(2).extra_repr()
        "kernel_size=2, stride=None, padding=0, normalize='sum'"
        """
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"normalize={self.normalize!r}")


CLASS_NAMES = {"adapool": "AdaPool", "edscwpool": "EDSCWPool", "empool": "EMPool", "idwpool": "IDWPool"}


def _class_doc(name: str, d: int, method: Optional[str]) -> str:
    shape = ", ".join(["8"] * d)
    if method is None:
        return f"""{d}-D adaUnPool layer over :func:`adaunpool{d}d`.

    Parameters
    ----------
    kernel_size, stride, padding : int or tuple of {d} ints
        Those of the pooling that produced ``(y, w)``.
    normalize : {{"sum", "window"}}, default "sum"
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        Keyword only; ``"channels_last"``: ``y`` ``(N, *O, C)``, ``w`` ``(N, *O, *kernel_size, C)``.

    Returns
    -------
    Tensor
        ``forward(y, w, output_size=None)`` returns the unpooled tensor, of ``y``'s device and dtype.

    Shape
    -----
    ``(N, C, *O)`` -> ``(N, C, *L)``, ``L = (O - 1) * stride + kernel_size - 2 * padding``
    unless ``output_size`` is given to ``forward``.

    Raises
    ------
    ValueError
        Unknown ``normalize`` or ``data_format``.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import AdaPool{d}d, {name}
    >>> y, w = AdaPool{d}d(2, return_mask=True)(torch.rand(1, 3, {shape}))
    >>> {name}(2)(y, w).shape
    torch.Size([1, 3, {shape}])
    """
    beta = ""
    if method == "adapool":
        beta = """    beta : float or Tensor, default 0.5
        The initial value, or the initial tensor.
    beta_shape : None, "map", "channel", "scalar" or shape, default None
        None/"map": one value per output location, sized by the first input and resampled
        (differentiably, (bi/tri)linear) to other output sizes; "channel": ``(C, 1, ...)`` sized by the
        first input; "scalar": one shared value; a shape: that shape.
    device, dtype : optional
        Of ``beta``.
"""
    return f"""{d}-D layer over :func:`{method}{d}d`: same arguments, same result.

    ``{name}(kernel_size, stride=None, padding=0, ceil_mode=False)`` as ``nn.AvgPool{d}d``.

    Parameters
    ----------
    kernel_size, stride, padding : int or tuple of {d} ints
        ``stride`` defaults to ``kernel_size``; padding at most ``kernel_size // 2``.
    ceil_mode : bool, default False
    return_mask : bool, default False
        ``forward`` returns ``(y, w)`` for an adaUnPool layer.
    mode : {{"exact", "paper"}}, default "exact"
        The gradient (``grad=`` is its deprecated alias).
    data_format : {{"channels_first", "channels_last"}}, default "channels_first"
        ``"channels_last"``: inputs ``(N, *L, C)``, outputs ``(N, *O, C)``, weights
        ``(N, *O, *kernel_size, C)``.  ``beta`` keeps its channels-first shape (the map ``(*O)``, or
        ``(C, 1, ...)``), so a state_dict loads in either layout.
{beta}
    Returns
    -------
    Tensor or (Tensor, Tensor)
        ``forward(x)`` returns ``y``, or ``(y, w)`` with ``return_mask=True``, of ``x``'s device and dtype.

    Shape
    -----
    ``(N, C, *L)`` -> ``(N, C, *O)``, ``O = floor((L + 2*padding - kernel_size) / stride) + 1``
    (``ceil`` with ``ceil_mode``, minus one if the last window would start in the right padding).

    Raises
    ------
    ValueError
        Unknown ``mode``, ``data_format`` (or ``beta_shape``); errors of the function at the first
        ``forward``.
    TypeError
        ``mode`` and ``grad`` both given.

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import {name}
    >>> {name}(2)(torch.rand(2, 3, {shape})).shape
    torch.Size([2, 3, {", ".join(["4"] * d)}])
    """


def _make_class(base, name: str, d: int, method: Optional[str], module: str):
    namespace = {"d": d, "__doc__": _class_doc(name, d, method), "__module__": module, "__qualname__": name}
    if method is not None:
        namespace["method"] = method
    return type(name, (base,), namespace)


def public_classes(module: str) -> dict:
    """``{name: class}``: every pooling layer, adaUnPool and the ``SoftPool`` aliases."""
    table = {}
    for d in RANKS:
        for method in METHODS:
            name = f"{CLASS_NAMES[method]}{d}d"
            table[name] = _make_class(_AdaPoolNd if method == "adapool" else _PoolNd, name, d, method, module)
        table[f"AdaUnpool{d}d"] = _make_class(_AdaUnpoolNd, f"AdaUnpool{d}d", d, None, module)
        table[f"SoftPool{d}d"] = table[f"EMPool{d}d"]
    return table
