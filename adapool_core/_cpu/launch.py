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
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba._dispatcher import compute_fingerprint
from numba.core import types

from .._geometry import cover_counts, global_geometry
from .._methods import ADA, IDW
from .flat import FLAT_KERNELS
from .general import pool_backward, pool_forward
from .planes import PLANE_KERNELS, PLANE_SHARED_KERNELS, backward_shares_em_exps
from .rows import interior, row_kernels
from .unpool import unpool_backward, unpool_forward
from .vector import vector_kernels

_WORKQUEUE_LOCK = threading.Lock()


_ENTRY_POINTS = {}  # (kernel, method, argument fingerprints) -> compiled entry point


def _compiled(kernel, args, literal_at):
    """The compiled entry point of kernel for args, with args[literal_at] (the
    method) as the compile-time literal the kernel asks for (``literally``).

    Calling the dispatcher itself would type the plain int first, fail over to
    the literal and find the overload again: milliseconds under the GIL on
    every call (measured 4 ms a call, and it serialised the launcher's threads).
    Looked up here instead, compiling on the first call, and memoised by
    the arguments' fingerprints (the key of Numba's own fast path;
    ``numba.typeof`` of every argument cost 1 ms a call).
    """
    key = (kernel, args[literal_at], tuple(compute_fingerprint(a) for i, a in enumerate(args) if i != literal_at))
    entry = _ENTRY_POINTS.get(key)
    if entry is None:
        sig = tuple(types.literal(a) if i == literal_at else numba.typeof(a) for i, a in enumerate(args))
        cres = kernel.overloads.get(sig)
        if cres is None:
            kernel.compile(sig)
            cres = kernel.overloads[sig]
        entry = _ENTRY_POINTS[key] = cres.entry_point
    return entry


# Position of ``method`` in the pooling kernels' arguments.
_FORWARD_METHOD_ARG = 7
_BACKWARD_METHOD_ARG = 8


def _launch(kernel, *args, literal_at=None):
    """Run a parallel kernel.  Numba's fallback threading layer (workqueue,
    used where neither TBB nor OpenMP is installed) aborts the process when
    two Python threads enter parallel code at once, so launches are
    serialised there; with tbb/omp they run concurrently."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel launch yet: the layer is not chosen
        layer = None
    if literal_at is not None:
        kernel = _compiled(kernel, args, literal_at)
    if layer in ("tbb", "omp"):
        return kernel(*args)
    with _WORKQUEUE_LOCK:
        return kernel(*args)


# Below this many input cells a launch runs on the calling thread alone: the
# threads' start-up would cost more than they save.
_MIN_CELLS_PER_THREAD = 1 << 15
_POOL = None
_POOL_LOCK = threading.Lock()


def _thread_pool(n_threads):
    """The launcher's worker threads (created once; again if the thread count grows)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n_threads:
            _POOL = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="adapool")
        return _POOL


def _run_row_chunks(chunk_kernel, args, n_rows, n_cells, literal_at):
    """chunk_kernel(*args, r0, r1) over an even split of rows 0 .. n_rows-1
    (args[literal_at]: the method, a compile-time literal).

    The chunk kernels release the GIL: with numba.get_num_threads() > 1 the
    chunks run on that many Python threads (the caller's among them), so
    ``numba.set_num_threads`` still sets the parallelism.  A chunk owns whole
    rows and the split does not change what any row computes: results do not
    depend on the thread count.
    """
    chunk_kernel = _compiled(chunk_kernel, args + (0, n_rows), literal_at)
    n_threads = min(numba.get_num_threads(), n_rows, max(1, n_cells // _MIN_CELLS_PER_THREAD))
    if n_threads <= 1:
        chunk_kernel(*args, 0, n_rows)
        return
    n_chunks = min(n_rows, 4 * n_threads)  # a few per thread: balances uneven rows
    chunks = iter([(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks) for c in range(n_chunks)])
    lock = threading.Lock()

    def drain():
        # Every thread, the caller's among them, takes the next chunk until none is left (the
        # caller taking one chunk and the workers the rest had one worker run 7 of 8 chunks
        # at 2 threads: measured 1.6x slower than an even split).
        while True:
            with lock:
                bounds = next(chunks, None)
            if bounds is None:
                return
            chunk_kernel(*args, *bounds)

    pool = _thread_pool(n_threads - 1)
    futures = [pool.submit(drain) for _ in range(n_threads - 1)]
    try:
        drain()
    finally:
        for f in futures:
            f.result()  # re-raises a chunk's error


def min_backward_rows(geom):
    """The fewest NC rows a backward launch takes to keep every thread busy
    (``_beta_slices`` launches no fewer where it can)."""
    cells_per_row = geom.in_size[0] * geom.in_size[1] * geom.in_size[2]
    return -(-numba.get_num_threads() * _MIN_CELLS_PER_THREAD // max(1, cells_per_row))


def chunk_kernels(x3, geom, method):
    """The chunk kernels (a ``RowKernels``) for this problem: the flat kernels (``flat``)
    for one window over each whole row, the plane kernels (``planes``; their backward
    sharing eM's exps where ``backward_shares_em_exps``) where
    ``plane_kernels_fit``, else a row-kernel case (``rows``),
    else the vector kernels (``vector``); None for the general kernels."""
    if geom.out_size[2] == 1 and geom.in_size[:2] == (1, 1):
        # One window per row: global pooling (the window covers the row) takes the flat
        # kernels; a window over part of the row, the general kernels.
        return FLAT_KERNELS if whole_row_window(geom) else None
    if plane_kernels_fit(geom, method):
        return PLANE_SHARED_KERNELS if backward_shares_em_exps(geom, method, x3.dtype) else PLANE_KERNELS
    return row_kernels(x3, geom, method) or vector_kernels(x3, geom, method)


def whole_row_window(geom):
    """Whether the one window of each flat row covers the whole row (adaptive, or unpadded
    cells from the first to the last) and nothing else: the leading dims' windows one cell,
    unpadded (a window of 2 padded by 1 over a size-1 dim puts the row at weight offset 1,
    which the flat kernels, writing offset 0 there, do not place)."""
    k, s, p = geom.kernel[2], geom.stride[2], geom.padding[2]
    trivial_leading = geom.kernel[:2] == (1, 1) and geom.padding[:2] == (0, 0)
    return geom.out_size == (1, 1, 1) and trivial_leading and (s == 0 or k - p >= geom.in_size[2])


# The plane kernels' limits (measured, docs/benchmarks.md): below this many interior windows
# along the last axis, or with overlapping windows, they beat the row and vector kernels
# (28 non-overlapping windows, (8, 64, 56, 56) k2 s2: 1.5x faster; 56, (32, 64, 112, 112)
# k2 s2: 1.1x slower; 256, (32, 256, 512) k2 s2: 1.3x slower).
_PLANE_MAX_INTERIOR = 48
# Planes of at most this many cells: a block's transposed input (planes.B of them) stays in L2.
_PLANE_MAX_CELLS = 1 << 15


def plane_kernels_fit(geom, method):
    """Whether the plane kernels serve this problem (every method; IDW: ``planes_idw``'s blocks): no adaptive dim,
    planes of at most ``_PLANE_MAX_CELLS``, and overlapping windows or short rows.

    Not by the plane count: ``_beta_slices`` launches the backward on slices of the
    planes whose size depends on the thread count, and every slice must take the
    kernels of the whole (results must not depend on the thread count)."""
    D1, D2, D3 = geom.in_size
    if 0 in geom.stride or D1 * D2 * D3 > _PLANE_MAX_CELLS:
        return False
    overlapping = any(k > s for k, s in zip(geom.kernel, geom.stride))
    a, b = interior(geom.kernel[2], geom.stride[2], geom.padding[2], D3, geom.out_size[2])
    return overlapping or b - a < _PLANE_MAX_INTERIOR


def _run_plane_blocks(chunk_kernel, args, x3, block, literal_at):
    """Run the plane kernel over its blocks; False where a block held a NaN or an inf:
    the caller then computes the call with the general kernels, whose NaN/inf policy
    is the spec's (rare, and it keeps the general code out of the plane kernels'
    compilation: the first call's time)."""
    n_blocks = -(-x3.shape[0] // block)
    nonfinite = np.zeros(n_blocks, dtype=np.uint8)
    _run_row_chunks(chunk_kernel, args + (nonfinite,), n_blocks, x3.size, literal_at)
    return not nonfinite.any()


def forward(x3, beta_flat, bstr, geom, method, want_mask):
    """(y3, mask3 or None) for x3 of shape geom.in_shape3."""
    flat = global_geometry(geom)
    if flat is not None:  # one window over the whole input: pool the flattened rows
        y3, mask3 = forward(x3.reshape(flat.in_shape3), beta_flat, bstr, flat, method, want_mask)
        return y3.reshape(geom.out_shape3), (mask3.reshape(geom.mask_shape3) if want_mask else None)
    y3 = np.empty(geom.out_shape3, dtype=x3.dtype)
    mask3 = np.zeros(geom.mask_shape3 if want_mask else (0,) * 7, dtype=x3.dtype)
    args = (x3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, y3, mask3, want_mask)
    rows = chunk_kernels(x3, geom, method)
    if rows is None:
        _launch(pool_forward, *args, literal_at=_FORWARD_METHOD_ARG)
    elif rows.plane_block:
        if not _run_plane_blocks(rows.forward, args, x3, rows.plane_block, _FORWARD_METHOD_ARG):
            _launch(pool_forward, *args, literal_at=_FORWARD_METHOD_ARG)
    else:
        _run_row_chunks(rows.forward, args, y3.shape[0] * y3.shape[1] * y3.shape[2], x3.size, _FORWARD_METHOD_ARG)
    return y3, (mask3 if want_mask else None)


def _reshaped(a, shape):
    return None if a is None else a.reshape(shape)


def backward(x3, gy3, beta_flat, bstr, geom, method, exact, gw3=None, gx3=None, gb3=None):
    """(gx3, gb3) where gb3 (ADA only, else None) is dL/dbeta per output cell;
    gw3 (shaped as the weights, or None): the cotangent of the returned weights.
    gx3 (zero-filled, geom.in_shape3) and gb3 (geom.out_shape3), where given,
    are written into instead of allocated (``_ops`` passes slices of its own)."""
    flat = global_geometry(geom)
    if flat is not None:
        gx3, gb3 = backward(x3.reshape(flat.in_shape3), gy3.reshape(flat.out_shape3), beta_flat, bstr, flat,
                            method, exact, _reshaped(gw3, flat.mask_shape3), _reshaped(gx3, flat.in_shape3),
                            _reshaped(gb3, flat.out_shape3))
        return gx3.reshape(geom.in_shape3), _reshaped(gb3, geom.out_shape3)
    if gx3 is None:
        gx3 = np.zeros(geom.in_shape3, dtype=x3.dtype)
    if gb3 is None or method != ADA:
        gb3 = np.empty(geom.out_shape3 if method == ADA else (0, 0, 0, 0), dtype=x3.dtype)
    args = (x3, gy3, beta_flat, bstr, geom.c, geom.kernel, geom.stride, geom.padding, method, exact, gx3, gb3)
    rows = chunk_kernels(x3, geom, method) if gw3 is None else None
    if rows is None:
        has_gw = gw3 is not None
        gw = gw3 if has_gw else np.zeros((1,) * 7, dtype=x3.dtype)
        _launch(pool_backward, *args, geom.phase_classes(3), gw, has_gw, literal_at=_BACKWARD_METHOD_ARG)
    elif rows.plane_block:  # a chunk owns whole planes: no two chunks write one cell
        if not _run_plane_blocks(rows.backward, args, x3, rows.plane_block, _BACKWARD_METHOD_ARG):
            gx3[...] = 0
            _launch(pool_backward, *args, geom.phase_classes(3), np.zeros((1,) * 7, dtype=x3.dtype), False,
                    literal_at=_BACKWARD_METHOD_ARG)
    else:
        # Row kernels own whole last-axis rows: phase classes over the two leading dims,
        # one after another (a class's rows share no input cell).
        classes = geom.phase_classes(2)
        for cls in range(classes.shape[0]):
            _run_row_chunks(rows.backward, args + (classes, cls), gy3.shape[0] * classes[cls, 6] * classes[cls, 7],
                            x3.size, _BACKWARD_METHOD_ARG)
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
