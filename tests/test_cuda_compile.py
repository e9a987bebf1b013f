"""Proof 1: every kernel template instance compiles through NVRTC for
compute_75, compute_80 and compute_90, from exactly the source and options
the CuPy path compiles (no GPU needed).  Plus the parts of the CUDA backend
that work without a GPU: optional CuPy, error messages, packaging."""
import os
import subprocess
import sys
import zipfile

import pytest

from adapool_core import _cuda
from support import cuda_check_unavailable as unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def nvrtc_module():
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()  # loads libnvrtc
    except Exception as exc:  # ImportError, or the NVRTC library missing
        unavailable(f"NVRTC through CuPy unavailable ({exc}): pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12")
    if not _cuda.cuda_include_dirs():
        unavailable("cuda_fp16.h not found: pip install nvidia-cuda-runtime-cu12")
    return nvrtc


@pytest.mark.parametrize("arch", ["compute_75", "compute_80", "compute_90"])
def test_every_kernel_instance_compiles(arch):
    nvrtc = nvrtc_module()
    program = nvrtc.createProgram(_cuda.kernel_source(), _cuda.SOURCE_NAME, [], [])
    try:
        for expr in _cuda.name_expressions():
            nvrtc.addNameExpression(program, expr)
        try:
            nvrtc.compileProgram(program, list(_cuda.compile_options()) + [f"-arch={arch}"])
        except nvrtc.NVRTCError:
            pytest.fail(f"NVRTC ({arch}) failed:\n{nvrtc.getProgramLog(program)}")
        ptx = nvrtc.getPTX(program)
        ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
        assert f".target sm_{arch.split('_')[1]}" in ptx
        lowered = [nvrtc.getLoweredName(program, expr) for expr in _cuda.name_expressions()]
        assert len(set(lowered)) == len(_cuda.KERNELS) * len(_cuda.SCALAR_TYPES)
        for name in lowered:
            assert f".entry {name}(" in ptx, name
    finally:
        nvrtc.destroyProgram(program)


def test_name_expressions_cover_every_kernel_and_dtype():
    exprs = _cuda.name_expressions()
    assert len(exprs) == 16
    assert _cuda.name_expression("pool_backward", "float16") == "adapool::pool_backward<__half>"
    assert _cuda.name_expression("unpool_forward", "float64") in exprs
    with pytest.raises(TypeError, match="int32"):
        _cuda.name_expression("pool_forward", "int32")


def test_launch_config_caps_the_grid():
    assert _cuda.launch_config(0) == (0, _cuda.BLOCK)
    assert _cuda.launch_config(1) == (1, _cuda.BLOCK)
    assert _cuda.launch_config(_cuda.BLOCK + 1) == (2, _cuda.BLOCK)
    assert _cuda.launch_config(2**40) == (_cuda.MAX_BLOCKS, _cuda.BLOCK)


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)


def test_importing_the_package_does_not_import_cupy():
    done = run_python("import sys, numpy as np, adapool_core as ap; ap.adapool2d(np.ones((1, 4, 4)), 0.5); "
                      "print('cupy' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_gpu_path_without_cupy_says_what_to_install():
    # sys.modules[name] = None makes `import cupy` raise ImportError.
    done = run_python("import sys; sys.modules['cupy'] = None\n"
                      "from adapool_core import _cuda\n"
                      "try:\n    _cuda.xp\nexcept ImportError as e:\n    print(e)")
    assert done.returncode == 0, done.stderr
    assert "pip install adapool-core[cuda12]" in done.stdout and "[cuda13]" in done.stdout


def test_gpu_path_without_a_gpu_says_so():
    pytest.importorskip("cupy", reason="CuPy not installed")
    import cupy

    try:
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is visible: this checks the message where none is")
    except Exception:
        pass
    done = run_python("from adapool_core import _cuda\n"
                      "try:\n    _cuda.xp\nexcept RuntimeError as e:\n    print(e)")
    assert done.returncode == 0, done.stderr
    assert "needs an NVIDIA GPU" in done.stdout


def test_cuda_sources_found_from_the_source_tree():
    """One lookup, adapool_core/cuda: in a checkout, the link to the top-level cuda/."""
    from pathlib import Path

    assert _cuda.source_dir() == Path(ROOT, "adapool_core", "cuda")
    assert _cuda.source_dir().resolve() == Path(ROOT, "cuda").resolve()
    assert "namespace adapool" in _cuda.kernel_source()


def test_wheel_ships_the_cuda_sources(tmp_path):
    """A non-editable install gets the kernels inside the package (adapool_core/cuda)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                           "-w", str(tmp_path), ROOT], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{done.stderr}")
    wheel, = tmp_path.glob("adapool_core-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"adapool_core/cuda/{_cuda.SOURCE_NAME}" in names
    assert "adapool_core/_cuda.py" in names
    assert "adapool_core/_version.py" in names and "adapool_core/cli/__init__.py" in names
    assert not [n for n in names if n.endswith(".h")], "the emulation header is a test file"
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert sorted(r.split()[1].split(">")[0] for r in requires) == ["numba", "numpy"]
