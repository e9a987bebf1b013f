"""Model surgery: swap a model's max/average pooling layers for the library's."""
import warnings
from typing import Any

from torch import nn

_METHODS = {"ada": "AdaPool", "adapool": "AdaPool", "edscw": "EDSCWPool", "edscwpool": "EDSCWPool",
            "em": "EMPool", "empool": "EMPool", "soft": "EMPool", "softpool": "EMPool",
            "idw": "IDWPool", "idwpool": "IDWPool"}
_POOLS = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}


def _unsupported(layer: nn.Module) -> str:
    """Why the layer cannot be reproduced ('' when it can)."""
    if isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        if any(v != 1 for v in ((layer.dilation,) if isinstance(layer.dilation, int) else layer.dilation)):
            return f"dilation={layer.dilation} (windows here are dense)"
        if layer.return_indices:
            return "return_indices=True (use return_mask=True and AdaUnpool instead of MaxUnpool)"
        return ""
    padded = any(v != 0 for v in ((layer.padding,) if isinstance(layer.padding, int) else layer.padding))
    if layer.count_include_pad and padded:
        return "count_include_pad=True with padding (padding cells here are not window members)"
    if getattr(layer, "divisor_override", None) is not None:
        return f"divisor_override={layer.divisor_override}"
    return ""


def replace_pooling(model: nn.Module, method: str = "ada", *, on_unsupported: str = "raise",
                    **options: Any) -> int:
    """Replace ``nn.MaxPool{1,2,3}d`` and ``nn.AvgPool{1,2,3}d`` layers of ``model``, in place.

    Each becomes the library's layer of ``method`` with the same ``kernel_size``,
    ``stride``, ``padding`` and ``ceil_mode``, on the device of the model's parameters.

    Parameters
    ----------
    model : nn.Module
        Modified in place (the model itself is never replaced, even if it is a pooling layer).
    method : {"ada", "edscw", "em" (or "soft"), "idw"}, default "ada"
        Also accepted with the ``pool`` suffix (``"adapool"``).
    on_unsupported : {"raise", "skip"}, default "raise"
        A layer the library cannot reproduce (``dilation``, ``return_indices``,
        ``count_include_pad=True`` with padding, ``divisor_override``): "raise" raises before
        anything is replaced; "skip" leaves it and names every skipped layer in one ``UserWarning``.
    **options
        Keyword arguments of the new layers (``mode``, ``beta``, ``beta_shape``, ``return_mask``).

    Returns
    -------
    int
        How many layers were replaced.

    Shape
    -----
    Every replaced layer keeps the shapes of the one it replaces: same ``kernel_size``, ``stride``,
    ``padding`` and ``ceil_mode``, so ``(N, C, *L)`` -> ``(N, C, *O)`` as before.

    Raises
    ------
    ValueError
        Unknown ``method`` or ``on_unsupported``; with "raise", an unsupported layer (named).

    Examples
    --------
    >>> import torch
    >>> from adapool_core.torch import replace_pooling
    >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.MaxPool2d(2), torch.nn.AvgPool2d(2))
    >>> replace_pooling(model, "ada")
    2
    >>> type(model[1]).__name__
    'AdaPool2d'
    """
    from . import __dict__ as public  # the generated classes

    if method not in _METHODS:
        raise ValueError(f"method: expected one of {sorted(_METHODS)}, got {method!r}")
    if on_unsupported not in ("raise", "skip"):
        raise ValueError(f"on_unsupported: expected 'raise' or 'skip', got {on_unsupported!r}")
    targets, skipped = [], []
    for name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            d = _POOLS.get(type(child))
            if d is None:
                continue
            full = f"{name}.{child_name}" if name else child_name
            reason = _unsupported(child)
            if reason:
                skipped.append(f"{full} ({type(child).__name__}: {reason})")
            else:
                targets.append((parent, child_name, child, d))
    if skipped and on_unsupported == "raise":
        raise ValueError("replace_pooling: cannot reproduce " + "; ".join(skipped) +
                         " (pass on_unsupported='skip' to leave these layers as they are)")
    if skipped:
        warnings.warn("replace_pooling: skipped " + "; ".join(skipped), UserWarning, stacklevel=2)
    param = next(model.parameters(), None)
    factory = {} if param is None else {"device": param.device}
    for parent, child_name, child, d in targets:
        cls = public[f"{_METHODS[method]}{d}d"]
        extra = dict(factory) if _METHODS[method] == "AdaPool" else {}
        extra.update(options)
        new = cls(child.kernel_size, child.stride, child.padding, child.ceil_mode, **extra)
        setattr(parent, child_name, new)
    return len(targets)
