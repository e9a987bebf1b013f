"""The row kernels (last-axis window 2 or 3 at stride 2; ``_cpu.rows``): float32
against the general float64 kernels, which test_forward / test_backward check
against the reference, and float64 against the reference itself and, in paper
mode, the general kernels: forward, mask, exact and paper gradients, beta's
gradient, with edge windows (padding, ceil_mode, sizes that leave a remainder)
mixed into the same rows."""
import zlib

import numpy as np
import pytest

import adapool_core as ap
from adapool_core import _cpu
from adapool_core._geometry import pool_geometry
from adapool_core._methods import METHOD_CODES
from support import METHODS, call_backward, call_pool, path_and_general, pool_against_reference, rel_err

# The plane kernels would take most of these cases (test_plane_paths.py tests them).
pytestmark = pytest.mark.usefixtures("no_plane_kernels")

# IDW has no row kernel (the general kernel serves it, tested against the reference).
ROW_METHODS = tuple(m for m in METHODS if m != "idwpool")

# (d, kernel, stride, padding, ceil_mode, spatial size): last-axis (k, s) is (2, 2) or (3, 2).
CASES = [
    (2, 2, 2, 0, False, (8, 12)),
    (2, 2, 2, 1, True, (7, 9)),
    (2, 3, 2, 0, False, (9, 11)),
    (2, 3, 2, 1, True, (8, 10)),
    (2, (2, 3), (1, 2), (1, 1), False, (6, 9)),
    (1, 3, 2, 1, False, (13,)),
    (1, 2, 2, 0, True, (9,)),
    (3, (2, 2, 2), (1, 2, 2), (1, 0, 1), True, (3, 5, 7)),
    (3, 3, 2, 1, False, (5, 5, 7)),
]


@pytest.mark.parametrize("d,k,s,p,ceil_mode,size", CASES)
@pytest.mark.parametrize("method", ROW_METHODS)
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e2])
def test_row_kernels_match_float64(method, d, k, s, p, ceil_mode, size, scale):
    # A stable seed (hash() of a str is salted per process).
    rng = np.random.default_rng(zlib.crc32(repr((method, d, k, s, p, size, scale)).encode()))
    x64 = scale * rng.standard_normal((2, 3) + size)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    geom = pool_geometry(x64.shape, d, k, s, p, ceil_mode, "test")
    x32 = x64.astype(np.float32)
    assert _cpu._row_kernels(x32, geom, METHOD_CODES[method]) is not None
    beta64 = rng.uniform(-0.2, 1.2, geom.out_shape[-d:])
    beta32 = beta64.astype(np.float32)
    y64, w64 = call_pool(ap, method, d, x64.astype(np.float32).astype(np.float64), beta32.astype(np.float64),
                         return_mask=True, **kw)
    y32, w32 = call_pool(ap, method, d, x32, beta32, return_mask=True, **kw)
    assert rel_err(y32, y64) <= 1e-5
    assert rel_err(w32, w64) <= 1e-5
    np.testing.assert_array_equal(call_pool(ap, method, d, x32, beta32, **kw), y32)
    g = rng.standard_normal(y64.shape)
    for mode in ("exact", "paper"):
        gx64, gb64 = call_backward(ap, method, d, g, x32.astype(np.float64), beta32.astype(np.float64),
                                   mode=mode, **kw)
        gx32, gb32 = call_backward(ap, method, d, g.astype(np.float32), x32, beta32, mode=mode, **kw)
        assert gx32.dtype == np.float32
        assert rel_err(gx32, gx64) <= 1e-5
        if method == "adapool":
            assert rel_err(gb32, gb64) <= 1e-5


@pytest.mark.parametrize("d,k,s,p,ceil_mode,size", CASES)
@pytest.mark.parametrize("method", ROW_METHODS)
def test_float64_row_kernels_match_the_reference(method, d, k, s, p, ceil_mode, size, monkeypatch):
    rng = np.random.default_rng(zlib.crc32(repr(("float64", method, d, k, s, p, size)).encode()))
    x = rng.standard_normal((2, 3) + size)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    geom = pool_geometry(x.shape, d, k, s, p, ceil_mode, "test")
    assert _cpu._row_kernels(x, geom, METHOD_CODES[method]) is not None
    beta = rng.uniform(-0.2, 1.2, geom.out_shape[-d:])
    _, _, g, gx, gb, gx_ref, gb_ref = pool_against_reference(ap, method, d, x, beta, kw, 1e-13, rng)
    assert gx.dtype == np.float64
    assert rel_err(gx, gx_ref) <= 1e-13
    if method == "adapool":
        assert rel_err(gb, gb_ref.sum(axis=(0, 1))) <= 1e-13
    (_, _, gx_paper, gb_paper), (_, _, gx_gen, gb_gen) = path_and_general(ap, method, d, x, beta, g, "paper",
                                                                          monkeypatch, **kw)
    assert rel_err(gx_paper, gx_gen) <= 1e-13
    if method == "adapool":
        assert rel_err(gb_paper, gb_gen) <= 1e-13


def test_row_kernels_take_the_vector_backward_on_3x3_stride_2():
    """3x3/2 rows: the row forward, the vector backward (which shares eM's exps between a
    row's overlapping windows: measured faster, docs/benchmarks.md); 2x2/2: both the row
    kernels'; IDW: none (its vector kernels)."""
    from adapool_core._cpu.vector import VECTOR_KERNELS

    def rows(k, method="adapool"):
        geom = pool_geometry((1, 2, 8, 300), 2, k, 2, 0, False, "test")
        return _cpu._row_kernels(np.empty(0, np.float64), geom, METHOD_CODES[method])

    assert rows(3).backward is VECTOR_KERNELS.backward and rows(3).forward is not VECTOR_KERNELS.forward
    assert rows(2).backward is not VECTOR_KERNELS.backward and rows(2).forward is not VECTOR_KERNELS.forward
    assert rows(3, "idwpool") is None


def test_row_kernels_propagate_nan_and_inf_per_window():
    x = np.random.default_rng(0).standard_normal((1, 1, 4, 12)).astype(np.float32)
    x[0, 0, 1, 5] = np.nan  # window (0, 2)
    x[0, 0, 2, 8] = -np.inf  # window (1, 4)
    for method in METHODS:
        y = call_pool(ap, method, 2, x, 0.5)
        expected = np.zeros((2, 6), bool)
        expected[0, 2] = True
        assert np.isnan(y[0, 0, 0]).tolist() == expected[0].tolist()
        assert np.isfinite(np.delete(y[0, 0].reshape(-1), [2, 10])).all()
