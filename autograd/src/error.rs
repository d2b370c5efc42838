//! The error type of the autograd crate.

use tensor::{Shape, TensorError};
use thiserror::Error;

/// Shorthand for results of autograd calls.
pub type Result<T> = std::result::Result<T, AutogradError>;

/// What can go wrong while recording or differentiating a computation.
#[derive(Debug, Error)]
pub enum AutogradError {
    /// A tensor operation failed (shapes, dtypes, indices...); the inner error names it.
    #[error(transparent)]
    Tensor(#[from] TensorError),
    /// A kernel rejected its arguments.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
    /// `backward()` without an explicit output gradient needs a single-element output.
    #[error("backward: output has shape {shape} ({count} elements); call backward_with_grad with a gradient of that shape, or reduce the output to a scalar first")]
    NonScalarBackward {
        /// Shape of the value backward was called on.
        shape: Shape,
        /// Its number of elements.
        count: usize,
    },
    /// An explicit output gradient does not match the output.
    #[error("backward: the output gradient has shape {got} but the output has shape {expected}")]
    GradShape {
        /// The output's shape.
        expected: Shape,
        /// The gradient's shape.
        got: Shape,
    },
    /// `backward` reached a node whose saved state was already released by an earlier
    /// `backward` call.
    #[error("backward through a freed graph: the saved state of `{op}` was released by an earlier backward; pass BackwardOptions {{ keep_graph: true, .. }} to the first call to backward twice")]
    GraphFreed {
        /// The op whose state was gone.
        op: &'static str,
    },
    /// A gradient hook returned a replacement of the wrong shape.
    #[error("gradient hook on a value of shape {expected} returned a gradient of shape {got}")]
    HookShape {
        /// Shape of the value the hook is registered on.
        expected: Shape,
        /// Shape of the gradient the hook returned.
        got: Shape,
    },
    /// An argument is invalid for the op (with the values involved).
    #[error("{op}: {detail}")]
    InvalidArgument {
        /// The op that was called.
        op: &'static str,
        /// What was wrong.
        detail: String,
    },
}
