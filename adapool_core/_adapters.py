"""The public function table of a framework adapter (``torch``, ``jax``).

An adapter supplies two private implementations, ``pool(method, d, x, beta,
kernel_size, stride, padding, ceil_mode, return_mask, grad)`` and
``unpool(d, y, w, kernel_size, stride, padding, output_size, normalize)``;
this generates the named functions with the array-level signatures (plus
``grad``) and docstrings, for every method and rank.
"""
from __future__ import annotations

from ._api import FUNCTIONS, METHODS, RANKS


def _pool_function(pool, method: str, d: int):
    if method == "adapool":
        def fn(x, beta, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, grad="exact"):
            return pool(method, d, x, beta, kernel_size, stride, padding, ceil_mode, return_mask, grad)
    else:
        def fn(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, grad="exact"):
            return pool(method, d, x, None, kernel_size, stride, padding, ceil_mode, return_mask, grad)
    return fn


def _unpool_function(unpool, d: int):
    def fn(y, w, kernel_size=2, stride=None, padding=0, output_size=None, normalize="sum"):
        return unpool(d, y, w, kernel_size, stride, padding, output_size, normalize)
    return fn


def adapter_functions(module: str, pool, unpool, pool_note: str, unpool_note: str) -> dict:
    """``{name: function}`` for ``module``: every pooling, adaUnPool and the ``softpool`` aliases."""
    table = {}
    for d in RANKS:
        made = {f"{method}{d}d": (_pool_function(pool, method, d), pool_note) for method in METHODS}
        made[f"adaunpool{d}d"] = (_unpool_function(unpool, d), unpool_note)
        for name, (fn, note) in made.items():
            fn.__name__ = fn.__qualname__ = name
            fn.__module__ = module
            fn.__doc__ = (FUNCTIONS[name].__doc__ or "") + f"\n    {note}\n"
            table[name] = fn
        table[f"softpool{d}d"] = table[f"empool{d}d"]
    return table
