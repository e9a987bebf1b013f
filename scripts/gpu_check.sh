#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests (CuPy path against Numba), two
# of them under compute-sanitizer memcheck and racecheck where the machine has
# it, and the GPU benchmark (adapool bench --device cuda).
#
# Budget: one device call of under 8 minutes (issue 15).  Every step has its own
# timeout: GPU tests 210 s, compute-sanitizer 2 x 75 s, benchmark 90 s, so 450 s
# (7.5 min) at most with the packages present; each missing package adds up to
# 30 s of pip (a warm machine has them all after the first call).
#
#   scripts/gpu_check.sh            # from anywhere; prints everything to stdout
#
# Runs from the source tree (PYTHONPATH), so nothing of this project is
# installed.  Third-party packages are installed only where missing, with
# whatever pip can reach on the machine (an index, a wheel cache); what cannot
# be installed is reported and the rest still runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}
say() { echo "== $*"; }

say "$(date -u '+%Y-%m-%d %H:%M UTC') $(git rev-parse --short HEAD 2>/dev/null || echo '(no git)')"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || say "nvidia-smi failed"
cuda_major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' | head -1)
cuda_major=${cuda_major:-12}
if [ "$cuda_major" -ge 13 ]; then
    cupy_pkg=cupy-cuda13x; headers_pkg=nvidia-cuda-runtime; nvrtc_pkg=nvidia-cuda-nvrtc
else
    cupy_pkg=cupy-cuda12x; headers_pkg=nvidia-cuda-runtime-cu12; nvrtc_pkg=nvidia-cuda-nvrtc-cu12
fi

need() {  # need MODULE PACKAGE: install PACKAGE unless MODULE imports
    "$PY" -c "import $1" 2>/dev/null && return 0
    say "installing $2"
    timeout 30 "$PY" -m pip install -q "$2" || say "could not install $2"
}
need numpy numpy
need numba numba
need pytest pytest
need hypothesis hypothesis
need cupy "$cupy_pkg"
# NVRTC and the CUDA headers the kernels include (cuda_fp16.h): a toolkit or pip.
"$PY" -c "from cupy.cuda import nvrtc; nvrtc.getVersion()" 2>/dev/null || need __no_module__ "$nvrtc_pkg"
"$PY" -c "from adapool_core import _cuda; assert _cuda.cuda_include_dirs()" 2>/dev/null || need __no_module__ "$headers_pkg"
"$PY" - <<'EOF'
import cupy, numba, numpy
from adapool_core import _cuda
print("== CuPy", cupy.__version__, "| Numba", numba.__version__, "| NumPy", numpy.__version__,
      "| CUDA headers", _cuda.cuda_include_dirs())
EOF

say "GPU tests"
ADAPOOL_REQUIRE_GPU=1 timeout 210 "$PY" -m pytest -q -m gpu -rs -p no:cacheprovider tests/test_cuda_gpu.py tests/test_cuda_kernels.py
tests_status=$?

# compute-sanitizer over two GPU tests (deterministic results: forward and
# backward of every method; the stream test), not the 2^31-element one, within
# the budget: memcheck
# (out-of-bounds and misaligned accesses, CUDA API errors) and racecheck
# (shared-memory hazards; the kernels use no shared memory, so it must be
# clean).  CuPy's memory pool is off so that each array is its own
# cudaMalloc: an overrun cannot land unseen in a neighbour's pooled block.
sanitizer=$(command -v compute-sanitizer || true)
for dir in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    if [ -z "$sanitizer" ] && [ -n "$dir" ] && [ -x "$dir/bin/compute-sanitizer" ]; then
        sanitizer="$dir/bin/compute-sanitizer"
    fi
done
if [ -z "$sanitizer" ]; then  # pip's nvidia-cuda-sanitizer-api wheel, if installed
    sanitizer=$("$PY" -c 'import glob, os, nvidia
found = [p for r in nvidia.__path__ for p in glob.glob(r + "/**/compute-sanitizer", recursive=True)
         if os.path.isfile(p) and os.access(p, os.X_OK)]
print(found[0] if found else "")' 2>/dev/null || true)
fi
sanitizer_status=0
if [ -n "$sanitizer" ]; then
    for tool in memcheck racecheck; do
        say "compute-sanitizer --tool $tool ($sanitizer)"
        ADAPOOL_REQUIRE_GPU=1 timeout 75 "$sanitizer" --tool "$tool" --error-exitcode 99 "$PY" -c \
            'import sys, cupy, pytest; cupy.cuda.set_allocator(None); sys.exit(pytest.main(["-q", "-x", "-m", "gpu and not slow", "-k", "deterministic or stream", "-p", "no:cacheprovider", "tests/test_cuda_gpu.py"]))'
        status=$?
        say "compute-sanitizer $tool exit status $status"
        [ "$status" -ne 0 ] && sanitizer_status=$status
    done
else
    say "compute-sanitizer not found (PATH, CUDA_HOME, CUDA_PATH, /usr/local/cuda, pip nvidia wheels): not run"
fi

say "GPU benchmark"
timeout 90 "$PY" -m adapool_core bench --device cuda --budget 0.3
bench_status=$?

say "tests exit status $tests_status, compute-sanitizer exit status $sanitizer_status, benchmark exit status $bench_status"
[ "$tests_status" -eq 0 ] && [ "$sanitizer_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
