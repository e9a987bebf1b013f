import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, numba, torch
torch.set_num_threads(2); numba.set_num_threads(2)
import adapool_core as ap
from _timing import min_seconds
x = np.random.default_rng(0).standard_normal((32, 256, 14, 14)).astype(sys.argv[2] if len(sys.argv) > 2 else "float32")
xt = torch.from_numpy(x.copy()).requires_grad_(True)
def tmin(f, n=7):
    return min_seconds(f, n) * 1e3
yt = torch.nn.functional.adaptive_avg_pool2d(xt, 1); gt = torch.ones_like(yt)
af = tmin(lambda: torch.nn.functional.adaptive_avg_pool2d(xt, 1)); ab = tmin(lambda: torch.nn.functional.adaptive_avg_pool2d(xt, 1).backward(gt))
print(f"avg fwd {af:.2f} fwd+bwd {ab:.2f}")
for m in ("adapool", "edscwpool", "empool", "idwpool"):
    f = getattr(ap, f"adaptive_{m}2d"); b = getattr(ap, f"adaptive_{m}2d_backward")
    beta = (0.5,) if m == "adapool" else ()
    y = f(x, *beta, 1); g = np.ones_like(y); b(g, x, *beta, 1)
    tf = tmin(lambda: f(x, *beta, 1)); tb = tmin(lambda: (f(x, *beta, 1), b(g, x, *beta, 1)))
    print(f"{m:10s} fwd {tf:7.2f} ({tf/af:5.1f}x) fwd+bwd {tb:7.2f} ({tb/ab:5.1f}x)", flush=True)
