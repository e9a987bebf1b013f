"""Backward alone at a given thread count (min of 5, wall time), adaPool with a scalar and a
per-location beta, eDSCW and eM: how the compute-bound kernels scale from 1 to 2 threads.

    python3 benchmarks/thread_scaling.py THREADS [k5s1|k3s1]
"""
import sys

import numba
import numpy as np

import adapool_core as ap
from _timing import MATRIX_ROWS, min_seconds

numba.set_num_threads(int(sys.argv[1]))
row = sys.argv[2] if len(sys.argv) > 2 else "k5s1"
shape, k, s, p = MATRIX_ROWS[row]
x = np.random.default_rng(0).standard_normal(shape).astype("float32")
g = np.ones(shape, "float32")  # stride 1, "same" padding: the output has the input's shape


def tmin(f, n=5):
    return min_seconds(f, n) * 1e3


# A beta the output's shape needs no slices (``_beta_slices``): one launch over every plane.
for name, beta in (("scalar beta", 0.5), ("per-location beta", np.full(shape[-2:], 0.5, "float32")),
                   ("full beta, one launch", np.full(shape, 0.5, "float32"))):
    ap.adapool2d_backward(g, x, beta, k, s, p)
    print(f"{row} threads {sys.argv[1]} adapool ({name}) backward {tmin(lambda: ap.adapool2d_backward(g, x, beta, k, s, p)):.2f} ms")
for m in ("edscwpool", "empool"):
    b = getattr(ap, m + "2d_backward")
    b(g, x, k, s, p)
    print(f"{row} threads {sys.argv[1]} {m} backward {tmin(lambda: b(g, x, k, s, p)):.2f} ms")
