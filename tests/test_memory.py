"""Memory: 10,000 small calls (every function, valid and invalid arguments) do
not grow the process's resident memory beyond a small bound (nothing is cached
per call, nothing leaks through exceptions); adaPool's forward+backward peaks
at about 2x the input (issue 11: dL/dbeta per output cell is summed to beta's
shape slice by slice, ``_beta_slices``), and the slices do not change results."""
import os
import subprocess
import sys
import tracemalloc

import numba
import numpy as np
import pytest

import adapool_core as ap
from adapool_core import _beta_slices, _cpu
from reference_grad import pool_gradient
from workload import rss_mib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CALLS = 10_000
BOUND_MIB = 8  # 10,000 calls: a leak of 1 KiB per call would show as ~10 MiB


def small_calls(count, rng):
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    beta = np.full((3, 3), 0.5, np.float32)
    g = np.ones((1, 2, 3, 3), np.float32)
    calls = [
        lambda: ap.adapool2d(x, beta, 3, 2, 1, return_mask=True),
        lambda: ap.adapool2d_backward(g, x, beta, 3, 2, 1),
        lambda: ap.idwpool2d_backward(g, x, 3, 2, 1, mode="paper"),
        lambda: ap.empool1d(x[0], 2),
        lambda: ap.adaunpool2d(*ap.edscwpool2d(x, 3, 2, 1, return_mask=True), 3, 2, 1, output_size=(6, 6)),
        lambda: ap.adaunpool2d_backward(x, g, np.ones((1, 2, 3, 3, 3, 3), np.float32), 3, 2, 1),
        lambda: ap.empool2d(x, kernel_size=9),  # ValueError
        lambda: ap.empool2d(x.astype(np.int32)),  # TypeError
    ]
    for i in range(count):
        try:
            calls[i % len(calls)]()
        except (TypeError, ValueError):
            pass


def test_ten_thousand_calls_do_not_grow_rss():
    try:
        rss_mib()
    except OSError:
        pytest.skip("needs /proc/self/status (Linux)")
    rng = np.random.default_rng(0)
    small_calls(500, rng)  # compile and warm every path first
    before = rss_mib()
    small_calls(CALLS, rng)
    grown = rss_mib() - before
    assert grown < BOUND_MIB, f"resident memory grew {grown:.1f} MiB over {CALLS} calls"


# The stride-1 rows of the issue 11 matrix: output and grad_x each as large as the input.
STRIDE1_ROWS = {"k3s1p1": ((8, 64, 56, 56), 3, 1, 1), "k5s1p2": ((8, 256, 20, 20), 5, 1, 2)}
# Output + grad_x (2x, the floor of a call that returns both) + one slice of dL/dbeta (blocks
# of <= 1/16 of the input, as many as 2 threads need: <= 1/8 on these rows) + beta-sized sums.
# Before the slices: 3x (dL/dbeta per output cell, whole).
PEAK_BOUND = 2.2


def forward_backward(x, beta, k, s, p):
    g = np.ones(x.shape, x.dtype)  # stride 1, "same" padding: the output has the input's shape

    def call():
        y = ap.adapool2d(x, beta, k, s, p)
        return y, ap.adapool2d_backward(g, x, beta, k, s, p)
    return call


@pytest.mark.parametrize("beta_kind", ["per_location", "scalar"])
@pytest.mark.parametrize("row", list(STRIDE1_ROWS))
def test_forward_backward_peak_is_about_twice_the_input(row, beta_kind):
    """Peak of the NumPy allocations (tracemalloc, exact for NumPy arrays) of one
    forward+backward, 2 threads as in the issue 11 matrix."""
    shape, k, s, p = STRIDE1_ROWS[row]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    beta = rng.uniform(0, 1, shape[2:]).astype(np.float32) if beta_kind == "per_location" else 0.5
    call = forward_backward(x, beta, k, s, p)
    threads = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        call()  # compile or load first
        tracemalloc.start()
        try:
            out = call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        numba.set_num_threads(threads)
    assert out[1][1].shape == np.shape(beta)
    assert peak <= PEAK_BOUND * x.nbytes, f"forward+backward peak {peak / x.nbytes:.3f}x the input"


RSS_SCRIPT = """
import sys
import numpy as np
import adapool_core as ap
from adapool_core.cli.bench import _pin_malloc_mmap_threshold, _rss_peak_supported, measure_memory
sys.path.insert(0, "tests")
from test_memory import STRIDE1_ROWS, forward_backward
if not (_pin_malloc_mmap_threshold() and _rss_peak_supported()):
    print("unsupported")
    sys.exit(0)
for shape, k, s, p in STRIDE1_ROWS.values():
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    call = forward_backward(x, np.full(shape[2:], 0.5, np.float32), k, s, p)
    call()
    print(measure_memory(call, True)[1] / x.nbytes)
"""


def test_forward_backward_peak_rss_as_adapool_bench_measures_it():
    """The peak resident set (VmHWM) one forward+backward adds, measured as
    ``adapool bench`` does, in a fresh process (the bench pins glibc's mmap threshold)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", RSS_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "unsupported":
        pytest.skip("needs /proc/self/clear_refs and glibc (Linux)")
    peaks = [float(v) for v in done.stdout.split()]
    assert len(peaks) == len(STRIDE1_ROWS)
    # Slack over PEAK_BOUND for resident pages the allocator keeps (huge pages, arenas).
    assert max(peaks) <= PEAK_BOUND + 0.25, f"forward+backward peak RSS {peaks} x the input"


SLICED_SHAPE = (3, 5, 7, 6)  # N, C, H, W; k3 s1 p1


def sliced_beta_shapes():
    n, c, h, w = SLICED_SHAPE
    return [(), (h, w), (c, 1, 1), (n, 1, h, w), (n, c, 1, 1), (1, c, h, w), (n, 1, 1, 1)]


def summed_to(g, shape):
    """g (N, C, *O) summed over the dims that beta (of shape) is broadcast along."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True)


@pytest.mark.parametrize("beta_shape", sliced_beta_shapes())
@pytest.mark.parametrize("block_bytes", [1, 100, 500])
def test_sliced_backward_matches_reference(monkeypatch, beta_shape, block_bytes):
    """Blocks of one row, of channel ranges and of whole batches (``block_bytes``:
    1 row is 168 bytes); launches of one block, of several or of all: grad_beta
    matches the float64 reference and is the same to the bit whatever the
    launches (so whatever the thread count); grad_x is the unsliced one to the bit."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(SLICED_SHAPE)
    g = rng.standard_normal(SLICED_SHAPE)
    beta = rng.uniform(-0.1, 1.1, beta_shape)
    gw = rng.standard_normal(SLICED_SHAPE + (3, 3))
    kw = dict(kernel_size=3, stride=1, padding=1)
    unsliced = [ap.adapool2d_backward(g, x, beta, **kw, grad_w=w) for w in (None, gw)]
    expected = summed_to(pool_gradient("adapool", x, beta, g, **kw)[1], beta_shape)
    monkeypatch.setattr(_beta_slices, "BLOCK_MIN_BYTES", block_bytes)
    monkeypatch.setattr(_beta_slices, "BLOCK_FRACTION", 1 << 40)
    for w, (gx0, gb0) in zip((None, gw), unsliced):
        results = []
        for min_rows in (1, 4, 1000):
            monkeypatch.setattr(_cpu, "min_backward_rows", lambda geom, rows=min_rows: rows)
            results.append(ap.adapool2d_backward(g, x, beta, **kw, grad_w=w))
        for gx, gb in results:
            assert np.array_equal(gx, gx0)
            assert gb.shape == beta_shape and np.array_equal(gb, results[0][1])
            np.testing.assert_allclose(gb, gb0, rtol=1e-12, atol=1e-12)
            if w is None:
                np.testing.assert_allclose(gb, expected, rtol=1e-10, atol=1e-10)
