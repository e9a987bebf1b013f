"""Any ``__dlpack__`` array in, the caller's kind out, zero-copy where the
producer allows it (see the copy list in ``adapool_core/_interop.py``)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import adapool_core as ap
from adapool_core._interop import device_of, to_native

X = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
BETA = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)


class Producer:
    """A bare DLPack producer (no framework): exports a NumPy array."""

    def __init__(self, array, device=(1, 0)):
        self.array = array
        self.device = device

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, **kw):
        assert self.device == (1, 0), "a non-CPU producer must not be read"
        return self.array.__dlpack__(**kw)


class NamespacedProducer(Producer):
    """A producer that also names an Array API namespace (here NumPy's)."""

    def __array_namespace__(self, api_version=None):
        return np


def test_numpy_passes_through_untouched():
    native = to_native(X, "x")
    assert native.array is X and native.device == "cpu"


def test_bare_dlpack_producer_is_read_in_place_and_gives_numpy_back():
    native = to_native(Producer(X), "x")
    assert native.array.ctypes.data == X.ctypes.data
    y = ap.adapool2d(Producer(X), BETA)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, ap.adapool2d(X, BETA))


def test_array_api_producer_gets_its_namespace_back():
    y = ap.empool2d(NamespacedProducer(X))
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, ap.empool2d(X))


def test_beta_on_another_device_names_both_devices():
    with pytest.raises(ValueError) as info:
        ap.adapool2d(X, Producer(BETA, device=(2, 1)))
    assert "beta:" in str(info.value) and "cuda:1" in str(info.value) and "cpu" in str(info.value)


@pytest.mark.parametrize("call,name", [
    (lambda: ap.empool2d_backward(Producer(np.ones((2, 3, 4, 4), np.float32), (2, 0)), X), "grad_out:"),
    (lambda: ap.adaunpool2d(np.ones((2, 3, 4, 4)), Producer(np.ones((2, 3, 4, 4, 2, 2)), (2, 0))), "w:"),
    (lambda: ap.adaunpool2d_backward(Producer(np.ones((2, 3, 8, 8)), (2, 0)), np.ones((2, 3, 4, 4)),
                                     np.ones((2, 3, 4, 4, 2, 2))), "grad_out:"),
])
def test_every_second_array_is_checked_for_its_device(call, name):
    with pytest.raises(ValueError) as info:
        call()
    assert name in str(info.value) and "cuda:0" in str(info.value)


def test_unsupported_device_type_is_an_error():
    with pytest.raises(ValueError) as info:
        device_of(Producer(X, device=(4, 0)), "x")  # 4 = OpenCL
    assert "x:" in str(info.value) and "device type 4" in str(info.value)


def test_cuda_array_without_cupy_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail
    with pytest.raises(ImportError) as info:
        ap.empool2d(Producer(X, device=(2, 0)))
    assert "x:" in str(info.value) and "CuPy" in str(info.value) and "cuda:0" in str(info.value)


def test_not_an_array_is_a_type_error():
    with pytest.raises(TypeError) as info:
        ap.empool2d(object())
    assert "x:" in str(info.value) and "__dlpack__" in str(info.value)


# --- PyTorch -----------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "transposed", "requires_grad"])
def test_torch_cpu_input_is_read_in_place(layout):
    torch = _torch()
    t = torch.from_numpy(X.copy())
    t = {"contiguous": t, "channels_last": t.to(memory_format=torch.channels_last),
         "transposed": t.transpose(2, 3), "requires_grad": t.requires_grad_()}[layout]
    native = to_native(t, "x")
    assert native.array.ctypes.data == t.data_ptr()
    assert native.array.strides == tuple(s * t.element_size() for s in t.stride())


def test_torch_bfloat16_is_read_in_place_through_ml_dtypes():
    torch = _torch()
    pytest.importorskip("ml_dtypes", reason="ml_dtypes is not installed")
    t = torch.from_numpy(X).to(torch.bfloat16)
    native = to_native(t, "x")
    assert native.array.dtype.name == "bfloat16" and native.array.ctypes.data == t.data_ptr()
    back = native.restore(native.array)
    assert back.dtype == torch.bfloat16 and back.data_ptr() == t.data_ptr()


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_torch_result_shares_memory_with_the_numpy_result(dtype):
    torch = _torch()
    if dtype == "bfloat16":
        pytest.importorskip("ml_dtypes", reason="ml_dtypes is not installed")
    native = to_native(torch.zeros(2, dtype=getattr(torch, dtype)), "x")
    result = np.arange(6, dtype=native.array.dtype).reshape(2, 3)
    restored = native.restore(result)
    assert isinstance(restored, torch.Tensor) and restored.dtype == getattr(torch, dtype)
    assert restored.data_ptr() == result.ctypes.data


@pytest.mark.parametrize("dtype,tol", [("float32", 0), ("float64", 1e-6), ("float16", 1e-2), ("bfloat16", 1e-2)])
def test_torch_in_torch_out(dtype, tol):
    torch = _torch()
    tdt = getattr(torch, dtype)
    xt, bt = torch.from_numpy(X).to(tdt), torch.from_numpy(BETA).to(tdt)
    y = ap.adapool2d(xt, bt)
    gx, gb = ap.adapool2d_backward(torch.ones_like(y), xt, bt)
    y_ref = ap.adapool2d(X, BETA)
    gx_ref, gb_ref = ap.adapool2d_backward(np.ones_like(y_ref), X, BETA)
    for out, ref in ((y, y_ref), (gx, gx_ref), (gb, gb_ref)):
        assert isinstance(out, torch.Tensor) and out.dtype == tdt and tuple(out.shape) == ref.shape
        np.testing.assert_allclose(out.double().numpy(), ref, rtol=tol, atol=tol)


def test_torch_integer_input_is_a_type_error():
    torch = _torch()
    with pytest.raises(TypeError) as info:
        ap.empool2d(torch.zeros(2, 3, 8, 8, dtype=torch.int32))
    assert "x:" in str(info.value) and "int32" in str(info.value)


# --- JAX -----------------------------------------------------------------------

def _jax():
    return pytest.importorskip("jax", reason="JAX is not installed")


def test_jax_cpu_input_is_read_in_place():
    jax = _jax()
    a = jax.numpy.asarray(X)
    assert to_native(a, "x").array.ctypes.data == a.unsafe_buffer_pointer()


@pytest.mark.parametrize("dtype,tol", [("float32", 0), ("bfloat16", 1e-2)])
def test_jax_in_jax_out(dtype, tol):
    jax = _jax()
    jdt = getattr(jax.numpy, dtype)
    y, w = ap.adapool2d(jax.numpy.asarray(X, jdt), jax.numpy.asarray(BETA, jdt), return_mask=True)
    y_ref, w_ref = ap.adapool2d(X, BETA, return_mask=True)
    for out, ref in ((y, y_ref), (w, w_ref)):
        assert isinstance(out, jax.Array) and out.dtype == jdt
        np.testing.assert_allclose(np.asarray(out, np.float64), ref, rtol=tol, atol=tol)


def test_traced_jax_value_points_to_the_jax_adapter():
    jax = _jax()
    with pytest.raises(TypeError) as info:
        jax.jit(ap.empool2d)(jax.numpy.asarray(X))
    assert "x:" in str(info.value) and "adapool_core.jax" in str(info.value)


def test_numpy_calls_import_no_framework():
    # Frameworks are recognised through sys.modules, never imported by the package.
    code = ("import sys, numpy as np, adapool_core as ap; ap.empool1d(np.zeros((1, 1, 4)));"
            "print(sorted(m for m in ('torch', 'jax', 'cupy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
