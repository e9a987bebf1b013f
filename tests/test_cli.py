"""The command line's entry points, and ``adapool demo`` without its extra."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, *args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_python_m_adapool_core_lists_the_commands():
    done = run_python(None, "-m", "adapool_core", "--help")
    assert done.returncode == 0, done.stderr
    assert "demo" in done.stdout and "bench" in done.stdout and "compile" in done.stdout


def test_demo_without_its_extra_says_what_to_install(tmp_path):
    """Simulated: scikit-image and pillow not importable (None in sys.modules)."""
    code = ("import sys\n"
            "sys.modules.update(skimage=None, PIL=None)\n"
            "from adapool_core.cli import main\n"
            f"sys.exit(main(['demo', '--out', {str(tmp_path / 'out')!r}]))\n")
    done = run_python(code)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "scikit-image and pillow" in done.stderr
    assert 'pip install ".[demo]"' in done.stderr and "adapool-core[demo]" in done.stderr
    assert not (tmp_path / "out").exists()


def test_demo_names_only_the_missing_package():
    code = ("import sys\n"
            "sys.modules.update(PIL=None)\n"
            "from adapool_core.cli import demo\n"
            "try:\n    demo.require_dependencies()\nexcept demo.MissingDependencyError as err:\n    print(err)\n")
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert "needs pillow," in done.stdout and "scikit-image" not in done.stdout


def test_compile_fills_the_cache_that_a_new_process_loads():
    """``python -m adapool_core compile`` names every kernel it compiles; a
    later process's first call then loads the kernel from Numba's cache."""
    done = run_python(None, "-m", "adapool_core", "compile")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[")]
    total = int(lines[0].split("/")[1].split("]")[0])
    assert len(lines) == total
    for dtype in ("float32", "float64"):
        for method in ("adapool", "edscwpool", "empool", "idwpool"):
            for direction in ("forward", "backward"):
                assert any(f"{dtype} {method} {direction}" in line for line in lines), (dtype, method, direction)
    loaded = run_python(
        "import numpy as np, adapool_core as ap\n"
        "from adapool_core._cpu import planes\n"
        "ap.adapool2d(np.ones((1, 2, 8, 8), np.float32), 0.5, 2)\n"  # short rows: the plane kernels
        "print(sum(planes.plane_forward_chunk.stats.cache_hits.values()))")
    assert loaded.returncode == 0, loaded.stderr
    assert int(loaded.stdout.split()[-1]) >= 1
