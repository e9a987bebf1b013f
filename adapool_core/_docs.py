"""NumPy-style docstrings of the public functions, one template per kind.

The array level (``_api``) and the adapters (``_adapters``) fill the same
templates; each layer supplies its own array type name and its own runnable
``Examples`` (the doctest suite runs them all).
"""
from __future__ import annotations

SUMMARY = {
    "adapool": "adaPool: ``clamp(beta, 0, 1) * eDSCW + (1 - clamp(beta, 0, 1)) * eM`` per window.",
    "edscwpool": "eDSCW pooling: weights ``softmax(dsc(x_i, mean))`` (Dice-Sorensen to the window mean).",
    "empool": "eM pooling (SoftPool): weights ``softmax(x_i)``.",
    "idwpool": "IDW pooling: weights proportional to ``1 / |x_i - mean|``.",
}

_SIZE_FORMULA = """\
    ``O_i = floor((L_i + 2 * padding_i - kernel_size_i) / stride_i) + 1``
    (``ceil`` instead of ``floor`` with ``ceil_mode``, minus one if the last
    window would start in the right padding), PyTorch's rule."""


def _geometry_params(d: int) -> str:
    return f"""\
kernel_size : int or tuple of {d} ints, default 2
    Window size per spatial dim (every entry >= 1).
stride : int or tuple of {d} ints, optional
    Window step per spatial dim (every entry >= 1); default ``kernel_size``.
padding : int or tuple of {d} ints, default 0
    Implicit padding per side, at most ``kernel_size // 2``.  Padding cells
    are not part of a window: windows are clipped to the input."""


def _layout_params(d: int, adapter: bool) -> str:
    text = f"""\
data_format : {{"channels_first", "channels_last"}}, default "channels_first"
    Keyword only.  Where the channels are: ``(N, C, {_spatial("L", d)})`` or
    ``(N, {_spatial("L", d)}, C)`` (Flax, Keras).  Every array argument and
    result is in that layout: the output ``(N, {_spatial("O", d)}, C)``, the
    weights ``(N, {_spatial("O", d)}, {_spatial("kernel_size", d)}, C)``, a
    per-channel ``beta`` ``({", ".join(["1"] * d)}, C)``."""
    if adapter:
        text += """
implementation : {"auto", "xla", "callback"}, default "auto"
    Keyword only.  ``"xla"``: jax.numpy/lax operations (any backend, no
    host callback, ``jax.export``-able); ``"callback"``: the Numba kernels
    through ``jax.pure_callback`` (faster on the CPU); ``"auto"``: the
    callback on the CPU backend, XLA elsewhere."""
    return text


def _examples(examples: str) -> str:
    """The Examples section, or nothing where a layer has none yet."""
    return f"""
Examples
--------
{examples.strip()}
""" if examples.strip() else ""


def _indent(text: str) -> str:
    return "\n".join(("    " + line) if line else "" for line in text.splitlines())


def _spatial(letter: str, d: int) -> str:
    return ", ".join(f"{letter}_{i + 1}" for i in range(d))


def _mode_params(adapter: bool) -> str:
    text = """\
mode : {"exact", "paper"}, default "exact"
    The gradient: ``"exact"`` is the true derivative (through the window
    mean and the weights); ``"paper"`` treats the weights as constants, as
    the paper's reference implementation does."""
    if adapter:
        text += """
grad : {"exact", "paper"}, optional
    Deprecated alias of ``mode`` (keyword only): it works, and warns with
    ``DeprecationWarning``.  Giving both is a ``TypeError``."""
    return text


def pool_doc(method: str, d: int, array: str, examples: str, note: str = "", adapter: bool = False) -> str:
    beta = ""
    if method == "adapool":
        beta = f"""
beta : {array} or float
    The blend weight, clamped to ``[0, 1]`` (1: eDSCW, 0: eM).  It
    broadcasts to the output shape ``(N, C, {_spatial("O", d)})``: usually one
    value per output location ``({_spatial("O", d)})``, a scalar, per channel
    ``(C, {", ".join(["1"] * d)})``, or the full shape."""
    mode = ("\n" + _mode_params(True)) if adapter else ""
    raises_beta = "; ``beta`` that does not broadcast to the output" if method == "adapool" else ""
    raises_mode = '; a ``mode`` or ``grad`` other than "exact" or "paper"' if adapter else ""
    body = f"""{SUMMARY[method]}

{d}-D pooling with PyTorch's pooling arguments.{(" " + note) if note else ""}

Parameters
----------
x : {array}
    Input of shape ``(N, C, {_spatial("L", d)})`` or unbatched ``(C, {_spatial("L", d)})``,
    of a floating dtype.{beta}
{_geometry_params(d)}
ceil_mode : bool, default False
    Round the output size up instead of down.
return_mask : bool, default False
    Also return each window cell's weight, for ``adaunpool{d}d``.{mode}
{_layout_params(d, adapter)}

Returns
-------
y : {array}
    The pooled output, of ``x``'s type, device and dtype.
w : {array}
    Only with ``return_mask=True``, then the result is ``(y, w)``: the
    weight of every window cell (0 outside the input).

Shape
-----
- ``x``: ``(N, C, {_spatial("L", d)})`` or ``(C, {_spatial("L", d)})``
- ``y``: ``(N, C, {_spatial("O", d)})`` or ``(C, {_spatial("O", d)})`` with
{_SIZE_FORMULA}
- ``w``: ``(*y.shape, {_spatial("kernel_size", d)})``

Raises
------
TypeError
    ``x`` is not a floating array, or an argument has the wrong type.
ValueError
    ``x`` has neither {d + 1} nor {d + 2} dims{raises_beta}; a
    ``data_format`` other than "channels_first" or "channels_last"; a
    ``kernel_size`` or ``stride`` < 1, ``padding`` > ``kernel_size // 2``, an
    output size < 1{raises_mode}.
{_examples(examples)}"""
    return _indent(body).lstrip()


def pool_backward_doc(method: str, d: int, array: str, examples: str) -> str:
    fwd = f"{method}{d}d"
    beta = returns = ""
    if method == "adapool":
        beta = f"""
beta : {array} or float
    ``beta`` of the forward call."""
        returns = f"""
grad_beta : {array}
    The gradient with respect to ``beta``, of ``beta``'s shape (summed
    over the broadcast dims); then the result is ``(grad_x, grad_beta)``."""
    body = f"""Gradient of ``{fwd}`` with respect to ``x``{" and ``beta``" if beta else ""}.

Parameters
----------
grad_out : {array}
    The gradient with respect to ``{fwd}``'s output, of its shape.
x : {array}
    The input of the forward call.{beta}
{_geometry_params(d)}
ceil_mode : bool, default False
    As in the forward call.
{_mode_params(False)}
grad_w : {array}, optional
    The gradient with respect to the weights ``w`` the forward returned
    with ``return_mask=True``, of their shape (e.g. from
    ``adaunpool{d}d_backward(..., return_grad_w=True)``): the path through
    the weights is added, to ``grad_x`` in "exact" mode (in "paper" mode the
    weights are constants for ``x``){" and to ``grad_beta`` in both modes" if beta else ""}.

{_layout_params(d, False)}

Returns
-------
grad_x : {array}
    The gradient with respect to ``x``, of ``x``'s shape.{returns}

Shape
-----
- ``x``, ``grad_x``: ``(N, C, {_spatial("L", d)})`` or ``(C, {_spatial("L", d)})``
- ``grad_out``: ``(N, C, {_spatial("O", d)})`` or ``(C, {_spatial("O", d)})`` with
{_SIZE_FORMULA}

Raises
------
TypeError
    An array is not floating, or an argument has the wrong type.
ValueError
    ``grad_out`` has not the output's shape; a geometry argument is out of
    range (as in ``{fwd}``); a ``mode`` other than "exact" or "paper".
{_examples(examples)}"""
    return _indent(body).lstrip()


def _unpool_params(d: int, array: str) -> str:
    return f"""\
y : {array}
    A pooled output, from a {d}-D pooling with ``return_mask=True``.
w : {array}
    Its weights, of shape ``(*y.shape, {_spatial("kernel_size", d)})``.
{_geometry_params(d)}
output_size : int or tuple of ints, optional
    The unpooled spatial size (or the full shape), where several pool to
    ``y``'s size, as in PyTorch's ``MaxUnpool``; default the smallest.
normalize : {{"sum", "window"}}, default "sum"
    ``"sum"``: ``x_hat_i = sum over windows r containing i of y_r * w_(r,i)``.
    ``"window"``: each term scaled by its window's cell count and divided
    by the number of windows covering the cell, so a constant input comes
    back on every covered cell."""


def unpool_doc(d: int, array: str, examples: str, note: str = "", adapter: bool = False) -> str:
    body = f"""adaUnPool: ``x_hat_i = sum over windows r containing i of y_r * w_(r,i)``.

The inverse of a {d}-D pooling with the same ``kernel_size``, ``stride`` and
``padding``; cells no window covers are 0.{(" " + note) if note else ""}

Parameters
----------
{_unpool_params(d, array)}
{_layout_params(d, adapter)}

Returns
-------
x_hat : {array}
    The unpooled array, of ``y``'s type, device and dtype.

Shape
-----
- ``y``: ``(N, C, {_spatial("O", d)})`` or ``(C, {_spatial("O", d)})``
- ``x_hat``: ``(N, C, {_spatial("L", d)})``, the smallest ``L`` (or ``output_size``) with
{_SIZE_FORMULA}

Raises
------
TypeError
    An array is not floating, or an argument has the wrong type.
ValueError
    ``w``'s shape is not ``(*y.shape, *kernel_size)``; ``output_size`` does
    not pool to ``y``'s size; a geometry argument is out of range; a
    ``normalize`` other than "sum" or "window".
{_examples(examples)}"""
    return _indent(body).lstrip()


def unpool_backward_doc(d: int, array: str, examples: str) -> str:
    fwd = f"adaunpool{d}d"
    body = f"""Gradient of ``{fwd}`` with respect to ``y``, and to ``w`` if asked.

Parameters
----------
grad_out : {array}
    The gradient with respect to ``{fwd}``'s output; without
    ``output_size``, its shape gives the unpooled size.
{_unpool_params(d, array)}
return_grad_w : bool, default False
    Also return the gradient with respect to ``w``: ``grad_out_i * y_r``
    at cell ``i`` of window ``r`` (with "window", times ``|R_r| / cover_i``),
    0 at cells outside the input.

{_layout_params(d, False)}

Returns
-------
grad_y : {array}
    The gradient with respect to ``y``, of ``y``'s shape.
grad_w : {array}
    With ``return_grad_w``: the gradient with respect to ``w``, of ``w``'s
    shape; the result is then ``(grad_y, grad_w)``.

Shape
-----
- ``grad_out``: ``(N, C, {_spatial("L", d)})``; ``y``, ``grad_y``: ``(N, C, {_spatial("O", d)})`` with
{_SIZE_FORMULA}

Raises
------
TypeError
    An array is not floating, or an argument has the wrong type.
ValueError
    ``grad_out``'s size does not pool to ``y``'s; ``w``'s shape is not
    ``(*y.shape, *kernel_size)``; a geometry argument is out of range.
{_examples(examples)}"""
    return _indent(body).lstrip()


_ADAPTIVE_WINDOWS = """Windows as ``torch.nn.AdaptiveAvgPool``: along a dim of length ``L`` pooled to
``O``, window ``o`` is ``[floor(o*L/O), ceil((o+1)*L/O))`` (``O > L`` allowed;
``output_size=1`` is global pooling).  The weights are ``(N, C, *O, *K)``, ``K``
per dim the longest window; cell ``j`` of window ``o`` is input index
``floor(o*L/O) + j``, and cells past a shorter window's end hold 0."""


def adaptive_doc(kind: str, method: str, d: int, array: str, examples: str, note: str = "",
                 implementation: bool = False) -> str:
    """Docstring of ``adaptive_{method}{d}d`` (kind "pool"), its ``_backward`` ("backward"),
    ``adaptive_adaunpool{d}d`` ("unpool") or its ``_backward`` ("unpool_backward");
    ``implementation``: document the JAX adapter's ``implementation=`` argument."""
    beta = f"""
beta : {array} or float
    As for ``{method}{d}d``: broadcasts to the output's shape.""" if method == "adapool" else ""
    size = """
output_size : int or tuple of ints or None
    ``O`` per spatial dim; ``None`` in the tuple keeps that dim."""
    sizes = f"""
Shape
-----
- ``x``: ``(N, C, {_spatial("L", d)})`` or ``(C, {_spatial("L", d)})``
- ``y``: ``(N, C, {_spatial("O", d)})``; weights ``(N, C, {_spatial("O", d)}, {_spatial("K", d)})``"""
    raises = """
Raises
------
TypeError
    An array is not floating, or an argument has the wrong type.
ValueError
    Wrong rank, an ``output_size`` entry < 1, a shape that does not match."""
    if kind == "pool":
        body = f"""Adaptive ``{method}{d}d``: pools ``x`` to ``output_size``.{(" " + note) if note else ""}

{_ADAPTIVE_WINDOWS}

Parameters
----------
x : {array}
    The input.{beta}{size}
return_mask : bool, default False
    Also return the weights (differentiable), for ``adaptive_adaunpool{d}d``.
{_layout_params(d, implementation)}

Returns
-------
y : {array}
    The pooled output; ``(y, w)`` with ``return_mask=True``.
{sizes}
{raises}"""
    elif kind == "backward":
        body = f"""Gradient of ``adaptive_{method}{d}d`` with respect to ``x``{" and ``beta``" if beta else ""}.

{_ADAPTIVE_WINDOWS}

Parameters
----------
grad_out : {array}
    The gradient with respect to the output.
x : {array}
    The input of the forward call.{beta}{size}
{_mode_params(False)}
grad_w : {array}, optional
    The gradient with respect to the returned weights, whose path is added
    (as for ``{method}{d}d_backward``).
{_layout_params(d, implementation)}

Returns
-------
grad_x : {array}
    Of ``x``'s shape{"; ``(grad_x, grad_beta)`` for adapool" if beta else ""}.
{sizes}
{raises}"""
    else:
        grad = kind == "unpool_backward"
        body = f"""{"Gradient of a" if grad else "A"}daUnPool over adaptive windows{" with respect to ``y`` (and ``w``)" if grad else ""}.

{_ADAPTIVE_WINDOWS}

Parameters
----------{f'''
grad_out : {array}
    The gradient with respect to the unpooled output.''' if grad else ""}
y : {array}
    A pooled output of ``adaptive_*{d}d(..., return_mask=True)``.
w : {array}
    Its weights.
input_size : int or tuple of ints
    The pooled input's spatial size.
normalize : {{"sum", "window"}}, default "sum"
    As for ``adaunpool{d}d``.{f'''
return_grad_w : bool, default False
    Also return the gradient with respect to ``w``.''' if grad else ""}
{_layout_params(d, implementation)}

Returns
-------
{"grad_y" if grad else "x_hat"} : {array}
    {"Of ``y``'s shape; ``(grad_y, grad_w)`` with ``return_grad_w``." if grad else "The unpooled array."}
{sizes}
{raises}"""
    return _indent(body + "\n" + _examples(examples)).lstrip()
