//! [`LossLog`]: training losses per step and validation losses per evaluation, for the
//! loss curves and the initial-loss check.

/// Losses of a run.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LossLog {
    /// `(step, loss)` of training batches.
    pub train: Vec<(usize, f64)>,
    /// `(step, loss)` of validation passes (the step is the number of training steps
    /// done before the pass).
    pub valid: Vec<(usize, f64)>,
}

impl LossLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a training batch's loss.
    pub fn push_train(&mut self, step: usize, loss: f64) {
        self.train.push((step, loss));
    }

    /// Adds a validation loss.
    pub fn push_valid(&mut self, step: usize, loss: f64) {
        self.valid.push((step, loss));
    }

    /// The first training loss: what the initialisation gives, before any step.
    pub fn first_train(&self) -> Option<f64> {
        self.train.first().map(|&(_, l)| l)
    }

    /// The first training step whose loss was NaN or infinite.
    pub fn first_non_finite(&self) -> Option<(usize, f64)> {
        self.train.iter().copied().find(|(_, l)| !l.is_finite())
    }

    /// Whether no loss was recorded.
    pub fn is_empty(&self) -> bool {
        self.train.is_empty() && self.valid.is_empty()
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
    }
}
