import contextlib
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# Reference loops are slow and Numba compiles on first use: no deadlines.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    # Fixed examples: CI must be reproducible; run with --hypothesis-seed=N to explore.
    derandomize=True,
)
settings.load_profile("default")

# tests/ is on sys.path from here on; re-exported for tests that import them from conftest.
from support import METHODS, call_backward, call_pool, rel_err  # noqa: E402,F401


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def no_plane_kernels(monkeypatch):
    """The CPU backend without its plane kernels (chosen first where they fit), for the
    tests of the row and vector kernels they would otherwise stand in for."""
    from adapool_core._cpu import launch

    monkeypatch.setattr(launch, "plane_kernels_fit", lambda geom, method: False)


# ---------------------------------------------------------------------------
# Backends: the same public functions on NumPy arrays through Numba, on NumPy
# arrays through the CUDA kernels built by g++ (emulated CUDA), and on CuPy
# arrays on a GPU.
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def emulated_library(tmp_path_factory):
    from support import emulation

    return emulation.build(tmp_path_factory.mktemp("cuda_emulation"))


@pytest.fixture(scope="session")
def emulated(emulated_library):
    """The CUDA backend on NumPy arrays, running the g++-built kernels."""
    from support import emulation

    return emulation.backend(emulated_library)


@pytest.fixture(scope="session")
def cupy():
    """CuPy with a visible GPU; skips without one (fails under ADAPOOL_REQUIRE_GPU=1)."""
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return cupy
    except Exception:  # no CuPy, no driver
        pass
    if os.environ.get("ADAPOOL_REQUIRE_GPU") == "1":  # scripts/gpu_check.sh: a skip would hide a broken setup
        pytest.fail("ADAPOOL_REQUIRE_GPU=1 but no NVIDIA GPU is visible to CuPy")
    pytest.skip("no NVIDIA GPU visible to CuPy (the CPU emulation tests cover the kernels here)")


class Backend:
    """Where the public functions run: ``asarray`` moves an input there (a Python
    float stays one), ``active()`` routes NumPy arrays to it for a block, and
    ``tolerance`` is the norm-wise relative difference allowed from Numba."""

    def __init__(self, name, asarray=None, active=None, tolerance=None):
        self.name = name
        self.asarray = asarray or (lambda a: a)
        self.active = active or contextlib.nullcontext
        self.tolerance = tolerance or {}

    def __repr__(self):
        return self.name


@pytest.fixture(params=["numba", "emulated-cuda"])
def numpy_backend(request):
    """Each backend of NumPy arrays in turn, active for the whole test: "numba",
    and "emulated-cuda" (the CUDA kernels built by g++)."""
    backend = _backend(request)
    with backend.active():
        yield backend


@pytest.fixture(params=["emulated-cuda", pytest.param("cupy", marks=pytest.mark.gpu)])
def cuda_backend(request):
    """The CUDA kernels: emulated by g++ on the CPU, and on a GPU through CuPy (marked gpu)."""
    return _backend(request)


def _backend(request):
    from support.cuda_cases import GPU_TOLERANCE, TOLERANCE, using_backend

    if request.param == "numba":
        return Backend("numba", tolerance={t: 0.0 for t in TOLERANCE})
    if request.param == "emulated-cuda":
        emulated = request.getfixturevalue("emulated")
        return Backend("emulated-cuda", active=lambda: using_backend(emulated), tolerance=TOLERANCE)
    cupy = request.getfixturevalue("cupy")
    return Backend("cupy", asarray=lambda a: a if a is None or isinstance(a, float) else cupy.asarray(a),
                   tolerance=GPU_TOLERANCE)
