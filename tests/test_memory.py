"""10,000 small calls (every function, valid and invalid arguments) do not
grow the process's resident memory beyond a small bound: nothing is cached
per call, nothing leaks through exceptions."""
import numpy as np
import pytest

import adapool_core as ap
from workload import rss_mib

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
