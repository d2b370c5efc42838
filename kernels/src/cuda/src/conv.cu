// im2col / col2im for conv2d (NCHW) through gemm, and the bias helpers.
// col[n][(c * kh + i) * kw + j][oh * ow_n + ow] = x[n][c][oh*sh - ph + i*dh][ow*sw - pw + j*dw]
// (zero outside the image).

struct ConvGeom {
    u64 n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw;
};

template <typename T>
__device__ void im2col_kernel(ConvGeom g, const T* x, T* col) {
    u64 p = g.oh * g.ow, ck = g.c * g.kh * g.kw;
    GRID_STRIDE_LOOP(idx, g.n * ck * p) {
        u64 pos = idx % p, row = (idx / p) % ck, n = idx / (p * ck);
        u64 oy = pos / g.ow, ox = pos - oy * g.ow;
        u64 j = row % g.kw, i = (row / g.kw) % g.kh, c = row / (g.kw * g.kh);
        long long y = (long long)(oy * g.sh + i * g.dh) - (long long)g.ph;
        long long xx = (long long)(ox * g.sw + j * g.dw) - (long long)g.pw;
        T v = (T)0;
        if (y >= 0 && y < (long long)g.h && xx >= 0 && xx < (long long)g.w)
            v = x[((n * g.c + c) * g.h + (u64)y) * g.w + (u64)xx];
        col[idx] = v;
    }
}

// The adjoint of im2col: every input pixel sums the column entries that read it
// (a gather, so no atomics and a deterministic order).
template <typename T>
__device__ void col2im_kernel(ConvGeom g, const T* col, T* x) {
    u64 p = g.oh * g.ow, ck = g.c * g.kh * g.kw;
    GRID_STRIDE_LOOP(idx, g.n * g.c * g.h * g.w) {
        u64 xx = idx % g.w, y = (idx / g.w) % g.h, c = (idx / (g.w * g.h)) % g.c;
        u64 n = idx / (g.w * g.h * g.c);
        T acc = (T)0;
        for (u64 i = 0; i < g.kh; ++i) {
            long long ty = (long long)(y + g.ph) - (long long)(i * g.dh);
            if (ty < 0 || ty % (long long)g.sh != 0) continue;
            u64 oy = (u64)ty / g.sh;
            if (oy >= g.oh) continue;
            for (u64 j = 0; j < g.kw; ++j) {
                long long tx = (long long)(xx + g.pw) - (long long)(j * g.dw);
                if (tx < 0 || tx % (long long)g.sw != 0) continue;
                u64 ox = (u64)tx / g.sw;
                if (ox >= g.ow) continue;
                u64 row = (c * g.kh + i) * g.kw + j;
                acc += col[(n * ck + row) * p + oy * g.ow + ox];
            }
        }
        x[idx] = acc;
    }
}

// out[n][c][s] += bias[c] over a dense [N, C, S] buffer.
template <typename T>
__device__ void add_channel_bias_kernel(u64 total, u64 c, u64 s, T* out, const T* bias) {
    GRID_STRIDE_LOOP(i, total) { out[i] += bias[(i / s) % c]; }
}

#define CONV(T, S)                                                                         \
    extern "C" __global__ void im2col_##S(ConvGeom g, const T* x, T* col) {               \
        im2col_kernel<T>(g, x, col);                                                       \
    }                                                                                      \
    extern "C" __global__ void col2im_##S(ConvGeom g, const T* col, T* x) {               \
        col2im_kernel<T>(g, col, x);                                                       \
    }                                                                                      \
    extern "C" __global__ void add_channel_bias_##S(u64 total, u64 c, u64 s, T* out,      \
                                                    const T* bias) {                       \
        add_channel_bias_kernel<T>(total, c, s, out, bias);                                \
    }

CONV(float, f32)
CONV(double, f64)
