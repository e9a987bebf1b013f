"""Shared helpers of the CUDA tests: tool checks, backend swapping, the cases."""
from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from adapool_core import _ops

# CI sets this so that a missing tool fails the CUDA proofs instead of skipping them.
REQUIRED = os.environ.get("ADAPOOL_REQUIRE_CUDA_CHECKS") == "1"


def unavailable(reason: str):
    """Skip (fail under ADAPOOL_REQUIRE_CUDA_CHECKS=1) when a tool a proof needs is missing."""
    if REQUIRED:
        pytest.fail(f"{reason} (ADAPOOL_REQUIRE_CUDA_CHECKS=1: the CUDA proofs must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def using_backend(module):
    """Run the public functions on ``module`` (e.g. the emulated CUDA backend) for NumPy arrays."""
    original = _ops.backend_for
    _ops.backend_for = lambda native: module
    try:
        yield
    finally:
        _ops.backend_for = original


# Input shape per d, and the window configurations every method is checked on.
SHAPES = {1: (2, 3, 11), 2: (2, 3, 9, 8), 3: (1, 2, 7, 6, 5)}
WINDOWS = {
    "overlap_pad_ceil": dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "disjoint_uncovered": dict(kernel_size=2, stride=2, padding=0, ceil_mode=False),
    "rect_stride1": dict(kernel_size=(3, 2, 2), stride=(1, 2, 1), padding=(1, 0, 1), ceil_mode=False),
}


def window_kwargs(name: str, d: int) -> dict:
    """The window configuration ``name`` for rank d (tuples cut to their last d entries)."""
    return {k: (v[-d:] if isinstance(v, tuple) else v) for k, v in WINDOWS[name].items()}
