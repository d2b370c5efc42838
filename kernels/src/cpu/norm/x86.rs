//! Hand-written f32 run loops for x86-64: AVX-512F and AVX2+FMA.
//!
//! Each function is `#[target_feature]`-gated; callers must only call it on a CPU with
//! that feature (the dispatch in `simd.rs` checks the clamped level). Sums are widened to
//! f64 lane by lane (`cvtps_pd`) before being accumulated, in several independent
//! accumulators to hide the add latency. Tails shorter than a vector are finished with
//! masked loads/stores (AVX-512) or scalar code (AVX2).

use std::arch::x86_64::*;

/// Adds the lanes of two AVX-512 f64 accumulators pairs into scalars.
#[target_feature(enable = "avx512f")]
fn reduce2_512(a: [__m512d; 4], b: [__m512d; 4]) -> (f64, f64) {
    let sa = _mm512_add_pd(_mm512_add_pd(a[0], a[1]), _mm512_add_pd(a[2], a[3]));
    let sb = _mm512_add_pd(_mm512_add_pd(b[0], b[1]), _mm512_add_pd(b[2], b[3]));
    (_mm512_reduce_add_pd(sa), _mm512_reduce_add_pd(sb))
}

/// Horizontal sum of an AVX f64 vector.
#[target_feature(enable = "avx2")]
fn hsum256(v: __m256d) -> f64 {
    let lo = _mm256_castpd256_pd128(v);
    let hi = _mm256_extractf128_pd(v, 1);
    let s = _mm_add_pd(lo, hi);
    _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
}

/// `(sum(x - shift), sum((x - shift)^2))` of a run, AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn shifted_sums_avx512(x: &[f32], shift: f64) -> (f64, f64) {
    let k = _mm512_set1_pd(shift);
    let mut s = [_mm512_setzero_pd(); 4];
    let mut q = [_mm512_setzero_pd(); 4];
    let chunks = x.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..4 {
            // SAFETY: `c` has 32 elements, so 8 floats from offset 8 * j (j < 4) are in bounds.
            let v = unsafe { _mm256_loadu_ps(c.as_ptr().add(8 * j)) };
            let d = _mm512_sub_pd(_mm512_cvtps_pd(v), k);
            s[j] = _mm512_add_pd(s[j], d);
            q[j] = _mm512_fmadd_pd(d, d, q[j]);
        }
    }
    for (j, c) in rest.chunks(8).enumerate() {
        let mask = (1u16 << c.len()) - 1;
        // SAFETY: the mask enables only the `c.len()` <= 8 lanes backed by `c`; masked-off
        // lanes are not accessed (and read as 0).
        let v = unsafe { _mm512_maskz_loadu_ps(mask, c.as_ptr()) };
        let d = _mm512_maskz_sub_pd(mask as u8, _mm512_cvtps_pd(_mm512_castps512_ps256(v)), k);
        s[j] = _mm512_add_pd(s[j], d);
        q[j] = _mm512_fmadd_pd(d, d, q[j]);
    }
    reduce2_512(s, q)
}

/// `(sum(x - shift), sum((x - shift)^2))` of a run, AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) fn shifted_sums_avx2(x: &[f32], shift: f64) -> (f64, f64) {
    let k = _mm256_set1_pd(shift);
    let mut s = [_mm256_setzero_pd(); 4];
    let mut q = [_mm256_setzero_pd(); 4];
    let (mut s_rest, mut q_rest) = (0.0, 0.0);
    let chunks = x.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for j in 0..4 {
            // SAFETY: `c` has 16 elements, so 4 floats from offset 4 * j (j < 4) are in bounds.
            let v = unsafe { _mm_loadu_ps(c.as_ptr().add(4 * j)) };
            let d = _mm256_sub_pd(_mm256_cvtps_pd(v), k);
            s[j] = _mm256_add_pd(s[j], d);
            q[j] = _mm256_fmadd_pd(d, d, q[j]);
        }
    }
    for &v in rest {
        let d = v as f64 - shift;
        s_rest += d;
        q_rest += d * d;
    }
    let s = _mm256_add_pd(_mm256_add_pd(s[0], s[1]), _mm256_add_pd(s[2], s[3]));
    let q = _mm256_add_pd(_mm256_add_pd(q[0], q[1]), _mm256_add_pd(q[2], q[3]));
    (hsum256(s) + s_rest, hsum256(q) + q_rest)
}

/// `y = (x - mean) * scale + shift`, AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn normalize_avx512(x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32) {
    let n = x.len().min(y.len());
    let (m, a, b) = (
        _mm512_set1_ps(mean),
        _mm512_set1_ps(scale),
        _mm512_set1_ps(shift),
    );
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the length of both slices.
        unsafe {
            let v = _mm512_loadu_ps(xp.add(i));
            _mm512_storeu_ps(yp.add(i), _mm512_fmadd_ps(_mm512_sub_ps(v, m), a, b));
        }
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as u16;
        // SAFETY: the mask enables only the n - i < 16 lanes that are in bounds of both
        // slices; masked-off lanes are neither read nor written.
        unsafe {
            let v = _mm512_maskz_loadu_ps(mask, xp.add(i));
            let r = _mm512_fmadd_ps(_mm512_sub_ps(v, m), a, b);
            _mm512_mask_storeu_ps(yp.add(i), mask, r);
        }
    }
}

/// `y = (x - mean) * scale + shift`, AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) fn normalize_avx2(x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32) {
    let n = x.len().min(y.len());
    let (m, a, b) = (
        _mm256_set1_ps(mean),
        _mm256_set1_ps(scale),
        _mm256_set1_ps(shift),
    );
    let (xp, yp) = (x.as_ptr(), y.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, the length of both slices.
        unsafe {
            let v = _mm256_loadu_ps(xp.add(i));
            _mm256_storeu_ps(yp.add(i), _mm256_fmadd_ps(_mm256_sub_ps(v, m), a, b));
        }
        i += 8;
    }
    for j in i..n {
        y[j] = (x[j] - mean).mul_add(scale, shift);
    }
}

/// `(sum(g), sum(g * (x - mean)))` of a run, AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn grad_sums_avx512(g: &[f32], x: &[f32], mean: f64) -> (f64, f64) {
    let m = _mm512_set1_pd(mean);
    let mut sg = [_mm512_setzero_pd(); 4];
    let mut sgd = [_mm512_setzero_pd(); 4];
    let n = g.len().min(x.len());
    let (gp, xp) = (g.as_ptr(), x.as_ptr());
    let mut i = 0;
    while i + 32 <= n {
        for j in 0..4 {
            // SAFETY: i + 8 * j + 8 <= i + 32 <= n, the length of both slices.
            let (gv, xv) = unsafe {
                (
                    _mm512_cvtps_pd(_mm256_loadu_ps(gp.add(i + 8 * j))),
                    _mm512_cvtps_pd(_mm256_loadu_ps(xp.add(i + 8 * j))),
                )
            };
            sg[j] = _mm512_add_pd(sg[j], gv);
            sgd[j] = _mm512_fmadd_pd(gv, _mm512_sub_pd(xv, m), sgd[j]);
        }
        i += 32;
    }
    let mut j = 0;
    while i < n {
        let len = (n - i).min(8);
        let mask = (1u16 << len) - 1;
        // SAFETY: the mask enables only the `len` <= 8 lanes in bounds of both slices;
        // masked-off lanes are not accessed (and read as 0, adding nothing).
        let (gv, xv) = unsafe {
            (
                _mm512_maskz_loadu_ps(mask, gp.add(i)),
                _mm512_maskz_loadu_ps(mask, xp.add(i)),
            )
        };
        let gv = _mm512_cvtps_pd(_mm512_castps512_ps256(gv));
        let xv = _mm512_cvtps_pd(_mm512_castps512_ps256(xv));
        sg[j] = _mm512_add_pd(sg[j], gv);
        sgd[j] = _mm512_fmadd_pd(gv, _mm512_sub_pd(xv, m), sgd[j]);
        i += len;
        j += 1;
    }
    reduce2_512(sg, sgd)
}

/// `(sum(g), sum(g * (x - mean)))` of a run, AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) fn grad_sums_avx2(g: &[f32], x: &[f32], mean: f64) -> (f64, f64) {
    let m = _mm256_set1_pd(mean);
    let mut sg = [_mm256_setzero_pd(); 4];
    let mut sgd = [_mm256_setzero_pd(); 4];
    let (mut a_rest, mut b_rest) = (0.0, 0.0);
    let n = g.len().min(x.len());
    let (gp, xp) = (g.as_ptr(), x.as_ptr());
    let mut i = 0;
    while i + 16 <= n {
        for j in 0..4 {
            // SAFETY: i + 4 * j + 4 <= i + 16 <= n, the length of both slices.
            let (gv, xv) = unsafe {
                (
                    _mm256_cvtps_pd(_mm_loadu_ps(gp.add(i + 4 * j))),
                    _mm256_cvtps_pd(_mm_loadu_ps(xp.add(i + 4 * j))),
                )
            };
            sg[j] = _mm256_add_pd(sg[j], gv);
            sgd[j] = _mm256_fmadd_pd(gv, _mm256_sub_pd(xv, m), sgd[j]);
        }
        i += 16;
    }
    for j in i..n {
        let gv = g[j] as f64;
        a_rest += gv;
        b_rest += gv * (x[j] as f64 - mean);
    }
    let a = _mm256_add_pd(_mm256_add_pd(sg[0], sg[1]), _mm256_add_pd(sg[2], sg[3]));
    let b = _mm256_add_pd(_mm256_add_pd(sgd[0], sgd[1]), _mm256_add_pd(sgd[2], sgd[3]));
    (hsum256(a) + a_rest, hsum256(b) + b_rest)
}

/// `gx = a * g + b * (x - mean) + c` with `coef = [mean, a, b, c]`, AVX-512.
#[target_feature(enable = "avx512f")]
pub(super) fn grad_input_avx512(g: &[f32], x: &[f32], gx: &mut [f32], coef: [f32; 4]) {
    let n = g.len().min(x.len()).min(gx.len());
    let [m, a, b, c] = [
        _mm512_set1_ps(coef[0]),
        _mm512_set1_ps(coef[1]),
        _mm512_set1_ps(coef[2]),
        _mm512_set1_ps(coef[3]),
    ];
    let (gp, xp, op) = (g.as_ptr(), x.as_ptr(), gx.as_mut_ptr());
    let mut i = 0;
    while i + 16 <= n {
        // SAFETY: i + 16 <= n, the length of all three slices.
        unsafe {
            let gv = _mm512_loadu_ps(gp.add(i));
            let xv = _mm512_loadu_ps(xp.add(i));
            let r = _mm512_fmadd_ps(a, gv, _mm512_fmadd_ps(b, _mm512_sub_ps(xv, m), c));
            _mm512_storeu_ps(op.add(i), r);
        }
        i += 16;
    }
    if i < n {
        let mask: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as u16;
        // SAFETY: the mask enables only the n - i < 16 lanes in bounds of all three
        // slices; masked-off lanes are neither read nor written.
        unsafe {
            let gv = _mm512_maskz_loadu_ps(mask, gp.add(i));
            let xv = _mm512_maskz_loadu_ps(mask, xp.add(i));
            let r = _mm512_fmadd_ps(a, gv, _mm512_fmadd_ps(b, _mm512_sub_ps(xv, m), c));
            _mm512_mask_storeu_ps(op.add(i), mask, r);
        }
    }
}

/// `gx = a * g + b * (x - mean) + c` with `coef = [mean, a, b, c]`, AVX2.
#[target_feature(enable = "avx2,fma")]
pub(super) fn grad_input_avx2(g: &[f32], x: &[f32], gx: &mut [f32], coef: [f32; 4]) {
    let n = g.len().min(x.len()).min(gx.len());
    let [m, a, b, c] = [
        _mm256_set1_ps(coef[0]),
        _mm256_set1_ps(coef[1]),
        _mm256_set1_ps(coef[2]),
        _mm256_set1_ps(coef[3]),
    ];
    let (gp, xp, op) = (g.as_ptr(), x.as_ptr(), gx.as_mut_ptr());
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, the length of all three slices.
        unsafe {
            let gv = _mm256_loadu_ps(gp.add(i));
            let xv = _mm256_loadu_ps(xp.add(i));
            let r = _mm256_fmadd_ps(a, gv, _mm256_fmadd_ps(b, _mm256_sub_ps(xv, m), c));
            _mm256_storeu_ps(op.add(i), r);
        }
        i += 8;
    }
    let [m, a, b, c] = coef;
    for j in i..n {
        gx[j] = a.mul_add(g[j], b.mul_add(x[j] - m, c));
    }
}
