"""Small before/after bench for issue 10 (docs/benchmarks.md): the row kernels (float32 k2 s2, k3 s2) and the general path (k3 s3)."""
import sys
from adapool_core.bench import run_bench, format_table
shapes = (((4, 16, 64, 64), 2, 2), ((4, 16, 64, 64), 3, 2), ((4, 16, 63, 63), 3, 3))
res = run_bench(quick=False, budget_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.5, threads=2, shapes=shapes, log=lambda *a, **k: None)
print(format_table(res))
