"""Hostile inputs: property-based fuzzing of every public function.

Every call must either return the float64 reference's result, or NaN where
the reference is NaN, or raise TypeError/ValueError with a message that
starts with the name of an argument that is actually wrong.  The caller's
arrays are hashed before and after every call: they are never modified.

What "equal to the reference" means here (docs/guarantees.md):

- The reference (``tests/reference.py``) runs in float64 on the input values
  as the library sees them (half types widened exactly).  For float32 and
  half types it takes the window mean m as float32 accumulates it: dsc near
  m = 0 and IDW near a tie are discontinuous or ill-conditioned in m, so a
  float32 result can only be judged against its own rounding of m (a window
  [1 subnormal ulp, 0] has m = 0 in float32, 0.5 ulp in float64, and
  weights that differ by 0.4).  Its Dice-Sorensen
  coefficient and IDW normalisation use exact rational arithmetic, so it does
  not overflow where the spec's formulas are finite (the library computes
  dsc as 2r / (1 + r^2) for the same reason).
- Per output cell r, ``|y - y_ref| <= rtol * S_r + atol`` with S_r the
  largest |x| in the window: a pooled value is a weighted mean, so its
  rounding error scales with the window's magnitude, not with |y| (which may
  cancel to 0).  rtol: float64 1e-12, float32 1e-5, float16/bfloat16 1e-2;
  atol: a few subnormal ulps of the dtype (subnormal windows round absolutely).
  Weights (return_mask) are in [0, 1]: absolute tolerance rtol.
- Where the reference is NaN the library must be NaN, and vice versa.
  A window holding +-inf gives NaN in both (IEEE: inf - inf, 0 * inf).
- Values are drawn with |x| <= 1e30 (6e4 for float16), so window sums stay
  finite in every compute dtype (docs/guarantees.md: limits).
- Exact-mode gradients are compared (float64) with ``tests/reference_grad.py``
  (closed forms, exact rational arithmetic) within ``eps * relative +
  ulp * absolute`` rounding bounds that the reference computes from its own
  terms; paper-mode gradients (all dtypes) with sum_r g_r w_ref[r, i].
"""
import hashlib
import math
import os
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adapool_core as ap
import reference as ref
import reference_grad as refg
from support import METHODS, call_backward, call_pool, make_beta

# The float64 reference meets NaN * 0 and inf - inf on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = [np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16), BF16]

# Examples per test (recorded in docs/guarantees.md); the reference is pure
# Python, so shapes stay small.
# FUZZ_SCALE=0.1 for a quick local run.
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
EXAMPLES = {
    "forward": 1500,
    "backward_paper": 600,
    "backward_exact": 600,
    "backward_exact_nan": 400,
    "unpool": 600,
    "unpool_backward": 400,
    "invalid_pool": 1500,
    "invalid_unpool": 600,
}
EXAMPLES = {name: max(1, int(count * SCALE)) for name, count in EXAMPLES.items()}

def finfo(dtype):
    return ml_dtypes.finfo(dtype) if np.dtype(dtype) == BF16 else np.finfo(dtype)


RTOL = {"float64": 1e-12, "float32": 1e-5, "float16": 1e-2, "bfloat16": 1e-2}


def digest(*arrays):
    """Bitwise fingerprint of the caller's arrays (NaN payloads and -0.0 included)."""
    h = hashlib.sha256()
    for a in arrays:
        if isinstance(a, np.ndarray):
            h.update(str((a.dtype.str, a.shape, a.strides)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(repr(a).encode())
    return h.hexdigest()


def big_value(dtype):
    return 6e4 if dtype == np.float16 else 1e30


def specials(dtype):
    """The hostile values of the issue, representable in dtype."""
    tiny = float(finfo(dtype).smallest_subnormal)
    big = big_value(dtype)
    return [0.0, -0.0, 1.0, -1.0, tiny, -tiny, 3 * tiny, float(finfo(dtype).tiny), big, -big, 0.5 * big,
            np.nan, np.inf, -np.inf]


def make_values(rng, shape, dtype, style):
    """An array of dtype in one of the hostile styles."""
    finite = [v for v in specials(dtype) if np.isfinite(v)]
    if style == "normal":
        out = rng.choice([1e-3, 1.0, 1e2]) * rng.standard_normal(shape)
    elif style == "constant":
        out = np.full(shape, rng.choice(finite + [2.5]))
    elif style == "specials":
        out = rng.choice(specials(dtype), size=shape)
    elif style == "finite_specials":
        out = rng.choice(finite, size=shape)
    elif style == "mixed":  # normal values with a few hostile cells
        out = rng.standard_normal(shape)
        hit = rng.random(shape) < 0.2
        out[hit] = rng.choice(specials(dtype), size=int(hit.sum()))
    elif style == "tiny":  # a whole window of subnormals
        tiny = float(finfo(dtype).smallest_subnormal)
        out = tiny * rng.integers(-8, 9, size=shape)
    else:
        raise AssertionError(style)
    return np.asarray(out, dtype=np.float64).astype(dtype)


def with_layout(a, layout):
    """The same values in another memory layout (the conversion path must not care)."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":
        buf = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        buf[..., ::2] = a
        return buf[..., ::2]
    if layout == "reversed":
        return a[..., ::-1].copy()[..., ::-1]
    return a


@st.composite
def geometries(draw, d):
    """Valid (k, s, p, L, ceil_mode, batched, n, c); small, with 1-element and elongated inputs."""
    k = tuple(draw(st.integers(1, 4 if d < 3 else 3)) for _ in range(d))
    s = tuple(draw(st.sampled_from([1, 1, 2, 3, 4, 2**40])) for _ in range(d))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    shape_kind = draw(st.sampled_from(["small", "one", "elongated"]))
    if shape_kind == "one":
        k, s, p = (1,) * d, tuple(draw(st.sampled_from([1, 5])) for _ in range(d)), (0,) * d
        L = (1,) * d
    else:
        extra = (5 if d < 3 else 2)
        L = [draw(st.integers(max(1, kk - 2 * pp), kk + extra)) for kk, pp in zip(k, p)]
        if shape_kind == "elongated":
            axis = draw(st.integers(0, d - 1))
            L[axis] = draw(st.integers(20, 60 if d == 1 else 24))
        L = tuple(L)
    ceil_mode = draw(st.booleans())
    batched = draw(st.booleans())
    n = draw(st.sampled_from([0, 1, 1, 2])) if batched else 1
    c = draw(st.integers(1, 2))
    return k, s, p, L, ceil_mode, batched, n, c


@st.composite
def pool_cases(draw, dtypes=tuple(FLOATS)):
    method = draw(st.sampled_from(METHODS))
    d = draw(st.integers(1, 3))
    geom = draw(geometries(d))
    dtype = draw(st.sampled_from(dtypes))
    style = draw(st.sampled_from(["normal", "constant", "specials", "finite_specials", "mixed", "tiny"]))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "reversed"]))
    beta_kind = draw(st.sampled_from(["O", "ones", "scalar", "float", "channel", "full", "special"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return method, d, geom, dtype, style, layout, beta_kind, seed


def out_size(L, k, s, p, ceil_mode):
    return tuple(ref.out_len(*a, ceil_mode) for a in zip(L, k, s, p))


def build(case):
    """Arrays of one drawn case: (x, beta, batched x64, batched beta64, o)."""
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, style, layout, beta_kind, seed = case
    rng = np.random.default_rng(seed)
    xb = make_values(rng, (n, c) + L, dtype, style)
    o = out_size(L, k, s, p, ceil_mode)
    beta = beta64 = None
    if method == "adapool":
        if beta_kind == "special":
            beta = rng.choice([0.0, 1.0, -0.0, 2.0, -1.0, np.nan, np.inf], size=o).astype(dtype)
        else:
            beta = make_beta(beta_kind, rng, (n, c) if batched else (c,), o, dtype)
        beta64 = np.asarray(beta, dtype=np.float64)
        if not batched and beta64.ndim == d + 1:
            beta64 = beta64[None]
    x = with_layout(xb if batched else xb[0], layout)
    return x, beta, xb.astype(np.float64), beta64, o


def window_scale(xb, k, s, p, o):
    """S_r: the largest finite |x| of each output cell's window (batched)."""
    N, C = xb.shape[:2]
    spatial = xb.shape[2:]
    scale = np.zeros((N, C) + o)
    for o_idx in np.ndindex(*o):
        idx = [cell for cell, _ in ref.window(o_idx, spatial, k, s, p)]
        vals = np.abs(np.stack([xb[(slice(None), slice(None)) + i] for i in idx], axis=-1))
        vals[~np.isfinite(vals)] = 0
        scale[(slice(None), slice(None)) + o_idx] = vals.max(axis=-1)
    return scale


def assert_matches(out, want, tol, what):
    """NaN exactly where the reference is NaN, the same inf, finite within tol.

    The reference is first rounded to the output's dtype: a float16 result
    of 9e4 is inf (float16 tops out at 65504), as IEEE rounding says."""
    with np.errstate(over="ignore"):
        want = np.asarray(want, dtype=np.float64).astype(out.dtype).astype(np.float64)
    out = np.asarray(out, dtype=np.float64)
    want = np.broadcast_to(want, out.shape)
    tol = np.broadcast_to(tol, out.shape)
    nan_out, nan_ref = np.isnan(out), np.isnan(want)
    assert (nan_out == nan_ref).all(), f"{what}: NaN at {np.argwhere(nan_out != nan_ref)[:5].tolist()}"
    inf = np.isinf(want)
    assert (out[inf] == want[inf]).all(), f"{what}: inf mismatch"
    fin = np.isfinite(want)
    err = np.abs(out[fin] - want[fin])
    bad = err > tol[fin]
    assert not bad.any(), f"{what}: err {err[bad][:5]} > tol {tol[fin][bad][:5]}, out {out[fin][bad][:5]}, ref {want[fin][bad][:5]}"


def mean_dtype(dtype):
    """The reference takes the window mean as the compute dtype rounds it (float32 for
    every type but float64; see ``reference.window_mean``)."""
    return None if dtype == np.float64 else np.float32


def atol_for(dtype):
    return 4 * float(finfo(dtype).smallest_subnormal)


def unbatch(a, batched):
    return a if batched else a[0]


def check_forward(case):
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, *_ = case
    x, beta, xb, beta64, o = build(case)
    before = digest(x, beta)
    y, w = call_pool(ap, method, d, x, beta, kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode,
                     return_mask=True)
    assert digest(x, beta) == before, "the caller's input was modified"
    y_ref, w_ref = ref.pool(method, xb, beta64, k, s, p, ceil_mode, mean_dtype=mean_dtype(dtype))
    y_ref, w_ref = unbatch(y_ref, batched), unbatch(w_ref, batched)
    assert y.dtype == dtype and w.dtype == dtype
    assert y.shape == y_ref.shape and w.shape == w_ref.shape
    rtol = RTOL[dtype.name]
    scale = unbatch(window_scale(xb, k, s, p, o), batched)
    assert_matches(y, y_ref, rtol * scale + atol_for(dtype), "y")
    assert_matches(w, w_ref, rtol, "w")


@settings(max_examples=EXAMPLES["forward"])
@given(case=pool_cases())
def test_pool_forward_fuzz(case):
    check_forward(case)


def grad_values(rng, shape, dtype):
    g = rng.standard_normal(shape)
    g[rng.random(shape) < 0.1] = 0.0
    return g.astype(dtype)


def beta_gradient_reference(xb, xb_dtype, beta64, beta, g64, k, s, p, ceil_mode, batched):
    """dL/dbeta = sum over broadcast dims of g (yD - yM) where 0 <= beta <= 1, and its bound."""
    yD, _ = ref.pool("edscwpool", xb, None, k, s, p, ceil_mode, mean_dtype=mean_dtype(xb_dtype))
    yM, _ = ref.pool("empool", xb, None, k, s, p, ceil_mode)
    bfull = np.broadcast_to(beta64, yD.shape)
    inside = (bfull >= 0) & (bfull <= 1)
    gb = np.where(inside, g64 * (yD - yM), np.where(np.isnan(bfull), np.nan, 0.0))
    # Rounding: relative to |yD| + |yM|, plus subnormal rounding of the window
    # sums (absolute, a few ulps per cell) in yD and yM.
    bound = np.abs(g64) * (np.abs(yD) + np.abs(yM))
    bound_abs = np.abs(g64) * 2 * math.prod(k) * atol_for(xb_dtype)
    shape = np.shape(beta)
    if not batched:
        gb, bound, bound_abs = gb[0], bound[0], bound_abs[0]
    lead = gb.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, m in enumerate(shape) if m == 1 and gb.shape[lead + i] != 1)
    return gb.sum(axis=axes).reshape(shape), (bound.sum(axis=axes) * RTOL[xb_dtype.name]
                                              + bound_abs.sum(axis=axes)).reshape(shape)


def run_backward(case, mode):
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, style, layout, beta_kind, seed = case
    x, beta, xb, beta64, o = build(case)
    rng = np.random.default_rng(seed + 1)
    gb_ = grad_values(rng, (n, c) + o, dtype)
    g = with_layout(unbatch(gb_, batched), layout)
    before = digest(x, beta, g)
    gx, gbeta = call_backward(ap, method, d, g, x, beta, kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode,
                              mode=mode)
    assert digest(x, beta, g) == before, "the caller's input was modified"
    assert gx.dtype == dtype and gx.shape == x.shape
    g64 = gb_.astype(np.float64)
    rtol = RTOL[dtype.name]
    if method == "adapool":
        want, tol = beta_gradient_reference(xb, dtype, beta64, beta, g64, k, s, p, ceil_mode, batched)
        assert np.shape(gbeta) == np.shape(beta)
        assert_matches(gbeta, want, tol + atol_for(dtype), "grad_beta")
    return x, xb, beta64, g64, gx, rtol


@settings(max_examples=EXAMPLES["backward_paper"])
@given(case=pool_cases())
def test_pool_backward_paper_fuzz(case):
    # Weights held constant: grad_x[i] = sum over windows r containing i of g_r * w_ref[r, i].
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, *_ = case
    x, xb, beta64, g64, gx, rtol = run_backward(case, "paper")
    _, w_ref = ref.pool(method, xb, beta64, k, s, p, ceil_mode, mean_dtype=mean_dtype(dtype))
    want = ref.unpool(g64, w_ref, L, k, s, p)
    bound = ref.unpool(np.abs(g64), np.ones_like(w_ref), L, k, s, p)
    assert_matches(gx, unbatch(want, batched), rtol * unbatch(bound, batched) + atol_for(dtype), "grad_x")


@settings(max_examples=EXAMPLES["backward_exact"])
@given(case=pool_cases(dtypes=(np.dtype(np.float64),)))
def test_pool_backward_exact_fuzz(case):
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, *_ = case
    x, xb, beta64, g64, gx, rtol = run_backward(case, "exact")
    want, _, tol, _ = refg.pool_gradient(method, xb, beta64, g64, k, s, p, ceil_mode,
                                         eps=64 * np.finfo(np.float64).eps, ulp=4 * atol_for(dtype))
    assert_matches(gx, unbatch(want, batched), unbatch(tol, batched), "grad_x")


def nonfinite_cells(xb, beta64, k, s, p, ceil_mode):
    """Input cells in some window that holds a NaN or inf (or has a NaN beta)."""
    N, C = xb.shape[:2]
    spatial = xb.shape[2:]
    o = out_size(spatial, k, s, p, ceil_mode)
    bfull = np.broadcast_to(beta64 if beta64 is not None else 0.0, (N, C) + o)
    hit = np.zeros(xb.shape, bool)
    for o_idx in np.ndindex(*o):
        idx = [cell for cell, _ in ref.window(o_idx, spatial, k, s, p)]
        for n in range(N):
            for c in range(C):
                vals = [xb[(n, c) + i] for i in idx]
                if not np.isfinite(vals).all() or np.isnan(bfull[(n, c) + o_idx]):
                    for i in idx:
                        hit[(n, c) + i] = True
    return hit


@settings(max_examples=EXAMPLES["backward_exact_nan"])
@given(case=pool_cases(dtypes=tuple(FLOATS[1:])))
def test_pool_backward_exact_nan_policy_fuzz(case):
    # float32 and half types: exact gradients are as accurate as the compute
    # dtype's own window mean allows (ill-conditioned near m = 0 and IDW ties,
    # see the module docstring), so here only the NaN policy is checked:
    # NaN exactly in cells of windows holding NaN/inf (or a NaN beta).
    method, d, (k, s, p, L, ceil_mode, batched, n, c), dtype, *_ = case
    x, xb, beta64, g64, gx, rtol = run_backward(case, "exact")
    expect = unbatch(nonfinite_cells(xb, beta64, k, s, p, ceil_mode), batched)
    got = np.isnan(np.asarray(gx, dtype=np.float64))
    assert (got == expect).all(), f"NaN mismatch at {np.argwhere(got != expect)[:5].tolist()}"


def test_gradient_reference_matches_finite_differences(rng):
    # The oracle of the exact-mode fuzz, itself checked on well-scaled inputs.
    for method in METHODS:
        for k, s, p, ceil_mode in [((3, 2), (2, 1), (1, 0), True), ((2, 2), (1, 2), (1, 1), False)]:
            x = rng.standard_normal((1, 2, 5, 4))
            o = out_size((5, 4), k, s, p, ceil_mode)
            g = rng.standard_normal((1, 2) + o)
            beta = rng.uniform(0.1, 0.9, o)
            gx, gb, _, _ = refg.pool_gradient(method, x, beta, g, k, s, p, ceil_mode)
            loss = lambda a, b: float((ref.pool(method, a, b, k, s, p, ceil_mode)[0] * g).sum())  # noqa: E731
            np.testing.assert_allclose(gx, ref.finite_difference(lambda a: loss(a, beta), x), rtol=1e-5, atol=1e-7)
            if method == "adapool":
                fd_b = ref.finite_difference(lambda b: loss(x, b), beta)
                np.testing.assert_allclose(gb.sum(axis=(0, 1)), fd_b, rtol=1e-5, atol=1e-7)


@st.composite
def unpool_cases(draw):
    d = draw(st.integers(1, 3))
    geom = draw(geometries(d))
    dtype = draw(st.sampled_from(FLOATS))
    style = draw(st.sampled_from(["normal", "specials", "finite_specials", "mixed", "tiny", "constant"]))
    normalize = draw(st.sampled_from(["sum", "window"]))
    size_form = draw(st.sampled_from(["spatial", "int", "leading"]))
    layout = draw(st.sampled_from(["c", "fortran", "strided", "reversed"]))
    seed = draw(st.integers(0, 2**32 - 1))
    return d, geom, dtype, style, normalize, size_form, layout, seed


def build_unpool(case):
    d, (k, s, p, L, ceil_mode, batched, n, c), dtype, style, normalize, size_form, layout, seed = case
    rng = np.random.default_rng(seed)
    o = out_size(L, k, s, p, ceil_mode)
    yb = make_values(rng, (n, c) + o, dtype, style)
    # Weights as pooling makes them ([0, 1]) plus hostile ones; cells outside
    # the input hold NaN, which adaUnPool must never read.
    wb = rng.choice([0.0, 0.25, 1.0, 0.5, -0.0, 1e-3, np.nan, float(finfo(dtype).smallest_subnormal)],
                    p=[.2, .2, .2, .2, .05, .1, .02, .03], size=(n, c) + o + k)
    inside = np.zeros((n, c) + o + k, bool)
    for o_idx in np.ndindex(*o):
        for _, off in ref.window(o_idx, L, k, s, p):
            inside[(slice(None), slice(None)) + o_idx + off] = True
    wb[~inside] = np.nan
    wb = wb.astype(dtype)
    if size_form == "int" and len(set(L)) == 1:
        output_size = L[0]
    elif size_form == "leading":
        output_size = ((n, c) if batched else (c,)) + L
    else:
        output_size = L
    y, w = (with_layout(unbatch(a, batched), layout) for a in (yb, wb))
    return y, w, yb.astype(np.float64), np.where(inside, wb.astype(np.float64), 0.0), output_size, o


@settings(max_examples=EXAMPLES["unpool"])
@given(case=unpool_cases())
def test_unpool_fuzz(case):
    d, (k, s, p, L, ceil_mode, batched, n, c), dtype, style, normalize, *_ = case
    y, w, y64, w64, output_size, o = build_unpool(case)
    before = digest(y, w)
    out = getattr(ap, f"adaunpool{d}d")(y, w, k, s, p, output_size=output_size, normalize=normalize)
    assert digest(y, w) == before, "the caller's input was modified"
    assert out.dtype == dtype and out.shape == unbatch(np.empty((n, c) + L), batched).shape
    want = ref.unpool(y64, w64, L, k, s, p, normalize)
    bound = ref.unpool(np.abs(np.nan_to_num(y64)), np.abs(np.nan_to_num(w64)), L, k, s, p, normalize)
    # Each of up to prod(k) terms (times |R| <= prod(k) with normalize="window")
    # rounds absolutely in the subnormal range.
    atol = atol_for(dtype) * math.prod(k) ** 2
    assert_matches(out, unbatch(want, batched), RTOL[dtype.name] * unbatch(bound, batched) + atol, "x_hat")


@settings(max_examples=EXAMPLES["unpool_backward"])
@given(case=unpool_cases())
def test_unpool_backward_fuzz(case):
    d, (k, s, p, L, ceil_mode, batched, n, c), dtype, style, normalize, size_form, layout, seed = case
    y, w, y64, w64, output_size, o = build_unpool(case)
    rng = np.random.default_rng(seed + 1)
    gb_ = make_values(rng, (n, c) + L, dtype, style)
    g = with_layout(unbatch(gb_, batched), layout)
    before = digest(g, y, w)
    gy = getattr(ap, f"adaunpool{d}d_backward")(g, y, w, k, s, p, output_size=output_size, normalize=normalize)
    assert digest(g, y, w) == before, "the caller's input was modified"
    assert gy.dtype == dtype and gy.shape == y.shape
    # The adjoint of the spec's (linear in y) adaUnPool: gy[r] = sum over cells
    # i of window r of g[i] * w[r, i] (times |R_r| / cover(i) for "window"),
    # cover(i) = the number of windows containing i, counted by the reference.
    g64 = gb_.astype(np.float64)
    cover = ref.unpool(np.ones((1, 1) + o), np.ones((1, 1) + o + k), L, k, s, p)[0, 0]
    want = np.zeros((n, c) + o)
    bound = np.zeros((n, c) + o)
    everything = (slice(None), slice(None))
    for o_idx in np.ndindex(*o):
        cells = ref.window(o_idx, L, k, s, p)
        for idx, off in cells:
            term = g64[everything + idx] * w64[everything + o_idx + off]
            if normalize == "window":
                term = term * len(cells) / cover[idx]
            want[everything + o_idx] += term
            bound[everything + o_idx] += np.abs(np.nan_to_num(term))
    atol = atol_for(dtype) * math.prod(k) ** 2
    assert_matches(gy, unbatch(want, batched), RTOL[dtype.name] * unbatch(bound, batched) + atol, "grad_y")


# --------------------------------------------------------------------------
# Invalid arguments: a documented error naming a wrong argument, or (when
# every argument is valid) the reference's result.
# --------------------------------------------------------------------------

ARG_NAMES = ("x", "beta", "kernel_size", "stride", "padding", "ceil_mode", "return_mask", "grad_out", "mode",
             "y", "w", "output_size", "normalize")


def int_tuple_or_none(value, d):
    """The d-tuple an int-or-tuple argument means, or None where it is not one."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    if isinstance(value, (tuple, list)) and len(value) == d and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in value):
        return tuple(int(v) for v in value)
    return None


def int_args(name, valid):
    junk = st.sampled_from([0, -1, -3, 2.0, 1.5, "2", None, True, (2,), (2, 2, 2, 2), 2**70, [1, "a"],
                            np.int64(2), (np.int32(1), 2, 3), ()])
    return st.one_of(valid, valid, junk) if name != "stride" else st.one_of(valid, valid, junk, st.just(None))


@st.composite
def invalid_pool_cases(draw):
    method = draw(st.sampled_from(METHODS))
    d = draw(st.integers(1, 3))
    rank = draw(st.sampled_from([d + 1, d + 2, d + 2, d + 1, 0, 1, d, d + 3]))
    shape = tuple(draw(st.integers(0, 5)) for _ in range(rank))
    dtype = draw(st.sampled_from(FLOATS + [np.dtype(t) for t in (np.int32, np.int64, np.uint8, bool,
                                                                  np.complex64, np.complex128)]))
    small = st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * d))
    kernel_size = draw(int_args("kernel_size", small))
    stride = draw(int_args("stride", small))
    padding = draw(int_args("padding", st.one_of(st.integers(0, 1), st.tuples(*[st.integers(0, 1)] * d))))
    ceil_mode = draw(st.sampled_from([False, True, np.True_, 0, 1, "yes", None]))
    return_mask = draw(st.sampled_from([False, True, np.False_, 1, "no", None]))
    beta = draw(st.sampled_from(["good", 0.5, 2, "complex", "bool", "string", None, "wrong_shape", [0.5], [[[0.5]]],
                                 "ragged"]))
    grad = draw(st.sampled_from(["good", "good", "int", "wrong_shape", "list"]))
    mode = draw(st.sampled_from(["exact", "paper", "exact", "approx", None, 1]))
    backward = draw(st.booleans())
    return method, d, shape, dtype, kernel_size, stride, padding, ceil_mode, return_mask, beta, grad, mode, backward


def pool_problems(method, d, x, kernel_size, stride, padding, ceil_mode, return_mask, beta):
    """The arguments an independent reading of the spec finds wrong (empty: all valid), and o."""
    bad = set()
    if x.dtype.name not in ("float16", "bfloat16", "float32", "float64"):
        bad.add("x")
    if x.ndim not in (d + 1, d + 2):
        bad.add("x")
    k = int_tuple_or_none(kernel_size, d)
    s = k if stride is None else int_tuple_or_none(stride, d)
    p = int_tuple_or_none(padding, d)
    for name, v in (("kernel_size", k), ("stride", s), ("padding", p)):
        if v is None and not (name == "stride" and stride is None):
            bad.add(name)
    if k is not None and min(k) < 1:
        bad.add("kernel_size")
    if stride is not None and s is not None and min(s) < 1:
        bad.add("stride")
    if p is not None and k is not None and any(pp < 0 or pp > kk // 2 for pp, kk in zip(p, k)):
        bad.add("padding")
    if p is not None and min(p) < 0:
        bad.add("padding")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        bad.add("ceil_mode")
    if not isinstance(return_mask, (bool, np.bool_)):
        bad.add("return_mask")
    o = None
    if x.ndim in (d + 1, d + 2):
        L = x.shape[-d:]
        if min(L) < 1:
            bad.add("x")
        elif k is not None and p is not None and not bad & {"kernel_size", "padding"}:
            if any(kk > LL + 2 * pp for kk, LL, pp in zip(k, L, p)):
                bad.update({"kernel_size", "padding", "x"})
            elif s is not None and min(s) >= 1 and isinstance(ceil_mode, (bool, np.bool_)):
                o = out_size(L, k, s, p, bool(ceil_mode))
    if method == "adapool":
        if isinstance(beta, (bool, np.bool_, str, complex)) or beta is None:
            bad.add("beta")
        else:
            try:
                b = np.asarray(beta)
            except ValueError:  # ragged
                b = np.asarray("ragged")
            if b.dtype.kind not in "iuf" and b.dtype.name != "bfloat16":
                bad.add("beta")
            elif o is not None:
                out_shape = x.shape[:-d] + o
                try:
                    ok = b.ndim <= len(out_shape) and np.broadcast_shapes(b.shape, out_shape) == out_shape
                except ValueError:
                    ok = False
                if not ok:
                    bad.add("beta")
    return bad, o


def assert_names_a_wrong_argument(info, bad):
    message = str(info.value)
    named = message.split(":", 1)[0]
    assert named in ARG_NAMES, f"message does not start with an argument name: {message!r}"
    assert named in bad, f"blamed {named!r}, but the wrong arguments are {sorted(bad)}: {message!r}"


@settings(max_examples=EXAMPLES["invalid_pool"])
@given(case=invalid_pool_cases())
def test_invalid_pool_arguments_fuzz(case):
    method, d, shape, dtype, kernel_size, stride, padding, ceil_mode, return_mask, beta, grad, mode, backward = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    x = rng.standard_normal(shape).astype(dtype)
    bad, o = pool_problems(method, d, x, kernel_size, stride, padding, ceil_mode,
                           False if backward else return_mask, "pending")
    if o is not None:
        out_shape = x.shape[:-d] + o
        spatial = o
    else:
        out_shape, spatial = (1,), (1,)
    beta_value = {"good": rng.uniform(0, 1, spatial), "complex": np.ones(spatial, complex), "bool": True,
                  "string": "half", "wrong_shape": np.ones(tuple(v + 1 for v in spatial)),
                  "ragged": [[0.1], [0.2, 0.3]]}.get(beta, beta) if isinstance(beta, str) else beta
    bad, o = pool_problems(method, d, x, kernel_size, stride, padding, ceil_mode,
                           False if backward else return_mask, beta_value)
    kw = dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode)
    if backward:
        g = {"good": np.ones(out_shape, x.dtype if x.dtype.kind == "f" or x.dtype == BF16 else np.float64),
             "int": np.ones(out_shape, np.int64), "wrong_shape": np.ones(out_shape + (2,)),
             "list": [1.0]}[grad]
        if grad != "good" and (o is not None or grad == "int"):
            bad.add("grad_out")
        if mode not in ("exact", "paper"):
            bad.add("mode")
        before = digest(x, beta_value, g)
        call = lambda: call_backward(ap, method, d, g, x, beta_value, mode=mode, **kw)  # noqa: E731
    else:
        before = digest(x, beta_value)
        call = lambda: call_pool(ap, method, d, x, beta_value, return_mask=return_mask, **kw)  # noqa: E731
    if bad:
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        assert_names_a_wrong_argument(info, bad)
    else:
        result = call()
        got = result[0] if isinstance(result, tuple) else result
        assert got is not None and np.shape(got) == (x.shape if backward else out_shape)
    assert digest(x, beta_value, *((g,) if backward else ())) == before


@st.composite
def invalid_unpool_cases(draw):
    d = draw(st.integers(1, 3))
    geom = draw(geometries(d))
    small = st.one_of(st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * d))
    kernel_size = draw(st.one_of(st.just("same"), int_args("kernel_size", small)))
    stride = draw(st.one_of(st.just("same"), int_args("stride", small)))
    padding = draw(st.one_of(st.just("same"), int_args("padding", st.integers(0, 1))))
    y_kind = draw(st.sampled_from(["good", "good", "int", "rank", "complex"]))
    w_kind = draw(st.sampled_from(["good", "good", "shape", "bool", "list"]))
    output_size = draw(st.sampled_from(["good", "good", None, 0, -3, 2.5, "abc", (1, 2, 3, 4, 5, 6), 10**6,
                                        np.int64(3)]))
    normalize = draw(st.sampled_from(["sum", "window", "sum", "mean", None]))
    backward = draw(st.booleans())
    return d, geom, kernel_size, stride, padding, y_kind, w_kind, output_size, normalize, backward


def unpooled_size(size, o, k, s, p, d):
    """The spatial size adaUnPool produces for ``output_size=size`` from an output
    of size ``o``: ``size`` itself (an int repeats over the d dims), or with None
    the inverse of the pooling size rule; None where that size is not valid."""
    if size is None:
        if k is None or s is None or p is None or min(k) < 1 or min(s) < 1 or min(p) < 0:
            return None
        return tuple((oo - 1) * a + b - 2 * c for oo, a, b, c in zip(o, s, k, p))
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return (int(size),) * d if size >= 1 else None
    if isinstance(size, tuple) and len(size) == d:
        return size
    return None


@settings(max_examples=EXAMPLES["invalid_unpool"])
@given(case=invalid_unpool_cases())
def test_invalid_unpool_arguments_fuzz(case):
    d, (k, s, p, L, ceil_mode, batched, n, c), kernel_size, stride, padding, y_kind, w_kind, output_size, \
        normalize, backward = case
    kernel_size = k if kernel_size == "same" else kernel_size
    stride = s if stride == "same" else stride
    padding = p if padding == "same" else padding
    o = out_size(L, k, s, p, ceil_mode)
    lead = (n, c) if batched else (c,)
    y = {"good": np.ones(lead + o), "int": np.ones(lead + o, np.int32), "rank": np.ones(o),
         "complex": np.ones(lead + o, complex)}[y_kind]
    w = {"good": np.full(lead + o + k, 0.5), "shape": np.ones(lead + o + (9,) * d),
         "bool": np.ones(lead + o + k, bool), "list": [0.5]}[w_kind]
    size = L if output_size == "good" else output_size
    g = np.ones(lead + L)
    fn = getattr(ap, f"adaunpool{d}d_backward" if backward else f"adaunpool{d}d")
    args = (g, y, w) if backward else (y, w)
    before = digest(*args)
    try:
        result = fn(*args, kernel_size, stride, padding, output_size=size, normalize=normalize)
    except (TypeError, ValueError) as err:
        message = str(err)
        named = message.split(":", 1)[0]
        assert named in ARG_NAMES, message
        # Judge the blame independently: which arguments are wrong?
        kk = int_tuple_or_none(kernel_size, d)
        ss = kk if stride is None else int_tuple_or_none(stride, d)
        pp = int_tuple_or_none(padding, d)
        wrong = set()
        wrong |= {"y"} if y_kind != "good" else set()
        wrong |= {"w"} if w_kind != "good" else set()
        wrong |= {"normalize"} if normalize not in ("sum", "window") else set()
        wrong |= {"kernel_size"} if kk is None or min(kk) < 1 else set()
        wrong |= {"stride"} if ss is None or min(ss) < 1 else set()
        wrong |= {"padding"} if pp is None or min(pp) < 0 or (kk and any(a > b // 2 for a, b in zip(pp, kk))) \
            else set()
        if (kk, ss, pp) != (k, s, p):
            wrong |= {"w", "output_size"}  # w's shape or y's size no longer fit the changed geometry
        target = unpooled_size(size, o, kk, ss, pp, d)
        if size is not None and target != L:
            wrong.add("output_size")
        if backward and target != L:
            wrong.add("grad_out")  # g (spatial size L) must have the unpooled size
        assert named in wrong, f"blamed {named!r}, wrong: {sorted(wrong)}: {message!r}"
    else:
        assert y_kind == "good" and w_kind == "good" and normalize in ("sum", "window")
        target = unpooled_size(size, o, int_tuple_or_none(kernel_size, d), int_tuple_or_none(stride, d) or
                               int_tuple_or_none(kernel_size, d), int_tuple_or_none(padding, d), d)
        assert target is not None, f"output_size={size!r} was accepted"
        assert np.shape(result) == (y.shape if backward else lead + target)
    assert digest(*args) == before
