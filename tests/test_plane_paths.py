"""The plane kernels (``_cpu/planes.py``, IDW's blocks ``_cpu/planes_idw.py``: lanes over blocks of planes) against
the float64 loop reference and the general kernels: forward, mask, exact and
paper gradients of x and beta, for ranks 1-3, float32 and float64, edge
windows (padding, ceil_mode), plane counts that leave a tail block, and beta
scalar, per channel and per location.  Every plane gets its own scale and
offset, so a lane reading or writing another plane's cells fails the
comparison; and the NaN/inf policy, per plane; IDW's ties, zero distances and
constant windows, lane by lane."""
import zlib

import numpy as np
import pytest

import adapool_core as ap
import reference as ref
import reference_grad as ref_grad
from adapool_core._cpu import launch
from adapool_core._cpu.planes import B, PLANE_KERNELS, PLANE_SHARED_KERNELS
from adapool_core._geometry import pool_geometry
from adapool_core._methods import METHOD_CODES
from support import call_backward, call_pool, path_and_general, pool_against_reference, rel_err

PLANE_METHODS = ("adapool", "edscwpool", "empool", "idwpool")
# (d, kernel, stride, padding, ceil_mode, spatial size): overlapping or short rows.
CASES = [
    (2, 3, 1, 1, False, (5, 7)),  # overlapping "same" pooling
    (2, 5, 1, 2, False, (6, 6)),  # spatial-pyramid style: every window clipped somewhere
    (2, (2, 3), (2, 2), (1, 1), True, (5, 8)),  # ceil_mode edge windows, a remainder
    (2, 2, 2, 0, False, (4, 6)),  # non-overlapping, short rows
    (1, 4, 1, 2, True, (11,)),
    (3, (2, 2, 3), (2, 1, 1), (0, 1, 1), True, (3, 4, 5)),
]
# (N, C): 2 * 9 planes (a full block and a tail of 2), 5 (one partial block), B (one full).
LEADS = [(2, 9), (1, 5), (1, B)]
TOL = {np.float64: 1e-13, np.float32: 1e-5}
# The plane kernels, with and without eM's shared exps in the backward (``backward_shares_em_exps``).
PLANE_FAMILY = (PLANE_KERNELS, PLANE_SHARED_KERNELS)


def planes_input(rng, lead, size, dtype):
    """Normal values, scaled and shifted per plane (1e-2 to 1e2): lanes must not mix."""
    x = rng.standard_normal(lead + size)
    n_planes = lead[0] * lead[1]
    scale = 10.0 ** rng.uniform(-2, 2, n_planes).reshape(lead + (1,) * len(size))
    shift = rng.uniform(-3, 3, n_planes).reshape(lead + (1,) * len(size))
    return ((x + shift) * scale).astype(dtype)


def beta_of(kind, rng, lead, out_size, dtype):
    if kind == "scalar":
        return 0.3
    if kind == "channel":
        return rng.uniform(-0.2, 1.2, (lead[1],) + (1,) * len(out_size)).astype(dtype)
    return rng.uniform(-0.2, 1.2, out_size).astype(dtype)


def general_only(monkeypatch):
    monkeypatch.setattr(launch, "chunk_kernels", lambda x3, geom, method: None)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d,k,s,p,ceil_mode,size", CASES)
@pytest.mark.parametrize("method", PLANE_METHODS)
def test_plane_kernels_match_the_reference(method, d, k, s, p, ceil_mode, size, dtype, monkeypatch):
    rng = np.random.default_rng(zlib.crc32(repr((method, d, k, s, p, size, dtype)).encode()))
    lead = LEADS[zlib.crc32(repr((k, size)).encode()) % len(LEADS)]
    x = planes_input(rng, lead, size, dtype)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode)
    geom = pool_geometry(x.shape, d, k, s, p, ceil_mode, "test")
    assert launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) in PLANE_FAMILY
    beta = beta_of("location", rng, lead, geom.out_shape[-d:], dtype)
    y, y_ref, g, gx, gb, gx_ref, gb_ref = pool_against_reference(ap, method, d, x, beta, kw, TOL[dtype], rng)
    if method == "idwpool":
        # IDW's exact gradient divides by v - mean: on these shifted planes it loses digits
        # to cancellation in any kernel (float32 2e-3 from the reference, the general kernels
        # alike), so its x gradient is held to the general kernels'.
        general_only(monkeypatch)
        gx_ref, _ = call_backward(ap, method, d, g.astype(dtype), x, beta, **kw)
    # Per plane: a plane of small values must not hide behind the large ones.
    for plane in np.ndindex(*lead):
        assert rel_err(gx[plane], gx_ref[plane]) <= 10 * TOL[dtype], plane
        assert rel_err(y[plane], y_ref[plane]) <= TOL[dtype], plane
    if method == "adapool":
        assert rel_err(gb, gb_ref.sum(axis=(0, 1))) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("beta_kind", ["scalar", "channel", "location"])
@pytest.mark.parametrize("mode", ["exact", "paper"])
@pytest.mark.parametrize("method", PLANE_METHODS)
def test_plane_kernels_match_the_general_kernels(method, mode, beta_kind, dtype, monkeypatch):
    """Both gradient modes and every beta broadcast, against the general kernels
    (which test_forward and test_backward check against the reference)."""
    rng = np.random.default_rng(zlib.crc32(repr((method, mode, beta_kind, dtype)).encode()))
    lead = (3, 7)  # 21 planes: a full block and a tail of 5
    x = planes_input(rng, lead, (6, 9), dtype)
    kw = dict(kernel_size=3, stride=1, padding=1)
    beta = beta_of(beta_kind, rng, lead, (6, 9), dtype)
    g = rng.standard_normal((3, 7, 6, 9)).astype(dtype)
    (y, w, gx, gb), (y_gen, w_gen, gx_gen, gb_gen) = path_and_general(ap, method, 2, x, beta, g, mode, monkeypatch,
                                                                      **kw)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    assert rel_err(y, y_gen) <= tol
    assert rel_err(w, w_gen) <= tol
    for plane in np.ndindex(*lead):
        assert rel_err(gx[plane], gx_gen[plane]) <= 10 * tol, plane
    if method == "adapool":
        assert gb.shape == np.shape(beta)
        assert rel_err(gb, gb_gen) <= 10 * tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plane_results_do_not_depend_on_the_block(dtype):
    """A plane's results are the same whichever block and lane compute it (the backward's
    slices of the planes start anywhere): planes 1 .. of x are bitwise those of x[1:]."""
    rng = np.random.default_rng(3)
    x = planes_input(rng, (1, 2 * B + 3), (7, 7), dtype)
    g = rng.standard_normal((1, 2 * B + 3, 7, 7)).astype(dtype)
    for method in PLANE_METHODS:
        kw = dict(kernel_size=3, stride=1, padding=1)
        y = call_pool(ap, method, 2, x, 0.4, **kw)
        gx, _ = call_backward(ap, method, 2, g, x, 0.4, **kw)
        y1 = call_pool(ap, method, 2, x[:, 1:], 0.4, **kw)
        gx1, _ = call_backward(ap, method, 2, g[:, 1:], x[:, 1:], 0.4, **kw)
        np.testing.assert_array_equal(y[:, 1:], y1)
        np.testing.assert_array_equal(gx[:, 1:], gx1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plane_kernels_take_nan_and_inf_as_the_general_kernels(dtype, monkeypatch):
    """A NaN in one plane and an inf in another: those planes come out as the general
    kernels give them (NaN/inf only in the windows that hold them), and every other
    plane of their block is untouched by them."""
    rng = np.random.default_rng(5)
    x = planes_input(rng, (1, B + 2), (5, 9), dtype)
    x[0, 3, 2, 4] = np.nan
    x[0, B + 1, 0, 8] = np.inf
    x[0, 7, 4, 0] = -np.inf
    g = rng.standard_normal((1, B + 2, 5, 9)).astype(dtype)
    kw = dict(kernel_size=3, stride=1, padding=1)
    for method in PLANE_METHODS:
        y, w = call_pool(ap, method, 2, x, 0.5, return_mask=True, **kw)
        gx, gb = call_backward(ap, method, 2, g, x, 0.5, **kw)
        finite = [c for c in range(B + 2) if c not in (3, 7, B + 1)]
        assert np.isfinite(y[0, finite]).all() and np.isfinite(gx[0, finite]).all(), method
        assert np.isnan(y[0, 3, 1:4, 3:6]).all() and np.isfinite(y[0, 3, 4]).all(), method
        with monkeypatch.context() as m:
            general_only(m)
            y_gen, w_gen = call_pool(ap, method, 2, x, 0.5, return_mask=True, **kw)
            gx_gen, gb_gen = call_backward(ap, method, 2, g, x, 0.5, **kw)
        for plane in (3, 7, B + 1):
            np.testing.assert_array_equal(y[0, plane], y_gen[0, plane])
            np.testing.assert_array_equal(w[0, plane], w_gen[0, plane])
            # Same NaN and inf; finite terms summed in another window order (no phase classes).
            scale = np.abs(gx_gen[0, plane][np.isfinite(gx_gen[0, plane])]).max()
            np.testing.assert_allclose(gx[0, plane], gx_gen[0, plane], rtol=0, atol=1e-5 * scale)
        tol = 1e-14 if dtype == np.float64 else 1e-6
        assert rel_err(y[0, finite], y_gen[0, finite]) <= tol
        assert rel_err(gx[0, finite], gx_gen[0, finite]) <= 10 * tol
        if method == "adapool":
            np.testing.assert_array_equal(np.isnan(gb), np.isnan(gb_gen))


def test_plane_kernels_are_chosen_by_the_measured_rule():
    """Overlapping windows or short rows take them (every method); long non-overlapping
    rows, adaptive dims and planes too large for a block's scratch do not."""
    def chosen(shape, d, k, s, p, method="adapool", dtype=np.float32):
        geom = pool_geometry(shape, d, k, s, p, False, "test")
        return launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) in PLANE_FAMILY

    assert chosen((8, 64, 56, 56), 2, 3, 1, 1)
    assert chosen((8, 256, 20, 20), 2, 5, 1, 2, dtype=np.float64)
    assert chosen((8, 64, 56, 56), 2, 3, 2, 0)
    assert chosen((8, 64, 56, 56), 2, 2, 2, 0)  # 28 windows a row
    assert chosen((1, 3, 30, 30), 2, 3, 1, 1)  # few planes: chosen all the same (slices of the backward)
    assert not chosen((32, 64, 112, 112), 2, 2, 2, 0)  # 56 windows a row
    assert not chosen((32, 256, 512), 1, 2, 2, 0)
    assert not chosen((1, 3, 1024, 1024), 2, 3, 1, 1)  # planes of 1 Mi cells
    assert chosen((8, 256, 20, 20), 2, 5, 1, 2, method="idwpool", dtype=np.float64)
    assert chosen((8, 64, 56, 56), 2, 3, 1, 1, method="idwpool")
    assert not chosen((32, 64, 112, 112), 2, 2, 2, 0, method="idwpool")


def test_plane_backward_shares_em_exps_where_the_scratch_is_small():
    """eM and adaPool on windows overlapping 4x or more share eM's exps in the backward while
    that scratch (P * B cells per thread) is at most 64 KiB: k5 s1 on 20 x 20 planes, not
    k3 s1 on 56 x 56 (test_memory's peak), nor eDSCW or IDW (no eM), nor k3 s2 (too little overlap)."""
    def kernels(shape, k, s, p, method="adapool", dtype=np.float32):
        geom = pool_geometry(shape, 2, k, s, p, False, "test")
        return launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method])

    assert kernels((8, 256, 20, 20), 5, 1, 2) is PLANE_SHARED_KERNELS
    assert kernels((8, 256, 20, 20), 5, 1, 2, "empool", np.float64) is PLANE_SHARED_KERNELS
    assert kernels((8, 256, 20, 20), 5, 1, 2, "edscwpool") is PLANE_KERNELS
    assert kernels((8, 256, 20, 20), 5, 1, 2, "idwpool") is PLANE_KERNELS
    assert kernels((8, 64, 56, 56), 3, 1, 1) is PLANE_KERNELS
    assert kernels((8, 64, 56, 56), 3, 2, 0) is PLANE_KERNELS
    assert kernels((2, 3, 9, 10), 3, 1, 1, "empool") is PLANE_SHARED_KERNELS


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["exact", "paper"])
@pytest.mark.parametrize("method", ["adapool", "empool"])
def test_plane_backward_with_and_without_shared_exps_agree(method, mode, dtype, monkeypatch):
    """The shared-exps backward against the one computing each window's exps, on planes
    with a tail block and per-plane scales (results differ by rounding only)."""
    rng = np.random.default_rng(zlib.crc32(repr((method, mode, dtype)).encode()))
    lead, size = (3, 7), (7, 8)
    x = planes_input(rng, lead, size, dtype)
    beta = (rng.uniform(0, 1, size).astype(dtype),) if method == "adapool" else ()
    g = rng.standard_normal(lead + size).astype(dtype)
    backward = getattr(ap, f"{method}2d_backward")
    kw = dict(kernel_size=5, stride=1, padding=2, mode=mode)
    geom = pool_geometry(x.shape, 2, 5, 1, 2, False, "test")
    assert launch.chunk_kernels(x, geom, METHOD_CODES[method]) is PLANE_SHARED_KERNELS
    shared = backward(g, x, *beta, **kw)
    monkeypatch.setattr(launch, "backward_shares_em_exps", lambda geom, method, dtype: False)
    assert launch.chunk_kernels(x, geom, METHOD_CODES[method]) is PLANE_KERNELS
    own = backward(g, x, *beta, **kw)
    tol = 1e-14 if dtype == np.float64 else 1e-6
    (gx, gx_own) = (shared[0], own[0]) if method == "adapool" else (shared, own)
    # float32: each within 10 tol of the float64 result (fused multiply-adds included), so
    # within 20 tol of each other (they round differently, not in one direction); float64: 10 tol.
    apart = 20 * tol if dtype == np.float32 else 10 * tol
    wide = [a.astype(np.float64) for a in (g, x) + beta]
    exact = backward(*wide, **kw)
    gx_exact = exact[0] if method == "adapool" else exact
    for plane in np.ndindex(*lead):
        assert rel_err(gx[plane], gx_own[plane]) <= apart, plane
        if dtype == np.float32:
            assert rel_err(gx[plane], gx_exact[plane]) <= 10 * tol, plane
            assert rel_err(gx_own[plane], gx_exact[plane]) <= 10 * tol, plane
    if method == "adapool":
        assert rel_err(shared[1], own[1]) <= apart
        if dtype == np.float32:
            assert rel_err(shared[1], exact[1]) <= 10 * tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_plane_idw_ties_zero_distances_and_constant_windows(mode, dtype, monkeypatch):
    """Windows whose smallest distance to the mean is 0 (constant planes, a cell equal to
    the mean, ties) next to ordinary ones in the same block: outputs and weights bitwise
    the general kernels', gradients to rounding (another window order)."""
    rng = np.random.default_rng(11)
    lead = (1, B + 3)  # a full block and a tail of 3
    x = planes_input(rng, lead, (5, 6), dtype)
    x[0, 0] = 2.5  # constant: every window has dmin == 0, nzero == its cell count
    x[0, 4] = np.round(x[0, 4])  # ties and exact means
    x[0, 6, :3, :3] = np.array([[-1, 0, 1]] * 3, dtype)  # window (1, 1) k3: the centre column equals the mean
    x[0, 9, ::2] = 0  # zeros beside values
    x[0, B + 1] = -7.0
    kw = dict(kernel_size=3, stride=1, padding=1)
    g = rng.standard_normal(lead + (5, 6)).astype(dtype)
    y, w = ap.idwpool2d(x, return_mask=True, **kw)
    gx = ap.idwpool2d_backward(g, x, mode=mode, **kw)
    with monkeypatch.context() as m:
        general_only(m)
        y_gen, w_gen = ap.idwpool2d(x, return_mask=True, **kw)
        gx_gen = ap.idwpool2d_backward(g, x, mode=mode, **kw)
    np.testing.assert_array_equal(y, y_gen)
    np.testing.assert_array_equal(w, w_gen)
    np.testing.assert_array_equal(y[0, 0], 2.5)
    np.testing.assert_array_equal(w[0, 0, 2, 2], np.full((3, 3), 1 / 9, dtype))
    tol = 1e-14 if dtype == np.float64 else 1e-6
    for plane in range(lead[1]):
        assert rel_err(gx[0, plane], gx_gen[0, plane]) <= 10 * tol, plane


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 1), (2, 2, 0)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", ["adapool", "empool"])
def test_plane_windows_far_below_the_plane_max_keep_their_own_max(method, dtype, k, s, p, monkeypatch):
    """eM's exps are shared per plane where windows overlap 4x or more (k3 s1), shifted by
    the plane's max; a window more than ``shared_exp_margin`` below it keeps its own max
    (else its weights underflow to 0 and its output is NaN: this test fails with the
    fallback disabled).  k3 s2 and k2 s2 (each window its own max) hold to the same checks.  Every other
    plane of the block is stepped by 2000 halfway along its rows, so some lanes of a
    window fall back and others do not; forward, mask and exact gradient against the
    float64 reference, the paper gradient against the general kernels."""
    rng = np.random.default_rng(11)
    lead, size = (1, B + 3), (6, 12)
    x = rng.standard_normal(lead + size)
    x[0, ::2, :, size[1] // 2:] += 2000.0
    x = x.astype(dtype)
    kw = dict(kernel_size=k, stride=s, padding=p)
    geom = pool_geometry(x.shape, 2, k, s, p, False, "test")
    beta = rng.uniform(0, 1, geom.out_size[1:]).astype(dtype)
    assert launch.chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method]) in PLANE_FAMILY
    y_ref, w_ref = ref.pool(method, x, beta, **kw)
    y, w = call_pool(ap, method, 2, x, beta, return_mask=True, **kw)
    g = rng.standard_normal(y.shape)
    gx_ref, _, _, _ = ref_grad.pool_gradient(method, x, beta, g, k, s, p, False)
    gx, _ = call_backward(ap, method, 2, g.astype(dtype), x, beta, **kw)
    gx_paper, _ = call_backward(ap, method, 2, g.astype(dtype), x, beta, mode="paper", **kw)
    general_only(monkeypatch)
    gx_paper_gen, _ = call_backward(ap, method, 2, g.astype(dtype), x, beta, mode="paper", **kw)
    # The windows wholly below the step (output columns), and the cells only they cover.
    below = np.arange(y.shape[-1]) * s - p + k <= size[1] // 2
    cells_below = [c for c in range(size[1])
                   if all(below[o] for o in range(y.shape[-1]) if o * s - p <= c < o * s - p + k)]
    low = (slice(None), slice(0, len(cells_below)))
    assert cells_below == list(range(len(cells_below))) and len(cells_below) >= 3 and below[:2].all()
    for plane in np.ndindex(*lead):
        assert rel_err(gx[plane][low], gx_ref[plane][low]) <= 10 * TOL[dtype], plane
        # Above the step x is near 2000, where float32's ulp is 1.2e-4: the exact eM gradient's
        # 1 + (x - yM) carries that (the general kernels' too), so the whole plane gets 8 ulp at 2000 (1.9e-3 in float32).
        assert rel_err(gx[plane], gx_ref[plane]) <= max(10 * TOL[dtype], np.finfo(dtype).eps * 2000 * 8), plane
        assert rel_err(gx_paper[plane][low], gx_paper_gen[plane][low]) <= 10 * TOL[dtype], plane
    for plane in np.ndindex(*lead):
        assert rel_err(y[plane][:, below], y_ref[plane][:, below]) <= TOL[dtype], plane
        assert rel_err(y[plane], y_ref[plane]) <= TOL[dtype], plane
        assert rel_err(w[plane], w_ref[plane]) <= TOL[dtype], plane
