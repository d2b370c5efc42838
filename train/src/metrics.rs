//! Loss and accuracy accumulated over a phase, the per-epoch rows of a run, and the
//! table they print as.
//!
//! The learner accumulates these itself for every batch whose loss passed the
//! finite check, so every [`FitReport`] has them whatever callbacks are installed:
//! the mean loss per example (each batch's loss weighted by its size, in `f64`) and,
//! when the predictions are `[N, C]` scores and the targets `[N]` class indices
//! (`u32`), the accuracy of the arg-max.
//!
//! ```
//! use train::metrics::{EpochRow, FitReport, PhaseMetrics};
//! let row = EpochRow {
//!     epoch: 0,
//!     train: Some(PhaseMetrics { loss: 1.083, accuracy: Some(0.602), batches: 5, examples: 5000, seconds: 1.25 }),
//!     valid: Some(PhaseMetrics { loss: 0.712, accuracy: Some(0.741), batches: 1, examples: 1000, seconds: 0.1 }),
//!     extra: vec![("dead fraction 0.conv".to_string(), 0.31)],
//! };
//! let report = FitReport { rows: vec![row], ..FitReport::default() };
//! let table = report.to_string();
//! assert!(table.lines().nth(1).unwrap().contains("train"));
//! assert!(table.contains("0.741"));
//! assert!(table.contains("dead fraction 0.conv"));
//! assert_eq!(report.extra("dead fraction 0.conv"), vec![(0, 0.31)]);
//! ```

use std::fmt;
use std::time::Instant;

use autograd::Var;
use tensor::{DType, Tensor};

use crate::event::{Event, Phase, Scope};

/// The loss and accuracy of one phase of one epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PhaseMetrics {
    /// Mean loss per example (NaN if no batch finished its loss).
    pub loss: f64,
    /// Fraction of examples whose arg-max prediction equals the class-index target,
    /// when predictions and targets have that form; `None` otherwise.
    pub accuracy: Option<f64>,
    /// Batches counted.
    pub batches: usize,
    /// Examples counted.
    pub examples: usize,
    /// Wall-clock seconds of the phase.
    pub seconds: f64,
}

/// One epoch of a run: its training and validation metrics (`None` for a phase that
/// did not run, e.g. after a cancelled epoch or with an empty validation loader),
/// and any named values callbacks added with
/// [`Learner::record_value`](crate::Learner::record_value).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpochRow {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// The training phase.
    pub train: Option<PhaseMetrics>,
    /// The validation phase.
    pub valid: Option<PhaseMetrics>,
    /// Values added by callbacks (e.g. a dead-unit fraction per layer), in the order
    /// they were added.
    pub extra: Vec<(String, f64)>,
}

impl EpochRow {
    /// The metrics of `phase`.
    pub fn phase(&self, phase: Phase) -> Option<&PhaseMetrics> {
        match phase {
            Phase::Train => self.train.as_ref(),
            Phase::Validate => self.valid.as_ref(),
        }
    }
}

/// A cancellation that happened during a run: who asked, when, and what ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    /// The callback's name.
    pub callback: String,
    /// The event it was handling.
    pub event: Event,
    /// What it cancelled.
    pub scope: Scope,
    /// Epoch at that moment.
    pub epoch: usize,
    /// Global training step at that moment.
    pub step: usize,
}

/// What [`Learner::fit`](crate::Learner::fit) returns: one row per epoch begun, the
/// cancellations that happened, and the total time. Its `Display` is the metrics
/// table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FitReport {
    /// One row per epoch that started, in order.
    pub rows: Vec<EpochRow>,
    /// Every cancellation, in order.
    pub cancellations: Vec<Cancellation>,
    /// Wall-clock seconds of the whole fit.
    pub seconds: f64,
}

impl FitReport {
    /// Whether a callback cancelled the whole run.
    pub fn fit_cancelled(&self) -> bool {
        self.cancellations.iter().any(|c| c.scope == Scope::Fit)
    }

    /// The metrics of `phase` in the last epoch that has them.
    pub fn last(&self, phase: Phase) -> Option<&PhaseMetrics> {
        self.rows.iter().rev().find_map(|r| r.phase(phase))
    }

    /// The value named `name` of every epoch that has it, as `(epoch, value)`.
    pub fn extra(&self, name: &str) -> Vec<(usize, f64)> {
        self.rows
            .iter()
            .flat_map(|r| {
                r.extra
                    .iter()
                    .filter(move |(n, _)| n == name)
                    .map(move |(_, v)| (r.epoch, *v))
            })
            .collect()
    }
}

/// The header of the metrics table.
pub fn table_header() -> String {
    format!(
        "{:>5}  {:<5}  {:>9}  {:>8}  {:>8}",
        "epoch", "phase", "loss", "accuracy", "time"
    )
}

/// One line of the metrics table.
pub fn table_line(epoch: usize, phase: Phase, m: &PhaseMetrics) -> String {
    let accuracy = m
        .accuracy
        .map_or_else(|| "-".to_string(), |a| format!("{a:.3}"));
    format!(
        "{:>5}  {:<5}  {:>9.4}  {:>8}  {:>7.2}s",
        epoch,
        phase.name(),
        m.loss,
        accuracy,
        m.seconds
    )
}

/// The metrics table, then (if callbacks added any) one `epoch  name  value` line per
/// extra value.
impl fmt::Display for FitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", table_header())?;
        for row in &self.rows {
            for phase in [Phase::Train, Phase::Validate] {
                if let Some(m) = row.phase(phase) {
                    writeln!(f, "{}", table_line(row.epoch, phase, m))?;
                }
            }
        }
        if self.rows.iter().any(|r| !r.extra.is_empty()) {
            writeln!(f, "{:>5}  {:<24}  {:>12}", "epoch", "value", "")?;
            for row in &self.rows {
                for (name, value) in &row.extra {
                    writeln!(f, "{:>5}  {:<24}  {:>12.6}", row.epoch, name, value)?;
                }
            }
        }
        Ok(())
    }
}

/// Running sums of one phase (f64), fed batch by batch by the learner.
#[derive(Debug)]
pub(crate) struct Accumulator {
    loss_sum: f64,
    examples: usize,
    batches: usize,
    correct: usize,
    scored: usize,
    started: Instant,
    seconds: Option<f64>,
}

impl Accumulator {
    /// Empty sums; the clock starts now.
    pub(crate) fn start() -> Self {
        Self {
            loss_sum: 0.0,
            examples: 0,
            batches: 0,
            correct: 0,
            scored: 0,
            started: Instant::now(),
            seconds: None,
        }
    }

    /// Adds one batch: its mean loss, and its predictions and targets for accuracy.
    pub(crate) fn add(&mut self, loss: f64, preds: Option<&Var>, targets: Option<&Tensor>) {
        let n = targets
            .and_then(|t| t.dims().first().copied())
            .unwrap_or(1)
            .max(1);
        self.loss_sum += loss * n as f64;
        self.examples += n;
        self.batches += 1;
        if let (Some(p), Some(t)) = (preds, targets) {
            if let Some(correct) = correct_count(p.tensor(), t) {
                self.correct += correct;
                self.scored += n;
            }
        }
    }

    /// Stops the clock (later reads report the time up to here).
    pub(crate) fn stop(&mut self) {
        if self.seconds.is_none() {
            self.seconds = Some(self.started.elapsed().as_secs_f64());
        }
    }

    /// The metrics so far.
    pub(crate) fn metrics(&self) -> PhaseMetrics {
        PhaseMetrics {
            loss: if self.examples == 0 {
                f64::NAN
            } else {
                self.loss_sum / self.examples as f64
            },
            accuracy: (self.scored > 0).then(|| self.correct as f64 / self.scored as f64),
            batches: self.batches,
            examples: self.examples,
            seconds: self
                .seconds
                .unwrap_or_else(|| self.started.elapsed().as_secs_f64()),
        }
    }
}

/// Number of rows of `preds` (`[N, C]`, float) whose arg-max equals `targets` (`[N]`,
/// u32); `None` when they do not have that form.
pub fn correct_count(preds: &Tensor, targets: &Tensor) -> Option<usize> {
    let (&[n, c], &[m]) = (preds.dims(), targets.dims()) else {
        return None;
    };
    if n != m || c == 0 || targets.dtype() != DType::U32 || !preds.dtype().is_float() {
        return None;
    }
    let predicted = preds.argmax(1, false).ok()?;
    let hits = predicted.eq(targets).ok()?.to_vec::<u32>().ok()?;
    Some(hits.iter().filter(|&&h| h != 0).count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::Device;

    #[test]
    fn accuracy_of_argmax() {
        let p =
            Tensor::from_vec(vec![0.1f32, 0.9, 0.8, 0.2, 0.3, 0.7], [3, 2], &Device::Cpu).unwrap();
        let y = Tensor::from_vec(vec![1u32, 1, 1], [3], &Device::Cpu).unwrap();
        assert_eq!(correct_count(&p, &y), Some(2));
        let wrong_len = Tensor::from_vec(vec![1u32, 1], [2], &Device::Cpu).unwrap();
        assert_eq!(correct_count(&p, &wrong_len), None);
        let float_targets = Tensor::from_vec(vec![1f32, 1.0, 1.0], [3], &Device::Cpu).unwrap();
        assert_eq!(correct_count(&p, &float_targets), None);
    }

    #[test]
    fn accumulator_weights_batches_by_size() {
        let mut acc = Accumulator::start();
        let y4 = Tensor::from_vec(vec![0u32; 4], [4], &Device::Cpu).unwrap();
        let y1 = Tensor::from_vec(vec![0u32; 1], [1], &Device::Cpu).unwrap();
        acc.add(1.0, None, Some(&y4));
        acc.add(6.0, None, Some(&y1));
        acc.stop();
        let m = acc.metrics();
        assert_eq!(m.examples, 5);
        assert_eq!(m.batches, 2);
        assert!((m.loss - 2.0).abs() < 1e-12);
        assert_eq!(m.accuracy, None);
        assert!(Accumulator::start().metrics().loss.is_nan());
    }
}
