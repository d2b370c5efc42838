//! The thresholds of the health report, as named constants with the reasoning behind
//! each, gathered in [`Thresholds`] so a program can tighten or relax them.

/// End-of-run verdicts look at the last quarter of the recorded training calls
/// (at least one record), so that one noisy batch decides nothing.
pub const FINAL_STRETCH: f64 = 0.25;

/// The start of a run is the median of the first this-many training records.
pub const START_RECORDS: usize = 3;

/// Dead units: more than 90% of a layer's outputs dead over the final stretch, by
/// the layer's [`DeadRule`](crate::activations::DeadRule) (for a ReLU `|x| < 0.5`,
/// the fastai dead chart's two lowest bins). A healthy ReLU layer with unit-scale
/// pre-activations has about 69% of its outputs there (the negative half, plus the
/// 19% of a unit normal in `[0, 0.5)`); 90% means most units never fire again or
/// the signal has shrunk to nothing.
pub const DEAD_FRACTION: f64 = 0.9;

/// Collapsing with depth: at the first training call, a layer's std is below a tenth
/// of the first watched layer's. PyTorch's default init shrinks the std by about
/// `sqrt(1/6) = 0.41` per ReLU layer, so four layers down it is about 3%: the signal
/// (and the gradient) fades before reaching the output.
pub const DEPTH_COLLAPSE_RATIO: f64 = 0.1;

/// Exploding with depth: at the first training call, a layer's std is more than 10x
/// the first watched layer's (weights too large for the fan-in).
pub const DEPTH_EXPLODE_RATIO: f64 = 10.0;

/// Exploding over time: a layer's std peaks at more than 10x its start.
pub const TIME_EXPLODE_RATIO: f64 = 10.0;

/// Collapsing over time: over the final stretch a layer's std is below a tenth of its
/// peak (after rising) or of its start: the units have died or been squashed.
pub const TIME_COLLAPSE_RATIO: f64 = 0.1;

/// Saturation: more than 25% of a bounded (tanh-like) layer's outputs with
/// `|x| > 0.97`, at the start or over the final stretch. Pre-activations of std 1
/// saturate about 4% of tanh units, std 1.8 about 25%; unscaled N(0, 1) weights
/// (std about `sqrt(fan_in)`) saturate 80% or more, and a saturated unit passes no
/// gradient.
pub const SATURATED_FRACTION: f64 = 0.25;

/// A layer counts as bounded (tanh-like) when every recorded value lies within
/// `±(1 + BOUNDED_SLACK)`.
pub const BOUNDED_SLACK: f64 = 1e-6;

/// Initial loss: the first training loss more than 2x `ln(classes)` (the loss of a
/// uniform guess) means an overconfident initialisation (logits too large: the
/// network spends its first steps squashing them, Karpathy's "hockey stick"). Below
/// half of it, before any training, usually means a label leak or a bug in the loss.
pub const INITIAL_LOSS_RATIO: f64 = 2.0;

/// Update:data: Karpathy's rule of thumb is an update of about 1e-3 of the data per
/// step (log10 = -3). Below 1e-4 (log10 = -4) the weights barely move.
pub const UPDATE_RATIO_LOW_LOG10: f64 = -4.0;

/// Update:data above 1e-2 (log10 = -2): each step rewrites more than 1% of the
/// weights' scale, so training is unstable.
pub const UPDATE_RATIO_HIGH_LOG10: f64 = -2.0;

/// The update:data verdicts use the median over the last half of the recorded steps:
/// the ratio the run settles at. (A layer initialised small on purpose, such as an
/// output layer scaled by 0.1, starts with a large ratio that comes down as its
/// weights grow, as Karpathy points out.)
pub const UPDATE_RATIO_WINDOW: f64 = 0.5;

/// Every threshold of the health report; [`Default`] takes the named constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// [`FINAL_STRETCH`].
    pub final_stretch: f64,
    /// [`START_RECORDS`].
    pub start_records: usize,
    /// [`DEAD_FRACTION`].
    pub dead_fraction: f64,
    /// [`DEPTH_COLLAPSE_RATIO`].
    pub depth_collapse: f64,
    /// [`DEPTH_EXPLODE_RATIO`].
    pub depth_explode: f64,
    /// [`TIME_EXPLODE_RATIO`].
    pub time_explode: f64,
    /// [`TIME_COLLAPSE_RATIO`].
    pub time_collapse: f64,
    /// [`SATURATED_FRACTION`].
    pub saturated_fraction: f64,
    /// [`INITIAL_LOSS_RATIO`].
    pub initial_loss_ratio: f64,
    /// [`UPDATE_RATIO_LOW_LOG10`].
    pub update_low_log10: f64,
    /// [`UPDATE_RATIO_HIGH_LOG10`].
    pub update_high_log10: f64,
    /// [`UPDATE_RATIO_WINDOW`].
    pub update_window: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            final_stretch: FINAL_STRETCH,
            start_records: START_RECORDS,
            dead_fraction: DEAD_FRACTION,
            depth_collapse: DEPTH_COLLAPSE_RATIO,
            depth_explode: DEPTH_EXPLODE_RATIO,
            time_explode: TIME_EXPLODE_RATIO,
            time_collapse: TIME_COLLAPSE_RATIO,
            saturated_fraction: SATURATED_FRACTION,
            initial_loss_ratio: INITIAL_LOSS_RATIO,
            update_low_log10: UPDATE_RATIO_LOW_LOG10,
            update_high_log10: UPDATE_RATIO_HIGH_LOG10,
            update_window: UPDATE_RATIO_WINDOW,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The final stretch: the last `ceil(n * fraction)` of `n` exact records.
    fn last_part<T>(items: &[T], fraction: f64) -> &[T] {
        crate::bounded::last_part_by_weight(items, fraction, |_| 1)
    }

    #[test]
    fn last_parts() {
        assert_eq!(last_part(&[1, 2, 3, 4, 5, 6, 7, 8], 0.25), &[7, 8]);
        assert_eq!(last_part(&[1, 2, 3], 0.25), &[3]);
        assert_eq!(last_part(&[1, 2, 3], 0.5), &[2, 3]);
        assert!(last_part::<u8>(&[], 0.25).is_empty());
    }
}
