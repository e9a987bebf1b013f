"""Gathers and scatters (``vgather*`` / ``vscatter*``) in the compiled CPU kernels' assembly:
where LLVM vectorised a lane loop with per-lane addresses instead of contiguous loads and
stores (``scratch.at``; docs/benchmarks.md, "Designs tried").

    rm -rf /tmp/gc; NUMBA_CACHE_DIR=/tmp/gc python3 benchmarks/gather_count.py CHECKOUT_ROOT

Needs a fresh Numba cache (code loaded from the cache has no assembly to show).  Runs every
method forward and backward, float32, on inputs that take the plane, row, vector and flat kernels.
"""
import re
import sys
from collections import Counter

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core._cpu import flat, planes, planes_idw, rows, vector, vector_idw  # noqa: E402

CASES = (((2, 4, 64, 200), 2, 2, 0), ((2, 4, 190, 190), 3, 1, 1), ((2, 4, 190, 190), 3, 2, 0),
         ((4, 8, 14, 14), 14, 14, 0), ((16, 8, 20, 20), 5, 1, 2), ((16, 8, 20, 20), 3, 2, 0))
for shape, k, s, p in CASES:
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    for m in ("adapool", "edscwpool", "empool", "idwpool"):
        beta = (0.5,) if m == "adapool" else ()
        y = getattr(ap, m + "2d")(x, *beta, k, s, p)
        getattr(ap, m + "2d_backward")(np.ones_like(y), x, *beta, k, s, p)
for mod in (planes, planes_idw, rows, vector, vector_idw, flat):
    for name in sorted(dir(mod)):
        dispatcher = getattr(mod, name)
        if not hasattr(dispatcher, "overloads") or getattr(dispatcher, "__module__", "") != mod.__name__:
            continue
        for sig, cres in dispatcher.overloads.items():
            asm = cres.library.get_asm_str()
            parts = re.split(r"^([A-Za-z_]\S*):\n", asm, flags=re.M)
            for fname, body in zip(parts[1::2], parts[2::2]):
                if "cpython" in fname or "cfunc" in fname:
                    continue
                counts = Counter(re.findall(r"\b(vgather\w+|vscatter\w+)", body))
                if counts:
                    literals = [str(a) for a in sig if "Literal" in str(a)]
                    print(mod.__name__.split(".")[-1], name, literals, fname[:60], dict(counts))
