"""Single-thread CPU time (time.thread_time, min of 5) of the plane-kernel rows, for comparing
two checkouts (the eM shared-exps A/B and the backward's score reuse in docs/benchmarks.md):

    python3 benchmarks/plane_thread_time.py CHECKOUT_ROOT [--backward] [--methods empool,adapool]

Times the forwards, or with --backward the *_backward functions alone (exact mode).
"""
import argparse, sys, time
ap_ = argparse.ArgumentParser()
ap_.add_argument("root"); ap_.add_argument("--backward", action="store_true")
ap_.add_argument("--methods", default="empool,adapool"); ap_.add_argument("--rows", default="3d,k3s2,k5s1,k3s1")
a = ap_.parse_args()
sys.path.insert(0, a.root)
import numpy as np, numba
numba.set_num_threads(1)
import adapool_core as ap
from _timing import MATRIX_ROWS as ROWS, min_seconds
for r in a.rows.split(","):
    shape, k, s, p = ROWS[r]
    d = len(shape) - 2
    for dt in ("float32", "float64"):
        x = np.random.default_rng(0).standard_normal(shape).astype(dt)
        out = []
        for m in a.methods.split(","):
            f = getattr(ap, f"{m}{d}d"); beta = (0.5,) if m == "adapool" else ()
            y = f(x, *beta, k, s, p)
            if a.backward:
                b = getattr(ap, f"{m}{d}d_backward"); g = np.ones_like(y)
                call = lambda: b(g, x, *beta, k, s, p)
            else:
                call = lambda: f(x, *beta, k, s, p)
            call()
            best = min_seconds(call, 5, time.thread_time)
            out.append(f"{m} {best*1e3:7.1f}")
        print(r, dt, "  ".join(out), flush=True)
