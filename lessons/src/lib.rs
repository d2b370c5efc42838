//! The lessons' models and experiments, shared by the programs (`diagnose`,
//! `makemore`) and the peer comparison in `bench-harness`.
//!
//! - [`cli`]: what the programs share at the command line (bounded threads, one run per
//!   output folder, Ctrl-C at a batch boundary, atomic writes).
//! - [`models`]: the fastai lesson's CNN and its variants.
//! - [`summary`]: `diagnose`'s summary, every outcome sentence built from the
//!   measured rows.
//! - [`watch`]: fitting a learner while recording activation statistics, then writing
//!   the figures and the health report.

pub mod cli;
pub mod models;
pub mod summary;
pub mod watch;

/// The error of the lesson programs: any library error, or a message naming what
/// failed and with which values.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Shorthand for results of the lesson programs.
pub type Result<T> = std::result::Result<T, Error>;
