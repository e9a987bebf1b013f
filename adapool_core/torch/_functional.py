"""The private implementations behind every public function and module,
and the generated public functions (``adapool2d``, ``adaunpool3d``, ...).

Paths: eager and ``torch.compile``/``torch.export`` call the custom ops
(``_custom_ops``); ONNX export and ``torch.func`` transforms call the
plain-torch composite (``_composite``), which both can trace.
"""
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .._api import FUNCTIONS, METHODS, RANKS
from .._geometry import beta_strides, check_mode, check_normalize, pool_geometry, unpool_geometry
from . import _composite
from ._custom_ops import is_static, pool_op, unpool_op

IntOrTuple = Union[int, Sequence[int]]
PoolResult = Union[Tensor, Tuple[Tensor, Tensor]]


def resolve_mode(mode: str, grad: Optional[str], owner: str) -> str:
    """``mode``, or the deprecated ``grad=`` alias (a DeprecationWarning); both given: TypeError."""
    if grad is not None:
        if mode != "exact":
            raise TypeError(f"{owner}: got both mode={mode!r} and its deprecated alias grad={grad!r}; pass mode only")
        warnings.warn(f"{owner}: grad= is deprecated, use mode= (same values, 'exact' or 'paper')",
                      DeprecationWarning, stacklevel=3)
        mode = grad
    check_mode(mode, "mode")
    return mode


def use_composite() -> bool:
    """Whether the caller traces for ONNX or runs under a ``torch.func`` transform."""
    return torch.onnx.is_in_onnx_export() or torch._C._functorch.peek_interpreter_stack() is not None


def _ints(value, d: int) -> list:
    """int-or-sequence as the ops' int list (validated by ``_geometry`` before)."""
    return [value] * d if isinstance(value, int) else list(value)


def _check_tensor(value, name: str) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")


def pool(method: str, d: int, x: Tensor, beta, kernel_size, stride, padding, ceil_mode, return_mask, mode):
    _check_tensor(x, "x")
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


def unpool(d: int, y: Tensor, w: Tensor, kernel_size, stride, padding, output_size, normalize):
    _check_tensor(y, "y")
    _check_tensor(w, "w")
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
        Deprecated alias of ``mode`` (DeprecationWarning); giving both is a TypeError."""
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
        def fn(x: Tensor, beta: Union[Tensor, float], kernel_size: IntOrTuple = 2,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0, ceil_mode: bool = False,
               return_mask: bool = False, mode: str = "exact", *, grad: Optional[str] = None) -> PoolResult:
            return pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name))
        call = f"{name}(x, 0.5, 2)"
    else:
        def fn(x: Tensor, kernel_size: IntOrTuple = 2, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, return_mask: bool = False,
               mode: str = "exact", *, grad: Optional[str] = None) -> PoolResult:
            return pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name))
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
        shape, unknown ``mode``.

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

    def fn(y: Tensor, w: Tensor, kernel_size: IntOrTuple = 2, stride: Optional[IntOrTuple] = None,
           padding: IntOrTuple = 0, output_size: Optional[Sequence[int]] = None,
           normalize: str = "sum") -> Tensor:
        return unpool(d, y, w, kernel_size, stride, padding, output_size, normalize)

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

    Returns
    -------
    Tensor
        ``(N, C, *L)``.

    Shape
    -----
    ``L = (O - 1) * stride + kernel_size - 2 * padding`` per dim unless ``output_size`` is given.

    Raises
    ------
    ValueError
        ``w`` of a wrong shape, an ``output_size`` that does not pool to ``O``, unknown ``normalize``.

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
