"""Flax (``flax.nnx``) pooling layers: ``AdaPool``, ``EDSCWPool``, ``EMPool``, ``IDWPool``.

Flax's pooling conventions (``flax.linen.avg_pool``): ``window_shape``,
``strides`` (default: 1 per dim, as in Flax), ``padding`` ``"VALID"``,
``"SAME"`` or one ``(lo, hi)`` pair per spatial dim (asymmetric pairs
allowed), channels-last ``(N, *S, C)`` inputs by default.  Padding cells are
not window members (the spec): a window is clipped to the input.

The layers run the XLA-native path (``adapool_core._jax_xla``): no host
callback, so they jit on any backend and export with ``jax.export``.
Flax is needed only by this module (``pip install flax``).

Example::

    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from adapool_core.flax import AdaPool
    >>> pool = AdaPool((2, 2), strides=(2, 2), out_shape=(4, 4), rngs=nnx.Rngs(0))
    >>> pool(jnp.ones((1, 8, 8, 3))).shape
    (1, 4, 4, 3)
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import jax
import jax.numpy as jnp
from flax import nnx

from . import _jax_xla

__all__ = ["AdaPool", "EDSCWPool", "EMPool", "IDWPool"]

Padding = Union[str, Sequence[Tuple[int, int]]]


def _pads(padding: Padding, in_size, window_shape, strides) -> tuple:
    """Explicit ``(lo, hi)`` pairs for Flax's padding argument, validated."""
    d = len(window_shape)
    if isinstance(padding, str):
        if padding == "VALID":
            return ((0, 0),) * d
        if padding == "SAME":  # as lax.padtype_to_pads: out = ceil(L / s)
            pairs = []
            for L, k, s in zip(in_size, window_shape, strides):
                total = max((-(-L // s) - 1) * s + k - L, 0)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding: expected 'VALID', 'SAME' or {d} (lo, hi) pairs, got {padding!r}")
    pairs = tuple(tuple(int(v) for v in pair) for pair in padding)
    if len(pairs) != d or any(len(p) != 2 for p in pairs):
        raise ValueError(f"padding: expected 'VALID', 'SAME' or {d} (lo, hi) pairs, got {padding!r}")
    for (lo, hi), k in zip(pairs, window_shape):
        if not (0 <= lo < k and 0 <= hi < k):  # else a window could hold no input cell
            raise ValueError(f"padding: expected 0 <= lo, hi < window size {tuple(window_shape)}, got {pairs}")
    return pairs


class _Pool(nnx.Module):
    method = "empool"

    def __init__(self, window_shape: Sequence[int], strides: Optional[Sequence[int]] = None,
                 padding: Padding = "VALID", channels_last: bool = True):
        self.window_shape = tuple(int(k) for k in window_shape)
        d = len(self.window_shape)
        if d not in (1, 2, 3) or any(k < 1 for k in self.window_shape):
            raise ValueError(f"window_shape: expected 1 to 3 positive sizes, got {window_shape!r}")
        self.strides = (1,) * d if strides is None else tuple(int(s) for s in strides)
        if len(self.strides) != d or any(s < 1 for s in self.strides):
            raise ValueError(f"strides: expected {d} positive ints, got {strides!r}")
        self.padding = padding
        self.channels_last = channels_last

    def _beta(self):
        return None

    def __call__(self, x: jax.Array) -> jax.Array:
        d = len(self.window_shape)
        if x.ndim not in (d + 1, d + 2):
            raise ValueError(f"x: expected {d + 1}-D or {d + 2}-D (batched) input, got shape {x.shape}")
        if self.channels_last:
            x = jnp.moveaxis(x, -1, x.ndim - d - 1)
        in_size = x.shape[-d:]
        pads = _pads(self.padding, in_size, self.window_shape, self.strides)
        if any(L + lo + hi < k for L, (lo, hi), k in zip(in_size, pads, self.window_shape)):
            raise ValueError(f"window_shape: expected at most the padded input size, got {self.window_shape} "
                             f"for spatial size {in_size} and padding {pads}")
        y = _jax_xla.pool(self.method, x, self._beta(), self.window_shape, self.strides, pads)
        return jnp.moveaxis(y, y.ndim - d - 1, -1) if self.channels_last else y


class EDSCWPool(_Pool):
    """eDSCW pooling: weights ``softmax(dsc(x_i, mean))``.

    Parameters
    ----------
    window_shape : sequence of int
        Window size per spatial dim (1 to 3 dims).
    strides : sequence of int, optional
        Step per dim; default 1 (Flax's convention).
    padding : {"VALID", "SAME"} or sequence of (int, int)
        ``(lo, hi)`` per dim, each below the window size; padding cells are not window members.
    channels_last : bool
        ``(N, *S, C)`` input (default) or ``(N, C, *S)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from adapool_core.flax import EDSCWPool
    >>> EDSCWPool((2, 2), strides=(2, 2))(jnp.ones((1, 8, 8, 3))).shape
    (1, 4, 4, 3)
    """

    method = "edscwpool"


class EMPool(_Pool):
    """eM pooling (SoftPool): weights ``softmax(x_i)``.  Parameters as for :class:`EDSCWPool`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from adapool_core.flax import EMPool
    >>> EMPool((3,), strides=(2,), padding="SAME")(jnp.ones((2, 9, 4))).shape
    (2, 5, 4)
    """

    method = "empool"


class IDWPool(_Pool):
    """IDW pooling: weights proportional to ``1 / |x_i - mean|``.  Parameters as for :class:`EDSCWPool`.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from adapool_core.flax import IDWPool
    >>> IDWPool((2, 2), strides=(2, 2), padding=((0, 1), (0, 1)))(jnp.ones((1, 7, 7, 3))).shape
    (1, 4, 4, 3)
    """

    method = "idwpool"


class AdaPool(_Pool):
    """adaPool: ``b * eDSCW + (1 - b) * eM`` per window, ``b = clamp(beta, 0, 1)``, ``beta`` trainable.

    Parameters
    ----------
    window_shape, strides, padding, channels_last
        As for :class:`EDSCWPool`.
    out_shape : sequence of int, optional
        The spatial output size: ``beta`` is one value per output location
        (the paper's choice).  Without it, ``beta`` is one value per channel
        (``num_channels`` required) or, with neither, a single scalar.
    num_channels : int, optional
        Channels, for a per-channel ``beta``.
    beta_init : float
        Initial value of ``beta`` (default 0.5).
    rngs : nnx.Rngs, optional
        Accepted for Flax's constructor convention; ``beta`` is initialised to a constant.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> from adapool_core.flax import AdaPool
    >>> pool = AdaPool((2, 2), strides=(2, 2), num_channels=3)
    >>> pool.beta[...].shape, pool(jnp.ones((1, 8, 8, 3))).shape
    ((1, 1, 3), (1, 4, 4, 3))
    """

    method = "adapool"

    def __init__(self, window_shape: Sequence[int], strides: Optional[Sequence[int]] = None,
                 padding: Padding = "VALID", channels_last: bool = True, *,
                 out_shape: Optional[Sequence[int]] = None, num_channels: Optional[int] = None,
                 beta_init: float = 0.5, rngs: Optional[nnx.Rngs] = None):
        super().__init__(window_shape, strides, padding, channels_last)
        d = len(self.window_shape)
        if out_shape is not None:
            shape = tuple(int(v) for v in out_shape) + ((1,) if channels_last else ())
        elif num_channels is not None:
            shape = (1,) * d + (int(num_channels),) if channels_last else (int(num_channels),) + (1,) * d
        else:
            shape = ()
        self.beta = nnx.Param(jnp.full(shape, beta_init, jnp.float32))

    def _beta(self):
        beta = self.beta[...]
        if self.channels_last and beta.ndim:  # (.., C) -> channels-first broadcasting for the core
            d = len(self.window_shape)
            beta = beta.reshape((1,) * (d + 1 - beta.ndim) + beta.shape)
            beta = jnp.moveaxis(beta, -1, 0)
        return beta
