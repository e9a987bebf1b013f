"""adaPool's backward in slices of the NC rows, so that dL/dbeta per output cell
is never held whole when beta is smaller than the output (issue 11, memory).

The backends write dL/dbeta per output cell, a buffer the size of the output,
which is then summed to beta's shape.  Where beta is smaller, the rows are
cut into *blocks* (whole batches, or channel ranges of one batch) whose
buffer holds at most ``1/BLOCK_FRACTION`` of the input (and at least
``BLOCK_MIN_BYTES``, and one row); each block's buffer is summed to beta's
shape and added to the result in block order.  The blocks depend on the
geometry alone, so the result does not depend on the thread count.  A
backward launch (a *slice*) takes as many consecutive blocks as the backend
needs to keep its threads busy (``min_backward_rows``), usually one.

Forward+backward then peaks at the output + grad_x + one slice's buffer.
Kernel-agnostic: both backends take the slices through the ``gx3``/``gb3``
out arguments of ``backward``; a sub-geometry's ``(n, c)`` make the kernels'
beta index ``n * bstr[0] + c * bstr[1] + ...`` that of the whole, once
beta is offset to the slice's first row.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ._geometry import compute_dtype

BLOCK_FRACTION = 16
BLOCK_MIN_BYTES = 1 << 18  # below this a launch costs more than the memory it saves


def _blocks(geom, block_rows):
    """(n0, c0, n count, c count) of each block, in row order: ``block_rows``
    rows of whole batches where that holds a batch, else channel ranges of one batch."""
    n_all, c_all = geom.n, geom.c
    if block_rows >= c_all:
        step = block_rows // c_all
        return [(n0, 0, min(step, n_all - n0), c_all) for n0 in range(0, n_all, step)]
    return [(n0, c0, 1, min(block_rows, c_all - c0)) for n0 in range(n_all) for c0 in range(0, c_all, block_rows)]


def _slices(geom, blocks, min_rows):
    """Row ranges [r0, r1) of consecutive blocks, each of at least ``min_rows``
    rows where the blocks allow, that one launch can take: rows of one batch,
    or whole batches."""
    c_all = geom.c
    r0 = r1 = 0
    for n0, c0, nb, cb in blocks:
        if r1 > r0:
            one_batch = r0 // c_all == (r1 - 1) // c_all
            whole_batches = r0 % c_all == 0 and r1 % c_all == 0
            crosses = c0 == 0 and r0 % c_all != 0  # the next block starts a batch, the run began inside one
            if crosses or (r1 - r0 >= min_rows and (one_batch or whole_batches)):
                yield r0, r1
                r0 = r1
        r1 = n0 * c_all + c0 + nb * cb
    if r1 > r0:
        yield r0, r1


def _sub_geometry(geom, r0, r1):
    """(sub-geometry, n0, c0) of rows [r0, r1): its (n, c) give each row the
    (n - n0, c - c0) of the whole."""
    n0, c0 = divmod(r0, geom.c)
    if n0 == (r1 - 1) // geom.c:
        return dataclasses.replace(geom, n=1, c=r1 - r0), n0, c0
    return dataclasses.replace(geom, n=(r1 - r0) // geom.c), n0, 0


def sum_to_shape(g, shape):
    """Sum a broadcast gradient back to the shape it was broadcast from."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def backward_summing_beta(backend, x3, g3, gw3, beta_flat, bstr, geom, method, exact, beta_shape):
    """(gx3, dL/dbeta summed to ``beta_shape``, or None where the method has no beta)."""
    out5 = (geom.n, geom.c) + geom.out_size
    beta5 = tuple(size if stride else 1 for size, stride in zip(out5, bstr))
    gb_dtype = compute_dtype(x3.dtype)
    row_bytes = max(1, int(np.prod(geom.out_size)) * np.dtype(gb_dtype).itemsize)
    block_rows = max(1, BLOCK_MIN_BYTES // row_bytes, x3.nbytes // BLOCK_FRACTION // row_bytes)
    if beta_shape is None or np.prod(beta5) == np.prod(out5) or block_rows >= geom.nc:
        gx3, gb3 = backend.backward(x3, g3, beta_flat, bstr, geom, method, exact, gw3)
        return gx3, (None if gb3 is None else sum_to_shape(gb3.reshape(geom.out_shape), beta_shape))
    xp = backend.xp
    blocks = _blocks(geom, block_rows)
    slices = list(_slices(geom, blocks, backend.min_backward_rows(geom)))
    gx3 = xp.zeros(geom.in_shape3, dtype=x3.dtype)
    gb_buffer = xp.empty((max(r1 - r0 for r0, r1 in slices),) + geom.out_size, dtype=gb_dtype)
    grad_beta = xp.zeros(beta5, dtype=gb_dtype)
    block_at = 0
    for r0, r1 in slices:
        sub, n0, c0 = _sub_geometry(geom, r0, r1)
        _, gb3 = backend.backward(x3[r0:r1], g3[r0:r1], beta_flat[n0 * bstr[0] + c0 * bstr[1]:], bstr, sub, method,
                                  exact, None if gw3 is None else gw3[r0:r1], gx3[r0:r1], gb_buffer[:r1 - r0])
        while block_at < len(blocks) and blocks[block_at][0] * geom.c + blocks[block_at][1] < r1:
            bn0, bc0, nb, cb = blocks[block_at]
            block_at += 1
            at = bn0 * geom.c + bc0 - r0
            gb5 = gb3[at:at + nb * cb].reshape((nb, cb) + geom.out_size)
            axes = tuple(i for i, n in enumerate(beta5) if n == 1 and gb5.shape[i] != 1)
            part = gb5.sum(axis=axes, keepdims=True) if axes else gb5
            n_at = slice(bn0, bn0 + nb) if beta5[0] != 1 else slice(0, 1)
            c_at = slice(bc0, bc0 + cb) if beta5[1] != 1 else slice(0, 1)
            grad_beta[n_at, c_at] += part
    return gx3, grad_beta.reshape(beta_shape)
