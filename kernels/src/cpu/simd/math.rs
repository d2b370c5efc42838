//! `f32` exp, ln, tanh and sigmoid as polynomial approximations, written once over
//! [`Simd`] so the portable and the SIMD paths evaluate the same formulas.
//!
//! The polynomials are the classic single-precision minimax fits of the Cephes library
//! (S. L. Moshier, public domain; written here as the `f32` values they round to),
//! with Cody–Waite argument reduction. Special values
//! follow std: `exp` overflows to `inf` above ~88.72, underflows through the subnormals
//! to `0` below ~-103.97; `ln(0) = -inf`, `ln(x < 0) = NaN`, `ln(inf) = inf`; `tanh`
//! and `sigmoid` saturate to exactly ±1 / 0 / 1; NaN in gives NaN out.
//!
//! Maximum error against `f64` std rounded to `f32`, measured over a sweep of bit
//! patterns covering every exponent of both signs (`kernels/tests/elementwise.rs`,
//! `approximation_error_*`), at every level including the portable one (which has no
//! fused multiply-add): 1 ulp for `exp`, `ln` and `tanh`, 2 ulp for `sigmoid`. The
//! tests hold `exp`/`ln` to 1 ulp and `tanh`/`sigmoid` to 2.

use super::Simd;

/// `e^x`.
///
/// `x = n ln2 + r` with `n = round(x / ln 2)` and `|r| <= ln2 / 2` (ln 2 split in two
/// parts so `r` is exact); `e^r` from a degree-7 polynomial; the result is `e^r * 2^n`.
///
/// Results below the smallest normal float (`x < ln(f32::MIN_POSITIVE)`) are subnormal
/// or zero, and computing them costs a microcode assist per instruction on x86. Those
/// only take the exact path when a lane really lands among the subnormals
/// (`-103.98 < x < -87.34`, rare); lanes below that are simply 0, so e.g. the `-inf`
/// padding of a softmax row stays on the fast path.
#[inline(always)]
pub(crate) fn exp<S: Simd<E = f32>>(s: S, x: S::V) -> S::V {
    // ln(f32::MIN_POSITIVE) rounded up: from here on e^x is a normal float.
    const MIN_NORMAL_ARG: f32 = -87.336_54;
    const MIN_ARG: f32 = -104.0;
    let tiny = s.lt(x, s.splat(MIN_NORMAL_ARG));
    if s.any(s.and(tiny, s.ge(x, s.splat(MIN_ARG)))) {
        return exp_clamped(s, x, MIN_ARG);
    }
    s.select(tiny, s.splat(0.0), exp_clamped(s, x, MIN_NORMAL_ARG))
}

/// `e^x` for `x` clamped to `[lo, 89]` (NaN passes through).
#[inline(always)]
fn exp_clamped<S: Simd<E = f32>>(s: S, x: S::V, lo: f32) -> S::V {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4; // = 0.693359375 exactly, 9 significant bits: n * LN2_HI is exact
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 6] = [
        1.987_569_1e-4,
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        5e-1,
    ];
    // Clamp so that n stays in the range ldexp accepts. min(hi, x) and max(lo, ..)
    // return their second operand when it is NaN, so NaN passes through. Beyond 89
    // the result is already inf; below -104 it is 0.
    let x = s.max(s.splat(lo), s.min(s.splat(89.0), x));
    let n = s.round(s.mul(x, s.splat(LOG2E)));
    let r = s.mul_add(n, s.splat(-LN2_HI), x);
    let r = s.mul_add(n, s.splat(-LN2_LO), r);
    let r2 = s.mul(r, r);
    let mut p = s.splat(P[0]);
    for c in &P[1..] {
        p = s.mul_add(p, r, s.splat(*c));
    }
    let y = s.add(s.mul_add(p, r2, r), s.splat(1.0));
    s.ldexp(y, n)
}

/// Natural logarithm.
///
/// `x = m 2^e` with `m` in `[sqrt(1/2), sqrt(2))`; `ln(1 + f)` for `f = m - 1` from a
/// degree-9 polynomial; the result is `ln(1 + f) + e ln 2` with ln 2 in two parts.
#[inline(always)]
pub(crate) fn ln<S: Simd<E = f32>>(s: S, x: S::V) -> S::V {
    const LN2_HI: f32 = 0.693_359_4; // = 0.693359375 exactly
    const LN2_LO: f32 = -2.121_944_4e-4;
    const P: [f32; 9] = [
        7.037_683_6e-2,
        -1.151_461e-1,
        1.167_699_9e-1,
        -1.242_014_1e-1,
        1.424_932_3e-1,
        -1.666_805_8e-1,
        2.000_071_4e-1,
        -2.499_999_4e-1,
        3.333_333e-1,
    ];
    let (m, e) = s.frexp(x);
    let big = s.gt(m, s.splat(std::f32::consts::SQRT_2));
    let m = s.select(big, s.mul(m, s.splat(0.5)), m);
    let e = s.select(big, s.add(e, s.splat(1.0)), e);
    let f = s.sub(m, s.splat(1.0));
    let z = s.mul(f, f);
    let mut p = s.splat(P[0]);
    for c in &P[1..] {
        p = s.mul_add(p, f, s.splat(*c));
    }
    let y = s.mul(s.mul(p, f), z);
    let y = s.mul_add(e, s.splat(LN2_LO), y);
    let y = s.mul_add(z, s.splat(-0.5), y);
    let r = s.add(f, y);
    let r = s.mul_add(e, s.splat(LN2_HI), r);
    // Special values: 0 -> -inf, +inf -> +inf, negative or NaN -> NaN.
    let zero = s.splat(0.0);
    let r = s.select(s.eq(x, zero), s.splat(f32::NEG_INFINITY), r);
    let r = s.select(s.eq(x, s.splat(f32::INFINITY)), x, r);
    let bad = s.or(s.lt(x, zero), s.is_nan(x));
    s.select(bad, s.splat(f32::NAN), r)
}

/// Hyperbolic tangent.
///
/// For `|x| < 0.625` an odd polynomial `x + x^3 P(x^2)` (no cancellation near 0);
/// above, `1 - 2 / (e^{2|x|} + 1)` with the sign of `x`, which reaches exactly 1 once
/// `e^{2|x|}` is large (and stays 1 when it overflows to infinity).
#[inline(always)]
pub(crate) fn tanh<S: Simd<E = f32>>(s: S, x: S::V) -> S::V {
    const P: [f32; 5] = [
        -5.704_988_7e-3,
        2.063_909e-2,
        -5.373_971_6e-2,
        1.333_144_2e-1,
        -3.333_328e-1,
    ];
    let a = s.abs(x);
    let z = s.mul(x, x);
    let mut p = s.splat(P[0]);
    for c in &P[1..] {
        p = s.mul_add(p, z, s.splat(*c));
    }
    let small = s.mul_add(s.mul(p, z), x, x);
    // x + x*z*p is +0 for x = -0 (a sum of zeros of opposite signs); keep -0.
    let small = s.select(s.eq(x, s.splat(0.0)), x, small);
    let e = exp(s, s.add(a, a));
    let one = s.splat(1.0);
    let big = s.sub(one, s.div(s.splat(2.0), s.add(e, one)));
    let big = s.select(s.lt(x, s.splat(0.0)), s.neg(big), big);
    s.select(s.lt(a, s.splat(0.625)), small, big)
}

/// Logistic sigmoid `1 / (1 + e^-x)`.
///
/// Computed as `1 / (1 + e)` for `x >= 0` and `e / (1 + e)` for `x < 0`, with
/// `e = e^{-|x|}` (never overflows), so very negative inputs keep full relative
/// accuracy down into the subnormals instead of rounding to 0 early.
#[inline(always)]
pub(crate) fn sigmoid<S: Simd<E = f32>>(s: S, x: S::V) -> S::V {
    let e = exp(s, s.neg(s.abs(x)));
    let one = s.splat(1.0);
    let num = s.select(s.lt(x, s.splat(0.0)), e, one);
    s.div(num, s.add(one, e))
}
