"""Floating-point instructions in the plane block kernels' assembly, by kind and register width
(xmm scalar ``...ss``/``...sd`` against ymm/zmm packed): whether LLVM vectorised their loops.

    rm -rf /tmp/asm_cache; NUMBA_CACHE_DIR=/tmp/asm_cache python3 benchmarks/asm_ops.py CHECKOUT_ROOT

Needs a fresh Numba cache: code loaded from the cache has no assembly to show.  Compiles
adaPool float32 forward and backward on (16, 8, 20, 20) k5 s1 p2 (the plane kernels; the backward
there is ``plane_shared_backward_chunk``'s, eM's exps shared).
"""
import re
import sys
from collections import Counter

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core._cpu import planes  # noqa: E402

x = np.random.default_rng(0).standard_normal((16, 8, 20, 20)).astype("float32")
y = ap.adapool2d(x, 0.5, 5, 1, 2)
ap.adapool2d_backward(np.ones_like(y), x, 0.5, 5, 1, 2)
KINDS = ("vdiv", "vfmadd", "vmul", "vadd", "vmax", "vcmp", "vsub")
for chunk in (planes.plane_forward_chunk, planes.plane_backward_chunk, planes.plane_shared_backward_chunk):
    for cres in chunk.overloads.values():
        asm = cres.library.get_asm_str()
        parts = re.split(r"^([A-Za-z_]\S*):\n", asm, flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            if "_block" not in name:
                continue
            ops = Counter()
            for op, operands in re.findall(r"^\s+(v\w+)\s+([^\n]*)", body, re.M):
                if op.startswith(KINDS):
                    width = "zmm" if "zmm" in operands else "ymm" if "ymm" in operands else "xmm"
                    ops[(op, width)] += 1
            label = re.search(r"planes\d+(\w+?)B\d", name)
            print(label.group(1) if label else name[:60])
            print("  " + ", ".join(f"{op} {w} {n}" for (op, w), n in ops.most_common(14)))
