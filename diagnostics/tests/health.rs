//! The health report on real training runs (the embedded Fashion-MNIST subset): it
//! flags the two broken networks of the lessons and leaves healthy ones alone.

mod common;

use common::{
    broken_tanh_mlp, healthy_tanh_mlp, lesson_cnn, top_level, train_with_diagnostics, Init,
    TestResult,
};
use diagnostics::activations::{ActivationConfig, ActivationStats};
use diagnostics::health::{Finding, HealthConfig, HealthReport, Severity, Thresholds};
use diagnostics::losses::LossLog;
use diagnostics::TrainingLog;
use nn::hooks::ModuleFilter;

fn verdicts(report: &HealthReport) -> String {
    report.verdicts.iter().map(|v| format!("\n  {v}")).collect()
}

fn tanh_layers() -> ModuleFilter {
    ModuleFilter::kinds(&["Tanh"])
}

#[test]
fn a_deep_tanh_mlp_with_unscaled_weights_is_flagged_saturated() -> TestResult {
    let (log, _) = train_with_diagnostics(
        broken_tanh_mlp(0)?,
        true,
        0.03,
        1,
        tanh_layers(),
        ActivationConfig::tanh(),
        Vec::new(),
    )?;
    let report = log.health(&HealthConfig::classifier(10));
    // Every tanh layer is saturated.
    for path in ["1 ", "3 ", "5 ", "7 ", "9 "] {
        let v = report
            .verdicts_for(path)
            .find(|v| v.finding == Finding::Saturated)
            .ok_or_else(|| format!("layer {path}not flagged saturated:{}", verdicts(&report)))?;
        assert!(v.value > 0.5 && v.threshold == 0.25, "{v}");
        assert!(v.evidence.contains("|x| > 0.97"), "{v}");
        assert!(v.remedy().contains("5/3"), "{v}");
    }
    // The logits are huge, so the first loss is far above ln(10).
    let v = report
        .verdicts_for("loss")
        .find(|v| v.finding == Finding::InitialLoss)
        .ok_or_else(|| format!("initial loss not flagged:{}", verdicts(&report)))?;
    assert!(v.value > 2.0, "{v}");
    let (first, expected) = report.initial_loss.ok_or("no initial loss")?;
    assert!(first > 2.0 * expected && (expected - 10f64.ln()).abs() < 1e-12);
    assert!(!report.is_healthy());
    Ok(())
}

#[test]
fn a_relu_cnn_at_a_too_high_learning_rate_is_flagged() -> TestResult {
    let (log, _) = train_with_diagnostics(
        lesson_cnn(Init::Default, 0)?,
        false,
        // Chaotic territory, where the last bits of every sum decide which batch blows
        // up: 1.0 kills the units without reaching NaN on the trajectories of all three
        // SIMD levels (AVX-512, AVX2, portable); 1.5 reached NaN in the second epoch
        // once the conv bias gradient was summed in another order, 2.0 in the first.
        1.0,
        2,
        top_level(),
        ActivationConfig::relu(),
        Vec::new(),
    )?;
    let report = log.health(&HealthConfig::classifier(10));
    let all = verdicts(&report);
    for finding in [
        Finding::DeadUnits,
        Finding::ExplodingOverTime,
        Finding::CollapsingOverTime,
        Finding::CollapsingWithDepth,
    ] {
        assert!(report.has(finding), "{finding:?} missing:{all}");
    }
    let dead = report
        .verdicts
        .iter()
        .find(|v| v.finding == Finding::DeadUnits)
        .ok_or("no dead verdict")?;
    assert!(
        dead.value > 0.9 && dead.evidence.contains("outputs dead (|x| < 0.5)"),
        "{dead}"
    );
    assert!(
        report
            .verdicts
            .iter()
            .all(|v| v.severity == Severity::Warning),
        "{all}"
    );
    // The markdown names the layer, the figure and the remedy.
    let md = report.to_markdown(&[]);
    assert!(
        md.contains("dead units")
            && md.contains("GeneralRelu")
            && md.contains("| 1 (Sequential) |"),
        "{md}"
    );
    Ok(())
}

#[test]
fn a_kaiming_cnn_at_a_modest_learning_rate_gets_no_warnings() -> TestResult {
    let (log, _) = train_with_diagnostics(
        lesson_cnn(Init::Kaiming, 0)?,
        false,
        0.02,
        2,
        top_level(),
        ActivationConfig::relu(),
        Vec::new(),
    )?;
    let report = log.health(&HealthConfig::classifier(10));
    assert!(
        report.is_healthy(),
        "unexpected verdicts:{}",
        verdicts(&report)
    );
    assert_eq!(report.layers.len(), 6);
    assert_eq!(report.params.len(), 5);
    assert!(report.to_markdown(&[]).contains("**Healthy**"));

    // The same run judged by stricter thresholds is not healthy: the thresholds decide.
    let strict = HealthConfig {
        classes: Some(10),
        thresholds: Thresholds {
            dead_fraction: 0.3,
            update_high_log10: -3.0,
            ..Thresholds::default()
        },
    };
    let report = log.health(&strict);
    assert!(report.has(Finding::DeadUnits) && report.has(Finding::FastUpdates));
    Ok(())
}

#[test]
fn a_tanh_mlp_scaled_by_its_gain_gets_no_warnings() -> TestResult {
    let (log, _) = train_with_diagnostics(
        healthy_tanh_mlp(0)?,
        true,
        0.03,
        1,
        tanh_layers(),
        ActivationConfig::tanh(),
        Vec::new(),
    )?;
    let report = log.health(&HealthConfig::classifier(10));
    assert!(
        report.is_healthy(),
        "unexpected verdicts:{}",
        verdicts(&report)
    );
    assert!(report
        .layers
        .iter()
        .all(|l| l.bounded && l.final_saturated < 0.25));
    Ok(())
}

#[test]
fn nan_is_critical_and_names_the_first_layer_and_batch() -> TestResult {
    use autograd::Var;
    use nn::layers::{Linear, Sequential, Tanh};
    use nn::Module;
    use tensor::{DType, Device, Tensor};

    let mut rng = nn::init::seeded_rng(1);
    let model = Sequential::new(vec![
        Box::new(Linear::new(4, 8, true, DType::F32, &mut rng)?),
        Box::new(Tanh::new()),
        Box::new(Linear::new(8, 3, true, DType::F32, &mut rng)?),
    ]);
    let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, ActivationConfig::tanh())?;
    let mut losses = LossLog::new();
    for step in 0..4 {
        let mut x = vec![0.5f32; 8];
        if step == 2 {
            x[1] = f32::NAN;
        }
        let out = model.forward(&Var::parameter(Tensor::from_vec(x, [2, 4], &Device::Cpu)?))?;
        losses.push_train(step, out.tensor().mean_all()?.item()?);
    }
    let log = TrainingLog {
        activations: Some(stats.log()),
        gradients: None,
        losses,
    };
    let report = log.health(&HealthConfig::classifier(3));
    let first = &report.verdicts[0];
    assert_eq!(
        (first.finding, first.severity),
        (Finding::NonFinite, Severity::Critical)
    );
    assert_eq!(first.subject, "0 (Linear)");
    assert!(first.evidence.contains("train batch 2"), "{first}");
    let loss = report
        .verdicts_for("loss")
        .find(|v| v.finding == Finding::NonFinite)
        .ok_or_else(|| format!("loss NaN not reported:{}", verdicts(&report)))?;
    assert!(loss.evidence.contains("step 2"), "{loss}");
    Ok(())
}

#[test]
fn the_report_is_written_beside_the_figures() -> TestResult {
    let (log, _) = train_with_diagnostics(
        healthy_tanh_mlp(1)?,
        true,
        0.03,
        1,
        tanh_layers(),
        ActivationConfig::tanh().snapshot_at(0),
        Vec::new(),
    )?;
    let dir = std::env::temp_dir().join(format!("diagnostics-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (report, files) = log.write_all(&dir, &HealthConfig::classifier(10))?;
    let md_path = files.last().ok_or("no files")?;
    assert_eq!(md_path, &dir.join("health.md"));
    let md = std::fs::read_to_string(md_path)?;
    assert_eq!(md, report.to_markdown(&files[..files.len() - 1]));
    assert!(
        md.contains("[activation_stds.png](activation_stds.png)"),
        "{md}"
    );
    assert!(md.contains("| 9 (Tanh) | 20 |"), "{md}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
