"""GPU benchmark of adapool2d on CuPy arrays (run by scripts/gpu_check.sh).

For float32 and float16 and the shapes (32, 64, 112, 112) k2 s2 and
(8, 64, 56, 56) k3 s2: forward and forward+backward time of ``adapool2d``;
the device-to-device copy bandwidth measured in the same run and the fraction
of the memory floor each time reaches; where PyTorch with CUDA is present,
``torch.nn.functional.avg_pool2d`` and a straightforward PyTorch composite
adaPool (unfold, softmax, sums) in the same run.

Memory floor = the bytes a call must move at least, divided by the measured
copy bandwidth.  Forward: read x, write y.  Forward+backward (two calls):
forward's, plus read x and grad_y, write grad_x.  beta (one value per output
location) is counted too; it is small.

Times are medians over ``--repeat`` runs, measured with CUDA events on the
current stream after warm-up (the first call compiles the kernels).
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import adapool_core as ap  # noqa: E402

CASES = (((32, 64, 112, 112), 2, 2), ((8, 64, 56, 56), 3, 2))
DTYPES = ("float32", "float16")


def median_ms(make_event, fn, repeat, warmup=3):
    """Median milliseconds of fn() between two CUDA events made by ``make_event()``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, end = make_event(), make_event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def cupy_events(cupy):
    class Event:
        def __init__(self):
            self.event = cupy.cuda.Event()

        def record(self):
            self.event.record()

        def synchronize(self):
            self.event.synchronize()

        def elapsed_time(self, end):
            return cupy.cuda.get_elapsed_time(self.event, end.event)

    return Event


def copy_bandwidth(cupy, repeat):
    """Device-to-device copy bandwidth in bytes/s (bytes read + bytes written)."""
    nbytes = 2**30
    src = cupy.empty(nbytes, dtype=cupy.uint8)
    dst = cupy.empty_like(src)
    ms = median_ms(cupy_events(cupy), lambda: dst.data.copy_from_device_async(src.data, nbytes), repeat)
    return 2 * nbytes / (ms * 1e-3)


def torch_composite_adapool2d(F, x, beta, k, s):
    """adaPool written the obvious way in PyTorch (what the kernels replace)."""
    n, c = x.shape[:2]
    ho, wo = beta.shape
    cols = F.unfold(x, k, stride=s).view(n, c, k * k, ho * wo)
    mean = cols.mean(2, keepdim=True)
    dsc = 2 * (cols * mean).abs() / (cols * cols + mean * mean)
    edscw = (dsc.softmax(2) * cols).sum(2)
    em = (cols.softmax(2) * cols).sum(2)
    b = beta.clamp(0, 1).reshape(1, 1, ho * wo)
    return (b * edscw + (1 - b) * em).view(n, c, ho, wo)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"GPU: {name}; CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}, "
          f"driver {cupy.cuda.runtime.driverGetVersion()}; CuPy {cupy.__version__}")
    torch = F = None
    try:
        import torch
        import torch.nn.functional as F

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        pass
    print(f"PyTorch: {torch.__version__ if torch else 'absent (no torch rows)'}")
    bandwidth = copy_bandwidth(cupy, args.repeat)
    print(f"device-to-device copy bandwidth: {bandwidth / 1e9:.0f} GB/s (read + write)\n")
    events = cupy_events(cupy)
    torch_events = (lambda: torch.cuda.Event(enable_timing=True)) if torch else None

    print("| shape | k, s | dtype | what | ms | memory floor ms | fraction of floor |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for shape, k, s in CASES:
        for dtype in DTYPES:
            rng = cupy.random.default_rng(0)
            x = rng.standard_normal(shape, dtype=cupy.float32).astype(dtype)
            y = ap.adapool2d(x, 0.5, kernel_size=k, stride=s)
            beta = rng.uniform(0, 1, y.shape[-2:], dtype=cupy.float32)
            gy = cupy.ones_like(y)
            fwd_bytes = x.nbytes + y.nbytes + beta.nbytes
            bwd_bytes = fwd_bytes + x.nbytes + gy.nbytes + x.nbytes + beta.nbytes

            def row(what, ms, floor_bytes=None):
                floor = "" if floor_bytes is None else f"{floor_bytes / bandwidth * 1e3:.3f}"
                frac = "" if floor_bytes is None else f"{floor_bytes / bandwidth * 1e3 / ms:.0%}"
                print(f"| {shape} | {k}, {s} | {dtype} | {what} | {ms:.3f} | {floor} | {frac} |", flush=True)

            fwd = median_ms(events, lambda: ap.adapool2d(x, beta, kernel_size=k, stride=s), args.repeat)
            row("adapool2d forward", fwd, fwd_bytes)

            def forward_backward():
                ap.adapool2d(x, beta, kernel_size=k, stride=s)
                ap.adapool2d_backward(gy, x, beta, kernel_size=k, stride=s)

            fb = median_ms(events, forward_backward, args.repeat)
            row("adapool2d forward+backward", fb, bwd_bytes)
            if torch is None:
                continue
            tx = torch.from_dlpack(x)
            tbeta = torch.from_dlpack(beta).to(tx.dtype)
            tgy = torch.from_dlpack(gy)
            ours = torch.from_dlpack(ap.adapool2d(x, beta, kernel_size=k, stride=s)).float()
            theirs = torch_composite_adapool2d(F, tx.float(), tbeta.float(), k, s)
            err = float((ours - theirs).norm() / theirs.norm())
            row("torch avg_pool2d forward",
                median_ms(torch_events, lambda: F.avg_pool2d(tx, k, s), args.repeat), fwd_bytes - beta.nbytes)
            tx_grad = tx.detach().clone().requires_grad_(True)
            tbeta_grad = tbeta.detach().clone().requires_grad_(True)

            def torch_avg_fb():
                tx_grad.grad = None
                F.avg_pool2d(tx_grad, k, s).backward(tgy)

            row("torch avg_pool2d forward+backward", median_ms(torch_events, torch_avg_fb, args.repeat),
                bwd_bytes - 2 * beta.nbytes)
            composite = median_ms(torch_events, lambda: torch_composite_adapool2d(F, tx, tbeta, k, s), args.repeat)
            row(f"torch composite adaPool forward (rel. diff. to adapool2d in float32: {err:.1e})", composite,
                fwd_bytes)

            def composite_fb():
                tx_grad.grad = tbeta_grad.grad = None
                torch_composite_adapool2d(F, tx_grad, tbeta_grad, k, s).backward(tgy)

            composite_fb_ms = median_ms(torch_events, composite_fb, args.repeat)
            row("torch composite adaPool forward+backward", composite_fb_ms, bwd_bytes)
            print(f"| {shape} | {k}, {s} | {dtype} | speed-up over the composite: forward "
                  f"{composite / fwd:.1f}x, forward+backward {composite_fb_ms / fb:.1f}x | | | |")
            del tx_grad, tbeta_grad
            torch.cuda.empty_cache()
            cupy.get_default_memory_pool().free_all_blocks()


if __name__ == "__main__":
    main()
