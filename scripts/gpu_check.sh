#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the GPU tests (CuPy path against Numba) and
# the GPU benchmark (adapool bench --device cuda), in under 8 minutes.
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
    timeout 120 "$PY" -m pip install -q "$2" || say "could not install $2"
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
ADAPOOL_REQUIRE_GPU=1 timeout 270 "$PY" -m pytest -q -m gpu -rs -p no:cacheprovider tests/test_cuda_gpu.py tests/test_cuda_kernels.py
tests_status=$?

say "GPU benchmark"
timeout 150 "$PY" -m adapool_core bench --device cuda --budget 0.5
bench_status=$?

say "tests exit status $tests_status, benchmark exit status $bench_status"
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
