"""The one place that validates arguments and computes pooling geometry.

Every public function, every backend (Numba, CUDA) and every adapter goes
through here, so an argument is checked once, the same way, with the same
message everywhere.  Backends receive a :class:`PoolGeometry` in canonical
3-D form: 1-D and 2-D problems are 3-D problems with leading singleton
spatial dims (kernel 1, stride 1, padding 0).

Errors name the argument, what was expected and what was given.  Types that
are wrong raise ``TypeError``; values and shapes that are wrong raise
``ValueError``.
"""
from __future__ import annotations

import functools
import itertools
import operator
from dataclasses import dataclass

import numpy as np

FLOAT_DTYPE_NAMES = ("float16", "bfloat16", "float32", "float64")


def _as_tuple(value, d: int, name: str) -> tuple[int, ...]:
    """An int or a d-sequence of ints, as a d-tuple of Python ints."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an int or a tuple of {d} ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return (int(value),) * d
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(
            f"{name}: expected an int or a tuple of {d} ints, got {type(value).__name__} {value!r}"
        ) from None
    if len(items) != d:
        raise ValueError(f"{name}: expected an int or a tuple of {d} ints, got {value!r} of length {len(items)}")
    out = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{name}: expected an int or a tuple of {d} ints, got {value!r}")
        try:
            out.append(operator.index(item))
        except TypeError:
            raise TypeError(f"{name}: expected an int or a tuple of {d} ints, got {value!r}") from None
    return tuple(out)


def pooled_size(length: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """PyTorch's output-size rule for one spatial dim (may be < 1; callers check)."""
    span = length + 2 * p - k
    if span < 0:
        return 0
    out = (-(-span // s) if ceil_mode else span // s) + 1
    # With ceil_mode the last window must start inside the input or the left
    # padding, never entirely in the right padding (PyTorch's rule).
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


def is_float_dtype(dtype) -> bool:
    """One of the floating dtypes we compute (bfloat16 is NumPy kind 'V', so go by name)."""
    return np.dtype(dtype).name in FLOAT_DTYPE_NAMES


def check_float_dtype(dtype, name: str) -> None:
    """TypeError unless dtype is one of the floating dtypes we compute."""
    dtype = np.dtype(dtype)
    if not is_float_dtype(dtype):
        raise TypeError(
            f"{name}: expected a floating dtype (float16, bfloat16, float32 or float64), got {dtype.name}"
        )


def compute_dtype(dtype) -> np.dtype:
    """The dtype the kernels compute in: float64 stays, everything else is float32.

    By name, so that a non-native byte order ('>f8') still computes in float64.
    """
    return np.dtype(np.float64) if np.dtype(dtype).name == "float64" else np.dtype(np.float32)


def check_bool(value, name: str) -> bool:
    """TypeError unless value is a bool (an int or a string is a likely mix-up of arguments)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _canonical_stride(s: int, length: int, p: int) -> int:
    """A stride past the padded input gives one window whatever its value;
    clamped so that kernels' index arithmetic (k + s - 1, o * s) stays far from int64 overflow."""
    return min(s, length + 2 * p)


def check_rank(shape: tuple[int, ...], d: int, func: str, name: str = "x") -> bool:
    """Whether the array is batched; ValueError unless rank is d+1 or d+2."""
    if len(shape) not in (d + 1, d + 2):
        raise ValueError(
            f"{name}: {func} expected a {d + 1}-D (unbatched, C, *spatial) or {d + 2}-D "
            f"(batched, N, C, *spatial) array, got {len(shape)}-D with shape {tuple(shape)}"
        )
    return len(shape) == d + 2


@dataclass(frozen=True)
class PoolGeometry:
    """Shapes of one pooling problem, user-facing and canonical 3-D.

    ``in_size``, ``kernel``, ``stride``, ``padding`` and ``out_size`` are 3-tuples
    (the canonical form every kernel works on); ``d`` says how many of their
    trailing entries are real.
    """

    d: int
    batched: bool
    n: int
    c: int
    in_size: tuple[int, int, int]
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    out_size: tuple[int, int, int]

    @property
    def nc(self) -> int:
        return self.n * self.c

    @property
    def lead(self) -> tuple[int, ...]:
        """Leading (batch, channel) dims as the caller sees them."""
        return (self.n, self.c) if self.batched else (self.c,)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.lead + self.in_size[3 - self.d:]

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.lead + self.out_size[3 - self.d:]

    @property
    def mask_shape(self) -> tuple[int, ...]:
        return self.out_shape + self.kernel[3 - self.d:]

    @property
    def in_shape3(self) -> tuple[int, int, int, int]:
        return (self.nc,) + self.in_size

    @property
    def out_shape3(self) -> tuple[int, int, int, int]:
        return (self.nc,) + self.out_size

    @property
    def mask_shape3(self) -> tuple[int, ...]:
        return (self.nc,) + self.out_size + self.kernel

    @property
    def phases(self) -> tuple[int, int, int]:
        """Per dim, how many consecutive windows can share an input cell.

        Windows whose output indices are congruent modulo this number never
        overlap, which lets the backward pass scatter race-free one phase
        class at a time.
        """
        return tuple(adaptive_phases(L, o) if s == 0 else -(-k // s)
                     for k, s, L, o in zip(self.kernel, self.stride, self.in_size, self.out_size))

    @property
    def adaptive(self) -> bool:
        """Adaptive windows (stride 0 in every real dim: see ``adaptive_geometry``)."""
        return self.stride[3 - self.d:] == (0,) * self.d

    def phase_classes(self, split_dims: int = 3) -> np.ndarray:
        """The phase classes of the race-free backward scatter, for every backend.

        One row per class, ``(ph1, ph2, ph3, c1, c2, c3, n1, n2, n3)``: the
        class holds the output indices ``o_d = ph_d + q * c_d``, ``0 <= q <
        n_d``, in each dim d.  Only the first ``split_dims`` dims are split
        (the CPU row kernels own whole last-axis rows and split two); an
        unsplit dim has ``ph = 0, c = 1, n = O``.  Rows in class order, last
        dim fastest.  Read only.
        """
        return _phase_classes(self, split_dims)


@functools.lru_cache(maxsize=64)
def _phase_classes(geom: PoolGeometry, split_dims: int) -> np.ndarray:
    steps = tuple(c if d < split_dims else 1 for d, c in enumerate(geom.phases))
    rows = []
    for phase in itertools.product(*(range(c) for c in steps)):
        sizes = tuple(-(-(o - ph) // c) for o, ph, c in zip(geom.out_size, phase, steps))
        rows.append(phase + steps + sizes)
    table = np.array(rows, dtype=np.int64).reshape(-1, 9)
    table.flags.writeable = False
    return table


def _window_args(d: int, kernel_size, stride, padding):
    """Validated d-tuples (kernel, stride, padding); stride defaults to the kernel."""
    k = _as_tuple(kernel_size, d, "kernel_size")
    s = k if stride is None else _as_tuple(stride, d, "stride")
    p = _as_tuple(padding, d, "padding")
    if any(v < 1 for v in k):
        raise ValueError(f"kernel_size: expected every entry >= 1, got {k}")
    if any(v < 1 for v in s):
        raise ValueError(f"stride: expected every entry >= 1 (positive), got {s}")
    if any(v < 0 or v > kk // 2 for v, kk in zip(p, k)):
        raise ValueError(
            f"padding: expected 0 <= padding <= kernel_size // 2 = {tuple(kk // 2 for kk in k)}, got {p}"
        )
    return k, s, p


def _canonical(lead, batched: bool, in_size, k, s, p, out_size) -> PoolGeometry:
    """The canonical 3-D geometry: leading singleton dims with kernel 1, stride 1, padding 0."""
    n, c = (tuple(lead) if batched else (1,) + tuple(lead))
    d = len(in_size)
    pad3 = (1,) * (3 - d)
    return PoolGeometry(
        d=d,
        batched=batched,
        n=n,
        c=c,
        in_size=pad3 + tuple(in_size),
        kernel=pad3 + tuple(k),
        stride=pad3 + tuple(_canonical_stride(ss, L, pp) for ss, L, pp in zip(s, in_size, p)),
        padding=(0,) * (3 - d) + tuple(p),
        out_size=pad3 + tuple(out_size),
    )


def pool_geometry(shape, d: int, kernel_size, stride, padding, ceil_mode, func: str) -> PoolGeometry:
    """Validate the pooling arguments for an input of ``shape``."""
    shape = tuple(int(v) for v in shape)
    batched = check_rank(shape, d, func)
    k, s, p = _window_args(d, kernel_size, stride, padding)
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    spatial = shape[-d:]
    if any(length < 1 for length in spatial):
        # An empty dim would give windows with no cell (|R| = 0, a 0/0 mean).
        raise ValueError(f"x: expected every spatial size >= 1, got spatial size {spatial} (shape {shape})")
    for i, (length, kk, pp) in enumerate(zip(spatial, k, p)):
        if kk > length + 2 * pp:
            raise ValueError(
                f"kernel_size: expected at most the padded input size {tuple(L + 2 * q for L, q in zip(spatial, p))} "
                f"in every dim, got {k} (dim {i} of input spatial size {spatial}, padding {p})"
            )
    # Every size is >= 1 here: the check above (o < 1 exactly when the kernel is larger than the
    # padded input) raised for kernel_size, naming it, the expected bound and the given value.
    out = tuple(pooled_size(L, kk, ss, pp, bool(ceil_mode)) for L, kk, ss, pp in zip(spatial, k, s, p))
    return _canonical(shape[:-d], batched, spatial, k, s, p, out)


def unpool_geometry(y_shape, w_shape, d: int, kernel_size, stride, padding, output_size, func: str,
                    size_name: str = "output_size") -> PoolGeometry:
    """Geometry of adaUnPool: the pooling that produced ``y`` and ``w``.

    ``output_size`` (the unpooled spatial size, optionally with leading dims
    as in PyTorch's MaxUnpool, where they must be ``y``'s) resolves which
    input size the pooling had; without it, the smallest size that gives
    ``y``'s shape with ceil_mode off.  ``size_name`` is the argument the size
    came from, for the error messages (the backward takes it from ``grad_out``).
    """
    y_shape = tuple(int(v) for v in y_shape)
    batched = check_rank(y_shape, d, func, name="y")
    k, s, p = _window_args(d, kernel_size, stride, padding)
    expected_w = y_shape + k
    if tuple(w_shape) != expected_w:
        raise ValueError(f"w: expected shape (*y.shape, *kernel_size) = {expected_w}, got {tuple(w_shape)}")
    pooled = y_shape[-d:]
    if output_size is None:
        size = tuple((o - 1) * ss + kk - 2 * pp for o, ss, kk, pp in zip(pooled, s, k, p))
    else:
        size = _unpool_size(output_size, y_shape, d, size_name)
    if any(v < 1 for v in size):
        raise ValueError(f"{size_name}: expected positive sizes, got {size}")
    for ceil_mode in (False, True):
        got = tuple(pooled_size(L, kk, ss, pp, ceil_mode) for L, kk, ss, pp in zip(size, k, s, p))
        if got == pooled and all(kk <= L + 2 * pp for L, kk, pp in zip(size, k, p)):
            break
    else:
        raise ValueError(
            f"{size_name}: expected a size that pools to y's spatial size {pooled} with kernel_size {k}, "
            f"stride {s}, padding {p}, got {size}"
        )
    return _canonical(y_shape[:-d], batched, size, k, s, p, pooled)


def _unpool_size(output_size, y_shape, d: int, name: str) -> tuple[int, ...]:
    """Spatial sizes from an int, d sizes, or ``len(y_shape)`` sizes whose leading ones are y's."""
    if isinstance(output_size, (int, np.integer, bool, np.bool_)):
        return _as_tuple(output_size, d, name)
    lead = y_shape[:-d]
    try:
        n = len(output_size)
    except TypeError:
        raise TypeError(
            f"{name}: expected an int or a tuple of {d} (or {len(y_shape)} with leading dims {lead}) ints, "
            f"got {type(output_size).__name__} {output_size!r}"
        ) from None
    if n not in (d, len(y_shape)):
        raise ValueError(
            f"{name}: expected {d} spatial sizes (or {len(y_shape)} with leading dims {lead}), got {output_size!r}"
        )
    size = _as_tuple(output_size, n, name)
    if n != d and size[:-d] != lead:
        raise ValueError(f"{name}: expected leading dims {lead} (y's), got {size}")
    return size[-d:]


def beta_strides(beta_shape, geom: PoolGeometry, name: str = "beta") -> tuple[int, int, int, int, int]:
    """Element strides that read a C-contiguous ``beta`` as if broadcast to (N, C, O1, O2, O3).

    ValueError unless ``beta_shape`` broadcasts (NumPy rules) to the output
    shape without changing it.
    """
    beta_shape = tuple(int(v) for v in beta_shape)
    out_shape = geom.out_shape
    ok = len(beta_shape) <= len(out_shape)
    if ok:
        try:
            ok = np.broadcast_shapes(beta_shape, out_shape) == out_shape
        except ValueError:
            ok = False
    if not ok:
        spatial = out_shape[-geom.d:]
        raise ValueError(
            f"{name}: expected a shape that broadcasts to the output shape {out_shape}, such as "
            f"{spatial} (one value per output location), {(1,) * geom.d}, () or "
            f"{(geom.c,) + (1,) * geom.d} (per channel), got {beta_shape}"
        )
    # C-contiguous element strides of beta, then aligned to the right of
    # (N, C, O1, O2, O3); broadcast dims read stride 0.
    own = [0] * len(beta_shape)
    step = 1
    for i in range(len(beta_shape) - 1, -1, -1):
        own[i] = step if beta_shape[i] != 1 else 0
        step *= beta_shape[i]
    full = [0] * 5
    # Caller-visible dims map onto (N, C, O1, O2, O3): unbatched has no N;
    # d < 3 has leading singleton O dims.
    visible = ([0] if geom.batched else []) + [1] + list(range(5 - geom.d, 5))
    for axis, stride in zip(visible[len(visible) - len(beta_shape):], own):
        full[axis] = stride
    return tuple(full)


def cover_counts(geom: PoolGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per canonical dim, for each input index: how many windows contain it (int64).

    Window ``o`` holds ``i`` when ``o*s - p <= i < o*s - p + k``, so the
    covering ``o`` run from ``ceil((i + p - k + 1) / s)`` to ``floor((i + p) / s)``,
    clipped to ``[0, O)``.  A cell's count is the product over dims.
    """
    counts = []
    for length, k, s, p, n_out in zip(geom.in_size, geom.kernel, geom.stride, geom.padding, geom.out_size):
        i = np.arange(length, dtype=np.int64)
        if s == 0:  # adaptive: windows floor(i*O/L) .. ceil((i+1)*O/L) - 1
            counts.append(-((-(i + 1) * n_out) // length) - (i * n_out) // length)
            continue
        first = np.maximum(0, -((k - 1 - i - p) // s))
        last = np.minimum(n_out - 1, (i + p) // s)
        counts.append(np.maximum(last - first + 1, 0))
    return tuple(counts)


def check_grad_shape(grad_shape, expected, name: str = "grad_out") -> None:
    if tuple(grad_shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)} (the output's), got {tuple(grad_shape)}")


def check_mode(mode, name: str = "mode") -> bool:
    """True for exact gradients, False for the reference implementation's."""
    if mode not in ("exact", "paper"):
        raise ValueError(f"{name}: expected 'exact' or 'paper', got {mode!r}")
    return mode == "exact"


def check_normalize(normalize) -> bool:
    """True for normalize='window', False for 'sum'."""
    if normalize not in ("sum", "window"):
        raise ValueError(f"normalize: expected 'sum' or 'window', got {normalize!r}")
    return normalize == "window"


# --- adaptive windows (spec: "Adaptive windows") ----------------------------------------------
# Canonically a dim of stride 0: kernel K = the longest window, padding 0; the
# kernels take window o as [floor(o*L/O), ceil((o+1)*L/O)) there.

def adaptive_bounds(o: int, length: int, n_out: int) -> tuple[int, int]:
    """[start, end) of adaptive window ``o`` of a dim of ``length`` pooled to ``n_out``."""
    return (o * length) // n_out, -(-(o + 1) * length // n_out)


def adaptive_kernel(length: int, n_out: int) -> int:
    """The longest adaptive window of a dim (the weights' K)."""
    return max(e - a for a, e in (adaptive_bounds(o, length, n_out) for o in range(n_out)))


def adaptive_phases(length: int, n_out: int) -> int:
    """The smallest c with start(o + c) >= end(o) for every o: windows c apart never share a cell."""
    c = 1
    for o in range(n_out):
        end = adaptive_bounds(o, length, n_out)[1]
        while o + c < n_out and adaptive_bounds(o + c, length, n_out)[0] < end:
            c += 1
    return c


def _adaptive_sizes(output_size, spatial, d: int, name: str) -> tuple[int, ...]:
    """``output_size`` (an int, or a d-tuple of ints or None: None keeps the dim) as d ints >= 1."""
    if output_size is None or isinstance(output_size, (int, np.integer, bool, np.bool_)):
        items = (output_size,) * d
    elif isinstance(output_size, (str, bytes)):
        raise TypeError(f"{name}: expected an int or a tuple of {d} ints or None, got {output_size!r}")
    else:
        try:
            items = tuple(output_size)
        except TypeError:
            raise TypeError(f"{name}: expected an int or a tuple of {d} ints or None, "
                            f"got {type(output_size).__name__} {output_size!r}") from None
        if len(items) != d:
            raise ValueError(f"{name}: expected an int or a tuple of {d} ints or None, got {output_size!r}")
    sizes = []
    for item, length in zip(items, spatial):
        if item is None:
            sizes.append(length)
            continue
        if isinstance(item, (bool, np.bool_)):
            raise TypeError(f"{name}: expected an int or a tuple of {d} ints or None, got {output_size!r}")
        try:
            sizes.append(operator.index(item))
        except TypeError:
            raise TypeError(f"{name}: expected an int or a tuple of {d} ints or None, got {output_size!r}") from None
    if any(v < 1 for v in sizes):
        raise ValueError(f"{name}: expected every size >= 1, got {tuple(sizes)}")
    return tuple(sizes)


def adaptive_geometry(shape, d: int, output_size, func: str) -> PoolGeometry:
    """Validate adaptive pooling of an input of ``shape`` to ``output_size``."""
    shape = tuple(int(v) for v in shape)
    batched = check_rank(shape, d, func)
    spatial = shape[-d:]
    if any(length < 1 for length in spatial):
        raise ValueError(f"x: expected every spatial size >= 1, got spatial size {spatial} (shape {shape})")
    out = _adaptive_sizes(output_size, spatial, d, "output_size")
    k = tuple(adaptive_kernel(L, o) for L, o in zip(spatial, out))
    return _canonical(shape[:-d], batched, spatial, k, (0,) * d, (0,) * d, out)


def global_geometry(geom: PoolGeometry) -> PoolGeometry | None:
    """Global pooling (``output_size=1``, or one unpadded window the size of the input) as 1-D
    pooling of the flattened rows ``(N, C, L1*L2*L3)`` with one window of that width; None for
    any other geometry.  The weights' layout is the same, flattened.  The CPU backend pools it
    so: one reduction per (n, c) (the general kernels: see ``launch.chunk_kernels``)."""
    if geom.out_size != (1, 1, 1) or any(geom.padding) or geom.kernel != geom.in_size:
        return None
    if geom.in_size[:2] == (1, 1) and geom.stride[2] != 0:
        return None  # flat already (an adaptive dim, stride 0, is made a plain window)
    width = geom.in_size[0] * geom.in_size[1] * geom.in_size[2]
    return _canonical((geom.n, geom.c), True, (width,), (width,), (width,), (0,), (1,))


def adaptive_unpool_geometry(y_shape, w_shape, d: int, input_size, func: str,
                             size_name: str = "input_size") -> PoolGeometry:
    """Geometry of adaptive adaUnPool: the adaptive pooling of ``input_size`` that produced ``y`` and ``w``."""
    y_shape = tuple(int(v) for v in y_shape)
    batched = check_rank(y_shape, d, func, name="y")
    size = _unpool_size(input_size, y_shape, d, size_name)
    if any(v < 1 for v in size):
        raise ValueError(f"{size_name}: expected positive sizes, got {size}")
    pooled = y_shape[-d:]
    k = tuple(adaptive_kernel(L, o) for L, o in zip(size, pooled))
    if tuple(w_shape) != y_shape + k:
        raise ValueError(f"w: expected shape (*y.shape, *K) = {y_shape + k} (K: the longest adaptive window of "
                         f"{size_name} {size}), got {tuple(w_shape)}")
    return _canonical(y_shape[:-d], batched, size, k, (0,) * d, (0,) * d, pooled)

# --- layout ---------------------------------------------------------------------------------

DATA_FORMATS = ("channels_first", "channels_last")


def check_data_format(data_format) -> bool:
    """True for ``"channels_last"`` ``(N, *S, C)``, False for ``"channels_first"`` ``(N, C, *S)``."""
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format: expected 'channels_first' or 'channels_last', got {data_format!r}")
    return data_format == "channels_last"


def to_channels_first(a, d: int, xp, trailing: int = 0):
    """A view of channels-last ``a`` (``([N,] *S, [*k,] C)``) with the channel axis moved in front of
    the spatial dims; ``trailing`` counts the dims after the spatial ones (``d`` for weights).

    An array of a rank that fits no layout is returned as it is, for the rank check to report.
    """
    axis = a.ndim - 1 - d - trailing
    return xp.moveaxis(a, -1, axis) if axis in (0, 1) else a


def to_channels_last(a, d: int, xp, trailing: int = 0):
    """The inverse of :func:`to_channels_first` (a view)."""
    axis = a.ndim - 1 - d - trailing
    return xp.moveaxis(a, axis, -1) if axis in (0, 1) else a


def channels_last_beta_shape(beta_shape, geom: PoolGeometry) -> tuple[int, ...]:
    """The channels-first shape of a channels-last ``beta``, validated against ``(N, *O, C)``.

    ``beta`` broadcasts to the channels-last output shape; padded to the output's
    rank and with its last axis moved to the channel position it broadcasts the
    same way to ``(N, C, *O)``.
    """
    beta_shape = tuple(int(v) for v in beta_shape)
    out_cl = to_channels_last(np.broadcast_to(False, geom.out_shape), geom.d, np).shape
    try:
        ok = len(beta_shape) <= len(out_cl) and np.broadcast_shapes(beta_shape, out_cl) == out_cl
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"beta: expected a shape that broadcasts to the channels-last output shape {out_cl}, such as "
            f"{out_cl[-geom.d - 1:-1] + (1,)} (one value per output location), () or "
            f"{(1,) * geom.d + (geom.c,)} (per channel), got {beta_shape}")
    full = (1,) * (len(out_cl) - len(beta_shape)) + beta_shape
    return to_channels_first(np.broadcast_to(False, full), geom.d, np).shape
