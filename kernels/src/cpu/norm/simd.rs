//! The inner loops of the normalisation kernels, per element type and SIMD level.
//!
//! Two families:
//! - *run* loops walk one contiguous run that belongs to a single channel (or group), with
//!   scalar parameters: shifted sums, normalise, gradient sums, input gradient. For f32
//!   they are hand-written with intrinsics (see `x86.rs`); the portable and f64 versions
//!   are the generic lane-array code below.
//! - *position* loops walk a whole sample of several short channels and keep one
//!   accumulator or parameter per position (batch norm with `S < 64`, e.g. `(N, C)`
//!   activations or 7x7 feature maps): every lane is independent, so the generic code
//!   vectorises once compiled for a level.
//!
//! Generic code is compiled once per level by [`multiversion!`]: an `#[inline(always)]`
//! body wrapped in `#[target_feature]` functions, selected at run time.

use std::fmt::Debug;
use std::ops::{Add, Mul, Sub};

use crate::cpu::dispatch::SimdLevel;

/// Compiles `fn name<T>(args) -> ret { body }` for AVX-512, AVX2+FMA and the portable
/// baseline and dispatches on a `level` argument (clamped to what the CPU supports).
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident<$T:ident>($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        $(#[$doc])*
        pub(super) fn $name<$T: Prims>(level: SimdLevel, $($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn imp<$T: Prims>($($arg: $ty),*) -> $ret $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            fn avx512<$T: Prims>($($arg: $ty),*) -> $ret {
                imp($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<$T: Prims>($($arg: $ty),*) -> $ret {
                imp($($arg),*)
            }

            match level.clamp_to_supported() {
                #[cfg(target_arch = "x86_64")]
                SimdLevel::Avx512 => {
                    // SAFETY: the level is clamped to what this CPU supports, so it has
                    // AVX-512F.
                    unsafe { avx512($($arg),*) }
                }
                #[cfg(target_arch = "x86_64")]
                SimdLevel::Avx2Fma => {
                    // SAFETY: the level is clamped to what this CPU supports, so it has
                    // AVX2 and FMA.
                    unsafe { avx2($($arg),*) }
                }
                _ => imp($($arg),*),
            }
        }
    };
}

/// Element-type plumbing of the normalisation kernels (sealed: f32 and f64 only).
pub trait Prims:
    Copy
    + Send
    + Sync
    + Debug
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + 'static
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// Widens to f64 (exact).
    fn to_f64(self) -> f64;
    /// Rounds an f64 to this type.
    fn from_f64(v: f64) -> Self;

    /// `(sum(x - shift), sum((x - shift)^2))` in f64 over a run `x`.
    fn shifted_sums(level: SimdLevel, x: &[Self], shift: f64) -> (f64, f64);
    /// `y = (x - mean) * scale + shift`.
    fn normalize(
        level: SimdLevel,
        x: &[Self],
        y: &mut [Self],
        mean: Self,
        scale: Self,
        shift: Self,
    );
    /// `(sum(g), sum(g * (x - mean)))` in f64 over a run of `g` and `x`.
    fn grad_sums(level: SimdLevel, g: &[Self], x: &[Self], mean: f64) -> (f64, f64);
    /// `gx = a * g + b * (x - mean) + c` with `coef = [mean, a, b, c]`.
    fn grad_input(level: SimdLevel, g: &[Self], x: &[Self], gx: &mut [Self], coef: [Self; 4]);
}

impl Prims for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;

    fn to_f64(self) -> f64 {
        self as f64
    }

    fn from_f64(v: f64) -> Self {
        v as f32
    }

    fn shifted_sums(level: SimdLevel, x: &[f32], shift: f64) -> (f64, f64) {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                // SAFETY: the clamped level is supported, so the CPU has AVX-512F.
                unsafe { super::x86::shifted_sums_avx512(x, shift) }
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                // SAFETY: the clamped level is supported, so the CPU has AVX2 and FMA.
                unsafe { super::x86::shifted_sums_avx2(x, shift) }
            }
            _ => shifted_sums_lanes(x, shift),
        }
    }

    fn normalize(level: SimdLevel, x: &[f32], y: &mut [f32], mean: f32, scale: f32, shift: f32) {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                // SAFETY: the clamped level is supported, so the CPU has AVX-512F.
                unsafe { super::x86::normalize_avx512(x, y, mean, scale, shift) }
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                // SAFETY: the clamped level is supported, so the CPU has AVX2 and FMA.
                unsafe { super::x86::normalize_avx2(x, y, mean, scale, shift) }
            }
            _ => normalize_lanes(x, y, mean, scale, shift),
        }
    }

    fn grad_sums(level: SimdLevel, g: &[f32], x: &[f32], mean: f64) -> (f64, f64) {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                // SAFETY: the clamped level is supported, so the CPU has AVX-512F.
                unsafe { super::x86::grad_sums_avx512(g, x, mean) }
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                // SAFETY: the clamped level is supported, so the CPU has AVX2 and FMA.
                unsafe { super::x86::grad_sums_avx2(g, x, mean) }
            }
            _ => grad_sums_lanes(g, x, mean),
        }
    }

    fn grad_input(level: SimdLevel, g: &[f32], x: &[f32], gx: &mut [f32], coef: [f32; 4]) {
        match level.clamp_to_supported() {
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 => {
                // SAFETY: the clamped level is supported, so the CPU has AVX-512F.
                unsafe { super::x86::grad_input_avx512(g, x, gx, coef) }
            }
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx2Fma => {
                // SAFETY: the clamped level is supported, so the CPU has AVX2 and FMA.
                unsafe { super::x86::grad_input_avx2(g, x, gx, coef) }
            }
            _ => grad_input_lanes(g, x, gx, coef),
        }
    }
}

impl Prims for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;

    fn to_f64(self) -> f64 {
        self
    }

    fn from_f64(v: f64) -> Self {
        v
    }

    fn shifted_sums(level: SimdLevel, x: &[f64], shift: f64) -> (f64, f64) {
        shifted_sums_mv(level, x, shift)
    }

    fn normalize(level: SimdLevel, x: &[f64], y: &mut [f64], mean: f64, scale: f64, shift: f64) {
        normalize_mv(level, x, y, [mean, scale, shift])
    }

    fn grad_sums(level: SimdLevel, g: &[f64], x: &[f64], mean: f64) -> (f64, f64) {
        grad_sums_mv(level, g, x, mean)
    }

    fn grad_input(level: SimdLevel, g: &[f64], x: &[f64], gx: &mut [f64], coef: [f64; 4]) {
        grad_input_mv(level, g, x, gx, coef)
    }
}

/// Independent accumulators per run loop: enough to hide add latency and let the
/// compiler map them onto vector registers.
const LANES: usize = 8;

/// Portable [`Prims::shifted_sums`].
#[inline(always)]
fn shifted_sums_lanes<T: Prims>(x: &[T], shift: f64) -> (f64, f64) {
    let (mut s, mut q) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (mut s_rest, mut q_rest) = (0.0, 0.0);
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            let d = c[l].to_f64() - shift;
            s[l] += d;
            q[l] += d * d;
        }
    }
    for v in rest {
        let d = v.to_f64() - shift;
        s_rest += d;
        q_rest += d * d;
    }
    (
        s.iter().sum::<f64>() + s_rest,
        q.iter().sum::<f64>() + q_rest,
    )
}

/// Portable [`Prims::normalize`].
#[inline(always)]
fn normalize_lanes<T: Prims>(x: &[T], y: &mut [T], mean: T, scale: T, shift: T) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = (x - mean) * scale + shift;
    }
}

/// Portable [`Prims::grad_sums`].
#[inline(always)]
fn grad_sums_lanes<T: Prims>(g: &[T], x: &[T], mean: f64) -> (f64, f64) {
    let (mut sg, mut sgd) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (mut a_rest, mut b_rest) = (0.0, 0.0);
    let gc = g.chunks_exact(LANES);
    let xc = x.chunks_exact(LANES);
    let (g_rest, x_rest) = (gc.remainder(), xc.remainder());
    for (g, x) in gc.zip(xc) {
        for l in 0..LANES {
            let gv = g[l].to_f64();
            sg[l] += gv;
            sgd[l] += gv * (x[l].to_f64() - mean);
        }
    }
    for (g, x) in g_rest.iter().zip(x_rest) {
        let gv = g.to_f64();
        a_rest += gv;
        b_rest += gv * (x.to_f64() - mean);
    }
    (
        sg.iter().sum::<f64>() + a_rest,
        sgd.iter().sum::<f64>() + b_rest,
    )
}

/// Portable [`Prims::grad_input`].
#[inline(always)]
fn grad_input_lanes<T: Prims>(g: &[T], x: &[T], gx: &mut [T], coef: [T; 4]) {
    let [mean, a, b, c] = coef;
    for ((gx, &g), &x) in gx.iter_mut().zip(g).zip(x) {
        *gx = a * g + b * (x - mean) + c;
    }
}

multiversion! {
    /// [`Prims::shifted_sums`] for types without hand-written kernels.
    fn shifted_sums_mv<T>(x: &[T], shift: f64) -> (f64, f64) {
        shifted_sums_lanes(x, shift)
    }
}

multiversion! {
    /// [`Prims::normalize`] for types without hand-written kernels; `p = [mean, scale, shift]`.
    fn normalize_mv<T>(x: &[T], y: &mut [T], p: [T; 3]) -> () {
        normalize_lanes(x, y, p[0], p[1], p[2])
    }
}

multiversion! {
    /// [`Prims::grad_sums`] for types without hand-written kernels.
    fn grad_sums_mv<T>(g: &[T], x: &[T], mean: f64) -> (f64, f64) {
        grad_sums_lanes(g, x, mean)
    }
}

multiversion! {
    /// [`Prims::grad_input`] for types without hand-written kernels.
    fn grad_input_mv<T>(g: &[T], x: &[T], gx: &mut [T], coef: [T; 4]) -> () {
        grad_input_lanes(g, x, gx, coef)
    }
}

multiversion! {
    /// Position loop: `s[i] += x[i] - shift[i]`, `q[i] += (x[i] - shift[i])^2` in f64.
    fn acc_sums_pos<T>(x: &[T], shift: &[f64], s: &mut [f64], q: &mut [f64]) -> () {
        let n = x.len().min(shift.len()).min(s.len()).min(q.len());
        let (x, shift, s, q) = (&x[..n], &shift[..n], &mut s[..n], &mut q[..n]);
        for i in 0..n {
            let d = x[i].to_f64() - shift[i];
            s[i] += d;
            q[i] += d * d;
        }
    }
}

multiversion! {
    /// Position loop: `y[i] = (x[i] - mean[i]) * scale[i] + shift[i]`.
    fn normalize_pos<T>(x: &[T], y: &mut [T], mean: &[T], scale: &[T], shift: &[T]) -> () {
        let n = y.len().min(x.len()).min(mean.len()).min(scale.len()).min(shift.len());
        let (y, x, mean, scale, shift) = (&mut y[..n], &x[..n], &mean[..n], &scale[..n], &shift[..n]);
        for i in 0..n {
            y[i] = (x[i] - mean[i]) * scale[i] + shift[i];
        }
    }
}

multiversion! {
    /// Position loop: `sg[i] += g[i]`, `sgd[i] += g[i] * (x[i] - mean[i])` in f64.
    fn grad_sums_pos<T>(g: &[T], x: &[T], mean: &[f64], sg: &mut [f64], sgd: &mut [f64]) -> () {
        let n = g.len().min(x.len()).min(mean.len()).min(sg.len()).min(sgd.len());
        let (g, x, mean, sg, sgd) = (&g[..n], &x[..n], &mean[..n], &mut sg[..n], &mut sgd[..n]);
        for i in 0..n {
            let gv = g[i].to_f64();
            sg[i] += gv;
            sgd[i] += gv * (x[i].to_f64() - mean[i]);
        }
    }
}

multiversion! {
    /// Position loop: `gx[i] = a[i] * g[i] + b[i] * (x[i] - mean[i]) + c[i]`, with the
    /// per-position coefficients as four arrays (`coef = [mean, a, b, c]`), so each
    /// loads as plain vectors.
    fn grad_input_pos<T>(g: &[T], x: &[T], gx: &mut [T], coef: [&[T]; 4]) -> () {
        let [mean, a, b, c] = coef;
        let n = gx.len().min(g.len()).min(x.len()).min(mean.len()).min(a.len()).min(b.len()).min(c.len());
        let (gx, g, x, mean, a, b, c) = (&mut gx[..n], &g[..n], &x[..n], &mean[..n], &a[..n], &b[..n], &c[..n]);
        for i in 0..n {
            gx[i] = a[i] * g[i] + b[i] * (x[i] - mean[i]) + c[i];
        }
    }
}
