"""Build the unchanged CUDA kernels with g++ under tests/support/emulation.h and
launch them through ctypes, as a backend of ``_cuda.Backend`` (docs/cuda.md).

The harness is generated here, not in the product: it includes the kernel
source (the text ``_cuda.kernel_source()`` gives CuPy) and defines one
extern "C" entry point per name expression of ``_cuda.name_expressions()``.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess

import numpy as np

from adapool_core import _cuda

from . import cuda_check_unavailable

GXX = shutil.which("g++")
EMULATION_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "emulation.h")
# -ffp-contract=off: no fused multiply-add, so host rounding follows the source.
CXXFLAGS = ("-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wextra")


def symbol(expression: str) -> str:
    """C identifier of the entry point of one name expression."""
    return "emulated_" + re.sub(r"\W+", "_", expression).strip("_")


def entry_points_harness() -> str:
    """The default harness: one extern "C" entry point per name expression."""
    return f'#include "{_cuda.SOURCE_NAME}"\n' + "".join(
        f"ADAPOOL_EMULATED_KERNEL({symbol(expr)}, {expr})\n" for expr in _cuda.name_expressions())


def build(tmpdir, defines=(), harness=None, name="adapool_emulated") -> ctypes.CDLL:
    """Compile the kernels for the CPU into tmpdir; returns the loaded library.

    ``defines``: extra -D macros (e.g. ADAPOOL_INDEX32_LIMIT=0 for the 64-bit index path).
    ``harness``: C++ source that includes the kernels and defines the entry points
    (default :func:`entry_points_harness`).  Without g++, skips the test (fails
    under ADAPOOL_REQUIRE_CUDA_CHECKS=1).
    """
    if GXX is None:
        cuda_check_unavailable("g++ not found: the CPU emulation of the CUDA kernels needs it")
    tmpdir = str(tmpdir)
    # The kernels include CUDA's half headers; emulation.h defines the types instead.
    for header in ("cuda_fp16.h", "cuda_bf16.h"):
        with open(os.path.join(tmpdir, header), "w") as f:
            f.write("// emulation: types in emulation.h\n")
    with open(os.path.join(tmpdir, _cuda.SOURCE_NAME), "w") as f:
        f.write(_cuda.kernel_source())
    harness_path = os.path.join(tmpdir, f"{name}.cpp")
    with open(harness_path, "w") as f:
        f.write(entry_points_harness() if harness is None else harness)
    library = os.path.join(tmpdir, f"{name}.so")
    cmd = [GXX, *CXXFLAGS, *(f"-D{d}" for d in defines), "-include", EMULATION_H, "-I", tmpdir, harness_path,
           "-o", library]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"g++ failed ({' '.join(cmd)}):\n{done.stderr}")
    return ctypes.CDLL(library)


class Launcher:
    """``launch(name_expression, blocks, threads, args)`` on the emulated kernels.

    Arguments go in as CUDA's kernelParams do: an array of pointers, each to
    one argument's value (array data pointers and long longs).
    """

    def __init__(self, library: ctypes.CDLL):
        self.library = library
        self.launches = []  # (name_expression, blocks, threads) of every launch, for tests

    def __call__(self, name, blocks, threads, args):
        values = []
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous, name
                values.append(ctypes.c_void_p(a.ctypes.data))
            else:
                values.append(ctypes.c_longlong(int(a)))
        params = (ctypes.c_void_p * len(values))(*(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values))
        entry = getattr(self.library, symbol(name))
        entry.argtypes = (ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p))
        entry.restype = None
        self.launches.append((name, blocks, threads))
        entry(blocks, threads, params)


class PoisonedNumPy:
    """NumPy whose ``empty`` is filled with NaN, so that a cell the kernels
    should write but do not shows up (fresh memory is often zero)."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def empty(shape, dtype=float):
        return np.full(shape, np.nan, dtype=dtype)


def backend(library: ctypes.CDLL, max_blocks: int = _cuda.MAX_BLOCKS) -> _cuda.Backend:
    """The CUDA backend on NumPy arrays, running the emulated kernels."""
    return _cuda.Backend(PoisonedNumPy(), Launcher(library), max_blocks=max_blocks)
