"""Type checkers and editors see the public API: a user script passes
``mypy --strict`` (and a wrong call fails it), and jedi completes the names."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("mypy", reason="mypy is not installed")

ARRAY_SCRIPT = """
import numpy as np
import numpy.typing as npt

import adapool_core as ap
from adapool_core import adapool2d, adaunpool2d, softpool1d

x: npt.NDArray[np.float32] = np.ones((1, 3, 8, 8), dtype=np.float32)
y: npt.NDArray[np.float32] = adapool2d(x, 0.5, kernel_size=2, stride=(2, 2), padding=0, ceil_mode=False)
y2, w = adapool2d(x, np.full((4, 4), 0.5), 2, return_mask=True)
y3, w3 = adapool2d(x, 0.5, 2, None, 0, False, True)
x_hat: npt.NDArray[np.float32] = adaunpool2d(y2, w, 2, normalize="window")
grad_x, grad_beta = ap.adapool2d_backward(np.ones_like(y), x, 0.5, mode="paper")
grad_y: npt.NDArray[np.float32] = ap.adaunpool2d_backward(x_hat, y2, w, 2)
g3: npt.NDArray[np.float64] = ap.empool3d_backward(np.ones((1, 1, 2, 2, 2)), np.ones((1, 1, 4, 4, 4)))
s: npt.NDArray[np.float64] = softpool1d(np.ones((2, 8)), 2)
either = ap.idwpool2d(x, return_mask=bool(np.random.rand() > 0.5))
version: str = ap.__version__
"""

TORCH_SCRIPT = """
import torch
import adapool_core.torch as apt

t = torch.ones(1, 3, 8, 8)
ty: torch.Tensor = apt.adapool2d(t, 0.5, mode="exact")
ty2, tw = apt.empool2d(t, 2, return_mask=True)
tu: torch.Tensor = apt.adaunpool2d(ty2, tw, 2)
pool = apt.AdaPool2d(2)
out = pool(t)
assert isinstance(out, torch.Tensor)
back = apt.AdaUnpool2d(2)(ty2, tw)
layer: torch.nn.Module = apt.SoftPool2d(2)
tcl: torch.Tensor = apt.idwpool1d(torch.ones(2, 8, 3), 2, data_format="channels_last")
tb: torch.Tensor = apt.adapool3d(torch.ones(1, 2, 4, 4, 4), torch.full((2, 2, 2), 0.5), 2, grad="paper")
pool_cl = apt.AdaPool2d(2, stride=1, padding=1, beta_shape="channel", data_format="channels_last")
unpool_cl = apt.AdaUnpool1d(2, normalize="window", data_format="channels_last")
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2))
replaced: int = apt.replace_pooling(model, "em", on_unsupported="skip", mode="paper")
"""

JAX_SCRIPT = """
import jax
import jax.numpy as jnp
import adapool_core.jax as apj

jx = jnp.ones((1, 3, 8, 8))
jy: jax.Array = apj.adapool2d(jx, 0.5, mode="paper")
jy2, jw = apj.edscwpool2d(jx, return_mask=True)
ju: jax.Array = apj.adaunpool2d(jy2, jw, kernel_size=2)
jcl: jax.Array = apj.empool1d(jnp.ones((2, 8, 3)), 2, data_format="channels_last", implementation="xla")
jgx, jgb = apj.adapool2d(jx, 0.5, 2, return_mask=True, implementation="callback")
"""


def _frameworks():
    parts = [ARRAY_SCRIPT]
    for name, script in (("torch", TORCH_SCRIPT), ("jax", JAX_SCRIPT)):
        try:
            __import__(name)
        except ImportError:
            continue  # the array part still runs; the missing framework is not checked
        parts.append(script)
    return "\n".join(textwrap.dedent(p) for p in parts)


def _mypy(tmp_path, source):
    script = tmp_path / "user_script.py"
    script.write_text(source)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
         "--no-error-summary", "--hide-error-context", script.name],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    errors = [line for line in result.stdout.splitlines() if line.startswith(f"{script.name}:")]
    return result, errors


def test_user_script_passes_mypy_strict(tmp_path):
    # A wrong call appended: proves mypy sees the stubs (an untyped module would accept it).
    source = _frameworks() + "\nbad = ap.empool1d_backward(np.ones((1, 1, 2)), np.ones((1, 1, 4)), mode='approx')\n"
    result, errors = _mypy(tmp_path, source)
    last = len(source.splitlines())
    script_errors = [e for e in errors if not e.startswith(f"user_script.py:{last}:")]
    assert script_errors == [], result.stdout + result.stderr
    assert any(e.startswith(f"user_script.py:{last}: error:") and '"mode"' in e for e in errors), \
        result.stdout + result.stderr


def test_adapter_wrong_calls_fail_mypy_strict(tmp_path):
    # The adapters' keyword-only layout and path arguments are typed as literals in their stubs.
    pytest.importorskip("torch", reason="torch is not installed")
    pytest.importorskip("jax", reason="jax is not installed")
    source = textwrap.dedent(TORCH_SCRIPT) + textwrap.dedent(JAX_SCRIPT) + (
        "\nbad_t = apt.empool2d(t, 2, data_format='NHWC')"
        "\nbad_j = apj.empool2d(jx, 2, implementation='gpu')\n")
    result, errors = _mypy(tmp_path, source)
    last = len(source.splitlines())
    assert [e for e in errors if not e.startswith((f"user_script.py:{last - 1}:", f"user_script.py:{last}:"))] \
        == [], result.stdout + result.stderr
    # Overloaded: mypy reports "No overload variant ... matches" (valid calls but for the literal).
    for line, name in ((last - 1, "empool2d"), (last, "empool2d")):
        assert any(e.startswith(f"user_script.py:{line}: error:") and name in e for e in errors), \
            result.stdout + result.stderr


jedi = pytest.importorskip("jedi", reason="jedi is not installed")


def _completions(source):
    project = jedi.Project(str(ROOT), added_sys_path=[str(ROOT)])
    lines = source.splitlines()
    script = jedi.Script(source, project=project)
    return {c.name for c in script.complete(len(lines), len(lines[-1]))}


def test_jedi_completes_array_level_names():
    names = _completions("import adapool_core\nadapool_core.ada")
    assert {"adapool1d", "adapool2d", "adapool3d", "adaunpool2d", "adapool2d_backward"} <= names


def test_jedi_completes_torch_names():
    pytest.importorskip("torch", reason="torch is not installed")
    names = _completions("import adapool_core.torch as apt\napt.Ada")
    assert {"AdaPool2d", "AdaUnpool2d"} <= names


def test_jedi_completes_jax_names():
    pytest.importorskip("jax", reason="jax is not installed")
    names = _completions("from adapool_core import jax as apj\napj.")
    assert {"adapool2d", "empool3d", "softpool1d", "adaunpool2d"} <= names


def test_jedi_knows_the_signature():
    project = jedi.Project(str(ROOT), added_sys_path=[str(ROOT)])
    source = "from adapool_core import adapool2d\nadapool2d("
    signatures = jedi.Script(source, project=project).get_signatures(2, len("adapool2d("))
    assert signatures, "jedi found no signature for adapool2d"
    params = [p.name for p in signatures[0].params]
    assert params[:3] == ["x", "beta", "kernel_size"] and "return_mask" in params
