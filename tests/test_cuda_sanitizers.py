"""Proof 4: the unchanged CUDA kernels are race-free and memory-safe on every
path the launches take, as far as ThreadSanitizer, AddressSanitizer and UBSan
see on the CPU emulation (docs/cuda.md, docs/guarantees.md).

- ``thread``: ``g++ -fsanitize=thread`` with the threaded launch of the
  emulation header (CUDA threads spread over OS threads, replayed until every
  pair of CUDA threads of a launch has run on different OS threads); every
  kernel instance on overlapping windows with padding and ceil_mode, disjoint
  windows, windows tiling the input and stride-1 windows.
- ``address,undefined``: ``-fsanitize=address,undefined``, serial launch,
  every array a malloc of exactly its bytes; the same geometries plus clipped
  last windows, 1-element dims and every broadcast form of beta.

Any report fails.  The fixtures (``sanitizers/fixtures.cu``) prove that each
build flags what it exists for.
"""
import numpy as np
import pytest

import adapool_core as ap
from adapool_core import _cuda
from support import METHODS, call_backward, call_pool
from support import sanitizers as san
from support import cuda_check_unavailable as unavailable
from support.cuda_cases import BETA_SHAPES, SHAPES, WINDOWS, beta_case, using_backend, window_kwargs

DTYPES = ("float32", "float64", "float16", "bfloat16")
# 1-element dims, alone and next to a dim whose last window is clipped.
ONE_ELEMENT_SHAPES = {1: [(1, 1, 1), (1, 1, 2)], 2: [(1, 1, 1, 1), (1, 2, 1, 5)],
                      3: [(1, 1, 1, 1, 1), (2, 1, 1, 4, 1)]}
ONE_ELEMENT_WINDOWS = [dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                       dict(kernel_size=1, stride=1, padding=0, ceil_mode=False)]


def require_gxx():
    if san.GXX is None:
        unavailable("g++ not found: the sanitizer builds of the CUDA kernels need it")


@pytest.fixture(scope="session")
def builds():
    """Sanitizer name -> driver executable over the real kernels (compiled once per source hash)."""
    require_gxx()
    return {name: san.build(name) for name in san.BUILDS}


@pytest.fixture(scope="session")
def fixture_builds():
    require_gxx()
    return {name: san.build(name, san.FIXTURES, san.FIXTURE_KERNELS) for name in san.BUILDS}


def numpy_dtype(name):
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            unavailable("bfloat16 NumPy arrays need ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def record_case(method, d, shape, kw, dtype, seed=0):
    """Every public function of one case, recorded (run inside using_backend(recorder's backend)):
    forward with and without weights, both backward modes, adaUnPool with both
    normalisations and its backward.  Values do not matter to the sanitizers
    but are real (no NaN inputs), so that every branch of the math runs."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    out_shape = call_pool(ap, method, d, x, 0.5, **kw).shape  # recorded too: a forward without weights
    beta = rng.uniform(-0.25, 1.25, out_shape[-d:]) if method == "adapool" else None
    g = rng.standard_normal(out_shape).astype(dtype)
    y, w = call_pool(ap, method, d, x, beta, return_mask=True, **kw)
    for mode in ("exact", "paper"):
        call_backward(ap, method, d, g, x, beta, mode=mode, **kw)
    unpool_kw = dict(kernel_size=kw["kernel_size"], stride=kw["stride"], padding=kw["padding"],
                     output_size=shape[-d:])
    for normalize in ("sum", "window"):
        getattr(ap, f"adaunpool{d}d")(y, w, normalize=normalize, **unpool_kw)
        getattr(ap, f"adaunpool{d}d_backward")(x, y, w, normalize=normalize, **unpool_kw)


def cut(kw, d):
    return {k: (v[-d:] if isinstance(v, tuple) else v) for k, v in kw.items()}


def geometries(sanitizer):
    """(d, shape, window kwargs) of the cases each build runs."""
    cases = [(d, SHAPES[d], window_kwargs(name, d)) for d in (1, 2, 3) for name in WINDOWS]
    if sanitizer == "address,undefined":
        cases += [(d, shape, cut(kw, d)) for d in (1, 2, 3) for shape in ONE_ELEMENT_SHAPES[d]
                  for kw in ONE_ELEMENT_WINDOWS]
    return cases


def assert_clean(executable, recorder, tmp_path, replays):
    done = san.run(executable, recorder, tmp_path, replays)
    problems = san.reports(done)
    assert not problems, problems
    assert f"{recorder.launches} launches x {replays} replays" in done.stdout, done.stdout


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("sanitizer", list(san.BUILDS))
def test_kernels_pass_sanitizer(builds, tmp_path, sanitizer, dtype_name):
    """Every method, rank and geometry of the build, every kernel of one dtype: no report."""
    dtype = numpy_dtype(dtype_name)
    recorder = san.PlanRecorder()
    with using_backend(san.backend(recorder)):
        for d, shape, kw in geometries(sanitizer):
            for method in METHODS:
                record_case(method, d, shape, kw, dtype)
        if sanitizer == "address,undefined" and dtype_name == "float32":
            # beta read through its broadcast strides from an array of exactly its size
            for kind in BETA_SHAPES:
                for batched in (True, False):
                    x, beta, g, kw = beta_case(kind, batched)
                    ap.adapool2d(x, beta, return_mask=True, **kw)
                    ap.adapool2d_backward(g, x, beta, **kw)
    launched = {line.split()[1] for line in recorder.lines if line[0] == "L"}
    assert launched == {san.symbol(_cuda.name_expression(k, dtype)) for k in _cuda.KERNELS}
    assert_clean(builds[sanitizer], recorder, tmp_path, san.replays_for(sanitizer, recorder))


def test_kernels_pass_thread_sanitizer_on_a_capped_grid(builds, tmp_path):
    """Grid-stride loops (one block for everything): still no report."""
    recorder = san.PlanRecorder()
    with using_backend(san.backend(recorder, max_blocks=1)):
        for method in METHODS:
            record_case(method, 2, SHAPES[2], window_kwargs("overlap_pad_ceil", 2), np.float32)
    assert all(line.split()[2] == "1" for line in recorder.lines if line[0] == "L")
    assert_clean(builds["thread"], recorder, tmp_path, san.replays_for("thread", recorder))


# --- the fixtures: each build flags what it exists for ---------------------

def fixture_launch(recorder, kernel, n, *arrays_and_scalars):
    blocks, threads = _cuda.launch_config(n)
    recorder(f"sanitizer_fixtures::{kernel}", blocks, threads, arrays_and_scalars)


def run_fixture(fixture_builds, sanitizer, tmp_path, launch, replays=None):
    recorder = san.PlanRecorder()
    launch(recorder)
    replays = san.replays_for(sanitizer, recorder) if replays is None else replays
    return san.reports(san.run(fixture_builds[sanitizer], recorder, tmp_path, replays))


def test_thread_build_flags_a_race(fixture_builds, tmp_path):
    n = 64
    report = run_fixture(fixture_builds, "thread", tmp_path, lambda r: fixture_launch(
        r, "racy_sum", n, np.ones(n, np.float32), np.zeros(1, np.float32), n))
    assert "WARNING: ThreadSanitizer: data race" in report and "racy_sum" in report, report


def test_thread_build_flags_a_race_between_threads_on_one_striding_os_thread(fixture_builds, tmp_path):
    """Conflicting threads OS_THREADS apart share an OS thread in the striding
    replay, which cannot see the race; the later replays separate them."""
    n, period = 64, san.OS_THREADS

    def launch(r):
        fixture_launch(r, "racy_same_residue", n, np.ones(n, np.float32), np.zeros(period, np.float32), n, period)
    assert run_fixture(fixture_builds, "thread", tmp_path, launch, replays=1) == ""
    report = run_fixture(fixture_builds, "thread", tmp_path, launch)
    assert "WARNING: ThreadSanitizer: data race" in report and "racy_same_residue" in report, report


def test_address_build_flags_a_read_past_the_end(fixture_builds, tmp_path):
    n = 10
    report = run_fixture(fixture_builds, "address,undefined", tmp_path, lambda r: fixture_launch(
        r, "read_past_end", n, np.ones(n, np.float32), np.zeros(n, np.float32), n))
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in report and "read_past_end" in report, report


def test_undefined_build_flags_signed_overflow(fixture_builds, tmp_path):
    n = 4
    report = run_fixture(fixture_builds, "address,undefined", tmp_path, lambda r: fixture_launch(
        r, "overflowing_index", n, np.zeros(n, np.int64), n, np.iinfo(np.int64).max))
    assert "runtime error: signed integer overflow" in report, report


def test_thread_build_flags_a_phase_class_bug(tmp_path, monkeypatch):
    """Too few phase classes (a plausible bug: floor(k / s) for ceil(k / s) in
    ``PoolGeometry.phases``, which hands the classes to the real pool_backward):
    windows of one launch share cells, and the thread build says so."""
    require_gxx()
    from adapool_core import _geometry

    def too_few(geom):
        return tuple(max(1, k // s) for k, s in zip(geom.kernel, geom.stride))

    executable = san.build("thread", expressions=[_cuda.name_expression("pool_backward", np.float32)])
    recorder = san.PlanRecorder()
    monkeypatch.setattr(_geometry.PoolGeometry, "phases", property(too_few))
    _geometry._phase_classes.cache_clear()
    try:
        with using_backend(san.backend(recorder)):
            x = np.random.default_rng(0).standard_normal((1, 1, 9)).astype(np.float32)
            ap.edscwpool1d_backward(np.ones((1, 1, 5), np.float32), x, kernel_size=3, stride=2, padding=1)
    finally:
        _geometry._phase_classes.cache_clear()  # no mutant classes left for later tests
    recorder.lines = [line for line in recorder.lines if "pool_backward" in line or line[0] == "B"]
    report = san.reports(san.run(executable, recorder, tmp_path, san.replays_for("thread", recorder)))
    assert "WARNING: ThreadSanitizer: data race" in report and "pool_backward" in report, report


@pytest.mark.parametrize("sanitizer", list(san.BUILDS))
def test_fixture_builds_pass_a_correct_kernel(fixture_builds, tmp_path, sanitizer):
    """The harness itself (plan, buffers, launch) gives no report: the flags above are the fixtures'."""
    n = 300
    report = run_fixture(fixture_builds, sanitizer, tmp_path, lambda r: fixture_launch(
        r, "clean_copy", n, np.ones(n, np.float32), np.zeros(n, np.float32), n))
    assert report == ""
