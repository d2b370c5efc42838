//! The error type of the kernels crate.

use thiserror::Error;

/// Shorthand for results of kernel calls.
pub type Result<T> = std::result::Result<T, KernelError>;

/// What can go wrong when a kernel is called with inconsistent arguments.
///
/// Every variant names the kernel (`op`) so a message read out of context still says
/// where it came from.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum KernelError {
    /// A slice is too short for the sizes and strides that describe it.
    #[error("{op}: {what} needs at least {needed} elements but the slice has {got}")]
    SliceTooShort {
        /// The kernel that was called.
        op: &'static str,
        /// Which argument (e.g. "matrix A", "output").
        what: &'static str,
        /// Elements the sizes and strides address.
        needed: usize,
        /// Elements the slice holds.
        got: usize,
    },
    /// Two arguments disagree on a size.
    #[error("{op}: size mismatch: {detail}")]
    SizeMismatch {
        /// The kernel that was called.
        op: &'static str,
        /// Human-readable description of the mismatch, with the sizes involved.
        detail: String,
    },
    /// A parameter has a value the kernel cannot use.
    #[error("{op}: invalid argument: {detail}")]
    InvalidArgument {
        /// The kernel that was called.
        op: &'static str,
        /// What was wrong, with the offending values.
        detail: String,
    },
    /// The CUDA driver, NVRTC or cuBLAS reported an error (only in builds with the
    /// `cuda` feature).
    #[cfg(feature = "cuda")]
    #[error("{op}: CUDA error: {detail}")]
    Cuda {
        /// The kernel or operation that was running.
        op: &'static str,
        /// The error reported by the CUDA library, with context.
        detail: String,
    },
}
