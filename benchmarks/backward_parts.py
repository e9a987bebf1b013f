"""Single-thread CPU time (time.thread_time, min of 5) of the forward and of the backward in
both modes (exact, paper) on the plane-kernel rows, for comparing two checkouts:

    python3 benchmarks/backward_parts.py CHECKOUT_ROOT [ROWS]     # ROWS: e.g. k5s1,k3s1,k3s2

Exact minus paper is what the exact gradient (dsc_partials, the mean's share) costs.
"""
import sys
import time

root = sys.argv[1]
sys.path.insert(0, root)
sys.path.insert(0, root + "/benchmarks")
import numba  # noqa: E402
import numpy as np  # noqa: E402

numba.set_num_threads(1)
import adapool_core as ap  # noqa: E402
from _timing import MATRIX_ROWS as ROWS, min_seconds  # noqa: E402

for r in (sys.argv[2] if len(sys.argv) > 2 else "k5s1,k3s1,k3s2").split(","):
    shape, k, s, p = ROWS[r]
    d = len(shape) - 2
    for dt in ("float32", "float64"):
        x = np.random.default_rng(0).standard_normal(shape).astype(dt)
        out = []
        for m in ("adapool", "edscwpool", "empool"):
            f = getattr(ap, f"{m}{d}d")
            b = getattr(ap, f"{m}{d}d_backward")
            beta = (0.5,) if m == "adapool" else ()
            g = np.ones_like(f(x, *beta, k, s, p))
            b(g, x, *beta, k, s, p, mode="paper")
            b(g, x, *beta, k, s, p)
            fw = min_seconds(lambda: f(x, *beta, k, s, p), 5, time.thread_time)
            ex = min_seconds(lambda: b(g, x, *beta, k, s, p), 5, time.thread_time)
            pa = min_seconds(lambda: b(g, x, *beta, k, s, p, mode="paper"), 5, time.thread_time)
            out.append(f"{m} fwd {fw * 1e3:6.1f} exact {ex * 1e3:6.1f} paper {pa * 1e3:6.1f}")
        print(r, dt, " | ".join(out), flush=True)
