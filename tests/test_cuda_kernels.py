"""The CUDA kernels compute what the Numba path computes, on every CUDA backend
(the ``cuda_backend`` fixture): emulated (the unchanged ``cuda/adapool.cu``
built with g++ under tests/support/emulation.h, launched with the CuPy path's
geometry and arguments), and, where a GPU is visible, CuPy (marked gpu).
Forward, weights, exact and paper backward, adaUnPool and its backward, for
every method and rank, on overlapping windows with padding and ceil_mode."""
import numpy as np
import pytest

from support.cuda_cases import BETA_SHAPES, assert_same, beta_case, every_case, make_case, run_all


def run_on(backend, method, d, x, beta, g, kw):
    """run_all on ``backend``, inputs moved there; every output lives there too."""
    with backend.active():
        out = run_all(method, d, backend.asarray(x), backend.asarray(beta), backend.asarray(g), kw)
    for name, value in out.items():
        assert type(value) is type(backend.asarray(x)), (name, type(value))
    return out


@every_case(np.float16, np.float32, np.float64)
def test_kernels_match_numba(cuda_backend, method, d, window, dtype):
    x, beta, g, kw = make_case(method, d, window, dtype)
    numba_out = run_all(method, d, x, beta, g, kw)
    assert_same(run_on(cuda_backend, method, d, x, beta, g, kw), numba_out, cuda_backend.tolerance[dtype])


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("kind", BETA_SHAPES)
def test_beta_broadcasts_match_numba(cuda_backend, kind, batched):
    """beta read through its broadcast strides, and grad_beta summed back to its shape."""
    x, beta, g, kw = beta_case(kind, batched)
    numba_out = run_all("adapool", 2, x, beta, g, kw)
    assert_same(run_on(cuda_backend, "adapool", 2, x, beta, g, kw), numba_out, cuda_backend.tolerance[np.float32])
