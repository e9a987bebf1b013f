"""``adapool bench``: time the adaPool family against PyTorch's pooling.

For each row of the matrix (shape, kernel, stride, padding; float32, and
float64 where marked) it times every method's forward and forward + backward
(exact gradients) through the public functions of the row's rank, and in the
same run, where PyTorch is installed, ``avg_pool{d}d``, ``max_pool{d}d`` and a
plain PyTorch composite adaPool (windows by ``Tensor.unfold``, softmax, sums;
autograd for the backward).
Each case is warmed up first (the first call, which compiles or loads the
Numba cache, is timed and reported apart), then repeated until a time budget
is spent; the median is reported with its ratio to ``avg_pool2d`` and to the
composite (same direction), and the peak memory the call added.

Peak memory is measured two ways: ``tracemalloc`` (exact for NumPy arrays,
blind to PyTorch) and, on Linux, the process's peak resident set size
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``, with glibc's
``mmap`` threshold pinned so that large blocks go back to the system when
freed).  The table shows the RSS figure where available.  Memory is measured
in a second pass after all the timings: the pin cannot be undone, and under it
every large block faults its pages in again on each call, a cost the timings
must not include (a default process recycles those blocks).

With ``--device cuda`` (CuPy arrays on the current GPU) it also runs float16,
times each call between device synchronisations, and reports the fraction of
the memory floor each time reaches: the bytes a call must move at least
(forward: read x and beta, write y; forward+backward: that, plus read x and
grad_y, write grad_x and grad_beta) over the device-to-device copy bandwidth
measured in the same run.

With ``--jax`` it times the JAX adapter's two paths instead (``bench_jax``:
the Numba host callback against the XLA operations, jitted, forward and
forward+backward of ``adapool2d``).

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
from typing import Any, NamedTuple

import numpy as np

from .._api import METHODS

# Kernel and stride of a global pooling row: adaptive_{method}{d}d(x, 1) against torch's
# adaptive_avg_pool{d}d(x, 1) (0 as the kernels' stride 0 marks an adaptive dim).
GLOBAL = 0
# (shape, kernel, stride, padding, CPU dtypes): the matrix of issues 11 and 13; the
# rank is the shape's (N, C, spatial...).  A row may also be (shape, kernel, stride).
SHAPES = (
    ((32, 64, 112, 112), 2, 2, 0, ("float32", "float64")),
    ((8, 64, 56, 56), 3, 2, 0, ("float32",)),
    ((8, 64, 56, 56), 3, 1, 1, ("float32", "float64")),  # overlapping "same" pooling
    ((8, 256, 20, 20), 5, 1, 2, ("float32",)),  # spatial-pyramid style
    ((1, 3, 1024, 1024), 2, 2, 0, ("float32",)),
    ((4, 32, 8, 56, 56), 2, 2, 0, ("float32",)),  # 3-D
    ((32, 256, 512), 2, 2, 0, ("float32",)),  # 1-D
    ((32, 256, 14, 14), GLOBAL, GLOBAL, 0, ("float32",)),  # a classifier head's global pooling
)
# --quick: small inputs covering the same paths (ranks 1 to 3, overlap and padding, float64).
QUICK_SHAPES = (
    ((2, 8, 32, 32), 2, 2, 0, ("float32", "float64")),
    ((2, 8, 16, 16), 3, 1, 1, ("float32",)),
    ((1, 4, 4, 16, 16), 2, 2, 0, ("float32",)),
    ((2, 8, 64), 2, 2, 0, ("float32",)),
    ((4, 32, 7, 7), GLOBAL, GLOBAL, 0, ("float32",)),
)
# Data types per device where a row names none (the kernels' half path only pays off on a GPU).
DTYPES = {"cpu": ("float32",), "cuda": ("float32", "float16")}


def bench_rows(shapes, device):
    """(shape, kernel, stride, padding, dtypes) for each row of ``shapes``; CUDA
    runs every row in its own dtypes (``DTYPES``)."""
    rows = []
    for row in shapes:
        shape, k, s = row[:3]
        padding = row[3] if len(row) > 3 else 0
        dtypes = row[4] if len(row) > 4 and device == "cpu" else DTYPES[device]
        rows.append((tuple(shape), k, s, padding, tuple(dtypes)))
    return rows


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


def _trim_heap():
    """Hand every free page of the heap back to the system (glibc's ``malloc_trim``), so that
    the next call's allocations fault their pages in again and show in its peak RSS (memory
    freed by earlier calls, the timings' among them, would otherwise be reused unseen)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


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
        _trim_heap()
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

def _adapool_cases(x, beta, g, k, s, p=0):
    """name -> (forward thunk, forward+backward thunk) for every method through the public API."""
    import adapool_core as ap

    d = x.ndim - 2
    cases = {}
    for method in METHODS:
        prefix = "adaptive_" if k == GLOBAL else ""
        fwd = getattr(ap, f"{prefix}{method}{d}d")
        bwd = getattr(ap, f"{prefix}{method}{d}d_backward")
        args = (beta,) if method == "adapool" else ()
        if k == GLOBAL:
            fwd, bwd = _global_call(fwd), _global_call(bwd)

        def f(fwd=fwd, args=args):
            return fwd(x, *args, k, s, p)

        def fb(fwd=fwd, bwd=bwd, args=args):
            y = fwd(x, *args, k, s, p)
            return y, bwd(g, x, *args, k, s, p)
        cases[f"{method}{d}d"] = (f, fb)
    return cases


def _global_call(fn):
    """fn (an adaptive function) as a pooling call whose window arguments give output size 1."""
    def call(*args):
        return fn(*args[:-3], 1)
    return call


def torch_composite_adapool(x, beta, k, s, p=0):
    """adaPool written plainly in PyTorch (the baseline the kernels replace), any
    rank: the windows by ``Tensor.unfold`` along each spatial dim, eDSCW and eM
    softmax weights, blend by clamp(beta).  As spec.md says, ``dsc = 1`` where
    ``x_i = m = 0``.  ``beta``: one value per output location, shape ``O``.
    Padding ``p`` pads with zeros: a cost baseline, whose border windows differ
    from adaPool's (which leaves padding out of a window)."""
    import torch
    import torch.nn.functional as F

    n, c = x.shape[:2]
    d = x.dim() - 2
    if p:
        x = F.pad(x, (p, p) * d)
    for dim in range(2, 2 + d):
        x = x.unfold(dim, k, s)  # (n, c, o..., k...)
    cols = x.reshape(n, c, -1, k ** d).transpose(2, 3)  # (n, c, window cells, output cells)
    mean = cols.mean(dim=2, keepdim=True)
    den = cols * cols + mean * mean
    dsc = torch.where(den > 0, 2 * (cols * mean).abs() / den.clamp_min(torch.finfo(x.dtype).tiny),
                      torch.ones_like(den))
    y_d = (torch.softmax(dsc, dim=2) * cols).sum(dim=2)
    y_m = (torch.softmax(cols, dim=2) * cols).sum(dim=2)
    b = beta.clamp(0, 1).reshape(-1)
    y = b * y_d + (1 - b) * y_m
    return y.view(n, c, *beta.shape)


def torch_composite_adapool2d(x, beta, k, s):
    """``torch_composite_adapool`` of a 2-D problem without padding."""
    return torch_composite_adapool(x, beta, k, s)


def _torch_cases(x_np, beta_np, g_np, k, s, p, device):
    import torch
    import torch.nn.functional as F

    dev = "cuda" if device == "cuda" else "cpu"
    x = torch.from_numpy(x_np).to(dev)
    beta = torch.from_numpy(beta_np).to(dev, x.dtype)
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
        if k == GLOBAL:  # one window over the flattened spatial dims
            n, c, width = *xx.shape[:2], xx[0, 0].numel()
            flat = torch_composite_adapool(xx.reshape(n, c, width), beta.reshape(1), width, width)
            return flat.reshape(g.shape)
        return torch_composite_adapool(xx, beta, k, s, p)

    d = x.dim() - 2
    avg_pool, max_pool = getattr(F, f"avg_pool{d}d"), getattr(F, f"max_pool{d}d")
    if k == GLOBAL:  # named as the plain rows' baselines, for the ratios
        adaptive_avg, adaptive_max = getattr(F, f"adaptive_avg_pool{d}d"), getattr(F, f"adaptive_max_pool{d}d")
        avg_pool, max_pool = (lambda xx, *_: adaptive_avg(xx, 1)), (lambda xx, *_: adaptive_max(xx, 1))
    return {
        f"torch avg_pool{d}d": pair(lambda xx: avg_pool(xx, k, s, p)),
        f"torch max_pool{d}d": pair(lambda xx: max_pool(xx, k, s, p)),
        f"torch composite adapool{d}d": pair(composite),
    }


def _have_torch(device):
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


def copy_bandwidth(cupy, sync, nbytes=2**28, repeat=10):
    """Device-to-device copy bandwidth of the current GPU in bytes/s (bytes read + written)."""
    src = cupy.empty(nbytes, dtype=cupy.uint8)
    dst = cupy.empty_like(src)
    _, median_s, _ = time_call(lambda: dst.data.copy_from_device_async(src.data, nbytes), 0, sync,
                               min_reps=repeat)
    return 2 * nbytes / median_s


def floor_bytes(op, direction, x, y, beta):
    """The bytes one call must move at least (module docstring); beta counts for adaPool only."""
    beta_bytes = beta.nbytes if op.startswith(("adapool", "torch composite")) else 0
    forward = x.nbytes + y.nbytes + beta_bytes
    return forward if direction == "forward" else forward + 2 * x.nbytes + y.nbytes + beta_bytes


def _composite_rel_diff(x, beta, k, s):
    """Norm-wise relative difference of the composite baseline to adapool2d, in float32."""
    import torch

    import adapool_core as ap

    ours = torch.from_dlpack(ap.adapool2d(x, beta, k, s)).float()
    theirs = torch_composite_adapool2d(torch.from_dlpack(x).float(), torch.from_dlpack(beta).float(), k, s)
    return float((ours - theirs).norm() / theirs.norm())


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
    shapes = bench_rows(shapes or (QUICK_SHAPES if quick else SHAPES), device)
    use_rss = device == "cpu" and _rss_peak_supported()

    if device == "cuda":
        import cupy

        xp = cupy

        def sync():
            cupy.cuda.Device().synchronize()

        bandwidth = copy_bandwidth(cupy, sync)
        log(f"device-to-device copy bandwidth: {bandwidth / 1e9:.0f} GB/s (read + write)")
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
        "cases": [],
    }
    if device == "cuda":
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        results.update(gpu=props["name"].decode() if isinstance(props["name"], bytes) else props["name"],
                       cupy=cupy.__version__, copy_bandwidth_bytes_per_s=bandwidth)
    if torch_ok:
        import torch

        results["torch"] = torch.__version__
    rng = np.random.default_rng(0)
    for shape, k, s, p, dtypes in shapes:
        for dtype in dtypes:
            log(f"{shape} k{k} s{s} p{p} {dtype}")
            _time_row(results, shape, k, s, p, dtype, rng, xp, sync, budget_s, torch_ok, log)
    if device == "cpu":
        # Memory after every timing: the pinned mmap threshold it needs cannot be undone, and
        # it makes every block over 128 KiB a fresh mapping whose pages fault in on each call
        # (measured +3 ms a call, +45% on adapool3d (4, 32, 8, 56, 56)), which no default
        # process pays once glibc has raised its threshold.
        use_rss = use_rss and _pin_malloc_mmap_threshold()
        entries = iter(results["cases"])
        rng = np.random.default_rng(0)
        for shape, k, s, p, dtypes in shapes:
            for dtype in dtypes:
                _measure_row_memory(entries, shape, k, s, p, dtype, rng, torch_ok, use_rss)
    results["memory_method"] = "peak RSS (VmHWM)" if use_rss else "tracemalloc (NumPy allocations only)"
    _add_ratios(results["cases"])
    return results


class RowCases(NamedTuple):
    """One row and dtype of the matrix: ``cases``, name -> (forward thunk, forward+backward
    thunk); the inputs as NumPy arrays (x, beta, grad_y) and as the device's (x, beta)."""
    cases: dict[str, Any]
    x_np: np.ndarray
    beta_np: np.ndarray
    g_np: np.ndarray
    x: Any
    beta: Any


def _row_cases(shape, k, s, p, dtype, rng, xp, device, torch_ok):
    """The RowCases of one row and dtype; the inputs are drawn from rng (the same draws for
    the same seed)."""
    x_np = rng.standard_normal(shape).astype(dtype)
    out_hw = tuple(1 if k == GLOBAL else (n + 2 * p - k) // s + 1 for n in shape[2:])
    beta_np = rng.uniform(0, 1, out_hw).astype(np.float32)  # one value per output location
    g_np = rng.standard_normal(shape[:2] + out_hw).astype(dtype)
    x, beta, g = (xp.asarray(a) for a in (x_np, beta_np, g_np))
    cases = _adapool_cases(x, beta, g, k, s, p)
    if torch_ok:
        cases.update(_torch_cases(x_np, beta_np, g_np, k, s, p, device))
    return RowCases(cases, x_np, beta_np, g_np, x, beta)


def _time_row(results, shape, k, s, p, dtype, rng, xp, sync, budget_s, torch_ok, log):
    """Time every case of one row and dtype; append the entries to results["cases"]."""
    device = results["device"]
    cases, x_np, beta_np, g_np, x, beta = _row_cases(shape, k, s, p, dtype, rng, xp, device, torch_ok)
    for name, (f, fb) in cases.items():
        for direction, fn in (("forward", f), ("forward+backward", fb)):
            first, med, reps = time_call(fn, budget_s, sync)
            entry = {
                "shape": list(shape), "kernel": k, "stride": s, "padding": p, "dtype": dtype,
                "op": name, "direction": direction,
                "median_s": med, "first_call_s": first, "reps": reps,
                "input_bytes": x_np.nbytes, "output_bytes": g_np.nbytes,
            }
            if device != "cpu":
                floor_s = floor_bytes(name, direction, x_np, g_np, beta_np) / results["copy_bandwidth_bytes_per_s"]
                entry["memory_floor_s"] = floor_s
                entry["fraction_of_floor"] = floor_s / med
            results["cases"].append(entry)
            log(f"  {name:<27} {direction:<17} {dtype:<8} {med * 1e3:9.2f} ms  (first call {first:.2f} s, "
                f"{reps} reps)")
    if torch_ok and device == "cuda" and len(shape) == 4 and p == 0 and k != GLOBAL:
        diff = _composite_rel_diff(x, beta, k, s)
        results.setdefault("composite_rel_diff", []).append({"shape": list(shape), "dtype": dtype, "value": diff})
        log(f"  composite vs adapool2d, rel. diff. in float32: {diff:.1e}")


def _measure_row_memory(entries, shape, k, s, p, dtype, rng, torch_ok, use_rss):
    """Fill in the peak memory of one row's entries (the next ones of ``entries``, in
    ``_time_row``'s order), on inputs drawn as ``_time_row`` drew them."""
    cases = _row_cases(shape, k, s, p, dtype, rng, np, "cpu", torch_ok).cases
    for name, (f, fb) in cases.items():
        for direction, fn in (("forward", f), ("forward+backward", fb)):
            entry = next(entries)
            assert (entry["op"], entry["direction"], entry["dtype"]) == (name, direction, dtype)
            traced, rss = measure_memory(fn, use_rss)
            entry["peak_extra_bytes_tracemalloc"] = traced
            entry["peak_extra_bytes_rss"] = rss


def _processor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _row_key(c):
    return tuple(c["shape"]), c["kernel"], c["stride"], c.get("padding", 0), c["dtype"]


def _add_ratios(cases):
    """ratio_to_avg_pool (ratio_to_avg_pool2d too, the name before other ranks)
    and ratio_to_composite: median over the baseline's median, same row, dtype
    and direction."""
    index = {(_row_key(c), c["op"], c["direction"]): c["median_s"] for c in cases}
    for c in cases:
        d = len(c["shape"]) - 2
        for base, field in ((f"torch avg_pool{d}d", "ratio_to_avg_pool"),
                            (f"torch composite adapool{d}d", "ratio_to_composite")):
            ref = index.get((_row_key(c), base, c["direction"]))
            c[field] = c["median_s"] / ref if ref else None
        c["ratio_to_avg_pool2d"] = c["ratio_to_avg_pool"]


def _peak(c):
    value = c.get("peak_extra_bytes_rss")
    if value is None:
        value = c.get("peak_extra_bytes_tracemalloc")
    return value


def format_table(results):
    """Markdown table of the results (on CUDA: the dtype and the fraction of the memory floor)."""
    cuda = results["device"] == "cuda"
    dtypes = DTYPES["cuda"] if cuda else dict.fromkeys(c["dtype"] for c in results["cases"])
    head = (f"device {results['device']}" + (f" ({results['gpu']}, copy bandwidth "
                                             f"{results['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s)" if cuda else "")
            + f", {results['threads']} threads, {', '.join(dtypes)}, "
            f"median of repeats within {results['budget_s']} s per case")
    memory = "fraction of memory floor" if cuda else "peak extra MB (x input)"
    lines = [
        head + ("" if cuda else f"; memory: {results['memory_method']}"),
        "",
        f"| shape, kernel, stride, padding, dtype | op | direction | median ms | / avg_pool | / composite | {memory} "
        "| first call s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ratio(v):
        return "" if v is None else f"{v:.2f}"

    for c in results["cases"]:
        if cuda:
            mem = f"{c['fraction_of_floor']:.0%}"
        else:
            peak = _peak(c)
            mem = "" if peak is None else f"{peak / 2**20:.1f} ({peak / c['input_bytes']:.2f})"
        lines.append(
            f"| {row_label(c)} | {c['op']} | {c['direction']} | "
            f"{c['median_s'] * 1e3:.2f} | {ratio(c['ratio_to_avg_pool'])} | {ratio(c['ratio_to_composite'])} | "
            f"{mem} | {c['first_call_s']:.2f} |"
        )
    return "\n".join(lines)


def row_label(c):
    """"(8, 64, 56, 56) k3 s1 p1 float32": a row of the matrix and its dtype ("global" for
    global pooling, whose avg_pool baseline is torch's adaptive_avg_pool{d}d(x, 1))."""
    if c["kernel"] == GLOBAL:
        return f"{tuple(c['shape'])} global {c['dtype']}"
    return f"{tuple(c['shape'])} k{c['kernel']} s{c['stride']} p{c.get('padding', 0)} {c['dtype']}"


# The issue's CPU targets (issue 11), as ratios to torch avg_pool{d}d in the
# same run: (forward, forward+backward) for windows that never overlap
# (stride >= kernel) and for overlapping ones.
TARGETS = {False: (2.0, 3.0), True: (3.0, 4.0)}


def target_lines(results):
    """One line per row, method and direction: the ratio to avg_pool and
    whether the target is met; and the memory of adapool's calls."""
    lines = []
    if results["device"] != "cpu":
        return lines
    for c in results["cases"]:
        if c["op"].startswith("torch"):
            continue
        overlapping = c["stride"] < c["kernel"]
        limit = TARGETS[overlapping][c["direction"] != "forward"]
        if c.get("ratio_to_avg_pool") is not None:
            ok = "met" if c["ratio_to_avg_pool"] <= limit else "NOT met"
            lines.append(f"{row_label(c)} {c['op']} {c['direction']}: {c['ratio_to_avg_pool']:.2f} x avg_pool "
                         f"(target <= {limit:g}): {ok}")
        peak = _peak(c)
        if peak is None or not c["op"].startswith("adapool"):
            continue
        if c["direction"] == "forward":
            lines.append(f"{row_label(c)} {c['op']} forward peak extra memory = {peak / c['input_bytes']:.2f} x input "
                         f"(the output alone is {c['output_bytes'] / c['input_bytes']:.2f} x)")
        else:
            ok = "met" if peak <= 2 * c["input_bytes"] else "NOT met"
            lines.append(f"{row_label(c)} {c['op']} forward+backward peak extra memory = "
                         f"{peak / c['input_bytes']:.2f} x input (target <= 2): {ok}")
    return lines


def add_arguments(parser):
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default cpu)")
    parser.add_argument("--quick", action="store_true", help="small inputs, short budget: a few seconds")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of repeats per case (default 1.0, 0.05 with --quick)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for Numba and PyTorch")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch baselines")
    parser.add_argument("--json", metavar="PATH", default=None, help="also write the results as JSON")
    parser.add_argument("--jax", action="store_true",
                        help="instead: the JAX adapter's two paths, implementation='callback' vs 'xla' "
                             "(jitted adapool2d, forward and forward+backward; needs jax)")


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
    if args.jax:
        return _run_jax(args)
    results = run_bench(device=args.device, quick=args.quick, budget_s=args.budget, threads=args.threads,
                        with_torch=not args.no_torch)
    print()
    print(format_table(results))
    lines = target_lines(results)
    if lines:
        print("\nTargets (issue 11):")
        for line in lines:
            print("  " + line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"\nwrote {os.path.abspath(args.json)}")
    return 0


def _run_jax(args) -> int:
    from . import bench_jax

    try:
        import jax  # noqa: F401
    except ImportError as exc:
        print(f"--jax: expected jax to be installed, got {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    shapes = bench_jax.QUICK_SHAPES if args.quick else bench_jax.SHAPES
    rows = bench_jax.bench_jax(shapes, repeats=3 if args.quick else 5)
    bench_jax.print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"jax": rows}, f, indent=1)
        print(f"\nwrote {os.path.abspath(args.json)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adapool bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
