//! The health report: the verdicts a careful practitioner would write about a run,
//! each with the figure that triggered it and the usual remedy.
//!
//! [`HealthReport::analyse`] reads a [`TrainingLog`](crate::TrainingLog) and checks, per
//! layer, parameter and for the loss:
//!
//! | finding | figure | default threshold |
//! |---|---|---|
//! | dead units | dead fraction over the final stretch, by the layer's [`DeadRule`](crate::activations::DeadRule) (ReLU `\|x\| < 0.5`, GeneralRelu `\|x + sub\| < 0.5`, others `\|x\| < 1e-3`), the table's "dead at end" | > 90% |
//! | collapse / explosion with depth | std at the first batch / first layer's | < 0.1x / > 10x |
//! | explosion over time | peak std / start std | > 10x |
//! | collapse over time | final std / peak std | < 0.1x |
//! | saturation (bounded layers) | `|x| > 0.97` fraction at start or end | > 25% |
//! | initial loss | first loss / ln(classes) | > 2x or < 0.5x |
//! | update:data | median log10 over steps | < -4 or > -2 |
//! | NaN/inf | first layer, batch (activations), parameter, step | any |
//!
//! The thresholds are named constants in [`thresholds`] with their reasoning.

mod report;
pub mod thresholds;
mod verdict;

pub use report::{HealthConfig, HealthReport, LayerSummary, ParamSummary};
pub use thresholds::Thresholds;
pub use verdict::{Finding, Severity, Verdict};
