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

from .._geometry import pool_geometry
from .._methods import METHOD_CODES
from .launch import chunk_kernels
from .planes import PLANE_KERNELS, PLANE_SHARED_KERNELS
from .rows import ROW_KERNELS
from .vector import VECTOR_KERNELS
from .vector_idw import VECTOR_IDW_KERNELS

# The dtypes the kernels take (half types compute in float32).
DTYPES = ("float32", "float64")
_SHAPE = (2, 3, 9, 10)
_LONG = (4, 8200)


def _geometries(dtype: str, method: str) -> dict[str, tuple[int, int, int, tuple[int, int]]]:
    """{kernel family: (kernel, stride, padding, spatial size)}: one geometry per kernel the
    backend chooses for this dtype and method (``launch.chunk_kernels``)."""
    found = {}
    # Planes larger than the plane kernels take (``launch._PLANE_MAX_CELLS``) for the row and
    # vector kernels; k3 s1 and k3 s2 (overlapping) on a small one for the plane kernels, with
    # and without eM's shared exps in the backward (``planes.backward_shares_em_exps``).
    for k, s, size in [*((k, s, _LONG) for k, s in ROW_KERNELS), (3, 3, _LONG), (3, 1, _SHAPE[2:]),
                       (3, 2, _SHAPE[2:])]:
        geom = pool_geometry(_SHAPE[:2] + size, 2, k, s, 1, False, "compile")
        kernels = chunk_kernels(np.empty(0, dtype), geom, METHOD_CODES[method])
        where = ("general kernels" if kernels is None
                 else "vector kernels" if kernels in (VECTOR_KERNELS, VECTOR_IDW_KERNELS)
                 else "plane kernels" if kernels is PLANE_KERNELS
                 else "plane kernels, shared exps" if kernels is PLANE_SHARED_KERNELS else f"row kernels k{k} s{s}")
        found.setdefault(where, (k, s, 1, size))
    return found


def _backward_with_grad_w(forward, backward, beta, x):
    y, w = forward(x, *beta, 3, 2, 1, return_mask=True)
    return backward(np.ones_like(y), x, *beta, 3, 2, 1, grad_w=np.ones_like(w))


def kernel_calls() -> Iterator[tuple[str, Callable[[], object]]]:
    """(label, call) for every kernel: each call compiles (or loads) one kernel."""
    import adapool_core as ap

    for dtype in DTYPES:
        x = np.linspace(-2, 2, int(np.prod(_SHAPE)), dtype=dtype).reshape(_SHAPE)
        for method in METHOD_CODES:
            forward = getattr(ap, f"{method}2d")
            backward = getattr(ap, f"{method}2d_backward")
            beta = (0.5,) if method == "adapool" else ()
            for where, (k, s, p, size) in _geometries(dtype, method).items():
                xs = np.resize(x, _SHAPE[:2] + size)
                yield (f"{dtype} {method} forward, {where}",
                       lambda f=forward, b=beta, k=k, s=s, p=p, x=xs: f(x, *b, k, s, p))
                yield (f"{dtype} {method} backward, {where}",
                       lambda f=forward, g=backward, b=beta, k=k, s=s, p=p, x=xs:
                       g(np.ones_like(f(x, *b, k, s, p)), x, *b, k, s, p))
            # The weights' cotangent (grad_w) takes the general kernels whatever the geometry.
            yield (f"{dtype} {method} backward with grad_w, general kernels",
                   lambda f=forward, g=backward, b=beta, x=x:
                   _backward_with_grad_w(f, g, b, x))
            # Adaptive dims (stride 0): the last one adaptive takes the general kernels; global
            # pooling (size 1, or one window the size of the input) the flat kernels.
            adaptive = getattr(ap, f"adaptive_{method}2d")
            adaptive_backward = getattr(ap, f"adaptive_{method}2d_backward")
            for size, where in (((4, 3), "general kernels"), (1, "flat kernels")):
                yield (f"{dtype} {method} adaptive {size} forward and backward, {where}",
                       lambda f=adaptive, g=adaptive_backward, b=beta, x=x, o=size:
                       g(np.ones_like(f(x, *b, o)), x, *b, o))
        y, w = ap.adapool2d(x, 0.5, 3, 2, 1, return_mask=True)
        yield f"{dtype} adaunpool forward", lambda y=y, w=w: ap.adaunpool2d(y, w, 3, 2, 1)
        yield (f"{dtype} adaunpool backward",
               lambda y=y, w=w, x=x: ap.adaunpool2d_backward(np.ones_like(x), y, w, 3, 2, 1))
        yield (f"{dtype} adaunpool backward with grad_w",
               lambda y=y, w=w, x=x: ap.adaunpool2d_backward(np.ones_like(x), y, w, 3, 2, 1, return_grad_w=True))


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
