"""Cost of data_format="channels_last" at the array level (one input copy into channels-first).

Prints the median time of adapool2d forward and backward on a channels-first
array and on the same data channels-last, and their ratio.
Run: python benchmarks/channels_last.py
"""
import time

import numpy as np

import adapool_core as ap


def median_ms(fn, repeats=7):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * sorted(times)[len(times) // 2]


def main(shape=(16, 64, 56, 56)):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x_cl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    g = np.ones(ap.adapool2d(x, 0.5).shape, np.float32)
    g_cl = np.ascontiguousarray(np.moveaxis(g, 1, -1))
    cases = {
        "forward": (lambda: ap.adapool2d(x, 0.5),
                    lambda: ap.adapool2d(x_cl, 0.5, data_format="channels_last")),
        "backward": (lambda: ap.adapool2d_backward(g, x, 0.5),
                     lambda: ap.adapool2d_backward(g_cl, x_cl, 0.5, data_format="channels_last")),
    }
    print(f"adapool2d float32 {shape}, kernel 2")
    print(f"{'pass':<9} {'channels_first ms':>18} {'channels_last ms':>17} {'ratio':>6}")
    for name, (first, last) in cases.items():
        a, b = median_ms(first), median_ms(last)
        print(f"{name:<9} {a:>18.2f} {b:>17.2f} {b / a:>6.2f}")


if __name__ == "__main__":
    main()
