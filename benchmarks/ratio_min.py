"""Same-run ratios to torch avg_pool{d}d (min of N, interleaved), for chosen matrix rows.

    python3 benchmarks/ratio_min.py CHECKOUT_ROOT [--methods adapool,edscwpool,empool,idwpool] [--rows k3s1,k5s1,...] [--dtype float32|float64|both]

Rows (issue 11 matrix): k2s2 (32,64,112,112), k3s2 (8,64,56,56), k3s1 (8,64,56,56) p1,
k5s1 (8,256,20,20) p2, big (1,3,1024,1024) k2s2, 3d (4,32,8,56,56) k2s2, 1d (32,256,512) k2s2.
Prints fwd and fwd+bwd ms and ratio to avg_pool for each method.  2 threads.
"""
import argparse, sys
import numpy as np
ap_ = argparse.ArgumentParser()
ap_.add_argument("root"); ap_.add_argument("--methods", default="adapool,edscwpool,empool,idwpool")
ap_.add_argument("--rows", default="k2s2,k3s2,k3s1,k5s1,big,3d,1d"); ap_.add_argument("--dtype", default="float32")
ap_.add_argument("--repeats", type=int, default=5)
a = ap_.parse_args()
sys.path.insert(0, a.root)
import torch, numba
import adapool_core as ap
torch.set_num_threads(2); numba.set_num_threads(2)
from _timing import MATRIX_ROWS as ROWS, min_seconds
def tmin(f, n):
    return min_seconds(f, n) * 1e3
dtypes = ["float32", "float64"] if a.dtype == "both" else [a.dtype]
for row in a.rows.split(","):
    shape, k, s, p = ROWS[row]
    d = len(shape) - 2
    for dt in dtypes:
        x = np.random.default_rng(0).standard_normal(shape).astype(dt)
        xt = torch.from_numpy(x.copy()).requires_grad_(True)
        avg = getattr(torch.nn.functional, f"avg_pool{d}d")
        yt = avg(xt, k, s, p); gt = torch.ones_like(yt)
        def tf(): avg(xt, k, s, p)
        def tb(): avg(xt, k, s, p).backward(gt)
        tf(); tb()
        res = {}
        for m in a.methods.split(","):
            f = getattr(ap, f"{m}{d}d"); b = getattr(ap, f"{m}{d}d_backward")
            beta = (0.5,) if m == "adapool" else ()
            y = f(x, *beta, k, s, p); g = np.ones_like(y); b(g, x, *beta, k, s, p)
            res[m] = (lambda f=f, beta=beta: f(x, *beta, k, s, p), lambda f=f, b=b, beta=beta: (f(x, *beta, k, s, p), b(g, x, *beta, k, s, p)))
        # interleave: avg, methods, avg again; take min over both avg measurements
        af = tmin(tf, a.repeats); ab = tmin(tb, a.repeats)
        out = {m: (tmin(fn[0], a.repeats), tmin(fn[1], a.repeats)) for m, fn in res.items()}
        af = min(af, tmin(tf, a.repeats)); ab = min(ab, tmin(tb, a.repeats))
        print(f"{row} {shape} k{k} s{s} p{p} {dt}: avg fwd {af:.2f} ms, fwd+bwd {ab:.2f} ms")
        for m, (f_, b_) in out.items():
            print(f"   {m:10s} fwd {f_:8.2f} ms ({f_/af:5.2f}x)   fwd+bwd {b_:8.2f} ms ({b_/ab:5.2f}x)")
        sys.stdout.flush()
