"""What the benchmark scripts share: the min-of-N timer and the issue 11 matrix rows by name.

Imported as ``from _timing import ...``: the scripts run as ``python3 benchmarks/NAME.py``,
which puts this folder first on sys.path.
"""
import time

# Issue 11's matrix rows (adapool bench), by the names the scripts' --rows take:
# (shape, kernel, stride, padding).
MATRIX_ROWS = {"k2s2": ((32, 64, 112, 112), 2, 2, 0), "k3s2": ((8, 64, 56, 56), 3, 2, 0),
               "k3s1": ((8, 64, 56, 56), 3, 1, 1), "k5s1": ((8, 256, 20, 20), 5, 1, 2),
               "big": ((1, 3, 1024, 1024), 2, 2, 0), "3d": ((4, 32, 8, 56, 56), 2, 2, 0),
               "1d": ((32, 256, 512), 2, 2, 0)}


def min_seconds(call, repeats, clock=time.perf_counter):
    """The fastest of ``repeats`` calls, in seconds of ``clock`` (what machine load inflates least)."""
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        call()
        best = min(best, clock() - start)
    return best
