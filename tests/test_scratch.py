"""The CPU kernels' scratch placement (``_cpu/scratch.py``): each array at its own offset
modulo 4 KiB (against 4K aliasing), in any dtype, and the unsigned index."""
import numpy as np
import pytest

from adapool_core._cpu.scratch import PAGE, ROW_SPACING, SLOT, at, spread_empty, spread_width


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("slot", [0, 1, 3, 7])
@pytest.mark.parametrize("n", [0, 1, 1000, 4097])
def test_spread_empty_starts_at_its_slot(n, slot, dtype):
    a = spread_empty(n, np.dtype(dtype), slot)
    assert a.shape == (n,) and a.dtype == dtype
    assert a.ctypes.data % PAGE == slot * SLOT
    a[:] = 1  # every element is inside the buffer (a write past it could corrupt the heap)
    assert a.sum() == n


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 56, 1024, 1000])
def test_spread_width_spaces_rows(n, dtype):
    width = spread_width(n, np.dtype(dtype))
    assert width >= n
    assert width * np.dtype(dtype).itemsize % PAGE == ROW_SPACING


def test_at_keeps_the_index():
    assert [at(i) for i in (0, 1, 12345, 2**40)] == [0, 1, 12345, 2**40]
