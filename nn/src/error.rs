//! The error type of the nn crate.

use thiserror::Error;

/// Shorthand for results of nn calls.
pub type Result<T> = std::result::Result<T, NnError>;

/// What can go wrong building, running, initialising, optimising or saving a model.
#[derive(Debug, Error)]
pub enum NnError {
    /// A differentiable op failed (shapes, dtypes...); the inner error names it.
    #[error(transparent)]
    Autograd(#[from] autograd::AutogradError),
    /// A kernel rejected its arguments.
    #[error(transparent)]
    Kernel(#[from] kernels::KernelError),
    /// A layer was configured with unusable values, or received an input it cannot
    /// take; names the layer and the values.
    #[error("{layer}: {detail}")]
    Config {
        /// The layer (or optimiser, or init scheme) that refused.
        layer: String,
        /// What was wrong, with the values involved.
        detail: String,
    },
    /// A checkpoint lacks a tensor the model expects.
    #[error("checkpoint {path}: no tensor named `{name}` (the model expects shape {expected:?})")]
    MissingTensor {
        /// The checkpoint file.
        path: String,
        /// The parameter or buffer name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
    },
    /// A checkpoint tensor has the wrong shape or dtype.
    #[error("checkpoint {path}: tensor `{name}` has {found} but the model expects {expected}")]
    TensorMismatch {
        /// The checkpoint file.
        path: String,
        /// The parameter or buffer name.
        name: String,
        /// What the file holds (shape and dtype).
        found: String,
        /// What the model expects.
        expected: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The checkpoint file is not valid safetensors.
    #[error("checkpoint {path}: {detail}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What the safetensors parser said.
        detail: String,
    },
}

impl From<tensor::TensorError> for NnError {
    fn from(e: tensor::TensorError) -> Self {
        NnError::Autograd(e.into())
    }
}

/// Builds a [`NnError::Config`].
pub(crate) fn config_error(layer: impl Into<String>, detail: impl Into<String>) -> NnError {
    NnError::Config {
        layer: layer.into(),
        detail: detail.into(),
    }
}
