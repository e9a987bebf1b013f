"""Minimum-of-N timings of a few CPU cases, for comparing two checkouts run alternately.

Used for the issue 10 before/after rerun in docs/benchmarks.md: run it on the
old checkout, the new one, then the old one again, and compare minimums (what
machine load inflates least).  Prints one line per case, in ms.

    python3 benchmarks/interleaved_min.py CHECKOUT_ROOT
"""
import sys
import time

import numpy as np
from _timing import min_seconds

sys.path.insert(0, sys.argv[1])
import adapool_core as ap  # noqa: E402  (imported from the checkout given)

CASES = [("empool2d", 3, 2), ("edscwpool2d", 3, 2), ("empool2d", 3, 3), ("idwpool2d", 3, 3),
         ("adapool2d", 2, 2), ("adapool2d", 3, 1)]


def main():
    x = np.random.default_rng(0).standard_normal((8, 64, 56, 56)).astype(np.float32)
    for name, k, s in CASES:
        forward, backward = getattr(ap, name), getattr(ap, name + "_backward")
        beta = (0.5,) if name.startswith("ada") else ()
        g = np.ones_like(forward(x, *beta, k, s))  # also the warm-up (compile) call
        backward(g, x, *beta, k, s)
        tf = min_seconds(lambda: forward(x, *beta, k, s), 7)
        tb = min_seconds(lambda: backward(g, x, *beta, k, s), 5)
        print(f"{name} k{k}s{s}: fwd {tf * 1e3:.2f} ms  bwd {tb * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
