"""One method's 3-D forward under the default allocator or under ``adapool bench``'s pinned mmap
threshold (``--pin``): median and min of 60 calls, 2 threads.

    python3 benchmarks/allocator_pin.py CHECKOUT_ROOT METHOD [--pin]

The pin (``cli.bench._pin_malloc_mmap_threshold``) makes every block of 128 KiB or more a
fresh mapping whose pages fault in on each call: the reason the bench now times under the
default allocator and measures memory in a second pass (docs/benchmarks.md).
"""
import sys
import time

sys.path.insert(0, sys.argv[1])
import numba  # noqa: E402
import numpy as np  # noqa: E402

import adapool_core as ap  # noqa: E402
from adapool_core.cli.bench import _pin_malloc_mmap_threshold  # noqa: E402

method, pin = sys.argv[2], "--pin" in sys.argv[3:]
if pin:
    assert _pin_malloc_mmap_threshold()
numba.set_num_threads(2)
x = np.random.default_rng(0).standard_normal((4, 32, 8, 56, 56)).astype("float32")
fn = getattr(ap, method + "3d")
args = (0.5,) if method == "adapool" else ()
fn(x, *args, 2, 2)
times = []
for _ in range(60):
    t = time.perf_counter()
    fn(x, *args, 2, 2)
    times.append((time.perf_counter() - t) * 1e3)
print(f"{method}3d {'pinned' if pin else 'default'}: median {np.median(times):.2f} ms, min {min(times):.2f} ms")
