"""The CPU backend's interface: pure functions on canonical, contiguous arrays
of the compute dtype, which choose and launch the kernels.  ``_ops``
converts, validates and reshapes; the CUDA backend offers the same four
functions.

Outputs are allocated here and passed in; kernels allocate only per-thread
scratch of a few floats per output column.
"""
from __future__ import annotations

import functools
import threading

import numba
import numpy as np

from .._geometry import cover_counts
from .._methods import ADA
from .general import pool_backward, pool_forward
from .rows import row_kernels
from .unpool import unpool_backward, unpool_forward

_WORKQUEUE_LOCK = threading.Lock()


def _n_chunks():
    """Row chunks per kernel launch: a few per thread (read here, not in the
    kernel: numba.get_num_threads() inside a kernel defeats its disk cache)."""
    return 4 * numba.get_num_threads()


def _launch(kernel, *args):
    """Run a parallel kernel.  Numba's fallback threading layer (workqueue,
    used where neither TBB nor OpenMP is installed) aborts the process when
    two Python threads enter parallel code at once, so launches are
    serialised there; with tbb/omp they run concurrently."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel launch yet: the layer is not chosen
        layer = None
    if layer in ("tbb", "omp"):
        return kernel(*args)
    with _WORKQUEUE_LOCK:
        return kernel(*args)


def forward(x3, beta_flat, bstr, geom, method, want_mask):
    """(y3, mask3 or None) for x3 of shape geom.in_shape3."""
    y3 = np.empty(geom.out_shape3, dtype=x3.dtype)
    mask3 = np.zeros(geom.mask_shape3 if want_mask else (0,) * 7, dtype=x3.dtype)
    args = (x3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, y3, mask3, want_mask)
    rows = row_kernels(x3, geom, method)
    if rows is None:
        _launch(pool_forward, *args)
    else:
        _launch(rows.forward, *args, _n_chunks())
    return y3, (mask3 if want_mask else None)


def backward(x3, gy3, beta_flat, bstr, geom, method, exact, gw3=None):
    """(gx3, gb3) where gb3 (ADA only, else None) is dL/dbeta per output cell;
    gw3 (shaped as the weights, or None): the cotangent of the returned weights."""
    gx3 = np.zeros(geom.in_shape3, dtype=x3.dtype)
    gb3 = np.empty(geom.out_shape3 if method == ADA else (0, 0, 0, 0), dtype=x3.dtype)
    args = (x3, gy3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, exact, gx3, gb3)
    rows = row_kernels(x3, geom, method) if gw3 is None else None
    if rows is None:
        has_gw = gw3 is not None
        gw = gw3 if has_gw else np.zeros((1,) * 7, dtype=x3.dtype)
        _launch(pool_backward, *args, geom.phase_classes(3), gw, has_gw)
    else:
        # Row kernels own whole last-axis rows: phase classes over the two leading dims.
        _launch(rows.backward, *args, geom.phase_classes(2), _n_chunks())
    return gx3, (gb3 if method == ADA else None)


@functools.lru_cache(maxsize=16)
def _cover(geom, dtype):
    """(D1, D2, D3) array: how many windows contain each cell, 1 where none does;
    None where windows never overlap (nothing to divide).  Cached: read only."""
    c1, c2, c3 = cover_counts(geom)
    if max(c1.max(), c2.max(), c3.max()) <= 1:
        return None
    cover = np.maximum(c1[:, None, None] * c2[None, :, None] * c3[None, None, :], 1).astype(dtype)
    cover.flags.writeable = False
    return cover


def unpool(y3, w3, geom, by_window):
    out3 = np.zeros(geom.in_shape3, dtype=y3.dtype)  # cells no window covers stay 0
    _launch(unpool_forward, y3, w3, geom.kernel, geom.stride, geom.padding, by_window, out3,
            geom.phase_classes(3))
    cover = _cover(geom, out3.dtype) if by_window else None
    if cover is not None:
        out3 /= cover
    return out3


def unpool_grad(g3, w3, geom, by_window, y3=None):
    """gy3, or (gy3, gw3) given y3: the gradients of adaUnPool for y and w."""
    gy3 = np.empty(geom.out_shape3, dtype=g3.dtype)
    want_gw = y3 is not None
    gw3 = np.zeros(geom.mask_shape3 if want_gw else (1,) * 7, dtype=g3.dtype)
    cover = _cover(geom, g3.dtype) if by_window else None
    if cover is not None:
        g3 = g3 / cover
    _launch(unpool_backward, g3, w3, y3 if want_gw else gy3, geom.kernel, geom.stride, geom.padding, by_window,
            gy3, gw3, want_gw)
    return (gy3, gw3) if want_gw else gy3
