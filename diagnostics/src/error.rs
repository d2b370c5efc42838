//! The one error type of the crate.
//!
//! Every variant names what was being done and the values involved, e.g.
//! `ActivationConfig.every = 0: must be at least 1` or `layer "3" (Conv2d), train call
//! 12: activation of dtype U32 has no statistics`. Nothing in this crate panics on
//! user input.

use std::path::PathBuf;

use thiserror::Error;

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, DiagError>;

/// What can go wrong while recording, plotting or reporting.
#[derive(Debug, Error)]
pub enum DiagError {
    /// A configuration value is out of range.
    #[error("{config}.{field} = {value}: {why}")]
    InvalidConfig {
        /// The configuration type, e.g. `"ActivationConfig"`.
        config: &'static str,
        /// The field, e.g. `"every"`.
        field: &'static str,
        /// The value as given.
        value: String,
        /// What is expected of it.
        why: String,
    },

    /// A filter chose no module of the model, so there is nothing to watch.
    #[error("{what}: no module of the model matched the filter (modules: {available})")]
    NoModules {
        /// What was being set up, e.g. `"ActivationStats::attach"`.
        what: &'static str,
        /// The model's modules as `path (Kind)`, comma separated (truncated).
        available: String,
    },

    /// The recorder already watches a model; detach it first.
    #[error(
        "{what}: already attached to a model with {layers} watched modules; call detach() first"
    )]
    AlreadyAttached {
        /// The call that was refused.
        what: &'static str,
        /// How many modules are being watched.
        layers: usize,
    },

    /// A layer, parameter or capture target named by the caller does not exist.
    #[error("{what}: no {kind} named {name:?} (known: {known})")]
    UnknownName {
        /// The call that was refused.
        what: &'static str,
        /// `"layer"` or `"parameter"`.
        kind: &'static str,
        /// The name as given.
        name: String,
        /// The names that exist (truncated).
        known: String,
    },

    /// A hook could not compute the statistics of an activation (reported later,
    /// since hooks cannot return errors).
    #[error("layer {layer:?}, {phase} call {call}: {detail}")]
    Hook {
        /// Dotted path of the module.
        layer: String,
        /// `"train"` or `"valid"`.
        phase: &'static str,
        /// Index of the forward call within its phase.
        call: usize,
        /// What went wrong, with the values involved.
        detail: String,
    },

    /// The model has no parameter to watch (or none passed the filter).
    #[error("{what}: no parameters to watch ({detail})")]
    NoParameters {
        /// The call that was refused.
        what: &'static str,
        /// Why none qualified.
        detail: String,
    },

    /// A tensor could not be read (wrong dtype, device, ...).
    #[error("{during}: {source}")]
    Tensor {
        /// What was being read, e.g. `"gradient of 0.weight"`.
        during: String,
        /// The tensor crate's error.
        #[source]
        source: tensor::TensorError,
    },

    /// The statistics kernel rejected its arguments.
    #[error("{during}: {source}")]
    Kernel {
        /// What was being computed.
        during: String,
        /// The kernel's error.
        #[source]
        source: kernels::KernelError,
    },

    /// A figure could not be drawn or written.
    #[error(transparent)]
    Plot(#[from] plots::PlotError),

    /// A file or directory could not be written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. `"writing the health report"`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl DiagError {
    /// [`DiagError::InvalidConfig`] with any displayable value.
    pub(crate) fn config(
        config: &'static str,
        field: &'static str,
        value: impl std::fmt::Display,
        why: impl Into<String>,
    ) -> Self {
        DiagError::InvalidConfig {
            config,
            field,
            value: value.to_string(),
            why: why.into(),
        }
    }
}

/// Joins names for an error message, keeping it short.
pub(crate) fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const MAX: usize = 12;
    let names: Vec<&str> = names.into_iter().collect();
    let mut out = names
        .iter()
        .take(MAX)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX {
        out.push_str(&format!(", ... ({} in all)", names.len()));
    }
    if out.is_empty() {
        out.push_str("none");
    }
    out
}
