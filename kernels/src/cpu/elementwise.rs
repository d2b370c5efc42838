//! Elementwise maps over contiguous slices: binary (`a op b`), with a scalar, unary,
//! and fused activation backward passes, SIMD-dispatched and parallel on large slices.
//!
//! Every function checks that its slices have equal lengths and returns a
//! [`KernelError::SizeMismatch`] naming the op and the lengths otherwise. The ops are
//! values ([`BinaryOp`], [`UnaryOp`]) so a tensor library can map its own op enum onto
//! them; named shorthands ([`add`], [`exp`], ..) exist for the common calls. The
//! entry points are generic over [`Float`] (`f32`, `f64`); each has an `*_at(level, ..)`
//! form that runs at an explicit [`SimdLevel`] (the shorthands' `_at` form is
//! [`unary_at`] / [`binary_at`] with the op).
//!
//! # Numerics
//!
//! - `f64` always computes with std's correctly rounded operations and math functions,
//!   identically at every level: it is the reference dtype for gradient checks.
//! - `f32` `exp`, `ln`, `tanh`, `sigmoid` use polynomial approximations shared by all
//!   levels, within 1 ulp (exp, ln) or 2 ulp (tanh, sigmoid) of the correctly
//!   rounded result over the whole range,
//!   with std's special values (`exp` overflows to `inf` and underflows to `0`,
//!   `ln(0) = -inf`, `ln(-1) = NaN`, NaN propagates). Other ops are exact IEEE
//!   operations; `axpy` and the backward passes may use fused multiply-add on
//!   AVX2/AVX-512, so they can differ from the portable path in the last bit.
//! - NaN propagates through every op: `maximum`/`minimum` return NaN if either input
//!   is NaN, `relu(NaN) = NaN`, `clamp(NaN) = NaN` (as in PyTorch).
//!
//! # Parallelism
//!
//! Slices of at least 32768 elements are split into 16384-element tasks on the rayon
//! pool; each element's result does not depend on the split.
//!
//! ```
//! use kernels::cpu::elementwise::{self, UnaryOp};
//! let x = [0.0f32, 1.0, -2.0];
//! let mut y = [0.0f32; 3];
//! elementwise::unary(UnaryOp::Exp, &x, &mut y)?;
//! assert!((y[1] - std::f32::consts::E).abs() < 1e-6);
//! elementwise::relu(&x, &mut y)?;
//! assert_eq!(y, [0.0, 1.0, 0.0]);
//! # Ok::<(), kernels::KernelError>(())
//! ```

use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::simd::{self, map1, map2, sealed::Sealed, Map1, Map2, Simd, SyncPtr, WithSimd};
use crate::error::{KernelError, Result};

pub use crate::cpu::simd::Float;

/// Checks that every named length equals the first; returns it.
///
/// The error names the op and every argument with its length, e.g.
/// `add: size mismatch: a has 3 elements, b has 4, out has 3`.
pub(crate) fn same_len(op: &'static str, args: &[(&str, usize)]) -> Result<usize> {
    let n = args.first().map_or(0, |a| a.1);
    if args.iter().all(|a| a.1 == n) {
        return Ok(n);
    }
    let detail = args
        .iter()
        .enumerate()
        .map(|(i, (name, len))| {
            if i == 0 {
                format!("{name} has {len} elements")
            } else {
                format!("{name} has {len}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    Err(KernelError::SizeMismatch { op, detail })
}

/// A binary elementwise operation `out = a op b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (IEEE: `x / 0` is `±inf` or NaN).
    Div,
    /// The larger of `a` and `b`; NaN if either is NaN.
    Maximum,
    /// The smaller of `a` and `b`; NaN if either is NaN.
    Minimum,
    /// `a` raised to the power `b` (std `powf`, one element at a time at every level).
    Pow,
}

impl BinaryOp {
    /// The op's name as used in error messages (`"add"`, `"maximum"`, ..).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Pow => "pow",
        }
    }

    /// The op on one pair of values, with exactly the kernels' semantics (handy for
    /// strided or broadcast cases a caller handles one element at a time).
    ///
    /// ```
    /// use kernels::cpu::elementwise::BinaryOp;
    /// assert_eq!(BinaryOp::Sub.apply(5.0f64, 3.0), 2.0);
    /// assert!(BinaryOp::Maximum.apply(f32::NAN, 1.0).is_nan());
    /// ```
    #[inline]
    pub fn apply<T: Float>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => {
                if Sealed::is_nan(a) || a > b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Minimum => {
                if Sealed::is_nan(a) || a < b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Pow => Sealed::powf(a, b),
        }
    }
}

/// A unary elementwise operation `out = f(x)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// Natural logarithm (`ln 0 = -inf`, `ln(x < 0) = NaN`).
    Ln,
    /// Square root (`sqrt(x < 0) = NaN`).
    Sqrt,
    /// `|x|`.
    Abs,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)`; NaN stays NaN.
    Relu,
    /// `x` for `x >= 0`, `slope * x` below.
    LeakyRelu {
        /// Multiplier of negative inputs (rounded to the element type).
        slope: f64,
    },
    /// `x * x`.
    Square,
    /// `1 / x`.
    Recip,
    /// `x` limited to `[min, max]`; NaN stays NaN. Requires `min <= max`.
    Clamp {
        /// Lower bound (rounded to the element type).
        min: f64,
        /// Upper bound (rounded to the element type).
        max: f64,
    },
    /// `x * mul + add`, a multiply then an add (two roundings, no fused multiply-add,
    /// so every level and the scalar formula agree bit for bit).
    Affine {
        /// Multiplier (rounded to the element type).
        mul: f64,
        /// Addend (rounded to the element type).
        add: f64,
    },
    /// [`LeakyRelu`](UnaryOp::LeakyRelu) then `+ shift`, in one pass: the lesson's
    /// GeneralRelu (`leaky_relu(x) - sub`). Bit for bit the two ops one after the other.
    ShiftedLeakyRelu {
        /// Multiplier of negative inputs (rounded to the element type).
        slope: f64,
        /// Added to every output (rounded to the element type).
        shift: f64,
    },
}

impl UnaryOp {
    /// The op's name as used in error messages (`"exp"`, `"leaky_relu"`, ..).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Ln => "ln",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::LeakyRelu { .. } => "leaky_relu",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Clamp { .. } => "clamp",
            UnaryOp::Affine { .. } => "affine",
            UnaryOp::ShiftedLeakyRelu { .. } => "shifted_leaky_relu",
        }
    }

    /// Checks the op's parameters: a NaN slope, NaN clamp bounds or `min > max` are
    /// errors naming the values.
    pub fn validate(self) -> Result<()> {
        match self {
            UnaryOp::LeakyRelu { slope } | UnaryOp::ShiftedLeakyRelu { slope, .. }
                if slope.is_nan() =>
            {
                Err(KernelError::InvalidArgument {
                    op: self.name(),
                    detail: "slope is NaN".into(),
                })
            }
            UnaryOp::Clamp { min, max } if min.is_nan() || max.is_nan() || min > max => {
                Err(KernelError::InvalidArgument {
                    op: "clamp",
                    detail: format!("need min <= max, got min = {min}, max = {max}"),
                })
            }
            _ => Ok(()),
        }
    }

    /// The op on one value, with exactly the portable kernel's semantics (for `f32`
    /// exp/ln/tanh/sigmoid this is the same polynomial the SIMD paths evaluate).
    ///
    /// ```
    /// use kernels::cpu::elementwise::UnaryOp;
    /// assert_eq!(UnaryOp::Relu.apply(-2.0f32), 0.0);
    /// assert_eq!(UnaryOp::LeakyRelu { slope: 0.1 }.apply(-2.0f64), -0.2);
    /// assert_eq!(UnaryOp::Clamp { min: -1.0, max: 1.0 }.apply(3.0f32), 1.0);
    /// ```
    #[inline]
    pub fn apply<T: Float>(self, x: T) -> T {
        let (code, p, q) = self.parts();
        let s = simd::Scalar::<T>::new();
        unary_vector(s, code, x, T::from_f64(p), T::from_f64(q))
    }

    /// The op's code (see [`code`]) and its two parameters: the slope, the clamp
    /// bounds, or zeros.
    fn parts(self) -> (u8, f64, f64) {
        match self {
            UnaryOp::Neg => (code::NEG, 0.0, 0.0),
            UnaryOp::Exp => (code::EXP, 0.0, 0.0),
            UnaryOp::Ln => (code::LN, 0.0, 0.0),
            UnaryOp::Sqrt => (code::SQRT, 0.0, 0.0),
            UnaryOp::Abs => (code::ABS, 0.0, 0.0),
            UnaryOp::Tanh => (code::TANH, 0.0, 0.0),
            UnaryOp::Sigmoid => (code::SIGMOID, 0.0, 0.0),
            UnaryOp::Relu => (code::RELU, 0.0, 0.0),
            UnaryOp::LeakyRelu { slope } => (code::LEAKY_RELU, slope, 0.0),
            UnaryOp::Square => (code::SQUARE, 0.0, 0.0),
            UnaryOp::Recip => (code::RECIP, 0.0, 0.0),
            UnaryOp::Clamp { min, max } => (code::CLAMP, min, max),
            UnaryOp::Affine { mul, add } => (code::AFFINE, mul, add),
            UnaryOp::ShiftedLeakyRelu { slope, shift } => (code::SHIFTED_LEAKY_RELU, slope, shift),
        }
    }
}

/// Op codes: the const parameter of the vector function objects ([`UnaryFn`],
/// [`BinaryFn`], [`FusedFn`]), so that each op gets its own loop, specialised at
/// compile time, while the formulas are written once (in `*_vector`).
mod code {
    pub const NEG: u8 = 0;
    pub const EXP: u8 = 1;
    pub const LN: u8 = 2;
    pub const SQRT: u8 = 3;
    pub const ABS: u8 = 4;
    pub const TANH: u8 = 5;
    pub const SIGMOID: u8 = 6;
    pub const RELU: u8 = 7;
    pub const LEAKY_RELU: u8 = 8;
    pub const SQUARE: u8 = 9;
    pub const RECIP: u8 = 10;
    pub const CLAMP: u8 = 11;
    pub const AFFINE: u8 = 12;
    pub const SHIFTED_LEAKY_RELU: u8 = 13;

    pub const ADD: u8 = 0;
    pub const SUB: u8 = 1;
    pub const MUL: u8 = 2;
    pub const DIV: u8 = 3;
    pub const MAXIMUM: u8 = 4;
    pub const MINIMUM: u8 = 5;

    pub const AXPY: u8 = 0;
    pub const RELU_BACKWARD: u8 = 1;
    pub const LEAKY_RELU_BACKWARD: u8 = 2;
    pub const TANH_BACKWARD: u8 = 3;
    pub const SIGMOID_BACKWARD: u8 = 4;
}

/// A unary op on one vector; `p`, `q` are its parameters (slope, clamp bounds, affine
/// multiplier and addend).
#[inline(always)]
fn unary_vector<S: Simd>(s: S, op: u8, x: S::V, p: S::V, q: S::V) -> S::V {
    match op {
        code::NEG => s.neg(x),
        code::EXP => s.exp(x),
        code::LN => s.ln(x),
        code::SQRT => s.sqrt(x),
        code::ABS => s.abs(x),
        code::TANH => s.tanh(x),
        code::SIGMOID => s.sigmoid(x),
        // max(0, x) returns x when x is NaN.
        code::RELU => s.max(s.splat(S::E::ZERO), x),
        code::LEAKY_RELU => s.select(s.lt(x, s.splat(S::E::ZERO)), s.mul(x, p), x),
        code::SQUARE => s.mul(x, x),
        code::RECIP => s.div(s.splat(S::E::ONE), x),
        code::AFFINE => s.add(s.mul(x, p), q),
        code::SHIFTED_LEAKY_RELU => {
            s.add(s.select(s.lt(x, s.splat(S::E::ZERO)), s.mul(x, p), x), q)
        }
        // min(hi, x) and max(lo, ..) return their second operand when it is NaN.
        _ => s.max(p, s.min(q, x)), // code::CLAMP
    }
}

/// The vector function of unary op `OP` (see [`simd::Map1`]).
#[derive(Clone, Copy)]
struct UnaryFn<V, const OP: u8> {
    p: V,
    q: V,
}

impl<S: Simd, const OP: u8> Map1<S> for UnaryFn<S::V, OP> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        unary_vector(s, OP, x, self.p, self.q)
    }
}

/// Unary map kernel over raw ranges (see [`unary_raw`]).
struct UnaryKernel<T> {
    op: UnaryOp,
    x: SyncPtr<T>,
    out: SyncPtr<T>,
    n: usize,
}

impl<T: Float> WithSimd<T> for UnaryKernel<T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) {
        let (x, out, n) = (self.x.get().cast_const(), self.out.get(), self.n);
        let (_, p, q) = self.op.parts();
        let (p, q) = (s.splat(T::from_f64(p)), s.splat(T::from_f64(q)));
        // One specialised loop per op (the match is outside the loop).
        // SAFETY: `unary_raw`'s caller guarantees the ranges (x readable, out writable
        // for n elements, equal or disjoint).
        unsafe {
            match self.op {
                UnaryOp::Neg => map1(s, x, out, n, UnaryFn::<S::V, { code::NEG }> { p, q }),
                UnaryOp::Exp => map1(s, x, out, n, UnaryFn::<S::V, { code::EXP }> { p, q }),
                UnaryOp::Ln => map1(s, x, out, n, UnaryFn::<S::V, { code::LN }> { p, q }),
                UnaryOp::Sqrt => map1(s, x, out, n, UnaryFn::<S::V, { code::SQRT }> { p, q }),
                UnaryOp::Abs => map1(s, x, out, n, UnaryFn::<S::V, { code::ABS }> { p, q }),
                UnaryOp::Tanh => map1(s, x, out, n, UnaryFn::<S::V, { code::TANH }> { p, q }),
                UnaryOp::Sigmoid => map1(s, x, out, n, UnaryFn::<S::V, { code::SIGMOID }> { p, q }),
                UnaryOp::Relu => map1(s, x, out, n, UnaryFn::<S::V, { code::RELU }> { p, q }),
                UnaryOp::LeakyRelu { .. } => {
                    map1(s, x, out, n, UnaryFn::<S::V, { code::LEAKY_RELU }> { p, q })
                }
                UnaryOp::Square => map1(s, x, out, n, UnaryFn::<S::V, { code::SQUARE }> { p, q }),
                UnaryOp::Recip => map1(s, x, out, n, UnaryFn::<S::V, { code::RECIP }> { p, q }),
                UnaryOp::Clamp { .. } => {
                    map1(s, x, out, n, UnaryFn::<S::V, { code::CLAMP }> { p, q })
                }
                UnaryOp::Affine { .. } => {
                    map1(s, x, out, n, UnaryFn::<S::V, { code::AFFINE }> { p, q })
                }
                UnaryOp::ShiftedLeakyRelu { .. } => map1(
                    s,
                    x,
                    out,
                    n,
                    UnaryFn::<S::V, { code::SHIFTED_LEAKY_RELU }> { p, q },
                ),
            }
        }
    }
}

/// Runs a unary op over `n` elements, in parallel for large `n`.
///
/// # Safety
/// `x` readable and `out` writable for `n` elements; `out == x` or the ranges are
/// disjoint.
unsafe fn unary_raw<T: Float>(level: SimdLevel, op: UnaryOp, x: *const T, out: *mut T, n: usize) {
    let (x, out) = (SyncPtr::from_const(x), SyncPtr::new(out));
    simd::for_each_range(
        n,
        simd::PAR_MIN_ELEMS,
        simd::PAR_CHUNK_ELEMS,
        |start, len| {
            // SAFETY: `start + len <= n`, and ranges handed to different tasks are disjoint.
            let (x, out) = unsafe { (x.get().add(start), out.get().add(start)) };
            simd::dispatch(
                level,
                UnaryKernel {
                    op,
                    x: SyncPtr::new(x),
                    out: SyncPtr::new(out),
                    n: len,
                },
            );
        },
    );
}

/// `out[i] = op(x[i])` at the active SIMD level. See [`unary_at`].
pub fn unary<T: Float>(op: UnaryOp, x: &[T], out: &mut [T]) -> Result<()> {
    unary_at(dispatch::active(), op, x, out)
}

/// `out[i] = op(x[i])` at an explicit SIMD level (clamped to what the CPU supports).
///
/// Errors if the lengths differ or the op's parameters are invalid
/// ([`UnaryOp::validate`]).
///
/// ```
/// use kernels::cpu::{elementwise::{unary_at, UnaryOp}, SimdLevel};
/// let mut out = [0.0f64; 2];
/// unary_at(SimdLevel::Portable, UnaryOp::Sqrt, &[4.0, 9.0], &mut out)?;
/// assert_eq!(out, [2.0, 3.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn unary_at<T: Float>(level: SimdLevel, op: UnaryOp, x: &[T], out: &mut [T]) -> Result<()> {
    op.validate()?;
    let n = same_len(op.name(), &[("x", x.len()), ("out", out.len())])?;
    // SAFETY: both slices hold n elements, and `out` is a unique borrow, so disjoint.
    unsafe { unary_raw(level, op, x.as_ptr(), out.as_mut_ptr(), n) };
    Ok(())
}

/// `x[i] = op(x[i])` in place at the active SIMD level.
pub fn unary_inplace<T: Float>(op: UnaryOp, x: &mut [T]) -> Result<()> {
    unary_inplace_at(dispatch::active(), op, x)
}

/// `x[i] = op(x[i])` in place at an explicit SIMD level. Errors only on invalid op
/// parameters.
pub fn unary_inplace_at<T: Float>(level: SimdLevel, op: UnaryOp, x: &mut [T]) -> Result<()> {
    op.validate()?;
    let p = x.as_mut_ptr();
    // SAFETY: input and output are the same n-element range.
    unsafe { unary_raw(level, op, p, p, x.len()) };
    Ok(())
}

/// How the second operand of a binary kernel is given.
#[derive(Clone, Copy)]
enum Rhs<T> {
    /// A slice of `n` elements.
    Slice(SyncPtr<T>),
    /// One value for every element: `a op s`.
    Scalar(T),
    /// One value on the left: `s op a`.
    ScalarLeft(T),
}

/// Binary map kernel over raw ranges (see [`binary_raw`]).
struct BinaryKernel<T> {
    op: BinaryOp,
    a: SyncPtr<T>,
    rhs: Rhs<T>,
    out: SyncPtr<T>,
    n: usize,
}

/// A vectorisable binary op on one pair of vectors.
#[inline(always)]
fn binary_vector<S: Simd>(s: S, op: u8, x: S::V, y: S::V) -> S::V {
    match op {
        code::ADD => s.add(x, y),
        code::SUB => s.sub(x, y),
        code::MUL => s.mul(x, y),
        code::DIV => s.div(x, y),
        code::MAXIMUM => s.max_nan(x, y),
        _ => s.min_nan(x, y), // code::MINIMUM
    }
}

/// The vector function of binary op `OP` (see [`simd::Map2`]).
#[derive(Clone, Copy)]
struct BinaryFn<const OP: u8>;

impl<S: Simd, const OP: u8> Map2<S> for BinaryFn<OP> {
    #[inline(always)]
    fn call(self, s: S, x: S::V, y: S::V) -> S::V {
        binary_vector(s, OP, x, y)
    }
}

/// `f(x, y)` with a fixed right operand `y`.
#[derive(Clone, Copy)]
struct WithRight<F, V> {
    f: F,
    y: V,
}

impl<S: Simd, F: Map2<S>> Map1<S> for WithRight<F, S::V> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        self.f.call(s, x, self.y)
    }
}

/// `f(y, x)` with a fixed left operand `y`.
#[derive(Clone, Copy)]
struct WithLeft<F, V> {
    f: F,
    y: V,
}

impl<S: Simd, F: Map2<S>> Map1<S> for WithLeft<F, S::V> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        self.f.call(s, self.y, x)
    }
}

/// The three operand shapes of a binary map.
///
/// # Safety
/// As for [`binary_raw`].
#[inline(always)]
unsafe fn binary_loop<S: Simd, F: Map2<S>>(
    s: S,
    a: *const S::E,
    rhs: Rhs<S::E>,
    out: *mut S::E,
    n: usize,
    f: F,
) {
    // SAFETY: forwarded from the caller: `a` (and a slice rhs) readable and `out`
    // writable for n elements, each either equal to `out` or disjoint from it.
    unsafe {
        match rhs {
            Rhs::Slice(b) => map2(s, a, b.get().cast_const(), out, n, f),
            Rhs::Scalar(y) => map1(s, a, out, n, WithRight { f, y: s.splat(y) }),
            Rhs::ScalarLeft(y) => map1(s, a, out, n, WithLeft { f, y: s.splat(y) }),
        }
    }
}

impl<T: Float> WithSimd<T> for BinaryKernel<T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) {
        let (a, rhs, out, n) = (self.a.get().cast_const(), self.rhs, self.out.get(), self.n);
        // SAFETY: `binary_raw`'s caller guarantees `a` (and a slice rhs) readable and
        // `out` writable for n elements, each equal to `out` or disjoint from it; every
        // index used is below n.
        unsafe {
            match self.op {
                BinaryOp::Add => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::ADD }>),
                BinaryOp::Sub => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::SUB }>),
                BinaryOp::Mul => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::MUL }>),
                BinaryOp::Div => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::DIV }>),
                BinaryOp::Maximum => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::MAXIMUM }>),
                BinaryOp::Minimum => binary_loop(s, a, rhs, out, n, BinaryFn::<{ code::MINIMUM }>),
                BinaryOp::Pow => {
                    // No vector pow: std's powf one element at a time.
                    for i in 0..n {
                        let x = a.add(i).read();
                        let v = match rhs {
                            Rhs::Slice(b) => x.powf(b.get().add(i).read()),
                            Rhs::Scalar(y) => x.powf(y),
                            Rhs::ScalarLeft(y) => y.powf(x),
                        };
                        out.add(i).write(v);
                    }
                }
            }
        }
    }
}

/// Runs a binary op over `n` elements, in parallel for large `n`.
///
/// # Safety
/// `a` (and `rhs` when it is a slice) readable and `out` writable for `n` elements;
/// each input range either equals the output range or is disjoint from it.
unsafe fn binary_raw<T: Float>(
    level: SimdLevel,
    op: BinaryOp,
    a: *const T,
    rhs: Rhs<T>,
    out: *mut T,
    n: usize,
) {
    let (a, out) = (SyncPtr::from_const(a), SyncPtr::new(out));
    simd::for_each_range(
        n,
        simd::PAR_MIN_ELEMS,
        simd::PAR_CHUNK_ELEMS,
        |start, len| {
            // SAFETY: `start + len <= n`, and ranges handed to different tasks are disjoint.
            let (a, out, rhs) = unsafe {
                let rhs = match rhs {
                    Rhs::Slice(b) => Rhs::Slice(SyncPtr::new(b.get().add(start))),
                    other => other,
                };
                (a.get().add(start), out.get().add(start), rhs)
            };
            let kernel = BinaryKernel {
                op,
                a: SyncPtr::new(a),
                rhs,
                out: SyncPtr::new(out),
                n: len,
            };
            simd::dispatch(level, kernel);
        },
    );
}

/// `out[i] = a[i] op b[i]` at the active SIMD level. See [`binary_at`].
///
/// ```
/// use kernels::cpu::elementwise::{binary, BinaryOp};
/// let mut out = [0.0f32; 3];
/// binary(BinaryOp::Maximum, &[1.0, 5.0, -1.0], &[2.0, 3.0, -2.0], &mut out)?;
/// assert_eq!(out, [2.0, 5.0, -1.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn binary<T: Float>(op: BinaryOp, a: &[T], b: &[T], out: &mut [T]) -> Result<()> {
    binary_at(dispatch::active(), op, a, b, out)
}

/// `out[i] = a[i] op b[i]` at an explicit SIMD level; errors if the lengths differ.
pub fn binary_at<T: Float>(
    level: SimdLevel,
    op: BinaryOp,
    a: &[T],
    b: &[T],
    out: &mut [T],
) -> Result<()> {
    let n = same_len(
        op.name(),
        &[("a", a.len()), ("b", b.len()), ("out", out.len())],
    )?;
    let rhs = Rhs::Slice(SyncPtr::from_const(b.as_ptr()));
    // SAFETY: all three slices hold n elements; `out` is a unique borrow, so disjoint.
    unsafe { binary_raw(level, op, a.as_ptr(), rhs, out.as_mut_ptr(), n) };
    Ok(())
}

/// `a[i] = a[i] op b[i]` in place at the active SIMD level.
pub fn binary_inplace<T: Float>(op: BinaryOp, a: &mut [T], b: &[T]) -> Result<()> {
    binary_inplace_at(dispatch::active(), op, a, b)
}

/// `a[i] = a[i] op b[i]` in place at an explicit SIMD level; errors if the lengths
/// differ.
pub fn binary_inplace_at<T: Float>(
    level: SimdLevel,
    op: BinaryOp,
    a: &mut [T],
    b: &[T],
) -> Result<()> {
    let n = same_len(op.name(), &[("a", a.len()), ("b", b.len())])?;
    let rhs = Rhs::Slice(SyncPtr::from_const(b.as_ptr()));
    let p = a.as_mut_ptr();
    // SAFETY: `a` is both input and output (same range); `b` is a shared borrow that
    // cannot overlap the unique borrow `a`.
    unsafe { binary_raw(level, op, p, rhs, p, n) };
    Ok(())
}

/// `out[i] = a[i] op s` at the active SIMD level.
///
/// ```
/// use kernels::cpu::elementwise::{binary_scalar, BinaryOp};
/// let mut out = [0.0f64; 2];
/// binary_scalar(BinaryOp::Div, &[1.0, 3.0], 2.0, &mut out)?;
/// assert_eq!(out, [0.5, 1.5]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn binary_scalar<T: Float>(op: BinaryOp, a: &[T], s: T, out: &mut [T]) -> Result<()> {
    binary_scalar_at(dispatch::active(), op, a, s, out)
}

/// `out[i] = a[i] op s` at an explicit SIMD level; errors if the lengths differ.
pub fn binary_scalar_at<T: Float>(
    level: SimdLevel,
    op: BinaryOp,
    a: &[T],
    s: T,
    out: &mut [T],
) -> Result<()> {
    let n = same_len(op.name(), &[("a", a.len()), ("out", out.len())])?;
    // SAFETY: both slices hold n elements; `out` is a unique borrow, so disjoint.
    unsafe { binary_raw(level, op, a.as_ptr(), Rhs::Scalar(s), out.as_mut_ptr(), n) };
    Ok(())
}

/// `a[i] = a[i] op s` in place at the active SIMD level.
pub fn binary_scalar_inplace<T: Float>(op: BinaryOp, a: &mut [T], s: T) {
    binary_scalar_inplace_at(dispatch::active(), op, a, s)
}

/// `a[i] = a[i] op s` in place at an explicit SIMD level (cannot fail).
pub fn binary_scalar_inplace_at<T: Float>(level: SimdLevel, op: BinaryOp, a: &mut [T], s: T) {
    let p = a.as_mut_ptr();
    // SAFETY: `a` is both input and output (same range).
    unsafe { binary_raw(level, op, p, Rhs::Scalar(s), p, a.len()) };
}

/// `out[i] = s op b[i]` (the scalar on the left, e.g. `1 - x`, `2 / x`) at the active
/// SIMD level.
///
/// ```
/// use kernels::cpu::elementwise::{scalar_binary, BinaryOp};
/// let mut out = [0.0f32; 2];
/// scalar_binary(BinaryOp::Sub, 1.0, &[0.25, 2.0], &mut out)?;
/// assert_eq!(out, [0.75, -1.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn scalar_binary<T: Float>(op: BinaryOp, s: T, b: &[T], out: &mut [T]) -> Result<()> {
    scalar_binary_at(dispatch::active(), op, s, b, out)
}

/// `out[i] = s op b[i]` at an explicit SIMD level; errors if the lengths differ.
pub fn scalar_binary_at<T: Float>(
    level: SimdLevel,
    op: BinaryOp,
    s: T,
    b: &[T],
    out: &mut [T],
) -> Result<()> {
    let n = same_len(op.name(), &[("b", b.len()), ("out", out.len())])?;
    // SAFETY: both slices hold n elements; `out` is a unique borrow, so disjoint.
    unsafe {
        binary_raw(
            level,
            op,
            b.as_ptr(),
            Rhs::ScalarLeft(s),
            out.as_mut_ptr(),
            n,
        )
    };
    Ok(())
}

/// `y[i] += alpha * x[i]` at the active SIMD level (the SGD update and gradient
/// accumulation). See [`axpy_at`].
///
/// ```
/// use kernels::cpu::elementwise::axpy;
/// let mut y = [1.0f32, 1.0];
/// axpy(-0.5, &[2.0, 4.0], &mut y)?;
/// assert_eq!(y, [0.0, -1.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
    axpy_at(dispatch::active(), alpha, x, y)
}

/// `y[i] += alpha * x[i]` at an explicit SIMD level (fused multiply-add on AVX2 and
/// AVX-512); errors if the lengths differ.
pub fn axpy_at<T: Float>(level: SimdLevel, alpha: T, x: &[T], y: &mut [T]) -> Result<()> {
    let n = same_len("axpy", &[("x", x.len()), ("y", y.len())])?;
    let kind = Fused::Axpy(alpha);
    // SAFETY: `y` is input and output (same range); `x` cannot overlap the unique `y`.
    unsafe { fused_raw(level, kind, x.as_ptr(), y.as_ptr(), y.as_mut_ptr(), n) };
    Ok(())
}

/// `x[i] *= alpha` in place at the active SIMD level.
pub fn scale<T: Float>(alpha: T, x: &mut [T]) {
    scale_at(dispatch::active(), alpha, x)
}

/// `x[i] *= alpha` in place at an explicit SIMD level.
pub fn scale_at<T: Float>(level: SimdLevel, alpha: T, x: &mut [T]) {
    binary_scalar_inplace_at(level, BinaryOp::Mul, x, alpha)
}

/// Two-input maps with their own formula: `axpy` and the activation backward passes.
#[derive(Clone, Copy, Debug)]
enum Fused<T> {
    /// `out = alpha * a + b` (with `b == out` for axpy).
    Axpy(T),
    /// `out = a > 0 ? b : 0` (a = x, b = grad_out).
    ReluBackward,
    /// `out = a > 0 ? b : slope * b`.
    LeakyReluBackward(T),
    /// `out = b * (1 - a^2)` (a = y = tanh(x)).
    TanhBackward,
    /// `out = b * a * (1 - a)` (a = y = sigmoid(x)).
    SigmoidBackward,
}

impl<T: Float> Fused<T> {
    fn name(self) -> &'static str {
        match self {
            Fused::Axpy(_) => "axpy",
            Fused::ReluBackward => "relu_backward",
            Fused::LeakyReluBackward(_) => "leaky_relu_backward",
            Fused::TanhBackward => "tanh_backward",
            Fused::SigmoidBackward => "sigmoid_backward",
        }
    }
}

/// Kernel for [`Fused`] maps over raw ranges (see [`fused_raw`]).
struct FusedKernel<T> {
    kind: Fused<T>,
    a: SyncPtr<T>,
    b: SyncPtr<T>,
    out: SyncPtr<T>,
    n: usize,
}

impl<T: Float> WithSimd<T> for FusedKernel<T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) {
        let (a, b, out, n) = (
            self.a.get().cast_const(),
            self.b.get().cast_const(),
            self.out.get(),
            self.n,
        );
        // SAFETY: `fused_raw`'s caller guarantees `a`, `b` readable and `out` writable
        // for n elements, each input equal to `out` or disjoint from it.
        unsafe {
            match self.kind {
                Fused::Axpy(alpha) => {
                    let p = s.splat(alpha);
                    map2(s, a, b, out, n, FusedFn::<S::V, { code::AXPY }> { p })
                }
                Fused::ReluBackward => {
                    let p = s.splat(T::ZERO);
                    map2(
                        s,
                        a,
                        b,
                        out,
                        n,
                        FusedFn::<S::V, { code::RELU_BACKWARD }> { p },
                    )
                }
                Fused::LeakyReluBackward(slope) => {
                    let p = s.splat(slope);
                    map2(
                        s,
                        a,
                        b,
                        out,
                        n,
                        FusedFn::<S::V, { code::LEAKY_RELU_BACKWARD }> { p },
                    )
                }
                Fused::TanhBackward => {
                    let p = s.splat(T::ZERO);
                    map2(
                        s,
                        a,
                        b,
                        out,
                        n,
                        FusedFn::<S::V, { code::TANH_BACKWARD }> { p },
                    )
                }
                Fused::SigmoidBackward => {
                    let p = s.splat(T::ZERO);
                    map2(
                        s,
                        a,
                        b,
                        out,
                        n,
                        FusedFn::<S::V, { code::SIGMOID_BACKWARD }> { p },
                    )
                }
            }
        }
    }
}

/// A fused map on one pair of vectors `(a, b)` with parameter `p` (alpha or slope).
#[inline(always)]
fn fused_vector<S: Simd>(s: S, kind: u8, a: S::V, b: S::V, p: S::V) -> S::V {
    let zero = s.splat(S::E::ZERO);
    let one = s.splat(S::E::ONE);
    match kind {
        code::AXPY => s.mul_add(p, a, b),
        code::RELU_BACKWARD => s.select(s.gt(a, zero), b, zero),
        code::LEAKY_RELU_BACKWARD => s.select(s.gt(a, zero), b, s.mul(b, p)),
        code::TANH_BACKWARD => s.mul(b, s.mul_add(s.neg(a), a, one)),
        _ => s.mul(s.mul(b, a), s.sub(one, a)), // code::SIGMOID_BACKWARD
    }
}

/// The vector function of fused map `K` (see [`simd::Map2`]).
#[derive(Clone, Copy)]
struct FusedFn<V, const K: u8> {
    p: V,
}

impl<S: Simd, const K: u8> Map2<S> for FusedFn<S::V, K> {
    #[inline(always)]
    fn call(self, s: S, a: S::V, b: S::V) -> S::V {
        fused_vector(s, K, a, b, self.p)
    }
}

/// Runs a fused two-input map over `n` elements, in parallel for large `n`.
///
/// # Safety
/// `a`, `b` readable and `out` writable for `n` elements; each input range equals the
/// output range or is disjoint from it.
unsafe fn fused_raw<T: Float>(
    level: SimdLevel,
    kind: Fused<T>,
    a: *const T,
    b: *const T,
    out: *mut T,
    n: usize,
) {
    let (a, b, out) = (
        SyncPtr::from_const(a),
        SyncPtr::from_const(b),
        SyncPtr::new(out),
    );
    simd::for_each_range(
        n,
        simd::PAR_MIN_ELEMS,
        simd::PAR_CHUNK_ELEMS,
        |start, len| {
            // SAFETY: `start + len <= n`, and ranges handed to different tasks are disjoint.
            let (a, b, out) =
                unsafe { (a.get().add(start), b.get().add(start), out.get().add(start)) };
            let kernel = FusedKernel {
                kind,
                a: SyncPtr::new(a),
                b: SyncPtr::new(b),
                out: SyncPtr::new(out),
                n: len,
            };
            simd::dispatch(level, kernel);
        },
    );
}

/// Validates and runs an activation backward pass `grad_in = f(a, grad_out)`.
fn backward<T: Float>(
    level: SimdLevel,
    kind: Fused<T>,
    (a_name, a): (&str, &[T]),
    grad_out: &[T],
    grad_in: &mut [T],
) -> Result<()> {
    let n = same_len(
        kind.name(),
        &[
            (a_name, a.len()),
            ("grad_out", grad_out.len()),
            ("grad_in", grad_in.len()),
        ],
    )?;
    // SAFETY: all three slices hold n elements; `grad_in` is a unique borrow, so it is
    // disjoint from both inputs.
    unsafe {
        fused_raw(
            level,
            kind,
            a.as_ptr(),
            grad_out.as_ptr(),
            grad_in.as_mut_ptr(),
            n,
        )
    };
    Ok(())
}

/// ReLU backward: `grad_in[i] = grad_out[i]` where `x[i] > 0`, else `0` (`x` is the
/// forward input).
///
/// ```
/// use kernels::cpu::elementwise::relu_backward;
/// let mut gi = [0.0f32; 3];
/// relu_backward(&[-1.0, 0.0, 2.0], &[5.0, 5.0, 5.0], &mut gi)?;
/// assert_eq!(gi, [0.0, 0.0, 5.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn relu_backward<T: Float>(x: &[T], grad_out: &[T], grad_in: &mut [T]) -> Result<()> {
    relu_backward_at(dispatch::active(), x, grad_out, grad_in)
}

/// [`relu_backward`] at an explicit SIMD level.
pub fn relu_backward_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
) -> Result<()> {
    backward(level, Fused::ReluBackward, ("x", x), grad_out, grad_in)
}

/// Leaky-ReLU backward: `grad_in[i] = grad_out[i]` where `x[i] > 0`, else
/// `slope * grad_out[i]`.
pub fn leaky_relu_backward<T: Float>(
    x: &[T],
    grad_out: &[T],
    slope: T,
    grad_in: &mut [T],
) -> Result<()> {
    leaky_relu_backward_at(dispatch::active(), x, grad_out, slope, grad_in)
}

/// [`leaky_relu_backward`] at an explicit SIMD level.
pub fn leaky_relu_backward_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    grad_out: &[T],
    slope: T,
    grad_in: &mut [T],
) -> Result<()> {
    backward(
        level,
        Fused::LeakyReluBackward(slope),
        ("x", x),
        grad_out,
        grad_in,
    )
}

/// Tanh backward from the forward output `y = tanh(x)`:
/// `grad_in[i] = grad_out[i] * (1 - y[i]^2)`.
///
/// ```
/// use kernels::cpu::elementwise::tanh_backward;
/// let mut gi = [0.0f64; 2];
/// tanh_backward(&[0.0, 0.5], &[2.0, 2.0], &mut gi)?;
/// assert_eq!(gi, [2.0, 1.5]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn tanh_backward<T: Float>(y: &[T], grad_out: &[T], grad_in: &mut [T]) -> Result<()> {
    tanh_backward_at(dispatch::active(), y, grad_out, grad_in)
}

/// [`tanh_backward`] at an explicit SIMD level.
pub fn tanh_backward_at<T: Float>(
    level: SimdLevel,
    y: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
) -> Result<()> {
    backward(level, Fused::TanhBackward, ("y", y), grad_out, grad_in)
}

/// Sigmoid backward from the forward output `y = sigmoid(x)`:
/// `grad_in[i] = grad_out[i] * y[i] * (1 - y[i])`.
pub fn sigmoid_backward<T: Float>(y: &[T], grad_out: &[T], grad_in: &mut [T]) -> Result<()> {
    sigmoid_backward_at(dispatch::active(), y, grad_out, grad_in)
}

/// [`sigmoid_backward`] at an explicit SIMD level.
pub fn sigmoid_backward_at<T: Float>(
    level: SimdLevel,
    y: &[T],
    grad_out: &[T],
    grad_in: &mut [T],
) -> Result<()> {
    backward(level, Fused::SigmoidBackward, ("y", y), grad_out, grad_in)
}

/// Defines named shorthands for binary ops at the active level.
macro_rules! binary_shorthands {
    ($($name:ident => $op:ident),* $(,)?) => {$(
        #[doc = concat!("`out[i] = ", stringify!($name), "(a[i], b[i])` at the active SIMD level: ")]
        #[doc = concat!("[`binary`] with [`BinaryOp::", stringify!($op), "`].")]
        pub fn $name<T: Float>(a: &[T], b: &[T], out: &mut [T]) -> Result<()> {
            binary(BinaryOp::$op, a, b, out)
        }
    )*};
}

binary_shorthands! {
    add => Add,
    sub => Sub,
    mul => Mul,
    div => Div,
    maximum => Maximum,
    minimum => Minimum,
}

/// Defines named shorthands for unary ops at the active level.
macro_rules! unary_shorthands {
    ($($name:ident => $op:ident),* $(,)?) => {$(
        #[doc = concat!("`out[i] = ", stringify!($name), "(x[i])` at the active SIMD level: ")]
        #[doc = concat!("[`unary`] with [`UnaryOp::", stringify!($op), "`].")]
        pub fn $name<T: Float>(x: &[T], out: &mut [T]) -> Result<()> {
            unary(UnaryOp::$op, x, out)
        }
    )*};
}

unary_shorthands! {
    neg => Neg,
    exp => Exp,
    ln => Ln,
    sqrt => Sqrt,
    abs => Abs,
    tanh => Tanh,
    sigmoid => Sigmoid,
    relu => Relu,
    square => Square,
    recip => Recip,
}

/// `out[i] = x[i]` for `x[i] >= 0`, else `slope * x[i]`, at the active SIMD level:
/// [`unary`] with [`UnaryOp::LeakyRelu`].
pub fn leaky_relu<T: Float>(x: &[T], slope: f64, out: &mut [T]) -> Result<()> {
    unary(UnaryOp::LeakyRelu { slope }, x, out)
}
