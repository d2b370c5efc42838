//! The SIMD layer shared by the map, reduction and statistics kernels (crate-private).
//!
//! Each kernel is written once, generically over the [`Simd`] trait, and instantiated
//! for every backend:
//!
//! - [`Scalar<T>`]: one lane of `f32` or `f64`, plain Rust. This is the portable path,
//!   and for `f64` it is the only path (compiled with AVX2/AVX-512 enabled on machines
//!   that have them, so the compiler may auto-vectorise it; results are unchanged
//!   because Rust never contracts or reorders floating-point arithmetic).
//! - `x86::Avx2` (8 × f32) and `x86::Avx512` (16 × f32): `std::arch` intrinsics.
//!
//! A kernel is a value implementing [`WithSimd`]; [`Float::dispatch`] picks the backend
//! for a [`SimdLevel`] and calls [`WithSimd::run`] from inside a
//! `#[target_feature]` function. Every `Simd` method is `#[inline(always)]`, so the
//! whole kernel is inlined into that function and compiled with its features.
//!
//! Transcendental functions for `f32` (exp, ln, tanh, sigmoid) are defined once in
//! [`math`] over `Simd<E = f32>`, so the portable and the SIMD paths evaluate the same
//! polynomials. For `f64` they are std's functions.

pub(crate) mod math;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::fmt::{Debug, Display};
use std::ops::{Add, Div, Mul, Neg, Sub};

use rayon::prelude::*;

pub(crate) use scalar::Scalar;

use crate::cpu::dispatch::SimdLevel;

/// The largest number of lanes any backend has (AVX-512 with `f32`); sizes tail buffers.
pub(crate) const MAX_LANES: usize = 16;

/// Floating-point element types the kernels accept: `f32` and `f64`.
///
/// `f32` is the training dtype and runs the SIMD paths; `f64` is the reference dtype
/// for gradient checks and always uses std's exact math functions. The trait is
/// sealed: the kernels are implemented for exactly these two types.
///
/// ```
/// use kernels::cpu::elementwise::Float;
/// fn mean<T: Float>(x: &[T]) -> f64 {
///     x.iter().map(|v| v.to_f64()).sum::<f64>() / x.len() as f64
/// }
/// assert_eq!(mean(&[1.0f32, 2.0, 3.0]), 2.0);
/// ```
pub trait Float:
    sealed::Sealed
    + Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + PartialOrd
    + Debug
    + Display
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    /// The type's name as written in Rust (`"f32"`, `"f64"`), for messages.
    const NAME: &'static str;
    /// `0.0`.
    const ZERO: Self;
    /// `1.0`.
    const ONE: Self;

    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// Rounds an `f64` to this type (nearest, ties to even).
    fn from_f64(v: f64) -> Self;
}

/// A kernel body generic over the SIMD backend; see the module docs.
pub trait WithSimd<T: Float> {
    /// What the kernel returns.
    type Output;
    /// Runs the kernel with backend `s`.
    fn run<S: Simd<E = T>>(self, s: S) -> Self::Output;
}

pub(crate) mod sealed {
    use super::{Float, WithSimd};
    use crate::cpu::dispatch::SimdLevel;

    /// Crate-internal operations of [`Float`]; not nameable outside the crate, which
    /// seals `Float` to `f32` and `f64`. (`is_nan`/`is_finite` take `self` by value
    /// like std's.)
    #[allow(clippy::wrong_self_convention)]
    pub trait Sealed: Sized {
        /// NaN.
        const NAN: Self;
        /// Positive infinity.
        const INFINITY: Self;
        /// Negative infinity.
        const NEG_INFINITY: Self;

        /// Runs `w` with the backend for `level` (clamped to what the CPU supports).
        fn dispatch<W: WithSimd<Self>>(level: SimdLevel, w: W) -> W::Output
        where
            Self: Float;

        /// `x` as `f32`s when `Self` is `f32` (kernels with an `f32`-only fast path).
        fn as_f32_slice(x: &[Self]) -> Option<&[f32]>;
        /// `|x|`.
        fn abs(self) -> Self;
        /// Square root (IEEE, correctly rounded).
        fn sqrt(self) -> Self;
        /// Largest integer not above `x`.
        fn floor(self) -> Self;
        /// Nearest integer, ties to even.
        fn round_even(self) -> Self;
        /// Whether `x` is NaN.
        fn is_nan(self) -> bool;
        /// Whether `x` is neither NaN nor infinite.
        fn is_finite(self) -> bool;
        /// `x^y` (std).
        fn powf(self, y: Self) -> Self;
        /// `p * 2^n` for an integral `n` in the range documented on [`super::Simd::ldexp`].
        fn ldexp(p: Self, n: Self) -> Self;
        /// Mantissa in `[1, 2)` and exponent of a positive, finite, non-zero `x`.
        fn frexp(x: Self) -> (Self, Self);
        /// `e^x` as the portable path computes it (f32: the shared polynomial; f64: std).
        fn exp_scalar(self) -> Self;
        /// Natural logarithm as the portable path computes it.
        fn ln_scalar(self) -> Self;
        /// `tanh` as the portable path computes it.
        fn tanh_scalar(self) -> Self;
        /// Logistic sigmoid as the portable path computes it.
        fn sigmoid_scalar(self) -> Self;
    }
}

/// A SIMD backend: a vector type of `LANES` elements of `E` and the operations the
/// kernels need. Backends are zero-sized tokens; holding one proves that the CPU
/// supports its instructions (x86 tokens are created only by [`Float::dispatch`]).
///
/// Semantics shared by every backend (the kernels rely on them):
/// - `min(a, b)` is `if a < b { a } else { b }` and `max(a, b)` is
///   `if a > b { a } else { b }`: when either operand is NaN (or both are zeros) the
///   result is `b`. This is the x86 `minps`/`maxps` rule.
/// - comparisons are ordered: any comparison with NaN is false.
/// - `mul_add(a, b, c)` is `a * b + c`, fused on AVX2/AVX-512, two roundings on the
///   portable path.
pub trait Simd: Copy + Send + Sync + 'static {
    /// Element type.
    type E: Float;
    /// A vector of `LANES` elements.
    type V: Copy;
    /// A lane mask produced by comparisons.
    type M: Copy;
    /// An `f64` accumulator covering `LANES` elements (for sums of `f32` data).
    type W: Copy;
    /// Number of elements in `V`.
    const LANES: usize;

    /// Loads `LANES` elements.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` elements.
    unsafe fn load(self, p: *const Self::E) -> Self::V;
    /// Stores `LANES` elements.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` elements.
    unsafe fn store(self, p: *mut Self::E, v: Self::V);
    /// Every lane set to `x`.
    fn splat(self, x: Self::E) -> Self::V;

    /// `a + b`.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a - b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b` (IEEE division).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a * b + c` (see the trait docs for rounding).
    fn mul_add(self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `if a < b { a } else { b }`.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }`.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// Square root (IEEE).
    fn sqrt(self, a: Self::V) -> Self::V;
    /// `|a|` (clears the sign bit).
    fn abs(self, a: Self::V) -> Self::V;
    /// `-a` (flips the sign bit).
    fn neg(self, a: Self::V) -> Self::V;
    /// Rounds toward negative infinity.
    fn floor(self, a: Self::V) -> Self::V;
    /// Rounds to nearest, ties to even.
    fn round(self, a: Self::V) -> Self::V;

    /// `a < b` per lane.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a > b` per lane.
    fn gt(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a >= b` per lane.
    fn ge(self, a: Self::V, b: Self::V) -> Self::M;
    /// `a == b` per lane.
    fn eq(self, a: Self::V, b: Self::V) -> Self::M;
    /// Lanes that are NaN.
    fn is_nan(self, a: Self::V) -> Self::M;
    /// Lanes set in both masks.
    fn and(self, a: Self::M, b: Self::M) -> Self::M;
    /// Lanes set in either mask.
    fn or(self, a: Self::M, b: Self::M) -> Self::M;
    /// Per lane, `t` where `m` is set and `f` elsewhere.
    fn select(self, m: Self::M, t: Self::V, f: Self::V) -> Self::V;
    /// Whether every lane of `m` is set.
    fn all(self, m: Self::M) -> bool;
    /// Whether some lane of `m` is set.
    fn any(self, m: Self::M) -> bool;
    /// `acc + 1` in the lanes set in `m`, `acc` elsewhere (per-lane counting).
    fn add_one_where(self, acc: Self::V, m: Self::M) -> Self::V;

    /// `p * 2^n` for integral `n` with `-252 <= n <= 254` (f32); overflow gives
    /// infinity and underflow rounds correctly into subnormals or zero.
    fn ldexp(self, p: Self::V, n: Self::V) -> Self::V;
    /// For positive, finite, non-zero lanes (subnormals included): a mantissa in
    /// `[1, 2)` and the exponent, with `x = m * 2^e`. Other lanes give unspecified
    /// values, which callers replace.
    fn frexp(self, x: Self::V) -> (Self::V, Self::V);

    /// Sum of the lanes (in the backend's fixed tree order).
    fn reduce_add(self, v: Self::V) -> Self::E;
    /// Largest lane; lanes must not be NaN.
    fn reduce_max(self, v: Self::V) -> Self::E;
    /// Smallest lane; lanes must not be NaN.
    fn reduce_min(self, v: Self::V) -> Self::E;
    /// Converts integral lanes (within the `i32` range) to `i32` and stores them.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` `i32`s.
    unsafe fn store_index(self, p: *mut i32, v: Self::V);

    /// `e^x` (see [`math`] for the `f32` accuracy).
    fn exp(self, x: Self::V) -> Self::V;
    /// Natural logarithm.
    fn ln(self, x: Self::V) -> Self::V;
    /// Hyperbolic tangent.
    fn tanh(self, x: Self::V) -> Self::V;
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    fn sigmoid(self, x: Self::V) -> Self::V;

    /// A zero `f64` accumulator.
    fn w_zero(self) -> Self::W;
    /// Every accumulator lane set to `x`.
    fn w_splat(self, x: f64) -> Self::W;
    /// Widens every lane of `v` to `f64` (exact).
    fn w_widen(self, v: Self::V) -> Self::W;
    /// `a + b`.
    fn w_add(self, a: Self::W, b: Self::W) -> Self::W;
    /// `a - b`.
    fn w_sub(self, a: Self::W, b: Self::W) -> Self::W;
    /// `a * b + c` (fused on AVX2/AVX-512).
    fn w_mul_add(self, a: Self::W, b: Self::W, c: Self::W) -> Self::W;
    /// Sum of the accumulator lanes.
    fn w_sum(self, w: Self::W) -> f64;
    /// Stores the `LANES` accumulator lanes.
    ///
    /// # Safety
    /// `p` must be valid for writing `LANES` `f64`s.
    unsafe fn w_store(self, p: *mut f64, w: Self::W);

    /// `max` that propagates NaN from either operand.
    #[inline(always)]
    fn max_nan(self, a: Self::V, b: Self::V) -> Self::V {
        // max(a, b) already returns b when b is NaN; fix up the lanes where a is NaN.
        self.select(self.is_nan(a), a, self.max(a, b))
    }

    /// `min` that propagates NaN from either operand.
    #[inline(always)]
    fn min_nan(self, a: Self::V, b: Self::V) -> Self::V {
        self.select(self.is_nan(a), a, self.min(a, b))
    }

    /// Loads `n <= LANES` elements, filling the other lanes with `pad` (masked loads
    /// on x86: no access beyond `n` elements).
    ///
    /// # Safety
    /// `p` must be valid for reading `n` elements and `n <= LANES`.
    unsafe fn load_tail(self, p: *const Self::E, n: usize, pad: Self::E) -> Self::V;

    /// Stores the first `n <= LANES` lanes of `v`.
    ///
    /// # Safety
    /// `p` must be valid for writing `n` elements and `n <= LANES`.
    unsafe fn store_tail(self, p: *mut Self::E, n: usize, v: Self::V);
}

/// A vector function of one argument, applied by [`map1`].
///
/// Kernels pass small `Copy` structs implementing this (with `call` marked
/// `#[inline(always)]`) rather than closures: a closure is compiled as its own function,
/// without the `#[target_feature]`s of the entry point, and when the compiler declines
/// to inline it every SIMD operation inside becomes a function call. An
/// `#[inline(always)]` method is always inlined.
pub trait Map1<S: Simd>: Copy {
    /// The function on one vector.
    fn call(self, s: S, x: S::V) -> S::V;
}

/// A vector function of two arguments, applied by [`map2`] (see [`Map1`]).
pub trait Map2<S: Simd>: Copy {
    /// The function on one pair of vectors.
    fn call(self, s: S, x: S::V, y: S::V) -> S::V;
}

/// Applies `f` to every element: `out[i] = f(a[i])` for `i < n`, a vector at a time
/// with a padded tail. `out` may equal `a` (in-place), since each vector is loaded
/// before it is stored.
///
/// # Safety
/// `a` must be readable and `out` writable for `n` elements; the two ranges either
/// coincide exactly or do not overlap.
#[inline(always)]
pub(crate) unsafe fn map1<S: Simd, F: Map1<S>>(
    s: S,
    a: *const S::E,
    out: *mut S::E,
    n: usize,
    f: F,
) {
    let l = S::LANES;
    let mut i = 0;
    // SAFETY: every access is at an offset below `n` (full vectors while i + l <= n,
    // then a tail of n - i < l elements), within the ranges the caller vouches for.
    unsafe {
        while i + l <= n {
            s.store(out.add(i), f.call(s, s.load(a.add(i))));
            i += l;
        }
        if i < n {
            let v = f.call(s, s.load_tail(a.add(i), n - i, S::E::ZERO));
            s.store_tail(out.add(i), n - i, v);
        }
    }
}

/// `out[i] = f(a[i], b[i])` for `i < n`; `out` may equal `a` or `b`.
///
/// # Safety
/// `a`, `b` readable and `out` writable for `n` elements; `out` either coincides with
/// an input or overlaps neither.
#[inline(always)]
pub(crate) unsafe fn map2<S: Simd, F: Map2<S>>(
    s: S,
    a: *const S::E,
    b: *const S::E,
    out: *mut S::E,
    n: usize,
    f: F,
) {
    let l = S::LANES;
    let mut i = 0;
    // SAFETY: as in `map1`, every access is at an offset below `n`.
    unsafe {
        while i + l <= n {
            s.store(out.add(i), f.call(s, s.load(a.add(i)), s.load(b.add(i))));
            i += l;
        }
        if i < n {
            let z = S::E::ZERO;
            let v = f.call(
                s,
                s.load_tail(a.add(i), n - i, z),
                s.load_tail(b.add(i), n - i, z),
            );
            s.store_tail(out.add(i), n - i, v);
        }
    }
}

/// A raw pointer that may cross threads. Used only to hand disjoint sub-ranges of one
/// buffer to rayon tasks; every use states why the ranges are disjoint.
pub(crate) struct SyncPtr<T>(*mut T);

impl<T> Clone for SyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SyncPtr<T> {}

// SAFETY: `SyncPtr` is only used to give rayon tasks non-overlapping ranges of a buffer
// that outlives the parallel call (see `for_each_range`), so sharing the address is fine.
unsafe impl<T: Send> Send for SyncPtr<T> {}
// SAFETY: as above; the pointer itself is never dereferenced concurrently at one index.
unsafe impl<T: Send> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// Wraps a mutable pointer.
    pub(crate) fn new(p: *mut T) -> Self {
        Self(p)
    }
    /// Wraps a shared pointer (the tasks only read through it).
    pub(crate) fn from_const(p: *const T) -> Self {
        Self(p as *mut T)
    }
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Elementwise maps run on one thread below this many elements.
pub(crate) const PAR_MIN_ELEMS: usize = 1 << 15;
/// Elements per rayon task for elementwise maps (a multiple of `MAX_LANES`).
pub(crate) const PAR_CHUNK_ELEMS: usize = 1 << 14;

/// Calls `f(start, len)` over `0..n` split into ranges: one range below `min`
/// elements, otherwise `chunk`-sized ranges run by rayon.
pub(crate) fn for_each_range(n: usize, min: usize, chunk: usize, f: impl Fn(usize, usize) + Sync) {
    if n < min || chunk == 0 {
        f(0, n);
        return;
    }
    let tasks = n.div_ceil(chunk);
    (0..tasks).into_par_iter().for_each(|t| {
        let start = t * chunk;
        f(start, chunk.min(n - start));
    });
}

/// Runs `w` at `level` for element type `T` (a shorthand for [`Float::dispatch`]).
#[inline]
pub(crate) fn dispatch<T: Float, W: WithSimd<T>>(level: SimdLevel, w: W) -> W::Output {
    <T as sealed::Sealed>::dispatch(level, w)
}

impl Float for f32 {
    const NAME: &'static str = "f32";
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl sealed::Sealed for f32 {
    const NAN: Self = f32::NAN;
    const INFINITY: Self = f32::INFINITY;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;

    fn dispatch<W: WithSimd<Self>>(level: SimdLevel, w: W) -> W::Output {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `clamp_to_supported` returned Avx512, so the CPU has AVX-512F.
            SimdLevel::Avx512 => unsafe { x86::run_avx512(w) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `clamp_to_supported` returned Avx2Fma, so the CPU has AVX2 and FMA.
            SimdLevel::Avx2Fma => unsafe { x86::run_avx2(w) },
            _ => w.run(Scalar::<f32>::new()),
        }
    }

    #[inline(always)]
    fn as_f32_slice(x: &[Self]) -> Option<&[f32]> {
        Some(x)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn floor(self) -> Self {
        // Not `f32::floor`, which is a libm call on baseline x86-64 (no SSE4.1).
        // From 2^23 on every f32 is an integer (and inf/NaN pass through).
        if f32::abs(self) >= 8_388_608.0 || f32::is_nan(self) {
            return self;
        }
        let t = self as i32 as f32;
        let t = if t > self { t - 1.0 } else { t };
        if t == self {
            self // keeps -0.0
        } else {
            t
        }
    }
    #[inline(always)]
    fn round_even(self) -> Self {
        // Adding and subtracting 2^23 rounds to an integer in the current (nearest,
        // ties-to-even) mode; not `round_ties_even`, a libm call on baseline x86-64.
        if f32::abs(self) >= 8_388_608.0 || f32::is_nan(self) {
            return self;
        }
        let r = if self >= 0.0 {
            (self + 8_388_608.0) - 8_388_608.0
        } else {
            (self - 8_388_608.0) + 8_388_608.0
        };
        r.copysign(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
    #[inline(always)]
    fn powf(self, y: Self) -> Self {
        f32::powf(self, y)
    }
    #[inline(always)]
    fn ldexp(p: Self, n: Self) -> Self {
        // Two factors 2^n1 * 2^n2, each a normal float, so results in the subnormal
        // range are rounded once, correctly.
        let n = n as i32;
        let n1 = n >> 1;
        let n2 = n - n1;
        let f1 = f32::from_bits(((n1 + 127) as u32) << 23);
        let f2 = f32::from_bits(((n2 + 127) as u32) << 23);
        p * f1 * f2
    }
    #[inline(always)]
    fn frexp(x: Self) -> (Self, Self) {
        let (x, adjust) = if x < f32::MIN_POSITIVE {
            (x * 8_388_608.0, -23) // 2^23 makes a subnormal normal
        } else {
            (x, 0)
        };
        let bits = x.to_bits();
        let e = ((bits >> 23) & 0xff) as i32 - 127 + adjust;
        let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        (m, e as f32)
    }
    #[inline(always)]
    fn exp_scalar(self) -> Self {
        math::exp(Scalar::<f32>::new(), self)
    }
    #[inline(always)]
    fn ln_scalar(self) -> Self {
        math::ln(Scalar::<f32>::new(), self)
    }
    #[inline(always)]
    fn tanh_scalar(self) -> Self {
        math::tanh(Scalar::<f32>::new(), self)
    }
    #[inline(always)]
    fn sigmoid_scalar(self) -> Self {
        math::sigmoid(Scalar::<f32>::new(), self)
    }
}

impl sealed::Sealed for f64 {
    const NAN: Self = f64::NAN;
    const INFINITY: Self = f64::INFINITY;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;

    fn dispatch<W: WithSimd<Self>>(level: SimdLevel, w: W) -> W::Output {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `clamp_to_supported` returned Avx512, so the CPU has AVX-512F.
            SimdLevel::Avx512 => unsafe { x86::run_scalar_avx512(w) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `clamp_to_supported` returned Avx2Fma, so the CPU has AVX2 and FMA.
            SimdLevel::Avx2Fma => unsafe { x86::run_scalar_avx2(w) },
            _ => w.run(Scalar::<f64>::new()),
        }
    }

    #[inline(always)]
    fn as_f32_slice(_x: &[Self]) -> Option<&[f32]> {
        None
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn floor(self) -> Self {
        // As for f32, without the libm call; from 2^52 on every f64 is an integer.
        if f64::abs(self) >= 4_503_599_627_370_496.0 || f64::is_nan(self) {
            return self;
        }
        let t = self as i64 as f64;
        let t = if t > self { t - 1.0 } else { t };
        if t == self {
            self
        } else {
            t
        }
    }
    #[inline(always)]
    fn round_even(self) -> Self {
        if f64::abs(self) >= 4_503_599_627_370_496.0 || f64::is_nan(self) {
            return self;
        }
        let r = if self >= 0.0 {
            (self + 4_503_599_627_370_496.0) - 4_503_599_627_370_496.0
        } else {
            (self - 4_503_599_627_370_496.0) + 4_503_599_627_370_496.0
        };
        r.copysign(self)
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
    #[inline(always)]
    fn powf(self, y: Self) -> Self {
        f64::powf(self, y)
    }
    #[inline(always)]
    fn ldexp(p: Self, n: Self) -> Self {
        let n = n as i64;
        let n1 = n >> 1;
        let n2 = n - n1;
        let f1 = f64::from_bits(((n1 + 1023) as u64) << 52);
        let f2 = f64::from_bits(((n2 + 1023) as u64) << 52);
        p * f1 * f2
    }
    #[inline(always)]
    fn frexp(x: Self) -> (Self, Self) {
        let (x, adjust) = if x < f64::MIN_POSITIVE {
            (x * 4_503_599_627_370_496.0, -52) // 2^52 makes a subnormal normal
        } else {
            (x, 0)
        };
        let bits = x.to_bits();
        let e = ((bits >> 52) & 0x7ff) as i64 - 1023 + adjust;
        let m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
        (m, e as f64)
    }
    #[inline(always)]
    fn exp_scalar(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln_scalar(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn tanh_scalar(self) -> Self {
        f64::tanh(self)
    }
    #[inline(always)]
    fn sigmoid_scalar(self) -> Self {
        // e = exp(-|x|) never overflows; x < 0 uses e / (1 + e), which stays accurate
        // where 1 / (1 + exp(-x)) would round to 0 too early.
        let e = f64::exp(-f64::abs(self));
        let num = if self < 0.0 { e } else { 1.0 };
        num / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;

    /// The hand-written floor and round-to-even agree with std bit for bit.
    #[test]
    fn floor_and_round_even_match_std() {
        let mut x32: Vec<f32> = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            8_388_607.5,
            -8_388_607.5,
        ];
        x32.extend([
            8_388_608.0,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
        ]);
        let mut bits = 1u32;
        while bits < 0x7f80_0000 {
            x32.push(f32::from_bits(bits));
            x32.push(-f32::from_bits(bits));
            bits += 4099;
        }
        for &x in &x32 {
            assert_eq!(
                Sealed::floor(x).to_bits(),
                x.floor().to_bits(),
                "floor({x:e})"
            );
            assert_eq!(
                Sealed::round_even(x).to_bits(),
                x.round_ties_even().to_bits(),
                "round({x:e})"
            );
        }
        assert!(Sealed::floor(f32::NAN).is_nan() && Sealed::round_even(f32::NAN).is_nan());
        for &x in &x32 {
            let x = f64::from(x) * 1.000_000_1;
            assert_eq!(
                Sealed::floor(x).to_bits(),
                x.floor().to_bits(),
                "floor({x:e})"
            );
            assert_eq!(
                Sealed::round_even(x).to_bits(),
                x.round_ties_even().to_bits(),
                "round({x:e})"
            );
        }
        for x in [
            4_503_599_627_370_495.5f64,
            -4_503_599_627_370_495.5,
            0.5,
            -0.5,
            2.5,
            -2.5,
        ] {
            assert_eq!(
                Sealed::floor(x).to_bits(),
                x.floor().to_bits(),
                "floor({x:e})"
            );
            assert_eq!(
                Sealed::round_even(x).to_bits(),
                x.round_ties_even().to_bits(),
                "round({x:e})"
            );
        }
    }
}
