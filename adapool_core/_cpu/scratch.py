"""Per-chunk scratch placed against 4K aliasing.

A load whose address matches an in-flight store's low 12 bits waits for that
store to complete (the CPU compares only those bits first).  Scratch arrays
that the allocator happens to place a multiple of 4 KiB apart, or the rows of
one scratch array whose length is a multiple of 4 KiB, streamed together in
one loop, then stall every lane: measured 2-3x slower backwards, in some
processes and not others (docs/benchmarks.md, "4K aliasing").  Here each
array, and each row of a row-stats array, starts at its own offset modulo 4 KiB.

And ``at``, the index the lane loops read and write their scratch through.
"""
from __future__ import annotations

import llvmlite.ir as llvm_ir
import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .fastexp import JIT

PAGE = 4096
# Byte offsets modulo PAGE: ``spread_empty``'s slots, and the spacing of a row-stats array's
# rows (a multiple of the 64-byte cache line; 17 rows stay within one page's offsets).
SLOT = 512
ROW_SPACING = 192


@njit(inline="always", **JIT)
def spread_empty(n, dtype, slot):
    """An empty array of n elements starting at byte ``slot * SLOT`` modulo ``PAGE``."""
    pad = PAGE // np.empty(0, dtype=dtype).itemsize  # a page's worth of elements
    buf = np.empty(n + pad, dtype=dtype)
    first = (slot * SLOT - np.int64(buf.ctypes.data)) % PAGE // buf.itemsize  # % is floor-mod: in [0, PAGE)
    return buf[first:first + n]


@njit(inline="always", **JIT)
def spread_width(n, dtype):
    """A row length of at least n elements whose bytes are ``ROW_SPACING`` modulo ``PAGE``:
    row r of a (rows, spread_width) array then starts at byte r * ROW_SPACING of a page."""
    itemsize = np.empty(1, dtype=dtype).itemsize
    pad = (ROW_SPACING - n * itemsize) % PAGE  # floor-mod: in [0, PAGE)
    return n + pad // itemsize


@intrinsic
def _stack_pointer(typingctx, n, dtype):
    """A pointer to n (a literal) uninitialised elements of dtype on the calling function's stack."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    count = n.literal_value
    element = dtype.dtype

    def codegen(context, builder, sig, args):
        ty = context.get_value_type(element)
        ptr = cgutils.alloca_once(builder, llvm_ir.ArrayType(ty, count))  # in the entry block
        return builder.bitcast(ptr, ty.as_pointer())
    return types.CPointer(element)(n, dtype), codegen


@njit(inline="always", **JIT)
def stack_empty(n, dtype):
    """An empty array of n (a module constant: a literal) elements on the stack of the
    function it is inlined into.  Accumulators kept there stay in registers across a
    loop that stores into other arrays: LLVM knows a stack slot aliases no argument,
    where a heap scratch row is loaded and stored back on every trip (measured: a
    16-lane sum and max over 25K cells 28 -> 15 cycles per step)."""
    return carray(_stack_pointer(n, dtype), (n,))


@njit(**JIT)  # LLVM inlines it
def at(i):
    """Index i (>= 0) as unsigned.  Numba wraps a signed index (i < 0: i + len) with a
    select; where LLVM cannot prove i >= 0 (a window's cell offsets, base + l) that
    select per lane made it vectorise the lane loop's loads and stores as gathers and
    scatters (docs/benchmarks.md, "Designs tried": plane forwards up to 2.9x and
    backwards 20-40% slower)."""
    return np.uint64(i)
