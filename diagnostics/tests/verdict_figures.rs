//! Every verdict of the health report is triggered by the figure its table prints:
//! the value a verdict compares with its threshold is the number (or the ratio of
//! numbers) in the report's own tables, and a layer the table (and the dead chart)
//! shows dead gets a dead-unit verdict, by one rule per activation kind.

use diagnostics::activations::{
    ActivationConfig, ActivationLog, ActivationRecord, ActivationStats, DeadRule, LayerActivations,
    Pass,
};
use diagnostics::format::Num;
use diagnostics::gradients::{GradientLog, GradientRecord, ParamGradients};
use diagnostics::health::{Finding, HealthConfig, HealthReport};
use diagnostics::losses::LossLog;
use diagnostics::TrainingLog;

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// One training record with the given figures (everything else plain).
fn record(
    call: usize,
    order: u64,
    std: f64,
    dead: f64,
    saturated: f64,
    bound: f64,
) -> ActivationRecord {
    let cfg = ActivationConfig::relu();
    let s = kernels::cpu::stats::stats(&[0.0f32, 1.0], &cfg.stats_config()).unwrap();
    let mut r = ActivationRecord::from_stats(call, Pass::Train, &s, &cfg);
    r.order = order;
    r.std = std;
    r.peak_std = std;
    r.dead = dead;
    // The other near-zero figures say "alive": only `dead` may trigger the verdict.
    r.near_zero = 0.0;
    r.low_bins = Some(0.0);
    r.saturated = saturated;
    r.min = -bound;
    r.max = bound;
    r
}

/// A layer of kind `kind` whose calls have the std, dead and saturated fractions of
/// `f(call)`, `calls` calls, at position `slot` in forward order.
fn layer(
    path: &str,
    kind: &str,
    rule: DeadRule,
    slot: u64,
    calls: usize,
    bound: f64,
    f: impl Fn(usize) -> (f64, f64, f64),
) -> LayerActivations {
    LayerActivations {
        path: path.into(),
        kind: kind.into(),
        dead_rule: rule,
        records: (0..calls)
            .map(|c| {
                let (std, dead, sat) = f(c);
                record(c, c as u64 * 10 + slot, std, dead, sat, bound)
            })
            .collect(),
        first_non_finite: None,
    }
}

/// The cells of the markdown table row that starts with `| label |`.
fn row<'a>(md: &'a str, label: &str) -> Vec<&'a str> {
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {label} |")))
        .unwrap_or_else(|| panic!("no row for {label} in\n{md}"));
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

fn relu_rule() -> DeadRule {
    DeadRule::for_layer(Some(0.0), &ActivationConfig::relu())
}

/// A log with one layer per layer verdict, plus a healthy reference layer.
fn layer_log() -> TrainingLog {
    let near = DeadRule::for_layer(None, &ActivationConfig::relu());
    let grelu = DeadRule::for_layer(Some(-0.4), &ActivationConfig::relu());
    let mut acts = ActivationLog::new(ActivationConfig::relu());
    acts.layers = vec![
        // The reference (first in forward order): healthy, std 1.
        layer("0", "Conv2d", near, 0, 8, 5.0, |_| (1.0, 0.1, 0.0)),
        // Dead ReLU: 95% of outputs in |x| < 0.5 at the end.
        layer("1", "ReLU", relu_rule(), 1, 8, 5.0, |c| {
            (1.0, if c < 4 { 0.5 } else { 0.95 }, 0.0)
        }),
        // Dead GeneralRelu by its own band around -0.4.
        layer("2", "GeneralRelu", grelu, 2, 8, 5.0, |_| (1.0, 0.93, 0.0)),
        // Collapsing with depth: std 0.01 at the first batch.
        layer("3", "Conv2d", near, 3, 8, 5.0, |_| (0.01, 0.0, 0.0)),
        // Exploding with depth (and the std stays up).
        layer("4", "Conv2d", near, 4, 8, 500.0, |_| (50.0, 0.0, 0.0)),
        // Exploding over time: from 1 to 40 at call 4, back to 1.
        layer("5", "ReLU", relu_rule(), 5, 8, 50.0, |c| {
            (if c == 4 { 40.0 } else { 1.0 }, 0.5, 0.0)
        }),
        // Collapsing over time: from 1 to 0.001.
        layer("6", "ReLU", relu_rule(), 6, 8, 5.0, |c| {
            (if c < 4 { 1.0 } else { 0.001 }, 0.5, 0.0)
        }),
        // Saturated tanh: bounded by 1, 60% saturated.
        layer("7", "Tanh", near, 7, 8, 1.0, |_| (0.9, 0.0, 0.6)),
    ];
    let mut losses = LossLog::new();
    for step in 0..8 {
        losses.push_train(step, if step == 0 { 9.0 } else { 2.0 });
    }
    let grad = |name: &str, ratio: f64| ParamGradients {
        name: name.to_string(),
        shape: vec![4],
        records: (0..8)
            .map(|step| GradientRecord {
                step,
                last_step: step,
                merged: 1,
                lr: 0.1,
                grad_mean: 0.0,
                grad_std: 1.0,
                data_mean: 0.0,
                data_std: 1.0,
                grad_data: 1.0,
                update_data_log10: ratio,
                non_finite: 0,
            })
            .collect(),
        histogram: None,
        first_non_finite: None,
    };
    TrainingLog {
        activations: Some(acts),
        gradients: Some(GradientLog {
            params: vec![
                grad("a.weight", -5.5),
                grad("b.weight", -1.2),
                grad("c.weight", -3.0),
            ],
        }),
        losses,
    }
}

#[test]
fn every_verdict_kind_is_triggered_by_the_figure_the_table_prints() {
    let log = layer_log();
    let report = HealthReport::analyse(&log, &HealthConfig::classifier(10));
    let md = report.to_markdown(&[]);
    let summary = |label: &str| {
        report
            .layers
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| panic!("no summary for {label}"))
    };
    let reference = summary("0 (Conv2d)").first_std;
    let reference_cell = row(&md, "0 (Conv2d)")[2].to_string();
    assert_eq!(reference_cell, Num(reference).to_string());
    // Columns: layer, records, std at batch 0, std at start, peak std (batch), std at
    // end, dead at end, dead means, saturated at start / end.
    let mut seen = Vec::new();
    for v in &report.verdicts {
        seen.push(v.finding);
        if v.subject == "loss" {
            // The loss section prints the first training loss the ratio is made of.
            let (first, expected) = report.initial_loss.expect("initial loss");
            assert_eq!(v.value, first / expected, "{v}");
            assert!(
                md.contains(&format!("first training loss {:.5}", Num(first))),
                "{md}"
            );
            continue;
        }
        if let Some(p) = report.params.iter().find(|p| p.label == v.subject) {
            let cells = row(&md, &p.label);
            assert_eq!(v.value, p.median_update_log10, "{v}");
            assert_eq!(cells[2], format!("{:.3}", Num(v.value)), "{v}");
            continue;
        }
        let s = summary(&v.subject);
        let cells = row(&md, &s.label);
        match v.finding {
            Finding::DeadUnits => {
                assert_eq!(v.value, s.final_dead, "{v}");
                assert_eq!(cells[6], pct(v.value), "{v}");
                // The evidence and the table name the same rule.
                assert!(v.evidence.contains(&s.dead_rule.to_string()), "{v}");
                assert_eq!(cells[7].replace("\\|", "|"), s.dead_rule.to_string());
            }
            Finding::CollapsingWithDepth | Finding::ExplodingWithDepth => {
                assert_eq!(v.value, s.first_std / reference, "{v}");
                assert_eq!(cells[2], Num(s.first_std).to_string(), "{v}");
            }
            Finding::ExplodingOverTime => {
                assert_eq!(v.value, s.peak_std.0 / s.start_std, "{v}");
                assert_eq!(cells[3], Num(s.start_std).to_string(), "{v}");
                assert!(cells[4].starts_with(&Num(s.peak_std.0).to_string()), "{v}");
            }
            Finding::CollapsingOverTime => {
                assert_eq!(v.value, s.final_std / s.peak_std.0, "{v}");
                assert_eq!(cells[5], Num(s.final_std).to_string(), "{v}");
            }
            Finding::Saturated => {
                let shown = cells[8];
                assert!(shown.contains(&pct(v.value)), "{v}: {shown}");
            }
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    for finding in [
        Finding::DeadUnits,
        Finding::CollapsingWithDepth,
        Finding::ExplodingWithDepth,
        Finding::ExplodingOverTime,
        Finding::CollapsingOverTime,
        Finding::Saturated,
        Finding::InitialLoss,
        Finding::SlowUpdates,
        Finding::FastUpdates,
    ] {
        assert!(seen.contains(&finding), "{finding:?} not triggered:\n{md}");
    }
    // Both the ReLU and the GeneralRelu are judged dead by their own rule.
    for label in ["1 (ReLU)", "2 (GeneralRelu)"] {
        assert!(
            report
                .verdicts_for(label)
                .any(|v| v.finding == Finding::DeadUnits),
            "{label} not flagged:\n{md}"
        );
    }
}

/// Whatever the dead fraction, the table's cell and the verdict agree: a layer shown
/// above the threshold has the verdict, one below has none.
#[test]
fn a_layer_the_table_shows_dead_gets_a_verdict_and_only_then() {
    for dead in [0.0, 0.5, 0.69, 0.85, 0.899, 0.901, 0.93, 0.999, 1.0] {
        let mut acts = ActivationLog::new(ActivationConfig::relu());
        acts.layers = vec![layer("0", "ReLU", relu_rule(), 0, 8, 5.0, |_| {
            (1.0, dead, 0.0)
        })];
        let log = TrainingLog {
            activations: Some(acts),
            ..TrainingLog::default()
        };
        let report = log.health(&HealthConfig::default());
        let s = &report.layers[0];
        let flagged = report.has(Finding::DeadUnits);
        assert_eq!(
            flagged,
            s.final_dead > report.config.thresholds.dead_fraction,
            "{dead}"
        );
        assert_eq!(
            row(&report.to_markdown(&[]), &s.label)[6],
            pct(dead),
            "{dead}"
        );
    }
}

/// The recorder measures each layer by its kind's rule: a ReLU's dead fraction is
/// `|x| < 0.5`, a GeneralRelu(0.1, 0.4)'s is `-0.9 <= x < 0.1`, a conv's `|x| < 1e-3`,
/// and the dead chart's data is that same fraction.
#[test]
fn the_recorder_uses_one_rule_per_activation_kind() -> Result<(), Box<dyn std::error::Error>> {
    use autograd::Var;
    use nn::hooks::ModuleFilter;
    use nn::layers::{GeneralRelu, Relu, Sequential};
    use nn::Module;
    use tensor::{Device, Tensor};
    let values: Vec<f32> = vec![-2.0, -1.0, -0.3, 0.0, 0.2, 0.45, 0.6, 3.0];
    let x = Var::constant(Tensor::from_vec(values.clone(), [1, 8], &Device::Cpu)?);
    for (module, floor) in [
        (Box::new(Relu::new()) as Box<dyn Module>, 0.0),
        (Box::new(GeneralRelu::new(Some(0.1), 0.4, None)?), -0.4),
    ] {
        let kind = module.kind();
        let model = Sequential::new(vec![module]);
        let stats = ActivationStats::watch(
            &model,
            &ModuleFilter::kinds(&[kind]),
            ActivationConfig::relu(),
        )?;
        let out = model.forward(&x)?;
        let log = stats.log();
        let layer = &log.layers[0];
        let rule = layer.dead_rule;
        assert_eq!(rule, DeadRule::Band { floor, width: 0.5 }, "{kind}");
        let y = out.tensor().to_vec_f64()?;
        let want = y.iter().filter(|&&v| rule.is_dead(v)).count() as f64 / y.len() as f64;
        let got = layer.records[0].dead_fraction();
        assert!(
            (got - want).abs() < 1e-12,
            "{kind}: {got} vs {want} from {y:?}"
        );
        assert!(want > 0.0 && want < 1.0, "{kind}: a test that can tell");
    }
    Ok(())
}
