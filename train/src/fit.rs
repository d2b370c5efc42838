//! The training loop: [`Learner::fit`], its events, cancellation and the built-in
//! non-finite-loss check.
//!
//! Each scope (fit, epoch, phase, batch) runs as `before_x`, its body, then `after_x`;
//! a cancel of that scope fires `after_cancel_x` before `after_x` (see
//! [`Interrupt`]). Callbacks are taken out of the learner for the run, so each one
//! gets `&mut Learner`, and are put back when it ends, whether it ends well or with an
//! error.
//!
//! A training batch is: `before_batch`; forward (`after_pred`); loss (`after_loss`);
//! the finite check; metrics; backward (`after_backward`); optimiser step
//! (`after_step`); `after_batch`. Gradients are cleared when a training batch ends,
//! however it ended, so a cancelled batch never leaks gradients into the next one.
//! A validation batch stops after the metrics, under `no_grad`, with the model in
//! evaluation mode.

use std::time::Instant;

use autograd::Var;

use crate::callback::{Callback, Interrupt};
use crate::error::{Result, TrainError};
use crate::event::{Event, Phase, Scope};
use crate::learner::{parameters, Learner};
use crate::metrics::{Accumulator, Cancellation, EpochRow, FitReport};

/// Why a scope is being left early.
enum Unwind {
    /// A callback cancelled `scope` while handling `event`.
    Cancel { scope: Scope, event: Event },
    /// The run stops with an error.
    Error(TrainError),
}

impl From<TrainError> for Unwind {
    fn from(e: TrainError) -> Self {
        Unwind::Error(e)
    }
}

type Flow = std::result::Result<(), Unwind>;

/// The events of one scope: before, after, after-cancel.
struct ScopeEvents {
    scope: Scope,
    before: Event,
    after: Event,
    cancelled: Event,
}

const FIT: ScopeEvents = ScopeEvents {
    scope: Scope::Fit,
    before: Event::BeforeFit,
    after: Event::AfterFit,
    cancelled: Event::AfterCancelFit,
};
const EPOCH: ScopeEvents = ScopeEvents {
    scope: Scope::Epoch,
    before: Event::BeforeEpoch,
    after: Event::AfterEpoch,
    cancelled: Event::AfterCancelEpoch,
};
const TRAIN: ScopeEvents = ScopeEvents {
    scope: Scope::Train,
    before: Event::BeforeTrain,
    after: Event::AfterTrain,
    cancelled: Event::AfterCancelTrain,
};
const VALIDATE: ScopeEvents = ScopeEvents {
    scope: Scope::Validate,
    before: Event::BeforeValidate,
    after: Event::AfterValidate,
    cancelled: Event::AfterCancelValidate,
};
const BATCH: ScopeEvents = ScopeEvents {
    scope: Scope::Batch,
    before: Event::BeforeBatch,
    after: Event::AfterBatch,
    cancelled: Event::AfterCancelBatch,
};

impl Learner {
    /// Trains for `n_epochs` epochs, each a training phase over `train_dl` then a
    /// validation phase over `valid_dl`, firing every [`Event`] to the callbacks in
    /// [`order`](Callback::order). Returns the per-epoch loss and accuracy.
    ///
    /// The counters (`epoch`, `step`, ...) start from zero at every call; the model
    /// and optimiser carry on from where they are.
    ///
    /// # Errors
    /// - [`TrainError::NonFiniteLoss`] when a loss is NaN or infinite (built in: the
    ///   run stops before backward, with the epoch and batch);
    /// - [`TrainError::Step`], [`TrainError::LossNotScalar`] and [`TrainError::Data`]
    ///   when the model, the loss, backward, the optimiser or a loader fails;
    /// - [`TrainError::Callback`] and [`TrainError::MisplacedCancel`] from callbacks;
    /// - [`TrainError::Config`] when the training loader yields no batch.
    ///
    /// An error stops the run at once: no further event fires. The callbacks are back
    /// in the learner either way. A non-finite loss is checked after `after_loss`,
    /// so callbacks see it there first (to record which layer went wrong, or to
    /// cancel the batch or the run themselves, as the LR finder does).
    pub fn fit(&mut self, n_epochs: usize) -> Result<FitReport> {
        let n_train = self.train_dl.num_batches();
        if n_train == 0 {
            return Err(TrainError::config(
                "Learner::fit",
                format!(
                    "the training loader yields no batch ({} examples, batch size {}, \
                     drop_last set)",
                    self.train_dl.num_examples(),
                    self.train_dl.batch_size()
                ),
            ));
        }
        let _flush = self
            .flush_denormals
            .then(kernels::cpu::denormals::FlushDenormals::enable);
        let mut callbacks = std::mem::take(&mut self.callbacks);
        callbacks.sort_by_key(|c| c.order());
        self.n_epochs = n_epochs;
        self.total_steps = n_epochs * n_train;
        self.step = 0;
        self.epoch = 0;
        self.iter = 0;
        self.report = FitReport::default();
        let started = Instant::now();

        let result = self.scoped(&mut callbacks, &FIT, |learn, cbs| {
            for epoch in 0..n_epochs {
                learn.epoch = epoch;
                learn.report.rows.push(EpochRow {
                    epoch,
                    ..EpochRow::default()
                });
                learn.scoped(cbs, &EPOCH, Learner::run_epoch)?;
            }
            Ok(())
        });

        self.report.seconds = started.elapsed().as_secs_f64();
        self.phase = None;
        self.preds = None;
        self.loss = None;
        self.xb = None;
        self.yb = None;
        // Callbacks added during the run join the others in their order.
        let added = std::mem::replace(&mut self.callbacks, callbacks);
        self.add_callbacks(added);
        match result {
            Err(Unwind::Error(e)) => Err(e),
            // A cancel always stops at its scope, and every open scope is inside the
            // fit, so nothing else can arrive here.
            Ok(()) | Err(Unwind::Cancel { .. }) => Ok(self.report.clone()),
        }
    }

    /// One epoch: the training phase, then (if the loader has batches) validation.
    fn run_epoch(&mut self, cbs: &mut [Box<dyn Callback>]) -> Flow {
        self.run_phase(cbs, Phase::Train)?;
        if self.valid_dl.num_batches() > 0 {
            self.run_phase(cbs, Phase::Validate)?;
        }
        Ok(())
    }

    /// One phase: mode, counters and metrics around the batches.
    fn run_phase(&mut self, cbs: &mut [Box<dyn Callback>], phase: Phase) -> Flow {
        let training = phase == Phase::Train;
        self.phase = Some(phase);
        self.training = training;
        nn::module::set_training_of(&*self.model, training);
        let loader = if training {
            self.train_dl.clone()
        } else {
            self.valid_dl.clone()
        };
        self.n_iters = loader.num_batches();
        self.iter = 0;
        self.running = Accumulator::start();
        let events = if training { &TRAIN } else { &VALIDATE };
        let _no_grad = (!training).then(autograd::no_grad);

        let result = self.scoped(cbs, events, |learn, cbs| {
            for (i, batch) in loader.epoch(learn.epoch as u64).enumerate() {
                learn.iter = i;
                let (x, y) = batch.map_err(|source| TrainError::Data {
                    epoch: learn.epoch,
                    phase,
                    batch: i,
                    source: Box::new(source),
                })?;
                learn.xb = Some(x);
                learn.yb = Some(y);
                learn.preds = None;
                learn.loss = None;
                let outcome = learn.scoped(cbs, &BATCH, Learner::run_batch);
                if training {
                    learn.clear_gradients();
                    learn.step += 1;
                }
                outcome?;
            }
            learn.running.stop();
            Ok(())
        });
        // Record the phase unless the run is failing (a cancelled phase keeps the
        // batches it finished).
        if !matches!(result, Err(Unwind::Error(_))) {
            self.running.stop();
            let metrics = self.running.metrics();
            if let Some(row) = self.report.rows.last_mut() {
                match phase {
                    Phase::Train => row.train = Some(metrics),
                    Phase::Validate => row.valid = Some(metrics),
                }
            }
        }
        self.phase = None;
        result
    }

    /// The body of one batch (between `before_batch` and `after_batch`).
    fn run_batch(&mut self, cbs: &mut [Box<dyn Callback>]) -> Flow {
        let phase = if self.training {
            Phase::Train
        } else {
            Phase::Validate
        };
        let (epoch, batch) = (self.epoch, self.iter);
        let step_error = |during: &'static str| {
            move |source: nn::NnError| TrainError::Step {
                during,
                epoch,
                phase,
                batch,
                source: Box::new(source),
            }
        };
        let no_batch = || {
            TrainError::config(
                "Learner::fit",
                format!("a callback removed the batch (xb or yb) at epoch {epoch}, {phase} batch {batch}"),
            )
        };

        let x = self.xb.clone().ok_or_else(no_batch)?;
        let preds = self
            .model
            .forward(&Var::constant(x))
            .map_err(step_error("forward"))?;
        self.preds = Some(preds);
        self.fire(cbs, Event::AfterPred)?;

        let (Some(preds), Some(y)) = (self.preds.as_ref(), self.yb.as_ref()) else {
            return Err(no_batch().into());
        };
        let loss = (self.loss_fn)(preds, y).map_err(step_error("loss"))?;
        self.loss = Some(loss);
        self.fire(cbs, Event::AfterLoss)?;

        let Some(loss) = self.loss.clone() else {
            return Err(no_batch().into());
        };
        let value = self.check_loss(&loss, phase)?;
        self.running
            .add(value, self.preds.as_ref(), self.yb.as_ref());
        if !self.training {
            return Ok(());
        }

        loss.backward()
            .map_err(|e| step_error("backward")(e.into()))?;
        self.fire(cbs, Event::AfterBackward)?;
        self.optimizer
            .step()
            .map_err(step_error("optimizer step"))?;
        self.fire(cbs, Event::AfterStep)?;
        Ok(())
    }

    /// The loss as a number, if it is a finite single value.
    fn check_loss(&self, loss: &Var, phase: Phase) -> std::result::Result<f64, TrainError> {
        let (epoch, batch) = (self.epoch, self.iter);
        if loss.tensor().elem_count() != 1 {
            return Err(TrainError::LossNotScalar {
                epoch,
                phase,
                batch,
                shape: loss.dims().to_vec(),
            });
        }
        let value = loss.tensor().item().map_err(|e| TrainError::Step {
            during: "reading the loss",
            epoch,
            phase,
            batch,
            source: Box::new(e.into()),
        })?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                epoch,
                phase,
                batch,
                step: self.step,
                value,
            });
        }
        Ok(value)
    }

    /// Clears the gradients of the optimiser's and the model's parameters.
    fn clear_gradients(&self) {
        self.optimizer.zero_grad();
        for p in parameters(&*self.model) {
            p.zero_grad();
        }
    }

    /// Runs `before`, `body` and `after` of a scope, handling cancels of that scope.
    fn scoped(
        &mut self,
        cbs: &mut [Box<dyn Callback>],
        events: &ScopeEvents,
        body: impl FnOnce(&mut Self, &mut [Box<dyn Callback>]) -> Flow,
    ) -> Flow {
        let result = match self.fire(cbs, events.before) {
            Ok(()) => body(self, cbs),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(Unwind::Cancel { scope, event }) if scope == events.scope => {
                if event == events.after || event == events.cancelled {
                    return Ok(());
                }
                self.fire_ending(cbs, events.cancelled, events.scope)?;
            }
            Err(e) => return Err(e),
        }
        self.fire_ending(cbs, events.after, events.scope)
    }

    /// Fires a closing event of `scope`; a cancel of that same scope just ends it.
    fn fire_ending(&mut self, cbs: &mut [Box<dyn Callback>], event: Event, scope: Scope) -> Flow {
        match self.fire(cbs, event) {
            Err(Unwind::Cancel { scope: s, .. }) if s == scope => Ok(()),
            other => other,
        }
    }

    /// Calls every callback for `event`, in order, until one interrupts.
    fn fire(&mut self, cbs: &mut [Box<dyn Callback>], event: Event) -> Flow {
        for cb in cbs.iter_mut() {
            let interrupt = match cb.on_event(event, self) {
                Ok(()) => continue,
                Err(interrupt) => interrupt,
            };
            let scope = match interrupt {
                Interrupt::Fail(source) => {
                    return Err(Unwind::Error(TrainError::Callback {
                        callback: cb.name(),
                        event,
                        source,
                    }))
                }
                Interrupt::CancelBatch => Scope::Batch,
                Interrupt::CancelTrain => Scope::Train,
                Interrupt::CancelValidate => Scope::Validate,
                Interrupt::CancelEpoch => Scope::Epoch,
                Interrupt::CancelFit => Scope::Fit,
            };
            if !self.is_open(scope, event) {
                return Err(Unwind::Error(TrainError::MisplacedCancel {
                    callback: cb.name(),
                    event,
                    scope,
                }));
            }
            self.report.cancellations.push(Cancellation {
                callback: cb.name(),
                event,
                scope,
                epoch: self.epoch,
                step: self.step,
            });
            return Err(Unwind::Cancel { scope, event });
        }
        Ok(())
    }

    /// Whether `scope` encloses the point of the run where `event` fires.
    fn is_open(&self, scope: Scope, event: Event) -> bool {
        let here = event.scope();
        match scope {
            Scope::Fit => true,
            Scope::Epoch => here != Scope::Fit,
            Scope::Train => {
                matches!(here, Scope::Train | Scope::Batch) && self.phase == Some(Phase::Train)
            }
            Scope::Validate => {
                matches!(here, Scope::Validate | Scope::Batch)
                    && self.phase == Some(Phase::Validate)
            }
            Scope::Batch => here == Scope::Batch,
        }
    }
}
