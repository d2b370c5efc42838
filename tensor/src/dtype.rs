//! Element types: the runtime tag [`DType`] and the compile-time traits [`Element`] and
//! [`FloatElement`] that connect a Rust scalar type to it.
//!
//! A tensor's element type is a runtime value (so a `Vec<Tensor>` can mix f32 and f64),
//! while the loops that do the work are generic over `T: Element`. Ops match on the
//! dtype once and then run a monomorphised loop, so the per-element code has no
//! dynamic dispatch.

use std::fmt;
use std::ops::{Add, AddAssign, Div, Mul, Neg, Sub};

use crate::storage::CpuStorage;

/// The element type of a tensor, known at run time.
///
/// `F32` and `F64` hold numbers (f64 exists so gradients can be checked tightly); `U32`
/// holds indices: class labels, embedding ids, the result of `argmax`. Arithmetic on
/// `U32` is an [`UnsupportedDType`](crate::TensorError::UnsupportedDType) error.
///
/// ```
/// use tensor::DType;
/// assert_eq!(DType::F32.to_string(), "f32");
/// assert_eq!(DType::F64.size_in_bytes(), 8);
/// assert!(!DType::U32.is_float());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float: the default for training.
    F32,
    /// 64-bit IEEE float: for gradient checks and statistics.
    F64,
    /// 32-bit unsigned integer: indices and labels.
    U32,
}

impl DType {
    /// Bytes one element occupies.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F64 => 8,
        }
    }

    /// Whether arithmetic (and therefore autograd) is defined for this dtype.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// The lowercase name used in messages and `Display`: `f32`, `f64`, `u32`.
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::U32 => "u32",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) mod sealed {
    use kernels::cpu::elementwise::{self, BinaryOp, UnaryOp};
    use kernels::cpu::reduce;

    use crate::storage::CpuStorage;

    /// Crate-private plumbing between a scalar type and its [`CpuStorage`] variant.
    /// Being a supertrait of `Element` in a private module, it also seals `Element`:
    /// the set of dtypes is closed.
    pub trait Sealed: Sized {
        /// The elements if `storage` holds this type.
        fn cpu_slice(storage: &CpuStorage) -> Option<&[Self]>;
        /// The elements, mutably, if `storage` holds this type.
        fn cpu_slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]>;
        /// Wraps a vector of this type as storage.
        fn into_cpu_storage(data: Vec<Self>) -> CpuStorage;
        /// Unwraps storage of this type into its vector.
        fn from_cpu_storage(storage: CpuStorage) -> Option<Vec<Self>>;
    }

    /// Crate-private bridge from a float element type to the SIMD slice kernels of
    /// `kernels::cpu` (which are generic over their own sealed `Float` trait). Keeping
    /// it separate from that trait avoids method-name clashes in generic code, which
    /// calls these as `T::k_*`.
    pub trait FloatKernels: Sized {
        /// `out = op(x)`.
        fn k_unary(op: UnaryOp, x: &[Self], out: &mut [Self]) -> kernels::Result<()>;
        /// `out = a op b`.
        fn k_binary(op: BinaryOp, a: &[Self], b: &[Self], out: &mut [Self]) -> kernels::Result<()>;
        /// `out = a op s`.
        fn k_binary_scalar(
            op: BinaryOp,
            a: &[Self],
            s: Self,
            out: &mut [Self],
        ) -> kernels::Result<()>;
        /// `out = s op b`.
        fn k_scalar_binary(
            op: BinaryOp,
            s: Self,
            b: &[Self],
            out: &mut [Self],
        ) -> kernels::Result<()>;
        /// `a = a op b`.
        fn k_binary_inplace(op: BinaryOp, a: &mut [Self], b: &[Self]) -> kernels::Result<()>;
        /// `y += alpha * x`.
        fn k_axpy(alpha: Self, x: &[Self], y: &mut [Self]) -> kernels::Result<()>;
        /// `x *= alpha`.
        fn k_scale(alpha: Self, x: &mut [Self]);
        /// `sum(x)` accumulated in f64.
        fn k_sum(x: &[Self]) -> f64;
        /// Largest element (NaN if any); errors on an empty slice.
        fn k_max(x: &[Self]) -> kernels::Result<Self>;
        /// Smallest element (NaN if any); errors on an empty slice.
        fn k_min(x: &[Self]) -> kernels::Result<Self>;
        /// Row-wise softmax of a `rows x cols` block.
        fn k_softmax_rows(
            x: &[Self],
            rows: usize,
            cols: usize,
            out: &mut [Self],
        ) -> kernels::Result<()>;
        /// Row-wise log-softmax of a `rows x cols` block.
        fn k_log_softmax_rows(
            x: &[Self],
            rows: usize,
            cols: usize,
            out: &mut [Self],
        ) -> kernels::Result<()>;
    }

    macro_rules! impl_float_kernels {
        ($t:ty) => {
            impl FloatKernels for $t {
                #[inline]
                fn k_unary(op: UnaryOp, x: &[Self], out: &mut [Self]) -> kernels::Result<()> {
                    elementwise::unary(op, x, out)
                }
                #[inline]
                fn k_binary(
                    op: BinaryOp,
                    a: &[Self],
                    b: &[Self],
                    out: &mut [Self],
                ) -> kernels::Result<()> {
                    elementwise::binary(op, a, b, out)
                }
                #[inline]
                fn k_binary_scalar(
                    op: BinaryOp,
                    a: &[Self],
                    s: Self,
                    out: &mut [Self],
                ) -> kernels::Result<()> {
                    elementwise::binary_scalar(op, a, s, out)
                }
                #[inline]
                fn k_scalar_binary(
                    op: BinaryOp,
                    s: Self,
                    b: &[Self],
                    out: &mut [Self],
                ) -> kernels::Result<()> {
                    elementwise::scalar_binary(op, s, b, out)
                }
                #[inline]
                fn k_binary_inplace(
                    op: BinaryOp,
                    a: &mut [Self],
                    b: &[Self],
                ) -> kernels::Result<()> {
                    elementwise::binary_inplace(op, a, b)
                }
                #[inline]
                fn k_axpy(alpha: Self, x: &[Self], y: &mut [Self]) -> kernels::Result<()> {
                    elementwise::axpy(alpha, x, y)
                }
                #[inline]
                fn k_scale(alpha: Self, x: &mut [Self]) {
                    elementwise::scale(alpha, x)
                }
                #[inline]
                fn k_sum(x: &[Self]) -> f64 {
                    reduce::sum(x)
                }
                #[inline]
                fn k_max(x: &[Self]) -> kernels::Result<Self> {
                    reduce::max(x)
                }
                #[inline]
                fn k_min(x: &[Self]) -> kernels::Result<Self> {
                    reduce::min(x)
                }
                #[inline]
                fn k_softmax_rows(
                    x: &[Self],
                    rows: usize,
                    cols: usize,
                    out: &mut [Self],
                ) -> kernels::Result<()> {
                    reduce::softmax_rows(x, rows, cols, out)
                }
                #[inline]
                fn k_log_softmax_rows(
                    x: &[Self],
                    rows: usize,
                    cols: usize,
                    out: &mut [Self],
                ) -> kernels::Result<()> {
                    reduce::log_softmax_rows(x, rows, cols, out)
                }
            }
        };
    }

    impl_float_kernels!(f32);
    impl_float_kernels!(f64);
}

/// A Rust scalar type that can be a tensor element: `f32`, `f64` or `u32`.
///
/// The trait is sealed (the dtype set is closed). Conversions go through `f64`, which
/// represents every `f32` and `u32` exactly.
pub trait Element:
    sealed::Sealed + Copy + Send + Sync + fmt::Debug + fmt::Display + PartialOrd + 'static
{
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// Additive identity (also "false" in comparison results).
    const ZERO: Self;
    /// Multiplicative identity (also "true" in comparison results).
    const ONE: Self;
    /// The smallest value (`-inf` for floats): the identity of `max`.
    const LOWEST: Self;
    /// The largest value (`+inf` for floats): the identity of `min`.
    const HIGHEST: Self;

    /// Exact widening to `f64`.
    fn to_f64(self) -> f64;
    /// Conversion from `f64` with Rust `as` semantics (rounding for `f32`; truncation
    /// toward zero and saturation for `u32`, with NaN mapping to 0).
    fn from_f64(v: f64) -> Self;

    /// Whether the value is NaN (always false for integers). Written as `self != self`
    /// so generic code can propagate NaN through `max`/`min` like PyTorch.
    #[inline]
    #[allow(clippy::eq_op)]
    fn is_nan_value(self) -> bool {
        self != self
    }
}

/// A floating-point element (`f32` or `f64`): the types arithmetic is defined for.
pub trait FloatElement:
    Element
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + sealed::FloatKernels
{
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;

    /// `e^self`.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self` raised to a floating-point power.
    fn powf(self, e: Self) -> Self;
    /// `1 / self`.
    fn recip(self) -> Self;
    /// `-1`, `0` or `1` by sign (`0` for both zeros, NaN for NaN).
    fn signum0(self) -> Self;
    /// Conversion from `f32` (exact for both float types).
    fn from_f32(v: f32) -> Self;
}

macro_rules! impl_float_element {
    ($t:ty, $variant:ident) => {
        impl sealed::Sealed for $t {
            #[inline]
            fn cpu_slice(storage: &CpuStorage) -> Option<&[Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn cpu_slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn into_cpu_storage(data: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(data)
            }
            #[inline]
            fn from_cpu_storage(storage: CpuStorage) -> Option<Vec<Self>> {
                match storage {
                    CpuStorage::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }

        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }

        impl FloatElement for $t {
            const INFINITY: Self = <$t>::INFINITY;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            #[inline]
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            #[inline]
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            #[inline]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline]
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            #[inline]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline]
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            #[inline]
            fn recip(self) -> Self {
                <$t>::recip(self)
            }
            #[inline]
            fn signum0(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else {
                    // 0, -0 or NaN: keep NaN, map both zeros to +0.
                    self * 0.0
                }
            }
            #[inline]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
        }
    };
}

impl_float_element!(f32, F32);
impl_float_element!(f64, F64);

impl sealed::Sealed for u32 {
    #[inline]
    fn cpu_slice(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::U32(v) => Some(v),
            _ => None,
        }
    }
    #[inline]
    fn cpu_slice_mut(storage: &mut CpuStorage) -> Option<&mut [Self]> {
        match storage {
            CpuStorage::U32(v) => Some(v),
            _ => None,
        }
    }
    #[inline]
    fn into_cpu_storage(data: Vec<Self>) -> CpuStorage {
        CpuStorage::U32(data)
    }
    fn from_cpu_storage(storage: CpuStorage) -> Option<Vec<Self>> {
        match storage {
            CpuStorage::U32(v) => Some(v),
            _ => None,
        }
    }
}

impl Element for u32 {
    const DTYPE: DType = DType::U32;
    const ZERO: Self = 0;
    const ONE: Self = 1;
    const LOWEST: Self = 0;
    const HIGHEST: Self = u32::MAX;
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_as_semantics() {
        assert_eq!(u32::from_f64(-3.5), 0);
        assert_eq!(u32::from_f64(3.9), 3);
        assert_eq!(u32::from_f64(f64::NAN), 0);
        assert_eq!(f32::from_f64(0.1), 0.1f32);
        assert!(f32::NAN.is_nan_value());
        assert!(!7u32.is_nan_value());
    }

    #[test]
    fn signum_keeps_zero_and_nan() {
        assert_eq!(FloatElement::signum0(-2.0f64), -1.0);
        assert_eq!(FloatElement::signum0(0.0f32), 0.0);
        assert!(FloatElement::signum0(f32::NAN).is_nan());
    }
}
