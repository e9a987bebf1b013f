"""One name per concept: the gradient choice is ``mode=`` in every layer; the
adapters' ``grad=`` is a deprecated keyword-only alias that still works."""
import warnings

import numpy as np
import pytest

X = np.random.default_rng(7).standard_normal((1, 2, 6, 6)).astype(np.float32)


def _frameworks():
    out = []
    for name in ("torch", "jax"):
        try:
            __import__(name)
            out.append(name)
        except ImportError:
            pass
    return out


def _grad(framework, **kw):
    """The gradient of sum(edscwpool2d(x)) through the adapter, as NumPy."""
    if framework == "torch":
        import torch

        import adapool_core.torch as apt
        x = torch.tensor(X, requires_grad=True)
        apt.edscwpool2d(x, 2, **kw).sum().backward()
        return x.grad.numpy()
    import jax
    import jax.numpy as jnp

    import adapool_core.jax as apj
    return np.asarray(jax.grad(lambda x: apj.edscwpool2d(x, 2, **kw).sum())(jnp.asarray(X)))


@pytest.fixture(params=["torch", "jax"])
def framework(request):
    pytest.importorskip(request.param, reason=f"{request.param} is not installed")
    return request.param


def test_mode_is_canonical_and_silent(framework):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact, paper = _grad(framework, mode="exact"), _grad(framework, mode="paper")
    assert not np.allclose(exact, paper, rtol=1e-3)  # the two modes differ here, so the checks below can fail


def test_grad_alias_works_and_warns(framework):
    with pytest.warns(DeprecationWarning, match="mode="):
        aliased = _grad(framework, grad="paper")
    np.testing.assert_allclose(aliased, _grad(framework, mode="paper"), rtol=1e-6)
    assert not np.allclose(aliased, _grad(framework, mode="exact"), rtol=1e-3)


@pytest.mark.parametrize("mode", ["exact", "paper"])
def test_both_names_is_a_type_error(framework, mode):
    with pytest.raises(TypeError, match="edscwpool2d: got both mode=.* and its deprecated alias grad="):
        _grad(framework, mode=mode, grad="paper")


def test_a_bad_value_names_the_argument_given(framework):
    with pytest.raises(ValueError, match="mode: expected 'exact' or 'paper', got 'approx'"):
        _grad(framework, mode="approx")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="grad: expected 'exact' or 'paper'"):
        _grad(framework, grad="approx")


def test_array_level_backward_takes_mode():
    import inspect

    import adapool_core as ap
    for name in ap.__all__:
        if name.endswith("_backward") and "unpool" not in name:
            params = inspect.signature(getattr(ap, name)).parameters
            assert "mode" in params and "grad" not in params, name
