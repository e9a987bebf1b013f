"""The committed .pyi stubs are what the generator writes from the runtime objects."""
import importlib
from pathlib import Path

import pytest

from adapool_core import _stubgen

ROOT = Path(__file__).resolve().parent.parent


def _module_or_skip(name):
    framework = name.rpartition(".")[2]
    if framework in ("torch", "jax"):
        pytest.importorskip(framework, reason=f"{framework} is not installed")
    return importlib.import_module(name)


@pytest.mark.parametrize("name", _stubgen.MODULES)
def test_committed_stub_is_current(name):
    module = _module_or_skip(name)
    path = _stubgen.stub_path(module)
    assert path.exists(), f"{path} is missing; run `{_stubgen.COMMAND}`"
    assert path.read_text() == _stubgen.render(name), f"{path} is stale; run `{_stubgen.COMMAND}`"


@pytest.mark.parametrize("name", _stubgen.MODULES)
def test_stub_declares_every_public_name(name):
    module = _module_or_skip(name)
    text = _stubgen.stub_path(module).read_text()
    for public in module.__all__:
        assert (f"def {public}(" in text or f"class {public}(" in text or f"{public} = " in text), \
            f"{name}.{public} is not declared in its stub"


def test_py_typed_is_shipped():
    assert (ROOT / "adapool_core" / "py.typed").exists()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"py.typed"' in pyproject and '"*.pyi"' in pyproject, "py.typed and the stubs must be package data"


def test_check_mode_reports_a_stale_stub(tmp_path, monkeypatch, capsys):
    module = importlib.import_module("adapool_core")
    stale = tmp_path / "__init__.pyi"
    stale.write_text("# old\n")
    monkeypatch.setattr(_stubgen, "MODULES", ("adapool_core",))
    monkeypatch.setattr(_stubgen, "stub_path", lambda m: stale if m is module else None)
    assert _stubgen.main(["--check"]) == 1
    assert _stubgen.COMMAND in capsys.readouterr().out
    assert stale.read_text() == "# old\n"  # --check writes nothing


def test_return_mask_true_is_typed_as_a_pair():
    text = _stubgen.render("adapool_core")
    assert ("def adapool2d(x: ArrayT, beta: Beta, kernel_size: Size = 2, stride: Optional[Size] = None, "
            "padding: Size = 0, ceil_mode: bool = False, *, return_mask: Literal[True], "
            "data_format: DataFormat = 'channels_first') -> "
            "tuple[ArrayT, ArrayT]: ...") in text
