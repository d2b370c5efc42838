//! Activation statistics: what each watched layer's output looked like, call by call.
//!
//! - [`ActivationStats`] registers forward hooks (through [`nn::hooks`]) and records an
//!   [`ActivationRecord`] per module and recorded call with the fused one-pass
//!   statistics kernel; [`ActivationReader`] shares what it records.
//! - [`ActivationConfig`] chooses the cadence, the passes, the histogram, the
//!   thresholds and the one-off captures ([`Snapshot`], [`SaturationMap`]).
//! - [`ActivationLog`] is the plain data the figures and the health report read.

mod capture;
mod config;
mod log;
mod recorder;

pub use capture::{SaturationMap, Snapshot, SnapshotLayer};
pub use config::{
    ActivationConfig, DeadRule, Pass, Phases, SaturationMapSpec, SnapshotBins, SnapshotSpec,
    DEAD_BINS, DEAD_WIDTH, NEAR_ZERO, SATURATION, SATURATION_MAP_ROWS, SATURATION_MAP_THRESHOLD,
};
pub use log::{
    ActivationLog, ActivationRecord, HistogramColumns, HookFailure, LayerActivations,
    NonFiniteEvent,
};
pub use recorder::{ActivationReader, ActivationStats};
