"""What the framework adapters add to the array-level call (CPU).

    PYTHONPATH=. python3 scripts/adapter_overhead.py [--shape 8 64 32 32] [--repeat 30]

Times adapool2d (kernel 2, beta per output location) forward, and forward +
backward, on one input through NumPy, PyTorch (eager: the custom op,
autograd) and JAX (jit: pure_callback), median and minimum of --repeat
interleaved runs after a warm-up (the minimum is the least disturbed by
other load on the machine).  The adapters convert only, so the differences are their
overhead (DLPack, dispatch, JAX's copy of the results).
"""
import argparse
import statistics
import time

import numpy as np


def median_ms(fns, repeat):
    """Median time of each function, the functions interleaved so that machine load hits all alike."""
    for fn in fns:
        fn()  # warm-up: Numba compile, jit trace
    times = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return [(1e3 * statistics.median(t), 1e3 * min(t)) for t in times]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", type=int, nargs=4, default=(8, 64, 32, 32))
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    import jax
    import jax.numpy as jnp
    import torch

    import adapool_core as ap
    import adapool_core.jax as apj
    import adapool_core.torch as apt

    x = np.random.default_rng(0).standard_normal(args.shape).astype(np.float32)
    beta = np.full((args.shape[2] // 2, args.shape[3] // 2), 0.5, np.float32)

    def numpy_forward():
        return ap.adapool2d(x, beta, 2)

    def numpy_both():
        y = ap.adapool2d(x, beta, 2)
        return ap.adapool2d_backward(np.ones_like(y), x, beta, 2)

    xt = torch.from_numpy(x).requires_grad_()
    bt = torch.from_numpy(beta).requires_grad_()

    def torch_forward():
        with torch.no_grad():
            return apt.adapool2d(xt, bt, 2)

    def torch_both():
        apt.adapool2d(xt, bt, 2).sum().backward()

    xj, bj = jnp.asarray(x), jnp.asarray(beta)
    jax_forward_fn = jax.jit(lambda x, b: apj.adapool2d(x, b, 2))
    jax_both_fn = jax.jit(jax.grad(lambda x, b: apj.adapool2d(x, b, 2).sum(), argnums=(0, 1)))

    def jax_forward():
        return jax_forward_fn(xj, bj).block_until_ready()

    def jax_both():
        return jax.block_until_ready(jax_both_fn(xj, bj))

    print(f"adapool2d, x {tuple(args.shape)} float32, kernel 2, median and min of {args.repeat} (ms)")
    print(f"{'':8} {'forward median':>15} {'min':>8} {'fwd+bwd median':>15} {'min':>8}")
    names = ("numpy", "torch", "jax")
    forward = median_ms((numpy_forward, torch_forward, jax_forward), args.repeat)
    both = median_ms((numpy_both, torch_both, jax_both), args.repeat)
    for name, f, b in zip(names, forward, both):
        print(f"{name:8} {f[0]:15.3f} {f[1]:8.3f} {b[0]:15.3f} {b[1]:8.3f}")


if __name__ == "__main__":
    main()
