"""adapool-core: adaPool (Stergiou & Poppe, IEEE TIP 2023) and its family on
NumPy arrays (Numba, CPU) and CuPy arrays (CUDA).

Public functions, for d in 1, 2, 3:

- ``adapool{d}d(x, beta, kernel_size=2, stride=None, padding=0, ceil_mode=False, return_mask=False, *, data_format="channels_first")``
- ``edscwpool{d}d``, ``empool{d}d`` (alias ``softpool{d}d``), ``idwpool{d}d``: the same minus ``beta``
- ``{name}_backward(grad_out, x, ...)`` for each, ``mode="exact"`` or ``"paper"``
- ``adaunpool{d}d(y, w, kernel_size, stride=None, padding=0, output_size=None, normalize="sum")``
  and ``adaunpool{d}d_backward``
- ``adaptive_{method}{d}d(x, [beta,] output_size, return_mask=False)`` and their ``_backward``;
  ``adaptive_adaunpool{d}d(y, w, input_size, normalize="sum")`` and its ``_backward``

The math is in ``docs/math.md``; the contract in ``spec.md``.
"""
from ._api import FUNCTIONS as _FUNCTIONS

globals().update(_FUNCTIONS)

__all__ = sorted(_FUNCTIONS)
from ._version import __version__  # noqa: E402,F401
