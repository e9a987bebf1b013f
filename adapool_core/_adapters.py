"""The public function table of a framework adapter (``torch``, ``jax``).

An adapter supplies two private implementations, ``pool(method, d, x, beta,
kernel_size, stride, padding, ceil_mode, return_mask, grad)`` and
``unpool(d, y, w, kernel_size, stride, padding, output_size, normalize)``;
this generates the named functions with the array-level signatures (plus
``grad``) and docstrings, for every method and rank.  ``options`` adds
keyword-only arguments an adapter supports (``{name: default}``, such as
``data_format``), passed to its implementations by keyword.
"""
from __future__ import annotations

import inspect

from ._api import FUNCTIONS, METHODS, RANKS


def _with_options(fn, options: dict):
    """Give ``fn(..., **kw)`` the keyword-only parameters ``options`` in its signature."""
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params += [inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=v) for k, v in options.items()]
    fn.__signature__ = sig.replace(parameters=params)
    return fn


def _options(name: str, given: dict, options: dict) -> dict:
    unknown = sorted(set(given) - set(options))
    if unknown:
        raise TypeError(f"{name}() got an unexpected keyword argument {unknown[0]!r}")
    return {**options, **given}


def _pool_function(pool, method: str, d: int, options: dict):
    name = f"{method}{d}d"
    if method == "adapool":
        def fn(x, beta, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, grad="exact",
               **kw):
            return pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask, grad,
                        **_options(name, kw, options))
    else:
        def fn(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, grad="exact", **kw):
            return pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask, grad,
                        **_options(name, kw, options))
    return _with_options(fn, options)


def _unpool_function(unpool, d: int, options: dict):
    def fn(y, w, kernel_size=2, stride=None, padding=0, output_size=None, normalize="sum", **kw):
        return unpool(d, y, w, kernel_size, stride, padding, output_size, normalize,
                      **_options(f"adaunpool{d}d", kw, options))
    return _with_options(fn, options)


def adapter_functions(module: str, pool, unpool, pool_note: str, unpool_note: str, options=None) -> dict:
    """``{name: function}`` for ``module``: every pooling, adaUnPool and the ``softpool`` aliases."""
    options = dict(options or {})
    table = {}
    for d in RANKS:
        made = {f"{method}{d}d": (_pool_function(pool, method, d, options), pool_note) for method in METHODS}
        made[f"adaunpool{d}d"] = (_unpool_function(unpool, d, options), unpool_note)
        for name, (fn, note) in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = module
            fn.__doc__ = (FUNCTIONS[name].__doc__ or "") + f"\n    {note}\n"
            table[name] = fn
        table[f"softpool{d}d"] = table[f"empool{d}d"]
    return table
