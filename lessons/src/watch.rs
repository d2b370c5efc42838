//! Training a [`Learner`] while watching it: activation statistics on chosen layers,
//! the batch losses, an optional cap on the batches, and afterwards the figures, the
//! health report and the numbers of one summary row.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use diagnostics::activations::{ActivationConfig, ActivationRecord, ActivationStats, Pass};
use diagnostics::health::{HealthConfig, HealthReport};
use diagnostics::losses::LossLog;
use diagnostics::TrainingLog;
use nn::hooks::ModuleFilter;
use train::{Event, Interrupt, Learner, Phase};

use crate::Result;

/// What to watch and how long to train.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Epochs to fit.
    pub epochs: usize,
    /// Stop each training (and validation) phase after this many batches.
    pub max_batches: Option<usize>,
    /// Module kinds whose outputs are recorded (e.g. `["Conv2d", "ReLU"]`).
    pub kinds: Vec<&'static str>,
    /// The activation recorder's settings.
    pub activations: ActivationConfig,
}

/// What one watched run produced.
#[derive(Debug)]
pub struct Watched {
    /// The report of the fit, or the error that stopped it (e.g. a non-finite loss).
    pub outcome: std::result::Result<train::FitReport, train::TrainError>,
    /// Everything recorded, also for a run that failed part-way.
    pub log: TrainingLog,
    /// Wall-clock seconds of the fit (the only number that depends on time).
    pub seconds: f64,
    /// Whether an interrupt stopped the fit at a batch boundary.
    interrupted: bool,
}

impl Watched {
    /// Whether the fit stopped on a NaN or infinite loss: a result of the experiment
    /// (the net diverged), not a failure of the program.
    pub fn diverged(&self) -> bool {
        matches!(self.outcome, Err(train::TrainError::NonFiniteLoss { .. }))
    }

    /// Whether the fit was stopped by Ctrl-C or `SIGTERM` (see [`crate::cli::interrupt`]).
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Mean training loss of the last epoch.
    pub fn train_loss(&self) -> Option<f64> {
        let report = self.outcome.as_ref().ok()?;
        report.last(Phase::Train).map(|m| m.loss)
    }

    /// Validation loss and accuracy of the last epoch.
    pub fn valid(&self) -> Option<(f64, Option<f64>)> {
        let report = self.outcome.as_ref().ok()?;
        report.last(Phase::Validate).map(|m| (m.loss, m.accuracy))
    }

    /// Per watched layer: its label and the mean dead fraction over the last quarter
    /// of its training calls (the fastai dead chart's final level), each record
    /// weighted by the calls it stands for in a folded log.
    pub fn dead_fractions(&self) -> Vec<(String, f64)> {
        let Some(acts) = &self.log.activations else {
            return Vec::new();
        };
        acts.layers
            .iter()
            .map(|layer| {
                let dead = layer.final_mean(Pass::Train, 0.25, ActivationRecord::dead_fraction);
                (layer.label(), dead)
            })
            .collect()
    }
}

/// Fits `learn` for `opts.epochs` with an [`ActivationStats`] on the modules of
/// `opts.kinds` and a loss recorder, honouring `opts.max_batches`. A training error
/// (a NaN loss, a failing layer) is returned inside [`Watched::outcome`], with what
/// was recorded up to it. An interrupt ([`crate::cli::interrupt::requested`]) cancels
/// the fit at the next batch boundary, and [`Watched::interrupted`] says so.
///
/// # Errors
/// Only when the recorder cannot be attached (no module of those kinds).
pub fn fit_watched(learn: &mut Learner, opts: &WatchOptions) -> Result<Watched> {
    let filter = ModuleFilter::kinds(&opts.kinds);
    let stats = ActivationStats::watch(&*learn.model, &filter, opts.activations.clone())
        .map_err(|e| format!("attaching the activation recorder: {e}"))?;
    let losses = Rc::new(RefCell::new(LossLog::new()));
    let cap = opts.max_batches;
    let sink = losses.clone();
    learn.add_callback(
        move |event: Event, learn: &mut Learner| -> std::result::Result<(), Interrupt> {
            match event {
                Event::AfterLoss if learn.training => {
                    if let Some(loss) = &learn.loss {
                        let v = scalar(loss.tensor()).unwrap_or(f64::NAN);
                        sink.borrow_mut().push_train(learn.step, v);
                    }
                }
                Event::AfterValidate => {
                    let m = learn.phase_metrics();
                    if m.batches > 0 {
                        sink.borrow_mut().push_valid(learn.step, m.loss);
                    }
                }
                Event::AfterBatch => {
                    if crate::cli::interrupt::requested() {
                        return Err(Interrupt::CancelFit);
                    }
                    if let Some(cap) = cap {
                        if learn.iter + 1 >= cap {
                            return Err(if learn.training {
                                Interrupt::CancelTrain
                            } else {
                                Interrupt::CancelValidate
                            });
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        },
    );
    let start = Instant::now();
    let outcome = learn.fit(opts.epochs);
    let interrupted = crate::cli::interrupt::requested()
        && matches!(&outcome, Ok(report) if report.fit_cancelled());
    let seconds = start.elapsed().as_secs_f64();
    // The closure (which holds the other handle on the loss log) goes with the
    // callbacks of this run.
    drop(learn.take_callbacks());
    let losses = Rc::try_unwrap(losses)
        .map(RefCell::into_inner)
        .unwrap_or_else(|shared| shared.borrow().clone());
    let activations = stats.log();
    drop(stats);
    Ok(Watched {
        outcome,
        log: TrainingLog {
            activations: Some(activations),
            gradients: None,
            losses,
        },
        seconds,
        interrupted,
    })
}

/// The first element of a tensor as `f64` (a loss).
pub fn scalar(t: &tensor::Tensor) -> Result<f64> {
    let v = t.to_vec_f64()?;
    v.first()
        .copied()
        .ok_or_else(|| "an empty tensor has no scalar value".into())
}

/// Writes a run's figures (the diagnostics crate's plots, the `color_dim` heat map
/// among them) and its health report into `dir` (created); returns the report and
/// the files.
///
/// # Errors
/// A directory, figure or report that cannot be written.
pub fn write_run(
    log: &TrainingLog,
    dir: &Path,
    classes: usize,
) -> Result<(HealthReport, Vec<PathBuf>)> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut files = log
        .write_all_plots(dir)
        .map_err(|e| format!("writing the figures into {}: {e}", dir.display()))?;
    let report = log.health(&HealthConfig::classifier(classes));
    let md = report
        .write_markdown(dir, &files)
        .map_err(|e| format!("writing the health report into {}: {e}", dir.display()))?;
    files.push(md);
    Ok((report, files))
}
