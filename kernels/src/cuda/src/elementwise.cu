// Elementwise kernels over strided views. `info` holds `rank` dims followed by `rank`
// strides per operand (in elements); `rank == 0` means every operand is contiguous
// (element i is at offset + i). Offsets are separate arguments.

template <typename T> __device__ __forceinline__ T unary_apply(u32 op, T x, T p0, T p1) {
    const T zero = (T)0, one = (T)1;
    switch (op) {
    case 0: return -x;
    case 1: return m_exp(x);
    case 2: return m_log(x);
    case 3: return m_sqrt(x);
    case 4: return m_abs(x);
    case 5: return m_tanh(x);
    case 6: return one / (one + m_exp(-x));
    case 7: return (x > zero || m_isnan(x)) ? x : zero;
    case 8: return x * x;
    case 9: return one / x;
    case 10: return m_isnan(x) ? x : (x > zero ? one : (x < zero ? -one : zero));
    case 11: return (x >= zero || m_isnan(x)) ? x : x * p0;
    case 12: return x * p0 + p1;
    case 13: return m_pow(x, p0);
    case 14: return x < p0 ? p0 : (x > p1 ? p1 : x);
    default: return x;
    }
}

template <typename T>
__device__ void unary_kernel(u64 n, u32 rank, const u64* info, const T* in, u64 off, T* out,
                             u32 op, T p0, T p1) {
    GRID_STRIDE_LOOP(i, n) {
        u64 o = rank ? strided_offset(i, rank, info, info + rank) : i;
        out[i] = unary_apply(op, in[off + o], p0, p1);
    }
}

template <typename T> __device__ __forceinline__ T binary_apply(u32 op, T a, T b) {
    switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return m_pow(a, b);
    case 5: return max_nan(a, b);
    case 6: return min_nan(a, b);
    default: return a;
    }
}

// info: dims, strides of a, strides of b.
template <typename T>
__device__ void binary_kernel(u64 n, u32 rank, const u64* info, const T* a, u64 a_off,
                              const T* b, u64 b_off, T* out, u32 op) {
    GRID_STRIDE_LOOP(i, n) {
        u64 oa = rank ? strided_offset(i, rank, info, info + rank) : i;
        u64 ob = rank ? strided_offset(i, rank, info, info + 2 * rank) : i;
        out[i] = binary_apply(op, a[a_off + oa], b[b_off + ob]);
    }
}

template <typename T> __device__ __forceinline__ bool cmp_apply(u32 op, T a, T b) {
    switch (op) {
    case 0: return a == b;
    case 1: return a != b;
    case 2: return a < b;
    case 3: return a <= b;
    case 4: return a > b;
    default: return a >= b;
    }
}

template <typename T>
__device__ void cmp_kernel(u64 n, u32 rank, const u64* info, const T* a, u64 a_off, const T* b,
                           u64 b_off, T* out, u32 op) {
    GRID_STRIDE_LOOP(i, n) {
        u64 oa = rank ? strided_offset(i, rank, info, info + rank) : i;
        u64 ob = rank ? strided_offset(i, rank, info, info + 2 * rank) : i;
        out[i] = cmp_apply(op, a[a_off + oa], b[b_off + ob]) ? (T)1 : (T)0;
    }
}

// info: dims, strides of the mask, of on_true, of on_false.
template <typename M, typename T>
__device__ void where_kernel(u64 n, u32 rank, const u64* info, const M* m, u64 m_off,
                             const T* t, u64 t_off, const T* f, u64 f_off, T* out) {
    GRID_STRIDE_LOOP(i, n) {
        u64 om = rank ? strided_offset(i, rank, info, info + rank) : i;
        u64 ot = rank ? strided_offset(i, rank, info, info + 2 * rank) : i;
        u64 of = rank ? strided_offset(i, rank, info, info + 3 * rank) : i;
        out[i] = m[m_off + om] != (M)0 ? t[t_off + ot] : f[f_off + of];
    }
}

// Rust `as` conversions: float -> u32 saturates and maps NaN to 0.
template <typename S, typename D> __device__ __forceinline__ D convert(S x) { return (D)x; }
template <> __device__ __forceinline__ u32 convert<float, u32>(float x) {
    return x != x || x <= 0.0f ? 0u : (x >= 4294967295.0f ? 4294967295u : (u32)x);
}
template <> __device__ __forceinline__ u32 convert<double, u32>(double x) {
    return x != x || x <= 0.0 ? 0u : (x >= 4294967295.0 ? 4294967295u : (u32)x);
}

// Strided source -> dense destination, converting the element type.
template <typename S, typename D>
__device__ void cast_kernel(u64 n, u32 rank, const u64* info, const S* in, u64 off, D* out) {
    GRID_STRIDE_LOOP(i, n) {
        u64 o = rank ? strided_offset(i, rank, info, info + rank) : i;
        out[i] = convert<S, D>(in[off + o]);
    }
}

// Writes `v` into a strided view.
template <typename T>
__device__ void fill_kernel(u64 n, u32 rank, const u64* info, T* out, u64 off, T v) {
    GRID_STRIDE_LOOP(i, n) {
        u64 o = rank ? strided_offset(i, rank, info, info + rank) : i;
        out[off + o] = v;
    }
}

// In-place update of a strided destination from a strided source (info: dims,
// destination strides, source strides). op 0: d = s; 1: d += s; 2: d += alpha * s;
// 3: d *= alpha (source unused).
template <typename T>
__device__ void update_kernel(u64 n, u32 rank, const u64* info, T* dst, u64 d_off,
                              const T* src, u64 s_off, u32 op, T alpha) {
    GRID_STRIDE_LOOP(i, n) {
        u64 od = rank ? strided_offset(i, rank, info, info + rank) : i;
        u64 os = rank ? strided_offset(i, rank, info, info + 2 * rank) : i;
        T* d = dst + d_off + od;
        switch (op) {
        case 0: *d = src[s_off + os]; break;
        case 1: *d = *d + src[s_off + os]; break;
        case 2: *d = *d + alpha * src[s_off + os]; break;
        default: *d = *d * alpha; break;
        }
    }
}

// Indexed copy: for each element i of the iteration dims (info: dims, then source,
// destination and index strides), with j = idx[index offset of i]:
//   dst[dst_off + od + j * dst_dim_stride] (=, or += with atomics) src[src_off + os + j * src_dim_stride].
// index_select and gather read through j (src_dim_stride), index_add and scatter_add
// write through it (dst_dim_stride). Indices were validated on the host.
template <typename T>
__device__ void index_copy_kernel(u64 n, u32 rank, const u64* info, const T* src, u64 src_off,
                                  u64 src_dim_stride, T* dst, u64 dst_off, u64 dst_dim_stride,
                                  const u32* idx, u32 accumulate) {
    GRID_STRIDE_LOOP(i, n) {
        u64 os = strided_offset(i, rank, info, info + rank);
        u64 od = strided_offset(i, rank, info, info + 2 * rank);
        u64 oi = strided_offset(i, rank, info, info + 3 * rank);
        u64 j = idx[oi];
        T v = src[src_off + os + j * src_dim_stride];
        T* d = dst + dst_off + od + j * dst_dim_stride;
        if (accumulate) atomicAdd(d, v);
        else *d = v;
    }
}

#define FLOAT_OPS(T, S)                                                                       \
    extern "C" __global__ void unary_##S(u64 n, u32 rank, const u64* info, const T* in,       \
                                         u64 off, T* out, u32 op, T p0, T p1) {               \
        unary_kernel<T>(n, rank, info, in, off, out, op, p0, p1);                             \
    }                                                                                         \
    extern "C" __global__ void binary_##S(u64 n, u32 rank, const u64* info, const T* a,       \
                                          u64 a_off, const T* b, u64 b_off, T* out, u32 op) { \
        binary_kernel<T>(n, rank, info, a, a_off, b, b_off, out, op);                         \
    }

#define ANY_OPS(T, S)                                                                         \
    extern "C" __global__ void cmp_##S(u64 n, u32 rank, const u64* info, const T* a,          \
                                       u64 a_off, const T* b, u64 b_off, T* out, u32 op) {    \
        cmp_kernel<T>(n, rank, info, a, a_off, b, b_off, out, op);                            \
    }                                                                                         \
    extern "C" __global__ void fill_##S(u64 n, u32 rank, const u64* info, T* out, u64 off,    \
                                        T v) {                                                \
        fill_kernel<T>(n, rank, info, out, off, v);                                           \
    }                                                                                         \
    extern "C" __global__ void update_##S(u64 n, u32 rank, const u64* info, T* dst,          \
                                          u64 d_off, const T* src, u64 s_off, u32 op,         \
                                          T alpha) {                                          \
        update_kernel<T>(n, rank, info, dst, d_off, src, s_off, op, alpha);                   \
    }                                                                                         \
    extern "C" __global__ void index_copy_##S(u64 n, u32 rank, const u64* info, const T* src, \
                                              u64 src_off, u64 src_dim_stride, T* dst,        \
                                              u64 dst_off, u64 dst_dim_stride,                \
                                              const u32* idx, u32 accumulate) {               \
        index_copy_kernel<T>(n, rank, info, src, src_off, src_dim_stride, dst, dst_off,       \
                             dst_dim_stride, idx, accumulate);                                \
    }

#define WHERE(M, SM, T, ST)                                                                   \
    extern "C" __global__ void where_##SM##_##ST(u64 n, u32 rank, const u64* info,            \
                                                 const M* m, u64 m_off, const T* t,           \
                                                 u64 t_off, const T* f, u64 f_off, T* out) {  \
        where_kernel<M, T>(n, rank, info, m, m_off, t, t_off, f, f_off, out);                 \
    }

#define CAST(S, SS, D, SD)                                                                    \
    extern "C" __global__ void cast_##SS##_##SD(u64 n, u32 rank, const u64* info,             \
                                                const S* in, u64 off, D* out) {               \
        cast_kernel<S, D>(n, rank, info, in, off, out);                                       \
    }

FLOAT_OPS(float, f32)
FLOAT_OPS(double, f64)
ANY_OPS(float, f32)
ANY_OPS(double, f64)
ANY_OPS(u32, u32)
WHERE(float, f32, float, f32)
WHERE(float, f32, double, f64)
WHERE(float, f32, u32, u32)
WHERE(double, f64, float, f32)
WHERE(double, f64, double, f64)
WHERE(double, f64, u32, u32)
WHERE(u32, u32, float, f32)
WHERE(u32, u32, double, f64)
WHERE(u32, u32, u32, u32)
CAST(float, f32, float, f32)
CAST(float, f32, double, f64)
CAST(float, f32, u32, u32)
CAST(double, f64, float, f32)
CAST(double, f64, double, f64)
CAST(double, f64, u32, u32)
CAST(u32, u32, float, f32)
CAST(u32, u32, double, f64)
CAST(u32, u32, u32, u32)
