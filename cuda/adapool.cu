// adaPool family on the GPU: one kernel family for every method and rank.
//
// Each per-cell formula is written once here and once in
// adapool_core/_cpu/window.py, under the same name and with the same order of
// floating-point operations (dsc, dsc_partials, dscw_score, em_score,
// cell_weight, blend, idw_weight, window_stats, zero_distance_count,
// clamped_beta, split_grad, add_dscw_grad, add_dscw_mean_grad, add_em_grad,
// add_idw_grad, add_idw_mean_grad, beta_grad); the kernels here mirror the
// Numba general kernels (adapool_core/_cpu/general.py).  docs/math.md
// derives the math, docs/cuda.md explains the organisation.  Every kernel works on the canonical 3-D form: arrays are
// C-contiguous (NC, D1, D2, D3), weights (NC, O1, O2, O3, k1, k2, k3); 1-D and
// 2-D problems arrive with singleton leading dims.
//
// Rules that keep results deterministic and let the same source run on the
// CPU (cuda/emulation.h): one thread per work item in a grid-stride loop, no
// __shared__, no __syncthreads, no atomics.  The pooling backward scatters
// each window's gradient into its cells; the host launches it once per phase
// class (output indices congruent modulo ceil(k/s) in every dim), whose
// windows never share a cell, so each thread owns the cells it writes.
//
// Scalars: float and double compute in their own precision; __half and
// __nv_bfloat16 are loaded and stored as such and computed in float.  Index
// arithmetic is 64-bit throughout (element counts can exceed 2^31 - 1).
#include <cuda_fp16.h>
#include <cuda_bf16.h>

namespace adapool {

// Method codes: the numbers of adapool_core/_methods.py.
enum Method { EDSCW = 0, EM = 1, IDW = 2, ADA = 3 };

// Storage type -> compute type, and how to load and store it.
template <typename T>
struct Scalar {
    typedef T compute;
    __device__ __forceinline__ static T load(const T* p) { return *p; }
    __device__ __forceinline__ static void store(T* p, T v) { *p = v; }
};

template <>
struct Scalar<__half> {
    typedef float compute;
    __device__ __forceinline__ static float load(const __half* p) { return __half2float(*p); }
    __device__ __forceinline__ static void store(__half* p, float v) { *p = __float2half_rn(v); }
};

template <>
struct Scalar<__nv_bfloat16> {
    typedef float compute;
    __device__ __forceinline__ static float load(const __nv_bfloat16* p) { return __bfloat162float(*p); }
    __device__ __forceinline__ static void store(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
};

// Math in the compute type (explicit names: NVRTC has no <cmath>).
__device__ __forceinline__ float exp_c(float v) { return expf(v); }
__device__ __forceinline__ double exp_c(double v) { return exp(v); }
__device__ __forceinline__ float abs_c(float v) { return fabsf(v); }
__device__ __forceinline__ double abs_c(double v) { return fabs(v); }
__device__ __forceinline__ float inf_c(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double inf_c(double) { return __longlong_as_double(0x7ff0000000000000LL); }

// Floor division for a positive divisor (C++ truncates toward zero).
__device__ __forceinline__ long long floor_div(long long a, long long b) {
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// Every kernel takes the same geometry arguments, in this order
// (adapool_core/_cuda.py: geometry_args builds them).
#define ADAPOOL_GEOMETRY_PARAMS                                                        \
    long long NC, long long channels, long long L1, long long L2, long long L3, long long O1, \
        long long O2, long long O3, long long k1, long long k2, long long k3,          \
        long long s1, long long s2, long long s3, long long p1, long long p2, long long p3
#define ADAPOOL_GEOMETRY \
    { NC, channels, {L1, L2, L3}, {O1, O2, O3}, {k1, k2, k3}, {s1, s2, s3}, {p1, p2, p3} }
// beta read as if broadcast to (N, C, O1, O2, O3): element strides, 0 on broadcast dims.
#define ADAPOOL_BETA_PARAMS long long bs0, long long bs1, long long bs2, long long bs3, long long bs4

struct Geometry {
    long long NC, channels, L[3], O[3], k[3], s[3], p[3];

    __device__ __forceinline__ long long in_size() const { return L[0] * L[1] * L[2]; }
    __device__ __forceinline__ long long out_size() const { return O[0] * O[1] * O[2]; }
    __device__ __forceinline__ long long kernel_size() const { return k[0] * k[1] * k[2]; }
};

// Window of output cell o, clipped to the input: cells lo <= i < hi, first
// (possibly negative, in the padding) index start.
struct Window {
    long long start[3], lo[3], hi[3];

    __device__ __forceinline__ Window(const Geometry& g, const long long o[3]) {
        for (int d = 0; d < 3; ++d) {
            if (g.s[d] == 0) {  // adaptive dim: [floor(o L / O), ceil((o + 1) L / O))
                start[d] = lo[d] = o[d] * g.L[d] / g.O[d];
                hi[d] = ((o[d] + 1) * g.L[d] + g.O[d] - 1) / g.O[d];
                continue;
            }
            start[d] = o[d] * g.s[d] - g.p[d];
            lo[d] = start[d] > 0 ? start[d] : 0;
            hi[d] = start[d] + g.k[d] < g.L[d] ? start[d] + g.k[d] : g.L[d];
        }
    }
    __device__ __forceinline__ long long count() const {
        return (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]);
    }
    // f(i1, i2, i3, offset of the cell in its (D1, D2, D3) image), in row-major order.
    template <typename F>
    __device__ __forceinline__ void for_each_cell(const Geometry& g, F f) const {
        for (long long i1 = lo[0]; i1 < hi[0]; ++i1)
            for (long long i2 = lo[1]; i2 < hi[1]; ++i2) {
                const long long row = (i1 * g.L[1] + i2) * g.L[2];
                for (long long i3 = lo[2]; i3 < hi[2]; ++i3) f(i1, i2, i3, row + i3);
            }
    }
};

// Output indices [lo, hi) of the windows that contain input index i along one dim
// (adaptive dim, s == 0: [floor(i O / L), ceil((i + 1) O / L))).
__device__ __forceinline__ void covering(long long i, long long k, long long s, long long p, long long n_out,
                                         long long length, long long& lo, long long& hi) {
    if (s == 0) {
        lo = i * n_out / length;
        hi = ((i + 1) * n_out + length - 1) / length;
        return;
    }
    lo = -floor_div(k - 1 - i - p, s);  // ceil((i + p - k + 1) / s)
    if (lo < 0) lo = 0;
    hi = (i + p) / s + 1;
    if (hi > n_out) hi = n_out;
}

// 2^-e for v >= 0 in [2^e, 2^(e+1)), from v's exponent bits (2^127 / 2^1023 for
// subnormal v, 2^-126 / 2^-1022 from 2^127 / 2^1023 up, inf and NaN included), as
// _cpu/fastexp.py's binade_scale: scaling by it is exact, and puts hi in [1, 2).
__device__ __forceinline__ float binade_scale(float v) {
    const int e = min((__float_as_int(v) >> 23) & 0xFF, 253);
    return __int_as_float((254 - e) << 23);
}
__device__ __forceinline__ double binade_scale(double v) {
    const long long e = min((__double_as_longlong(v) >> 52) & 0x7FFLL, 2045LL);
    return __longlong_as_double((2046LL - e) << 52);
}

// Dice-Sorensen coefficient 2|v m| / (v^2 + m^2), 1 at v = m = 0, written as
// 2 lo hi / (lo^2 + hi^2) with (lo, hi) = (min, max)(|v|, |m|) scaled by the power
// of 2 that puts hi in [1, 2): no overflow, no underflow, one division.  0 for an infinite hi (NaN if
// lo is infinite too), as _cpu/window.py.
template <typename C>
__device__ __forceinline__ C dsc(C v, C m) {
    const C a = abs_c(v), b = abs_c(m);
    C hi, lo;
    if (a >= b) { hi = a; lo = b; } else { hi = b; lo = a; }
    if (hi == C(0)) return C(1);
    const C scale = binade_scale(hi);
    const C hs = hi * scale, ls = lo * scale;
    const C d = C(2) * ls * hs / (hs * hs + ls * ls);
    return isinf(hi) ? lo - lo : d;
}

template <typename C>
__device__ __forceinline__ C sign_c(C v) {
    if (v > C(0)) return C(1);
    if (v < C(0)) return C(-1);
    return C(0);
}

// (u * d dsc / d v, u * d dsc / d m); zero at v = m = 0 and d|u|/du = 0 at u = 0.
// The scaled factor u (= x - y, of the order of hi) is applied to nonzero partials
// only (inf * 0 made the gradient NaN), as in _cpu/window.py.
template <typename C>
__device__ __forceinline__ void dsc_partials(C v, C m, C u, C& d_dv, C& d_dm) {
    const C a = abs_c(v), b = abs_c(m);
    const C hi = a >= b ? a : b;
    if (hi == C(0)) { d_dv = C(0); d_dm = C(0); return; }
    // Degree -1 in (v, m, u): (|v|, |m|) and u scaled by binade_scale(hi), one division.
    const C scale = binade_scale(hi);
    const C ra = a * scale, rb = b * scale;
    C den = ra * ra + rb * rb;
    den = den * den;
    // (rb - ra) (rb + ra), not rb^2 - ra^2: no cancellation near |v| = |m| (as _cpu/window.py).
    const C dv = C(2) * sign_c(v) * rb * ((rb - ra) * (rb + ra));
    const C dm = C(2) * sign_c(m) * ra * ((ra - rb) * (ra + rb));
    const C q = (u * scale) / den;
    d_dv = dv != C(0) ? dv * q : C(0);
    d_dm = dm != C(0) ? dm * q : C(0);
}

// eDSCW's unnormalised weight exp(dsc(v, mean)) of one cell.
template <typename C>
__device__ __forceinline__ C dscw_score(C v, C mean) { return exp_c(dsc(v, mean)); }

// eM's unnormalised weight exp(v - max) of one cell (at most 1).
template <typename C>
__device__ __forceinline__ C em_score(C v, C vmax) { return exp_c(v - vmax); }

// adaPool's blend bc * d + (1 - bc) * m of an eDSCW and an eM quantity; the
// one the method uses for eDSCW and eM.
template <typename C>
__device__ __forceinline__ C blend(long long method, C bc, C d, C m) {
    if (method == ADA) return bc * d + (C(1) - bc) * m;
    if (method == EDSCW) return d;
    return m;
}

// Mask weight of one cell for eDSCW, eM and adaPool (IDW: idw_weight).
template <typename C>
__device__ __forceinline__ C cell_weight(long long method, C bc, C v, C mean, C vmax, C zD, C zM) {
    const C wD = method != EM ? dscw_score(v, mean) / zD : C(0);
    const C wM = method != EDSCW ? em_score(v, vmax) / zM : C(0);
    return blend(method, bc, wD, wM);
}

// Forward quantities of one clipped window (as _cpu/window.py's Stats): the
// softmax normalisers and outputs of eDSCW, eM and IDW (each only where the
// method needs it), IDW's weights scaled by the smallest distance dmin.
template <typename C>
struct Stats {
    long long count;
    C mean, vmax, zD, yD, zM, yM, dmin, zI, yI;
};

template <typename T>
__device__ __forceinline__ Stats<typename Scalar<T>::compute> window_stats(
        const T* xi, const Geometry& g, const Window& w, long long method) {
    typedef typename Scalar<T>::compute C;
    const bool need_d = method == EDSCW || method == ADA;
    const bool need_m = method == EM || method == ADA;
    const bool need_i = method == IDW;
    Stats<C> st;
    st.count = w.count();
    C total = C(0);
    C vmax = -inf_c(C(0));
    w.for_each_cell(g, [&](long long, long long, long long, long long off) {
        const C v = Scalar<T>::load(xi + off);
        total += v;
        if (v > vmax) vmax = v;
    });
    st.vmax = vmax;
    st.mean = total / C(st.count);
    const C mean = st.mean;
    C zD = C(0), sD = C(0), zM = C(0), sM = C(0);
    if (need_d || need_m) {
        w.for_each_cell(g, [&](long long, long long, long long, long long off) {
            const C v = Scalar<T>::load(xi + off);
            if (need_d) {
                const C e = dscw_score(v, mean);
                zD += e;
                sD += e * v;
            }
            if (need_m) {
                const C e = em_score(v, vmax);
                zM += e;
                sM += e * v;
            }
        });
    }
    st.zD = zD;
    st.yD = sD / zD;
    st.zM = zM;
    st.yM = sM / zM;
    C dmin = inf_c(C(0)), zI = C(0), yI = C(0);
    if (need_i) {
        w.for_each_cell(g, [&](long long, long long, long long, long long off) {
            const C dist = abs_c(Scalar<T>::load(xi + off) - mean);
            if (dist < dmin) dmin = dist;
        });
        if (dmin == C(0)) {
            yI = mean;
        } else {
            C sI = C(0);
            w.for_each_cell(g, [&](long long, long long, long long, long long off) {
                const C v = Scalar<T>::load(xi + off);
                const C e = dmin / abs_c(v - mean);
                zI += e;
                sI += e * v;
            });
            yI = sI / zI;
        }
    }
    st.dmin = dmin;
    st.zI = zI;
    st.yI = yI;
    return st;
}

// (beta, clamp(beta, 0, 1)) for output cell (nc, o).
template <typename C>
__device__ __forceinline__ void clamped_beta(const C* beta, long long bs0, long long bs1, long long bs2,
                                             long long bs3, long long bs4, const Geometry& g, long long nc,
                                             const long long o[3], C& b, C& bc) {
    const long long n = nc / g.channels;
    const long long c = nc - n * g.channels;
    b = beta[n * bs0 + c * bs1 + o[0] * bs2 + o[1] * bs3 + o[2] * bs4];
    bc = b;
    if (bc < C(0)) bc = C(0);
    if (bc > C(1)) bc = C(1);
}

// IDW weight of one cell; equal shares among zero-distance cells when dmin == 0
// (the caller divides by their count).
template <typename C>
__device__ __forceinline__ C idw_weight(C v, const Stats<C>& st) {
    const C dist = abs_c(v - st.mean);
    if (st.dmin == C(0)) return dist == C(0) ? C(1) : C(0);
    return (st.dmin / dist) / st.zI;
}

// Number of cells of a window whose value equals the mean (IDW with dmin == 0).
template <typename T>
__device__ __forceinline__ typename Scalar<T>::compute zero_distance_count(
        const T* xi, const Geometry& g, const Window& w, typename Scalar<T>::compute mean) {
    typedef typename Scalar<T>::compute C;
    C nzero = C(0);
    w.for_each_cell(g, [&](long long, long long, long long, long long off) {
        if (Scalar<T>::load(xi + off) - mean == C(0)) nzero += C(1);
    });
    return nzero;
}

// (gD, gM, gI): the output gradient g shared among eDSCW, eM and IDW.
// Selected by method, not by the value of g, so that 0 * NaN stays NaN.
template <typename C>
__device__ __forceinline__ void split_grad(long long method, C g, C bc, C& gD, C& gM, C& gI) {
    gD = C(0);
    gM = C(0);
    gI = C(0);
    if (method == ADA) {
        gD = g * bc;
        gM = g * (C(1) - bc);
    } else if (method == EDSCW) {
        gD = g;
    } else if (method == EM) {
        gM = g;
    } else {
        gI = g;
    }
}

// Exact mode, with w = softmax(z) and y = sum w_i x_i: dy/dz_k = w_k (x_k - y).
// eM: z = x.  eDSCW: z_k = dsc(x_k, mean).  IDW: z_k = -log|x_k - mean|.  The
// mean's share (add_*_mean_grad) is gathered over the window first and
// spread equally over its cells.  Paper mode: g * w_i, weights held constant.
// The add_* helpers return the running sum with their terms added, in the
// order of the Numba helpers of the same names.

// via_mean plus one cell's eDSCW term of the gradient through the mean (exact mode).
template <typename C>
__device__ __forceinline__ C add_dscw_mean_grad(C via_mean, C gD, C v, C mean, C zD, C yD) {
    const C wD = dscw_score(v, mean) / zD;
    C d_dv, d_dm;
    dsc_partials(v, mean, v - yD, d_dv, d_dm);
    return via_mean + gD * wD * d_dm;
}

// via_mean plus one cell's IDW term of the gradient through the mean (exact mode, dmin > 0).
template <typename C>
__device__ __forceinline__ C add_idw_mean_grad(C via_mean, C gI, C v, const Stats<C>& st) {
    const C wI = idw_weight(v, st);
    // -d(-log|v - mean|)/d mean = 1 / (v - mean)
    return via_mean + gI * wI * (v - st.yI) / (v - st.mean);
}

// grad plus eDSCW's direct gradient for one cell.
template <typename C>
__device__ __forceinline__ C add_dscw_grad(C grad, C gD, C v, C mean, C zD, C yD, bool exact) {
    const C wD = dscw_score(v, mean) / zD;
    grad += gD * wD;
    if (exact) {
        C d_dv, d_dm;
        dsc_partials(v, mean, v - yD, d_dv, d_dm);
        grad += gD * wD * d_dv;
    }
    return grad;
}

// grad plus eM's gradient for one cell.
template <typename C>
__device__ __forceinline__ C add_em_grad(C grad, C gM, C v, C vmax, C zM, C yM, bool exact) {
    const C wM = em_score(v, vmax) / zM;
    // 1 + (v - yM), not (1 + v) - yM: for |v| >> 1 the 1 would be lost.
    return grad + (exact ? gM * wM * (C(1) + (v - yM)) : gM * wM);
}

// grad plus IDW's direct gradient for one cell.  Where dmin == 0 the output
// is the mean (exact) or the mean of the nzero zero-distance cells.
template <typename C>
__device__ __forceinline__ C add_idw_grad(C grad, C gI, C v, const Stats<C>& st, C nzero, bool exact) {
    if (st.dmin == C(0)) {
        if (exact) return grad + gI / C(st.count);
        if (v - st.mean == C(0)) return grad + gI / nzero;
        return grad;
    }
    const C wI = idw_weight(v, st);
    grad += gI * wI;
    if (exact) grad -= gI * wI * (v - st.yI) / (v - st.mean);
    return grad;
}

// dL/dbeta of one output cell: g (yD - yM) inside [0, 1]; outside the clamp
// is flat (0); a NaN beta stays NaN.
template <typename C>
__device__ __forceinline__ C beta_grad(C g, C b, C yD, C yM) {
    return (b >= C(0) && b <= C(1)) ? g * (yD - yM) : (b != b ? b : C(0));
}

// Gradients through the returned weights (docs/math.md): with a cotangent gw
// for w = softmax(z), dL/dz_k = w_k (gw_k - gbar), gbar = sum_i gw_i w_i; the
// same chain through z as the output's (dy/dz_k = w_k (x_k - y)) with
// (gw_k - gbar) in place of g (x_k - y).  The weights of an IDW window with
// dmin == 0 are piecewise constant: no gradient.

// (rD, rM, rI) plus one cell's gw * wD, gw * wM, gw * wI (each where the method uses it).
template <typename C>
__device__ __forceinline__ void weight_dots(C& rD, C& rM, C& rI, long long method, C gwv, C v, const Stats<C>& st) {
    if (method == EDSCW || method == ADA) rD += gwv * (dscw_score(v, st.mean) / st.zD);
    if (method == EM || method == ADA) rM += gwv * (em_score(v, st.vmax) / st.zM);
    if (method == IDW && st.dmin != C(0)) rI += gwv * idw_weight(v, st);
}

// via_mean plus one cell's eDSCW weight-cotangent term through the mean.
template <typename C>
__device__ __forceinline__ C add_dscw_weight_mean_grad(C via_mean, C gwD, C barD, C v, C mean, C zD) {
    const C wD = dscw_score(v, mean) / zD;
    C d_dv, d_dm;
    dsc_partials(v, mean, gwD - barD, d_dv, d_dm);
    return via_mean + wD * d_dm;
}

// via_mean plus one cell's IDW weight-cotangent term through the mean (dmin > 0).
template <typename C>
__device__ __forceinline__ C add_idw_weight_mean_grad(C via_mean, C gwI, C barI, C v, const Stats<C>& st) {
    const C wI = idw_weight(v, st);
    return via_mean + wI * (gwI - barI) / (v - st.mean);
}

// grad plus eDSCW's direct weight-cotangent term for one cell.
template <typename C>
__device__ __forceinline__ C add_dscw_weight_grad(C grad, C gwD, C barD, C v, C mean, C zD) {
    const C wD = dscw_score(v, mean) / zD;
    C d_dv, d_dm;
    dsc_partials(v, mean, gwD - barD, d_dv, d_dm);
    return grad + wD * d_dv;
}

// grad plus eM's weight-cotangent term for one cell.
template <typename C>
__device__ __forceinline__ C add_em_weight_grad(C grad, C gwM, C barM, C v, C vmax, C zM) {
    const C wM = em_score(v, vmax) / zM;
    return grad + wM * (gwM - barM);
}

// grad plus IDW's direct weight-cotangent term for one cell (none where dmin == 0).
template <typename C>
__device__ __forceinline__ C add_idw_weight_grad(C grad, C gwI, C barI, C v, const Stats<C>& st) {
    if (st.dmin == C(0)) return grad;
    const C wI = idw_weight(v, st);
    return grad - wI * (gwI - barI) / (v - st.mean);
}

// gb plus the weights' share of dL/dbeta, sum gw (wD - wM), inside [0, 1].
template <typename C>
__device__ __forceinline__ C add_beta_weight_grad(C gb, C b, C rD, C rM) {
    return (b >= C(0) && b <= C(1)) ? gb + (rD - rM) : gb;
}

// Splits a flat index of a C-contiguous (NC, n0, n1, n2) array into (nc, q).
// 64-bit division costs several times 32-bit division on GPUs, so arrays
// whose flat size fits in 31 bits (the usual case) split with 32-bit
// arithmetic; the branch is uniform across the launch.  Tests lower
// ADAPOOL_INDEX32_LIMIT to run the 64-bit path on small arrays too.
#ifndef ADAPOOL_INDEX32_LIMIT
#define ADAPOOL_INDEX32_LIMIT 0x7fffffffLL
#endif

template <typename I>
__device__ __forceinline__ void unflatten_as(I i, const long long n[3], long long& nc, long long q[3]) {
    for (int d = 2; d >= 0; --d) {
        const I size = (I)n[d];
        q[d] = (long long)(i % size);
        i /= size;
    }
    nc = (long long)i;
}

__device__ __forceinline__ void unflatten(long long idx, long long total, const long long n[3], long long& nc,
                                          long long q[3]) {
    if (total <= ADAPOOL_INDEX32_LIMIT) {
        unflatten_as<unsigned int>((unsigned int)idx, n, nc, q);
    } else {
        unflatten_as<long long>(idx, n, nc, q);
    }
}

// Grid-stride loop over [0, total): any launch size covers everything.
#define ADAPOOL_FOR_EACH_ITEM(idx, total)                                                  \
    for (long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x; idx < (total); \
         idx += (long long)gridDim.x * blockDim.x)

// y[nc, o] = pooled window o of x[nc]; with want_mask, mask[nc, o, j] = the
// weight of window cell j (0 for cells in the padding).  One thread per output.
template <typename T>
__global__ void pool_forward(const T* __restrict__ x, const typename Scalar<T>::compute* __restrict__ beta,
                             T* __restrict__ y, T* __restrict__ mask, ADAPOOL_GEOMETRY_PARAMS,
                             ADAPOOL_BETA_PARAMS, long long method, long long want_mask) {
    typedef typename Scalar<T>::compute C;
    const Geometry g = ADAPOOL_GEOMETRY;
    const long long total = g.NC * g.out_size();
    ADAPOOL_FOR_EACH_ITEM(idx, total) {
        long long o[3], nc;
        unflatten(idx, total, g.O, nc, o);
        const T* xi = x + nc * g.in_size();
        const Window w(g, o);
        const Stats<C> st = window_stats(xi, g, w, method);
        C b = C(0), bc = C(0);
        if (method == ADA) clamped_beta(beta, bs0, bs1, bs2, bs3, bs4, g, nc, o, b, bc);
        Scalar<T>::store(y + idx, method == IDW ? st.yI : blend(method, bc, st.yD, st.yM));
        if (!want_mask) continue;
        const C nzero = (method == IDW && st.dmin == C(0)) ? zero_distance_count(xi, g, w, st.mean) : C(0);
        T* mi = mask + idx * g.kernel_size();
        long long j = 0;
        for (long long j1 = 0; j1 < g.k[0]; ++j1)
            for (long long j2 = 0; j2 < g.k[1]; ++j2)
                for (long long j3 = 0; j3 < g.k[2]; ++j3, ++j) {
                    const long long i1 = w.start[0] + j1, i2 = w.start[1] + j2, i3 = w.start[2] + j3;
                    C weight = C(0);
                    if (i1 >= w.lo[0] && i1 < w.hi[0] && i2 >= w.lo[1] && i2 < w.hi[1] && i3 >= w.lo[2] &&
                        i3 < w.hi[2]) {
                        const C v = Scalar<T>::load(xi + (i1 * g.L[1] + i2) * g.L[2] + i3);
                        if (method == IDW) {
                            weight = idw_weight(v, st);
                            if (st.dmin == C(0)) weight = weight / nzero;
                        } else {
                            weight = cell_weight(method, bc, v, st.mean, st.vmax, st.zD, st.zM);
                        }
                    }
                    Scalar<T>::store(mi + j, weight);
                }
    }
}

// gx += g * dy/dx for the windows of one phase class, a row of
// PoolGeometry.phase_classes (adapool_core/_geometry.py) that the host hands
// in: output indices o_d = ph_d + q * c_d, 0 <= q < n_d.  gx must be zeroed
// before the first class unless the windows tile the input (every cell in
// exactly one window).  For adapool, gb[nc, o] = dL/dbeta of that output cell
// (before reduction to beta's shape).  One thread per window of the class.
template <typename T>
__global__ void pool_backward(const T* __restrict__ x, const T* __restrict__ gy,
                              const typename Scalar<T>::compute* __restrict__ beta, T* __restrict__ gx,
                              typename Scalar<T>::compute* __restrict__ gb, const T* __restrict__ gw,
                              ADAPOOL_GEOMETRY_PARAMS, ADAPOOL_BETA_PARAMS, long long method, long long exact,
                              long long has_gw, long long ph1, long long ph2, long long ph3, long long c1,
                              long long c2, long long c3, long long n1, long long n2, long long n3) {
    typedef typename Scalar<T>::compute C;
    const Geometry g = ADAPOOL_GEOMETRY;
    const long long ph[3] = {ph1, ph2, ph3};
    const long long cls[3] = {c1, c2, c3};  // phase count per dim
    const long long n[3] = {n1, n2, n3};  // windows of this class per dim
    const long long per_image = n[0] * n[1] * n[2];
    const long long total = g.NC * per_image;
    // Disjoint windows (k <= s): each cell gets one term, written without reading gx.
    const bool sole_term = cls[0] * cls[1] * cls[2] == 1;
    const bool need_d = method == EDSCW || method == ADA;
    const bool need_m = method == EM || method == ADA;
    const bool need_i = method == IDW;
    ADAPOOL_FOR_EACH_ITEM(idx, total) {
        long long o[3], nc;
        unflatten(idx, total, n, nc, o);
        for (int d = 0; d < 3; ++d) o[d] = ph[d] + o[d] * cls[d];
        const long long out_idx = ((nc * g.O[0] + o[0]) * g.O[1] + o[1]) * g.O[2] + o[2];
        const T* xi = x + nc * g.in_size();
        T* gxi = gx + nc * g.in_size();
        const Window w(g, o);
        const Stats<C> st = window_stats(xi, g, w, method);
        const C grad_out = Scalar<T>::load(gy + out_idx);
        C b = C(0), bc = C(0);
        if (method == ADA) clamped_beta(beta, bs0, bs1, bs2, bs3, bs4, g, nc, o, b, bc);
        C gD, gM, gI;
        split_grad(method, grad_out, bc, gD, gM, gI);
        const bool idw_mean_only = need_i && st.dmin == C(0);
        // The weights' cotangent (row out_idx of gw): sums sum_i gw_i w_i per softmax, then gbar of each.
        const T* gwr = has_gw ? gw + out_idx * g.kernel_size() : gw;
        auto gw_at = [&](long long i1, long long i2, long long i3) {
            return Scalar<T>::load(gwr + ((i1 - w.start[0]) * g.k[1] + (i2 - w.start[1])) * g.k[2] +
                                   (i3 - w.start[2]));
        };
        C rD = C(0), rM = C(0), rI = C(0);
        if (has_gw) {
            w.for_each_cell(g, [&](long long i1, long long i2, long long i3, long long off) {
                weight_dots(rD, rM, rI, method, gw_at(i1, i2, i3), Scalar<T>::load(xi + off), st);
            });
        }
        C barD, barM, barI, unused1, unused2;
        split_grad(method, rD, bc, barD, unused1, unused2);
        split_grad(method, rM, bc, unused1, barM, unused2);
        split_grad(method, rI, bc, unused1, unused2, barI);
        const bool weights_path = has_gw && exact;
        C via_mean = C(0);
        if (exact && !idw_mean_only) {
            w.for_each_cell(g, [&](long long i1, long long i2, long long i3, long long off) {
                const C v = Scalar<T>::load(xi + off);
                if (need_d) via_mean = add_dscw_mean_grad(via_mean, gD, v, st.mean, st.zD, st.yD);
                if (need_i) via_mean = add_idw_mean_grad(via_mean, gI, v, st);
                if (weights_path) {
                    C gwD, gwM, gwI;
                    split_grad(method, gw_at(i1, i2, i3), bc, gwD, gwM, gwI);
                    if (need_d) via_mean = add_dscw_weight_mean_grad(via_mean, gwD, barD, v, st.mean, st.zD);
                    if (need_i) via_mean = add_idw_weight_mean_grad(via_mean, gwI, barI, v, st);
                }
            });
            via_mean = via_mean / C(st.count);
        }
        const C nzero = (idw_mean_only && !exact) ? zero_distance_count(xi, g, w, st.mean) : C(0);
        w.for_each_cell(g, [&](long long i1, long long i2, long long i3, long long off) {
            const C v = Scalar<T>::load(xi + off);
            C grad = via_mean;
            if (need_d) grad = add_dscw_grad(grad, gD, v, st.mean, st.zD, st.yD, exact != 0);
            if (need_m) grad = add_em_grad(grad, gM, v, st.vmax, st.zM, st.yM, exact != 0);
            if (need_i) grad = add_idw_grad(grad, gI, v, st, nzero, exact != 0);
            if (weights_path) {
                C gwD, gwM, gwI;
                split_grad(method, gw_at(i1, i2, i3), bc, gwD, gwM, gwI);
                if (need_d) grad = add_dscw_weight_grad(grad, gwD, barD, v, st.mean, st.zD);
                if (need_m) grad = add_em_weight_grad(grad, gwM, barM, v, st.vmax, st.zM);
                if (need_i) grad = add_idw_weight_grad(grad, gwI, barI, v, st);
            }
            // This thread owns the cell within the launch (phase class).
            Scalar<T>::store(gxi + off, sole_term ? grad : Scalar<T>::load(gxi + off) + grad);
        });
        if (method == ADA) {
            C gbeta = beta_grad(grad_out, b, st.yD, st.yM);
            if (has_gw) gbeta = add_beta_weight_grad(gbeta, b, rD, rM);
            gb[out_idx] = gbeta;
        }
    }
}

// adaUnPool: out[nc, i] = sum over windows r containing i of y[r] * w[r, i].
// by_window (normalize='window'): each term times the window's cell count,
// the sum divided by the number of windows covering i.  One thread per input
// cell (a gather: no two threads write the same cell).
template <typename T>
__global__ void unpool_forward(const T* __restrict__ y, const T* __restrict__ w, T* __restrict__ out,
                               ADAPOOL_GEOMETRY_PARAMS, long long by_window) {
    typedef typename Scalar<T>::compute C;
    const Geometry g = ADAPOOL_GEOMETRY;
    const long long total = g.NC * g.in_size();
    ADAPOOL_FOR_EACH_ITEM(idx, total) {
        long long i[3], a[3], b[3], nc;
        unflatten(idx, total, g.L, nc, i);
        for (int d = 0; d < 3; ++d) covering(i[d], g.k[d], g.s[d], g.p[d], g.O[d], g.L[d], a[d], b[d]);
        C acc = C(0);
        long long o[3];
        for (o[0] = a[0]; o[0] < b[0]; ++o[0])
            for (o[1] = a[1]; o[1] < b[1]; ++o[1])
                for (o[2] = a[2]; o[2] < b[2]; ++o[2]) {
                    const long long r = ((nc * g.O[0] + o[0]) * g.O[1] + o[1]) * g.O[2] + o[2];
                    const Window win(g, o);  // its start: regular or adaptive windows alike
                    const long long j = ((i[0] - win.start[0]) * g.k[1] + (i[1] - win.start[1])) * g.k[2] +
                                        (i[2] - win.start[2]);
                    C term = Scalar<T>::load(y + r) * Scalar<T>::load(w + r * g.kernel_size() + j);
                    if (by_window) term *= C(win.count());
                    acc += term;
                }
        if (by_window) {
            const long long cover = (b[0] - a[0]) * (b[1] - a[1]) * (b[2] - a[2]);
            if (cover > 0) acc = acc / C(cover);
        }
        Scalar<T>::store(out + idx, acc);
    }
}

// Gradient of adaUnPool with respect to y: gy[nc, o] = sum over cells i of
// window o of g[i] * w[o, i] (times the normalize='window' factor); with
// want_gw, with respect to w too: gw[nc, o, j] = g[i] * y[o] (times the same
// factor) for cell j (input index i) of window o, 0 for cells outside the
// input.  One thread per output cell.
template <typename T>
__global__ void unpool_backward(const T* __restrict__ grad, const T* __restrict__ w, const T* __restrict__ y,
                                T* __restrict__ gy, T* __restrict__ gw, ADAPOOL_GEOMETRY_PARAMS,
                                long long by_window, long long want_gw) {
    typedef typename Scalar<T>::compute C;
    const Geometry g = ADAPOOL_GEOMETRY;
    const long long total = g.NC * g.out_size();
    ADAPOOL_FOR_EACH_ITEM(idx, total) {
        long long o[3], nc;
        unflatten(idx, total, g.O, nc, o);
        const Window win(g, o);
        const C count = C(win.count());
        const T* gi = grad + nc * g.in_size();
        const T* wr = w + idx * g.kernel_size();
        T* gwr = want_gw ? gw + idx * g.kernel_size() : gw;
        const C yv = want_gw ? Scalar<T>::load(y + idx) : C(0);
        if (want_gw)
            for (long long j = 0; j < g.kernel_size(); ++j) Scalar<T>::store(gwr + j, C(0));
        C acc = C(0);
        win.for_each_cell(g, [&](long long i1, long long i2, long long i3, long long off) {
            const long long j = ((i1 - win.start[0]) * g.k[1] + (i2 - win.start[1])) * g.k[2] + (i3 - win.start[2]);
            const C gv = Scalar<T>::load(gi + off);
            C term = gv * Scalar<T>::load(wr + j);
            C factor = C(1);
            if (by_window) {
                long long a1, b1, a2, b2, a3, b3;
                covering(i1, g.k[0], g.s[0], g.p[0], g.O[0], g.L[0], a1, b1);
                covering(i2, g.k[1], g.s[1], g.p[1], g.O[1], g.L[1], a2, b2);
                covering(i3, g.k[2], g.s[2], g.p[2], g.O[2], g.L[2], a3, b3);
                factor = count / C((b1 - a1) * (b2 - a2) * (b3 - a3));
                term *= factor;
            }
            acc += term;
            if (want_gw) Scalar<T>::store(gwr + j, by_window ? gv * yv * factor : gv * yv);
        });
        Scalar<T>::store(gy + idx, acc);
    }
}

}  // namespace adapool
