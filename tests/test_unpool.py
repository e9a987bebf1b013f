"""adaUnPool (``adaunpool{d}d`` and its backward) against the plain-loop reference.

Covers every rank, both ``normalize`` modes, overlapping windows, gaps
(stride > kernel), padding and ceil_mode, ``output_size`` (spatial, int and
with leading dims), unbatched input, reduced precisions, the constant
round trip, NaN propagation, the gradient (finite differences and the adjoint
identity) and the error messages.
"""
import numpy as np
import pytest

import adapool_core as ap
import reference as ref
from support import METHODS, call_pool, rel_err

# (spatial size per dim, kernel, stride, padding, ceil_mode); sizes differ per
# dim so that a swapped axis cannot pass.
GEOMETRIES = {
    "tiling": ((8, 6, 4), 2, None, 0, False),
    "overlap": ((7, 6, 5), 3, 1, 1, False),
    "overlap-ceil": ((7, 6, 5), 3, 2, 1, True),
    "gaps-ceil": ((8, 7, 5), 2, 3, 1, True),
}


def _case(d, name, rng, n=2, c=3, dtype=np.float64):
    """(y, w, spatial, k, s, p) with random y and w of the geometry's shapes.

    ``w`` is random everywhere, also at kernel cells outside the input, which
    adaUnPool must ignore (the pooling writes 0 there).
    """
    sizes, k, s, p, ceil_mode = GEOMETRIES[name]
    spatial = sizes[:d]
    k_, _, _, o = ref.params(spatial, k, s, p, ceil_mode)
    y = rng.standard_normal((n, c) + o).astype(dtype)
    w = rng.random((n, c) + o + k_).astype(dtype)
    return y, w, spatial, k, s, p


def _covered(spatial, k, s, p, ceil_mode):
    """Boolean map of the input cells that at least one window contains."""
    k_, _, _, o = ref.params(spatial, k, s, p, ceil_mode)
    return ref.unpool(np.ones((1, 1) + o), np.ones((1, 1) + o + k_), spatial, k, s, p)[0, 0] > 0


def _unpool(d, *args, **kw):
    return getattr(ap, f"adaunpool{d}d")(*args, **kw)


def _unpool_backward(d, *args, **kw):
    return getattr(ap, f"adaunpool{d}d_backward")(*args, **kw)


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_matches_reference(d, geometry, normalize, rng):
    y, w, spatial, k, s, p = _case(d, geometry, rng)
    out = _unpool(d, y, w, k, s, p, output_size=spatial, normalize=normalize)
    expected = ref.unpool(y, w, spatial, k, s, p, normalize=normalize)
    assert out.shape == expected.shape and out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-5), ("float16", 1e-2), ("bfloat16", 1e-2)])
@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_reduced_precision(dtype, tol, normalize, rng):
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 needs ml_dtypes")
        dtype = ml_dtypes.bfloat16
    y, w, spatial, k, s, p = _case(2, "overlap-ceil", rng)
    out = ap.adaunpool2d(y.astype(dtype), w.astype(dtype), k, s, p, output_size=spatial, normalize=normalize)
    assert out.dtype == np.dtype(dtype)
    # The reference sees the same rounded inputs: the tolerance is for the computation only.
    expected = ref.unpool(y.astype(dtype).astype(np.float64), w.astype(dtype).astype(np.float64),
                          spatial, k, s, p, normalize=normalize)
    assert rel_err(out.astype(np.float64), expected) <= tol


def test_uncovered_cells_are_zero(rng):
    # stride 3 > kernel 2: every third cell belongs to no window.
    y, w, spatial, k, s, p = _case(1, "gaps-ceil", rng)
    for normalize in ("sum", "window"):
        out = ap.adaunpool1d(y, w, k, s, p, output_size=spatial, normalize=normalize)
        covered = _covered(spatial, k, s, p, True)
        assert (~covered).any()
        assert (out[..., ~covered] == 0).all()
        assert (out[..., covered] != 0).all()


@pytest.mark.parametrize("d", [1, 2, 3])
def test_default_output_size_is_maxunpools(d, rng):
    """Without output_size: (o - 1) * s + k - 2p per dim, PyTorch MaxUnpool's default."""
    y, w, _, k, s, p = _case(d, "overlap", rng)
    out = _unpool(d, y, w, k, s, p)
    o = y.shape[2:]
    assert out.shape == y.shape[:2] + tuple((v - 1) * s + k - 2 * p for v in o)


def test_output_size_resolves_ambiguity(rng):
    """Sizes 7 and 6 both pool to 3 (kernel 2, floor): output_size picks, cell 6 stays 0."""
    y = rng.standard_normal((2, 3, 3))
    w = rng.random((2, 3, 3, 2))
    short = ap.adaunpool1d(y, w, 2)
    long_ = ap.adaunpool1d(y, w, 2, output_size=(7,))
    assert short.shape == (2, 3, 6) and long_.shape == (2, 3, 7)
    np.testing.assert_array_equal(long_[..., :6], short)
    assert (long_[..., 6] == 0).all()


@pytest.mark.parametrize("output_size", [(7, 9), [7, 9], (2, 3, 7, 9)], ids=["spatial", "list", "leading-dims"])
def test_output_size_forms(output_size, rng):
    y = rng.standard_normal((2, 3, 3, 4))
    w = rng.random((2, 3, 3, 4, 2, 2))
    out = ap.adaunpool2d(y, w, 2, output_size=output_size)
    np.testing.assert_array_equal(out, ref.unpool(y, w, (7, 9), 2))


def test_output_size_int_and_numpy_int(rng):
    y = rng.standard_normal((2, 3, 3, 3))
    w = rng.random((2, 3, 3, 3, 2, 2))
    expected = ref.unpool(y, w, (7, 7), 2)
    np.testing.assert_array_equal(ap.adaunpool2d(y, w, 2, output_size=7), expected)
    np.testing.assert_array_equal(ap.adaunpool2d(y, w, 2, output_size=np.int64(7)), expected)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_unbatched(d, rng):
    y, w, spatial, k, s, p = _case(d, "overlap-ceil", rng, n=1)
    for normalize in ("sum", "window"):
        batched = _unpool(d, y, w, k, s, p, output_size=spatial, normalize=normalize)
        single = _unpool(d, y[0], w[0], k, s, p, output_size=spatial, normalize=normalize)
        with_lead = _unpool(d, y[0], w[0], k, s, p, output_size=(3,) + spatial, normalize=normalize)
        np.testing.assert_array_equal(single, batched[0])
        np.testing.assert_array_equal(with_lead, batched[0])
        g = rng.standard_normal(batched.shape)
        np.testing.assert_array_equal(
            _unpool_backward(d, g[0], y[0], w[0], k, s, p, normalize=normalize),
            _unpool_backward(d, g, y, w, k, s, p, normalize=normalize)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_constant_round_trip(d, geometry, dtype):
    """Pool, then unpool with normalize='window': a constant comes back on every covered cell.

    "Exactly" up to the rounding of the weights (1/|R| computed as a softmax):
    within a few units in the last place.
    """
    sizes, k, s, p, ceil_mode = GEOMETRIES[geometry]
    spatial = sizes[:d]
    value = dtype(0.37)
    x = np.full((2, 2) + spatial, value, dtype=dtype)
    covered = _covered(spatial, k, s, p, ceil_mode)
    eps = np.finfo(dtype).eps
    for method in METHODS:
        y, w = call_pool(ap, method, d, x, 0.3, kernel_size=k, stride=s, padding=p, ceil_mode=ceil_mode,
                         return_mask=True)
        out = _unpool(d, y, w, k, s, p, output_size=spatial, normalize="window")
        np.testing.assert_allclose(out[..., covered], value, rtol=8 * eps, atol=0, err_msg=method)
        assert (out[..., ~covered] == 0).all()


def test_nan_propagates(rng):
    y, w, spatial, k, s, p = _case(2, "overlap", rng)
    y[0, 0, 2, 3] = np.nan
    out = ap.adaunpool2d(y, w, k, s, p, output_size=spatial, normalize="window")
    hit = ref.unpool(np.isnan(y).astype(float), np.ones_like(w), spatial, k, s, p) > 0
    assert np.isnan(out[hit]).all()
    assert np.isfinite(out[~hit]).all()


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_backward_finite_difference(d, normalize, rng):
    y, w, spatial, k, s, p = _case(d, "overlap-ceil", rng, n=1, c=2)
    g = rng.standard_normal((1, 2) + spatial)
    grad = _unpool_backward(d, g, y, w, k, s, p, output_size=spatial, normalize=normalize)
    fd = ref.finite_difference(
        lambda a: float((_unpool(d, a, w, k, s, p, output_size=spatial, normalize=normalize) * g).sum()), y)
    assert grad.shape == y.shape
    # unpool is linear in y: the differences are exact up to cancellation, ~1e-16 * |sum| / eps.
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_backward_is_adjoint(d, geometry, normalize, rng):
    """<unpool(y), g> == <y, unpool_backward(g)>, and the output size defaults to grad_out's."""
    y, w, spatial, k, s, p = _case(d, geometry, rng)
    g = rng.standard_normal(y.shape[:2] + spatial)
    lhs = float((_unpool(d, y, w, k, s, p, output_size=spatial, normalize=normalize) * g).sum())
    grad = _unpool_backward(d, g, y, w, k, s, p, normalize=normalize)
    np.testing.assert_allclose(float((y * grad).sum()), lhs, rtol=1e-12)


def test_one_hot_weights_are_max_unpooling(rng):
    """One-hot weights at the argmax with normalize='sum' are PyTorch's max_unpool2d."""
    torch = pytest.importorskip("torch", reason="compares with torch.nn.functional.max_unpool2d")
    x = rng.standard_normal((2, 3, 8, 6))
    pooled, idx = torch.nn.functional.max_pool2d(torch.from_numpy(x), 2, return_indices=True)
    expected = torch.nn.functional.max_unpool2d(pooled, idx, 2).numpy()
    blocks = x.reshape(2, 3, 4, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 3, 4)
    w = np.eye(4)[blocks.argmax(-1)].reshape(2, 3, 4, 3, 2, 2)
    np.testing.assert_array_equal(ap.adaunpool2d(pooled.numpy(), w, 2), expected)


Y = np.zeros((2, 3, 4, 4))
W = np.zeros((2, 3, 4, 4, 2, 2))


@pytest.mark.parametrize("call, exc, words", [
    (lambda: ap.adaunpool2d(Y, W[..., :1], 2), ValueError, ["w:", "(2, 3, 4, 4, 2, 2)", "(2, 3, 4, 4, 2, 1)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, output_size=(10, 10)), ValueError, ["output_size:", "(4, 4)", "(10, 10)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, output_size=(5, 3, 8, 8)), ValueError,
     ["output_size:", "leading dims (2, 3)", "(5, 3, 8, 8)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, output_size=(3, 8, 8)), ValueError, ["output_size:", "2 spatial", "(3, 8, 8)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, output_size=8.0), TypeError, ["output_size:", "8.0"]),
    (lambda: ap.adaunpool2d(Y, W, 2, output_size=(0, 8)), ValueError, ["output_size:", "positive", "(0, 8)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, normalize="mean"), ValueError, ["normalize:", "'window'", "'mean'"]),
    (lambda: ap.adaunpool2d(Y.astype(np.int32), W, 2), TypeError, ["y:", "int32"]),
    (lambda: ap.adaunpool2d(Y, W.astype(bool), 2), TypeError, ["w:", "bool"]),
    (lambda: ap.adaunpool2d(Y[0, 0], W[0, 0], 2), ValueError, ["y:", "adaunpool2d", "(4, 4)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, stride=0), ValueError, ["stride:", "(0, 0)"]),
    (lambda: ap.adaunpool2d(Y, W, 2, padding=2), ValueError, ["padding:", "(2, 2)"]),
    (lambda: ap.adaunpool2d_backward(np.zeros((2, 3, 10, 10)), Y, W, 2), ValueError,
     ["grad_out:", "(4, 4)", "(10, 10)"]),
    (lambda: ap.adaunpool2d_backward(np.zeros((3, 8, 8)), Y, W, 2), ValueError, ["grad_out:", "(3, 8, 8)"]),
    (lambda: ap.adaunpool2d_backward(np.zeros((2, 3, 8, 8)), Y, W, 2, output_size=(9, 9)), ValueError,
     ["grad_out:", "(2, 3, 9, 9)", "(2, 3, 8, 8)"]),
], ids=lambda v: None if callable(v) or isinstance(v, (list, type)) else str(v))
def test_errors_name_the_argument(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))
