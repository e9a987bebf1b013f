"""``adapool bench``: time the adaPool family against PyTorch's pooling.

For each shape (float32) it times every method's forward and forward +
backward (exact gradients) through the public functions, and in the same run,
where PyTorch is installed, ``avg_pool2d``, ``max_pool2d`` and a plain
PyTorch composite adaPool (unfold, softmax, sums; autograd for the backward).
Each case is warmed up first (the first call, which compiles or loads the
Numba cache, is timed and reported apart), then repeated until a time budget
is spent; the median is reported with its ratio to ``avg_pool2d`` and to the
composite (same direction), and the peak memory the call added.

Peak memory is measured two ways: ``tracemalloc`` (exact for NumPy arrays,
blind to PyTorch) and, on Linux, the process's peak resident set size
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``, with glibc's
``mmap`` threshold pinned so that large blocks go back to the system when
freed).  The table shows the RSS figure where available.

``run_bench(...)`` returns the results as a dict (the JSON written by
``--json``); ``main`` is the command line.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

METHODS = ("adapool", "edscwpool", "empool", "idwpool")
# (shape, kernel, stride): the benchmark set.
SHAPES = (((32, 64, 112, 112), 2, 2), ((8, 64, 56, 56), 3, 2), ((1, 3, 1024, 1024), 2, 2))
# --quick: the same kernels and strides on small inputs.
QUICK_SHAPES = (((2, 8, 32, 32), 2, 2), ((2, 8, 16, 16), 3, 2), ((1, 3, 64, 64), 2, 2))


# ---------------------------------------------------------------------------
# memory
# ---------------------------------------------------------------------------

def _pin_malloc_mmap_threshold():
    """Make glibc hand every block >= 128 KiB back to the system when freed, so
    that each call's large temporaries show in its own peak RSS (glibc otherwise
    raises the threshold after the first free and recycles the memory)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 128 * 1024)
        return True
    except (OSError, AttributeError):
        return False


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _rss_peak_supported():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        _status_kib("VmHWM")
        return True
    except OSError:
        return False


def measure_memory(fn, use_rss):
    """(tracemalloc peak bytes, RSS peak bytes or None) that one call of fn added."""
    gc.collect()
    rss_extra = None
    if use_rss:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
        before = _status_kib("VmRSS")
        out = fn()
        rss_extra = max(0, _status_kib("VmHWM") - before) * 1024
        del out
        gc.collect()
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    return peak, rss_extra


# ---------------------------------------------------------------------------
# timing
# ---------------------------------------------------------------------------

def time_call(fn, budget_s, sync, min_reps=3, max_reps=1000):
    """(first-call seconds, median seconds, repetitions).  The first call
    (compilation or cache load) is timed apart and excluded from the median."""
    t0 = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - t0
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), len(times)


# ---------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------

def _adapool_cases(x, beta, g, k, s):
    """name -> (direction, thunk) for every method through the public API."""
    import adapool_core as ap

    cases = {}
    for method in METHODS:
        fwd = getattr(ap, f"{method}2d")
        bwd = getattr(ap, f"{method}2d_backward")
        if method == "adapool":
            def f(fwd=fwd):
                return fwd(x, beta, k, s)

            def fb(fwd=fwd, bwd=bwd):
                y = fwd(x, beta, k, s)
                return y, bwd(g, x, beta, k, s)
        else:
            def f(fwd=fwd):
                return fwd(x, k, s)

            def fb(fwd=fwd, bwd=bwd):
                y = fwd(x, k, s)
                return y, bwd(g, x, k, s)
        cases[f"{method}2d"] = (f, fb)
    return cases


def torch_composite_adapool2d(x, beta, k, s):
    """adaPool written plainly in PyTorch (the comparison the issue asks for):
    unfold the windows, eDSCW and eM softmax weights, blend by clamp(beta)."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    cols = F.unfold(x, k, stride=s)  # (n, c*k*k, L)
    cols = cols.view(n, c, k * k, -1)
    mean = cols.mean(dim=2, keepdim=True)
    dsc = 2 * (cols * mean).abs() / (cols * cols + mean * mean).clamp_min(torch.finfo(x.dtype).tiny)
    y_d = (torch.softmax(dsc, dim=2) * cols).sum(dim=2)
    y_m = (torch.softmax(cols, dim=2) * cols).sum(dim=2)
    oh = (h - k) // s + 1
    ow = (w - k) // s + 1
    b = beta.clamp(0, 1).reshape(-1)
    y = b * y_d + (1 - b) * y_m
    return y.view(n, c, oh, ow)


def _torch_cases(x_np, beta_np, g_np, k, s, device):
    import torch
    import torch.nn.functional as F

    dev = "cuda" if device == "cuda" else "cpu"
    x = torch.from_numpy(x_np).to(dev)
    beta = torch.from_numpy(beta_np).to(dev)
    g = torch.from_numpy(g_np).to(dev)

    def pair(op):
        def f():
            with torch.no_grad():
                return op(x)

        def fb():
            xr = x.detach().requires_grad_(True)
            y = op(xr)
            y.backward(g)
            return y, xr.grad
        return f, fb

    def composite(xx):
        return torch_composite_adapool2d(xx, beta, k, s)

    return {
        "torch avg_pool2d": pair(lambda xx: F.avg_pool2d(xx, k, s)),
        "torch max_pool2d": pair(lambda xx: F.max_pool2d(xx, k, s)),
        "torch composite adapool2d": pair(composite),
    }


def _have_torch(device):
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def run_bench(device="cpu", quick=False, budget_s=None, threads=None, shapes=None, with_torch=True, log=print):
    """Run every case; return the results as a JSON-serialisable dict."""
    import numba

    if threads is not None:
        numba.set_num_threads(threads)
    threads = numba.get_num_threads()
    torch_ok = with_torch and _have_torch(device)
    if torch_ok:
        import torch

        torch.set_num_threads(threads)
    if budget_s is None:
        budget_s = 0.05 if quick else 1.0
    shapes = shapes or (QUICK_SHAPES if quick else SHAPES)
    use_rss = device == "cpu" and _pin_malloc_mmap_threshold() and _rss_peak_supported()

    if device == "cuda":
        import cupy

        xp = cupy

        def sync():
            cupy.cuda.Device().synchronize()
    else:
        xp = np

        def sync():
            pass

    results = {
        "device": device,
        "threads": threads,
        "quick": quick,
        "budget_s": budget_s,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _processor(),
        "memory_method": "peak RSS (VmHWM)" if use_rss else "tracemalloc (NumPy allocations only)",
        "cases": [],
    }
    if torch_ok:
        import torch

        results["torch"] = torch.__version__
    rng = np.random.default_rng(0)
    for shape, k, s in shapes:
        x_np = rng.standard_normal(shape).astype(np.float32)
        out_hw = tuple((n - k) // s + 1 for n in shape[2:])
        beta_np = rng.uniform(0, 1, out_hw).astype(np.float32)  # one value per output location
        g_np = rng.standard_normal(shape[:2] + out_hw).astype(np.float32)
        x, beta, g = (xp.asarray(a) for a in (x_np, beta_np, g_np))
        cases = _adapool_cases(x, beta, g, k, s)
        if torch_ok:
            cases.update(_torch_cases(x_np, beta_np, g_np, k, s, device))
        in_bytes = x_np.nbytes
        for name, (f, fb) in cases.items():
            for direction, fn in (("forward", f), ("forward+backward", fb)):
                first, med, reps = time_call(fn, budget_s, sync)
                entry = {
                    "shape": list(shape), "kernel": k, "stride": s, "dtype": "float32",
                    "op": name, "direction": direction,
                    "median_s": med, "first_call_s": first, "reps": reps,
                    "input_bytes": in_bytes, "output_bytes": g_np.nbytes,
                }
                if device == "cpu":
                    traced, rss = measure_memory(fn, use_rss)
                    entry["peak_extra_bytes_tracemalloc"] = traced
                    entry["peak_extra_bytes_rss"] = rss
                results["cases"].append(entry)
                log(f"  {name:<27} {direction:<17} {med * 1e3:9.2f} ms  (first call {first:.2f} s, {reps} reps)")
    _add_ratios(results["cases"])
    return results


def _processor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _add_ratios(cases):
    """ratio_to_avg_pool2d / ratio_to_composite: median over the baseline's
    median, same shape and direction."""
    index = {(tuple(c["shape"]), c["op"], c["direction"]): c["median_s"] for c in cases}
    for c in cases:
        key = tuple(c["shape"])
        for base, field in (("torch avg_pool2d", "ratio_to_avg_pool2d"),
                            ("torch composite adapool2d", "ratio_to_composite")):
            ref = index.get((key, base, c["direction"]))
            c[field] = c["median_s"] / ref if ref else None


def _peak(c):
    value = c.get("peak_extra_bytes_rss")
    if value is None:
        value = c.get("peak_extra_bytes_tracemalloc")
    return value


def format_table(results):
    """Markdown table of the results."""
    lines = [
        f"device {results['device']}, {results['threads']} threads, float32, "
        f"median of repeats within {results['budget_s']} s per case; memory: {results['memory_method']}",
        "",
        "| shape, kernel, stride | op | direction | median ms | / avg_pool2d | / composite | peak extra MB (x input) | first call s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ratio(v):
        return "" if v is None else f"{v:.2f}"

    for c in results["cases"]:
        peak = _peak(c)
        mem = "" if peak is None else f"{peak / 2**20:.1f} ({peak / c['input_bytes']:.2f})"
        lines.append(
            f"| {tuple(c['shape'])} k{c['kernel']} s{c['stride']} | {c['op']} | {c['direction']} | "
            f"{c['median_s'] * 1e3:.2f} | {ratio(c['ratio_to_avg_pool2d'])} | {ratio(c['ratio_to_composite'])} | "
            f"{mem} | {c['first_call_s']:.2f} |"
        )
    return "\n".join(lines)


# The CPU targets for adapool2d (float32, both big shapes).
TARGETS = {
    "forward / avg_pool2d": ("forward", "ratio_to_avg_pool2d", 2.5),
    "forward+backward / avg_pool2d": ("forward+backward", "ratio_to_avg_pool2d", 3.0),
    "forward+backward / composite": ("forward+backward", "ratio_to_composite", 0.1),
}


def target_lines(results):
    """One line per target and shape: the measured value and whether it is met."""
    lines = []
    for c in results["cases"]:
        if c["op"] != "adapool2d":
            continue
        shape = f"{tuple(c['shape'])} k{c['kernel']} s{c['stride']}"
        for name, (direction, field, limit) in TARGETS.items():
            if c["direction"] == direction and c.get(field) is not None:
                ok = "met" if c[field] <= limit else "NOT met"
                lines.append(f"{shape}: {name} = {c[field]:.3f} (target <= {limit}): {ok}")
        peak = _peak(c)
        if peak is not None:
            if c["direction"] == "forward":
                lines.append(f"{shape}: forward peak extra memory = {peak / c['input_bytes']:.2f} x input "
                             f"(the output alone is {c['output_bytes'] / c['input_bytes']:.2f} x)")
            else:
                ok = "met" if peak <= 2 * c["input_bytes"] else "NOT met"
                lines.append(f"{shape}: forward+backward peak extra memory = {peak / c['input_bytes']:.2f} x input "
                             f"(target <= 2): {ok}")
    return lines


def add_arguments(parser):
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    parser.add_argument("--quick", action="store_true", help="small inputs, short budget: a few seconds")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of repeats per case (default 1.0, 0.05 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for Numba and PyTorch")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baselines")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")


def run_from_args(args) -> int:
    if args.threads is not None and args.threads < 1:
        print(f"--threads: expected a positive integer, got {args.threads}", file=sys.stderr)
        return 2
    if args.device == "cuda":
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # ImportError, or CUDARuntimeError without a usable GPU
            print(f"--device cuda: expected CuPy and a usable NVIDIA GPU, got {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            return 2
    results = run_bench(device=args.device, quick=args.quick, budget_s=args.budget, threads=args.threads,
                        with_torch=not args.no_torch)
    print()
    print(format_table(results))
    lines = target_lines(results)
    if lines:
        print("\nTargets (adapool2d):")
        for line in lines:
            print("  " + line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {os.path.abspath(args.json)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adapool bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
