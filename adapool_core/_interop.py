"""Arrays in, arrays out: the caller's kind of array <-> a native backend array.

A native array is a NumPy array (CPU backend) or a CuPy array (CUDA
backend).  ``to_native`` accepts NumPy and CuPy arrays, Python/NumPy scalars
and sequences, and any array implementing ``__dlpack__`` (PyTorch, JAX, ...),
and remembers how to give results back in the caller's kind on the caller's
device (``Native.restore``); backends never see anything else.

``__dlpack_device__`` decides the device: CPU memory becomes a NumPy array,
CUDA memory a CuPy array.  No framework is imported here: a PyTorch tensor
or a JAX array can only exist if its framework is already in ``sys.modules``.

Copies, and why (everything else is zero-copy, a view of the caller's memory):

- NumPy -> JAX (results only): JAX owns its buffers and copies on the way in.
- bfloat16, which NumPy's DLPack importer cannot express: on the CPU a
  PyTorch tensor is viewed as int16 and re-viewed as ``ml_dtypes.bfloat16``
  (zero-copy), a JAX array is read through ``__array__`` (zero-copy).  Where
  that is impossible (CUDA, where CuPy has no bfloat16, or ``ml_dtypes`` is
  missing) the producer casts to float32 (one copy) and the result is cast
  back to bfloat16 by the producer.
- A PyTorch tensor that requires grad is ``detach()``-ed first (a view,
  no copy): DLPack refuses to export it otherwise.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ._geometry import check_float_dtype

# DLPack device types (dlpack.h): which memory a native array of ours can live in.
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13


@dataclass(frozen=True)
class Native:
    """A native array and the way back to the caller's kind of array."""

    array: Any
    restore: Callable[[Any], Any]
    device: str  # "cpu" or "cuda:<id>"


def _identity(a):
    return a


def _loaded(module: str):
    """A framework's module if the process already imported it (never imports)."""
    return sys.modules.get(module)


def device_of(value, name: str) -> str:
    """``"cpu"`` or ``"cuda:<id>"`` for an array, without reading its data."""
    if isinstance(value, np.ndarray) or not hasattr(value, "__dlpack_device__"):
        return "cpu"  # NumPy, scalars and sequences
    kind, index = value.__dlpack_device__()
    kind = int(kind)
    if kind in (_DL_CPU, _DL_CUDA_HOST):
        return "cpu"
    if kind in (_DL_CUDA, _DL_CUDA_MANAGED):
        return f"cuda:{int(index)}"
    raise ValueError(f"{name}: expected an array in CPU or CUDA memory, got one on DLPack device type {kind}")


def _cupy(name: str, device: str):
    try:
        import cupy
    except ImportError:
        raise ImportError(
            f"{name}: an array on {device} needs CuPy, which is not installed "
            f"(pip install 'adapool-core[cuda12]' or '[cuda13]')"
        ) from None
    return cupy


def _bfloat16_numpy_dtype():
    """``ml_dtypes.bfloat16`` if available, else None (then bfloat16 goes through float32)."""
    try:
        import ml_dtypes
    except ImportError:
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _import_dlpack(value, device: str, name: str):
    """A NumPy (CPU) or CuPy (CUDA) view of a DLPack producer."""
    if device == "cpu":
        return np.from_dlpack(value)
    return _cupy(name, device).from_dlpack(value)


# --- PyTorch ----------------------------------------------------------------

def _numpy_to_torch(torch, a):
    """A tensor sharing the result's memory (NumPy or CuPy)."""
    if a.dtype.name == "bfloat16":  # ml_dtypes on the CPU: DLPack has no NumPy bfloat16
        return torch.from_dlpack(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_dlpack(a)


def _from_torch(torch, t, device: str, name: str) -> Native:
    t = t.detach()  # a view: DLPack will not export a tensor that requires grad
    restore = lambda a: _numpy_to_torch(torch, a)  # noqa: E731
    if t.dtype == torch.bfloat16:
        bf16 = _bfloat16_numpy_dtype()
        if device == "cpu" and bf16 is not None:
            return Native(np.from_dlpack(t.view(torch.int16)).view(bf16), restore, device)
        # CuPy has no bfloat16: compute from a float32 copy, give bfloat16 back.
        return Native(_import_dlpack(t.float(), device, name),
                      lambda a: _numpy_to_torch(torch, a).to(torch.bfloat16), device)
    return Native(_import_dlpack(t, device, name), restore, device)


# --- JAX --------------------------------------------------------------------

def _from_jax(jax, a, device: str, name: str) -> Native:
    if isinstance(a, jax.core.Tracer):
        raise TypeError(f"{name}: expected a concrete array, got a traced JAX value "
                        f"(inside jit/grad/vmap): use the functions of adapool_core.jax there")
    jax_device = next(iter(a.devices()))
    if device == "cpu":
        # __array__ is a zero-copy view on the CPU and also covers bfloat16.
        return Native(np.asarray(a), lambda r: jax.device_put(r, jax_device), device)
    if a.dtype == jax.numpy.bfloat16:  # CuPy has no bfloat16: a float32 copy there and back
        return Native(_import_dlpack(a.astype(jax.numpy.float32), device, name),
                      lambda r: jax.dlpack.from_dlpack(r).astype(jax.numpy.bfloat16), device)
    return Native(_import_dlpack(a, device, name), jax.dlpack.from_dlpack, device)


# --- any other DLPack producer ----------------------------------------------

def _from_dlpack(value, device: str, name: str) -> Native:
    native = _import_dlpack(value, device, name)
    namespace = getattr(value, "__array_namespace__", None)
    # Array API producers take results back through their own from_dlpack;
    # others get the native array (NumPy/CuPy), which implements __dlpack__.
    restore = namespace().from_dlpack if namespace is not None else _identity
    return Native(native, restore, device)


def to_native(value, name: str, like: Native | None = None, like_name: str = "x") -> Native:
    """The caller's array as a NumPy/CuPy array, without copying where possible.

    With ``like``, the array must live on ``like``'s device (ValueError naming
    both devices otherwise); checked before any data is read.
    """
    if isinstance(value, (np.generic, int, float, list, tuple)):
        try:
            value = np.asarray(value)
        except ValueError as err:  # ragged nesting: say which argument
            raise ValueError(f"{name}: expected a rectangular nested sequence of numbers, got {err}") from None
    device = device_of(value, name)
    if like is not None:
        check_same_device(like.device, device, like_name, name)
    if isinstance(value, np.ndarray):
        return Native(value, _identity, device)
    cupy = _loaded("cupy")
    if cupy is not None and isinstance(value, cupy.ndarray):
        return Native(value, _identity, device)
    torch = _loaded("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return _from_torch(torch, value, device, name)
    jax = _loaded("jax")
    if jax is not None and isinstance(value, jax.Array):
        return _from_jax(jax, value, device, name)
    if hasattr(value, "__dlpack__"):
        return _from_dlpack(value, device, name)
    raise TypeError(f"{name}: expected a NumPy array (or an array implementing __dlpack__), "
                    f"got {type(value).__name__}")


def check_same_device(device_a: str, device_b: str, name_a: str, name_b: str) -> None:
    """ValueError naming ``name_b`` and both devices unless they are the same."""
    if device_a != device_b:
        raise ValueError(f"{name_b}: expected an array on the same device as {name_a} ({device_a}), "
                         f"got one on {device_b}")


def check_float(native: Native, name: str) -> None:
    check_float_dtype(native.array.dtype, name)
