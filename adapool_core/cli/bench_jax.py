"""``adapool bench --jax``: the two JAX paths (``implementation="callback"`` vs ``"xla"``).

:func:`bench_jax` times jitted forward and forward+backward of ``adapool2d``
on a few shapes and returns one row per (shape, pass); ``adapool bench
--jax`` prints them (``--quick``: one small shape).  Median of ``repeats``
runs after a warm-up (compilation); on JAX's default device (the CPU here).
"""
from __future__ import annotations

import time
from typing import Dict, List, Sequence, Tuple

SHAPES: Tuple[Tuple[int, ...], ...] = ((8, 32, 32, 32), (16, 64, 56, 56))
QUICK_SHAPES: Tuple[Tuple[int, ...], ...] = ((2, 4, 16, 16),)


def _median_seconds(fn, repeats: int) -> float:
    fn()  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def bench_jax(shapes: Sequence[Tuple[int, ...]] = SHAPES, repeats: int = 5) -> List[Dict]:
    """Rows ``{shape, pass, callback_ms, xla_ms, xla_over_callback}`` for adapool2d, kernel 2, float32."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .. import jax as apj

    rows = []
    for shape in shapes:
        x = jnp.asarray(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
        row_f, row_b = {"shape": tuple(shape), "pass": "forward"}, {"shape": tuple(shape), "pass": "fwd+bwd"}
        for impl in ("callback", "xla"):
            fwd = jax.jit(lambda x, impl=impl: apj.adapool2d(x, 0.5, 2, implementation=impl))
            both = jax.jit(jax.grad(lambda x, impl=impl: jnp.sum(apj.adapool2d(x, 0.5, 2, implementation=impl))))
            row_f[f"{impl}_ms"] = 1e3 * _median_seconds(lambda: fwd(x).block_until_ready(), repeats)
            row_b[f"{impl}_ms"] = 1e3 * _median_seconds(lambda: both(x).block_until_ready(), repeats)
        for row in (row_f, row_b):
            row["xla_over_callback"] = row["xla_ms"] / row["callback_ms"]
            rows.append(row)
    return rows


def print_table(rows: List[Dict]) -> None:
    print(f"{'shape':<20} {'pass':<8} {'callback ms':>12} {'xla ms':>10} {'xla/callback':>13}")
    for r in rows:
        print(f"{str(r['shape']):<20} {r['pass']:<8} {r['callback_ms']:>12.2f} {r['xla_ms']:>10.2f} "
              f"{r['xla_over_callback']:>13.2f}")


if __name__ == "__main__":
    print_table(bench_jax())
