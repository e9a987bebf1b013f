"""The row kernels (``_cpu/rows.py``) against the vector kernels (``_cpu/vector.py``) on the
row-kernel cases, single thread (time.thread_time, min of 5): forward and backward (exact)
with the backend's choice, then with ``launch.row_kernels`` returning None (the vector kernels).

    python3 benchmarks/row_vs_vector.py CHECKOUT_ROOT [--dtype float64] [--shape 8,64,112,112] [--kernel 2]
"""
import argparse
import sys
import time

ap_ = argparse.ArgumentParser()
ap_.add_argument("root")
ap_.add_argument("--dtype", default="float64")
ap_.add_argument("--shape", default="8,64,112,112")
ap_.add_argument("--kernel", type=int, default=2)
a = ap_.parse_args()
sys.path.insert(0, a.root)
import numba  # noqa: E402
import numpy as np  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core._cpu import launch  # noqa: E402
from _timing import min_seconds  # noqa: E402

numba.set_num_threads(1)
shape = tuple(int(v) for v in a.shape.split(","))
x = np.random.default_rng(0).standard_normal(shape).astype(a.dtype)
chosen = launch.row_kernels
for label, rows in (("rows", chosen), ("vector", lambda x3, geom, method: None)):
    launch.row_kernels = rows
    out = []
    for m in ("adapool", "edscwpool", "empool"):
        f, b = getattr(ap, f"{m}2d"), getattr(ap, f"{m}2d_backward")
        beta = (0.5,) if m == "adapool" else ()
        y = f(x, *beta, a.kernel, 2, 0)
        g = np.ones_like(y)
        b(g, x, *beta, a.kernel, 2, 0)  # compile or load first
        fwd = min_seconds(lambda: f(x, *beta, a.kernel, 2, 0), 5, time.thread_time)
        bwd = min_seconds(lambda: b(g, x, *beta, a.kernel, 2, 0), 5, time.thread_time)
        out.append(f"{m} {fwd * 1e3:6.1f} / {bwd * 1e3:6.1f}")
    print(f"{label:<6} {a.dtype} k{a.kernel} s2 fwd / bwd ms:", "  ".join(out), flush=True)
launch.row_kernels = chosen
