"""A 16-lane sum and max over 25,088 cells of the plane layout with its accumulators in a heap
array (argument) or on the stack (``scratch.stack_empty``): cycles per 16-lane step at an
assumed 3 GHz, 1 thread, mean of 100.

    python3 benchmarks/stack_accumulators.py CHECKOUT_ROOT
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

from adapool_core._cpu.fastexp import JIT  # noqa: E402
from adapool_core._cpu.scratch import stack_empty  # noqa: E402

B = 16
ACC = 2 * B


@njit(inline="always", **JIT)
def sum_max(xt, acc):
    for l in range(B):
        acc[l] = 0
        acc[B + l] = -np.inf
    for p in range(len(xt) // B):
        for l in range(B):
            v = xt[p * B + l]
            acc[l] += v
            acc[B + l] = max(acc[B + l], v)


@njit(**JIT)
def on_heap(xt, out):
    sum_max(xt, out)


@njit(**JIT)
def on_stack(xt, out):
    acc = stack_empty(ACC, xt.dtype)
    sum_max(xt, acc)
    for l in range(ACC):
        out[l] = acc[l]


x = np.random.default_rng(0).standard_normal(25088 * B).astype(np.float32)
for name, f in (("heap", on_heap), ("stack", on_stack)):
    out = np.zeros(ACC, np.float32)
    f(x, out)
    t = time.perf_counter()
    for _ in range(100):
        f(x, out)
    seconds = (time.perf_counter() - t) / 100
    print(f"accumulators on the {name}: {seconds * 1e6:.1f} us, {seconds * 3e9 / (len(x) // B):.0f} cycles per step")
