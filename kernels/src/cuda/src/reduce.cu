// Row kernels over dense [rows, k] buffers, one 256-thread block per row (grid-stride
// over rows): reductions, arg-reductions, softmax / log-softmax and cross-entropy.

#define BLOCK 256

// op 0: sum, 1: mean, 2: variance with `ddof`, 3: max, 4: min. Sums, means and
// variances accumulate in f64 (two passes for the variance), as the CPU kernels do.
template <typename T>
__device__ void reduce_rows_kernel(u64 rows, u64 k, const T* in, T* out, u32 op, u64 ddof) {
    __shared__ double shd[BLOCK];
    __shared__ T sht[BLOCK];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* x = in + r * k;
        if (op <= 2) {
            double s = 0.0;
            for (u64 j = threadIdx.x; j < k; j += BLOCK) s += (double)x[j];
            s = block_sum(s, shd);
            if (op == 0) {
                if (threadIdx.x == 0) out[r] = (T)s;
                continue;
            }
            double mean = s / (double)k;
            if (op == 1) {
                if (threadIdx.x == 0) out[r] = (T)mean;
                continue;
            }
            double ss = 0.0;
            for (u64 j = threadIdx.x; j < k; j += BLOCK) {
                double d = (double)x[j] - mean;
                ss += d * d;
            }
            ss = block_sum(ss, shd);
            if (threadIdx.x == 0) out[r] = (T)(ss / ((double)k - (double)ddof));
        } else {
            bool want_max = op == 3;
            T acc = x[0];
            for (u64 j = threadIdx.x; j < k; j += BLOCK)
                acc = want_max ? max_nan(acc, x[j]) : min_nan(acc, x[j]);
            sht[threadIdx.x] = acc;
            __syncthreads();
            for (u32 s = BLOCK / 2; s > 0; s >>= 1) {
                if (threadIdx.x < s) {
                    T a = sht[threadIdx.x], b = sht[threadIdx.x + s];
                    sht[threadIdx.x] = want_max ? max_nan(a, b) : min_nan(a, b);
                }
                __syncthreads();
            }
            if (threadIdx.x == 0) out[r] = sht[0];
            __syncthreads();
        }
    }
}

// Whether (a, ia) beats (b, ib) for arg-max (want_max) or arg-min: a NaN beats
// everything, then the larger (smaller) value, then the smaller index.
template <typename T>
__device__ __forceinline__ bool arg_better(T a, u64 ia, T b, u64 ib, bool want_max) {
    bool na = m_isnan(a), nb = m_isnan(b);
    if (na || nb) return na && (!nb || ia < ib);
    if (a == b) return ia < ib;
    return want_max ? a > b : a < b;
}

template <typename T>
__device__ void argreduce_rows_kernel(u64 rows, u64 k, const T* in, u32* out, u32 want_max) {
    __shared__ T sv[BLOCK];
    __shared__ u64 si[BLOCK];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* x = in + r * k;
        T best = x[0];
        u64 bi = 0;
        for (u64 j = threadIdx.x; j < k; j += BLOCK)
            if (arg_better(x[j], j, best, bi, want_max != 0)) { best = x[j]; bi = j; }
        sv[threadIdx.x] = best;
        si[threadIdx.x] = bi;
        __syncthreads();
        for (u32 s = BLOCK / 2; s > 0; s >>= 1) {
            if (threadIdx.x < s &&
                arg_better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x],
                           si[threadIdx.x], want_max != 0)) {
                sv[threadIdx.x] = sv[threadIdx.x + s];
                si[threadIdx.x] = si[threadIdx.x + s];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) out[r] = (u32)si[0];
        __syncthreads();
    }
}

// Row maximum and log of the sum of exp(x - max), shared by softmax and cross-entropy.
template <typename T>
__device__ void row_max_lse(const T* x, u64 k, T* sh, T* max_out, T* lse_out) {
    T m = -m_inf((T)0);
    for (u64 j = threadIdx.x; j < k; j += BLOCK) m = max_nan(m, x[j]);
    m = block_max(m, sh);
    T s = (T)0;
    for (u64 j = threadIdx.x; j < k; j += BLOCK) s += m_exp(x[j] - m);
    s = block_sum(s, sh);
    *max_out = m;
    *lse_out = m_log(s);
}

template <typename T>
__device__ void softmax_rows_kernel(u64 rows, u64 k, const T* in, T* out, u32 log_out) {
    __shared__ T sh[BLOCK];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* x = in + r * k;
        T m, lse;
        row_max_lse(x, k, sh, &m, &lse);
        for (u64 j = threadIdx.x; j < k; j += BLOCK) {
            T z = x[j] - m - lse;
            out[r * k + j] = log_out ? z : m_exp(z);
        }
    }
}

// Per-row loss -log_softmax(x)[target] and the log-probabilities. Targets were
// validated on the host.
template <typename T>
__device__ void cross_entropy_rows_kernel(u64 rows, u64 k, const T* in, const u32* targets,
                                          T* loss, T* log_probs) {
    __shared__ T sh[BLOCK];
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* x = in + r * k;
        T m, lse;
        row_max_lse(x, k, sh, &m, &lse);
        for (u64 j = threadIdx.x; j < k; j += BLOCK) log_probs[r * k + j] = x[j] - m - lse;
        if (threadIdx.x == 0) loss[r] = -(x[targets[r]] - m - lse);
    }
}

// grad[r, j] = grad_loss[r] * (exp(log_probs[r, j]) - [j == targets[r]]).
template <typename T>
__device__ void cross_entropy_backward_kernel(u64 rows, u64 k, const T* log_probs,
                                              const u32* targets, const T* grad_loss, T* out) {
    GRID_STRIDE_LOOP(i, rows * k) {
        u64 r = i / k, j = i - r * k;
        T p = m_exp(log_probs[i]);
        out[i] = grad_loss[r] * (p - (j == (u64)targets[r] ? (T)1 : (T)0));
    }
}

#define ROW_FLOAT(T, S)                                                                      \
    extern "C" __global__ void softmax_rows_##S(u64 rows, u64 k, const T* in, T* out,       \
                                                u32 log_out) {                               \
        softmax_rows_kernel<T>(rows, k, in, out, log_out);                                   \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_rows_##S(u64 rows, u64 k, const T* in,         \
                                                      const u32* targets, T* loss,           \
                                                      T* log_probs) {                        \
        cross_entropy_rows_kernel<T>(rows, k, in, targets, loss, log_probs);                 \
    }                                                                                        \
    extern "C" __global__ void cross_entropy_backward_##S(                                   \
        u64 rows, u64 k, const T* log_probs, const u32* targets, const T* grad_loss,         \
        T* out) {                                                                            \
        cross_entropy_backward_kernel<T>(rows, k, log_probs, targets, grad_loss, out);       \
    }

#define ROW_ANY(T, S)                                                                        \
    extern "C" __global__ void reduce_rows_##S(u64 rows, u64 k, const T* in, T* out, u32 op, \
                                               u64 ddof) {                                   \
        reduce_rows_kernel<T>(rows, k, in, out, op, ddof);                                   \
    }                                                                                        \
    extern "C" __global__ void argreduce_rows_##S(u64 rows, u64 k, const T* in, u32* out,   \
                                                  u32 want_max) {                            \
        argreduce_rows_kernel<T>(rows, k, in, out, want_max);                                \
    }

ROW_FLOAT(float, f32)
ROW_FLOAT(double, f64)
ROW_ANY(float, f32)
ROW_ANY(double, f64)
ROW_ANY(u32, u32)
