//! The early-abort rule: stop a run whose activation variance spikes and then
//! collapses, or whose activations turn NaN/infinite.
//!
//! The fastai lesson's advice: when the variance of a layer's activations shoots up
//! and then falls to almost nothing, the network has blown up and most of its units
//! have died; training further wastes time. Stop, lower the learning rate or fix the
//! initialisation. [`AbortRule`] is that rule as a plain state machine over
//! [`ActivationRecord`]s, testable without a training loop; the learner's
//! `EarlyAbort` callback (feature `learner`) feeds it after every batch.
//!
//! Per layer, over training records only:
//!
//! 1. the **baseline** is the mean variance of the first [`EarlyAbortConfig::warmup`]
//!    records;
//! 2. a **spike** is a variance above `spike_ratio` x the baseline; the highest
//!    variance since then is the **peak**;
//! 3. a **collapse** is a variance below `collapse_ratio` x the peak after a spike:
//!    the rule fires, naming the layer, the baseline, the peak and the collapse.
//!
//! Any record with NaN or infinite values fires at once.

use std::fmt;

use crate::activations::{ActivationLog, ActivationRecord, Pass};
use crate::error::{DiagError, Result};
use crate::format::Num;

/// Default of [`EarlyAbortConfig::warmup`].
pub const WARMUP_RECORDS: usize = 3;
/// Default of [`EarlyAbortConfig::spike_ratio`]: a variance 25x the baseline (std 5x).
pub const SPIKE_VARIANCE_RATIO: f64 = 25.0;
/// Default of [`EarlyAbortConfig::collapse_ratio`]: a variance 1/100 of the peak (std
/// down 10x).
pub const COLLAPSE_VARIANCE_RATIO: f64 = 0.01;

/// The thresholds of [`AbortRule`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyAbortConfig {
    /// Training records per layer whose mean variance is the baseline (>= 1).
    pub warmup: usize,
    /// A variance above `spike_ratio x baseline` is a spike (> 1).
    pub spike_ratio: f64,
    /// After a spike, a variance below `collapse_ratio x peak` is a collapse (in
    /// `(0, 1)`).
    pub collapse_ratio: f64,
    /// Fire on the first record with NaN or infinite values.
    pub abort_on_non_finite: bool,
}

impl Default for EarlyAbortConfig {
    fn default() -> Self {
        Self {
            warmup: WARMUP_RECORDS,
            spike_ratio: SPIKE_VARIANCE_RATIO,
            collapse_ratio: COLLAPSE_VARIANCE_RATIO,
            abort_on_non_finite: true,
        }
    }
}

impl EarlyAbortConfig {
    /// Checks every value; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        const CFG: &str = "EarlyAbortConfig";
        if self.warmup == 0 {
            return Err(DiagError::config(CFG, "warmup", 0, "must be at least 1"));
        }
        if !(self.spike_ratio > 1.0 && self.spike_ratio.is_finite()) {
            return Err(DiagError::config(
                CFG,
                "spike_ratio",
                self.spike_ratio,
                "must be finite and > 1",
            ));
        }
        if !(self.collapse_ratio > 0.0 && self.collapse_ratio < 1.0) {
            return Err(DiagError::config(
                CFG,
                "collapse_ratio",
                self.collapse_ratio,
                "must be in (0, 1)",
            ));
        }
        Ok(())
    }
}

/// What made the rule fire.
#[derive(Clone, Debug, PartialEq)]
pub enum AbortCause {
    /// The variance spiked and then collapsed.
    SpikeThenCollapse {
        /// Standard deviation of the baseline (root of the mean warm-up variance).
        baseline_std: f64,
        /// The highest standard deviation after the spike.
        peak_std: f64,
        /// Training call of the peak.
        peak_call: usize,
        /// The collapsed standard deviation.
        std: f64,
    },
    /// The activations had NaN or infinite values.
    NonFinite {
        /// How many values were not finite.
        count: u64,
    },
}

/// Why a run should stop: the layer, the call, and the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct AbortReason {
    /// Dotted path of the layer.
    pub layer: String,
    /// Training call at which the rule fired.
    pub call: usize,
    /// What happened.
    pub cause: AbortCause,
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            AbortCause::SpikeThenCollapse {
                baseline_std,
                peak_std,
                peak_call,
                std,
            } => write!(
                f,
                "layer {:?}: activation variance spiked to {:.3}x its start (std {:.3} -> {:.3} at \
                 batch {}) and then collapsed to {:.3}x its peak (std {:.3} at batch {}); the \
                 network has blown up and its units are dying: stop, then lower the learning rate \
                 or fix the initialisation (Kaiming init, normalised inputs, BatchNorm)",
                self.layer,
                Num((peak_std / baseline_std).powi(2)),
                Num(*baseline_std),
                Num(*peak_std),
                peak_call,
                Num((std / peak_std).powi(2)),
                Num(*std),
                self.call
            ),
            AbortCause::NonFinite { count } => write!(
                f,
                "layer {:?}: {count} NaN/infinite activations at batch {}: stop, then lower the \
                 learning rate or look for a log/division of zero",
                self.layer, self.call
            ),
        }
    }
}

/// Per-layer state of the rule.
#[derive(Clone, Debug)]
struct Track {
    layer: String,
    /// The last training call fed from a log (for [`AbortRule::scan`]): records are
    /// recognised by their calls, not their positions, which folding changes.
    seen: Option<usize>,
    warm: usize,
    var_sum: f64,
    /// Highest variance since the spike, with its call.
    peak: Option<(f64, usize)>,
}

/// The spike-then-collapse rule over a stream of activation records.
///
/// ```
/// use diagnostics::early_abort::{AbortRule, EarlyAbortConfig};
/// let mut rule = AbortRule::new(EarlyAbortConfig::default())?;
/// // std 1 for three batches, a spike to 10, then a collapse to 0.01.
/// for (call, std) in [1.0, 1.0, 1.0, 10.0, 6.0].into_iter().enumerate() {
///     assert!(rule.observe("conv3", call, std, 0).is_none());
/// }
/// let reason = rule.observe("conv3", 5, 0.01, 0).unwrap();
/// assert!(reason.to_string().contains("spiked"));
/// # Ok::<(), diagnostics::error::DiagError>(())
/// ```
#[derive(Clone, Debug)]
pub struct AbortRule {
    config: EarlyAbortConfig,
    tracks: Vec<Track>,
    fired: Option<AbortReason>,
}

impl AbortRule {
    /// A rule with these thresholds.
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`] if `config` does not validate.
    pub fn new(config: EarlyAbortConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            tracks: Vec::new(),
            fired: None,
        })
    }

    /// The thresholds.
    pub fn config(&self) -> &EarlyAbortConfig {
        &self.config
    }

    /// Why the rule fired, once it has (it stays fired).
    pub fn reason(&self) -> Option<&AbortReason> {
        self.fired.as_ref()
    }

    fn track(&mut self, layer: &str) -> &mut Track {
        let i = match self.tracks.iter().position(|t| t.layer == layer) {
            Some(i) => i,
            None => {
                self.tracks.push(Track {
                    layer: layer.to_string(),
                    seen: None,
                    warm: 0,
                    var_sum: 0.0,
                    peak: None,
                });
                self.tracks.len() - 1
            }
        };
        &mut self.tracks[i]
    }

    /// Feeds one training record of `layer` (its call, std and non-finite count);
    /// returns the reason if the rule fires now or has fired before.
    pub fn observe(
        &mut self,
        layer: &str,
        call: usize,
        std: f64,
        non_finite: u64,
    ) -> Option<&AbortReason> {
        if self.fired.is_some() {
            return self.fired.as_ref();
        }
        let config = self.config;
        if non_finite > 0 || !std.is_finite() {
            if config.abort_on_non_finite {
                self.fired = Some(AbortReason {
                    layer: layer.to_string(),
                    call,
                    cause: AbortCause::NonFinite {
                        count: non_finite.max(1),
                    },
                });
            }
            return self.fired.as_ref();
        }
        let var = std * std;
        let track = self.track(layer);
        if track.warm < config.warmup {
            track.warm += 1;
            track.var_sum += var;
            return None;
        }
        let baseline = track.var_sum / track.warm as f64;
        match track.peak {
            None => {
                if var > config.spike_ratio * baseline {
                    track.peak = Some((var, call));
                }
                None
            }
            Some((peak, peak_call)) => {
                if var > peak {
                    track.peak = Some((var, call));
                    None
                } else if var < config.collapse_ratio * peak {
                    self.fired = Some(AbortReason {
                        layer: layer.to_string(),
                        call,
                        cause: AbortCause::SpikeThenCollapse {
                            baseline_std: baseline.sqrt(),
                            peak_std: peak.sqrt(),
                            peak_call,
                            std,
                        },
                    });
                    self.fired.as_ref()
                } else {
                    None
                }
            }
        }
    }

    /// Feeds one record of `layer` (validation records are ignored).
    pub fn observe_record(
        &mut self,
        layer: &str,
        record: &ActivationRecord,
    ) -> Option<&AbortReason> {
        if record.pass != Pass::Train {
            return self.fired.as_ref();
        }
        self.observe(layer, record.call, record.std, record.non_finite)
    }

    /// Marks every record now in `log` as seen without judging it (so that a rule
    /// started for a new run ignores the previous runs' records).
    pub fn skip_existing(&mut self, log: &ActivationLog) {
        for layer in &log.layers {
            let last = layer.records_of(Pass::Train).map(|r| r.last_call).max();
            let track = self.track(&layer.path);
            track.seen = track.seen.max(last);
        }
    }

    /// Feeds the training records of `log` not seen by earlier scans (call it after
    /// every batch with the recorder's log). Records are recognised by their calls, so
    /// a log that folds its older records (see [`crate::bounded`]) is read correctly:
    /// its newest record is always exact, and a record folded before a scan saw it is
    /// fed as one record.
    pub fn scan(&mut self, log: &ActivationLog) -> Option<&AbortReason> {
        for layer in &log.layers {
            let seen = self.track(&layer.path).seen;
            let mut last = seen;
            for record in layer
                .records_of(Pass::Train)
                .filter(|r| seen.is_none_or(|s| r.last_call > s))
            {
                last = last.max(Some(record.last_call));
                self.observe_record(&layer.path, record);
            }
            self.track(&layer.path).seen = last;
            if self.fired.is_some() {
                break;
            }
        }
        self.fired.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stds: &[f64]) -> Option<AbortReason> {
        let mut rule = AbortRule::new(EarlyAbortConfig::default()).unwrap();
        for (call, &std) in stds.iter().enumerate() {
            if let Some(r) = rule.observe("l", call, std, 0) {
                return Some(r.clone());
            }
        }
        None
    }

    #[test]
    fn spike_then_collapse_fires_with_the_figures() {
        let r = run(&[0.5, 0.5, 0.5, 3.0, 4.0, 2.0, 0.03]).unwrap();
        assert_eq!(r.call, 6);
        match r.cause {
            AbortCause::SpikeThenCollapse {
                baseline_std,
                peak_std,
                peak_call,
                std,
            } => {
                assert!((baseline_std - 0.5).abs() < 1e-12);
                assert_eq!((peak_std, peak_call, std), (4.0, 4, 0.03));
            }
            other => panic!("unexpected cause {other:?}"),
        }
        let text = r.to_string();
        assert!(
            text.contains("layer \"l\"") && text.contains("lower the learning rate"),
            "{text}"
        );
    }

    #[test]
    fn steady_growth_or_a_collapse_without_a_spike_does_not_fire() {
        assert!(run(&[1.0, 1.1, 0.9, 1.5, 2.0, 2.5, 3.0, 2.8]).is_none());
        assert!(run(&[1.0, 1.0, 1.0, 0.5, 0.1, 0.01, 0.001]).is_none());
        // A spike that settles rather than collapses.
        assert!(run(&[1.0, 1.0, 1.0, 6.0, 3.0, 2.0, 2.0]).is_none());
    }

    #[test]
    fn non_finite_fires_at_once_unless_disabled() {
        let mut rule = AbortRule::new(EarlyAbortConfig::default()).unwrap();
        let r = rule.observe("x", 0, f64::NAN, 3).unwrap();
        assert_eq!(r.cause, AbortCause::NonFinite { count: 3 });
        let mut lenient = AbortRule::new(EarlyAbortConfig {
            abort_on_non_finite: false,
            ..EarlyAbortConfig::default()
        })
        .unwrap();
        assert!(lenient.observe("x", 0, f64::NAN, 3).is_none());
    }

    #[test]
    fn bad_configs_are_named() {
        let e = AbortRule::new(EarlyAbortConfig {
            collapse_ratio: 1.5,
            ..EarlyAbortConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("collapse_ratio = 1.5"), "{e}");
        let e = EarlyAbortConfig {
            warmup: 0,
            ..EarlyAbortConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("warmup"));
    }
}
