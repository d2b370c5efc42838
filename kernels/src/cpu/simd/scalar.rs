//! The portable one-lane backend, for `f32` and `f64`.

use std::marker::PhantomData;

use super::sealed::Sealed;
use super::{Float, Simd};

/// One lane of `T` in plain Rust: the portable path, and the only path for `f64`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scalar<T>(PhantomData<T>);

impl<T> Scalar<T> {
    /// The token (the portable backend runs everywhere).
    pub(crate) const fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: Float> Simd for Scalar<T> {
    type E = T;
    type V = T;
    type M = bool;
    type W = f64;
    const LANES: usize = 1;

    #[inline(always)]
    unsafe fn load(self, p: *const T) -> T {
        // SAFETY: the caller guarantees `p` is readable for one element.
        unsafe { p.read() }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T, v: T) {
        // SAFETY: the caller guarantees `p` is writable for one element.
        unsafe { p.write(v) }
    }
    #[inline(always)]
    unsafe fn load_tail(self, p: *const T, n: usize, pad: T) -> T {
        if n == 0 {
            pad
        } else {
            // SAFETY: the caller guarantees `p` is readable for `n >= 1` elements.
            unsafe { p.read() }
        }
    }
    #[inline(always)]
    unsafe fn store_tail(self, p: *mut T, n: usize, v: T) {
        if n > 0 {
            // SAFETY: the caller guarantees `p` is writable for `n >= 1` elements.
            unsafe { p.write(v) }
        }
    }
    #[inline(always)]
    fn splat(self, x: T) -> T {
        x
    }
    #[inline(always)]
    fn add(self, a: T, b: T) -> T {
        a + b
    }
    #[inline(always)]
    fn sub(self, a: T, b: T) -> T {
        a - b
    }
    #[inline(always)]
    fn mul(self, a: T, b: T) -> T {
        a * b
    }
    #[inline(always)]
    fn div(self, a: T, b: T) -> T {
        a / b
    }
    #[inline(always)]
    fn mul_add(self, a: T, b: T, c: T) -> T {
        a * b + c
    }
    #[inline(always)]
    fn min(self, a: T, b: T) -> T {
        if a < b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn max(self, a: T, b: T) -> T {
        if a > b {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn sqrt(self, a: T) -> T {
        Sealed::sqrt(a)
    }
    #[inline(always)]
    fn abs(self, a: T) -> T {
        Sealed::abs(a)
    }
    #[inline(always)]
    fn neg(self, a: T) -> T {
        -a
    }
    #[inline(always)]
    fn floor(self, a: T) -> T {
        Sealed::floor(a)
    }
    #[inline(always)]
    fn round(self, a: T) -> T {
        Sealed::round_even(a)
    }
    #[inline(always)]
    fn lt(self, a: T, b: T) -> bool {
        a < b
    }
    #[inline(always)]
    fn gt(self, a: T, b: T) -> bool {
        a > b
    }
    #[inline(always)]
    fn ge(self, a: T, b: T) -> bool {
        a >= b
    }
    #[inline(always)]
    fn eq(self, a: T, b: T) -> bool {
        a == b
    }
    #[inline(always)]
    fn is_nan(self, a: T) -> bool {
        Sealed::is_nan(a)
    }
    #[inline(always)]
    fn and(self, a: bool, b: bool) -> bool {
        a & b
    }
    #[inline(always)]
    fn or(self, a: bool, b: bool) -> bool {
        a | b
    }
    #[inline(always)]
    fn select(self, m: bool, t: T, f: T) -> T {
        if m {
            t
        } else {
            f
        }
    }
    #[inline(always)]
    fn all(self, m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn any(self, m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn add_one_where(self, acc: T, m: bool) -> T {
        if m {
            acc + T::ONE
        } else {
            acc
        }
    }
    #[inline(always)]
    fn ldexp(self, p: T, n: T) -> T {
        T::ldexp(p, n)
    }
    #[inline(always)]
    fn frexp(self, x: T) -> (T, T) {
        T::frexp(x)
    }
    #[inline(always)]
    fn reduce_add(self, v: T) -> T {
        v
    }
    #[inline(always)]
    fn reduce_max(self, v: T) -> T {
        v
    }
    #[inline(always)]
    fn reduce_min(self, v: T) -> T {
        v
    }
    #[inline(always)]
    unsafe fn store_index(self, p: *mut i32, v: T) {
        // SAFETY: the caller guarantees `p` is writable for one i32.
        unsafe { p.write(v.to_f64() as i32) }
    }
    #[inline(always)]
    fn exp(self, x: T) -> T {
        x.exp_scalar()
    }
    #[inline(always)]
    fn ln(self, x: T) -> T {
        x.ln_scalar()
    }
    #[inline(always)]
    fn tanh(self, x: T) -> T {
        x.tanh_scalar()
    }
    #[inline(always)]
    fn sigmoid(self, x: T) -> T {
        x.sigmoid_scalar()
    }
    #[inline(always)]
    fn w_zero(self) -> f64 {
        0.0
    }
    #[inline(always)]
    fn w_splat(self, x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn w_widen(self, v: T) -> f64 {
        v.to_f64()
    }
    #[inline(always)]
    fn w_add(self, a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline(always)]
    fn w_sub(self, a: f64, b: f64) -> f64 {
        a - b
    }
    #[inline(always)]
    fn w_mul_add(self, a: f64, b: f64, c: f64) -> f64 {
        a * b + c
    }
    #[inline(always)]
    fn w_sum(self, w: f64) -> f64 {
        w
    }
    #[inline(always)]
    unsafe fn w_store(self, p: *mut f64, w: f64) {
        // SAFETY: the caller guarantees `p` is writable for one f64.
        unsafe { p.write(w) }
    }
}
