// CPU emulation of the little CUDA that cuda/adapool.cu uses, so that g++ can
// build the UNCHANGED kernel sources and tests can run them (docs/cuda.md).
//
// Force-included before the kernel source (g++ -include emulation.h), with an
// include directory whose cuda_fp16.h / cuda_bf16.h are empty: the half types
// and intrinsics the kernels use are defined here instead.
//
// A launch runs every thread of every block one after the other on the
// calling thread.  That is a legal CUDA schedule for kernels without
// __shared__, __syncthreads or atomics (the kernels use none), so the
// emulation computes what the GPU computes, up to the differences between the
// device and host math libraries (expf/exp).  Neither side contracts a*b+c
// into fused multiply-adds (NVRTC --fmad=false, g++ -ffp-contract=off); the
// Numba path does (its results differ by rounding: tests/support/cuda_cases.py).
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cstddef>
#include <utility>

#ifdef ADAPOOL_EMULATE_THREADS
#include <thread>
#include <vector>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
    unsigned x, y, z;
};

// The launch loop sets these before running each emulated thread.
thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float __int_as_float(int v) {
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

inline double __longlong_as_double(long long v) {
    double f;
    memcpy(&f, &v, sizeof f);
    return f;
}

// CUDA's integer min overloads (device built-ins).
inline int min(int a, int b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }

inline int __float_as_int(float f) {
    int v;
    memcpy(&v, &f, sizeof v);
    return v;
}

inline long long __double_as_longlong(double f) {
    long long v;
    memcpy(&v, &f, sizeof v);
    return v;
}

// __half: IEEE binary16 storage; conversions through GCC's _Float16, which
// rounds to nearest even like __float2half_rn.
struct __half {
    _Float16 value;
};

inline float __half2float(__half h) { return (float)h.value; }
inline __half __float2half_rn(float f) { return __half{(_Float16)f}; }

// __nv_bfloat16: the upper 16 bits of a float, rounded to nearest even
// (NaN stays a quiet NaN), like __float2bfloat16_rn.
struct __nv_bfloat16 {
    uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 h) {
    const uint32_t u = (uint32_t)h.bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(uint16_t)((u >> 16) | 0x40u)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}

namespace adapool_emulation {

// Calls kernel(args...) from a CUDA-style kernelParams array (one pointer per
// argument, each pointing at the argument's value), for every thread of a
// 1-D grid.
#ifdef ADAPOOL_EMULATE_THREADS
// Threaded launch (the race detector's build, tests/cuda_sanitizers.py):
// ADAPOOL_EMULATE_THREADS OS threads share the grid's CUDA threads; CUDA
// thread t (flat, blockIdx.x * blockDim.x + threadIdx.x) runs on OS thread
// (t / os_thread_place) % ADAPOOL_EMULATE_THREADS.  Place 1 strides, so
// neighbouring CUDA threads land on different OS threads; the driver replays
// its launches with place 1, N, N^2, ... so that every pair of distinct CUDA
// threads runs on different OS threads in at least one replay (they differ in
// some base-N digit).  Launches stay ordered: all OS threads are joined
// before launch returns, as a stream orders kernels.
inline unsigned long long os_thread_place = 1;

template <typename... P, std::size_t... I>
void launch_impl(void (*kernel)(P...), unsigned grid, unsigned block, void** args,
                 std::index_sequence<I...>) {
    const unsigned long long threads = (unsigned long long)grid * block;
    const unsigned long long place = os_thread_place;
    auto run_share = [&](unsigned long long worker) {
        gridDim = dim3{grid, 1, 1};
        blockDim = dim3{block, 1, 1};
        for (unsigned long long t = 0; t < threads; ++t) {
            if ((t / place) % ADAPOOL_EMULATE_THREADS != worker) continue;
            blockIdx = dim3{(unsigned)(t / block), 0, 0};
            threadIdx = dim3{(unsigned)(t % block), 0, 0};
            kernel(*static_cast<P*>(args[I])...);
        }
    };
    std::vector<std::thread> workers;
    for (unsigned long long w = 0; w < ADAPOOL_EMULATE_THREADS; ++w) workers.emplace_back(run_share, w);
    for (std::thread& w : workers) w.join();
}
#else
template <typename... P, std::size_t... I>
void launch_impl(void (*kernel)(P...), unsigned grid, unsigned block, void** args,
                 std::index_sequence<I...>) {
    gridDim = dim3{grid, 1, 1};
    blockDim = dim3{block, 1, 1};
    for (unsigned b = 0; b < grid; ++b) {
        for (unsigned t = 0; t < block; ++t) {
            blockIdx = dim3{b, 0, 0};
            threadIdx = dim3{t, 0, 0};
            kernel(*static_cast<P*>(args[I])...);
        }
    }
}
#endif

template <typename... P>
void launch(void (*kernel)(P...), unsigned grid, unsigned block, void** args) {
    launch_impl(kernel, grid, block, args, std::index_sequence_for<P...>{});
}

}  // namespace adapool_emulation

// An extern "C" entry point `name(grid, block, args)` that launches one
// kernel template instance (tests generate one per name expression).
#define ADAPOOL_EMULATED_KERNEL(name, ...)                                      \
    extern "C" void name(unsigned grid, unsigned block, void** args) {          \
        adapool_emulation::launch(&__VA_ARGS__, grid, block, args);             \
    }
