//! The error type of the tensor crate.
//!
//! Every variant names the op that failed and carries the shapes, dims, dtypes or values
//! involved, so a message read on its own (in a log, far from the call site) says what
//! went wrong, e.g. `add: shapes [2, 3] and [4] cannot be broadcast together`.

use thiserror::Error;

use crate::{DType, Device, Shape};

/// Shorthand for results of tensor ops.
pub type Result<T> = std::result::Result<T, TensorError>;

/// What can go wrong in a tensor op. Library code never panics on user input: it
/// returns one of these.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TensorError {
    /// Two shapes that must be equal (or compatible, as for matmul) are not.
    #[error("{op}: shape mismatch between {lhs} and {rhs}")]
    ShapeMismatch {
        /// The op that failed.
        op: &'static str,
        /// The first (left) shape.
        lhs: Shape,
        /// The second (right) shape.
        rhs: Shape,
    },
    /// Two shapes are not broadcastable by NumPy rules.
    #[error("{op}: shapes {lhs} and {rhs} cannot be broadcast together")]
    Broadcast {
        /// The op that failed.
        op: &'static str,
        /// The first (left) shape.
        lhs: Shape,
        /// The second (right) shape.
        rhs: Shape,
    },
    /// A dimension index is not below the rank.
    #[error("{op}: dimension {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The dimension asked for.
        dim: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// An index along a dimension is not below that dimension's size.
    #[error("{op}: index {index} is out of range for dimension {dim} of size {size}")]
    IndexOutOfRange {
        /// The op that failed.
        op: &'static str,
        /// The offending index.
        index: usize,
        /// The size of the dimension.
        size: usize,
        /// The dimension indexed.
        dim: usize,
    },
    /// Two tensors (or a tensor and a requested Rust type) have different dtypes.
    #[error("{op}: dtype mismatch: {lhs} vs {rhs}")]
    DTypeMismatch {
        /// The op that failed.
        op: &'static str,
        /// The first dtype (usually the tensor's).
        lhs: DType,
        /// The second dtype.
        rhs: DType,
    },
    /// The op is not defined for this dtype (e.g. arithmetic on `u32`).
    #[error("{op}: not supported for dtype {dtype}")]
    UnsupportedDType {
        /// The op that failed.
        op: &'static str,
        /// The dtype it was given.
        dtype: DType,
    },
    /// Two tensors live on different devices.
    #[error("{op}: tensors are on different devices: {lhs} and {rhs}")]
    DeviceMismatch {
        /// The op that failed.
        op: &'static str,
        /// The first device.
        lhs: Device,
        /// The second device.
        rhs: Device,
    },
    /// A data buffer's length does not match the element count of a shape.
    #[error("{op}: shape {shape} holds {} elements but {len} were given", shape.elem_count())]
    ElementCount {
        /// The op that failed.
        op: &'static str,
        /// The requested shape.
        shape: Shape,
        /// The number of elements supplied.
        len: usize,
    },
    /// A view (no copy) with the target shape cannot be expressed with strides.
    #[error(
        "{op}: cannot view a tensor of shape {shape} with strides {strides:?} as {target} \
         without copying (use reshape or contiguous first)"
    )]
    ViewNotPossible {
        /// The op that failed.
        op: &'static str,
        /// The tensor's shape.
        shape: Shape,
        /// The tensor's strides (in elements).
        strides: Vec<usize>,
        /// The requested shape.
        target: Shape,
    },
    /// An argument has a value the op cannot use; `detail` says which and why.
    #[error("{op}: {detail}")]
    InvalidArgument {
        /// The op that failed.
        op: &'static str,
        /// What was wrong, with the values involved.
        detail: String,
    },
    /// The host buffer of an op's output (or a working buffer the op needs for it)
    /// could not be allocated: the system refused the memory, or its size in bytes
    /// overflows `usize` or exceeds `isize::MAX` (the most a Rust allocation may hold).
    /// Nothing is allocated in the overflow case; either way the process goes on.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// // 2^62 bytes: more than any machine can map.
    /// let err = Tensor::zeros([1 << 58, 4], DType::F32, &Device::Cpu).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "zeros: cannot allocate 4611686018427387904 bytes for a f32 tensor \
    ///      of shape [288230376151711744, 4]"
    /// );
    /// // A size in bytes beyond `usize`.
    /// let err = Tensor::ones([1 << 60, 8], DType::F64, &Device::Cpu).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "ones: cannot allocate more than 18446744073709551615 bytes for a f64 tensor \
    ///      of shape [1152921504606846976, 8]"
    /// );
    /// ```
    #[error(
        "{op}: cannot allocate {} for a {dtype} tensor of shape {shape}",
        ByteCount(*bytes)
    )]
    AllocationFailed {
        /// The op that failed.
        op: &'static str,
        /// The shape of the tensor the buffer was for.
        shape: Shape,
        /// The dtype of the buffer's elements.
        dtype: DType,
        /// The size of the allocation in bytes, or `None` when it does not fit in a
        /// `usize`.
        bytes: Option<usize>,
    },
    /// The op needs a CUDA device but this build has no CUDA backend.
    #[error("{op}: cannot use device {device}: built without CUDA support")]
    CudaUnavailable {
        /// The op that failed.
        op: &'static str,
        /// The device asked for.
        device: Device,
    },
    /// A CUDA op failed on `device` (the driver, NVRTC or cuBLAS reported an error, no
    /// GPU could be opened, or the op is not implemented on CUDA); `detail` says which.
    #[cfg(feature = "cuda")]
    #[error("{op} on {device}: {detail}")]
    Cuda {
        /// The op that failed.
        op: &'static str,
        /// The CUDA device involved.
        device: Device,
        /// What went wrong.
        detail: String,
    },
    /// A kernel rejected its arguments (a bug in this crate if it ever happens: the
    /// tensor layer validates before calling kernels).
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
}

/// A byte count in an [`TensorError::AllocationFailed`] message: `N bytes`, or `more
/// than usize::MAX bytes` when the count does not fit in a `usize`.
struct ByteCount(Option<usize>);

impl std::fmt::Display for ByteCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n} bytes"),
            None => write!(f, "more than {} bytes", usize::MAX),
        }
    }
}

impl TensorError {
    /// Shorthand for [`TensorError::InvalidArgument`].
    pub(crate) fn invalid(op: &'static str, detail: impl Into<String>) -> Self {
        TensorError::InvalidArgument {
            op,
            detail: detail.into(),
        }
    }
}
