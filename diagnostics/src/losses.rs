//! [`LossLog`]: training losses per step and validation losses per evaluation, for the
//! loss curves and the initial-loss check.
//!
//! Each curve keeps at most [`LossLog::capacity`] points ([`DEFAULT_CAPACITY`] by
//! default): beyond it older points are folded together into the mean of the steps
//! they cover, with their lowest and highest loss, the first and last points and the
//! steps asked for with [`LossLog::keep_step`] staying exact (see
//! [`crate::bounded`]). The curve still spans the whole run.

use crate::bounded::{fold_to_capacity, Fold, Sequence, Span, DEFAULT_CAPACITY, MIN_CAPACITY};

/// One point of a loss curve: the loss of one step, or the mean loss of the steps
/// `step..=last_step` folded together.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossPoint {
    /// The step (the first step covered by a folded point).
    pub step: usize,
    /// The last step covered: `step` for an exact point.
    pub last_step: usize,
    /// How many losses this point stands for: 1 for an exact point.
    pub merged: u64,
    /// The loss, or the mean of the losses covered (NaN if one of them was; see
    /// [`LossLog::first_non_finite`] for where).
    pub loss: f64,
    /// The lowest loss covered.
    pub min: f64,
    /// The highest loss covered.
    pub max: f64,
}

impl LossPoint {
    /// The loss `loss` of step `step`.
    pub fn exact(step: usize, loss: f64) -> Self {
        Self {
            step,
            last_step: step,
            merged: 1,
            loss,
            min: loss,
            max: loss,
        }
    }

    /// Merges `later` (a point of later steps) into this one: the mean of the losses
    /// of both, their extremes.
    pub fn merge(&mut self, later: &LossPoint) {
        let (na, nb) = (self.merged as f64, later.merged as f64);
        self.loss = (self.loss * na + later.loss * nb) / (na + nb);
        // NaN-propagating extremes, like the mean.
        self.min = if later.min < self.min || later.min.is_nan() {
            later.min
        } else {
            self.min
        };
        self.max = if later.max > self.max || later.max.is_nan() {
            later.max
        } else {
            self.max
        };
        self.merged += later.merged;
        self.last_step = self.last_step.max(later.last_step);
    }
}

impl Span for LossPoint {
    fn first(&self) -> usize {
        self.step
    }

    fn last(&self) -> usize {
        self.last_step
    }

    fn merged_calls(&self) -> u64 {
        self.merged
    }
}

impl Fold for LossPoint {
    fn absorb(&mut self, later: &Self) {
        self.merge(later);
    }
}

/// Losses of a run.
///
/// ```
/// use diagnostics::losses::LossLog;
/// use diagnostics::Span;
/// let mut log = LossLog::with_capacity(16);
/// log.keep_step(500);
/// for step in 0..10_000 {
///     log.push_train(step, 3.0 / (1.0 + step as f64));
/// }
/// assert!(log.train.len() <= 16);
/// assert_eq!(log.first_train(), Some(3.0));
/// assert_eq!(log.train.last().map(|p| p.step), Some(9_999));
/// assert!(log.train.iter().any(|p| p.step == 500 && !p.is_folded()));
/// // Every step is still covered, once.
/// assert_eq!(log.train.iter().map(|p| p.merged).sum::<u64>(), 10_000);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct LossLog {
    /// Training batches, in order.
    pub train: Vec<LossPoint>,
    /// Validation passes (the step is the number of training steps done before the
    /// pass), in order.
    pub valid: Vec<LossPoint>,
    capacity: usize,
    kept: Vec<usize>,
    sequences: [Sequence; 2],
    first_non_finite: Option<(usize, f64)>,
}

impl Default for LossLog {
    /// An empty log keeping at most [`DEFAULT_CAPACITY`] points per curve.
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl LossLog {
    /// An empty log keeping at most [`DEFAULT_CAPACITY`] points per curve.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log keeping at most `points` points per curve (at least
    /// [`MIN_CAPACITY`]; `usize::MAX` keeps every point).
    pub fn with_capacity(points: usize) -> Self {
        Self {
            train: Vec::new(),
            valid: Vec::new(),
            capacity: points.max(MIN_CAPACITY),
            kept: Vec::new(),
            sequences: [Sequence::new(1); 2],
            first_non_finite: None,
        }
    }

    /// Points kept per curve.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keeps the training loss of `step` exact whatever the folding (call it before
    /// the step is logged). Each kept step may leave the curve up to two points over
    /// its capacity.
    pub fn keep_step(&mut self, step: usize) {
        if !self.kept.contains(&step) {
            self.kept.push(step);
        }
    }

    /// Adds a training batch's loss.
    pub fn push_train(&mut self, step: usize, loss: f64) {
        if !loss.is_finite() && self.first_non_finite.is_none() {
            self.first_non_finite = Some((step, loss));
        }
        let kept = &self.kept;
        push(
            &mut self.train,
            &mut self.sequences[0],
            self.capacity,
            LossPoint::exact(step, loss),
            |p| !p.is_folded() && kept.contains(&p.step),
        );
    }

    /// Adds a validation loss.
    pub fn push_valid(&mut self, step: usize, loss: f64) {
        push(
            &mut self.valid,
            &mut self.sequences[1],
            self.capacity,
            LossPoint::exact(step, loss),
            |_| false,
        );
    }

    /// The first training loss: what the initialisation gives, before any step.
    pub fn first_train(&self) -> Option<f64> {
        self.train.first().map(|p| p.loss)
    }

    /// The last training loss.
    pub fn last_train(&self) -> Option<f64> {
        self.train.last().map(|p| p.loss)
    }

    /// The last validation loss.
    pub fn last_valid(&self) -> Option<f64> {
        self.valid.last().map(|p| p.loss)
    }

    /// The first training step whose loss was NaN or infinite, with that loss (exact
    /// whatever the folding).
    pub fn first_non_finite(&self) -> Option<(usize, f64)> {
        self.first_non_finite.or_else(|| {
            // A log whose points were written directly rather than pushed.
            self.train
                .iter()
                .find(|p| !p.loss.is_finite())
                .map(|p| (p.step, p.loss))
        })
    }

    /// Whether no loss was recorded.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.valid.is_empty()
    }
}

/// Appends `point` to `curve` and folds it back to `capacity`.
fn push(
    curve: &mut Vec<LossPoint>,
    sequence: &mut Sequence,
    capacity: usize,
    point: LossPoint,
    kept: impl Fn(&LossPoint) -> bool,
) {
    curve.push(point);
    // The count of a curve whose points were edited directly is re-read.
    sequence.len = curve.len();
    if sequence.len > capacity {
        fold_to_capacity(curve, sequence, capacity, |_| true, kept);
    }
}

/// The loss of a classifier that predicts the uniform distribution over `classes`
/// classes: `ln(classes)` (2.303 for 10 classes, 3.296 for makemore's 27). A
/// well-initialised network starts close to it.
///
/// ```
/// assert!((diagnostics::losses::expected_initial_loss(27) - 3.2958).abs() < 1e-4);
/// ```
pub fn expected_initial_loss(classes: usize) -> f64 {
    (classes as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_losses() {
        let mut log = LossLog::new();
        assert!(log.is_empty() && log.first_train().is_none());
        log.push_train(0, 2.5);
        log.push_train(1, f64::NAN);
        log.push_valid(2, 2.0);
        assert_eq!(log.first_train(), Some(2.5));
        assert_eq!(log.first_non_finite().map(|(s, _)| s), Some(1));
        assert_eq!(log.last_valid(), Some(2.0));
    }

    #[test]
    fn folded_points_average_the_losses_they_cover() {
        let mut log = LossLog::with_capacity(16);
        for step in 0..1000 {
            log.push_train(step, step as f64);
        }
        assert!(log.train.len() <= 16);
        for p in &log.train {
            let n = (p.last_step - p.step + 1) as u64;
            assert_eq!(p.merged, n, "{p:?}");
            assert!((p.loss - 0.5 * (p.step + p.last_step) as f64).abs() < 1e-9);
            assert_eq!((p.min, p.max), (p.step as f64, p.last_step as f64));
        }
        assert_eq!(log.first_non_finite(), None);
    }

    #[test]
    fn the_first_nan_survives_folding() {
        let mut log = LossLog::with_capacity(16);
        for step in 0..5000 {
            let loss = if step >= 1234 { f64::NAN } else { 1.0 };
            log.push_train(step, loss);
        }
        assert!(log.train.len() <= 16);
        assert_eq!(log.first_non_finite().map(|(s, _)| s), Some(1234));
    }
}
