"""The flat kernels (``_cpu/flat.py``: global pooling, one window over each whole row, lanes
over 16 cells of the row) against the float64 loop reference and the general kernels:
forward, weights, exact and paper gradients of x and beta, float32 and float64, row widths
that leave every kind of tail (1, 15, 16, 17, 196, 1000) and a padded window over a whole
row.  Every row gets its own scale and offset (``planes_input``), so a cell read from or
written to another row fails the comparison; and the NaN/inf policy (the general kernels'
results), the kernel choice and independence from the thread count and the chunking."""
import zlib

import numba
import numpy as np
import pytest

import adapool_core as ap
from adapool_core._cpu import launch
from adapool_core._cpu.flat import FLAT_KERNELS
from adapool_core._geometry import adaptive_geometry, global_geometry, pool_geometry
from adapool_core._methods import METHOD_CODES
from support import METHODS, call_backward, call_pool, path_and_general, pool_against_reference, rel_err
from test_plane_paths import general_only, planes_input

WIDTHS = (1, 15, 16, 17, 196, 1000)
LEAD = (2, 5)
TOL = {np.float64: 1e-13, np.float32: 1e-5}


def whole_row(n, padding=0):
    """1-D pooling arguments whose one window covers a row of n cells."""
    k = n + 2 * padding
    return dict(kernel_size=k, stride=k, padding=padding, ceil_mode=False)


def rows_input(rng, lead, size, dtype, method):
    """``planes_input``'s rows (own scale and offset per row); for IDW, integers (|x| < 100)
    times a power of two per row instead.  IDW's weights divide by the distances to the
    mean, and on long random rows a cell lies within a few ulps of it: the mean's rounding,
    which depends on the order of summation (the lanes' is not the reference's nor the
    general kernels'), then moves the weights and gradients by orders more than any
    tolerance says.  These rows' sums are exact in any order (below 2**24 in float32)."""
    if method != "idwpool":
        return planes_input(rng, lead, size, dtype)
    ints = rng.integers(-50, 50, lead + size) + rng.integers(-40, 40, lead + (1,) * len(size))
    return np.ldexp(ints.astype(np.float64), rng.integers(-6, 7, lead + (1,) * len(size))).astype(dtype)


def chosen(shape, d, kw, method="adapool", dtype=np.float32):
    geom = pool_geometry(shape, d, kw["kernel_size"], kw["stride"], kw["padding"], False, "test")
    return launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) is FLAT_KERNELS


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n,padding", [(n, 0) for n in WIDTHS] + [(15, 1)])
@pytest.mark.parametrize("method", METHODS)
def test_flat_kernels_match_the_reference(method, n, padding, dtype, monkeypatch):
    rng = np.random.default_rng(zlib.crc32(repr((method, n, padding, dtype)).encode()))
    x = rows_input(rng, LEAD, (n,), dtype, method)
    kw = whole_row(n, padding)
    assert chosen(x.shape, 1, kw, method, dtype)
    beta = rng.uniform(-0.2, 1.2, (LEAD[1], 1)).astype(dtype)  # per channel, both sides of the clamp
    y, y_ref, g, gx, gb, gx_ref, gb_ref = pool_against_reference(ap, method, 1, x, beta, kw, TOL[dtype], rng)
    gx_tol = 10 * TOL[dtype]
    if method == "idwpool":
        # As in test_plane_paths: IDW's exact gradient divides by v - mean and loses digits to
        # cancellation in any kernel: held to the general kernels', to 100x TOL (its sums
        # through the mean, of both signs, go in another order; measured 13x on 1000 cells).
        general_only(monkeypatch)
        gx_ref, _ = call_backward(ap, method, 1, g.astype(dtype), x, beta, **kw)
        gx_tol = 100 * TOL[dtype]
    for row in np.ndindex(*LEAD):  # a row of small values must not hide behind the large ones
        assert rel_err(gx[row], gx_ref[row]) <= gx_tol, row
        assert rel_err(y[row], y_ref[row]) <= TOL[dtype], row
    if method == "adapool":
        assert rel_err(gb, gb_ref.sum(axis=0)) <= 10 * TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["exact", "paper"])
@pytest.mark.parametrize("method", METHODS)
def test_flat_kernels_match_the_general_kernels(method, mode, dtype, monkeypatch):
    """Both gradient modes, through adaptive 2-D global pooling (flattened rows of 14 x 14,
    a tail of 4), against the general kernels (which test_forward and test_backward check)."""
    rng = np.random.default_rng(zlib.crc32(repr((method, mode, dtype)).encode()))
    x = rows_input(rng, (3, 7), (14, 14), dtype, method)
    beta = rng.uniform(-0.2, 1.2, (7, 1, 1)).astype(dtype)
    g = rng.standard_normal((3, 7, 1, 1)).astype(dtype)
    kw = dict(kernel_size=14, stride=14, padding=0)
    geom = global_geometry(adaptive_geometry(x.shape, 2, 1, "test"))
    assert launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) is FLAT_KERNELS
    (y, w, gx, gb), (y_gen, w_gen, gx_gen, gb_gen) = path_and_general(ap, method, 2, x, beta, g, mode, monkeypatch,
                                                                      **kw)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert rel_err(y, y_gen) <= tol
    assert rel_err(w, w_gen) <= 10 * tol
    # The lanes sum in another order than the general kernels: on rows of scale 1e2, float32
    # eM's 1 + (v - yM) keeps ~1e-5 of the gradient's digits in either (test above: 1e-4 of
    # the reference).
    for plane in np.ndindex(3, 7):
        assert rel_err(gx[plane], gx_gen[plane]) <= 100 * tol, plane
    if method == "adapool":
        assert rel_err(gb, gb_gen) <= 10 * tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_flat_idw_zero_distances_and_constant_rows(mode, dtype, monkeypatch):
    """Rows whose smallest distance to the mean is 0 (constant, a cell equal to the mean,
    ties) beside ordinary ones: the general kernels' values, weights and gradients."""
    rng = np.random.default_rng(13)
    x = planes_input(rng, (1, 6), (17,), dtype)
    x[0, 0] = 2.5
    x[0, 1] = np.arange(17, dtype=dtype) - 8  # the centre cell is the mean
    x[0, 2, ::2] = 0
    x[0, 2, 1::2] = 1
    g = rng.standard_normal((1, 6, 1)).astype(dtype)
    kw = whole_row(17)
    y, w = call_pool(ap, "idwpool", 1, x, None, return_mask=True, **kw)
    gx, _ = call_backward(ap, "idwpool", 1, g, x, None, mode=mode, **kw)
    general_only(monkeypatch)
    y_gen, w_gen = call_pool(ap, "idwpool", 1, x, None, return_mask=True, **kw)
    gx_gen, _ = call_backward(ap, "idwpool", 1, g, x, None, mode=mode, **kw)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert rel_err(y, y_gen) <= tol
    np.testing.assert_array_equal(w[0, :2], w_gen[0, :2])  # equal shares among zero distances
    assert rel_err(w, w_gen) <= tol
    assert rel_err(gx, gx_gen) <= 10 * tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_kernels_take_nan_and_inf_as_the_general_kernels(dtype, monkeypatch):
    """A NaN in one row, an inf in another: the call is the general kernels' (bitwise)."""
    rng = np.random.default_rng(5)
    x = planes_input(rng, (2, 9), (40,), dtype)
    x[0, 3, 17] = np.nan
    x[1, 2, 39] = np.inf
    x[1, 8, 0] = -np.inf
    g = rng.standard_normal((2, 9, 1)).astype(dtype)
    kw = whole_row(40)
    for method in METHODS:
        for mode in ("exact", "paper"):
            y, w = call_pool(ap, method, 1, x, 0.5, return_mask=True, **kw)
            gx, gb = call_backward(ap, method, 1, g, x, 0.5, mode=mode, **kw)
            assert np.isfinite(y[0, :3]).all() and np.isnan(y[0, 3]).all(), method
            with monkeypatch.context() as m:
                general_only(m)
                y_gen, w_gen = call_pool(ap, method, 1, x, 0.5, return_mask=True, **kw)
                gx_gen, gb_gen = call_backward(ap, method, 1, g, x, 0.5, mode=mode, **kw)
            np.testing.assert_array_equal(y, y_gen)
            np.testing.assert_array_equal(w, w_gen)
            np.testing.assert_array_equal(gx, gx_gen)
            if method == "adapool":
                np.testing.assert_array_equal(gb, gb_gen)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_results_do_not_depend_on_threads_or_chunks(dtype):
    """Bitwise the same with 1 and 2 threads (rows enough for two), and rows 1.. of x are
    those of x[:, 1:] (the backward's slices of the rows start anywhere)."""
    rng = np.random.default_rng(3)
    x = planes_input(rng, (1, 400), (196,), dtype)
    g = rng.standard_normal((1, 400, 1)).astype(dtype)
    kw = whole_row(196)
    threads = numba.get_num_threads()
    for method in METHODS:
        out = []
        for t in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(t)
            try:
                out.append((call_pool(ap, method, 1, x, 0.4, **kw), call_backward(ap, method, 1, g, x, 0.4, **kw)[0]))
            finally:
                numba.set_num_threads(threads)
        np.testing.assert_array_equal(out[0][0], out[1][0])
        np.testing.assert_array_equal(out[0][1], out[1][1])
        y1 = call_pool(ap, method, 1, x[:, 1:], 0.4, **kw)
        gx1, _ = call_backward(ap, method, 1, g[:, 1:], x[:, 1:], 0.4, **kw)
        np.testing.assert_array_equal(out[0][0][:, 1:], y1)
        np.testing.assert_array_equal(out[0][1][:, 1:], gx1)


def test_flat_kernels_are_chosen_for_whole_row_windows_only():
    assert chosen((32, 256, 196), 1, whole_row(196))
    assert chosen((2, 3, 15), 1, whole_row(15, 1), method="idwpool", dtype=np.float64)  # padded, whole row
    assert not chosen((2, 3, 5), 1, dict(kernel_size=3, stride=3, padding=0))  # one window, part of the row
    # One window over the row, but 2 rows tall with one padded: the row sits at weight offset 1
    # of the leading dim (a CI failure of test_forward: the flat kernels had taken it).
    assert not chosen((1, 1, 1, 2), 2, dict(kernel_size=(2, 2), stride=(2, 1), padding=(1, 0)))
    geom = global_geometry(adaptive_geometry((32, 256, 14, 14), 2, 1, "test"))
    for method in METHODS:
        assert launch.chunk_kernels(np.empty(0, np.float32), geom, METHOD_CODES[method]) is FLAT_KERNELS
