//! Events fire in the documented order and number; callbacks run by `order()`, can
//! change the learner's state, cancel each scope exactly where they should, and fail
//! with an error that names them.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{blob_learner, weights};
use train::{Callback, Event, Interrupt, Learner, Phase, Scope, TrainError};

/// One event as a callback saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Seen {
    event: Event,
    epoch: usize,
    phase: Option<Phase>,
    iter: usize,
    step: usize,
}

/// Records every event; runs first so it also sees the event a later callback
/// cancels.
#[derive(Default)]
struct EventLog {
    seen: Vec<Seen>,
}

impl Callback for EventLog {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        self.seen.push(Seen {
            event,
            epoch: learn.epoch,
            phase: learn.phase(),
            iter: learn.iter,
            step: learn.step,
        });
        Ok(())
    }

    fn order(&self) -> i32 {
        -100
    }
}

/// Returns `interrupt()` once, at `event` of batch `iter` of `phase` in `epoch`
/// (`iter` is ignored for events outside batches).
struct CancelAt {
    event: Event,
    epoch: usize,
    phase: Option<Phase>,
    iter: usize,
    interrupt: fn() -> Interrupt,
    fired: bool,
}

impl CancelAt {
    fn new(
        event: Event,
        epoch: usize,
        phase: Option<Phase>,
        iter: usize,
        interrupt: fn() -> Interrupt,
    ) -> Self {
        Self {
            event,
            epoch,
            phase,
            iter,
            interrupt,
            fired: false,
        }
    }
}

impl Callback for CancelAt {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        let here = event == self.event
            && learn.epoch == self.epoch
            && (self.phase.is_none() || learn.phase() == self.phase)
            && (event.scope() != Scope::Batch || learn.iter == self.iter);
        if here && !self.fired {
            self.fired = true;
            return Err((self.interrupt)());
        }
        Ok(())
    }
}

const N_EPOCHS: usize = 2;
const TRAIN_BATCHES: usize = 3;
const VALID_BATCHES: usize = 2;

/// 12 training examples and 8 validation examples in batches of 4.
fn learner() -> Learner {
    blob_learner(4 * TRAIN_BATCHES, 4 * VALID_BATCHES, 4, 0.05, 3)
        .with_callback(EventLog::default())
}

fn log(learn: &Learner) -> Vec<Seen> {
    learn.callback::<EventLog>().unwrap().seen.clone()
}

fn events(seen: &[Seen]) -> Vec<Event> {
    seen.iter().map(|s| s.event).collect()
}

/// The events of one uncancelled fit, built from the documented order.
fn expected_events() -> Vec<Event> {
    use Event::*;
    let mut out = vec![BeforeFit];
    for _ in 0..N_EPOCHS {
        out.extend([BeforeEpoch, BeforeTrain]);
        for _ in 0..TRAIN_BATCHES {
            out.extend([
                BeforeBatch,
                AfterPred,
                AfterLoss,
                AfterBackward,
                AfterStep,
                AfterBatch,
            ]);
        }
        out.extend([AfterTrain, BeforeValidate]);
        for _ in 0..VALID_BATCHES {
            out.extend([BeforeBatch, AfterPred, AfterLoss, AfterBatch]);
        }
        out.extend([AfterValidate, AfterEpoch]);
    }
    out.push(AfterFit);
    out
}

/// The events seen in one batch.
fn batch_events(seen: &[Seen], epoch: usize, phase: Phase, iter: usize) -> Vec<Event> {
    seen.iter()
        .filter(|s| {
            s.epoch == epoch
                && s.phase == Some(phase)
                && s.iter == iter
                && s.event.scope() == Scope::Batch
        })
        .map(|s| s.event)
        .collect()
}

fn count(seen: &[Seen], event: Event) -> usize {
    seen.iter().filter(|s| s.event == event).count()
}

#[test]
fn every_event_fires_in_order_with_the_right_counters() {
    let mut learn = learner();
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    assert_eq!(events(&seen), expected_events());

    // Counters as documented: step is the global index of the training batch, iter
    // the index within the phase, the phase is set inside phases only.
    let steps: Vec<usize> = seen
        .iter()
        .filter(|s| s.event == Event::AfterStep)
        .map(|s| s.step)
        .collect();
    assert_eq!(steps, (0..N_EPOCHS * TRAIN_BATCHES).collect::<Vec<_>>());
    let valid_iters: Vec<usize> = seen
        .iter()
        .filter(|s| s.event == Event::AfterBatch && s.phase == Some(Phase::Validate))
        .map(|s| s.iter)
        .collect();
    assert_eq!(valid_iters, vec![0, 1, 0, 1]);
    assert!(seen
        .iter()
        .filter(|s| matches!(s.event.scope(), Scope::Fit | Scope::Epoch))
        .all(|s| s.phase.is_none()));
    assert_eq!(learn.total_steps, N_EPOCHS * TRAIN_BATCHES);

    // The report has a row per epoch with both phases and every example counted.
    assert_eq!(report.rows.len(), N_EPOCHS);
    for (e, row) in report.rows.iter().enumerate() {
        assert_eq!(row.epoch, e);
        let (t, v) = (row.train.unwrap(), row.valid.unwrap());
        assert_eq!((t.batches, t.examples), (TRAIN_BATCHES, 12));
        assert_eq!((v.batches, v.examples), (VALID_BATCHES, 8));
        assert!(t.loss.is_finite() && v.accuracy.is_some());
    }
    assert!(report.cancellations.is_empty());

    // A second fit starts the counters again and the log carries on.
    learn.fit(1).unwrap();
    assert_eq!(count(&log(&learn), Event::BeforeFit), 2);
    assert_eq!(learn.total_steps, TRAIN_BATCHES);
}

#[test]
fn callbacks_run_in_ascending_order_then_insertion_order() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    struct Tagged {
        tag: &'static str,
        order: i32,
        calls: Rc<RefCell<Vec<&'static str>>>,
    }
    impl Callback for Tagged {
        fn on_event(&mut self, event: Event, _: &mut Learner) -> Result<(), Interrupt> {
            if event == Event::BeforeFit {
                self.calls.borrow_mut().push(self.tag);
            }
            Ok(())
        }
        fn order(&self) -> i32 {
            self.order
        }
    }
    let mut learn = learner();
    for (tag, order) in [("late", 5), ("first", -5), ("zero-a", 0), ("zero-b", 0)] {
        learn.add_callback(Tagged {
            tag,
            order,
            calls: calls.clone(),
        });
    }
    learn.fit(1).unwrap();
    assert_eq!(*calls.borrow(), vec!["first", "zero-a", "zero-b", "late"]);
}

#[test]
fn callbacks_can_change_the_loss_and_the_batch() {
    // Zeroing the loss in after_loss zeroes every gradient: plain SGD (no momentum,
    // no weight decay) leaves the weights exactly as they were.
    let mut learn = learner();
    learn.optimizer.set_momentum(0.0);
    let before = weights(&learn);
    learn.add_callback(
        |event: Event, learn: &mut Learner| -> Result<(), Interrupt> {
            if event == Event::AfterLoss {
                if let Some(loss) = learn.loss.take() {
                    learn.loss = Some(loss.mul_scalar(0.0)?);
                }
            }
            Ok(())
        },
    );
    let report = learn.fit(1).unwrap();
    assert_eq!(weights(&learn), before);
    assert_eq!(report.rows[0].train.unwrap().loss, 0.0);

    // Replacing the batch in before_batch: the model only ever sees the first two
    // examples of each batch.
    let mut learn = learner();
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let seen = sizes.clone();
    learn.add_callback(
        move |event: Event, learn: &mut Learner| -> Result<(), Interrupt> {
            match event {
                Event::BeforeBatch => {
                    let (x, y) = (learn.xb.take().unwrap(), learn.yb.take().unwrap());
                    learn.xb = Some(x.narrow(0, 0, 2)?);
                    learn.yb = Some(y.narrow(0, 0, 2)?);
                }
                Event::AfterPred => seen
                    .borrow_mut()
                    .push(learn.preds.as_ref().unwrap().dims()[0]),
                _ => {}
            }
            Ok(())
        },
    );
    let report = learn.fit(1).unwrap();
    assert_eq!(*sizes.borrow(), vec![2; TRAIN_BATCHES + VALID_BATCHES]);
    assert_eq!(report.rows[0].train.unwrap().examples, 2 * TRAIN_BATCHES);
}

#[test]
fn cancel_batch_skips_the_rest_of_that_batch_only() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterPred,
        0,
        Some(Phase::Train),
        1,
        || Interrupt::CancelBatch,
    ));
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    use Event::*;
    assert_eq!(
        batch_events(&seen, 0, Phase::Train, 1),
        vec![BeforeBatch, AfterPred, AfterCancelBatch, AfterBatch]
    );
    assert_eq!(
        batch_events(&seen, 0, Phase::Train, 2),
        vec![
            BeforeBatch,
            AfterPred,
            AfterLoss,
            AfterBackward,
            AfterStep,
            AfterBatch
        ]
    );
    assert_eq!(count(&seen, AfterStep), N_EPOCHS * TRAIN_BATCHES - 1);
    assert_eq!(count(&seen, AfterCancelBatch), 1);
    // The cancelled batch still counts as a step of the schedule, and is left out of
    // the metrics.
    let step_of_next = seen
        .iter()
        .find(|s| {
            s.event == BeforeBatch && s.epoch == 0 && s.iter == 2 && s.phase == Some(Phase::Train)
        })
        .unwrap()
        .step;
    assert_eq!(step_of_next, 2);
    assert_eq!(report.rows[0].train.unwrap().batches, TRAIN_BATCHES - 1);
    assert_eq!(report.rows[1].train.unwrap().batches, TRAIN_BATCHES);
    assert_eq!(report.cancellations.len(), 1);
    assert_eq!(report.cancellations[0].scope, Scope::Batch);
    assert_eq!(report.cancellations[0].callback, "CancelAt");
    assert_eq!(report.cancellations[0].event, AfterPred);
}

#[test]
fn cancel_batch_in_after_batch_only_ends_that_event() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterBatch,
        0,
        Some(Phase::Train),
        0,
        || Interrupt::CancelBatch,
    ));
    learn.fit(1).unwrap();
    let seen = log(&learn);
    assert_eq!(count(&seen, Event::AfterCancelBatch), 0);
    assert_eq!(count(&seen, Event::AfterStep), TRAIN_BATCHES);
    assert_eq!(
        count(&seen, Event::AfterBatch),
        TRAIN_BATCHES + VALID_BATCHES
    );
}

#[test]
fn cancel_train_goes_on_to_validation() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::BeforeBatch,
        0,
        Some(Phase::Train),
        1,
        || Interrupt::CancelTrain,
    ));
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    let i = seen
        .iter()
        .position(|s| s.event == Event::AfterCancelTrain)
        .unwrap();
    use Event::*;
    assert_eq!(
        events(&seen[i - 1..i + 4]),
        vec![
            BeforeBatch,
            AfterCancelTrain,
            AfterTrain,
            BeforeValidate,
            BeforeBatch
        ]
    );
    assert_eq!(report.rows[0].train.unwrap().batches, 1);
    assert_eq!(report.rows[0].valid.unwrap().batches, VALID_BATCHES);
    assert_eq!(report.rows[1].train.unwrap().batches, TRAIN_BATCHES);
    assert_eq!(count(&seen, AfterStep), 1 + TRAIN_BATCHES);
}

#[test]
fn cancel_validate_ends_the_validation_phase() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterLoss,
        1,
        Some(Phase::Validate),
        0,
        || Interrupt::CancelValidate,
    ));
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    use Event::*;
    assert_eq!(
        events(&seen[seen.len() - 7..]),
        vec![
            BeforeBatch,
            AfterPred,
            AfterLoss,
            AfterCancelValidate,
            AfterValidate,
            AfterEpoch,
            AfterFit
        ]
    );
    // The cancelled batch never reached the metrics.
    assert_eq!(report.rows[1].valid.unwrap().batches, 0);
    assert!(report.rows[1].valid.unwrap().loss.is_nan());
}

#[test]
fn cancel_epoch_goes_on_to_the_next_epoch() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterBackward,
        0,
        Some(Phase::Train),
        1,
        || Interrupt::CancelEpoch,
    ));
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    use Event::*;
    let i = seen
        .iter()
        .position(|s| s.event == AfterCancelEpoch)
        .unwrap();
    assert_eq!(
        events(&seen[i - 1..i + 4]),
        vec![
            AfterBackward,
            AfterCancelEpoch,
            AfterEpoch,
            BeforeEpoch,
            BeforeTrain
        ]
    );
    assert_eq!(seen[i + 2].epoch, 1);
    // Epoch 0 never validated; epoch 1 ran in full.
    assert!(!seen
        .iter()
        .any(|s| s.epoch == 0 && s.phase == Some(Phase::Validate)));
    assert_eq!(count(&seen, AfterStep), 1 + TRAIN_BATCHES);
    assert_eq!(count(&seen, AfterTrain), 1);
    assert_eq!(report.rows[0].train.unwrap().batches, 2);
    assert_eq!(report.rows[0].valid, None);
    assert!(report.rows[1].valid.is_some());
}

#[test]
fn cancel_fit_stops_everything_after_its_cleanup_events() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterStep,
        1,
        Some(Phase::Train),
        0,
        || Interrupt::CancelFit,
    ));
    let report = learn.fit(N_EPOCHS).unwrap();
    let seen = log(&learn);
    use Event::*;
    assert_eq!(
        events(&seen[seen.len() - 3..]),
        vec![AfterStep, AfterCancelFit, AfterFit]
    );
    assert_eq!(count(&seen, AfterStep), TRAIN_BATCHES + 1);
    assert_eq!(count(&seen, AfterEpoch), 1);
    assert!(report.fit_cancelled());
    assert_eq!(report.rows.len(), 2);
    assert_eq!(report.rows[1].train.unwrap().batches, 1);
}

#[test]
fn cancelling_a_scope_the_loop_is_not_in_is_an_error() {
    let mut learn = learner().with_callback(CancelAt::new(Event::BeforeEpoch, 0, None, 0, || {
        Interrupt::CancelBatch
    }));
    let err = learn.fit(1).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::MisplacedCancel {
                event: Event::BeforeEpoch,
                scope: Scope::Batch,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("CancelAt cancelled the batch during before_epoch"),
        "{err}"
    );

    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterLoss,
        0,
        Some(Phase::Train),
        0,
        || Interrupt::CancelValidate,
    ));
    let err = learn.fit(1).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::MisplacedCancel {
                scope: Scope::Validate,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_failing_callback_stops_the_run_and_is_named() {
    let mut learn = learner().with_callback(CancelAt::new(
        Event::AfterLoss,
        0,
        Some(Phase::Train),
        2,
        || Interrupt::fail("disk full"),
    ));
    let err = learn.fit(N_EPOCHS).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Callback {
                event: Event::AfterLoss,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "callback CancelAt failed during after_loss: disk full"
    );
    // No further event fired, and the callbacks are back in the learner.
    let seen = log(&learn);
    assert_eq!(seen.last().unwrap().event, Event::AfterLoss);
    assert!(learn.callback::<CancelAt>().is_some());
    assert_eq!(learn.callback_names(), vec!["EventLog", "CancelAt"]);
    // `?` on a tensor error inside a callback becomes the same kind of error.
    let mut learn = learner();
    learn.add_callback(
        |event: Event, learn: &mut Learner| -> Result<(), Interrupt> {
            if event == Event::AfterPred {
                learn.preds.as_ref().unwrap().tensor().narrow(1, 0, 99)?;
            }
            Ok(())
        },
    );
    let err = learn.fit(1).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("callback closure failed during after_pred: narrow"),
        "{err}"
    );
}

#[test]
fn callbacks_can_be_found_and_removed_by_type() {
    let mut learn = learner();
    learn.fit(1).unwrap();
    assert_eq!(
        learn.callback::<EventLog>().unwrap().seen.len(),
        expected_events().len() / N_EPOCHS + 1
    );
    learn.callback_mut::<EventLog>().unwrap().seen.clear();
    let removed = learn.remove_callback::<EventLog>().unwrap();
    assert!(removed.seen.is_empty());
    assert!(learn.callback::<EventLog>().is_none());
    assert!(learn.remove_callback::<EventLog>().is_none());
}

#[test]
fn an_empty_training_loader_is_an_error() {
    let (x, y) = common::blobs(3, 8, 4, 0);
    let mut learn = learner();
    learn.train_dl = data::loader::DataLoader::new(&x, &y, 4)
        .unwrap()
        .drop_last(true);
    let err = learn.fit(1).unwrap_err();
    assert!(
        err.to_string()
            .contains("yields no batch (3 examples, batch size 4"),
        "{err}"
    );
}
