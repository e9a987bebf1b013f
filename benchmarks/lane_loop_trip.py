"""A stand-alone copy of the plane kernels' statistics pass (a 16-lane loop over a flat
accumulator array s, eM's and eDSCW's scores per (cell, lane) pair), with the lane loop's
trip count a constant (B) or a run-time argument: ns per pair, 1 thread, ``time.thread_time``.
Whether the constant trip count keeps LLVM from vectorising (docs/benchmarks.md, "Designs tried").

    python3 benchmarks/lane_loop_trip.py CHECKOUT_ROOT
"""
import sys
import time

import numpy as np
from numba import njit

sys.path.insert(0, sys.argv[1])
from adapool_core._cpu.window import dscw_score, em_score  # noqa: E402

B = 16


def lane_loop(constant):
    """The statistics pass with its lane loops to B (constant: a compile-time 16, the closure's
    frozen value) or to the run-time argument nb."""

    @njit(error_model="numpy", boundscheck=False)
    def loop(xt, s, P, reps, nb):
        T = xt.dtype.type
        n = B if constant else nb
        for _ in range(reps):
            for l in range(n):
                s[l] = 0.0; s[B + l] = -np.inf; s[2 * B + l] = 0.0
            for p in range(P):
                base = p * n
                for l in range(n):
                    v = xt[base + l]
                    s[l] += v
                    s[B + l] = v if v > s[B + l] else s[B + l]
                    s[2 * B + l] += (em_score(v, s[B + l]) + dscw_score(v, s[l], T)) * v
        return s[0]
    return loop


constant_lanes, runtime_lanes = lane_loop(True), lane_loop(False)


for dtype in (np.float32, np.float64):
    P, reps = 400, 2000
    xt = np.random.default_rng(0).random(P * B).astype(dtype)
    s = np.zeros(3 * B, dtype)
    constant_lanes(xt, s, P, 1, B)
    runtime_lanes(xt, s, P, 1, B)
    for name, run in (("constant", lambda: constant_lanes(xt, s, P, reps, B)),
                      ("run-time", lambda: runtime_lanes(xt, s, P, reps, B))):
        t = time.thread_time()
        run()
        print(f"{dtype.__name__} {name} trip count: {(time.thread_time() - t) / (reps * P * B) * 1e9:.2f} ns a pair")
