"""Proof 3 (where a GPU is visible): the public functions on CuPy arrays run
the CUDA kernels (the ``cupy`` fixture in conftest).  The comparisons with
Numba that every CUDA backend runs are in tests/test_cuda_kernels.py."""
import numpy as np
import pytest

import adapool_core as ap
from support.cuda_cases import host64, make_case

pytestmark = pytest.mark.gpu


def on_gpu(cupy, *arrays):
    return [None if a is None else cupy.asarray(a) for a in arrays]


def test_gpu_results_are_deterministic(cupy):
    x, beta, g, kw = make_case("adapool", 3, "overlap_pad_ceil", np.float32)
    x, beta, g = on_gpu(cupy, x, beta, g)
    first = ap.adapool3d_backward(g, x, beta, **kw)
    for _ in range(3):
        again = ap.adapool3d_backward(g, x, beta, **kw)
        for a, b in zip(first, again):
            assert cupy.array_equal(a, b)


def test_gpu_runs_on_the_current_stream(cupy):
    x, beta, g, kw = make_case("adapool", 2, "overlap_pad_ceil", np.float32)
    expected = ap.adapool2d(x, beta, **kw)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        xg, bg = on_gpu(cupy, x, beta)
        y = ap.adapool2d(xg, bg, **kw)
    stream.synchronize()
    np.testing.assert_allclose(host64(y), expected, rtol=1e-5, atol=1e-6)


def test_cpu_beta_with_gpu_x_is_an_error(cupy):
    x, beta, _, kw = make_case("adapool", 2, "disjoint_uncovered", np.float32)
    with pytest.raises(ValueError, match="beta.*same device"):
        ap.adapool2d(cupy.asarray(x), beta, **kw)
    y, w = ap.adapool2d(x, beta, return_mask=True, **kw)
    with pytest.raises(ValueError, match="w.*same device"):
        ap.adaunpool2d(cupy.asarray(y), w, **{k: kw[k] for k in ("kernel_size", "stride", "padding")})


def test_python_scalar_beta_goes_to_the_gpu(cupy):
    x, _, _, kw = make_case("adapool", 2, "overlap_pad_ceil", np.float32)
    y = ap.adapool2d(cupy.asarray(x), 0.25, **kw)
    np.testing.assert_allclose(host64(y), ap.adapool2d(x, 0.25, **kw), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_gpu_indices_past_2_to_the_31(cupy):
    """A 1-D input with more than 2^31 cells: 64-bit indices in every kernel."""
    length = 2**31 + 1000
    if cupy.cuda.Device().mem_info[0] < 24 * 2**30:
        pytest.skip("needs 24 GiB of free GPU memory")
    x = cupy.random.default_rng(0).standard_normal((1, 1, length), dtype=cupy.float32).astype(cupy.float16)
    y, w = ap.empool1d(x, kernel_size=2, return_mask=True)
    tail = x[..., -2000:].get()  # starts at an even index: the last 1000 windows
    y_ref, w_ref = ap.empool1d(tail, kernel_size=2, return_mask=True)
    # float16 results: the GPU and Numba may round an ulp apart (expf implementations).
    close = dict(rtol=2e-3, atol=1e-3)
    np.testing.assert_allclose(host64(y[..., -1000:]), y_ref.astype(np.float64), **close)
    np.testing.assert_allclose(host64(w[:, :, -1000:]), w_ref.astype(np.float64), **close)
    back = ap.adaunpool1d(y, w, kernel_size=2, output_size=(length,))
    np.testing.assert_allclose(host64(back[..., -2000:]), ap.adaunpool1d(y_ref, w_ref, kernel_size=2), **close)
    del back, w
    gx = ap.empool1d_backward(cupy.ones_like(y), x, kernel_size=2)
    np.testing.assert_allclose(host64(gx[..., -2000:]),
                               ap.empool1d_backward(np.ones_like(y_ref), tail, kernel_size=2), **close)
