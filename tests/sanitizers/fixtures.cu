// Deliberately broken kernels (test fixtures, never product code): each must
// be flagged by the sanitizer build that exists to catch its kind of bug
// (tests/test_cuda_sanitizers.py).  Same rules as cuda/adapool.cu otherwise:
// grid-stride loops, built under the same emulation header.
namespace sanitizer_fixtures {

#define FIXTURE_FOR_EACH_ITEM(idx, total)                                                  \
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (long long)gridDim.x * blockDim.x)

// Race: every thread adds into out[0] (ThreadSanitizer).
__global__ void racy_sum(const float* x, float* out, long long n) {
    FIXTURE_FOR_EACH_ITEM(idx, n) { out[0] += x[idx]; }
}

// Race only between threads `period` apart: out[idx % period] += x[idx].
// With period = the OS thread count, the striding replay puts every
// conflicting pair on one OS thread; only the later replays (emulation.h:
// os_thread_place) separate them.
__global__ void racy_same_residue(const float* x, float* out, long long n, long long period) {
    FIXTURE_FOR_EACH_ITEM(idx, n) { out[idx % period] += x[idx]; }
}

// Out of bounds: the last thread reads one element past the end of x (AddressSanitizer).
__global__ void read_past_end(const float* x, float* y, long long n) {
    FIXTURE_FOR_EACH_ITEM(idx, n) { y[idx] = x[idx + 1]; }
}

// Signed overflow in index arithmetic: base + idx exceeds LLONG_MAX for idx >= 1 (UBSan).
__global__ void overflowing_index(long long* out, long long n, long long base) {
    FIXTURE_FOR_EACH_ITEM(idx, n) { out[idx] = (base + idx) % n; }
}

// The same shapes done right: no sanitizer may report these.
__global__ void clean_copy(const float* x, float* y, long long n) {
    FIXTURE_FOR_EACH_ITEM(idx, n) { y[idx] = x[idx]; }
}

}  // namespace sanitizer_fixtures
