"""Framework-independent operations: validate, convert, dispatch, restore.

Each public function of the package is a thin partial of one of the four
operations here.

Layout (``data_format="channels_last"``, arrays ``(N, *S, C)``): the kernels
work on channels-first memory, so each array operand (``x``, ``grad_out``,
``y``, ``w``; ``beta`` is tiny) is moved to channels-first by ONE copy: the
``ascontiguousarray`` of ``_canonical``, which costs nothing for an already
contiguous channels-first operand, copies the operand once (its size) for a
channels-last one.  Results come back as channels-last views of the
channels-first results (no copy; their strides are not C-contiguous).
``benchmarks/channels_last.py`` measures the cost.  The order is fixed: convert every argument, validate
everything (``_geometry``), then compute; so an error never leaves anything
half-done, and the caller's arrays are never written.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import _cpu
from ._beta_slices import backward_summing_beta, sum_to_shape as _sum_to_shape  # jax.py imports it here
from ._geometry import (
    adaptive_geometry,
    adaptive_unpool_geometry,
    beta_strides,
    channels_last_beta_shape,
    check_data_format,
    check_bool,
    check_grad_shape,
    check_mode,
    check_normalize,
    compute_dtype,
    is_float_dtype,
    pool_geometry,
    to_channels_first,
    to_channels_last,
    unpool_geometry,
)
from ._interop import Native, check_float, check_same_device, device_of, to_native
from ._methods import ADA, METHOD_CODES


def backend_for(native: Native):
    """The backend module (``_cpu`` or ``_cuda``) for a native array's device."""
    if native.device == "cpu":
        return _cpu
    from . import _cuda  # imported lazily: CuPy is optional

    return _cuda


def device_scope(device: str):
    """Launches inside go to ``device`` ("cuda:<id>"), on CuPy's current stream there."""
    if device == "cpu":
        return contextlib.nullcontext()
    from . import _cuda

    return _cuda.launch_scope(int(device.split(":")[1]))


def _canonical(native: Native, shape3, dtype, xp):
    """Contiguous array of the compute dtype in canonical 3-D shape (a view when possible)."""
    return xp.ascontiguousarray(native.array, dtype=dtype).reshape(shape3)


def _beta_native(beta, x: Native) -> Native:
    # A Python or NumPy scalar has no device: it goes wherever x is.
    if isinstance(beta, (int, float, np.integer, np.floating)) and not isinstance(beta, (bool, np.bool_)):
        xp = backend_for(x).xp
        return Native(xp.asarray(float(beta)), lambda a: a, x.device)
    native = to_native(beta, "beta", like=x)
    dtype = native.array.dtype
    if not (is_float_dtype(dtype) or dtype.kind in "iu"):
        raise TypeError(f"beta: expected a real (floating) array or scalar, got dtype {native.array.dtype.name}")
    return native


def _beta_args(beta: Native, geom, dtype, xp):
    bstr = beta_strides(beta.array.shape, geom)
    flat = xp.ascontiguousarray(beta.array, dtype=dtype).reshape(-1)
    return flat, bstr


def _grad_beta_dtype(beta: Native, x_dtype):
    return beta.array.dtype if is_float_dtype(beta.array.dtype) else x_dtype


def _channels_first(native: Native, d: int, channels_last: bool, trailing: int = 0) -> Native:
    """The operand as channels-first (a view; ``_canonical`` makes the one copy)."""
    if not channels_last:
        return native
    xp = backend_for(native).xp
    return Native(to_channels_first(native.array, d, xp, trailing), native.restore, native.device)


def _restore(native: Native, a, d: int, channels_last: bool, trailing: int = 0):
    """A channels-first result back in the caller's layout and kind of array."""
    if channels_last:
        a = to_channels_last(a, d, backend_for(native).xp, trailing)
    return native.restore(a)


def _method_inputs(method_name, d, x, beta, kernel_size, stride, padding, ceil_mode, func, channels_last=False,
                   adaptive=False):
    method = METHOD_CODES[method_name]
    xn = to_native(x, "x")
    check_float(xn, "x")
    betan = _beta_native(beta, xn) if method == ADA else None
    xn = _channels_first(xn, d, channels_last)
    if adaptive:  # kernel_size holds the output size
        geom = adaptive_geometry(xn.array.shape, d, kernel_size, func)
    else:
        geom = pool_geometry(xn.array.shape, d, kernel_size, stride, padding, ceil_mode, func)
    if betan is not None and channels_last and betan.array.ndim:
        betan = Native(betan.array.reshape(channels_last_beta_shape(betan.array.shape, geom)),
                       betan.restore, betan.device)
    backend = backend_for(xn)
    xp = backend.xp
    beta_dtype = compute_dtype(xn.array.dtype)
    if betan is not None:
        beta_flat, bstr = _beta_args(betan, geom, beta_dtype, xp)
    else:
        beta_flat, bstr = xp.zeros(1, dtype=beta_dtype), (0, 0, 0, 0, 0)
    # The dtype the backend takes arrays in (CUDA loads half types as they are).
    dtype = backend.array_dtype(xn.array.dtype)
    return method, xn, betan, geom, backend, dtype, beta_flat, bstr


def pool(method_name, d, x, beta=None, kernel_size=2, stride=None, padding=0, ceil_mode=False,
         return_mask=False, data_format="channels_first", *, func, adaptive=False):
    """Forward pooling: ``y`` or ``(y, w)`` (``adaptive``: ``kernel_size`` is the output size)."""
    return_mask = check_bool(return_mask, "return_mask")
    cl = check_data_format(data_format)
    method, xn, _, geom, backend, dtype, beta_flat, bstr = _method_inputs(
        method_name, d, x, beta, kernel_size, stride, padding, ceil_mode, func, cl, adaptive)
    with device_scope(xn.device):
        x3 = _canonical(xn, geom.in_shape3, dtype, backend.xp)
        y3, w3 = backend.forward(x3, beta_flat, bstr, geom, method, return_mask)
        out_dtype = xn.array.dtype
        y = _restore(xn, y3.reshape(geom.out_shape).astype(out_dtype, copy=False), d, cl)
        if not return_mask:
            return y
        return y, _restore(xn, w3.reshape(geom.mask_shape).astype(out_dtype, copy=False), d, cl, d)


def pool_backward(method_name, d, grad_out, x, beta=None, kernel_size=2, stride=None, padding=0,
                  ceil_mode=False, mode="exact", data_format="channels_first", grad_w=None, *, func,
                  adaptive=False):
    """``grad_x`` (and ``grad_beta`` for adapool) of the forward above; ``grad_w``
    (shaped as the weights, or None) adds the path through the returned weights."""
    exact = check_mode(mode)
    cl = check_data_format(data_format)
    method, xn, betan, geom, backend, dtype, beta_flat, bstr = _method_inputs(
        method_name, d, x, beta, kernel_size, stride, padding, ceil_mode, func, cl, adaptive)
    gn = to_native(grad_out, "grad_out", like=xn)
    check_float(gn, "grad_out")
    gn = _channels_first(gn, d, cl)
    check_grad_shape(gn.array.shape, geom.out_shape)
    gwn = None
    if grad_w is not None:
        gwn = to_native(grad_w, "grad_w", like=xn)
        check_float(gwn, "grad_w")
        gwn = _channels_first(gwn, d, cl, d)
        check_grad_shape(gwn.array.shape, geom.mask_shape, "grad_w")
    xp = backend.xp
    with device_scope(xn.device):
        x3 = _canonical(xn, geom.in_shape3, dtype, xp)
        g3 = _canonical(gn, geom.out_shape3, dtype, xp)
        gw3 = None if gwn is None else _canonical(gwn, geom.mask_shape3, dtype, xp)
        gx3, grad_beta = backward_summing_beta(backend, x3, g3, gw3, beta_flat, bstr, geom, method, exact,
                                               None if betan is None else betan.array.shape)
        grad_x = _restore(xn, gx3.reshape(geom.in_shape).astype(xn.array.dtype, copy=False), d, cl)
        if method != ADA:
            return grad_x
        grad_beta = grad_beta.astype(_grad_beta_dtype(betan, xn.array.dtype), copy=False)
        if cl and betan.array.ndim:  # back to the caller's channels-last beta shape
            # (read only now: beta is validated above, and np.shape would pull a CuPy array to the host)
            beta_shape = tuple(beta.shape) if hasattr(beta, "shape") else np.shape(beta)
            grad_beta = to_channels_last(grad_beta, d, xp).reshape(beta_shape)
        return grad_x, betan.restore(grad_beta)


def _unpool_inputs(d, y, w, kernel_size, stride, padding, output_size, normalize, func,
                   size_name="output_size", channels_last=False, adaptive=False):
    by_window = check_normalize(normalize)
    yn = to_native(y, "y")
    check_float(yn, "y")
    wn = to_native(w, "w", like=yn, like_name="y")
    check_float(wn, "w")
    yn, wn = _channels_first(yn, d, channels_last), _channels_first(wn, d, channels_last, d)
    if channels_last and output_size is not None and np.ndim(output_size) == 1 and len(output_size) == yn.array.ndim:
        output_size = to_channels_first(np.broadcast_to(False, tuple(output_size)), d, np).shape
    if adaptive:  # output_size: the input size of the adaptive pooling
        geom = adaptive_unpool_geometry(yn.array.shape, wn.array.shape, d, output_size, func,
                                        "input_size" if size_name == "output_size" else size_name)
    else:
        geom = unpool_geometry(yn.array.shape, wn.array.shape, d, kernel_size, stride, padding, output_size,
                               func, size_name)
    backend = backend_for(yn)
    dtype = backend.array_dtype(yn.array.dtype, "y")
    w3 = _canonical(wn, geom.mask_shape3, dtype, backend.xp)
    return by_window, yn, geom, backend, dtype, w3


def unpool(d, y, w, kernel_size=2, stride=None, padding=0, output_size=None, normalize="sum",
           data_format="channels_first", *, func, adaptive=False):
    """adaUnPool: each pooled value spread back over its window by the weights
    (``adaptive``: over adaptive windows of input size ``output_size``)."""
    cl = check_data_format(data_format)
    by_window, yn, geom, backend, dtype, w3 = _unpool_inputs(
        d, y, w, kernel_size, stride, padding, output_size, normalize, func, channels_last=cl, adaptive=adaptive)
    with device_scope(yn.device):
        y3 = _canonical(yn, geom.out_shape3, dtype, backend.xp)
        out3 = backend.unpool(y3, w3, geom, by_window)
        return _restore(yn, out3.reshape(geom.in_shape).astype(yn.array.dtype, copy=False), d, cl)


def unpool_backward(d, grad_out, y, w, kernel_size=2, stride=None, padding=0, output_size=None,
                    normalize="sum", data_format="channels_first", return_grad_w=False, *, func,
                    adaptive=False):
    """Gradient of adaUnPool with respect to ``y``; ``(grad_y, grad_w)`` with ``return_grad_w``."""
    return_grad_w = check_bool(return_grad_w, "return_grad_w")
    cl = check_data_format(data_format)
    # Devices first: grad_out is read before y, and must not be read from another device.
    check_same_device(device_of(y, "y"), device_of(grad_out, "grad_out"), "y", "grad_out")
    gn = to_native(grad_out, "grad_out")
    check_float(gn, "grad_out")
    size_name = "output_size"
    if output_size is None:  # the forward's output size is grad_out's (checked as such), in its layout
        output_size, size_name = tuple(gn.array.shape), "grad_out"
    gn = _channels_first(gn, d, cl)
    by_window, yn, geom, backend, dtype, w3 = _unpool_inputs(
        d, y, w, kernel_size, stride, padding, output_size, normalize, func, size_name, cl, adaptive)
    check_grad_shape(gn.array.shape, geom.in_shape)
    with device_scope(yn.device):
        g3 = _canonical(gn, geom.in_shape3, dtype, backend.xp)
        if not return_grad_w:
            gy3 = backend.unpool_grad(g3, w3, geom, by_window)
            return _restore(yn, gy3.reshape(geom.out_shape).astype(yn.array.dtype, copy=False), d, cl)
        y3 = _canonical(yn, geom.out_shape3, dtype, backend.xp)
        gy3, gw3 = backend.unpool_grad(g3, w3, geom, by_window, y3)
        return (_restore(yn, gy3.reshape(geom.out_shape).astype(yn.array.dtype, copy=False), d, cl),
                _restore(yn, gw3.reshape(geom.mask_shape).astype(yn.array.dtype, copy=False), d, cl, d))
