//! The learner adapters: what Diagnostics records over a fit, and EarlyAbort stopping
//! a run that blows up while leaving a healthy one alone.

mod common;

use common::{learner, lesson_cnn, top_level, Init, TestResult};
use diagnostics::activations::{ActivationConfig, Pass, Phases};
use diagnostics::callbacks::{Diagnostics, EarlyAbort};
use diagnostics::early_abort::{AbortCause, EarlyAbortConfig};
use diagnostics::gradients::GradientConfig;
use nn::hooks::ModuleFilter;

#[test]
fn diagnostics_records_every_batch_gradient_and_loss_of_a_fit() -> TestResult {
    let config = ActivationConfig::relu().phases(Phases::Both).snapshot_at(3);
    let diagnostics =
        Diagnostics::new(top_level(), config)?.with_gradients(GradientConfig::default())?;
    let mut learn = learner(lesson_cnn(Init::Kaiming, 2)?, false, 0.02)?.with_callback(diagnostics);
    learn.fit(2)?;
    let log = learn
        .callback::<Diagnostics>()
        .ok_or("callback missing")?
        .log();

    // 5,000 training images in batches of 250: 20 steps per epoch; 1,000 validation
    // images in batches of 500: 2 validation batches per epoch.
    let acts = log.activations.as_ref().ok_or("no activations")?;
    assert_eq!(acts.layers.len(), 6);
    for layer in &acts.layers {
        let train: Vec<usize> = layer.records_of(Pass::Train).map(|r| r.call).collect();
        assert_eq!(train, (0..40).collect::<Vec<_>>(), "{}", layer.path);
        assert_eq!(layer.records_of(Pass::Valid).count(), 4, "{}", layer.path);
    }
    assert_eq!(
        acts.snapshot.as_ref().map(|s| (s.call, s.layers.len())),
        Some((3, 6))
    );
    let steps: Vec<usize> = log.losses.train.iter().map(|p| p.step).collect();
    assert_eq!(steps, (0..40).collect::<Vec<_>>());
    let valid: Vec<usize> = log.losses.valid.iter().map(|p| p.step).collect();
    assert_eq!(valid, [20, 40]);
    let report_loss = learn.report.rows[1].valid.ok_or("no valid row")?.loss;
    assert!((log.losses.valid[1].loss - report_loss).abs() < 1e-9);
    let grads = log.gradients.as_ref().ok_or("no gradients")?;
    assert_eq!(grads.params.len(), 5);
    assert!(grads
        .params
        .iter()
        .all(|p| p.records.len() == 40 && p.records.iter().all(|r| r.lr == 0.02)));

    // The hooks are gone after the fit: the model runs unwatched.
    let model = learn.into_model();
    assert!(nn::module::named_modules_of(&*model)
        .iter()
        .all(|m| m.module.hooks().is_empty()));
    Ok(())
}

#[test]
fn early_abort_stops_a_run_that_blows_up_and_says_why() -> TestResult {
    let diagnostics = Diagnostics::new(top_level(), ActivationConfig::relu())?;
    let abort = EarlyAbort::watching(diagnostics.reader(), EarlyAbortConfig::default())?.quiet();
    let mut learn = learner(lesson_cnn(Init::Default, 0)?, false, 1.5)?
        .with_callback(diagnostics)
        .with_callback(abort);
    learn.fit(2)?;
    let reason = learn
        .callback::<EarlyAbort>()
        .and_then(|a| a.reason())
        .ok_or("the run was not stopped")?
        .clone();
    let log = learn
        .callback::<Diagnostics>()
        .ok_or("callback missing")?
        .log();
    // The run stopped at the batch where the rule fired.
    assert_eq!(log.losses.train.len(), reason.call + 1, "{reason}");
    assert!(reason.call < 40);
    match reason.cause {
        AbortCause::SpikeThenCollapse {
            baseline_std,
            peak_std,
            std,
            ..
        } => {
            assert!(
                peak_std > 5.0 * baseline_std && std < 0.1 * peak_std,
                "{reason}"
            );
        }
        AbortCause::NonFinite { .. } => {
            return Err(format!("expected a spike and collapse: {reason}").into())
        }
    }
    let text = reason.to_string();
    assert!(
        text.contains("spiked") && text.contains("lower the learning rate"),
        "{text}"
    );
    Ok(())
}

#[test]
fn early_abort_with_its_own_hooks_leaves_a_healthy_run_alone() -> TestResult {
    let abort =
        EarlyAbort::new(ModuleFilter::kinds(&["ReLU"]), EarlyAbortConfig::default())?.quiet();
    let mut learn = learner(lesson_cnn(Init::Kaiming, 0)?, false, 0.02)?.with_callback(abort);
    let report = learn.fit(2)?;
    assert!(learn
        .callback::<EarlyAbort>()
        .ok_or("callback missing")?
        .reason()
        .is_none());
    assert_eq!(report.rows.len(), 2, "both epochs ran");
    // Its hooks are removed after the fit.
    let model = learn.into_model();
    assert!(nn::module::named_modules_of(&*model)
        .iter()
        .all(|m| m.module.hooks().is_empty()));
    Ok(())
}

#[test]
fn early_abort_with_its_own_hooks_stops_a_run_that_blows_up() -> TestResult {
    let abort = EarlyAbort::new(top_level(), EarlyAbortConfig::default())?.quiet();
    let mut learn = learner(lesson_cnn(Init::Default, 0)?, false, 1.5)?.with_callback(abort);
    let report = learn.fit(2)?;
    let reason = learn
        .callback::<EarlyAbort>()
        .and_then(|a| a.reason())
        .ok_or("not stopped")?;
    assert!(
        matches!(reason.cause, AbortCause::SpikeThenCollapse { .. }),
        "{reason}"
    );
    assert!(report.rows.len() <= 2);
    Ok(())
}

#[test]
fn a_run_stopped_by_a_nan_loss_keeps_its_log_and_is_reported_critical() -> TestResult {
    use diagnostics::health::{Finding, HealthConfig, Severity};

    let diagnostics = Diagnostics::new(top_level(), ActivationConfig::relu())?;
    let mut learn = learner(lesson_cnn(Init::Kaiming, 0)?, false, 50.0)?.with_callback(diagnostics);
    let err = learn
        .fit(1)
        .err()
        .ok_or("an lr of 50 should reach a NaN loss")?;
    assert!(err.to_string().contains("non-finite loss"), "{err}");
    let diagnostics = learn
        .callback_mut::<Diagnostics>()
        .ok_or("callback missing")?;
    // No after_fit fired: the hooks are still there until detached.
    assert!(diagnostics.activations().is_attached());
    diagnostics.detach();
    assert!(!diagnostics.activations().is_attached());
    let log = diagnostics.log();
    let report = log.health(&HealthConfig::classifier(10));
    let first = report.verdicts.first().ok_or("no verdicts")?;
    assert_eq!(
        (first.finding, first.severity),
        (Finding::NonFinite, Severity::Critical)
    );
    let (step, _) = log.losses.first_non_finite().ok_or("no NaN loss logged")?;
    assert_eq!(
        step + 1,
        log.losses.train.len(),
        "the NaN loss is the last one logged"
    );
    Ok(())
}
