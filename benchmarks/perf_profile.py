"""Where a plane kernel spends its time, by instruction: a perf map of the compiled
functions and their machine code, for ``perf record`` (Linux, one thread).

    rm -rf /tmp/pc; NUMBA_CACHE_DIR=/tmp/pc python3 benchmarks/perf_profile.py CHECKOUT adapool float64 bwd 14 &
    # once it prints "pid PID": perf record -F 4000 -p PID -o perf.data -- sleep 8
    perf script -i perf.data -F ip > ips.txt
    python3 benchmarks/perf_profile.py --annotate /tmp/perf-PID.map ips.txt   # share per function, then
                                                                              # per instruction: annotated.txt

Needs a fresh Numba cache (code loaded from a cache has no LLVM module to name its
functions).  The input is the matrix's (8, 64, 56, 56) k3 s1 p1 row; METHOD is adapool,
edscwpool, empool or idwpool, DIRECTION fwd or bwd; SECONDS of calls after the first.
"""
import collections
import ctypes
import os
import re
import subprocess
import sys
import time


def run(root, method, dtype, direction, seconds):
    sys.path.insert(0, root)
    import numba
    import numpy as np
    numba.set_num_threads(1)
    import adapool_core as ap
    from adapool_core._cpu import planes, planes_idw
    x = np.random.default_rng(0).standard_normal((8, 64, 56, 56)).astype(dtype)
    beta = (0.5,) if method == "adapool" else ()
    forward, backward = getattr(ap, method + "2d"), getattr(ap, method + "2d_backward")
    g = np.ones_like(forward(x, *beta, 3, 1, 1))
    call = (lambda: backward(g, x, *beta, 3, 1, 1)) if direction == "bwd" else (lambda: forward(x, *beta, 3, 1, 1))
    call()
    entries = []
    for mod in (planes, planes_idw):
        for name in dir(mod):
            dispatcher = getattr(mod, name)
            for cres in getattr(dispatcher, "overloads", {}).values():
                module = getattr(cres.library, "_final_module", None)
                for fn in [] if module is None else module.functions:
                    if not fn.is_declaration:
                        addr = cres.library.get_pointer_to_function(fn.name)
                        if addr:
                            entries.append((addr, f"{name}:{fn.name[-60:]}"))
    entries.sort()
    with open(f"/tmp/perf-{os.getpid()}.map", "w") as fh:
        for i, (addr, name) in enumerate(entries):
            size = min(entries[i + 1][0] - addr if i + 1 < len(entries) else 1 << 16, 1 << 20)
            fh.write(f"{addr:x} {size:x} {name}\n")
            with open(f"/tmp/perf-code-{addr:x}.bin", "wb") as code:
                code.write(ctypes.string_at(addr, size))
    print("pid", os.getpid(), "functions", len(entries), flush=True)
    t0, n = time.time(), 0
    while time.time() - t0 < seconds:
        call()
        n += 1
    print(f"{n} calls, {(time.time() - t0) / n * 1e3:.1f} ms a call")


def annotate(map_path, ips_path):
    funcs = []
    for line in open(map_path):
        addr, size, name = line.split(" ", 2)
        funcs.append((int(addr, 16), int(size, 16), name.strip()))
    ips = collections.Counter()
    for line in open(ips_path):
        try:
            ips[int(line.split()[0], 16)] += 1
        except (ValueError, IndexError):
            pass
    total = sum(ips.values())
    per_func = collections.Counter()
    for ip, count in ips.items():
        hit = next(((a, n) for a, s, n in funcs if a <= ip < a + s), (0, "other"))
        per_func[hit] += count
    for (_, name), count in per_func.most_common(8):
        print(f"{count / total:6.1%} {name}")
    (addr, _), _ = per_func.most_common(1)[0]
    dis = subprocess.run(["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f"--adjust-vma={addr:#x}",
                          f"/tmp/perf-code-{addr:x}.bin"], capture_output=True, text=True).stdout
    with open("annotated.txt", "w") as out:
        for line in dis.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(.*)", line)
            if m:
                ip = int(m.group(1), 16)
                out.write(f"{ips.get(ip, 0) / total * 100:6.2f} {ip:x} {m.group(2)}\n")


if __name__ == "__main__":
    if sys.argv[1] == "--annotate":
        annotate(sys.argv[2], sys.argv[3])
    else:
        run(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 8)
