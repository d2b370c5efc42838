//! The callbacks that ship with the crate.
//!
//! - [`Progress`]: a progress bar over the batches of each phase, with rate and ETA.
//! - [`PrintMetrics`]: the per-phase loss/accuracy table, printed as the run goes.
//! - [`Recorder`]: the loss and learning rate of every training batch, for curves.
//! - [`ParamScheduler`]: sets the learning rate (and momentum) before every training
//!   batch from a [`Schedule`](crate::schedule::Schedule).
//!
//! [`Learner::new`](crate::Learner::new) installs `Progress` and `PrintMetrics`; the
//! others are added by the program.

mod param_scheduler;
mod print_metrics;
mod progress;
mod recorder;

pub use param_scheduler::{ParamScheduler, ScheduledValues};
pub use print_metrics::PrintMetrics;
pub use progress::Progress;
pub use recorder::{BatchRecord, Recorder};
