"""Ahead-of-time compilation of every CPU kernel into Numba's disk cache
(``adapool compile``).

Numba compiles a kernel on its first call for each dtype and method (the
method is a compile-time literal, so each compilation holds one method's
code only).  ``compile_all`` makes those first calls on tiny inputs, one
per kernel the backend can choose, so that an image, a CI job or the test
suite pays the compilation once and every later process loads from the
cache.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator, Optional

import numpy as np

from .._methods import IDW, METHOD_CODES
from .rows import ROW_KERNELS

# The dtypes the kernels take (half types compute in float32).
DTYPES = ("float32", "float64")
# A geometry (kernel, stride, padding) along both axes that no row kernel takes: the general kernels.
_GENERAL = (3, 3, 1)


def _geometries(dtype: str, method: str) -> list[tuple[int, int, int]]:
    """One (kernel, stride, padding) per kernel the backend chooses for this dtype and method."""
    if dtype != "float32" or METHOD_CODES[method] == IDW:
        return [_GENERAL]
    return [(k, s, 1) for k, s in ROW_KERNELS] + [_GENERAL]


def kernel_calls() -> Iterator[tuple[str, Callable[[], object]]]:
    """(label, call) for every kernel: each call compiles (or loads) one kernel."""
    import adapool_core as ap

    for dtype in DTYPES:
        x = np.linspace(-2, 2, 2 * 3 * 9 * 10, dtype=dtype).reshape(2, 3, 9, 10)
        for method in METHOD_CODES:
            forward = getattr(ap, f"{method}2d")
            backward = getattr(ap, f"{method}2d_backward")
            beta = (0.5,) if method == "adapool" else ()
            for k, s, p in _geometries(dtype, method):
                where = "general kernels" if (k, s, p) == _GENERAL else f"row kernels k{k} s{s}"
                yield (f"{dtype} {method} forward, {where}",
                       lambda f=forward, b=beta, k=k, s=s, p=p, x=x: f(x, *b, k, s, p))
                yield (f"{dtype} {method} backward, {where}",
                       lambda f=forward, g=backward, b=beta, k=k, s=s, p=p, x=x:
                       g(np.ones_like(f(x, *b, k, s, p)), x, *b, k, s, p))
        y, w = ap.adapool2d(x, 0.5, 3, 2, 1, return_mask=True)
        yield f"{dtype} adaunpool forward", lambda y=y, w=w: ap.adaunpool2d(y, w, 3, 2, 1)
        yield (f"{dtype} adaunpool backward",
               lambda y=y, w=w, x=x: ap.adaunpool2d_backward(np.ones_like(x), y, w, 3, 2, 1))


def compile_all(log: Optional[Callable[[str], None]] = print) -> float:
    """Compile (or load from the cache) every CPU kernel; returns the seconds taken.

    Parameters
    ----------
    log : callable or None
        Receives one progress line per kernel (``[i/n] label  seconds``);
        None for silence.

    Returns
    -------
    float
        Wall-clock seconds for all kernels.
    """
    calls = list(kernel_calls())
    start = time.perf_counter()
    for i, (label, call) in enumerate(calls, 1):
        t0 = time.perf_counter()
        call()
        if log is not None:
            log(f"[{i:2d}/{len(calls)}] {label:<52} {time.perf_counter() - t0:6.1f} s")
    total = time.perf_counter() - start
    if log is not None:
        log(f"compiled or loaded {len(calls)} kernels in {total:.1f} s")
    return total
