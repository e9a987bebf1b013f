"""The plane kernels' transpose of 16 planes of 25,088 cells (the 3-D row's), 1 thread, mean of
200: the plain transpose (``planes.to_lanes``), with the per-cell finiteness sums it used to
keep, and with a separate vectorised check after it.

    python3 benchmarks/to_lanes_cost.py CHECKOUT_ROOT
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from adapool_core._cpu.fastexp import JIT  # noqa: E402
from adapool_core._cpu.planes import B, to_lanes  # noqa: E402


@njit(**JIT)
def plain(xf, P, lane_nc, xt, fin):
    to_lanes(xf, P, lane_nc, xt)
    return True


@njit(**JIT)
def with_sums(xf, P, lane_nc, xt, fin):
    T = xf.dtype.type
    for l in range(B):
        fin[l] = T(0)
    for p in range(P):
        for l in range(B):
            v = xf[lane_nc[l] * P + p]
            xt[p * B + l] = v
            fin[l] += v * T(0)  # NaN from any NaN or inf (the check before add_window_finiteness)
    ok = True
    for l in range(B):
        ok = ok and fin[l] == 0
    return ok


@njit(**JIT)
def then_check(xf, P, lane_nc, xt, fin):
    to_lanes(xf, P, lane_nc, xt)
    T = xf.dtype.type
    for l in range(B):
        fin[l] = T(0)
    for p in range(P):
        for l in range(B):
            fin[l] += xt[p * B + l] * T(0)
    ok = True
    for l in range(B):
        ok = ok and fin[l] == 0
    return ok


P = 25088
for dtype in ("float32", "float64"):
    xf = np.random.default_rng(0).standard_normal(P * B).astype(dtype)
    xt, fin, lanes = np.empty_like(xf), np.empty(B, dtype), np.arange(B)
    for name, f in (("plain transpose", plain), ("with per-cell sums", with_sums), ("then a vectorised check", then_check)):
        f(xf, P, lanes, xt, fin)
        t = time.perf_counter()
        for _ in range(200):
            f(xf, P, lanes, xt, fin)
        print(f"{dtype} {name}: {(time.perf_counter() - t) / 200 * 1e6:.1f} us")
