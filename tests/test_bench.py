"""``adapool bench --quick`` runs end to end and writes valid JSON (no timing assertions)."""
import json

import pytest

from adapool_core import cli
from adapool_core.cli import bench


def test_bench_quick_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--budget", "0", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    assert results["device"] == "cpu" and results["threads"] >= 1
    ops = {(c["op"], c["direction"]) for c in results["cases"]}
    for method in bench.METHODS:
        for direction in ("forward", "forward+backward"):
            assert (f"{method}2d", direction) in ops
    rows = {(tuple(c["shape"]), c["kernel"], c["stride"], c["padding"], c["dtype"]) for c in results["cases"]}
    assert rows == {(shape, k, s, p, dtype) for shape, k, s, p, dtypes in bench.QUICK_SHAPES for dtype in dtypes}
    # --quick covers what the full matrix does: ranks 1 to 3, overlap with padding, float64.
    assert {len(c["shape"]) - 2 for c in results["cases"]} == {1, 2, 3}
    assert any(c["padding"] > 0 and c["stride"] < c["kernel"] for c in results["cases"])
    assert any(c["dtype"] == "float64" for c in results["cases"])
    for d in (1, 3):
        assert (f"adapool{d}d", "forward+backward") in ops
    for case in results["cases"]:
        assert case["median_s"] > 0 and case["reps"] >= 3
        assert case["peak_extra_bytes_tracemalloc"] >= 0
    # The table printed names every op.
    out = capsys.readouterr().out
    assert "| adapool2d | forward+backward |" in out


def test_bench_has_torch_baselines_when_torch_is_installed(tmp_path):
    pytest.importorskip("torch", reason="the PyTorch baselines need torch")
    results = bench.run_bench(quick=True, budget_s=0, shapes=(((1, 2, 8, 8), 2, 2),), log=lambda *a: None)
    by_op = {(c["op"], c["direction"]): c for c in results["cases"]}
    assert ("torch avg_pool2d", "forward") in by_op and ("torch composite adapool2d", "forward+backward") in by_op
    ada = by_op[("adapool2d", "forward")]
    assert ada["ratio_to_avg_pool2d"] == pytest.approx(ada["median_s"] / by_op[("torch avg_pool2d", "forward")]["median_s"])


def test_torch_composite_matches_adapool():
    torch = pytest.importorskip("torch", reason="the composite baseline needs torch")
    import numpy as np

    import adapool_core as ap

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 8)).astype(np.float32)
    beta = rng.uniform(0, 1, (3, 4)).astype(np.float32)
    y = bench.torch_composite_adapool2d(torch.from_numpy(x), torch.from_numpy(beta), 2, 2).numpy()
    np.testing.assert_allclose(y, ap.adapool2d(x, beta, 2, 2), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 10), (1, 2, 4, 6, 8)])
def test_torch_composite_matches_adapool_in_1d_and_3d(shape):
    torch = pytest.importorskip("torch", reason="the composite baseline needs torch")
    import numpy as np

    import adapool_core as ap

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    beta = rng.uniform(0, 1, tuple(n // 2 for n in shape[2:])).astype(np.float32)
    y = bench.torch_composite_adapool(torch.from_numpy(x), torch.from_numpy(beta), 2, 2).numpy()
    pool = getattr(ap, f"adapool{len(shape) - 2}d")
    np.testing.assert_allclose(y, pool(x, beta, 2, 2), rtol=1e-4, atol=1e-5)


def test_bench_targets_follow_overlap():
    """Non-overlapping rows are held to 2x / 3x avg_pool, overlapping ones to 3x / 4x."""
    def case(k, s, direction, ratio):
        return {"shape": [1, 1, 8, 8], "kernel": k, "stride": s, "padding": 0, "dtype": "float32",
                "op": "empool2d", "direction": direction, "ratio_to_avg_pool": ratio}
    results = {"device": "cpu", "cases": [case(2, 2, "forward", 2.5), case(3, 1, "forward", 2.5),
                                         case(2, 2, "forward+backward", 2.9), case(3, 1, "forward+backward", 4.1)]}
    lines = bench.target_lines(results)
    assert [line.endswith(": met") for line in lines] == [False, True, True, False]


def test_torch_composite_takes_dsc_one_where_the_window_and_its_mean_are_zero():
    """spec.md: dsc = 1 where x_i = m = 0 (a zero window must not give NaN or dsc = 0)."""
    torch = pytest.importorskip("torch", reason="the composite baseline needs torch")
    import numpy as np

    import adapool_core as ap

    x = np.zeros((1, 1, 4, 4), np.float32)
    x[..., 2:, 2:] = np.array([[1.0, -2.0], [0.5, 3.0]], np.float32)  # one nonzero window
    beta = np.full((2, 2), 0.6, np.float32)
    y = bench.torch_composite_adapool2d(torch.from_numpy(x), torch.from_numpy(beta), 2, 2).numpy()
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, ap.adapool2d(x, beta, 2, 2), rtol=1e-5, atol=1e-6)


def test_cuda_bench_memory_floor_counts_beta_for_adapool_only():
    import numpy as np

    x, y, beta = np.zeros(100, np.float32), np.zeros(25, np.float32), np.zeros(5, np.float32)
    assert bench.floor_bytes("empool2d", "forward", x, y, beta) == 400 + 100
    assert bench.floor_bytes("adapool2d", "forward", x, y, beta) == 400 + 100 + 20
    # forward+backward: forward's, plus read x and grad_y, write grad_x (and grad_beta).
    assert bench.floor_bytes("adapool2d", "forward+backward", x, y, beta) == 520 + 800 + 100 + 20


def test_cuda_table_shows_dtype_and_fraction_of_floor():
    """The --device cuda table (no GPU needed: a results dict as run_bench makes it)."""
    case = {"shape": [1, 2, 8, 8], "kernel": 2, "stride": 2, "dtype": "float16", "op": "adapool2d",
            "direction": "forward", "median_s": 2e-3, "first_call_s": 0.5, "reps": 9, "input_bytes": 256,
            "output_bytes": 64, "memory_floor_s": 1e-3, "fraction_of_floor": 0.5}
    bench._add_ratios([case])
    results = {"device": "cuda", "gpu": "Some GPU", "copy_bandwidth_bytes_per_s": 2e12, "threads": 2,
               "budget_s": 0.5, "cases": [case]}
    table = bench.format_table(results)
    assert "Some GPU" in table and "2000 GB/s" in table and "float32, float16" in table
    assert "| (1, 2, 8, 8) k2 s2 p0 float16 | adapool2d | forward | 2.00 |  |  | 50% | 0.50 |" in table
    assert bench.target_lines(results) == []  # the targets are the CPU's


def test_bench_jax_times_both_paths(tmp_path, capsys):
    pytest.importorskip("jax", reason="adapool bench --jax needs jax")
    from adapool_core.cli import bench_jax

    path = tmp_path / "jax.json"
    assert cli.main(["bench", "--jax", "--quick", "--json", str(path)]) == 0
    rows = json.loads(path.read_text())["jax"]
    assert [(tuple(r["shape"]), r["pass"]) for r in rows] == [
        (shape, p) for shape in bench_jax.QUICK_SHAPES for p in ("forward", "fwd+bwd")]
    for row in rows:
        assert row["callback_ms"] > 0 and row["xla_ms"] > 0
        assert row["xla_over_callback"] == pytest.approx(row["xla_ms"] / row["callback_ms"])
    out = capsys.readouterr().out
    assert "callback ms" in out and "xla ms" in out


def test_bench_help_documents_jax(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert "--jax" in capsys.readouterr().out



_HEAP_REUSE_SCRIPT = """
import numpy as np
from adapool_core.cli import bench

# Resident free memory inside the heap, as a timing pass leaves it: glibc raises its mmap
# threshold when the first 1 MiB block is freed, the next ones come from the heap, and
# every other one of those is freed while its neighbours stay.
first = np.ones(1 << 17)  # 1 MiB
del first
blocks = [np.ones(1 << 17) for _ in range(24)]
kept = blocks[1::2]
del blocks
assert bench._pin_malloc_mmap_threshold()

def call():
    a = np.empty(1 << 17)  # 1 MiB, touched
    a[:] = 1.0
    return a

print(bench.measure_memory(call, True)[1])
"""


def test_bench_memory_sees_a_call_that_reuses_freed_heap_memory():
    """``adapool bench`` measures memory after its timings, whose freed blocks stay resident
    in the heap: without handing them back first (``_trim_heap``) a call reusing them
    measured 0 (every row of the matrix after the first two did)."""
    import os
    import subprocess
    import sys

    if not bench._rss_peak_supported():
        pytest.skip("peak RSS needs /proc/self/clear_refs (Linux)")
    out = subprocess.run([sys.executable, "-c", _HEAP_REUSE_SCRIPT], capture_output=True, text=True, check=True,
                         env=dict(os.environ)).stdout
    assert int(out.split()[-1]) >= (1 << 20) * 9 // 10, out
