"""The type names of the public signatures.

The runtime functions carry these as annotations and the committed ``.pyi``
stubs import them from here, so a type checker sees one definition.  This
module imports nothing but ``typing``: it must stay cheap and checkable by
``mypy --strict``.
"""
from __future__ import annotations

from typing import Literal, Protocol, TypeVar, Union


class ArrayLike(Protocol):
    """What every supported array has (NumPy, CuPy, torch, JAX): a shape."""

    @property
    def shape(self) -> tuple[int, ...]: ...


#: The caller's array type: a ``numpy.ndarray`` in gives a ``numpy.ndarray`` out.
ArrayT = TypeVar("ArrayT", bound=ArrayLike)

#: ``kernel_size``, ``stride``, ``padding``: one int for every spatial dim, or one per dim.
Size = Union[int, tuple[int, ...]]

#: ``output_size`` of adaptive pooling: one int for every spatial dim, or one per dim (None keeps the dim).
AdaptiveSize = Union[int, tuple[Union[int, None], ...]]

#: ``beta`` of adaPool: an array (broadcast to the output) or one number.
Beta = Union[ArrayLike, float]

#: The gradient: the true derivative, or the paper's (weights held constant).
GradMode = Literal["exact", "paper"]

#: adaUnPool's normalisation.
Normalize = Literal["sum", "window"]

#: Where the channels are: ``(N, C, *S)`` or ``(N, *S, C)``.
DataFormat = Literal["channels_first", "channels_last"]

#: The JAX adapter's path: XLA operations, the Numba/CuPy host callback, or the faster of the two.
Implementation = Literal["auto", "xla", "callback"]

__all__ = ["AdaptiveSize", "ArrayLike", "ArrayT", "Beta", "DataFormat", "GradMode", "Implementation", "Normalize",
           "Size"]
