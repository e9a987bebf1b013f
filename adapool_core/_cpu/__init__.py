"""CPU backend: Numba kernels, pure functions on NumPy arrays.

Every kernel works on the canonical 3-D form (see ``_geometry``): arrays are
``(NC, D1, D2, D3)``; 1-D and 2-D problems arrive with singleton leading
spatial dims.  One kernel per direction serves every method (``_methods``).

Modules, one per concern:

- ``fastexp``: exp (vectorisable polynomials, float32 and float64) and the jit options;
- ``scratch``: per-chunk scratch placed against 4K aliasing (arrays and rows at
  distinct offsets modulo 4 KiB);
- ``window``: the per-cell formulas and window statistics, written once and
  named as in ``cuda/adapool.cu``; the kernels' geometry structures;
- ``general``: the general per-window kernels (any geometry, method, dtype);
- ``rows``: row kernels for last-axis windows 2 or 3 wide at stride
  2 (2x2/2 and 3x3/2 pooling), which vectorise across the windows of an
  output row (docs/benchmarks.md), and the table of their cases;
- ``planes``: plane-block kernels (lanes over blocks of 16 planes, any window
  geometry), chosen first for overlapping windows and short rows
  (``launch.plane_kernels_fit``), every method;
- ``planes_idw``: IDW's block kernels in the plane chunk loops;
- ``flat``: global pooling (one window over each whole flattened row), lanes
  over 16 cells of the row, every method;
- ``vector``: row kernels for any last-axis window width and stride, float32
  and float64 (the generalisation of ``rows``; every other case of eDSCW,
  eM and adaPool);
- ``vector_idw``: the same row kernels for IDW (more passes per window);
- ``unpool``: adaUnPool's kernels;
- ``launch``: the backend interface the rest of the package calls (choosing
  and launching kernels: the row and vector kernels on Python threads, each
  compiled per dtype and method; serialising parfor launches where Numba
  needs it);
- ``precompile``: ``adapool compile``, every kernel into Numba's disk cache.

The scattering kernels (pooling backward, adaUnPool forward) visit windows in
the phase classes that ``PoolGeometry.phase_classes`` computes for both
backends (docs/cuda.md).
"""
from __future__ import annotations

import numpy as np

from .._geometry import compute_dtype
from .general import pool_backward, pool_forward
from .launch import _launch, backward, forward, min_backward_rows, unpool, unpool_grad
from .rows import ROW_KERNELS, row_kernels as _row_kernels
from .unpool import unpool_backward, unpool_forward

xp = np  # the array module of this backend


def array_dtype(dtype, argument: str = "x") -> np.dtype:
    """The dtype the kernels take arrays in: float64 stays, half types and
    float32 compute in float32 (``argument``: for the CUDA backend's errors;
    ``_ops`` has checked the dtype already)."""
    return compute_dtype(dtype)

__all__ = ["xp", "array_dtype", "forward", "backward", "min_backward_rows", "unpool", "unpool_grad"]
