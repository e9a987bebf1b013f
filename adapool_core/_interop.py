"""Arrays in, arrays out: the caller's kind of array <-> a native backend array.

A native array is a NumPy array (CPU backend) or a CuPy array (CUDA
backend).  ``to_native`` remembers how to give results back in the caller's
kind (``Restore``); backends never see anything else.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._geometry import check_float_dtype


@dataclass(frozen=True)
class Native:
    """A native array and the way back to the caller's kind of array."""

    array: Any
    restore: Callable[[Any], Any]
    device: str  # "cpu" or "cuda:<id>"


def _identity(a):
    return a


def to_native(value, name: str) -> Native:
    """The caller's array as a NumPy/CuPy array, without copying where possible."""
    if isinstance(value, np.ndarray):
        return Native(value, _identity, "cpu")
    cupy = sys.modules.get("cupy")  # never import CuPy here: it is optional and slow to import
    if cupy is not None and isinstance(value, cupy.ndarray):
        return Native(value, _identity, f"cuda:{value.device.id}")
    if isinstance(value, (np.generic, int, float, list, tuple)):
        return Native(np.asarray(value), _identity, "cpu")
    raise TypeError(f"{name}: expected a NumPy array (or an array implementing __dlpack__), "
                    f"got {type(value).__name__}")


def same_device(a: Native, b: Native, name_a: str, name_b: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{name_b}: expected an array on the same device as {name_a} ({a.device}), "
                         f"got one on {b.device}")


def check_float(native: Native, name: str) -> None:
    check_float_dtype(native.array.dtype, name)
