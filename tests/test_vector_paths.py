"""The vector kernels (``_cpu/vector.py``, and ``_cpu/vector_idw.py`` for IDW:
any last-axis window width and stride, float32 and float64) against the
float64 loop reference: forward, mask, exact gradients of x and beta, on
rows long enough to hold many interior windows next to clipped edge windows
(padding, ceil_mode, remainders), overlapping and not; the NaN/inf policy
per window; and IDW's vector kernels against its general kernels on ties
and zero distances."""
import zlib

import numpy as np
import pytest

import adapool_core as ap
import reference as ref
import reference_grad as ref_grad
from adapool_core._cpu import launch
from adapool_core._cpu.launch import chunk_kernels
from adapool_core._cpu.vector import VECTOR_KERNELS
from adapool_core._cpu.vector_idw import VECTOR_IDW_KERNELS
from adapool_core._geometry import pool_geometry
from adapool_core._methods import METHOD_CODES
from support import call_backward, call_pool, pool_against_reference, rel_err

# The plane kernels would take most of these cases (test_plane_paths.py tests them).
pytestmark = pytest.mark.usefixtures("no_plane_kernels")

VECTOR_METHODS = ("adapool", "edscwpool", "empool", "idwpool")
# (d, kernel, stride, padding, ceil_mode, spatial size): none is a row-kernel case in float32.
CASES = [
    (2, 3, 1, 1, False, (5, 17)),  # overlapping "same" pooling
    (2, 5, 1, 2, False, (6, 15)),  # spatial-pyramid style
    (2, (2, 4), (2, 3), (1, 1), True, (5, 20)),  # remainder, ceil_mode
    (2, 3, 3, 1, True, (4, 16)),
    (1, 4, 1, 0, False, (19,)),
    (3, (2, 2, 3), (2, 1, 1), (0, 1, 1), True, (3, 4, 15)),
]
TOL = {np.float64: 1e-13, np.float32: 1e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d,k,s,p,ceil_mode,size", CASES)
@pytest.mark.parametrize("method", VECTOR_METHODS)
def test_vector_kernels_match_the_reference(method, d, k, s, p, ceil_mode, size, dtype):
    rng = np.random.default_rng(zlib.crc32(repr((method, d, k, s, p, size)).encode()))
    x = rng.standard_normal((2, 3) + size).astype(dtype)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    geom = pool_geometry(x.shape, d, k, s, p, ceil_mode, "test")
    expected = VECTOR_IDW_KERNELS if method == "idwpool" else VECTOR_KERNELS
    assert chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) is expected
    beta = rng.uniform(-0.2, 1.2, geom.out_shape[-d:]).astype(dtype)
    _, _, _, gx, gb, gx_ref, gb_ref = pool_against_reference(ap, method, d, x, beta, kw, TOL[dtype], rng)
    assert rel_err(gx, gx_ref) <= TOL[dtype]
    if method == "adapool":
        assert rel_err(gb, gb_ref.sum(axis=(0, 1))) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", VECTOR_METHODS)
def test_vector_kernels_on_large_range_inputs(method, dtype):
    """Values from 1e-30 to 1e30 (and their negatives) in overlapping windows:
    softmax normalisers near underflow and overflow stay exact per window."""
    rng = np.random.default_rng(7)
    big = 1e30 if dtype == np.float64 else 1e18
    x = (rng.choice([-1, 1], (1, 2, 4, 21)) * 10.0 ** rng.uniform(-30, np.log10(big), (1, 2, 4, 21))).astype(dtype)
    kw = dict(kernel_size=3, stride=1, padding=1)
    y_ref, _ = ref.pool(method, x, 0.4, **kw)
    y = call_pool(ap, method, 2, x, 0.4, **kw)
    assert np.isfinite(y).all()
    assert rel_err(y, y_ref) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_kernels_propagate_nan_and_inf_per_window(dtype):
    x = np.random.default_rng(0).standard_normal((1, 1, 3, 15)).astype(dtype)
    x[0, 0, 1, 6] = np.nan
    x[0, 0, 1, 12] = -np.inf
    for method in VECTOR_METHODS:
        y = call_pool(ap, method, 2, x, 0.5, kernel_size=(1, 3), stride=1, padding=(0, 1))
        # NaN reaches exactly the windows holding column 6 of row 1 (outputs 5, 6, 7),
        # -inf those holding column 12 (11, 12, 13); every other window stays finite.
        assert np.isnan(y[0, 0, 1, 5:8]).all(), method
        assert (~np.isfinite(y[0, 0, 1])).nonzero()[0].tolist() == [5, 6, 7, 11, 12, 13], method
        assert np.isfinite(y[0, 0, [0, 2]]).all(), method


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ("adapool", "empool"))
def test_shared_em_exps_fall_back_where_a_window_max_is_far_below_the_row_max(method, dtype):
    """eM shares exp(x - c) along a row (c: the row's largest window max); windows whose
    max lies more than the margin (60 float32, 600 float64) below c use their own max.
    A row of steps puts both kinds, and windows straddling a step, side by side."""
    rng = np.random.default_rng(11)
    drop = 200.0 if dtype == np.float32 else 2000.0
    x = rng.standard_normal((1, 2, 4, 24))
    x[..., 8:16] -= drop
    x[:, 1, 2, :] -= np.linspace(0, 3 * drop, 24)  # a ramp: every window at its own level
    x = x.astype(dtype)
    kw = dict(kernel_size=(2, 5), stride=1, padding=(0, 2))
    y_ref, w_ref = ref.pool(method, x, 0.3, **kw)
    y, w = call_pool(ap, method, 2, x, 0.3, return_mask=True, **kw)
    assert rel_err(y, y_ref) <= TOL[dtype]
    assert rel_err(w, w_ref) <= TOL[dtype]
    g = rng.standard_normal(y.shape)
    gx_ref, _, _, _ = ref_grad.pool_gradient(method, x, 0.3, g, (2, 5), 1, (0, 2), False)
    gx, _ = call_backward(ap, method, 2, g.astype(dtype), x, 0.3, **kw)
    assert rel_err(gx, gx_ref) <= TOL[dtype]

# (d, kernel, stride, padding, ceil_mode, spatial size) for IDW: CASES' overlapping and
# strided rows, plus 2x2/2 and 3x3/2 (the float32 row-kernel cases of the other methods).
IDW_CASES = CASES + [
    (2, 2, 2, 0, False, (6, 12)),
    (2, 3, 2, 1, True, (7, 16)),
]


def idw_inputs(shape, dtype, rng):
    """Normal values, and small integers: windows with ties, with a cell at the mean
    (zero distance, shared weight) and constant windows."""
    return rng.standard_normal(shape).astype(dtype), rng.integers(-2, 3, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d,k,s,p,ceil_mode,size", IDW_CASES)
def test_idw_vector_kernels_equal_the_general_kernels(d, k, s, p, ceil_mode, size, dtype, monkeypatch):
    """Same outputs and weights bit for bit (same operations in the same order per
    window); gradients up to the order an input cell sums its windows' terms; and the
    integer inputs' zero distances against the reference."""
    rng = np.random.default_rng(zlib.crc32(repr(("idw", d, k, s, p, size)).encode()))
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    geom = pool_geometry((2, 3) + size, d, k, s, p, ceil_mode, "test")
    assert chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES["idwpool"]) is VECTOR_IDW_KERNELS
    for x in idw_inputs((2, 3) + size, dtype, rng):
        g = rng.standard_normal(geom.out_shape).astype(dtype)
        results = []
        for general in (False, True):
            if general:
                monkeypatch.setattr(launch, "chunk_kernels", lambda *args: None)
            y, w = call_pool(ap, "idwpool", d, x, None, return_mask=True, **kw)
            grads = [call_backward(ap, "idwpool", d, g, x, None, mode=mode, **kw)[0] for mode in ("exact", "paper")]
            results.append((y, w, grads))
        monkeypatch.undo()
        (y, w, grads), (y_gen, w_gen, grads_gen) = results
        np.testing.assert_array_equal(y, y_gen)
        np.testing.assert_array_equal(w, w_gen)
        for gx, gx_gen in zip(grads, grads_gen):
            assert rel_err(gx, gx_gen) <= TOL[dtype]
        y_ref, w_ref = ref.pool("idwpool", x, None, **kw)
        assert rel_err(y, y_ref) <= TOL[dtype]
        assert rel_err(w, w_ref) <= TOL[dtype]
