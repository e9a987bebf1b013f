"""Single-thread CPU time (time.thread_time, min of 5) of eM and adaPool forwards on four rows,
for comparing two checkouts (the eM shared-exps A/B in docs/benchmarks.md):

    python3 benchmarks/plane_thread_time.py CHECKOUT_ROOT
"""
import sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np, numba
numba.set_num_threads(1)
import adapool_core as ap
rows = {"3d": ((4, 32, 8, 56, 56), 2, 2, 0), "k3s2": ((8, 64, 56, 56), 3, 2, 0), "k5s1": ((8, 256, 20, 20), 5, 1, 2), "k3s1": ((8, 64, 56, 56), 3, 1, 1)}
for r, (shape, k, s, p) in rows.items():
    d = len(shape) - 2
    for dt in ("float32", "float64"):
        x = np.random.default_rng(0).standard_normal(shape).astype(dt)
        out = []
        for m in ("empool", "adapool"):
            f = getattr(ap, f"{m}{d}d"); beta = (0.5,) if m == "adapool" else ()
            f(x, *beta, k, s, p)
            best = 1e9
            for _ in range(5):
                t = time.thread_time(); f(x, *beta, k, s, p); best = min(best, time.thread_time() - t)
            out.append(f"{m} {best*1e3:7.1f}")
        print(r, dt, "  ".join(out), flush=True)
