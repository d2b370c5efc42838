// Batch normalisation over a dense [N, C, S] buffer: one block per channel, statistics
// and the backward sums accumulated in f64 (two passes for the variance), as the CPU
// kernels do. Also the per-channel sum that conv2d's bias gradient needs.

#define BLOCK 256

template <typename T>
__device__ __forceinline__ T chan_at(const T* x, u64 c, u64 k, u64 ch, u64 s) {
    // k-th element (of N * S) of channel c.
    u64 n = k / s;
    return x[(n * ch + c) * s + (k - n * s)];
}

// Sum over (n, s) of channel c, for every channel.
template <typename T>
__device__ void channel_sum_kernel(u64 n, u64 ch, u64 s, const T* x, T* out) {
    __shared__ double sh[BLOCK];
    for (u64 c = blockIdx.x; c < ch; c += gridDim.x) {
        double acc = 0.0;
        for (u64 k = threadIdx.x; k < n * s; k += BLOCK) acc += (double)chan_at(x, c, k, ch, s);
        acc = block_sum(acc, sh);
        if (threadIdx.x == 0) out[c] = (T)acc;
    }
}

// Training forward: batch mean and invstd = 1 / sqrt(var + eps) (biased variance) per
// channel, saved, and y = (x - mean) * invstd * gamma + beta.
template <typename T>
__device__ void bn_forward_train_kernel(u64 n, u64 ch, u64 s, const T* x, const T* gamma,
                                        const T* beta, u32 has_gamma, u32 has_beta, double eps,
                                        T* y, T* mean_out, T* invstd_out) {
    __shared__ double sh[BLOCK];
    u64 m = n * s;
    for (u64 c = blockIdx.x; c < ch; c += gridDim.x) {
        double acc = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) acc += (double)chan_at(x, c, k, ch, s);
        double mean = block_sum(acc, sh) / (double)m;
        double ss = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            double d = (double)chan_at(x, c, k, ch, s) - mean;
            ss += d * d;
        }
        double var = block_sum(ss, sh) / (double)m;
        double invstd = 1.0 / sqrt(var + eps);
        T tm = (T)mean, ti = (T)invstd;
        T gm = has_gamma ? gamma[c] : (T)1, bt = has_beta ? beta[c] : (T)0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            u64 nn = k / s;
            u64 idx = (nn * ch + c) * s + (k - nn * s);
            y[idx] = (x[idx] - tm) * ti * gm + bt;
        }
        if (threadIdx.x == 0) {
            mean_out[c] = tm;
            invstd_out[c] = ti;
        }
    }
}

template <typename T>
__device__ void bn_eval_invstd_kernel(u64 ch, const T* var, double eps, T* invstd) {
    GRID_STRIDE_LOOP(c, ch) { invstd[c] = (T)(1.0 / sqrt((double)var[c] + eps)); }
}

// Evaluation forward: y = (x - mean[c]) * invstd[c] * gamma[c] + beta[c].
template <typename T>
__device__ void bn_forward_eval_kernel(u64 total, u64 ch, u64 s, const T* x, const T* mean,
                                       const T* invstd, const T* gamma, const T* beta,
                                       u32 has_gamma, u32 has_beta, T* y) {
    GRID_STRIDE_LOOP(i, total) {
        u64 c = (i / s) % ch;
        T gm = has_gamma ? gamma[c] : (T)1, bt = has_beta ? beta[c] : (T)0;
        y[i] = (x[i] - mean[c]) * invstd[c] * gm + bt;
    }
}

// Backward with xhat = (x - mean) * invstd, sums over the channel's N * S values:
// d_beta = sum g, d_gamma = sum g * xhat, and
// train: dx = gamma * invstd * (g - d_beta / M - xhat * d_gamma / M);
// eval (statistics are constants): dx = gamma * invstd * g.
template <typename T>
__device__ void bn_backward_kernel(u64 n, u64 ch, u64 s, const T* x, const T* g,
                                   const T* gamma, u32 has_gamma, const T* mean,
                                   const T* invstd, u32 train, T* gx, T* ggamma, T* gbeta,
                                   u32 want_x, u32 want_gamma, u32 want_beta) {
    __shared__ double sh[BLOCK];
    u64 m = n * s;
    for (u64 c = blockIdx.x; c < ch; c += gridDim.x) {
        double mu = (double)mean[c], is = (double)invstd[c];
        double sg = 0.0, sgx = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            double gv = (double)chan_at(g, c, k, ch, s);
            sg += gv;
            sgx += gv * ((double)chan_at(x, c, k, ch, s) - mu) * is;
        }
        sg = block_sum(sg, sh);
        sgx = block_sum(sgx, sh);
        if (threadIdx.x == 0) {
            if (want_gamma) ggamma[c] = (T)sgx;
            if (want_beta) gbeta[c] = (T)sg;
        }
        if (want_x) {
            double gm = has_gamma ? (double)gamma[c] : 1.0;
            double scale = gm * is, mg = sg / (double)m, mgx = sgx / (double)m;
            for (u64 k = threadIdx.x; k < m; k += BLOCK) {
                u64 nn = k / s;
                u64 idx = (nn * ch + c) * s + (k - nn * s);
                double gv = (double)g[idx];
                if (train) {
                    double xh = ((double)x[idx] - mu) * is;
                    gx[idx] = (T)(scale * (gv - mg - xh * mgx));
                } else {
                    gx[idx] = (T)(scale * gv);
                }
            }
        }
    }
}

// Group normalisation: row r = (n, g) is the contiguous run of `m = (C / G) * S`
// values at r * m; channel of element k of row r: (r % G) * (C / G) + k / S.
template <typename T>
__device__ void gn_forward_kernel(u64 rows, u64 m, u64 groups, u64 s, const T* x,
                                  const T* gamma, const T* beta, u32 has_gamma, u32 has_beta,
                                  double eps, T* y, T* mean_out, T* invstd_out) {
    __shared__ double sh[BLOCK];
    u64 cpg = m / s;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * m;
        double acc = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) acc += (double)xr[k];
        double mean = block_sum(acc, sh) / (double)m;
        double ss = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            double d = (double)xr[k] - mean;
            ss += d * d;
        }
        double invstd = 1.0 / sqrt(block_sum(ss, sh) / (double)m + eps);
        T tm = (T)mean, ti = (T)invstd;
        u64 c0 = (r % groups) * cpg;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            u64 c = c0 + k / s;
            T gm = has_gamma ? gamma[c] : (T)1, bt = has_beta ? beta[c] : (T)0;
            y[r * m + k] = (xr[k] - tm) * ti * gm + bt;
        }
        if (threadIdx.x == 0) {
            mean_out[r] = tm;
            invstd_out[r] = ti;
        }
    }
}

// Input gradient per row: with xhat = (x - mean) * invstd and h = g * gamma,
// dx = invstd * (h - mean(h) - xhat * mean(h * xhat)).
template <typename T>
__device__ void gn_backward_x_kernel(u64 rows, u64 m, u64 groups, u64 s, const T* x,
                                     const T* g, const T* gamma, u32 has_gamma, const T* mean,
                                     const T* invstd, T* gx) {
    __shared__ double sh[BLOCK];
    u64 cpg = m / s;
    for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
        double mu = (double)mean[r], is = (double)invstd[r];
        u64 c0 = (r % groups) * cpg;
        double sh_acc = 0.0, shx = 0.0;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            double gm = has_gamma ? (double)gamma[c0 + k / s] : 1.0;
            double h = (double)g[r * m + k] * gm;
            sh_acc += h;
            shx += h * ((double)x[r * m + k] - mu) * is;
        }
        double mh = block_sum(sh_acc, sh) / (double)m;
        double mhx = block_sum(shx, sh) / (double)m;
        for (u64 k = threadIdx.x; k < m; k += BLOCK) {
            double gm = has_gamma ? (double)gamma[c0 + k / s] : 1.0;
            double h = (double)g[r * m + k] * gm;
            double xh = ((double)x[r * m + k] - mu) * is;
            gx[r * m + k] = (T)(is * (h - mh - xh * mhx));
        }
    }
}

// Gamma and beta gradients per channel c: sums over n and s of g * xhat and of g,
// xhat using the statistics of row (n, c / (C / G)).
template <typename T>
__device__ void gn_backward_params_kernel(u64 n, u64 ch, u64 s, u64 groups, const T* x,
                                          const T* g, const T* mean, const T* invstd,
                                          T* ggamma, T* gbeta, u32 want_gamma, u32 want_beta) {
    __shared__ double sh[BLOCK];
    u64 cpg = ch / groups;
    for (u64 c = blockIdx.x; c < ch; c += gridDim.x) {
        double sg = 0.0, sgx = 0.0;
        for (u64 k = threadIdx.x; k < n * s; k += BLOCK) {
            u64 nn = k / s;
            u64 idx = (nn * ch + c) * s + (k - nn * s);
            u64 r = nn * groups + c / cpg;
            double gv = (double)g[idx];
            sg += gv;
            sgx += gv * ((double)x[idx] - (double)mean[r]) * (double)invstd[r];
        }
        sg = block_sum(sg, sh);
        sgx = block_sum(sgx, sh);
        if (threadIdx.x == 0) {
            if (want_gamma) ggamma[c] = (T)sgx;
            if (want_beta) gbeta[c] = (T)sg;
        }
    }
}

#define NORM(T, S)                                                                          \
    extern "C" __global__ void channel_sum_##S(u64 n, u64 ch, u64 s, const T* x, T* out) {  \
        channel_sum_kernel<T>(n, ch, s, x, out);                                            \
    }                                                                                       \
    extern "C" __global__ void bn_forward_train_##S(                                        \
        u64 n, u64 ch, u64 s, const T* x, const T* gamma, const T* beta, u32 has_gamma,     \
        u32 has_beta, double eps, T* y, T* mean_out, T* invstd_out) {                       \
        bn_forward_train_kernel<T>(n, ch, s, x, gamma, beta, has_gamma, has_beta, eps, y,   \
                                   mean_out, invstd_out);                                   \
    }                                                                                       \
    extern "C" __global__ void bn_eval_invstd_##S(u64 ch, const T* var, double eps,         \
                                                  T* invstd) {                              \
        bn_eval_invstd_kernel<T>(ch, var, eps, invstd);                                     \
    }                                                                                       \
    extern "C" __global__ void bn_forward_eval_##S(                                         \
        u64 total, u64 ch, u64 s, const T* x, const T* mean, const T* invstd,               \
        const T* gamma, const T* beta, u32 has_gamma, u32 has_beta, T* y) {                 \
        bn_forward_eval_kernel<T>(total, ch, s, x, mean, invstd, gamma, beta, has_gamma,    \
                                  has_beta, y);                                             \
    }                                                                                       \
    extern "C" __global__ void bn_backward_##S(                                             \
        u64 n, u64 ch, u64 s, const T* x, const T* g, const T* gamma, u32 has_gamma,        \
        const T* mean, const T* invstd, u32 train, T* gx, T* ggamma, T* gbeta, u32 want_x,  \
        u32 want_gamma, u32 want_beta) {                                                    \
        bn_backward_kernel<T>(n, ch, s, x, g, gamma, has_gamma, mean, invstd, train, gx,    \
                              ggamma, gbeta, want_x, want_gamma, want_beta);                \
    }

#define GROUP_NORM(T, S)                                                                    \
    extern "C" __global__ void gn_forward_##S(                                              \
        u64 rows, u64 m, u64 groups, u64 s, const T* x, const T* gamma, const T* beta,      \
        u32 has_gamma, u32 has_beta, double eps, T* y, T* mean_out, T* invstd_out) {        \
        gn_forward_kernel<T>(rows, m, groups, s, x, gamma, beta, has_gamma, has_beta, eps,  \
                             y, mean_out, invstd_out);                                      \
    }                                                                                       \
    extern "C" __global__ void gn_backward_x_##S(                                           \
        u64 rows, u64 m, u64 groups, u64 s, const T* x, const T* g, const T* gamma,         \
        u32 has_gamma, const T* mean, const T* invstd, T* gx) {                             \
        gn_backward_x_kernel<T>(rows, m, groups, s, x, g, gamma, has_gamma, mean, invstd,   \
                                gx);                                                        \
    }                                                                                       \
    extern "C" __global__ void gn_backward_params_##S(                                      \
        u64 n, u64 ch, u64 s, u64 groups, const T* x, const T* g, const T* mean,            \
        const T* invstd, T* ggamma, T* gbeta, u32 want_gamma, u32 want_beta) {              \
        gn_backward_params_kernel<T>(n, ch, s, groups, x, g, mean, invstd, ggamma, gbeta,   \
                                     want_gamma, want_beta);                                \
    }

GROUP_NORM(float, f32)
GROUP_NORM(double, f64)
NORM(float, f32)
NORM(double, f64)
