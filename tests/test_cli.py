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
    assert "demo" in done.stdout and "bench" in done.stdout


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
