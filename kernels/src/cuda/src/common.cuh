// Shared helpers for every kernel source: fixed-width integer names (NVRTC has no
// system headers), strided indexing, grid-stride loops and per-type math overloads so
// that one template serves f32 and f64.

typedef unsigned long long u64;
typedef unsigned int u32;

// Offset of logical (row-major) element `i` of a view with `rank` dims.
__device__ __forceinline__ u64 strided_offset(u64 i, u32 rank, const u64* dims,
                                              const u64* strides) {
    u64 off = 0;
    for (int d = (int)rank - 1; d >= 0; --d) {
        u64 q = i / dims[d];
        off += (i - q * dims[d]) * strides[d];
        i = q;
    }
    return off;
}

#define GRID_STRIDE_LOOP(i, n)                                                       \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                \
         i += (u64)blockDim.x * gridDim.x)

__device__ __forceinline__ float m_exp(float x) { return expf(x); }
__device__ __forceinline__ double m_exp(double x) { return exp(x); }
__device__ __forceinline__ float m_log(float x) { return logf(x); }
__device__ __forceinline__ double m_log(double x) { return log(x); }
__device__ __forceinline__ float m_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double m_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float m_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double m_abs(double x) { return fabs(x); }
__device__ __forceinline__ float m_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double m_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ bool m_isnan(float x) { return x != x; }
__device__ __forceinline__ bool m_isnan(double x) { return x != x; }
__device__ __forceinline__ bool m_isnan(u32) { return false; }
__device__ __forceinline__ bool m_isfinite(float x) { return x - x == 0.0f; }
__device__ __forceinline__ bool m_isfinite(double x) { return x - x == 0.0; }
__device__ __forceinline__ float m_inf(float) { return __int_as_float(0x7f800000); }
__device__ __forceinline__ double m_inf(double) { return __longlong_as_double(0x7ff0000000000000LL); }

// Maximum / minimum where NaN in either operand gives NaN (as the CPU kernels).
template <typename T> __device__ __forceinline__ T max_nan(T a, T b) {
    if (m_isnan(a)) return a;
    if (m_isnan(b)) return b;
    return a > b ? a : b;
}
template <typename T> __device__ __forceinline__ T min_nan(T a, T b) {
    if (m_isnan(a)) return a;
    if (m_isnan(b)) return b;
    return a < b ? a : b;
}

// Block-wide sum of one value per thread (blockDim.x a power of two <= 1024); the
// result is valid in every thread. `sh` holds blockDim.x elements.
template <typename T> __device__ T block_sum(T v, T* sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (u32 s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads();
    return r;
}

template <typename T> __device__ T block_max(T v, T* sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (u32 s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = max_nan(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    T r = sh[0];
    __syncthreads();
    return r;
}
