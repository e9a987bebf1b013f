"""A fixed workload over every public function, for the determinism and
concurrency tests (imported in-process and run in subprocesses with other
Numba thread counts or threading layers: ``python tests/workload.py``)."""
import hashlib
import os
import sys

import numpy as np

# This checkout's package, also in subprocesses started on this file or on a test.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import adapool_core as ap  # noqa: E402
from support import METHODS  # noqa: E402  (tests/ is on sys.path: conftest, or this script's folder)
# Overlapping windows (stride < kernel), padding and ceil_mode: the backward's
# phase classes and the unpooling's gathers all take part.
SHAPES = {1: (2, 3, 301), 2: (2, 3, 29, 23), 3: (1, 2, 9, 8, 7)}
GEOMETRIES = [dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)]


def case_list():
    """(method, d, dtype, geometry) of every case."""
    return [(method, d, dtype, geom) for method in METHODS for d in (1, 2, 3)
            for dtype in (np.float32, np.float64) for geom in GEOMETRIES]


def run_case(method, d, dtype, geom, seed):
    """Every output of every function for one case, as a list of arrays."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(SHAPES[d]).astype(dtype)
    pool = getattr(ap, f"{method}{d}d")
    backward = getattr(ap, f"{method}{d}d_backward")
    lead = (x,)
    if method == "adapool":
        y0 = getattr(ap, f"empool{d}d")(x, **geom)
        lead = (x, rng.uniform(0, 1, y0.shape[2:]).astype(dtype))
    y, w = pool(*lead, return_mask=True, **geom)
    g = rng.standard_normal(y.shape).astype(dtype)
    out = [y, w]
    for mode in ("exact", "paper"):
        grads = backward(g, *lead, mode=mode, **geom)
        out.extend(grads if isinstance(grads, tuple) else (grads,))
    unpool_geom = {key: v for key, v in geom.items() if key != "ceil_mode"}
    for normalize in ("sum", "window"):
        x_hat = getattr(ap, f"adaunpool{d}d")(y, w, output_size=x.shape[2:], normalize=normalize, **unpool_geom)
        out.append(x_hat)
        out.append(getattr(ap, f"adaunpool{d}d_backward")(x_hat, y, w, normalize=normalize, **unpool_geom))
    return out


def rss_mib():
    """Resident memory of this process in MiB (Linux: /proc/self/status)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def all_digests(seed=0):
    return [digest(run_case(*case, seed=seed + i)) for i, case in enumerate(case_list())]


if __name__ == "__main__":
    import numba

    digests = all_digests()
    print(numba.get_num_threads(), numba.threading_layer())
    print("\n".join(digests))
