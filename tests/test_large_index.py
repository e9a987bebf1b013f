"""Index arithmetic past 2^31 elements, without allocating 8 GiB.

How (docs/guarantees.md, "Large arrays"):

- Inputs and gradients are ``np.zeros`` arrays of 2^31+ float32 elements:
  calloc maps them lazily, so only the pages the test writes and the kernels
  touch become resident (the tests bound the growth of resident memory).
- The conversion path does not copy a C-contiguous array of the compute
  dtype (``_ops._canonical`` returns a view), so the kernels index the 8 GiB
  array itself.  A strided or broadcast view would be copied (made
  contiguous) first: that copy would be 8 GiB, which is why the test uses a
  lazily mapped contiguous array rather than ``as_strided`` on a small buffer.
- Windows are placed far apart (large strides) so that only a handful of
  windows exist, at element offsets above 2^31: per batch image (offset
  nc * L), per row (i1 * L2) and in the weights (idx * prod(k)).
- Numba: the public forward and backward run on such arrays.  adaUnPool
  writes every input cell (a gather per cell), so on the CPU it cannot run
  on 2^31 cells without touching 8 GiB; its index expressions have the same
  form as the pooling's (int64 in Numba), and are exercised past 2^31 on the
  CUDA kernels below.
- CUDA kernels (cuda/adapool.cu, g++ emulation): the real launch geometry
  over 2^31+ work items, of which only chosen threads (at flat indices
  above 2^31) run; each covers exactly one item because the grid-stride step
  is the whole launch.  That exercises the 64-bit unflatten path and 64-bit
  offsets with real sizes, not a lowered ADAPOOL_INDEX32_LIMIT.
"""
import ctypes
import os

import numpy as np
import pytest

import adapool_core as ap
from workload import rss_mib
from adapool_core import _cpu, _ops
from adapool_core._interop import to_native

BIG = 2**31
RSS_BOUND_MIB = 512  # far below the 8 GiB a copy (or touching every page) would take


def lazy_zeros(shape, dtype=np.float32):
    """A zero array whose pages are mapped on first touch, or skip where the OS refuses."""
    try:
        return np.zeros(shape, dtype)
    except MemoryError:
        pytest.skip(f"the OS refused {np.prod(shape) * np.dtype(dtype).itemsize / 2**30:.0f} GiB of lazily "
                    "mapped address space (overcommit disabled?)")


@pytest.fixture
def rss_guard():
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc/self/status (Linux) to show that no 8 GiB buffer was touched")
    before = rss_mib()
    yield
    grown = rss_mib() - before
    assert grown < RSS_BOUND_MIB, f"resident memory grew {grown:.0f} MiB: something touched the big array"


def test_canonical_conversion_does_not_copy_contiguous_input():
    # The premise of the tests below: the kernels read the caller's memory.
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x3 = _ops._canonical(to_native(x, "x"), (6, 1, 1, 4), np.dtype(np.float32), np)
    assert np.shares_memory(x3, x)
    strided = np.lib.stride_tricks.as_strided(x, shape=(2, 3, 4), strides=(0, 16, 4))
    assert not np.shares_memory(_ops._canonical(to_native(strided, "x"), (6, 1, 1, 4), np.dtype(np.float32), np),
                                strided)


# (shape, kernel, stride): few windows, at element offsets past 2^31.
NUMBA_CASES = {
    # Batch offset: image nc = 2 starts at element 2 * (2^30 + 5) > 2^31.
    "batch_offset_1d": ((3, 1, 2**30 + 5), (4,), (2**29,)),
    # Row offset: the last window's rows start at element 65536 * 32771 > 2^31.
    "row_offset_2d": ((1, 1, 65540, 32771), (2, 2), (2**15, 2**14)),
}


def small_problem(x_big, kernel, stride, d):
    """The same pooling on the cells the windows read, gathered into a small array.

    Windows do not overlap and (stride > kernel) skip the cells between them,
    so the small problem has kernel = stride = the window size."""
    spatial = x_big.shape[-d:]
    starts = [range(0, L - k + 1, s) for L, k, s in zip(spatial, kernel, stride)]
    index = np.ix_(*[np.concatenate([np.arange(st, min(st + k, L)) for st in sts])
                     for sts, k, L in zip(starts, kernel, spatial)])
    return index


@pytest.mark.parametrize("name", list(NUMBA_CASES))
@pytest.mark.parametrize("method", ["adapool", "empool", "idwpool"])
def test_numba_kernels_index_past_2_31(name, method, rss_guard):
    shape, kernel, stride = NUMBA_CASES[name]
    d = len(kernel)
    assert np.prod(shape) > BIG
    x = lazy_zeros(shape)
    index = small_problem(x, kernel, stride, d)
    rng = np.random.default_rng(0)
    lead = (slice(None), slice(None))
    small = rng.standard_normal(x.shape[:2] + tuple(len(i.reshape(-1)) for i in index)).astype(np.float32)
    x[lead + index] = small  # touches only the windows' pages
    beta = 0.3
    fwd = getattr(ap, f"{method}{d}d")
    bwd = getattr(ap, f"{method}{d}d_backward")
    args = (beta,) if method == "adapool" else ()
    y, w = fwd(x, *args, kernel_size=kernel, stride=stride, return_mask=True)
    y_small, w_small = fwd(small, *args, kernel_size=kernel, return_mask=True)
    assert y.shape == y_small.shape
    np.testing.assert_array_equal(y, y_small)
    np.testing.assert_array_equal(w, w_small)
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = bwd(g, x, *args, kernel_size=kernel, stride=stride)
    gx_small = bwd(g, small, *args, kernel_size=kernel)
    if method == "adapool":
        gx, gb = gx
        gx_small, gb_small = gx_small
        np.testing.assert_array_equal(gb, gb_small)
    assert gx.shape == x.shape
    # To rounding, not bitwise: the small problem's short rows take the plane kernels, whose
    # adaPool backward groups eDSCW's terms differently from the big problem's row kernels.
    np.testing.assert_allclose(gx[lead + index], gx_small, rtol=1e-5, atol=1e-6)
    # A cell just past the last window (offset > 2^31) got nothing.
    last = tuple(int(i.reshape(-1)[-1]) + 1 for i in index)
    if all(v < L for v, L in zip(last, x.shape[-d:])):
        assert gx[(x.shape[0] - 1, 0) + last] == 0


# --------------------------------------------------------------------------
# CUDA kernels through the g++ emulation, chosen threads of a 2^31+ launch.
# --------------------------------------------------------------------------

HARNESS = r"""
#include "adapool.cu"
namespace {
// Run only the threads whose global index is in items[0..n) of a launch of
// grid x block threads (CUDA runs the others too; they touch other items).
template <typename... P, std::size_t... I>
void run_items(void (*kernel)(P...), unsigned grid, unsigned block, void** args, const long long* items, int n,
               std::index_sequence<I...>) {
    gridDim = dim3{grid, 1, 1};
    blockDim = dim3{block, 1, 1};
    for (int j = 0; j < n; ++j) {
        blockIdx = dim3{(unsigned)(items[j] / block), 0, 0};
        threadIdx = dim3{(unsigned)(items[j] % block), 0, 0};
        kernel(*static_cast<P*>(args[I])...);
    }
}
}
#define ITEMS_ENTRY(name, ...)                                                                             \
    extern "C" void name(unsigned grid, unsigned block, void** args, const long long* items, int n) {     \
        run_items(&__VA_ARGS__, grid, block, args, items, n,                                              \
                  std::make_index_sequence<adapool_emulation_arity(&__VA_ARGS__)>{});                     \
    }
template <typename... P>
constexpr std::size_t adapool_emulation_arity(void (*)(P...)) { return sizeof...(P); }
ITEMS_ENTRY(items_pool_forward, adapool::pool_forward<float>)
ITEMS_ENTRY(items_pool_backward, adapool::pool_backward<float>)
ITEMS_ENTRY(items_unpool_forward, adapool::unpool_forward<float>)
ITEMS_ENTRY(items_unpool_backward, adapool::unpool_backward<float>)
"""


@pytest.fixture(scope="module")
def cuda_items(tmp_path_factory):
    from adapool_core import _cuda
    from support import emulation

    return emulation.build(tmp_path_factory.mktemp("cuda_items"), harness=HARNESS, name="items"), _cuda


def run_items(lib, cuda, kernel, total, args, items):
    """Launch ``kernel`` as the CuPy path would for ``total`` items, running only ``items``."""
    blocks, threads = -(-total // cuda.BLOCK), cuda.BLOCK  # the grid-stride step covers everything once
    assert blocks * threads >= total and blocks < 2**32
    values = [ctypes.c_void_p(a.ctypes.data) if isinstance(a, np.ndarray) else ctypes.c_longlong(int(a))
              for a in args]
    params = (ctypes.c_void_p * len(values))(*(ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values))
    items = np.asarray(items, dtype=np.int64)
    entry = getattr(lib, f"items_{kernel}")
    entry.argtypes = (ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_int)
    entry(blocks, threads, params, items.ctypes.data, len(items))


# 2^19 + 1 images of 4096 cells: 2^31 + 4096 input cells, windows of 64.
NC, L3, K3 = 2**19 + 1, 4096, 64
O3 = L3 // K3


def geometry_args(stride=K3):
    return (NC, 1, 1, 1, L3, 1, 1, O3, 1, 1, K3, 1, 1, stride, 0, 0, 0)


def test_cuda_kernels_index_past_2_31(cuda_items, rss_guard):
    lib, cuda = cuda_items
    from adapool_core._methods import ADA

    assert NC * L3 > BIG and NC * O3 * K3 > BIG
    rng = np.random.default_rng(0)
    x = lazy_zeros((NC, L3))
    # Output cells (flat) whose windows start past element 2^31, plus the last one.
    outs = [NC * O3 - 1, (NC - 1) * O3 + 5, (BIG // L3) * O3 + 7]
    for o in outs:
        nc, o3 = divmod(o, O3)
        x[nc, o3 * K3:(o3 + 1) * K3] = rng.standard_normal(K3)
        assert nc * L3 + o3 * K3 >= BIG
    beta = np.array([0.3], np.float32)
    bstr = (0, 0, 0, 0, 0)

    # Forward: y and the weights (mask offsets o * 64 > 2^31).
    y = np.full(NC * O3, np.nan, np.float32)
    mask = lazy_zeros(NC * O3 * K3)
    run_items(lib, cuda, "pool_forward", NC * O3, (x, beta, y, mask) + geometry_args() + bstr + (ADA, 1), outs)
    windows = np.stack([x[o // O3, (o % O3) * K3:(o % O3 + 1) * K3] for o in outs])[:, None, :]
    y_small, w_small = ap.adapool1d(windows, 0.3, K3, return_mask=True)
    np.testing.assert_allclose(y[outs], y_small[:, 0, 0], rtol=2e-6)
    for j, o in enumerate(outs):
        np.testing.assert_allclose(mask[o * K3:(o + 1) * K3], w_small[j, 0, 0], rtol=2e-6, atol=1e-7)

    # Backward (one phase class, since stride == kernel): gx at offsets > 2^31.
    # The class as PoolGeometry.phase_classes hands it over: (ph1..3, c1..3, n1..3).
    one_class = (0, 0, 0, 1, 1, 1, 1, 1, O3)
    no_gw = np.zeros(1, np.float32)  # has_gw = 0: the weights' cotangent is never read
    gy = lazy_zeros(NC * O3)
    gy[outs] = rng.standard_normal(len(outs))
    gx = lazy_zeros((NC, L3))
    gb = lazy_zeros(NC * O3)
    run_items(lib, cuda, "pool_backward", NC * O3,
              (x, gy, beta, gx, gb, no_gw) + geometry_args() + bstr + (ADA, 1, 0) + one_class, outs)
    gx_small, _ = ap.adapool1d_backward(gy[outs].reshape(-1, 1, 1), windows, 0.3, K3)
    for j, o in enumerate(outs):
        nc, o3 = divmod(o, O3)
        np.testing.assert_allclose(gx[nc, o3 * K3:(o3 + 1) * K3], gx_small[j, 0], rtol=2e-5, atol=1e-6)

    # adaUnPool: 2^31 + 4096 work items (the 64-bit unflatten), gathers at high offsets.
    out = lazy_zeros((NC, L3))
    cells = [(o // O3) * L3 + (o % O3) * K3 + 3 for o in outs]  # one cell inside each window
    run_items(lib, cuda, "unpool_forward", NC * L3, (y, mask, out) + geometry_args() + (0,), cells)
    for o, cell in zip(outs, cells):
        np.testing.assert_allclose(out.reshape(-1)[cell], y[o] * mask[o * K3 + 3], rtol=1e-6)
    del gx, gb, out
    g_in = lazy_zeros((NC, L3))
    for o in outs:
        g_in[o // O3, (o % O3) * K3:(o % O3 + 1) * K3] = 1.0
    gy_unpool = np.full(NC * O3, np.nan, np.float32)
    run_items(lib, cuda, "unpool_backward", NC * O3, (g_in, mask, y, gy_unpool, np.zeros(1, np.float32)) + geometry_args() + (0, 0),
              outs)
    for o in outs:
        np.testing.assert_allclose(gy_unpool[o], mask[o * K3:(o + 1) * K3].sum(), rtol=1e-5)
