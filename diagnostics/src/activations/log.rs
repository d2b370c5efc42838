//! What [`ActivationStats`](super::ActivationStats) has recorded, as plain data:
//! one [`ActivationRecord`] per watched module and recorded call, gathered in an
//! [`ActivationLog`] that plots and the health report read.

use kernels::cpu::stats::Stats;

use super::capture::{SaturationMap, Snapshot};
use super::config::{ActivationConfig, Pass};

/// The statistics of one module's output on one recorded forward call.
///
/// Fractions are of the finite values; statistics of a record without finite values
/// are NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationRecord {
    /// Index of the forward call within its pass (0 = the module's first training
    /// call). With a learner, the training call index is the training step.
    pub call: usize,
    /// The pass the call belonged to.
    pub pass: Pass,
    /// Position of this record among all the records of its recorder, in time (0 for
    /// a record made outside a recorder). Forward hooks fire when a module's forward
    /// ends, so within a batch this is forward order: a block after its layers.
    pub order: u64,
    /// Number of finite values read (all of the output's, or those of the sampled
    /// examples, see [`ActivationConfig::sample_examples`]).
    pub count: u64,
    /// NaN and infinite values (excluded from everything else).
    pub non_finite: u64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Population standard deviation of the finite values.
    pub std: f64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Fraction with `|x| < near_zero`.
    pub near_zero: f64,
    /// Fraction in the lowest `dead_bins` bins of a magnitude histogram (the fastai
    /// dead chart); `None` for signed histograms.
    pub low_bins: Option<f64>,
    /// Fraction with `|x| > saturation`.
    pub saturated: f64,
    /// Bin counts over the configured range.
    pub histogram: Vec<u64>,
    /// Finite values below the histogram's range.
    pub below: u64,
    /// Finite values at or above the histogram's range.
    pub above: u64,
}

impl ActivationRecord {
    /// A record from the kernel's statistics of call `call`.
    pub fn from_stats(call: usize, pass: Pass, stats: &Stats, config: &ActivationConfig) -> Self {
        let count = stats.count();
        let low_bins = config.has_low_bins().then(|| {
            let low: u64 = stats.histogram().iter().take(config.dead_bins).sum();
            // `below` is empty for |x| from 0, so every finite value is in the bins or above.
            low as f64 / count as f64
        });
        Self {
            call,
            pass,
            order: 0,
            count,
            non_finite: stats.non_finite(),
            mean: stats.mean(),
            std: stats.std(),
            min: stats.min().unwrap_or(f64::NAN),
            max: stats.max().unwrap_or(f64::NAN),
            near_zero: stats.near_zero_fraction(),
            low_bins,
            saturated: stats.saturated_fraction(),
            histogram: stats.histogram().to_vec(),
            below: stats.below(),
            above: stats.above(),
        }
    }

    /// The dead fraction the lesson plots: the lowest bins of a magnitude histogram
    /// when there is one, otherwise the near-zero fraction.
    pub fn dead_fraction(&self) -> f64 {
        self.low_bins.unwrap_or(self.near_zero)
    }

    /// Variance of the finite values.
    pub fn var(&self) -> f64 {
        self.std * self.std
    }

    /// Largest magnitude of the finite values.
    pub fn max_abs(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }
}

/// Where a NaN or infinity first appeared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonFiniteEvent {
    /// Dotted path of the first module (in forward order) whose output had one.
    pub layer: String,
    /// Its call index within `pass`.
    pub call: usize,
    /// The pass.
    pub pass: Pass,
    /// How many values of that output were not finite.
    pub count: u64,
}

/// A call whose statistics could not be computed (an integer output, for instance).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookFailure {
    /// Dotted path of the module.
    pub layer: String,
    /// The pass.
    pub pass: Pass,
    /// The call index.
    pub call: usize,
    /// The error's message.
    pub detail: String,
}

/// Everything recorded for one watched module.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerActivations {
    /// Dotted path of the module (`"0"`, `"body.3.conv"`; `""` for the root).
    pub path: String,
    /// The module's kind, e.g. `"Conv2d"`.
    pub kind: String,
    /// The recorded calls, in order.
    pub records: Vec<ActivationRecord>,
    /// The first recorded call whose output had a NaN or infinity, with its pass.
    pub first_non_finite: Option<(Pass, usize)>,
}

impl LayerActivations {
    /// A label for figures and reports: `path (Kind)`, or `(Kind)` for the root.
    pub fn label(&self) -> String {
        layer_label(&self.path, &self.kind)
    }

    /// The records of one pass, in order.
    pub fn records_of(&self, pass: Pass) -> impl Iterator<Item = &ActivationRecord> + '_ {
        self.records.iter().filter(move |r| r.pass == pass)
    }

    /// Whether every finite value recorded lay within `±(1 + slack)`: a tanh-like
    /// layer, for which the saturated fraction means something. `false` without
    /// records.
    pub fn is_bounded(&self, slack: f64) -> bool {
        !self.records.is_empty()
            && self
                .records
                .iter()
                .all(|r| r.count == 0 || r.max_abs() <= 1.0 + slack)
    }

    /// `(call, value)` of one statistic over the records of `pass`, for plotting.
    pub fn series(&self, pass: Pass, stat: impl Fn(&ActivationRecord) -> f64) -> Vec<(f64, f64)> {
        self.records_of(pass)
            .map(|r| (r.call as f64, stat(r)))
            .collect()
    }
}

/// `path (Kind)`, or `(Kind)` for a module without a path (the root).
pub(crate) fn layer_label(path: &str, kind: &str) -> String {
    if path.is_empty() {
        format!("({kind})")
    } else {
        format!("{path} ({kind})")
    }
}

/// Everything an [`ActivationStats`](super::ActivationStats) has recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationLog {
    /// The configuration the records were taken with.
    pub config: ActivationConfig,
    /// One entry per watched module, in the model's tree order (which is forward
    /// order for a sequential model).
    pub layers: Vec<LayerActivations>,
    /// The first NaN/infinity seen, in time, over all layers.
    pub first_non_finite: Option<NonFiniteEvent>,
    /// The per-layer histograms captured at one call, if asked for.
    pub snapshot: Option<Snapshot>,
    /// The saturation map captured for one layer, if asked for.
    pub saturation_map: Option<SaturationMap>,
    /// Calls whose statistics could not be computed (at most one per layer).
    pub failures: Vec<HookFailure>,
}

impl ActivationLog {
    /// An empty log for `config`.
    pub fn new(config: ActivationConfig) -> Self {
        Self {
            config,
            layers: Vec::new(),
            first_non_finite: None,
            snapshot: None,
            saturation_map: None,
            failures: Vec::new(),
        }
    }

    /// The layer at `path`, if watched.
    pub fn layer(&self, path: &str) -> Option<&LayerActivations> {
        self.layers.iter().find(|l| l.path == path)
    }

    /// Total number of records over all layers.
    pub fn record_count(&self) -> usize {
        self.layers.iter().map(|l| l.records.len()).sum()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.record_count() == 0
    }

    /// The layers in the order their first training records were taken: forward
    /// order (the tree order of [`layers`](Self::layers) lists a container before
    /// the layers inside it, but its output comes after theirs). Layers without a
    /// training record come last.
    pub fn layers_in_forward_order(&self) -> Vec<&LayerActivations> {
        let mut layers: Vec<&LayerActivations> = self.layers.iter().collect();
        layers.sort_by_key(|l| {
            l.records_of(Pass::Train)
                .next()
                .map_or(u64::MAX, |r| r.order)
        });
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernels::cpu::stats::stats;

    #[test]
    fn low_bins_follow_the_config() {
        let cfg = ActivationConfig::relu();
        let s = stats(&[0.0f32, 0.1, 0.6, 3.0], &cfg.stats_config()).unwrap();
        let r = ActivationRecord::from_stats(0, Pass::Train, &s, &cfg);
        // Bins of 0.25: 0.0 and 0.1 are in bin 0, 0.6 in bin 2.
        assert_eq!(r.low_bins, Some(0.5));
        assert_eq!(r.dead_fraction(), 0.5);
        assert_eq!(r.near_zero, 0.25);
        let tanh = ActivationConfig::tanh();
        let s = stats(&[0.0f32, 0.99], &tanh.stats_config()).unwrap();
        let r = ActivationRecord::from_stats(3, Pass::Valid, &s, &tanh);
        assert_eq!(r.low_bins, None);
        assert_eq!(r.dead_fraction(), 0.5);
        assert_eq!(r.saturated, 0.5);
        assert!((r.max_abs() - 0.99).abs() < 1e-6);
    }

    #[test]
    fn empty_records_are_nan_not_panics() {
        let cfg = ActivationConfig::relu();
        let s = stats(&[f32::NAN], &cfg.stats_config()).unwrap();
        let r = ActivationRecord::from_stats(0, Pass::Train, &s, &cfg);
        assert_eq!(r.non_finite, 1);
        assert!(r.mean.is_nan() && r.std.is_nan() && r.min.is_nan());
        assert!(r.dead_fraction().is_nan());
    }

    #[test]
    fn labels() {
        assert_eq!(layer_label("3", "Conv2d"), "3 (Conv2d)");
        assert_eq!(layer_label("", "Sequential"), "(Sequential)");
    }
}
