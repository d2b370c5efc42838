//! The error type of the train crate.
//!
//! Every variant says where in the run it happened (epoch, phase, batch) and with
//! which values, e.g. `non-finite loss NaN at epoch 0, train batch 3 (global step 3):
//! training stopped before backward`. Nothing in this crate panics on user input.

use thiserror::Error;

use crate::event::{Event, Phase, Scope};

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

/// What can stop a training run, an LR-finder sweep or a learner's construction.
#[derive(Debug, Error)]
pub enum TrainError {
    /// The loss was NaN or infinite: training stops instead of stepping on garbage.
    #[error(
        "non-finite loss {value} at epoch {epoch}, {phase} batch {batch} (global step {step}): \
         training stopped before backward; look for a too-high learning rate, unnormalised \
         inputs or a log/division of zero"
    )]
    NonFiniteLoss {
        /// Epoch index (0-based).
        epoch: usize,
        /// Phase of the batch.
        phase: Phase,
        /// Batch index within the phase (0-based).
        batch: usize,
        /// Global training step (training batches begun before this one).
        step: usize,
        /// The loss value.
        value: f64,
    },
    /// The loss function returned something other than one number.
    #[error(
        "the loss at epoch {epoch}, {phase} batch {batch} has shape {shape:?}; the loss \
         function must return a single value (reduce it, e.g. with a mean)"
    )]
    LossNotScalar {
        /// Epoch index.
        epoch: usize,
        /// Phase of the batch.
        phase: Phase,
        /// Batch index within the phase.
        batch: usize,
        /// The shape that came back.
        shape: Vec<usize>,
    },
    /// The model, the loss function, backward or the optimiser failed on a batch.
    #[error("{during} failed at epoch {epoch}, {phase} batch {batch}: {source}")]
    Step {
        /// What was running: `"forward"`, `"loss"`, `"backward"`, `"optimizer step"`.
        during: &'static str,
        /// Epoch index.
        epoch: usize,
        /// Phase of the batch.
        phase: Phase,
        /// Batch index within the phase.
        batch: usize,
        /// The underlying error (boxed: it is large and rare).
        #[source]
        source: Box<nn::NnError>,
    },
    /// A data loader failed to produce a batch (a failing transform).
    #[error("the {phase} data loader failed at epoch {epoch}, batch {batch}: {source}")]
    Data {
        /// Epoch index.
        epoch: usize,
        /// Which loader.
        phase: Phase,
        /// Batch index.
        batch: usize,
        /// The underlying error.
        #[source]
        source: Box<data::DataError>,
    },
    /// A callback returned an error.
    #[error("callback {callback} failed during {event}: {source}")]
    Callback {
        /// The callback's name.
        callback: String,
        /// The event it was handling.
        event: Event,
        /// What it reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A callback asked to cancel a scope the loop is not in, e.g. the batch during
    /// `before_epoch` or validation during the training phase.
    #[error(
        "callback {callback} cancelled the {scope} during {event}, which is not inside a \
         {scope}"
    )]
    MisplacedCancel {
        /// The callback's name.
        callback: String,
        /// The event it was handling.
        event: Event,
        /// The scope it tried to cancel.
        scope: Scope,
    },
    /// A value given to the learner, a scheduler or the LR finder is unusable.
    #[error("{what}: {detail}")]
    Config {
        /// The function or setting that refused.
        what: &'static str,
        /// What was wrong, with the values.
        detail: String,
    },
    /// Building the optimiser, or saving or restoring model state, failed.
    #[error("{during}: {source}")]
    Nn {
        /// What was being done.
        during: &'static str,
        /// The underlying error.
        #[source]
        source: Box<nn::NnError>,
    },
    /// Drawing or writing a figure failed; the inner error names the file.
    #[error(transparent)]
    Plot(Box<plots::PlotError>),
    /// A tensor operation outside a batch failed (copying or restoring state).
    #[error("{during}: {source}")]
    Tensor {
        /// What was being done.
        during: &'static str,
        /// The underlying error.
        #[source]
        source: Box<tensor::TensorError>,
    },
}

impl TrainError {
    /// Builds a [`TrainError::Config`].
    pub(crate) fn config(what: &'static str, detail: impl Into<String>) -> Self {
        TrainError::Config {
            what,
            detail: detail.into(),
        }
    }
}
