"""Forward of every method and rank against the float64 reference, over
hypothesis-drawn shapes, windows (kernel != stride both ways, rectangular,
padding, ceil_mode), batching (unbatched, batch of 0) and beta shapes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adapool_core as ap
import reference as ref
from support import METHODS, call_pool, make_beta, rel_err

FORWARD_EXAMPLES = 100  # per (method, d): 4 * 3 * 100 = 1,200 combinations


@st.composite
def pool_case(draw, d):
    k = tuple(draw(st.integers(1, 4 if d < 3 else 3)) for _ in range(d))
    s = tuple(draw(st.integers(1, 4)) for _ in range(d))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    extra = 7 if d < 3 else 3
    L = tuple(draw(st.integers(max(1, kk - 2 * pp), kk + extra)) for kk, pp in zip(k, p))
    ceil_mode = draw(st.booleans())
    batched = draw(st.booleans())
    n = draw(st.integers(0, 2)) if batched else 1
    c = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    scale = draw(st.sampled_from([1e-3, 1e-1, 1.0, 10.0, 100.0]))
    seed = draw(st.integers(0, 2**31))
    as_int = draw(st.booleans())
    kw = dict(kernel_size=k[0] if as_int and len(set(k)) == 1 else k, stride=s, padding=p, ceil_mode=ceil_mode)
    beta_kind = draw(st.sampled_from(["O", "ones", "scalar", "float", "channel", "full"]))
    return k, s, p, L, ceil_mode, batched, n, c, dtype, scale, seed, kw, beta_kind


def check_forward(method, d, case):
    k, s, p, L, ceil_mode, batched, n, c, dtype, scale, seed, kw, beta_kind = case
    rng = np.random.default_rng(seed)
    xb = (scale * rng.standard_normal((n, c) + L)).astype(dtype)
    o = tuple(ref.out_len(Li, kk, ss, pp, ceil_mode) for Li, kk, ss, pp in zip(L, k, s, p))
    beta = make_beta(beta_kind, rng, (n, c) if batched else (c,), o, dtype) if method == "adapool" else None
    x = xb if batched else xb[0]
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
    beta_b = None
    if method == "adapool":
        beta_b = np.asarray(beta, dtype=np.float64)
        if not batched and beta_b.ndim == d + 1:
            beta_b = beta_b[None]
    y_ref, w_ref = ref.pool(method, xb, beta_b, k, s, p, ceil_mode)
    if not batched:
        y_ref, w_ref = y_ref[0], w_ref[0]
    assert y.shape == y_ref.shape and y.dtype == dtype
    assert w.shape == y_ref.shape + k and w.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert rel_err(y, y_ref) <= tol
    assert rel_err(w, w_ref) <= tol
    # The same call without the mask gives the same output.
    y2 = call_pool(ap, method, d, x, beta, **kw)
    np.testing.assert_array_equal(y2, y)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("d", [1, 2, 3])
def test_forward_matches_reference(method, d):
    @settings(max_examples=FORWARD_EXAMPLES)
    @given(case=pool_case(d))
    def run(case):
        check_forward(method, d, case)

    run()


@pytest.mark.parametrize("d", [1, 2, 3])
def test_empool_alias_softpool(d, rng):
    x = rng.standard_normal((2, 3) + (6,) * d)
    np.testing.assert_array_equal(getattr(ap, f"softpool{d}d")(x), getattr(ap, f"empool{d}d")(x))
    assert getattr(ap, f"softpool{d}d") is getattr(ap, f"empool{d}d")


def test_stride_not_kernel_places_windows_by_formula():
    # Regression for the reference implementation's `L // s` window mapping:
    # output o must pool x[o*s - p : o*s - p + k].
    x = np.arange(10, dtype=np.float64)[None, None]
    y, w = ap.empool1d(x, kernel_size=3, stride=2, return_mask=True)
    assert y.shape == (1, 1, 4)
    for o in range(4):
        win = x[0, 0, 2 * o:2 * o + 3]
        e = np.exp(win - win.max())
        assert y[0, 0, o] == pytest.approx((e * win).sum() / e.sum(), rel=1e-14)


def test_batch_of_zero():
    x = np.zeros((0, 3, 8, 8), np.float32)
    y, w = ap.adapool2d(x, np.full((4, 4), 0.5, np.float32), return_mask=True)
    assert y.shape == (0, 3, 4, 4) and w.shape == (0, 3, 4, 4, 2, 2)
    gx, gb = ap.adapool2d_backward(np.zeros_like(y), x, np.full((4, 4), 0.5, np.float32))
    assert gx.shape == x.shape and gb.shape == (4, 4) and not gb.any()


def test_masks_are_per_sample_and_channel(rng):
    # The reference implementation wrote one mask shared by the whole batch.
    x = rng.standard_normal((2, 2, 4, 6))
    _, w = ap.adapool2d(x, 0.5, kernel_size=(2, 3), return_mask=True)
    _, w0 = ap.adapool2d(x[:1, 1:], 0.5, kernel_size=(2, 3), return_mask=True)
    np.testing.assert_allclose(w[0, 1], w0[0, 0], rtol=1e-14)
    assert not np.allclose(w[0, 0], w[1, 0])
    np.testing.assert_allclose(w.sum(axis=(-2, -1)), 1.0, rtol=1e-12)
