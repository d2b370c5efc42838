//! x86-64 backends: AVX2+FMA (`__m256`, 8 × f32) and AVX-512F (`__m512`, 16 × f32).
//!
//! The backend types are zero-sized tokens whose constructors are `unsafe`: a token
//! exists only inside `run_avx2` / `run_avx512`, which [`super::Float::dispatch`] calls
//! after checking the CPU. That is the invariant every `unsafe` block below relies on
//! ("the token proves the feature"). Only AVX-512F instructions are used at the
//! AVX-512 level, because `SimdLevel::Avx512` promises exactly AVX-512F.

use std::arch::x86_64::*;

use super::{math, Scalar, Simd, WithSimd};

/// Runs `w` with the AVX-512 backend.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_avx512<W: WithSimd<f32>>(w: W) -> W::Output {
    // SAFETY: the caller guarantees AVX-512F.
    w.run(unsafe { Avx512::new_unchecked() })
}

/// Runs `w` with the AVX2+FMA backend.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run_avx2<W: WithSimd<f32>>(w: W) -> W::Output {
    // SAFETY: the caller guarantees AVX2 and FMA.
    w.run(unsafe { Avx2::new_unchecked() })
}

/// Runs an `f64` kernel (the one-lane backend) compiled with AVX-512F enabled, so that
/// the compiler may vectorise it; the arithmetic and its order are unchanged.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run_scalar_avx512<W: WithSimd<f64>>(w: W) -> W::Output {
    w.run(Scalar::<f64>::new())
}

/// As [`run_scalar_avx512`], with AVX2 and FMA enabled.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run_scalar_avx2<W: WithSimd<f64>>(w: W) -> W::Output {
    w.run(Scalar::<f64>::new())
}

/// AVX-512F backend token: 16 × f32 per vector.
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F.
    unsafe fn new_unchecked() -> Self {
        Self { _private: () }
    }
}

/// AVX2+FMA backend token: 8 × f32 per vector.
#[derive(Clone, Copy, Debug)]
pub(super) struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    unsafe fn new_unchecked() -> Self {
        Self { _private: () }
    }
}

impl Simd for Avx512 {
    type E = f32;
    type V = __m512;
    type M = __mmask16;
    type W = (__m512d, __m512d);
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 readable floats.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 writable floats.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail(self, p: *const f32, n: usize, pad: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F; the masked load reads only the first
        // `n <= 16` floats, which the caller guarantees are readable (masked-off lanes
        // do not fault).
        unsafe {
            let k: __mmask16 = ((1u32 << n) - 1) as __mmask16;
            _mm512_mask_loadu_ps(_mm512_set1_ps(pad), k, p)
        }
    }
    #[inline(always)]
    unsafe fn store_tail(self, p: *mut f32, n: usize, v: __m512) {
        // SAFETY: the token proves AVX-512F; the masked store writes only the first
        // `n <= 16` floats, which the caller guarantees are writable.
        unsafe {
            let k: __mmask16 = ((1u32 << n) - 1) as __mmask16;
            _mm512_mask_storeu_ps(p, k, v)
        }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m512, b: __m512, c: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_sqrt_ps(a) }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_abs_ps(a) }
    }
    #[inline(always)]
    fn neg(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F (integer xor, as `xor_ps` needs AVX-512DQ).
        unsafe {
            _mm512_castsi512_ps(_mm512_xor_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(i32::MIN),
            ))
        }
    }
    #[inline(always)]
    fn floor(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn round(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn lt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn gt(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m512, b: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, a: __m512) -> __mmask16 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a) }
    }
    #[inline(always)]
    fn and(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a & b
    }
    #[inline(always)]
    fn or(self, a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    fn select(self, m: __mmask16, t: __m512, f: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F. blend takes b where the mask bit is set.
        unsafe { _mm512_mask_blend_ps(m, f, t) }
    }
    #[inline(always)]
    fn all(self, m: __mmask16) -> bool {
        m == 0xffff
    }
    #[inline(always)]
    fn any(self, m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    fn add_one_where(self, acc: __m512, m: __mmask16) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mask_add_ps(acc, m, acc, _mm512_set1_ps(1.0)) }
    }
    #[inline(always)]
    fn ldexp(self, p: __m512, n: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F. scalef computes p * 2^floor(n) with IEEE
        // overflow and subnormal rounding.
        unsafe { _mm512_scalef_ps(p, n) }
    }
    #[inline(always)]
    fn frexp(self, x: __m512) -> (__m512, __m512) {
        // SAFETY: the token proves AVX-512F. getexp/getmant handle subnormals.
        unsafe {
            let e = _mm512_getexp_ps(x);
            let m = _mm512_getmant_ps::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_ZERO>(x);
            (m, e)
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m512) -> f32 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m512) -> f32 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_max_ps(v) }
    }
    #[inline(always)]
    fn reduce_min(self, v: __m512) -> f32 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_min_ps(v) }
    }
    #[inline(always)]
    unsafe fn store_index(self, p: *mut i32, v: __m512) {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 writable i32s.
        unsafe { _mm512_storeu_si512(p.cast(), _mm512_cvttps_epi32(v)) }
    }
    #[inline(always)]
    fn exp(self, x: __m512) -> __m512 {
        math::exp(self, x)
    }
    #[inline(always)]
    fn ln(self, x: __m512) -> __m512 {
        math::ln(self, x)
    }
    #[inline(always)]
    fn tanh(self, x: __m512) -> __m512 {
        math::tanh(self, x)
    }
    #[inline(always)]
    fn sigmoid(self, x: __m512) -> __m512 {
        math::sigmoid(self, x)
    }
    #[inline(always)]
    fn w_zero(self) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_setzero_pd(), _mm512_setzero_pd()) }
    }
    #[inline(always)]
    fn w_splat(self, x: f64) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_set1_pd(x), _mm512_set1_pd(x)) }
    }
    #[inline(always)]
    fn w_widen(self, v: __m512) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F (the upper half is extracted as 4 × f64,
        // which is AVX-512F, and reinterpreted as 8 × f32).
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(v),
            )));
            (lo, hi)
        }
    }
    #[inline(always)]
    fn w_add(self, a: (__m512d, __m512d), b: (__m512d, __m512d)) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_add_pd(a.0, b.0), _mm512_add_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn w_sub(self, a: (__m512d, __m512d), b: (__m512d, __m512d)) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_sub_pd(a.0, b.0), _mm512_sub_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn w_mul_add(
        self,
        a: (__m512d, __m512d),
        b: (__m512d, __m512d),
        c: (__m512d, __m512d),
    ) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            (
                _mm512_fmadd_pd(a.0, b.0, c.0),
                _mm512_fmadd_pd(a.1, b.1, c.1),
            )
        }
    }
    #[inline(always)]
    fn w_sum(self, w: (__m512d, __m512d)) -> f64 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_add_pd(_mm512_add_pd(w.0, w.1)) }
    }
    #[inline(always)]
    unsafe fn w_store(self, p: *mut f64, w: (__m512d, __m512d)) {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 writable f64s.
        unsafe {
            _mm512_storeu_pd(p, w.0);
            _mm512_storeu_pd(p.add(8), w.1);
        }
    }
}

/// Horizontal reduction of the four lanes of a 128-bit vector with the SSE
/// intrinsic `$op`, in a fixed tree order. A macro rather than a function taking the
/// intrinsic as a pointer, so that it always inlines.
macro_rules! reduce128 {
    ($v:expr, $op:ident) => {{
        let v = $v;
        let v = $op(v, _mm_movehl_ps(v, v));
        let v = $op(v, _mm_shuffle_ps::<0b01>(v, v));
        _mm_cvtss_f32(v)
    }};
}

/// Lanes `0..n` set (all bits), for AVX2 masked loads and stores (`n <= 8`).
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
unsafe fn avx2_tail_mask(n: usize) -> __m256i {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes)
    }
}

impl Simd for Avx2 {
    type E = f32;
    type V = __m256;
    type M = __m256;
    type W = (__m256d, __m256d);
    const LANES: usize = 8;

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the token proves AVX2; the caller guarantees 8 readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: the token proves AVX2; the caller guarantees 8 writable floats.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_tail(self, p: *const f32, n: usize, pad: f32) -> __m256 {
        // SAFETY: the token proves AVX2; `maskload` reads only the lanes whose mask is
        // set (the first `n <= 8`, which the caller guarantees are readable) and does
        // not fault on the others, which are then filled with `pad`.
        unsafe {
            let m = avx2_tail_mask(n);
            let v = _mm256_maskload_ps(p, m);
            _mm256_blendv_ps(_mm256_set1_ps(pad), v, _mm256_castsi256_ps(m))
        }
    }
    #[inline(always)]
    unsafe fn store_tail(self, p: *mut f32, n: usize, v: __m256) {
        // SAFETY: the token proves AVX2; `maskstore` writes only the first `n <= 8`
        // lanes, which the caller guarantees are writable.
        unsafe { _mm256_maskstore_ps(p, avx2_tail_mask(n), v) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn mul_add(self, a: __m256, b: __m256, c: __m256) -> __m256 {
        // SAFETY: the token proves FMA.
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn sqrt(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sqrt_ps(a) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }
    #[inline(always)]
    fn neg(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_xor_ps(a, _mm256_set1_ps(-0.0)) }
    }
    #[inline(always)]
    fn floor(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_floor_ps(a) }
    }
    #[inline(always)]
    fn round(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(a) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn gt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cmp_ps::<_CMP_GT_OQ>(a, b) }
    }
    #[inline(always)]
    fn ge(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(a, b) }
    }
    #[inline(always)]
    fn is_nan(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(a, a) }
    }
    #[inline(always)]
    fn and(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    fn or(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __m256, t: __m256, f: __m256) -> __m256 {
        // SAFETY: the token proves AVX2. blendv takes b where the mask's sign bit is set.
        unsafe { _mm256_blendv_ps(f, t, m) }
    }
    #[inline(always)]
    fn all(self, m: __m256) -> bool {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_movemask_ps(m) == 0xff }
    }
    #[inline(always)]
    fn any(self, m: __m256) -> bool {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_movemask_ps(m) != 0 }
    }
    #[inline(always)]
    fn add_one_where(self, acc: __m256, m: __m256) -> __m256 {
        // SAFETY: the token proves AVX2. The mask lanes are all-ones or zero.
        unsafe { _mm256_add_ps(acc, _mm256_and_ps(m, _mm256_set1_ps(1.0))) }
    }
    #[inline(always)]
    fn ldexp(self, p: __m256, n: __m256) -> __m256 {
        // SAFETY: the token proves AVX2. p * 2^n1 * 2^n2 with n1 = n >> 1, n2 = n - n1:
        // both factors are normal floats for -252 <= n <= 254, so the product
        // overflows to infinity and rounds into subnormals exactly like one scaling.
        unsafe {
            let n = _mm256_cvtps_epi32(n);
            let n1 = _mm256_srai_epi32::<1>(n);
            let n2 = _mm256_sub_epi32(n, n1);
            let bias = _mm256_set1_epi32(127);
            let f1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n1, bias)));
            let f2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n2, bias)));
            _mm256_mul_ps(_mm256_mul_ps(p, f1), f2)
        }
    }
    #[inline(always)]
    fn frexp(self, x: __m256) -> (__m256, __m256) {
        // SAFETY: the token proves AVX2. Subnormals are scaled by 2^23 first.
        unsafe {
            let sub = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(f32::MIN_POSITIVE));
            let x = _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(8_388_608.0)), sub);
            let bits = _mm256_castps_si256(x);
            let biased = _mm256_and_si256(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(0xff));
            let e = _mm256_cvtepi32_ps(_mm256_sub_epi32(biased, _mm256_set1_epi32(127)));
            let e = _mm256_sub_ps(e, _mm256_and_ps(sub, _mm256_set1_ps(23.0)));
            let m = _mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                _mm256_set1_epi32(0x3f80_0000),
            );
            (_mm256_castsi256_ps(m), e)
        }
    }
    #[inline(always)]
    fn reduce_add(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            reduce128!(s, _mm_add_ps)
        }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            reduce128!(s, _mm_max_ps)
        }
    }
    #[inline(always)]
    fn reduce_min(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            reduce128!(s, _mm_min_ps)
        }
    }
    #[inline(always)]
    unsafe fn store_index(self, p: *mut i32, v: __m256) {
        // SAFETY: the token proves AVX2; the caller guarantees 8 writable i32s.
        unsafe { _mm256_storeu_si256(p.cast(), _mm256_cvttps_epi32(v)) }
    }
    #[inline(always)]
    fn exp(self, x: __m256) -> __m256 {
        math::exp(self, x)
    }
    #[inline(always)]
    fn ln(self, x: __m256) -> __m256 {
        math::ln(self, x)
    }
    #[inline(always)]
    fn tanh(self, x: __m256) -> __m256 {
        math::tanh(self, x)
    }
    #[inline(always)]
    fn sigmoid(self, x: __m256) -> __m256 {
        math::sigmoid(self, x)
    }
    #[inline(always)]
    fn w_zero(self) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX2.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[inline(always)]
    fn w_splat(self, x: f64) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX2.
        unsafe { (_mm256_set1_pd(x), _mm256_set1_pd(x)) }
    }
    #[inline(always)]
    fn w_widen(self, v: __m256) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX2.
        unsafe {
            (
                _mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v)),
            )
        }
    }
    #[inline(always)]
    fn w_add(self, a: (__m256d, __m256d), b: (__m256d, __m256d)) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX2.
        unsafe { (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn w_sub(self, a: (__m256d, __m256d), b: (__m256d, __m256d)) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX2.
        unsafe { (_mm256_sub_pd(a.0, b.0), _mm256_sub_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn w_mul_add(
        self,
        a: (__m256d, __m256d),
        b: (__m256d, __m256d),
        c: (__m256d, __m256d),
    ) -> (__m256d, __m256d) {
        // SAFETY: the token proves FMA.
        unsafe {
            (
                _mm256_fmadd_pd(a.0, b.0, c.0),
                _mm256_fmadd_pd(a.1, b.1, c.1),
            )
        }
    }
    #[inline(always)]
    fn w_sum(self, w: (__m256d, __m256d)) -> f64 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let s = _mm256_add_pd(w.0, w.1);
            let s = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd::<1>(s));
            _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)))
        }
    }
    #[inline(always)]
    unsafe fn w_store(self, p: *mut f64, w: (__m256d, __m256d)) {
        // SAFETY: the token proves AVX2; the caller guarantees 8 writable f64s.
        unsafe {
            _mm256_storeu_pd(p, w.0);
            _mm256_storeu_pd(p.add(4), w.1);
        }
    }
}
