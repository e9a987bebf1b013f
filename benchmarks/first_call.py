"""Time to the first result: one public function's first call in a fresh process.

    rm -rf /tmp/cold; NUMBA_CACHE_DIR=/tmp/cold python3 benchmarks/first_call.py float32 forward adapool  # cold
    NUMBA_CACHE_DIR=/tmp/cold python3 benchmarks/first_call.py float32 forward adapool                    # warm

Methods: adapool, edscwpool, empool, idwpool, adaunpool, and global (``adaptive_adapool2d(x, 0.5, 1)``:
the flat kernels); directions: forward, backward
(the backward as the process's first call, no forward before it).  An optional fourth argument
K,S,P sets the pooling methods' kernel, stride and padding (default 2,2,0; 5,1,2 takes the plane
backward that shares eM's exps).
"""
import sys
import time

t0 = time.perf_counter()
import numpy as np  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core._geometry import pool_geometry  # noqa: E402

dtype, direction, method = sys.argv[1:4]
k, s, p = (int(v) for v in (sys.argv[4] if len(sys.argv) > 4 else "2,2,0").split(","))
x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(dtype)
args = (0.5,) if method == "adapool" else ()
t1 = time.perf_counter()
if method == "global":
    if direction == "forward":
        ap.adaptive_adapool2d(x, 0.5, 1)
    else:
        ap.adaptive_adapool2d_backward(np.ones((2, 3, 1, 1), dtype), x, 0.5, 1)
elif method == "adaunpool":
    ap.adaunpool2d(x[..., :8, :8], np.full((2, 3, 8, 8, 2, 2), 0.25, dtype), 2)
elif direction == "forward":
    getattr(ap, method + "2d")(x, *args, k, s, p)
else:
    out_shape = pool_geometry(x.shape, 2, k, s, p, False, "first_call").out_shape
    getattr(ap, method + "2d_backward")(np.ones(out_shape, dtype), x, *args, k, s, p)
print(f"import {t1 - t0:.2f} s, first call {time.perf_counter() - t1:.2f} s")
