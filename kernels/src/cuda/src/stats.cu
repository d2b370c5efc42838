// The fused statistics kernel: pass 1 counts, sums (f64), min/max, the histogram (in
// shared memory for up to SHARED_BINS bins, global atomics beyond) and the near-zero /
// saturated / non-finite counts; pass 2 sums squared deviations from the mean (f64), so
// the variance never comes from E[x^2] - E[x]^2. Each block reduces in shared memory
// and adds its totals to a handful of global counters with atomics.
//
// counters: [count, below, above, near_zero, saturated, non_finite]
// minmax: order-preserving u64 encodings of the min and max (as f64)
// hist: `bins` u64 counts

#define BLOCK 256
#define SHARED_BINS 4096

// Maps a double to a u64 whose unsigned order is the double's order.
__device__ __forceinline__ u64 order_key(double v) {
    u64 b = (u64)__double_as_longlong(v);
    return (b >> 63) ? ~b : (b | 0x8000000000000000ULL);
}

__device__ __forceinline__ void atomic_min_u64(u64* a, u64 v) {
    u64 old = *a;
    while (v < old) {
        u64 prev = atomicCAS(a, old, v);
        if (prev == old) break;
        old = prev;
    }
}

__device__ __forceinline__ void atomic_max_u64(u64* a, u64 v) {
    u64 old = *a;
    while (v > old) {
        u64 prev = atomicCAS(a, old, v);
        if (prev == old) break;
        old = prev;
    }
}

template <typename T>
__device__ void stats_pass1_kernel(u64 n, const T* x, T lo, T hi, T scale, T last_bin,
                                   T near_zero, T saturation, u32 abs_hist, u32 bins,
                                   u64* counters, double* sum, u64* minmax, u64* hist) {
    __shared__ u32 sh_hist[SHARED_BINS];
    __shared__ u64 shu[BLOCK];
    __shared__ double shd[BLOCK];
    bool shared_hist = bins <= SHARED_BINS;
    if (shared_hist)
        for (u32 b = threadIdx.x; b < bins; b += BLOCK) sh_hist[b] = 0;
    __syncthreads();
    u64 cnt = 0, below = 0, above = 0, nz = 0, sat = 0, nonfin = 0;
    double s = 0.0, mn = m_inf(0.0), mx = -m_inf(0.0);
    GRID_STRIDE_LOOP(i, n) {
        T v = x[i];
        if (!m_isfinite(v)) {
            nonfin++;
            continue;
        }
        cnt++;
        double d = (double)v;
        s += d;
        mn = d < mn ? d : mn;
        mx = d > mx ? d : mx;
        T a = m_abs(v);
        if (a < near_zero) nz++;
        if (a > saturation) sat++;
        T h = abs_hist ? a : v;
        if (h < lo) {
            below++;
        } else if (h >= hi) {
            above++;
        } else {
            T t = (h - lo) * scale;
            t = t < last_bin ? t : last_bin;
            t = (T)0 > t ? (T)0 : t;
            u32 b = (u32)t;
            if (shared_hist) atomicAdd(&sh_hist[b], 1u);
            else atomicAdd(&hist[b], 1ULL);
        }
    }
    u64 vals[6] = {cnt, below, above, nz, sat, nonfin};
    for (int k = 0; k < 6; ++k) {
        u64 t = block_sum(vals[k], shu);
        if (threadIdx.x == 0 && t) atomicAdd(&counters[k], t);
    }
    double ts = block_sum(s, shd);
    if (threadIdx.x == 0 && ts != 0.0) atomicAdd(sum, ts);
    // min / max through the block, then one atomic each.
    shd[threadIdx.x] = mn;
    __syncthreads();
    for (u32 st = BLOCK / 2; st > 0; st >>= 1) {
        if (threadIdx.x < st && shd[threadIdx.x + st] < shd[threadIdx.x])
            shd[threadIdx.x] = shd[threadIdx.x + st];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomic_min_u64(&minmax[0], order_key(shd[0]));
    __syncthreads();
    shd[threadIdx.x] = mx;
    __syncthreads();
    for (u32 st = BLOCK / 2; st > 0; st >>= 1) {
        if (threadIdx.x < st && shd[threadIdx.x + st] > shd[threadIdx.x])
            shd[threadIdx.x] = shd[threadIdx.x + st];
        __syncthreads();
    }
    if (threadIdx.x == 0) atomic_max_u64(&minmax[1], order_key(shd[0]));
    if (shared_hist)
        for (u32 b = threadIdx.x; b < bins; b += BLOCK)
            if (sh_hist[b]) atomicAdd(&hist[b], (u64)sh_hist[b]);
}

template <typename T>
__device__ void stats_pass2_kernel(u64 n, const T* x, double mean, double* m2) {
    __shared__ double shd[BLOCK];
    double acc = 0.0;
    GRID_STRIDE_LOOP(i, n) {
        T v = x[i];
        if (m_isfinite(v)) {
            double d = (double)v - mean;
            acc += d * d;
        }
    }
    double t = block_sum(acc, shd);
    if (threadIdx.x == 0 && t != 0.0) atomicAdd(m2, t);
}

#define STATS(T, S)                                                                         \
    extern "C" __global__ void stats_pass1_##S(u64 n, const T* x, T lo, T hi, T scale,      \
                                               T last_bin, T near_zero, T saturation,       \
                                               u32 abs_hist, u32 bins, u64* counters,       \
                                               double* sum, u64* minmax, u64* hist) {       \
        stats_pass1_kernel<T>(n, x, lo, hi, scale, last_bin, near_zero, saturation,         \
                              abs_hist, bins, counters, sum, minmax, hist);                 \
    }                                                                                       \
    extern "C" __global__ void stats_pass2_##S(u64 n, const T* x, double mean, double* m2) { \
        stats_pass2_kernel<T>(n, x, mean, m2);                                              \
    }

STATS(float, f32)
STATS(double, f64)
