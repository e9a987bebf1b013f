"""CUDA backend: the kernels of ``cuda/adapool.cu`` through CuPy.

Same interface as ``_cpu`` (``xp``, ``array_dtype``, ``forward``,
``backward``, ``min_backward_rows``, ``unpool``, ``unpool_grad``), pure functions on canonical
contiguous CuPy arrays.  One ``cupy.RawModule`` per device holds every
template instance (``name_expressions``); it is compiled on first use and
cached.  Launches go on the current device and stream, which the callers
set to the array's own device (:func:`launch_scope`), with explicit sizes from
:func:`launch_config`.

Everything except the CuPy launcher is importable without CuPy: the source
assembly, the compile options, the launch geometry and the kernel-argument
lists (:class:`Backend`) are shared with the tests, which compile the same
source through NVRTC without a GPU and run it on the CPU under
``tests/support/emulation.h`` with the same launch geometry (docs/cuda.md).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from ._geometry import compute_dtype
from ._methods import ADA

SOURCE_NAME = "adapool.cu"
# Kernel templates of SOURCE_NAME (namespace adapool), instantiated per scalar type.
KERNELS = ("pool_forward", "pool_backward", "unpool_forward", "unpool_backward")
# Array dtype name -> the CUDA scalar type the kernels load and store.
SCALAR_TYPES = {"float32": "float", "float64": "double", "float16": "__half", "bfloat16": "__nv_bfloat16"}

BLOCK = 256  # threads per block (no shared memory: only occupancy matters)
MAX_BLOCKS = 16384  # grid cap; kernels are grid-stride loops, so any cap covers everything
# Output cells (threads over the phase classes) a backward launch gets at least, where
# adaPool's backward runs in slices (``_beta_slices``): enough to fill a large GPU.
MIN_BACKWARD_CELLS = 1 << 21

INSTALL_HINT = "pip install adapool-core[cuda12] (CUDA 12) or adapool-core[cuda13] (CUDA 13)"


# --------------------------------------------------------------------------
# Source, compile options, launch geometry: no CuPy needed.
# --------------------------------------------------------------------------

def source_dir() -> Path:
    """Directory of the CUDA sources: ``adapool_core/cuda``.  In an installed
    package it holds the copied sources; in a source checkout it is a link to
    the project's top-level ``cuda/``."""
    return Path(__file__).resolve().parent / "cuda"


def kernel_source() -> str:
    """The exact source every compiler of the kernels gets (CuPy, NVRTC test, emulation)."""
    return (source_dir() / SOURCE_NAME).read_text()


def scalar_type(dtype, argument: str = "x") -> str:
    """The CUDA scalar type of an array dtype; a TypeError naming ``argument`` if there is none."""
    name = np.dtype(dtype).name
    try:
        return SCALAR_TYPES[name]
    except KeyError:
        raise TypeError(f"{argument}: expected a floating dtype (float16, bfloat16, float32 or float64), "
                        f"got {name}") from None


def name_expression(kernel: str, dtype) -> str:
    """C++ name of one kernel template instance, as NVRTC's name expressions want it."""
    return f"adapool::{kernel}<{scalar_type(dtype)}>"


def name_expressions() -> tuple[str, ...]:
    return tuple(f"adapool::{k}<{t}>" for k in KERNELS for t in SCALAR_TYPES.values())


def cuda_include_dirs() -> list[str]:
    """Directories holding the CUDA headers the kernels include (cuda_fp16.h,
    cuda_bf16.h): pip's nvidia-cuda-runtime packages first, then a toolkit."""
    candidates = []
    try:
        import nvidia  # namespace package of NVIDIA's pip wheels

        for root in nvidia.__path__:
            candidates += [os.path.join(root, "cuda_runtime", "include"),  # CUDA 12 wheels
                           os.path.join(root, "cu13", "include")]  # CUDA 13 wheels
    except ImportError:
        pass
    for var in ("CUDA_PATH", "CUDA_HOME"):
        if os.environ.get(var):
            candidates.append(os.path.join(os.environ[var], "include"))
    candidates.append("/usr/local/cuda/include")
    return [c for c in candidates if os.path.isfile(os.path.join(c, "cuda_fp16.h"))][:1]


def compile_options() -> tuple[str, ...]:
    """NVRTC options besides the architecture (CuPy adds -arch for the device).

    --fmad=false: no contraction of a*b+c into fused multiply-adds, so the GPU
    rounds as the source reads, as the CPU emulation does (the Numba path fuses:
    its results differ from both by rounding only).
    """
    dirs = cuda_include_dirs()
    if not dirs:
        raise RuntimeError("CUDA headers: expected cuda_fp16.h from a CUDA toolkit or the pip package "
                           f"nvidia-cuda-runtime-cu12, found none; {INSTALL_HINT}")
    return ("--fmad=false",) + tuple(f"-I{d}" for d in dirs)


def launch_config(total: int, max_blocks: int = MAX_BLOCKS) -> tuple[int, int]:
    """(blocks, threads per block) for ``total`` work items; (0, BLOCK) when there is nothing to do."""
    return min(-(-int(total) // BLOCK), max_blocks), BLOCK


def geometry_args(geom) -> tuple[int, ...]:
    """The geometry arguments every kernel takes (ADAPOOL_GEOMETRY_PARAMS, same order)."""
    return (geom.nc, geom.c) + geom.in_size + geom.out_size + geom.kernel + geom.stride + geom.padding


def array_dtype(dtype, argument: str = "x") -> np.dtype:
    """The dtype the kernels take arrays in: every float dtype as it is (half
    types are loaded and stored as such and computed in float32).  ``argument``
    names the array in the error for a dtype the kernels do not take."""
    scalar_type(dtype, argument)
    return np.dtype(dtype)


class Backend:
    """The backend interface over a kernel launcher.

    ``launch(name_expression, blocks, threads, args)`` runs one kernel
    instance; ``args`` are arrays (passed as pointers) and Python ints (passed
    as long long).  CuPy supplies one launcher, the CPU emulation in the tests
    another: both get the same kernels, arguments and launch geometry.
    """

    def __init__(self, xp, launch, max_blocks: int = MAX_BLOCKS):
        self.xp = xp
        self._launch_kernel = launch
        self.max_blocks = max_blocks
        self.array_dtype = array_dtype

    def _launch(self, kernel, dtype, total, args):
        blocks, threads = launch_config(total, self.max_blocks)
        if blocks > 0:
            self._launch_kernel(name_expression(kernel, dtype), blocks, threads, args)

    def _arrays(self, dtype, *arrays):
        # A raw kernel reads memory as its template type says: make sure it is.
        return [self.xp.ascontiguousarray(a, dtype=dtype) for a in arrays]

    def forward(self, x3, beta_flat, bstr, geom, method, want_mask):
        """(y3, mask3 or None) for x3 of shape geom.in_shape3."""
        xp, dtype = self.xp, x3.dtype
        x3, = self._arrays(dtype, x3)
        beta_flat, = self._arrays(compute_dtype(dtype), beta_flat)
        y3 = xp.empty(geom.out_shape3, dtype=dtype)
        mask3 = xp.empty(geom.mask_shape3 if want_mask else (1,), dtype=dtype)  # the kernel writes every cell
        self._launch("pool_forward", dtype, y3.size,
                     (x3, beta_flat, y3, mask3) + geometry_args(geom) + tuple(bstr) + (method, int(want_mask)))
        return y3, (mask3 if want_mask else None)

    def backward(self, x3, gy3, beta_flat, bstr, geom, method, exact, gw3=None, gx3=None, gb3=None):
        """(gx3, gb3) where gb3 (ADA only, else None) is dL/dbeta per output cell, in the compute dtype;
        gw3 (shaped as the weights, or None): the cotangent of the returned weights.
        gx3 (zero-filled, contiguous, geom.in_shape3) and gb3 (contiguous, geom.out_shape3,
        the compute dtype), where given, are written into instead of allocated.

        One launch per phase class (``PoolGeometry.phase_classes``, handed to
        the kernel): windows of a class never share an input cell, so each
        thread owns what it writes (no atomics, deterministic).
        """
        xp, dtype = self.xp, x3.dtype
        x3, gy3 = self._arrays(dtype, x3, gy3)
        beta_flat, = self._arrays(compute_dtype(dtype), beta_flat)
        has_gw = gw3 is not None
        gw3, = self._arrays(dtype, gw3) if has_gw else (xp.zeros((1,), dtype=dtype),)
        # Where the windows tile the input (k == s, the last window reaches the
        # end), the kernel writes every cell of gx: no need to zero it first.
        tiles = all(k == s and (o - 1) * s - p + k >= length for k, s, p, o, length in
                    zip(geom.kernel, geom.stride, geom.padding, geom.out_size, geom.in_size))
        if gx3 is None:
            gx3 = (xp.empty if tiles else xp.zeros)(geom.in_shape3, dtype=dtype)
        if gb3 is None or method != ADA:
            gb3 = xp.empty(geom.out_shape3 if method == ADA else (1,), dtype=compute_dtype(dtype))
        fixed = geometry_args(geom) + tuple(bstr) + (method, int(exact), int(has_gw))
        for phase_class in geom.phase_classes(3).tolist():  # (ph1, ph2, ph3, c1, c2, c3, n1, n2, n3)
            n1, n2, n3 = phase_class[6:]
            self._launch("pool_backward", dtype, geom.nc * n1 * n2 * n3,
                         (x3, gy3, beta_flat, gx3, gb3, gw3) + fixed + tuple(phase_class))
        return gx3, (gb3 if method == ADA else None)

    def min_backward_rows(self, geom):
        """The fewest NC rows a backward launch takes to fill the GPU (``_beta_slices``)."""
        return -(-MIN_BACKWARD_CELLS // max(1, geom.out_size[0] * geom.out_size[1] * geom.out_size[2]))

    def unpool(self, y3, w3, geom, by_window):
        """adaUnPool: one thread per input cell, gathering y3 * w3."""
        dtype = y3.dtype
        y3, w3 = self._arrays(dtype, y3, w3)
        out = self.xp.empty(geom.in_shape3, dtype=dtype)
        self._launch("unpool_forward", dtype, out.size, (y3, w3, out) + geometry_args(geom) + (int(by_window),))
        return out

    def unpool_grad(self, g3, w3, geom, by_window, y3=None):
        """gy3, or (gy3, gw3) given y3: one thread per output cell (it writes its weights' row of gw3)."""
        dtype = g3.dtype
        want_gw = y3 is not None
        g3, w3 = self._arrays(dtype, g3, w3)
        y3, = self._arrays(dtype, y3) if want_gw else (self.xp.zeros((1,), dtype=dtype),)
        gy = self.xp.empty(geom.out_shape3, dtype=dtype)
        gw = self.xp.empty(geom.mask_shape3 if want_gw else (1,), dtype=dtype)  # the kernel writes every cell
        self._launch("unpool_backward", dtype, gy.size,
                     (g3, w3, y3, gy, gw) + geometry_args(geom) + (int(by_window), int(want_gw)))
        return (gy, gw) if want_gw else gy


# --------------------------------------------------------------------------
# The CuPy launcher (imports CuPy on first use).
# --------------------------------------------------------------------------

_cupy = None
_modules: dict[int, object] = {}  # device id -> RawModule
_functions: dict[tuple[int, str], object] = {}  # (device id, name expression) -> kernel
_backend = None


def require_cupy():
    """The cupy module, or an error that says what to install / that no GPU is visible."""
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as exc:
            raise ImportError(f"the GPU path needs CuPy, which is not installed: {INSTALL_HINT}") from exc
        try:
            devices = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDARuntimeError without a driver
            raise RuntimeError(f"the GPU path needs an NVIDIA GPU, but CUDA reports none ({exc}); "
                               "use NumPy arrays for the CPU path") from exc
        if devices < 1:
            raise RuntimeError("the GPU path needs an NVIDIA GPU, but CUDA reports none; "
                               "use NumPy arrays for the CPU path")
        _cupy = cupy
    return _cupy


def _kernel(name):
    """Kernel ``name`` on the current device; the device's RawModule (every
    instance) is compiled on first use, and kernels are looked up once."""
    cupy = require_cupy()
    device = cupy.cuda.Device().id
    kernel = _functions.get((device, name))
    if kernel is None:
        module = _modules.get(device)
        if module is None:
            module = cupy.RawModule(code=kernel_source(), options=compile_options(),
                                    name_expressions=name_expressions())
            _modules[device] = module
        kernel = _functions[(device, name)] = module.get_function(name)
    return kernel


@contextlib.contextmanager
def launch_scope(device_id: int, stream_ptr: int | None = None):
    """Launches (and allocations) inside go to device ``device_id`` and, with
    ``stream_ptr``, to that stream (a foreign one: torch's current stream);
    without it, to CuPy's current stream on that device."""
    cupy = require_cupy()
    with cupy.cuda.Device(device_id):
        if stream_ptr is None:
            yield
        else:
            with cupy.cuda.ExternalStream(stream_ptr, device_id):
                yield


def _launch_cupy(name, blocks, threads, args):
    cupy = require_cupy()
    kernel = _kernel(name)
    # Launches on CuPy's current stream; every scalar is a long long.
    kernel((blocks,), (threads,),
           tuple(a if isinstance(a, cupy.ndarray) else np.int64(a) for a in args))


def _cupy_backend() -> Backend:
    global _backend
    if _backend is None:
        _backend = Backend(require_cupy(), _launch_cupy)
    return _backend


def __getattr__(name):
    if name == "xp":  # the array module, resolved lazily so that this module imports without CuPy
        return require_cupy()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def forward(x3, beta_flat, bstr, geom, method, want_mask):
    return _cupy_backend().forward(x3, beta_flat, bstr, geom, method, want_mask)


def backward(x3, gy3, beta_flat, bstr, geom, method, exact, gw3=None, gx3=None, gb3=None):
    return _cupy_backend().backward(x3, gy3, beta_flat, bstr, geom, method, exact, gw3, gx3, gb3)


def min_backward_rows(geom):
    return _cupy_backend().min_backward_rows(geom)


def unpool(y3, w3, geom, by_window):
    return _cupy_backend().unpool(y3, w3, geom, by_window)


def unpool_grad(g3, w3, geom, by_window, y3=None):
    return _cupy_backend().unpool_grad(g3, w3, geom, by_window, y3)
