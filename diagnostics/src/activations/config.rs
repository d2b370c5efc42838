//! [`ActivationConfig`]: what [`ActivationStats`](super::ActivationStats) records, how
//! often, on which passes, and which one-off captures it takes.

use crate::bounded::{min_capacity, DEFAULT_CAPACITY};
use crate::error::{DiagError, Result};
use crate::histogram::HistogramSpec;

/// Whether a forward pass is part of training or of validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pass {
    /// A training pass: modules in training mode, gradients recorded.
    Train,
    /// A validation (or inference) pass.
    Valid,
}

impl Pass {
    /// `"train"` or `"valid"`.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Train => "train",
            Pass::Valid => "valid",
        }
    }

    /// `Pass::Train` when `training`.
    pub fn from_training(training: bool) -> Self {
        if training {
            Pass::Train
        } else {
            Pass::Valid
        }
    }
}

/// Which passes are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Phases {
    /// Training passes only (the lessons' plots).
    #[default]
    Train,
    /// Validation passes only.
    Valid,
    /// Both; each record says which pass it came from.
    Both,
}

impl Phases {
    /// Whether `pass` is recorded.
    pub fn includes(self, pass: Pass) -> bool {
        matches!(
            (self, pass),
            (Phases::Both, _) | (Phases::Train, Pass::Train) | (Phases::Valid, Pass::Valid)
        )
    }
}

/// The bins of a [`Snapshot`](super::Snapshot)'s histograms.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SnapshotBins {
    /// The recorder's own [`ActivationConfig::histogram`].
    Recorded,
    /// `bins` symmetric bins over `±max|x|` of each layer (Karpathy's per-layer
    /// histograms, whose range follows the data).
    Fit {
        /// Number of bins.
        bins: usize,
    },
    /// A fixed spec.
    Fixed(HistogramSpec),
}

/// Capture per-layer histograms at one training call (Karpathy's "activation
/// distribution" figure: one curve per layer with its mean, std and saturation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SnapshotSpec {
    /// Index of the training forward call of each module to capture (0 = the first).
    pub call: usize,
    /// Bins of the captured histograms.
    pub bins: SnapshotBins,
}

/// Capture which units are saturated for one layer at one training call (Karpathy's
/// `h.abs() > 0.99` image: examples down, units across; a white column is a unit that
/// is saturated for every example and so learns nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct SaturationMapSpec {
    /// Dotted path of the module whose output is captured.
    pub layer: String,
    /// Index of the training forward call to capture.
    pub call: usize,
    /// `|h| > threshold` is saturated (Karpathy: 0.99).
    pub threshold: f64,
    /// At most this many examples (rows) are kept.
    pub max_rows: usize,
}

/// Default of [`SaturationMapSpec::threshold`].
pub const SATURATION_MAP_THRESHOLD: f64 = 0.99;

/// Default of [`SaturationMapSpec::max_rows`] (Karpathy's batch of 32).
pub const SATURATION_MAP_ROWS: usize = 32;

/// What [`ActivationStats`](super::ActivationStats) records.
///
/// Start from a preset and adjust with the builder methods:
///
/// ```
/// use diagnostics::activations::{ActivationConfig, Phases};
/// let cfg = ActivationConfig::tanh().every(10).phases(Phases::Both).snapshot_at(0);
/// assert_eq!(cfg.histogram.lo, -1.0);
/// assert!(cfg.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationConfig {
    /// Record every `every`-th forward call of each module (1 = every call). Calls are
    /// counted per module and per pass; call 0 is always recorded.
    pub every: usize,
    /// Which passes are recorded (and counted).
    pub phases: Phases,
    /// The histogram of each record.
    pub histogram: HistogramSpec,
    /// `|x| < near_zero` counts as near zero (the dead-unit fraction). ReLU's dead
    /// units are exactly 0; the default `1e-3` also catches units squashed to nothing.
    pub near_zero: f64,
    /// For a histogram of `|x|` starting at 0: how many of the lowest bins count as
    /// "dead" (the fastai lesson's dead chart uses 2, i.e. `|x| < 0.5` with the
    /// default bins). Ignored for signed histograms.
    pub dead_bins: usize,
    /// A layer with an inactive output `f` (a ReLU: 0; a GeneralRelu: `-sub`; see
    /// [`nn::Module::inactive_output`]) counts an output `x` as dead when
    /// `f - dead_width <= x < f + dead_width` (see [`DeadRule`]). The default 0.5 is
    /// the fastai dead chart's two lowest bins of 40 over `[0, 10)`.
    pub dead_width: f64,
    /// `|x| > saturation` counts as saturated (tanh units; Karpathy uses 0.97).
    pub saturation: f64,
    /// Compute each record from the first `k` examples of the batch only (a view
    /// along the batch dimension: no copy). `None` (the default) reads every value.
    /// Batches are shuffled, so the prefix is a random sample; it cuts the cost of
    /// watching a layer by `batch / k`, at the price of sampling error (small: even
    /// 256 examples of a 10-unit output are 2,560 values) and of missing a NaN that
    /// only the unread examples hold.
    pub sample_examples: Option<usize>,
    /// Optional per-layer histograms at one training call.
    pub snapshot: Option<SnapshotSpec>,
    /// Optional saturation map of one layer at one training call.
    pub saturation_map: Option<SaturationMapSpec>,
    /// Records kept per layer and pass (default
    /// [`DEFAULT_CAPACITY`](crate::bounded::DEFAULT_CAPACITY)): beyond it older records
    /// are folded together, so memory stays flat however long the run (see
    /// [`crate::bounded`]). `usize::MAX` keeps every record.
    pub capacity: usize,
    /// Training calls whose records are kept exact whatever the folding, besides the
    /// first, the last, the snapshot call and the saturation-map call (which always
    /// are). A call off the cadence ([`every`](Self::every)) has no record to keep.
    pub keep_exact: Vec<usize>,
}

/// Default of [`ActivationConfig::near_zero`].
pub const NEAR_ZERO: f64 = 1e-3;

/// Default of [`ActivationConfig::dead_bins`] (the fastai lesson's `h1[:2]`).
pub const DEAD_BINS: usize = 2;

/// Default of [`ActivationConfig::dead_width`]: the fastai lesson's dead chart counts
/// the two lowest of 40 bins of `|x|` over `[0, 10)`, i.e. `|x| < 0.5`.
pub const DEAD_WIDTH: f64 = 0.5;

/// The one definition of a dead output for one layer, used by the records' dead
/// fraction, the dead chart, the health report's table and its dead-unit verdict
/// alike.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DeadRule {
    /// A rectifying layer whose inactive units output `floor` (ReLU 0, GeneralRelu
    /// `-sub`): an output is dead when `floor - width <= x < floor + width`.
    Band {
        /// The inactive output ([`nn::Module::inactive_output`]).
        floor: f64,
        /// Half-width of the band ([`ActivationConfig::dead_width`]).
        width: f64,
    },
    /// Any other layer (conv, norm, tanh, a container not ending in a rectifier):
    /// an output is dead when `|x| < threshold` ([`ActivationConfig::near_zero`]).
    NearZero {
        /// The threshold.
        threshold: f64,
    },
}

impl DeadRule {
    /// The rule of a layer whose inactive output is `floor` (`None`: not a
    /// rectifier), under `config`.
    pub fn for_layer(floor: Option<f64>, config: &ActivationConfig) -> Self {
        match floor {
            Some(floor) if floor.is_finite() => DeadRule::Band {
                floor,
                width: config.dead_width,
            },
            _ => DeadRule::NearZero {
                threshold: config.near_zero,
            },
        }
    }

    /// Whether `x` counts as dead.
    pub fn is_dead(&self, x: f64) -> bool {
        match *self {
            DeadRule::Band { floor, width } => x >= floor - width && x < floor + width,
            DeadRule::NearZero { threshold } => x.abs() < threshold,
        }
    }
}

impl std::fmt::Display for DeadRule {
    /// `|x| < 0.5`, `|x + 0.4| < 0.5` (half-open: `-0.9 <= x < 0.1`), `|x| < 0.001`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::format::Num;
        match *self {
            DeadRule::Band { floor: 0.0, width } => write!(f, "|x| < {}", Num(width)),
            DeadRule::Band { floor, width } => {
                let sign = if floor < 0.0 { '+' } else { '-' };
                write!(
                    f,
                    "|x {sign} {}| < {} ({} <= x < {})",
                    Num(floor.abs()),
                    Num(width),
                    Num(floor - width),
                    Num(floor + width)
                )
            }
            DeadRule::NearZero { threshold } => write!(f, "|x| < {}", Num(threshold)),
        }
    }
}

/// Default of [`ActivationConfig::saturation`] (Karpathy's `t.abs() > 0.97`).
pub const SATURATION: f64 = 0.97;

impl Default for ActivationConfig {
    /// [`ActivationConfig::relu`].
    fn default() -> Self {
        Self::relu()
    }
}

impl ActivationConfig {
    /// For ReLU nets, as in the fastai lesson: every training call, 40 bins of `|x|`
    /// over `[0, 10)`, dead = the two lowest bins or `|x| < 1e-3`.
    pub fn relu() -> Self {
        Self {
            every: 1,
            phases: Phases::Train,
            histogram: HistogramSpec::magnitudes(),
            near_zero: NEAR_ZERO,
            dead_bins: DEAD_BINS,
            dead_width: DEAD_WIDTH,
            saturation: SATURATION,
            sample_examples: None,
            snapshot: None,
            saturation_map: None,
            capacity: DEFAULT_CAPACITY,
            keep_exact: Vec::new(),
        }
    }

    /// For tanh nets, as in Karpathy's lesson: 40 bins of `x` over `[-1, 1)`,
    /// saturated = `|x| > 0.97`.
    pub fn tanh() -> Self {
        Self {
            histogram: HistogramSpec::tanh(),
            ..Self::relu()
        }
    }

    /// Records every `n`-th call.
    pub fn every(mut self, n: usize) -> Self {
        self.every = n;
        self
    }

    /// Records these passes.
    pub fn phases(mut self, phases: Phases) -> Self {
        self.phases = phases;
        self
    }

    /// Uses this histogram.
    pub fn histogram(mut self, spec: HistogramSpec) -> Self {
        self.histogram = spec;
        self
    }

    /// Uses this near-zero threshold.
    pub fn near_zero(mut self, threshold: f64) -> Self {
        self.near_zero = threshold;
        self
    }

    /// Uses this half-width of the dead band around a rectifier's inactive output.
    pub fn dead_width(mut self, width: f64) -> Self {
        self.dead_width = width;
        self
    }

    /// Uses this saturation threshold.
    pub fn saturation(mut self, threshold: f64) -> Self {
        self.saturation = threshold;
        self
    }

    /// Computes each record from the first `examples` examples of the batch (see
    /// [`ActivationConfig::sample_examples`]).
    pub fn sample_examples(mut self, examples: usize) -> Self {
        self.sample_examples = Some(examples);
        self
    }

    /// Captures per-layer histograms (100 bins over each layer's `±max|x|`) at
    /// training call `call`.
    pub fn snapshot_at(self, call: usize) -> Self {
        self.snapshot(SnapshotSpec {
            call,
            bins: SnapshotBins::Fit { bins: 100 },
        })
    }

    /// Captures per-layer histograms as `spec` says.
    pub fn snapshot(mut self, spec: SnapshotSpec) -> Self {
        self.snapshot = Some(spec);
        self
    }

    /// Captures the saturation map (`|h| > 0.99`, at most 32 examples) of the module
    /// at `layer` at training call `call`.
    pub fn saturation_map_at(mut self, layer: impl Into<String>, call: usize) -> Self {
        self.saturation_map = Some(SaturationMapSpec {
            layer: layer.into(),
            call,
            threshold: SATURATION_MAP_THRESHOLD,
            max_rows: SATURATION_MAP_ROWS,
        });
        self
    }

    /// Keeps at most `records` records per layer and pass, folding older ones
    /// together beyond (see [`ActivationConfig::capacity`]).
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records;
        self
    }

    /// Keeps the record of training call `call` exact (see
    /// [`ActivationConfig::keep_exact`]).
    pub fn keep_exact(mut self, call: usize) -> Self {
        if !self.keep_exact.contains(&call) {
            self.keep_exact.push(call);
        }
        self
    }

    /// Whether the training record of `call` is kept exact: a
    /// [`keep_exact`](Self::keep_exact) call, the snapshot call or the saturation-map
    /// call.
    pub fn keeps(&self, call: usize) -> bool {
        self.keep_exact.contains(&call)
            || self.snapshot.is_some_and(|s| s.call == call)
            || self.saturation_map.as_ref().is_some_and(|m| m.call == call)
    }

    /// The distinct training calls kept exact besides the first and the last.
    fn kept_calls(&self) -> usize {
        let mut calls: Vec<usize> = self.keep_exact.clone();
        calls.extend(self.snapshot.map(|s| s.call));
        calls.extend(self.saturation_map.as_ref().map(|m| m.call));
        calls.sort_unstable();
        calls.dedup();
        calls.len()
    }

    /// Checks every value; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        const CFG: &str = "ActivationConfig";
        if self.every == 0 {
            return Err(DiagError::config(CFG, "every", 0, "must be at least 1"));
        }
        let least = min_capacity(self.kept_calls());
        if self.capacity < least {
            return Err(DiagError::config(
                CFG,
                "capacity",
                self.capacity,
                format!("must be at least {least} (the first, last and kept records never fold)"),
            ));
        }
        self.histogram.validate(CFG)?;
        if self.sample_examples == Some(0) {
            return Err(DiagError::config(
                CFG,
                "sample_examples",
                0,
                "must be at least 1 (or None for every value)",
            ));
        }
        if !(self.dead_width.is_finite() && self.dead_width > 0.0) {
            return Err(DiagError::config(
                CFG,
                "dead_width",
                self.dead_width,
                "must be a positive finite number",
            ));
        }
        for (field, v) in [
            ("near_zero", self.near_zero),
            ("saturation", self.saturation),
        ] {
            if v.is_nan() || v < 0.0 {
                return Err(DiagError::config(CFG, field, v, "must be >= 0"));
            }
        }
        if self.histogram.abs && self.dead_bins > self.histogram.bins {
            return Err(DiagError::config(
                CFG,
                "dead_bins",
                self.dead_bins,
                format!("must not exceed histogram.bins ({})", self.histogram.bins),
            ));
        }
        if self.phases == Phases::Valid
            && (self.snapshot.is_some() || self.saturation_map.is_some())
        {
            return Err(DiagError::config(
                CFG,
                "phases",
                "Valid",
                "snapshots and saturation maps are taken at training calls: record Train or Both",
            ));
        }
        if let Some(snap) = &self.snapshot {
            match snap.bins {
                SnapshotBins::Recorded => {}
                SnapshotBins::Fit { bins } => {
                    HistogramSpec::signed(bins, -1.0, 1.0).validate("ActivationConfig.snapshot")?
                }
                SnapshotBins::Fixed(spec) => spec.validate("ActivationConfig.snapshot")?,
            }
        }
        if let Some(map) = &self.saturation_map {
            if map.threshold.is_nan() || map.threshold < 0.0 {
                return Err(DiagError::config(
                    CFG,
                    "saturation_map.threshold",
                    map.threshold,
                    "must be >= 0",
                ));
            }
            if map.max_rows == 0 {
                return Err(DiagError::config(
                    CFG,
                    "saturation_map.max_rows",
                    0,
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }

    /// The kernel configuration of one record (histogram and thresholds).
    pub fn stats_config(&self) -> kernels::cpu::stats::StatsConfig {
        kernels::cpu::stats::StatsConfig {
            bins: self.histogram.bins,
            lo: self.histogram.lo,
            hi: self.histogram.hi,
            near_zero: self.near_zero,
            saturation: self.saturation,
            abs: self.histogram.abs,
        }
    }

    /// Whether the lowest-bins dead fraction is defined (a histogram of `|x|` from 0).
    pub(crate) fn has_low_bins(&self) -> bool {
        self.histogram.abs && self.histogram.lo == 0.0 && self.dead_bins > 0
    }

    /// Whether the lowest bins count exactly `|x| < dead_width`, so that a
    /// rectifier with floor 0 needs no second pass for its dead fraction.
    pub(crate) fn low_bins_are_dead_band(&self) -> bool {
        self.has_low_bins()
            && (self.histogram.bin_width() * self.dead_bins as f64 - self.dead_width).abs()
                <= 1e-12 * self.dead_width
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_include_the_right_passes() {
        assert!(Phases::Train.includes(Pass::Train));
        assert!(!Phases::Train.includes(Pass::Valid));
        assert!(Phases::Valid.includes(Pass::Valid));
        assert!(Phases::Both.includes(Pass::Train) && Phases::Both.includes(Pass::Valid));
    }

    #[test]
    fn bad_values_are_named() {
        let e = ActivationConfig::relu().every(0).validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "ActivationConfig.every = 0: must be at least 1"
        );
        let e = ActivationConfig::relu()
            .near_zero(f64::NAN)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("near_zero = NaN"), "{e}");
        let mut cfg = ActivationConfig::relu().saturation_map_at("0", 0);
        if let Some(m) = cfg.saturation_map.as_mut() {
            m.max_rows = 0;
        }
        assert!(cfg.validate().unwrap_err().to_string().contains("max_rows"));
        let e = ActivationConfig::relu()
            .phases(Phases::Valid)
            .snapshot_at(0)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("phases = Valid"), "{e}");
        let cfg = ActivationConfig::relu().snapshot(SnapshotSpec {
            call: 0,
            bins: SnapshotBins::Fit { bins: 0 },
        });
        assert!(cfg.validate().unwrap_err().to_string().contains("bins = 0"));
    }

    #[test]
    fn capacity_leaves_room_for_the_kept_records() {
        assert_eq!(ActivationConfig::relu().capacity, DEFAULT_CAPACITY);
        let e = ActivationConfig::relu().capacity(8).validate().unwrap_err();
        assert!(
            e.to_string().contains("capacity = 8: must be at least 16"),
            "{e}"
        );
        let mut cfg = ActivationConfig::relu().capacity(16);
        for call in 0..7 {
            cfg = cfg.keep_exact(call).keep_exact(call);
        }
        assert_eq!(cfg.keep_exact.len(), 7);
        assert!(cfg.keeps(6) && !cfg.keeps(7));
        assert!(cfg.clone().capacity(18).validate().is_err());
        assert!(cfg.clone().capacity(19).snapshot_at(3).validate().is_ok());
        assert!(cfg.clone().capacity(20).snapshot_at(10).validate().is_err());
        assert!(cfg.capacity(21).snapshot_at(10).validate().is_ok());
    }

    #[test]
    fn low_bins_need_a_magnitude_histogram() {
        assert!(ActivationConfig::relu().has_low_bins());
        assert!(!ActivationConfig::tanh().has_low_bins());
    }
}
