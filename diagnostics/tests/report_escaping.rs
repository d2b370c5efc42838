//! The health report is data, not code: names it did not write itself (module paths
//! and kinds, parameter names) are escaped, so a layer named `<script>` renders as
//! text and a `|` in a name cannot break a table.

use autograd::Var;
use diagnostics::activations::{ActivationConfig, ActivationStats};
use diagnostics::health::HealthConfig;
use diagnostics::losses::LossLog;
use diagnostics::TrainingLog;
use nn::hooks::ModuleFilter;
use nn::layers::{Lambda, Sequential};
use tensor::{DType, Device, Tensor};

/// A layer kind a user could write: markup, a table separator and emphasis.
const HOSTILE: &str = "<script>alert(1)</script>|dead_*layer*";

#[test]
fn a_layer_named_script_is_escaped_in_the_report() {
    // A layer whose output is all zeros: dead, so it also gets a verdict naming it.
    let dead = Lambda::new(HOSTILE, |x: &Var| Ok(x.mul_scalar(0.0)?));
    let model = Sequential::new(vec![Box::new(dead)]);
    let stats = ActivationStats::watch(
        &model,
        &ModuleFilter::kinds(&[HOSTILE]),
        ActivationConfig::relu(),
    )
    .unwrap();
    let x = Tensor::ones([8, 4], DType::F32, &Device::Cpu).unwrap();
    for _ in 0..20 {
        nn::Module::forward(&model, &Var::constant(x.clone())).unwrap();
    }
    let mut losses = LossLog::new();
    for step in 0..20 {
        losses.push_train(step, 1.0);
    }
    let log = TrainingLog {
        activations: Some(stats.log()),
        gradients: None,
        losses,
    };
    let report = log.health(&HealthConfig::default());
    assert!(
        report.verdicts.iter().any(|v| v.subject.contains(HOSTILE)),
        "the dead layer got no verdict: {:?}",
        report.verdicts
    );
    let md = report.to_markdown(&[]);
    assert!(!md.contains("<script>"), "raw markup in the report:\n{md}");
    assert!(md.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{md}");
    // The table row of the layer has as many cell separators as the header.
    let header = md
        .lines()
        .find(|l| l.starts_with("| layer |"))
        .unwrap_or_else(|| panic!("no layer table:\n{md}"));
    let row = md
        .lines()
        .find(|l| l.starts_with("| ") && l.contains("&lt;script&gt;"))
        .unwrap_or_else(|| panic!("no table row for the layer:\n{md}"));
    let unescaped_bars = row.matches('|').count() - row.matches("\\|").count();
    let header_bars = header.matches('|').count() - header.matches("\\|").count();
    assert_eq!(unescaped_bars, header_bars, "{header}\n{row}");
}
