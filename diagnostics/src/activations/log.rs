//! What [`ActivationStats`](super::ActivationStats) has recorded, as plain data:
//! one [`ActivationRecord`] per watched module and recorded call (or, in a long run,
//! per range of calls folded together: see [`crate::bounded`]), gathered in an
//! [`ActivationLog`] that plots and the health report read.

use kernels::cpu::stats::Stats;

use crate::bounded::{combine_moments, last_part_by_weight, weighted, weighted_mean, Fold, Span};
use crate::histogram::fold_outliers;

use super::capture::{SaturationMap, Snapshot};
use super::config::{ActivationConfig, DeadRule, Pass};

/// The statistics of one module's output on one recorded forward call, or on the
/// recorded calls `call..=last_call` folded together (see [`crate::bounded`]: a
/// folded record holds the statistics of the union of their values).
///
/// Fractions are of the finite values; statistics of a record without finite values
/// are NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationRecord {
    /// Index of the forward call within its pass (0 = the module's first training
    /// call); the first call covered by a folded record. With a learner, the training
    /// call index is the training step.
    pub call: usize,
    /// The last call covered: `call` for an exact record.
    pub last_call: usize,
    /// How many recorded calls this record stands for: 1 for an exact record.
    pub merged: u64,
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
    /// The highest std of the recorded calls covered (`std` for an exact record).
    pub peak_std: f64,
    /// The call of `peak_std`.
    pub peak_call: usize,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Fraction with `|x| < near_zero`.
    pub near_zero: f64,
    /// Fraction in the lowest `dead_bins` bins of a magnitude histogram (the fastai
    /// dead chart); `None` for signed histograms.
    pub low_bins: Option<f64>,
    /// Fraction of dead outputs by the layer's [`DeadRule`]
    /// ([`LayerActivations::dead_rule`]): the one dead fraction the dead chart, the
    /// health report and the lessons' summaries show. A record made outside a
    /// recorder ([`from_stats`](Self::from_stats)) has the near-zero fraction.
    pub dead: f64,
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
        let std = stats.std();
        Self {
            call,
            last_call: call,
            merged: 1,
            pass,
            order: 0,
            count,
            non_finite: stats.non_finite(),
            mean: stats.mean(),
            std,
            peak_std: std,
            peak_call: call,
            min: stats.min().unwrap_or(f64::NAN),
            max: stats.max().unwrap_or(f64::NAN),
            near_zero: stats.near_zero_fraction(),
            low_bins,
            dead: stats.near_zero_fraction(),
            saturated: stats.saturated_fraction(),
            histogram: stats.histogram().to_vec(),
            below: stats.below(),
            above: stats.above(),
        }
    }

    /// The dead fraction ([`dead`](Self::dead)), by the layer's [`DeadRule`].
    pub fn dead_fraction(&self) -> f64 {
        self.dead
    }

    /// Variance of the finite values.
    pub fn var(&self) -> f64 {
        self.std * self.std
    }

    /// Largest magnitude of the finite values.
    pub fn max_abs(&self) -> f64 {
        self.min.abs().max(self.max.abs())
    }

    /// Merges `later` (a record of the same layer and pass, of later calls) into this
    /// one: the statistics of the union of their values (see [`crate::bounded`]).
    pub fn merge(&mut self, later: &ActivationRecord) {
        let (na, nb) = (self.count as f64, later.count as f64);
        let (mean, std) = combine_moments((na, self.mean, self.std), (nb, later.mean, later.std));
        self.near_zero = weighted(self.near_zero, na, later.near_zero, nb);
        self.saturated = weighted(self.saturated, na, later.saturated, nb);
        self.dead = weighted(self.dead, na, later.dead, nb);
        self.low_bins = match (self.low_bins, later.low_bins) {
            (Some(a), Some(b)) => Some(weighted(a, na, b, nb)),
            (a, b) => a.or(b),
        };
        self.mean = mean;
        self.std = std;
        // NaN-ignoring extremes: a side without finite values has NaN min and max.
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        if later.peak_std > self.peak_std || self.peak_std.is_nan() {
            self.peak_std = later.peak_std;
            self.peak_call = later.peak_call;
        }
        if self.histogram.len() == later.histogram.len() {
            for (a, b) in self.histogram.iter_mut().zip(&later.histogram) {
                *a += b;
            }
        }
        self.below += later.below;
        self.above += later.above;
        self.count += later.count;
        self.non_finite += later.non_finite;
        self.merged += later.merged;
        self.last_call = self.last_call.max(later.last_call);
    }
}

impl Span for ActivationRecord {
    fn first(&self) -> usize {
        self.call
    }

    fn last(&self) -> usize {
        self.last_call
    }

    fn merged_calls(&self) -> u64 {
        self.merged
    }
}

impl Fold for ActivationRecord {
    fn absorb(&mut self, later: &Self) {
        self.merge(later);
    }
}

/// A layer's histograms on columns of equal width over the calls (see
/// [`LayerActivations::histogram_columns`]).
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramColumns {
    /// The first call of the first column.
    pub first_call: usize,
    /// Calls per column.
    pub width: usize,
    /// Per column, the mean histogram of one recorded call (counts rounded, a
    /// non-zero mean kept at 1 or more), values outside the range counted in the edge
    /// bins; zeros for a column without records.
    pub histograms: Vec<Vec<u64>>,
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
    /// What counts as a dead output of this layer (from its
    /// [`inactive_output`](nn::Module::inactive_output)); every record's
    /// [`dead`](ActivationRecord::dead) fraction is by this rule.
    pub dead_rule: DeadRule,
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

    /// `(call, value)` of one statistic over the records of `pass`, for plotting; a
    /// folded record is placed at the middle of its calls ([`ActivationRecord::x`]).
    pub fn series(&self, pass: Pass, stat: impl Fn(&ActivationRecord) -> f64) -> Vec<(f64, f64)> {
        self.records_of(pass).map(|r| (r.x(), stat(r))).collect()
    }

    /// How many recorded calls of `pass` the records stand for (the number of records
    /// when none is folded).
    pub fn recorded_calls(&self, pass: Pass) -> u64 {
        self.records_of(pass).map(|r| r.merged).sum()
    }

    /// The mean of `stat` over the last `fraction` of the recorded calls of `pass`
    /// that had finite values (at least one record), each record weighted by the calls
    /// it stands for: with exact records, the mean over the last
    /// `ceil(n * fraction)` records. NaN without such records.
    pub fn final_mean(
        &self,
        pass: Pass,
        fraction: f64,
        stat: impl Fn(&ActivationRecord) -> f64,
    ) -> f64 {
        let records: Vec<&ActivationRecord> =
            self.records_of(pass).filter(|r| r.count > 0).collect();
        let tail = last_part_by_weight(&records, fraction, |r| r.merged);
        weighted_mean(tail.iter().map(|r| (stat(r), r.merged)))
    }

    /// The histograms of `pass` on columns of equal width (for fastai's `color_dim`
    /// heat map): `width` is the smallest multiple of `every` times a power of two that
    /// holds each record in one aligned column, so column `k` covers calls
    /// `first_call + k * width ..` whether its records are exact or folded. `None`
    /// without records.
    pub fn histogram_columns(&self, pass: Pass, every: usize) -> Option<HistogramColumns> {
        let records: Vec<&ActivationRecord> = self
            .records_of(pass)
            .filter(|r| !r.histogram.is_empty())
            .collect();
        let first = records.first()?;
        let last_call = records
            .iter()
            .map(|r| r.last_call)
            .max()
            .unwrap_or(first.call);
        let mut width = every.max(1);
        // Aligned columns holding each record whole, and not many more columns than
        // records (a gap in the calls would otherwise make a very wide figure).
        while width < usize::MAX / 2
            && (records
                .iter()
                .any(|r| r.call / width != r.last_call / width)
                || (last_call / width - first.call / width) / 4 > records.len())
        {
            width *= 2;
        }
        self.histogram_columns_with(pass, width, first.call - first.call % width)
    }

    /// The histograms of `pass` on columns of `width` calls from `first_call` (see
    /// [`histogram_columns`](Self::histogram_columns)): a record goes to the column of
    /// its first call. `None` without records at or after `first_call`, or for a
    /// `width` of 0.
    pub fn histogram_columns_with(
        &self,
        pass: Pass,
        width: usize,
        first_call: usize,
    ) -> Option<HistogramColumns> {
        if width == 0 {
            return None;
        }
        let records: Vec<&ActivationRecord> = self
            .records_of(pass)
            .filter(|r| !r.histogram.is_empty() && r.call >= first_call)
            .collect();
        let bins = records.first()?.histogram.len();
        let last_call = records.iter().map(|r| r.call).max()?;
        let columns = (last_call - first_call) / width + 1;
        let mut sums = vec![(vec![0u64; bins], 0u64); columns];
        for r in &records {
            let (sum, calls) = &mut sums[(r.call - first_call) / width];
            if r.histogram.len() == bins {
                for (s, c) in sum
                    .iter_mut()
                    .zip(fold_outliers(&r.histogram, r.below, r.above))
                {
                    *s += c;
                }
                *calls += r.merged;
            }
        }
        let histograms = sums
            .into_iter()
            .map(|(sum, calls)| {
                sum.into_iter()
                    .map(|c| {
                        if calls <= 1 || c == 0 {
                            c
                        } else {
                            ((c + calls / 2) / calls).max(1)
                        }
                    })
                    .collect()
            })
            .collect();
        Some(HistogramColumns {
            first_call,
            width,
            histograms,
        })
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
        // Outside a recorder the dead fraction is the near-zero one (`|x| < 1e-3`).
        assert_eq!(r.dead_fraction(), 0.25);
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
