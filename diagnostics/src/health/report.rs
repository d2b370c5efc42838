//! [`HealthReport`]: the verdicts on a run, per layer, parameter and the loss, with
//! summary tables, as a struct for programs and tests and as markdown for people.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::activations::{
    ActivationLog, ActivationRecord, DeadRule, LayerActivations, Pass, DEAD_WIDTH, NEAR_ZERO,
};
use crate::atomic::write_atomic;
use crate::bounded::{first_part_by_weight, last_part_by_weight, weighted_mean, weighted_median};
use crate::error::Result;
use crate::format::{html_safe, markdown_escape, Num};
use crate::gradients::GradientLog;
use crate::losses::{expected_initial_loss, LossLog};
use crate::training_log::TrainingLog;

use super::thresholds::{Thresholds, BOUNDED_SLACK};
use super::verdict::{Finding, Severity, Verdict};

/// What the report needs besides the recorded data.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct HealthConfig {
    /// Number of classes of a classifier, for the initial-loss check (`None` skips
    /// it).
    pub classes: Option<usize>,
    /// The thresholds.
    pub thresholds: Thresholds,
}

impl HealthConfig {
    /// Default thresholds and the initial-loss check for `classes` classes.
    pub fn classifier(classes: usize) -> Self {
        Self {
            classes: Some(classes),
            thresholds: Thresholds::default(),
        }
    }
}

/// The figures of one layer the verdicts are based on.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSummary {
    /// `path (Kind)`.
    pub label: String,
    /// Training calls recorded with a finite std (the number of records when none
    /// was folded, see [`crate::bounded`]).
    pub records: usize,
    /// Std at the first training call.
    pub first_std: f64,
    /// Median std of the first few training calls (records weighted by the calls they
    /// stand for).
    pub start_std: f64,
    /// Highest std of a recorded call, and the call where it occurred (exact whatever
    /// the folding).
    pub peak_std: (f64, usize),
    /// Mean std over the final stretch.
    pub final_std: f64,
    /// Mean dead fraction over the final stretch, by [`dead_rule`](Self::dead_rule):
    /// the figure of the table's "dead at end" column, of the dead chart's final
    /// level and of the dead-unit verdict.
    pub final_dead: f64,
    /// What counts as a dead output of this layer.
    pub dead_rule: DeadRule,
    /// Saturated fraction at the first training call.
    pub first_saturated: f64,
    /// Mean saturated fraction over the final stretch.
    pub final_saturated: f64,
    /// Whether every recorded value lay within ±1 (a tanh-like layer).
    pub bounded: bool,
}

/// The figures of one parameter the verdicts are based on.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSummary {
    /// `name [shape]`.
    pub label: String,
    /// Recorded steps the median is taken over (the last part of those with a finite
    /// ratio).
    pub steps: usize,
    /// Median log10 update:data over those steps.
    pub median_update_log10: f64,
    /// Grad:data at the last recorded step.
    pub last_grad_data: f64,
}

/// The verdicts on a run and the figures behind them.
///
/// A run with no [`Severity::Warning`] or [`Severity::Critical`] verdict is healthy.
/// Thresholds are in [`Thresholds`] (named constants in
/// [`thresholds`](super::thresholds)).
#[derive(Clone, Debug, PartialEq)]
pub struct HealthReport {
    /// Every verdict: critical ones first, then by layer order.
    pub verdicts: Vec<Verdict>,
    /// Per watched layer.
    pub layers: Vec<LayerSummary>,
    /// Per watched parameter.
    pub params: Vec<ParamSummary>,
    /// `(first training loss, ln(classes))` when both are known.
    pub initial_loss: Option<(f64, f64)>,
    /// Last training and validation losses, when recorded.
    pub final_losses: (Option<f64>, Option<f64>),
    /// The configuration used.
    pub config: HealthConfig,
    /// The recorder's dead band half-width around a rectifier's inactive output
    /// ([`ActivationConfig::dead_width`](crate::activations::ActivationConfig::dead_width)).
    pub dead_width: f64,
    /// The recorder's near-zero threshold, the dead rule of the other layers
    /// ([`ActivationConfig::near_zero`](crate::activations::ActivationConfig::near_zero)).
    pub near_zero: f64,
}

#[cfg(test)]
fn median(values: &mut [f64]) -> f64 {
    let mut weighted: Vec<(f64, u64)> = values.iter().map(|&v| (v, 1)).collect();
    weighted_median(&mut weighted)
}

#[cfg(test)]
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    weighted_mean(values.map(|v| (v, 1)))
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The summary of one layer, or `None` without finite training records.
fn summarise_layer(layer: &LayerActivations, th: &Thresholds) -> Option<LayerSummary> {
    let records: Vec<&ActivationRecord> = layer
        .records_of(Pass::Train)
        .filter(|r| r.std.is_finite() && r.count > 0)
        .collect();
    let first = records.first()?;
    let weight = |r: &&ActivationRecord| r.merged;
    let n: u64 = records.iter().map(weight).sum();
    let mut start: Vec<(f64, u64)> =
        first_part_by_weight(&records, th.start_records.max(1) as u64, weight)
            .iter()
            .map(|r| (r.std, r.merged))
            .collect();
    // The first `start_records` calls: the last record taken may stand for more.
    let mut left = th.start_records.max(1) as u64;
    for (_, w) in &mut start {
        *w = (*w).min(left);
        left -= *w;
    }
    let tail = last_part_by_weight(&records, th.final_stretch, weight);
    let tail_mean = |stat: fn(&ActivationRecord) -> f64| {
        weighted_mean(tail.iter().map(|r| (stat(r), r.merged)))
    };
    let peak = records
        .iter()
        .map(|r| (r.peak_std, r.peak_call))
        .fold((f64::NEG_INFINITY, 0), |a, b| if b.0 > a.0 { b } else { a });
    let bounded = layer.is_bounded(BOUNDED_SLACK);
    Some(LayerSummary {
        label: layer.label(),
        records: n as usize,
        first_std: first.std,
        start_std: weighted_median(&mut start),
        peak_std: peak,
        final_std: tail_mean(|r| r.std),
        final_dead: tail_mean(ActivationRecord::dead_fraction),
        dead_rule: layer.dead_rule,
        first_saturated: first.saturated,
        final_saturated: tail_mean(|r| r.saturated),
        bounded,
    })
}

fn warning(
    finding: Finding,
    subject: &str,
    evidence: String,
    value: f64,
    threshold: f64,
) -> Verdict {
    Verdict {
        finding,
        severity: Severity::Warning,
        subject: subject.to_string(),
        evidence,
        value,
        threshold,
    }
}

fn layer_verdicts(
    log: &ActivationLog,
    th: &Thresholds,
    out: &mut Vec<Verdict>,
) -> Vec<LayerSummary> {
    let summaries: Vec<LayerSummary> = log
        .layers
        .iter()
        .filter_map(|l| summarise_layer(l, th))
        .collect();
    let stretch = pct(th.final_stretch);
    // Depth is judged against the layer whose output comes first in the forward pass.
    let reference = log
        .layers_in_forward_order()
        .first()
        .and_then(|first| summaries.iter().find(|s| s.label == first.label()))
        .map(|s| (s.label.clone(), s.first_std));
    for s in &summaries {
        let subject = s.label.as_str();
        if s.final_dead > th.dead_fraction {
            out.push(warning(
                Finding::DeadUnits,
                subject,
                format!(
                    "{} of outputs dead ({}) over the last {stretch} of training (threshold {})",
                    pct(s.final_dead),
                    s.dead_rule,
                    pct(th.dead_fraction)
                ),
                s.final_dead,
                th.dead_fraction,
            ));
        }
        if let Some((ref_label, ref_std)) = &reference {
            if ref_label != &s.label && *ref_std > 0.0 {
                let ratio = s.first_std / ref_std;
                let (finding, threshold, crossed) = if ratio < th.depth_collapse {
                    (Finding::CollapsingWithDepth, th.depth_collapse, true)
                } else if ratio > th.depth_explode {
                    (Finding::ExplodingWithDepth, th.depth_explode, true)
                } else {
                    (Finding::DeadUnits, 0.0, false)
                };
                if crossed {
                    out.push(warning(
                        finding,
                        subject,
                        format!(
                            "std {} at the first batch is {:.3}x that of the first watched layer {ref_label} ({}) (threshold {}x)",
                            Num(s.first_std),
                            Num(ratio),
                            Num(*ref_std),
                            Num(threshold)
                        ),
                        ratio,
                        threshold,
                    ));
                }
            }
        }
        if s.start_std > 0.0 && s.peak_std.0 / s.start_std > th.time_explode {
            let ratio = s.peak_std.0 / s.start_std;
            out.push(warning(
                Finding::ExplodingOverTime,
                subject,
                format!(
                    "std rose from {} at the start to {} at batch {} ({:.3}x; threshold {}x)",
                    Num(s.start_std),
                    Num(s.peak_std.0),
                    s.peak_std.1,
                    Num(ratio),
                    Num(th.time_explode)
                ),
                ratio,
                th.time_explode,
            ));
        }
        if s.peak_std.0 > 0.0 && s.final_std / s.peak_std.0 < th.time_collapse {
            let ratio = s.final_std / s.peak_std.0;
            out.push(warning(
                Finding::CollapsingOverTime,
                subject,
                format!(
                    "std fell to {} over the last {stretch} of training, {:.3}x its peak {} at batch {} (threshold {}x)",
                    Num(s.final_std),
                    Num(ratio),
                    Num(s.peak_std.0),
                    s.peak_std.1,
                    Num(th.time_collapse)
                ),
                ratio,
                th.time_collapse,
            ));
        }
        if s.bounded {
            let saturation = log.config.saturation;
            let (value, when) = if s.first_saturated >= s.final_saturated {
                (s.first_saturated, "at the first batch".to_string())
            } else {
                (
                    s.final_saturated,
                    format!("over the last {stretch} of training"),
                )
            };
            if value > th.saturated_fraction {
                out.push(warning(
                    Finding::Saturated,
                    subject,
                    format!(
                        "{} of outputs with |x| > {saturation} {when} (threshold {})",
                        pct(value),
                        pct(th.saturated_fraction)
                    ),
                    value,
                    th.saturated_fraction,
                ));
            }
        }
    }
    if let Some(event) = &log.first_non_finite {
        let label = log
            .layer(&event.layer)
            .map_or_else(|| event.layer.clone(), LayerActivations::label);
        out.push(Verdict {
            finding: Finding::NonFinite,
            severity: Severity::Critical,
            subject: label,
            evidence: format!(
                "first NaN/infinite activations ({} values) at {} batch {}, the first layer to show them",
                event.count,
                event.pass.name(),
                event.call
            ),
            value: event.count as f64,
            threshold: 0.0,
        });
    }
    summaries
}

fn param_verdicts(log: &GradientLog, th: &Thresholds, out: &mut Vec<Verdict>) -> Vec<ParamSummary> {
    let mut summaries = Vec::new();
    for p in &log.params {
        let finite: Vec<(f64, u64)> = p
            .records
            .iter()
            .map(|r| (r.update_data_log10, r.merged))
            .filter(|(v, _)| v.is_finite())
            .collect();
        if finite.is_empty() {
            continue;
        }
        let n: u64 = finite.iter().map(|&(_, w)| w).sum();
        let mut ratios = last_part_by_weight(&finite, th.update_window, |&(_, w)| w).to_vec();
        let window: u64 = ratios.iter().map(|&(_, w)| w).sum();
        let med = weighted_median(&mut ratios);
        let label = p.label();
        let evidence = |threshold: f64| {
            format!(
                "median log10 update:data {:.3} over the last {window} of {n} recorded steps (threshold {}; aim for about -3)",
                Num(med),
                Num(threshold)
            )
        };
        if med < th.update_low_log10 {
            out.push(warning(
                Finding::SlowUpdates,
                &label,
                evidence(th.update_low_log10),
                med,
                th.update_low_log10,
            ));
        } else if med > th.update_high_log10 {
            out.push(warning(
                Finding::FastUpdates,
                &label,
                evidence(th.update_high_log10),
                med,
                th.update_high_log10,
            ));
        }
        summaries.push(ParamSummary {
            label,
            steps: window as usize,
            median_update_log10: med,
            last_grad_data: p.records.last().map_or(f64::NAN, |r| r.grad_data),
        });
    }
    if let Some((step, name)) = log.first_non_finite() {
        let label = log
            .param(name)
            .map_or_else(|| name.to_string(), |p| p.label());
        out.push(Verdict {
            finding: Finding::NonFinite,
            severity: Severity::Critical,
            subject: label,
            evidence: format!("first NaN/infinite gradient at step {step}"),
            value: step as f64,
            threshold: 0.0,
        });
    }
    summaries
}

fn loss_verdicts(
    losses: &LossLog,
    config: &HealthConfig,
    out: &mut Vec<Verdict>,
) -> Option<(f64, f64)> {
    if let Some((step, value)) = losses.first_non_finite() {
        out.push(Verdict {
            finding: Finding::NonFinite,
            severity: Severity::Critical,
            subject: "loss".to_string(),
            evidence: format!("training loss {} at step {step}", Num(value)),
            value,
            threshold: 0.0,
        });
    }
    let classes = config.classes.filter(|&c| c >= 2)?;
    let first = losses.first_train().filter(|l| l.is_finite())?;
    let expected = expected_initial_loss(classes);
    let ratio = first / expected;
    let th = config.thresholds.initial_loss_ratio;
    if ratio > th || ratio < 1.0 / th {
        out.push(warning(
            Finding::InitialLoss,
            "loss",
            format!(
                "first training loss {} vs ln({classes}) = {} for a uniform guess ({:.3}x; threshold {}x either way)",
                Num(first),
                Num(expected),
                Num(ratio),
                Num(th)
            ),
            ratio,
            th,
        ));
    }
    Some((first, expected))
}

impl HealthReport {
    /// Analyses a run. Layers are judged on their training records; see the
    /// [`thresholds`](super::thresholds) for what each verdict means.
    pub fn analyse(log: &TrainingLog, config: &HealthConfig) -> Self {
        let th = &config.thresholds;
        let mut verdicts = Vec::new();
        let layers = log
            .activations
            .as_ref()
            .map(|a| layer_verdicts(a, th, &mut verdicts))
            .unwrap_or_default();
        let params = log
            .gradients
            .as_ref()
            .map(|g| param_verdicts(g, th, &mut verdicts))
            .unwrap_or_default();
        let initial_loss = loss_verdicts(&log.losses, config, &mut verdicts);
        // Critical first; the sort is stable, so layer order is kept within each.
        verdicts.sort_by_key(|v| std::cmp::Reverse(v.severity));
        Self {
            verdicts,
            layers,
            params,
            initial_loss,
            final_losses: (log.losses.last_train(), log.losses.last_valid()),
            config: *config,
            dead_width: log
                .activations
                .as_ref()
                .map_or(DEAD_WIDTH, |a| a.config.dead_width),
            near_zero: log
                .activations
                .as_ref()
                .map_or(NEAR_ZERO, |a| a.config.near_zero),
        }
    }

    /// Whether there is no warning and nothing critical.
    pub fn is_healthy(&self) -> bool {
        self.verdicts.is_empty()
    }

    /// Whether some verdict has this finding.
    pub fn has(&self, finding: Finding) -> bool {
        self.verdicts.iter().any(|v| v.finding == finding)
    }

    /// The verdicts whose subject starts with `prefix` (a layer path, a parameter
    /// name, or `"loss"`).
    pub fn verdicts_for<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a Verdict> + 'a {
        self.verdicts
            .iter()
            .filter(move |v| v.subject.starts_with(prefix))
    }

    /// The report as markdown: the verdicts with their evidence and remedies, the
    /// per-layer and per-parameter tables, the losses, the thresholds, and links to
    /// `figures` (file names relative to the report).
    pub fn to_markdown(&self, figures: &[PathBuf]) -> String {
        let mut md = String::new();
        let critical = self
            .verdicts
            .iter()
            .filter(|v| v.severity == Severity::Critical)
            .count();
        let warnings = self.verdicts.len() - critical;
        // Writing to a String cannot fail.
        let _ = writeln!(md, "# Training health report\n");
        if self.is_healthy() {
            let _ = writeln!(md, "**Healthy**: no warnings.\n");
        } else {
            let _ = writeln!(md, "**{critical} critical, {warnings} warnings.**\n");
            let _ = writeln!(md, "## Verdicts\n");
            for v in &self.verdicts {
                let _ = writeln!(
                    md,
                    "- **{} — {}: {}.** {}. *Remedy:* {}.",
                    v.severity.name(),
                    markdown_escape(&v.subject),
                    v.finding.title(),
                    html_safe(&v.evidence),
                    v.remedy()
                );
            }
            let _ = writeln!(md);
        }
        if !self.layers.is_empty() {
            let _ = writeln!(md, "## Layers (training batches)\n");
            let _ = writeln!(
                md,
                "| layer | records | std at batch 0 | std at start | peak std (batch) | std at end | dead at end | dead means | saturated at start / end |"
            );
            let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|---:|");
            for s in &self.layers {
                let saturated = if s.bounded {
                    format!("{} / {}", pct(s.first_saturated), pct(s.final_saturated))
                } else {
                    "n/a (unbounded)".to_string()
                };
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
                    markdown_escape(&s.label),
                    s.records,
                    Num(s.first_std),
                    Num(s.start_std),
                    Num(s.peak_std.0),
                    s.peak_std.1,
                    Num(s.final_std),
                    pct(s.final_dead),
                    s.dead_rule.to_string().replace('|', "\\|"),
                    saturated
                );
            }
            let _ = writeln!(md);
        }
        if !self.params.is_empty() {
            let _ = writeln!(md, "## Parameters\n");
            let _ = writeln!(md, "| parameter | steps (last) | median log10 update:data | grad:data at the last step |");
            let _ = writeln!(md, "|---|---:|---:|---:|");
            for p in &self.params {
                let _ = writeln!(
                    md,
                    "| {} | {} | {:.3} | {} |",
                    markdown_escape(&p.label),
                    p.steps,
                    Num(p.median_update_log10),
                    Num(p.last_grad_data)
                );
            }
            let _ = writeln!(md);
        }
        let _ = writeln!(md, "## Loss\n");
        match self.initial_loss {
            Some((first, expected)) => {
                let _ = writeln!(
                    md,
                    "- first training loss {:.5} (a uniform guess gives {:.5})",
                    Num(first),
                    Num(expected)
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- initial-loss check skipped (no class count or no loss)"
                );
            }
        }
        if let Some(l) = self.final_losses.0 {
            let _ = writeln!(md, "- last training loss {:.5}", Num(l));
        }
        if let Some(l) = self.final_losses.1 {
            let _ = writeln!(md, "- last validation loss {:.5}", Num(l));
        }
        let _ = writeln!(md);
        if !figures.is_empty() {
            let _ = writeln!(md, "## Figures\n");
            for f in figures {
                let name = f.file_name().map_or_else(
                    || f.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                // The link target is percent-encoded where markdown would end it.
                let target = name
                    .replace('%', "%25")
                    .replace(' ', "%20")
                    .replace('(', "%28")
                    .replace(')', "%29");
                let _ = writeln!(md, "- [{}]({target})", html_safe(&name));
            }
            let _ = writeln!(md);
        }
        let th = &self.config.thresholds;
        let _ = writeln!(md, "## Thresholds\n");
        let _ = writeln!(
            md,
            "dead: dead fraction (by the layer's rule in the table: within {} of a \
             rectifier's inactive output, |x| < {} for other layers) > {}; depth: std ratio to the first layer < {}x or > {}x; \
             time: peak > {}x start, end < {}x peak; saturated fraction > {} (bounded layers); \
             first loss beyond {}x of ln(classes) either way; median log10 update:data (last {} of the steps) < {} or > {}; \
             \"end\" is the last {} of the training records, \"start\" the median of the first {}.",
            Num(self.dead_width),
            Num(self.near_zero),
            pct(th.dead_fraction),
            Num(th.depth_collapse),
            Num(th.depth_explode),
            Num(th.time_explode),
            Num(th.time_collapse),
            pct(th.saturated_fraction),
            Num(th.initial_loss_ratio),
            pct(th.update_window),
            Num(th.update_low_log10),
            Num(th.update_high_log10),
            pct(th.final_stretch),
            th.start_records
        );
        md
    }

    /// Writes [`to_markdown`](Self::to_markdown) to `dir/health.md` atomically and
    /// returns the path.
    ///
    /// # Errors
    /// [`DiagError::Io`](crate::error::DiagError::Io) if the file cannot be written.
    pub fn write_markdown(&self, dir: &Path, figures: &[PathBuf]) -> Result<PathBuf> {
        let path = dir.join("health.md");
        write_atomic(
            &path,
            self.to_markdown(figures).as_bytes(),
            "writing the health report",
        )?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        assert!(mean(std::iter::empty()).is_nan());
    }

    /// A parameter whose gradients dwarf its values (grad:data 123456789) and one
    /// whose gradients vanish: the table writes both in scientific notation.
    #[test]
    fn huge_and_tiny_ratios_are_written_in_scientific_notation() {
        use crate::gradients::{GradientRecord, ParamGradients};
        let param = |name: &str, grad_data: f64, update_data_log10: f64| ParamGradients {
            name: name.to_string(),
            shape: vec![4, 2],
            records: vec![GradientRecord {
                step: 0,
                last_step: 0,
                merged: 1,
                lr: 0.1,
                grad_mean: 0.0,
                grad_std: grad_data,
                data_mean: 0.0,
                data_std: 1.0,
                grad_data,
                update_data_log10,
                non_finite: 0,
            }],
            histogram: None,
            first_non_finite: None,
        };
        let log = TrainingLog {
            gradients: Some(GradientLog {
                params: vec![
                    param("0.weight", 123456789.0, 7.09),
                    param("2.weight", 2.5e-9, -9.6),
                    param("4.weight", 0.00123456, -3.9),
                ],
            }),
            ..TrainingLog::default()
        };
        let md = log.health(&HealthConfig::default()).to_markdown(&[]);
        assert!(
            md.contains("| 0.weight [4, 2] | 1 | 7.09 | 1.235e8 |"),
            "{md}"
        );
        assert!(
            md.contains("| 2.weight [4, 2] | 1 | -9.6 | 2.5e-9 |"),
            "{md}"
        );
        assert!(
            md.contains("| 4.weight [4, 2] | 1 | -3.9 | 0.001235 |"),
            "{md}"
        );
        assert!(!md.contains("123456789"), "{md}");
    }
}
