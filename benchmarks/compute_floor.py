"""A lower bound on each matrix row's forward: the per-(cell, window) arithmetic alone, timed.

    python3 benchmarks/compute_floor.py CHECKOUT_ROOT [--dtype float32|float64|both] [--repeats 7]

Every method's forward must, for each (cell, window) pair, at least run the loops
below (the window kernels' own formulas, ``_cpu.window``), and the backward must run
them again (the array-level API is stateless: nothing is kept from the forward):

- the window's sum (the mean; eDSCW and IDW) and max (eM's shift): ``sum_max``;
- eDSCW: exp(dsc(x, mean)) and its two sums: ``dscw`` (the weight depends on the
  window's own mean, so overlapping windows cannot share it);
- eM: its two sums of exp(x - shift), the exps shared by the plane's windows
  (one per cell, ``em_exp``, plus ``em_sums`` per pair) where windows overlap, one
  per pair (``em_own``) where they do not (the kernels' own choice);
- IDW: the smallest distance to the mean (``idw_min``), then dmin / |x - mean| and its
  two sums (``idw_sums``).

Each loop runs in the plane kernels' layout (16 lanes innermost) over a block that
stays in L1, with its accumulators on the stack: no memory traffic, no window
bookkeeping, no transposes, no outputs.  One thread, scaled to 2 by halving (ideal
scaling): a floor no 2-thread implementation of these formulas goes under.  The floor
of forward+backward is twice the forward's (the statistics again; the gradient's
own terms counted as free).  Prints the floor in ms and as a ratio to torch's
avg_pool of the row (measured in the same run, 2 threads, min of N), next to the
issue's targets.
"""
import argparse
import sys
import time

import numpy as np

ap_ = argparse.ArgumentParser()
ap_.add_argument("root")
ap_.add_argument("--dtype", default="float32")
ap_.add_argument("--repeats", type=int, default=7)
a = ap_.parse_args()
sys.path.insert(0, a.root)

import numba  # noqa: E402
import torch  # noqa: E402
from numba import njit  # noqa: E402

from _timing import MATRIX_ROWS, min_seconds  # noqa: E402
from adapool_core._cpu.fastexp import JIT  # noqa: E402
from adapool_core._cpu.scratch import stack_empty  # noqa: E402
from adapool_core._cpu.window import dscw_score, em_score  # noqa: E402
from adapool_core._geometry import adaptive_geometry, cover_counts, pool_geometry  # noqa: E402

B = 16
ACC = 2 * B
STEPS = 256  # cells of the L1-resident block, B lanes each (16 KiB float32)


@njit(**JIT)
def sum_max(xt, reps, out):
    T = xt.dtype.type
    acc = stack_empty(ACC, xt.dtype)
    for l in range(B):
        acc[l] = T(0)
        acc[B + l] = -T(np.inf)
    for _ in range(reps):
        for p in range(STEPS):
            for l in range(B):
                v = xt[p * B + l]
                acc[l] += v
                acc[B + l] = v if v > acc[B + l] else acc[B + l]
    for l in range(ACC):
        out[l] = acc[l]


# The weight each per-pair loop of ``weighted_sums`` computes.
DSCW, EM_OWN, IDW_SUMS = 0, 1, 2


def weighted_sums(kind):
    """The per-pair loop for weights of one kind: a weight e of the cell and the sums of e and
    e * x (eDSCW's exp(dsc(x, mean)), eM's exp(x - vmax) with the window's own max, or IDW's
    dmin / |x - mean|).  kind is the closure's constant: the loop has no branch in it."""

    @njit(nogil=True, error_model="numpy")  # not cached: a closure
    def loop(xt, reps, out):
        T = xt.dtype.type
        acc = stack_empty(ACC, xt.dtype)
        for l in range(ACC):
            acc[l] = T(0)
        for r in range(reps):
            centre = T(0.25) + T(r % 3)  # a window's mean (or max): a value the loop cannot hoist
            dmin = T(1e-3)
            for p in range(STEPS):
                for l in range(B):
                    v = xt[p * B + l]
                    if kind == DSCW:
                        e = dscw_score(v, centre, T)
                    elif kind == EM_OWN:
                        e = em_score(v, centre + T(3))
                    else:
                        e = dmin / abs(v - centre)
                    acc[l] += e
                    acc[B + l] += e * v
        for l in range(ACC):
            out[l] = acc[l]
    return loop


@njit(**JIT)
def em_exp(xt, reps, et):
    T = xt.dtype.type
    for r in range(reps):
        shift = T(3) + T(r % 3)
        for p in range(STEPS):
            for l in range(B):
                et[p * B + l] = em_score(xt[p * B + l], shift)


@njit(**JIT)
def em_sums(xt, et, reps, out):
    T = xt.dtype.type
    acc = stack_empty(ACC, xt.dtype)
    for l in range(ACC):
        acc[l] = T(0)
    for _ in range(reps):
        for p in range(STEPS):
            for l in range(B):
                e = et[p * B + l]
                acc[l] += e
                acc[B + l] += e * xt[p * B + l]
    for l in range(ACC):
        out[l] = acc[l]


@njit(**JIT)
def idw_min(xt, reps, out):
    T = xt.dtype.type
    acc = stack_empty(ACC, xt.dtype)
    for l in range(B):
        acc[l] = T(np.inf)
    for r in range(reps):
        mean = T(0.25) + T(r % 3)
        for p in range(STEPS):
            for l in range(B):
                d = abs(xt[p * B + l] - mean)
                acc[l] = d if d < acc[l] else acc[l]
    for l in range(B):
        out[l] = acc[l]


def ns_per_pair(run):
    """One thread's ns per (cell, window) pair of run(reps), a loop over reps blocks (min of
    a.repeats runs of ~2 ms)."""
    reps = 64
    run(1)  # compile
    seconds = min_seconds(lambda: run(reps), a.repeats)
    return seconds * 1e9 / (reps * STEPS * B)


def pair_count(shape, k, s, p):
    """(cells, (cell, window) pairs) of the row: the pairs are the cells' window counts summed
    (``_geometry.cover_counts``, per dim; a cell's count is their product)."""
    d = len(shape) - 2
    if k == 0:  # global: one window over everything
        geom = adaptive_geometry(shape, d, 1, "compute_floor")
    else:
        geom = pool_geometry(shape, d, k, s, p, False, "compute_floor")
    pairs = geom.nc
    for counts in cover_counts(geom):
        pairs *= int(counts.sum())
    return int(np.prod(shape)), pairs


numba.set_num_threads(1)
torch.set_num_threads(2)
rows = dict(MATRIX_ROWS, **{"global": ((32, 256, 14, 14), 0, 0, 0)})
dtypes = ["float32", "float64"] if a.dtype == "both" else [a.dtype]
for dt in dtypes:
    xt = np.random.default_rng(0).standard_normal(STEPS * B).astype(dt)
    et = np.empty_like(xt)
    out = np.empty(ACC, dtype=dt)
    per = {"em_exp": ns_per_pair(lambda reps: em_exp(xt, reps, et))}  # first: em_sums reads its exps
    per["em_sums"] = ns_per_pair(lambda reps: em_sums(xt, et, reps, out))
    per["sum_max"] = ns_per_pair(lambda reps: sum_max(xt, reps, out))
    per["idw_min"] = ns_per_pair(lambda reps: idw_min(xt, reps, out))
    for name, kind in (("dscw", DSCW), ("em_own", EM_OWN), ("idw_sums", IDW_SUMS)):
        loop = weighted_sums(kind)
        per[name] = ns_per_pair(lambda reps, loop=loop: loop(xt, reps, out))
    print(f"{dt}, 1 thread, ns per pair: " + ", ".join(f"{k} {v:.3f}" for k, v in per.items()))
    for name, (shape, k, s, p) in rows.items():
        cells, pairs = pair_count(shape, k, s, p)
        overlapping = s < k  # as ``adapool bench``'s targets: global pooling (k = s = 0) counts as non-overlapping
        d = len(shape) - 2
        x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(dt)).requires_grad_(True)
        if k == 0:
            def avg():
                return torch.nn.functional.adaptive_avg_pool2d(x, 1)
        else:
            pool = getattr(torch.nn.functional, f"avg_pool{d}d")

            def avg():
                return pool(x, k, s, p)
        g = torch.ones_like(avg())
        avg_ms = min_seconds(avg, a.repeats) * 1e3
        avg_fb_ms = min_seconds(lambda: avg().backward(g), a.repeats) * 1e3
        # eM shares its exps where windows overlap by 4x or more (the plane kernels' rule) or
        # one window covers the row (the flat kernels' shift is the row's max).
        shared = k == 0 or k ** d >= 4 * s ** d
        em = per["em_exp"] * cells + per["em_sums"] * pairs if shared else per["em_own"] * pairs
        floor_ns = {"adapool": per["sum_max"] * pairs + per["dscw"] * pairs + em,
                    "edscwpool": per["sum_max"] * pairs + per["dscw"] * pairs,
                    "empool": per["sum_max"] * pairs + em,
                    "idwpool": per["sum_max"] * pairs + (per["idw_min"] + per["idw_sums"]) * pairs}
        target_f, target_fb = (3.0, 4.0) if overlapping else (2.0, 3.0)
        print(f"{name} {shape} k{k} s{s} p{p} {dt}: {pairs / cells:.2f} pairs per cell, avg_pool {avg_ms:.2f} ms"
              f" fwd, {avg_fb_ms:.2f} ms fwd+bwd (targets {target_f:g}x / {target_fb:g}x)")
        for method, ns in floor_ns.items():
            ms = ns / 2 / 1e6  # 2 threads, ideal scaling
            print(f"   {method:10s} floor fwd {ms:7.2f} ms ({ms / avg_ms:5.2f}x)   fwd+bwd {2 * ms:7.2f} ms"
                  f" ({2 * ms / avg_fb_ms:5.2f}x)")
        sys.stdout.flush()
