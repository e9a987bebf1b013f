"""Adaptive pooling (spec: "Adaptive windows"): values and weights against the
loop reference, exact gradients (with the weights' path) against float64 finite
differences, shapes against torch's adaptive_avg_pool, adaptive adaUnPool,
and the emulated CUDA kernels against Numba."""
import numpy as np
import pytest

import adapool_core as ap
import reference as ref
from adapool_core._geometry import adaptive_bounds, adaptive_phases
from support import METHODS, rel_err
from support.cuda_cases import using_backend

CASES = {1: ((2, 2, 7), (3,)), 2: ((1, 2, 7, 5), (3, 4)), 3: ((1, 1, 5, 4, 3), (2, 3, 5))}  # 3-D: O > L too


def adaptive_call(method, d, x, beta, out, **kw):
    fn = getattr(ap, f"adaptive_{method}{d}d")
    return fn(x, beta, out, **kw) if method == "adapool" else fn(x, out, **kw)


def adaptive_backward(method, d, g, x, beta, out, **kw):
    fn = getattr(ap, f"adaptive_{method}{d}d_backward")
    return fn(g, x, beta, out, **kw) if method == "adapool" else (fn(g, x, out, **kw), None)


def make(method, d, seed=0):
    rng = np.random.default_rng(seed)
    shape, out = CASES[d]
    x = rng.standard_normal(shape)
    beta = rng.uniform(0.1, 0.9, out) if method == "adapool" else None
    return rng, x, beta, out


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_values_and_weights_match_the_reference(method, d):
    _, x, beta, out = make(method, d)
    y, w = adaptive_call(method, d, x, beta, out, return_mask=True)
    y_ref, w_ref = ref.adaptive_pool(method, x, beta, out)
    assert y.shape == y_ref.shape and w.shape == w_ref.shape
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("normalize", ["sum", "window"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_gradients_match_finite_differences(method, d, normalize):
    """grad_out and the weights' cotangent (pool -> adaptive unpool -> loss), for x and beta."""
    rng, x, beta, out = make(method, d, seed=d)
    spatial = x.shape[2:]
    g = rng.standard_normal(x.shape)
    gy_out = rng.standard_normal(x.shape[:2] + out)

    def loss(xv, bv):
        y, w = ref.adaptive_pool(method, xv, bv, out)
        return float((g * ref.adaptive_unpool(y, w, spatial, normalize)).sum() + (gy_out * y).sum())

    y, w = adaptive_call(method, d, x, beta, out, return_mask=True)
    unpool_bwd = getattr(ap, f"adaptive_adaunpool{d}d_backward")
    gy, gw = unpool_bwd(g, y, w, spatial, normalize=normalize, return_grad_w=True)
    gx, gb = adaptive_backward(method, d, gy + gy_out, x, beta, out, grad_w=gw)
    assert rel_err(gx, ref.finite_difference(lambda v: loss(v, beta), x)) < 1e-6
    if beta is not None:
        assert rel_err(gb, ref.finite_difference(lambda v: loss(x, v), beta)) < 1e-6


@pytest.mark.parametrize("normalize", ["sum", "window"])
def test_unpool_matches_the_reference(normalize):
    _, x, beta, out = make("adapool", 2)
    y, w = ap.adaptive_adapool2d(x, beta, out, return_mask=True)
    np.testing.assert_allclose(ap.adaptive_adaunpool2d(y, w, x.shape[2:], normalize=normalize),
                               ref.adaptive_unpool(y, w, x.shape[2:], normalize), rtol=1e-12, atol=1e-13)


def test_shapes_match_torch_adaptive_avg_pool():
    torch = pytest.importorskip("torch", reason="the shape comparison needs torch")
    rng = np.random.default_rng(3)
    for _ in range(12):
        d = int(rng.integers(1, 4))
        spatial = tuple(int(v) for v in rng.integers(1, 9, d))
        # None keeps a dim (torch's 1-D adaptive pooling takes ints only)
        out = tuple(None if d > 1 and rng.random() < 0.2 else int(v) for v in rng.integers(1, 11, d))
        x = rng.standard_normal((1, 2) + spatial)
        want = getattr(torch.nn.functional, f"adaptive_avg_pool{d}d")(torch.from_numpy(x), out)
        y = ap.__dict__[f"adaptive_empool{d}d"](x, out)
        assert y.shape == tuple(want.shape)
        # A constant input pools to itself: the windows are inside the input and non-empty.
        np.testing.assert_allclose(ap.__dict__[f"adaptive_idwpool{d}d"](np.ones_like(x), out), 1.0)


def test_global_pooling_is_one_window():
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 5))
    y, w = ap.adaptive_empool2d(x, 1, return_mask=True)
    flat = x.reshape(2, 3, -1)
    e = np.exp(flat - flat.max(-1, keepdims=True))
    np.testing.assert_allclose(y[..., 0, 0], (e * flat).sum(-1) / e.sum(-1), rtol=1e-12)
    assert w.shape == (2, 3, 1, 1, 6, 5)


def test_adaptive_phases_separate_windows():
    for L in range(1, 12):
        for O in range(1, 14):
            c = adaptive_phases(L, O)
            for o in range(O - c):
                assert adaptive_bounds(o + c, L, O)[0] >= adaptive_bounds(o, L, O)[1]


def test_bad_output_size_names_the_argument():
    with pytest.raises(ValueError, match="output_size"):
        ap.adaptive_empool2d(np.ones((1, 1, 4, 4)), (0, 2))
    with pytest.raises(TypeError, match="output_size"):
        ap.adaptive_empool2d(np.ones((1, 1, 4, 4)), "2")
    with pytest.raises(ValueError, match="w"):
        ap.adaptive_adaunpool2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2, 3, 3)), (4, 4))


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("method", METHODS)
def test_emulated_cuda_matches_numba(emulated, method, d):
    rng, x, beta, out = make(method, d)
    g = rng.standard_normal(x.shape[:2] + out)

    def run():
        y, w = adaptive_call(method, d, x, beta, out, return_mask=True)
        res = {"y": y, "w": w}
        gw = 1 - 3 * w
        for mode in ("exact", "paper"):
            res[f"gx_{mode}"], res[f"gb_{mode}"] = adaptive_backward(method, d, g, x, beta, out, mode=mode)
            res[f"gxw_{mode}"], res[f"gbw_{mode}"] = adaptive_backward(method, d, g, x, beta, out, mode=mode,
                                                                       grad_w=gw)
        for normalize in ("sum", "window"):
            res[f"unpool_{normalize}"] = getattr(ap, f"adaptive_adaunpool{d}d")(y, w, x.shape[2:],
                                                                              normalize=normalize)
            res[f"unpool_grads_{normalize}"] = getattr(ap, f"adaptive_adaunpool{d}d_backward")(
                x, y, w, x.shape[2:], normalize=normalize, return_grad_w=True)
        return res

    numba_out = run()
    with using_backend(emulated):
        emulated_out = run()
    for name, want in numba_out.items():
        got = emulated_out[name]
        for a, b in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            if b is None:
                assert a is None
                continue
            assert a.shape == b.shape, name
            assert rel_err(a, b) <= 1e-13, name
