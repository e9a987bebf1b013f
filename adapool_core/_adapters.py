"""The public function table of the JAX adapter.

An adapter supplies two private implementations, ``pool(method, d, x, beta,
kernel_size, stride, padding, ceil_mode, return_mask, mode)`` and
``unpool(d, y, w, kernel_size, stride, padding, output_size, normalize)``;
this generates the named functions with the array-level signatures (plus
``mode``, its deprecated alias ``grad``, and the keyword-only ``data_format`` and
``implementation``, passed on by keyword), annotations and docstrings, for
every method and rank.  The JAX adapter uses it (``implementation`` picks its
XLA or callback path); the torch adapter has its own table
(``torch/_functional``).
"""
from __future__ import annotations

import warnings
from typing import Callable, Optional

from ._api import METHODS, RANKS
from ._docs import pool_doc, unpool_doc
from ._geometry import check_mode
from ._typing import ArrayT, Beta, DataFormat, GradMode, Implementation, Normalize, Size


class _DefaultMode(str):
    """The default of ``mode``: equal to "exact", but an object of its own, so
    that ``mode`` given explicitly is told apart from ``mode`` left out."""

    __slots__ = ()


DEFAULT_MODE: GradMode = _DefaultMode("exact")  # type: ignore[assignment]


def resolve_mode(mode: str, grad: Optional[str], func: str) -> str:
    """The gradient mode given as ``mode=``, or as its deprecated alias ``grad=``.

    Parameters
    ----------
    mode : str
        The ``mode`` argument; ``DEFAULT_MODE`` where the caller left it out.
    grad : str or None
        The deprecated ``grad`` argument; None where the caller left it out.
    func : str
        The public name, for the messages.

    Returns
    -------
    str
        ``"exact"`` or ``"paper"`` (a plain ``str``).

    Raises
    ------
    TypeError
        Both ``mode`` and ``grad`` given.
    ValueError
        The value is not "exact" or "paper" (the message names the argument given).

    Examples
    --------
    >>> from adapool_core._adapters import DEFAULT_MODE, resolve_mode
    >>> resolve_mode(DEFAULT_MODE, None, "adapool2d")
    'exact'
    >>> resolve_mode("paper", None, "adapool2d")
    'paper'
    """
    if grad is None:
        check_mode(mode, "mode")
        return str(mode)
    if mode is not DEFAULT_MODE:
        raise TypeError(f"{func}: got both mode={str(mode)!r} and its deprecated alias grad={grad!r}; "
                        f"pass mode only")
    warnings.warn(f"{func}: grad= is deprecated; use mode= (same values, 'exact' or 'paper')",
                  DeprecationWarning, stacklevel=3)
    check_mode(grad, "grad")
    return str(grad)


def _pool_function(pool, method: str, d: int):
    name = f"{method}{d}d"
    if method == "adapool":
        def fn(x: ArrayT, beta: Beta, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, return_mask: bool = False, mode: GradMode = DEFAULT_MODE, *,
               grad: Optional[GradMode] = None, data_format: DataFormat = "channels_first",
               implementation: Implementation = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
            return pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name), data_format=data_format, implementation=implementation)
    else:
        def fn(x: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
               ceil_mode: bool = False, return_mask: bool = False, mode: GradMode = DEFAULT_MODE, *,
               grad: Optional[GradMode] = None, data_format: DataFormat = "channels_first",
               implementation: Implementation = "auto") -> ArrayT | tuple[ArrayT, ArrayT]:
            return pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask,
                        resolve_mode(mode, grad, name), data_format=data_format, implementation=implementation)
    return fn


def _unpool_function(unpool, d: int):
    def fn(y: ArrayT, w: ArrayT, kernel_size: Size = 2, stride: Optional[Size] = None, padding: Size = 0,
           output_size: Optional[Size] = None, normalize: Normalize = "sum", *,
           data_format: DataFormat = "channels_first", implementation: Implementation = "auto") -> ArrayT:
        return unpool(d, y, w, kernel_size, stride, padding, output_size, normalize, data_format=data_format,
                      implementation=implementation)
    return fn


def adapter_functions(module: str, pool, unpool, pool_note: str, unpool_note: str, *, array: str = "ArrayT",
                      array_doc: str = "array", examples: Optional[Callable[[str, int], str]] = None) -> dict:
    """``{name: function}`` for ``module``: every pooling, adaUnPool and the ``softpool`` aliases.

    ``array`` is the annotation of the arrays (a name the stub generator
    resolves in ``module``, e.g. ``"jax.Array"``; default the array-level
    ``ArrayT``), ``array_doc`` their name in the docstrings, and
    ``examples(name, d)`` the doctest lines of the function ``name``.
    """
    table = {}
    for d in RANKS:
        made = {f"{method}{d}d": _pool_function(pool, method, d) for method in METHODS}
        made[f"adaunpool{d}d"] = _unpool_function(unpool, d)
        for name, fn in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = module
            fn.__annotations__ = {k: v.replace("ArrayT", array) for k, v in fn.__annotations__.items()}
            example = examples(name, d) if examples else ""
            if name.startswith("adaunpool"):
                fn.__doc__ = unpool_doc(d, array_doc, example, unpool_note, adapter=True)
            else:
                fn.__doc__ = pool_doc(name[:-2], d, array_doc, example, pool_note, adapter=True)
            table[name] = fn
        table[f"softpool{d}d"] = table[f"empool{d}d"]
    return table
