"""Every public name of the three modules has a NumPy-style docstring whose
Examples run.  The public functions are generated (their ``__globals__`` are
``_api``'s or ``_adapters``'s), so pytest's --doctest-modules would miss
them: this walks each module's ``__all__`` instead."""
import doctest
import importlib

import pytest

SECTIONS = ("Parameters", "Returns", "Shape", "Raises", "Examples")
MODULES = [
    pytest.param("adapool_core", id="array"),
    pytest.param("adapool_core.torch", id="torch"),
    pytest.param("adapool_core.jax", id="jax"),
]


def _public(module_name):
    framework = module_name.rpartition(".")[2]
    if framework in ("torch", "jax", "flax"):
        pytest.importorskip(framework, reason=f"{framework} is not installed")
    module = importlib.import_module(module_name)
    return [(f"{module_name}.{name}", getattr(module, name)) for name in sorted(module.__all__)]


def _has_section(doc, section):
    lines = [line.strip() for line in doc.splitlines()]
    return any(a == section and b == "-" * len(section) for a, b in zip(lines, lines[1:]))


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_has_every_section(module_name):
    missing = [f"{name}: {section}" for name, obj in _public(module_name)
               for section in SECTIONS if not _has_section(obj.__doc__ or "", section)]
    assert missing == [], f"{len(missing)} missing docstring sections:\n" + "\n".join(missing)


# Flax's layers are explicit classes (no stub); their examples run too, with jax arrays.
@pytest.mark.parametrize("module_name", MODULES + [pytest.param("adapool_core.flax", id="flax")])
def test_every_public_example_runs(module_name):
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    without, ran = [], 0
    for name, obj in _public(module_name):
        tests = [t for t in finder.find(obj, name, globs={}) if t.examples]
        if not tests:
            without.append(name)
        for test in tests:
            ran += len(test.examples)
            runner.run(test)
    results = runner.summarize(verbose=False)
    assert without == [], f"public names without an example: {without}"
    assert ran > 0 and results.failed == 0, f"{results.failed} of {results.attempted} examples failed (above)"


def test_adapter_examples_use_their_own_arrays():
    pytest.importorskip("torch", reason="torch is not installed")
    for name, obj in _public("adapool_core.torch"):
        assert "torch." in obj.__doc__ and "np." not in obj.__doc__, name
    pytest.importorskip("jax", reason="jax is not installed")
    for name, obj in _public("adapool_core.jax"):
        assert "jnp." in obj.__doc__ and "np.ones" not in obj.__doc__.replace("jnp.ones", ""), name
