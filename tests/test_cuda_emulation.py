"""Proof 2, the emulation's own part: the unchanged CUDA kernels built with g++
under tests/support/emulation.h, on what only the emulation shows (64-bit index
path on small arrays, half-type instances, a capped grid, launch counts, CuPy's
launcher with a fake CuPy).  The comparisons that run on every CUDA backend,
emulated and GPU, are in tests/test_cuda_kernels.py."""
import numpy as np
import pytest

import adapool_core as ap
from adapool_core import _cpu, _cuda
from support import METHODS, emulation
from support.cuda_cases import TOLERANCE, assert_same, make_case, run_all, using_backend, window_kwargs


@pytest.fixture(scope="session")
def emulated_index64(tmp_path_factory):
    """The kernels with the 64-bit index path taken for every array size."""
    library = emulation.build(tmp_path_factory.mktemp("cuda_emulation_index64"),
                              defines=("ADAPOOL_INDEX32_LIMIT=0",))
    return emulation.backend(library)


@pytest.mark.parametrize("window", ["overlap_pad_ceil", "rect_stride1"])
@pytest.mark.parametrize("method", METHODS)
def test_emulated_64bit_index_path_matches_numba(emulated_index64, method, window):
    """The index arithmetic used for arrays of 2^31 elements or more, on small arrays."""
    x, beta, g, kw = make_case(method, 3, window, np.float64)
    numba_out = run_all(method, 3, x, beta, g, kw)
    with using_backend(emulated_index64):
        emulated_out = run_all(method, 3, x, beta, g, kw)
    assert_same(emulated_out, numba_out, TOLERANCE[np.float64])


@pytest.mark.parametrize("dtype", [np.float16, "bfloat16"])
@pytest.mark.parametrize("method", METHODS)
def test_emulated_half_kernels_match_numba(emulated, method, dtype):
    """__half / __nv_bfloat16 instances: loaded and stored as such, computed in float."""
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 NumPy arrays need ml_dtypes")
        dtype = ml_dtypes.bfloat16
    x, beta, g, kw = make_case(method, 2, "overlap_pad_ceil", dtype)
    numba_out = run_all(method, 2, x, beta, g, kw)
    launcher = emulated._launch_kernel
    start = len(launcher.launches)
    with using_backend(emulated):
        emulated_out = run_all(method, 2, x, beta, g, kw)
    half_type = _cuda.SCALAR_TYPES[np.dtype(dtype).name]
    assert all(name.endswith(f"<{half_type}>") for name, _, _ in launcher.launches[start:])
    assert_same(emulated_out, numba_out, TOLERANCE[np.float16 if dtype == np.float16 else "bfloat16"])


def test_grid_stride_loop_covers_a_capped_grid(emulated_library):
    """With one block of 256 threads for thousands of items, the grid-stride
    loops still cover everything (as a capped grid on a large GPU input)."""
    capped = emulation.backend(emulated_library, max_blocks=1)
    kw = window_kwargs("overlap_pad_ceil", 2)
    rng = np.random.default_rng(3)
    x, beta = rng.standard_normal((3, 4, 41, 37)), 0.3
    g = rng.standard_normal(ap.adapool2d(x, beta, **kw).shape)
    numba_out = run_all("adapool", 2, x, beta, g, kw)
    with using_backend(capped):
        capped_out = run_all("adapool", 2, x, beta, g, kw)
    launches = capped._launch_kernel.launches
    assert launches and all(blocks == 1 for _, blocks, _ in launches)
    assert_same(capped_out, numba_out, TOLERANCE[np.float64])


def test_backward_launches_once_per_phase_class(emulated):
    x, beta, g, kw = make_case("empool", 3, "overlap_pad_ceil", np.float32)  # k3 s2: 2 phases per dim
    launcher = emulated._launch_kernel
    start = len(launcher.launches)
    with using_backend(emulated):
        ap.empool3d_backward(g, x, **kw)
    names = [name for name, _, _ in launcher.launches[start:]]
    assert names == ["adapool::pool_backward<float>"] * 8


def test_nan_propagates_like_numba(emulated):
    x, beta, g, kw = make_case("adapool", 2, "overlap_pad_ceil", np.float32)
    x[0, 1, 4, 4] = np.nan
    x[1, 0, 0, 0] = np.inf
    for method in METHODS:
        b = beta if method == "adapool" else None
        numba_out = run_all(method, 2, x, b, g, kw)
        with using_backend(emulated):
            emulated_out = run_all(method, 2, x, b, g, kw)
        assert np.isnan(numba_out["y"]).any()
        assert_same(emulated_out, numba_out, TOLERANCE[np.float32])


def test_empty_batch_launches_nothing(emulated):
    launcher = emulated._launch_kernel
    start = len(launcher.launches)
    x = np.zeros((0, 3, 8, 8), np.float32)
    with using_backend(emulated):
        y, w = ap.adapool2d(x, 0.5, kernel_size=2, return_mask=True)
        gx, gb = ap.adapool2d_backward(np.zeros_like(y), x, 0.5, kernel_size=2)
    assert y.shape == (0, 3, 4, 4) and w.shape == (0, 3, 4, 4, 2, 2) and gx.shape == x.shape
    assert gb == 0
    assert launcher.launches[start:] == []


def test_emulated_backend_interface_matches_cpu():
    """The CUDA backend offers what _ops calls on a backend."""
    for name in ("forward", "backward", "unpool", "unpool_grad", "array_dtype"):
        assert callable(getattr(_cuda, name)) and callable(getattr(_cpu, name))
    assert _cuda.array_dtype(np.float16) == np.float16 and _cpu.array_dtype(np.float16) == np.float32


class FakeCuPy:
    """Stands in for CuPy where no GPU is: NumPy arrays, and a RawModule whose
    functions run the emulated kernels, so that ``_cuda``'s own CuPy launcher
    (module cache, name expressions, argument marshalling) runs here."""

    ndarray = np.ndarray

    def __init__(self, library):
        self.launcher = emulation.Launcher(library)
        self.compiled = []  # (code, options, name_expressions) of every RawModule made
        self.lookups = []  # names asked of get_function
        self.cuda = type("cuda", (), {"Device": staticmethod(lambda: type("Device", (), {"id": 0})())})

    def __getattr__(self, name):  # array functions: NumPy's
        return getattr(np, name)

    def RawModule(self, code, options, name_expressions):
        self.compiled.append((code, options, name_expressions))
        launcher, lookups = self.launcher, self.lookups

        class Module:
            @staticmethod
            def get_function(name):
                assert name in name_expressions, name
                lookups.append(name)

                def kernel(grid, block, args):
                    assert len(grid) == 1 and len(block) == 1
                    assert all(isinstance(a, (np.ndarray, np.int64)) for a in args), args
                    launcher(name, grid[0], block[0], args)

                return kernel

        return Module()


def test_cupy_launcher_runs_the_kernels(emulated_library, monkeypatch):
    fake = FakeCuPy(emulated_library)
    monkeypatch.setattr(_cuda, "_cupy", fake)
    monkeypatch.setattr(_cuda, "_modules", {})
    monkeypatch.setattr(_cuda, "_functions", {})
    monkeypatch.setattr(_cuda, "_backend", None)
    x, beta, g, kw = make_case("adapool", 2, "overlap_pad_ceil", np.float32)
    numba_out = run_all("adapool", 2, x, beta, g, kw)
    with using_backend(_cuda):
        cuda_out = run_all("adapool", 2, x, beta, g, kw)
    assert_same(cuda_out, numba_out, TOLERANCE[np.float32])
    # One module for the device, compiled from the exact source with every instance.
    assert fake.compiled == [(_cuda.kernel_source(), _cuda.compile_options(), _cuda.name_expressions())]
    assert {name for name, _, _ in fake.launcher.launches} == {
        f"adapool::{k}<float>" for k in _cuda.KERNELS}
    # Kernels are looked up once, however often they are launched.
    assert sorted(fake.lookups) == sorted({name for name, _, _ in fake.launcher.launches})
    assert len(fake.launcher.launches) > len(fake.lookups)
