"""Shared helpers of the CUDA tests: backend swapping, the cases, the comparison."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import adapool_core as ap
from adapool_core import _ops

from . import BETA_KINDS, METHODS, call_backward, call_pool, make_beta, rel_err


@contextlib.contextmanager
def using_backend(module):
    """Run the public functions on ``module`` (e.g. the emulated CUDA backend) for NumPy arrays."""
    original = _ops.backend_for
    _ops.backend_for = lambda native: module
    try:
        yield
    finally:
        _ops.backend_for = original


# Input shape per d, and the window configurations every method is checked on.
SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (1, 2, 7, 6, 5)}
WINDOWS = {
    "overlap_pad_ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "disjoint_uncovered": dict(kernel_size=2, stride=2, padding=0, ceil_mode=False),
    "tiling_ceil": dict(kernel_size=(1, 2, 3), stride=(1, 2, 3), padding=(0, 1, 1), ceil_mode=True),
    "rect_stride1": dict(kernel_size=(3, 2, 2), stride=(1, 2, 1), padding=(1, 0, 1), ceil_mode=False),
}


def every_case(*dtypes):
    """Parametrize a test over every method, rank and window set, and the given dtypes."""
    def decorate(test):
        for name, values, ids in (("dtype", dtypes, [np.dtype(t).name for t in dtypes]),
                                  ("window", list(WINDOWS), None), ("d", [1, 2, 3], None),
                                  ("method", METHODS, None)):
            test = pytest.mark.parametrize(name, values, ids=ids)(test)
        return test
    return decorate


def window_kwargs(name: str, d: int) -> dict:
    """The window configuration ``name`` for rank d (tuples cut to their last d entries)."""
    return {k: (v[-d:] if isinstance(v, tuple) else v) for k, v in WINDOWS[name].items()}


# Norm-wise relative difference allowed between the emulated kernels and Numba
# (the GPU's is looser: device math library):
# the same operations in the same order, different exp implementations, and Numba
# fuses multiply-adds (``fastexp.JIT``) where the emulation and NVRTC do not.  The worst
# case, IDW's gradient through the weights (ill-conditioned: its float32 result is 5e-6
# to 7e-6 from float64's on either side), measured 2.1e-6 (float32) and 1.8e-13 (float64)
# apart.  Half types round results to their precision (and, where windows overlap, each
# phase class's partial gradient sum).
TOLERANCE = {np.float64: 5e-13, np.float32: 5e-6, np.float16: 2e-3, "bfloat16": 1.6e-2}
# Looser on a GPU: the device's expf/exp differ from the host's by an ulp or two.
GPU_TOLERANCE = {np.float64: 1e-12, np.float32: 1e-5, np.float16: 5e-3}


def run_all(method, d, x, beta, g, kw):
    """Every public function of one case: forward with weights, both backward
    modes, adaUnPool with both normalisations and their backward (for y and
    w), and the pooling backward through the weights (grad_w) in both modes."""
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
    out = {"y": y, "w": w}
    for mode in ("exact", "paper"):
        gx, gb = call_backward(ap, method, d, g, x, beta, mode=mode, **kw)
        out[f"gx_{mode}"] = gx
        if gb is not None:
            out[f"gbeta_{mode}"] = gb
    unpool_kw = dict(kernel_size=kw["kernel_size"], stride=kw["stride"], padding=kw["padding"],
                     output_size=x.shape[-d:])
    for normalize in ("sum", "window"):
        unpool = getattr(ap, f"adaunpool{d}d")
        unpool_bwd = getattr(ap, f"adaunpool{d}d_backward")
        out[f"unpool_{normalize}"] = unpool(y, w, normalize=normalize, **unpool_kw)
        out[f"unpool_grad_{normalize}"] = unpool_bwd(x, y, w, normalize=normalize, **unpool_kw)
        _, out[f"unpool_grad_w_{normalize}"] = unpool_bwd(x, y, w, normalize=normalize, return_grad_w=True,
                                                          **unpool_kw)
    # The weights' cotangent, on w's device: nonzero outside the input too (ignored there).
    gw = 1 - 3 * w
    for mode in ("exact", "paper"):
        gx, gb = call_backward(ap, method, d, g, x, beta, mode=mode, grad_w=gw, **kw)
        out[f"gx_w_{mode}"] = gx
        if gb is not None:
            out[f"gbeta_w_{mode}"] = gb
    return out


def make_case(method, d, window, dtype, seed=0):
    rng = np.random.default_rng(seed)
    kw = window_kwargs(window, d)
    x = rng.standard_normal(SHAPES[d]).astype(dtype)
    y = call_pool(ap, method, d, x.astype(np.float64), 0.5, **kw)
    beta = rng.uniform(-0.25, 1.25, y.shape[-d:]) if method == "adapool" else None  # clamped on both sides
    g = rng.standard_normal(y.shape).astype(dtype)
    return x, beta, g, kw


def assert_same(out, numba_out, tol):
    """Every result of ``run_all`` matches the Numba path's: dtype, shape, NaN
    positions, and norm-wise relative difference <= tol."""
    assert out.keys() == numba_out.keys()
    for name, ref in numba_out.items():
        got = out[name]
        assert np.dtype(got.dtype) == np.dtype(ref.dtype) and got.shape == ref.shape, name
        got64, ref64 = host64(got), host64(ref)
        assert np.array_equal(np.isnan(got64), np.isnan(ref64)), name
        finite = ~np.isnan(ref64)
        assert rel_err(got64[finite], ref64[finite]) <= tol, (name, rel_err(got64[finite], ref64[finite]))


def host64(a):
    """A NumPy float64 copy of a NumPy or CuPy array."""
    return np.asarray(a.get() if hasattr(a, "get") else a, np.float64)


def beta_case(kind, batched, dtype=np.float32, seed=1):
    """x, beta, grad_out, kwargs of an adapool2d case with beta of one broadcast kind
    (unbatched inputs have no N dim)."""
    rng = np.random.default_rng(seed)
    kw = window_kwargs("overlap_pad_ceil", 2)
    shape = (2, 3, 9, 8) if batched else (3, 9, 8)
    x = rng.standard_normal(shape).astype(dtype)
    y_shape = ap.adapool2d(x, 0.5, **kw).shape
    beta = make_beta(kind, rng, y_shape[:-2], y_shape[-2:], value=0.7)
    return x, beta, rng.standard_normal(y_shape).astype(dtype), kw


BETA_SHAPES = BETA_KINDS  # every broadcast kind
