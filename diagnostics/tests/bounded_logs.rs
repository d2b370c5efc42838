//! Bounded logs: however many steps are recorded, each layer, parameter and loss curve
//! keeps at most its capacity of records; the first, the last and the kept (snapshot)
//! records equal what an unbounded log stores; a folded record holds the statistics of
//! the union of the calls it covers; where NaN first appeared survives folding; and the
//! early-abort rule, the figures and the health report read folded logs correctly.

use autograd::Var;
use diagnostics::activations::{
    ActivationConfig, ActivationLog, ActivationRecord, ActivationStats, Pass, Phases,
};
use diagnostics::early_abort::{AbortRule, EarlyAbortConfig};
use diagnostics::gradients::{GradientConfig, GradientLog, GradientRecord, GradientStats};
use diagnostics::health::HealthConfig;
use diagnostics::losses::LossLog;
use diagnostics::Span;
use diagnostics::TrainingLog;
use kernels::cpu::stats::stats;
use nn::hooks::ModuleFilter;
use nn::layers::{Linear, Sequential, Tanh};
use nn::Module;
use tensor::{DType, Device, Tensor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CAPACITY: usize = 64;
const SNAPSHOT: usize = 37;
const KEPT: usize = 150;

fn tanh_mlp() -> Result<Sequential, nn::NnError> {
    let mut rng = nn::init::seeded_rng(3);
    Ok(Sequential::new(vec![
        Box::new(Linear::new(8, 16, true, DType::F32, &mut rng)?),
        Box::new(Tanh::new()),
    ]))
}

/// The input of step `step`: its scale drifts over the run, so records differ, and
/// step `nan_at` (if any) holds a NaN.
fn input(step: usize, nan_at: Option<usize>) -> Result<Var, tensor::TensorError> {
    let mut rng = nn::init::seeded_rng(1000 + step as u64);
    let scale = 0.5 + (step % 97) as f64 / 40.0;
    let x = Tensor::randn([16, 8], 0.0, scale, DType::F32, &Device::Cpu, &mut rng)?;
    if nan_at == Some(step) {
        let mut v = x.to_vec::<f32>()?;
        v[3] = f32::NAN;
        return Ok(Var::constant(Tensor::from_vec(v, [16, 8], &Device::Cpu)?));
    }
    Ok(Var::constant(x))
}

fn config(capacity: usize) -> ActivationConfig {
    ActivationConfig::tanh()
        .phases(Phases::Both)
        .snapshot_at(SNAPSHOT)
        .keep_exact(KEPT)
        .capacity(capacity)
}

/// `steps` training forwards (and a validation forward every 10th) watched by a
/// bounded and an unbounded recorder at once; returns both logs.
fn record_both(
    steps: usize,
    nan_at: Option<usize>,
) -> Result<(ActivationLog, ActivationLog), Box<dyn std::error::Error>> {
    let model = tanh_mlp()?;
    let filter = ModuleFilter::Leaves;
    let bounded = ActivationStats::watch(&model, &filter, config(CAPACITY))?;
    let full = ActivationStats::watch(&model, &filter, config(usize::MAX))?;
    for step in 0..steps {
        for s in [&bounded, &full] {
            s.set_pass(Some(Pass::Train));
        }
        model.forward(&input(step, nan_at)?)?;
        if step % 10 == 9 {
            for s in [&bounded, &full] {
                s.set_pass(Some(Pass::Valid));
            }
            let _guard = autograd::no_grad();
            model.forward(&input(100_000 + step, None)?)?;
        }
    }
    Ok((bounded.log(), full.log()))
}

/// The records of `full` (exact, one per call) merged over `calls`.
fn merged_over(full: &[&ActivationRecord], first: usize, last: usize) -> ActivationRecord {
    let mut parts = full.iter().filter(|r| (first..=last).contains(&r.call));
    let mut merged = (*parts.next().expect("a record in range")).clone();
    for r in parts {
        merged.merge(r);
    }
    merged
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Asserts that `folded` holds the statistics of the union of the exact records of
/// its calls: counts and histograms exactly, moments and fractions within rounding.
fn assert_union(folded: &ActivationRecord, union: &ActivationRecord) {
    assert_eq!(
        (folded.count, folded.non_finite, folded.merged),
        (union.count, union.non_finite, union.merged)
    );
    assert_eq!(
        (&folded.histogram, folded.below, folded.above),
        (&union.histogram, union.below, union.above)
    );
    assert_eq!((folded.min, folded.max), (union.min, union.max));
    assert_eq!(
        (folded.peak_std, folded.peak_call),
        (union.peak_std, union.peak_call)
    );
    for (a, b) in [
        (folded.mean, union.mean),
        (folded.std, union.std),
        (folded.near_zero, union.near_zero),
        (folded.saturated, union.saturated),
    ] {
        assert!(close(a, b), "{folded:?} vs {union:?}");
    }
}

#[test]
fn activation_logs_stay_bounded_and_keep_first_last_and_snapshot_records_exact() -> TestResult {
    for steps in [300, 3000] {
        let (bounded, full) = record_both(steps, None)?;
        for (layer, exact) in bounded.layers.iter().zip(&full.layers) {
            for pass in [Pass::Train, Pass::Valid] {
                let kept: Vec<&ActivationRecord> = layer.records_of(pass).collect();
                let all: Vec<&ActivationRecord> = exact.records_of(pass).collect();
                assert!(kept.len() <= CAPACITY, "{steps} steps: {}", kept.len());
                assert!(all.iter().all(|r| !r.is_folded()));
                // First and last exactly as the unbounded log has them.
                assert_eq!(kept.first(), all.first(), "{steps} {pass:?}");
                assert_eq!(kept.last(), all.last(), "{steps} {pass:?}");
                // Every call covered once, in order; folded records are the union.
                let covered: u64 = kept.iter().map(|r| r.merged).sum();
                assert_eq!(covered, all.len() as u64);
                for pair in kept.windows(2) {
                    assert!(pair[0].last_call < pair[1].call);
                }
                for r in &kept {
                    assert_union(r, &merged_over(&all, r.call, r.last_call));
                }
            }
            // The snapshot call and the kept call are exact records.
            for call in [SNAPSHOT, KEPT] {
                let want = exact.records_of(Pass::Train).find(|r| r.call == call);
                let got = layer.records_of(Pass::Train).find(|r| r.call == call);
                assert_eq!(got, want, "{steps} steps, call {call}");
            }
            assert_eq!(layer.first_non_finite, exact.first_non_finite);
        }
        assert_eq!(bounded.snapshot, full.snapshot);
        let folded = bounded
            .layers
            .iter()
            .flat_map(|l| &l.records)
            .filter(|r| r.is_folded())
            .count();
        assert!(
            folded > 0,
            "{steps} steps should fold with a capacity of {CAPACITY}"
        );
    }
    Ok(())
}

#[test]
fn folding_two_records_gives_the_statistics_of_their_union() -> TestResult {
    let cfg = ActivationConfig::tanh();
    let kcfg = cfg.stats_config();
    let a: Vec<f32> = (0..500).map(|i| ((i as f32) * 0.37).sin() * 0.9).collect();
    let b: Vec<f32> = (0..300)
        .map(|i| 0.2 + ((i as f32) * 0.11).cos() * 1.3)
        .chain([f32::NAN, f32::INFINITY])
        .collect();
    let union: Vec<f32> = a.iter().chain(&b).copied().collect();
    let ra = ActivationRecord::from_stats(4, Pass::Train, &stats(&a, &kcfg)?, &cfg);
    let rb = ActivationRecord::from_stats(5, Pass::Train, &stats(&b, &kcfg)?, &cfg);
    let mut folded = ra.clone();
    folded.merge(&rb);
    let mut want = ActivationRecord::from_stats(4, Pass::Train, &stats(&union, &kcfg)?, &cfg);
    want.last_call = 5;
    want.merged = 2;
    (want.peak_std, want.peak_call) = if ra.std >= rb.std {
        (ra.std, 4)
    } else {
        (rb.std, 5)
    };
    assert_union(&folded, &want);
    assert_eq!(folded.span(), 4..=5);
    assert_eq!(folded.x(), 4.5);
    // And against a direct f64 computation over the finite values.
    let finite: Vec<f64> = union
        .iter()
        .filter(|v| v.is_finite())
        .map(|&v| f64::from(v))
        .collect();
    let n = finite.len() as f64;
    let mean = finite.iter().sum::<f64>() / n;
    let std = (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((folded.mean - mean).abs() < 1e-9 && (folded.std - std).abs() < 1e-9);
    assert_eq!(folded.non_finite, 2);
    Ok(())
}

#[test]
fn the_first_nan_step_survives_folding() -> TestResult {
    let (bounded, full) = record_both(2000, Some(1234))?;
    let event = bounded.first_non_finite.as_ref().ok_or("no NaN recorded")?;
    assert_eq!((event.call, event.pass), (1234, Pass::Train));
    assert_eq!(bounded.first_non_finite, full.first_non_finite);
    assert_eq!(
        bounded.layers[0].first_non_finite,
        Some((Pass::Train, 1234))
    );
    assert!(bounded.layers[0].records.len() <= 2 * CAPACITY);
    // The record holding call 1234 is folded by now, but the report names the call.
    let holder = bounded.layers[0]
        .records_of(Pass::Train)
        .find(|r| r.span().contains(&1234))
        .ok_or("call 1234 not covered")?;
    assert!(holder.is_folded() && holder.non_finite > 0);
    let log = TrainingLog {
        activations: Some(bounded),
        ..TrainingLog::default()
    };
    let report = log.health(&HealthConfig::default());
    assert!(
        report
            .verdicts
            .iter()
            .any(|v| v.evidence.contains("train batch 1234")),
        "{:?}",
        report.verdicts
    );
    Ok(())
}

/// A gradient recorder over `steps` steps whose gradient is NaN at `nan_at`.
fn gradients(
    steps: usize,
    capacity: usize,
    nan_at: usize,
) -> Result<GradientLog, Box<dyn std::error::Error>> {
    let w = Var::parameter(Tensor::from_vec(
        vec![1.0f32, -2.0, 0.5, 3.0, -1.5, 0.25],
        [2, 3],
        &Device::Cpu,
    )?);
    let cfg = GradientConfig {
        histogram_at: Some(SNAPSHOT),
        capacity,
        ..GradientConfig::default()
    };
    let mut gs = GradientStats::new(vec![("w".into(), w.clone())], cfg)?;
    for step in 0..steps {
        let k = (step % 13) as f32 * 0.01 + 0.001;
        let mut g = vec![k, -2.0 * k, 0.5 * k, k * k, -k, 3.0 * k];
        if step == nan_at {
            g[2] = f32::NAN;
        }
        w.set_grad(Some(Tensor::from_vec(g, [2, 3], &Device::Cpu)?));
        gs.record_with_lr(step, 0.1 / (1.0 + step as f64 / 100.0))?;
    }
    Ok(gs.into_log())
}

#[test]
fn gradient_logs_stay_bounded_with_exact_ends_and_histogram_step() -> TestResult {
    for steps in [500, 5000] {
        let bounded = gradients(steps, CAPACITY, 321)?;
        let full = gradients(steps, usize::MAX, 321)?;
        let (p, q) = (&bounded.params[0], &full.params[0]);
        assert!(p.records.len() <= CAPACITY, "{steps}: {}", p.records.len());
        assert_eq!(q.records.len(), steps);
        assert_eq!(p.records.first(), q.records.first());
        assert_eq!(p.records.last(), q.records.last());
        let at = |r: &[GradientRecord]| r.iter().find(|r| r.step == SNAPSHOT).cloned();
        assert_eq!(at(&p.records), at(&q.records));
        assert_eq!(p.histogram, q.histogram);
        assert_eq!(bounded.first_non_finite(), Some((321, "w")));
        assert_eq!(full.first_non_finite(), Some((321, "w")));
        assert_eq!(
            p.records.iter().map(|r| r.merged).sum::<u64>(),
            steps as u64
        );
        // A folded record is the union of its steps.
        for r in p.records.iter().filter(|r| r.is_folded()) {
            let parts: Vec<&GradientRecord> = q
                .records
                .iter()
                .filter(|s| r.span().contains(&s.step))
                .collect();
            let mut want = parts[0].clone();
            for s in &parts[1..] {
                want.merge(s);
            }
            assert_eq!(r.merged, parts.len() as u64);
            for (a, b) in [
                (r.grad_mean, want.grad_mean),
                (r.grad_std, want.grad_std),
                (r.data_std, want.data_std),
                (r.update_data_log10, want.update_data_log10),
            ] {
                assert!(close(a, b), "{r:?} vs {want:?}");
            }
            assert_eq!(r.non_finite, want.non_finite);
        }
    }
    Ok(())
}

#[test]
fn loss_logs_stay_bounded_with_exact_ends_and_first_nan() {
    for steps in [1000usize, 10_000] {
        let mut log = LossLog::with_capacity(CAPACITY);
        log.keep_step(KEPT);
        for step in 0..steps {
            let loss = if step == 777 {
                f64::INFINITY
            } else {
                3.0 / (1.0 + step as f64 / 50.0)
            };
            log.push_train(step, loss);
            if step % 100 == 99 {
                log.push_valid(step + 1, loss);
            }
        }
        assert!(log.train.len() <= CAPACITY && log.valid.len() <= CAPACITY);
        assert_eq!(log.first_train(), Some(3.0));
        let last = log.train.last().copied();
        assert_eq!(last.map(|p| (p.step, p.merged)), Some((steps - 1, 1)));
        assert!(log.train.iter().any(|p| p.step == KEPT && !p.is_folded()));
        assert_eq!(log.first_non_finite(), Some((777, f64::INFINITY)));
        assert_eq!(
            log.train.iter().map(|p| p.merged).sum::<u64>(),
            steps as u64
        );
    }
}

/// Scale of the input of step `step`: steady, a spike (std x 20) from 1500, a
/// collapse (std / 1000) from 1600.
fn spiking_scale(step: usize) -> f32 {
    if step >= 1600 {
        0.001
    } else if step >= 1500 {
        20.0
    } else {
        1.0 + (step % 5) as f32 * 0.05
    }
}

/// Trains nothing: forwards `steps` inputs scaled by `scale` through a bias-free
/// Linear watched with `capacity`, the rule scanning the log after every batch;
/// returns the step the rule fired at.
fn fire_step(
    capacity: usize,
    nan_at: Option<usize>,
    scale: fn(usize) -> f32,
) -> Result<Option<usize>, Box<dyn std::error::Error>> {
    let mut rng = nn::init::seeded_rng(5);
    let model = Sequential::new(vec![Box::new(Linear::new(
        8,
        16,
        false,
        DType::F32,
        &mut rng,
    )?)]);
    let stats = ActivationStats::watch(
        &model,
        &ModuleFilter::path("0"),
        ActivationConfig::relu().capacity(capacity),
    )?;
    let mut rule = AbortRule::new(EarlyAbortConfig::default())?;
    for step in 0..3000 {
        let x = input(step, nan_at)?
            .tensor()
            .mul_scalar(f64::from(scale(step)))?;
        model.forward(&Var::constant(x))?;
        if stats.with_log(|log| rule.scan(log).is_some()) {
            assert_eq!(rule.reason().map(|r| r.call), Some(step));
            return Ok(Some(step));
        }
        assert!(stats.with_log(|log| log.layers[0].records.len()) <= capacity);
    }
    Ok(None)
}

#[test]
fn the_early_abort_rule_reads_a_folding_log() -> TestResult {
    // A spike then a collapse long after the log started folding: the rule fires at
    // the collapse, as it does on an unbounded log.
    assert_eq!(fire_step(usize::MAX, None, spiking_scale)?, Some(1600));
    assert_eq!(fire_step(16, None, spiking_scale)?, Some(1600));
    // A NaN fires it at its step.
    assert_eq!(fire_step(16, Some(2500), |_| 1.0)?, Some(2500));
    assert_eq!(fire_step(16, None, |_| 1.0)?, None);
    Ok(())
}

#[test]
fn figures_and_the_report_read_folded_logs() -> TestResult {
    let (bounded, full) = record_both(3000, None)?;
    // The heat map's columns are of equal width and cover the whole run.
    let layer = &bounded.layers[1];
    let columns = layer
        .histogram_columns(Pass::Train, bounded.config.every)
        .ok_or("no columns")?;
    assert!(columns.width.is_power_of_two() && columns.width > 1);
    assert_eq!(columns.first_call, 0);
    assert_eq!(columns.histograms.len(), 2999 / columns.width + 1);
    let exact = full.layers[1]
        .histogram_columns(Pass::Train, 1)
        .ok_or("no columns")?;
    assert_eq!((exact.width, exact.histograms.len()), (1, 3000));
    let figure = diagnostics::figures::color_dim(&bounded).ok_or("no color_dim")?;
    let dir = std::env::temp_dir().join(format!("diagnostics-bounded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    figure.save_png(dir.join("color_dim.png"), 600, 400)?;
    let log = TrainingLog {
        activations: Some(bounded),
        ..TrainingLog::default()
    };
    let files = log.write_all_plots(&dir)?;
    assert!(files.iter().any(|f| f.ends_with("activation_stds.png")));
    std::fs::remove_dir_all(&dir)?;

    // The report of the folded log agrees with the unbounded one where it is exact,
    // and closely elsewhere.
    let reference = TrainingLog {
        activations: Some(full),
        ..TrainingLog::default()
    };
    let (a, b) = (
        log.health(&HealthConfig::default()),
        reference.health(&HealthConfig::default()),
    );
    assert_eq!(a.layers.len(), b.layers.len());
    for (s, t) in a.layers.iter().zip(&b.layers) {
        assert_eq!(s.records, t.records);
        assert_eq!((s.first_std, s.peak_std), (t.first_std, t.peak_std));
        assert_eq!(s.first_saturated, t.first_saturated);
        assert!(
            (s.final_saturated - t.final_saturated).abs() < 0.02,
            "{s:?} {t:?}"
        );
        assert!((s.final_std / t.final_std - 1.0).abs() < 0.1, "{s:?} {t:?}");
    }
    let findings = |r: &diagnostics::health::HealthReport| {
        r.verdicts.iter().map(|v| v.finding).collect::<Vec<_>>()
    };
    assert_eq!(findings(&a), findings(&b));
    Ok(())
}
