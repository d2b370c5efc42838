//! The events of a training run, the phases of an epoch, and the scopes a callback can
//! cancel.
//!
//! [`Learner::fit`](crate::Learner::fit) fires the events in this order (one epoch,
//! one training and one validation batch shown):
//!
//! ```text
//! before_fit
//!   before_epoch
//!     before_train
//!       before_batch  after_pred  after_loss  after_backward  after_step  after_batch
//!     after_train
//!     before_validate
//!       before_batch  after_pred  after_loss  after_batch
//!     after_validate
//!   after_epoch
//! after_fit
//! ```
//!
//! A cancelled scope fires its `after_cancel_*` event and then its `after_*` event
//! (see [`Interrupt`](crate::Interrupt) for the full rule).

use std::fmt;

/// The two halves of an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Training batches: model in training mode, gradients, optimiser steps.
    Train,
    /// Validation batches: model in evaluation mode, under `no_grad`.
    Validate,
}

impl Phase {
    /// The short name used in tables: `"train"` or `"valid"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Train => "train",
            Phase::Validate => "valid",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A part of a run that a callback can cancel, from the narrowest to the widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// One batch (training or validation).
    Batch,
    /// The training phase of the current epoch.
    Train,
    /// The validation phase of the current epoch.
    Validate,
    /// The current epoch.
    Epoch,
    /// The whole call to `fit`.
    Fit,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Batch => "batch",
            Scope::Train => "train",
            Scope::Validate => "validate",
            Scope::Epoch => "epoch",
            Scope::Fit => "fit",
        })
    }
}

/// A point in the training loop at which every callback is called, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// Once, before the first epoch.
    BeforeFit,
    /// At the start of each epoch.
    BeforeEpoch,
    /// Before the training batches of an epoch (model already in training mode).
    BeforeTrain,
    /// Before the validation batches of an epoch (model already in evaluation mode).
    BeforeValidate,
    /// Before a batch: `xb`/`yb` hold it and may be replaced.
    BeforeBatch,
    /// After the forward pass: `preds` holds the model's output and may be replaced.
    AfterPred,
    /// After the loss function: `loss` holds it and may be replaced (the learner then
    /// checks that it is finite).
    AfterLoss,
    /// After `backward` (training only): parameters hold their gradients.
    AfterBackward,
    /// After the optimiser step (training only); gradients are still readable.
    AfterStep,
    /// After a batch, however it ended (also after a cancelled one).
    AfterBatch,
    /// After the training batches.
    AfterTrain,
    /// After the validation batches.
    AfterValidate,
    /// At the end of each epoch.
    AfterEpoch,
    /// Once, at the end of the run.
    AfterFit,
    /// A callback cancelled the batch (fired before `AfterBatch`).
    AfterCancelBatch,
    /// A callback cancelled the training phase (fired before `AfterTrain`).
    AfterCancelTrain,
    /// A callback cancelled the validation phase (fired before `AfterValidate`).
    AfterCancelValidate,
    /// A callback cancelled the epoch (fired before `AfterEpoch`).
    AfterCancelEpoch,
    /// A callback cancelled the fit (fired before `AfterFit`).
    AfterCancelFit,
}

impl Event {
    /// Every event, in the order of the table in the module docs, cancellation
    /// events last.
    pub const ALL: [Event; 19] = [
        Event::BeforeFit,
        Event::BeforeEpoch,
        Event::BeforeTrain,
        Event::BeforeValidate,
        Event::BeforeBatch,
        Event::AfterPred,
        Event::AfterLoss,
        Event::AfterBackward,
        Event::AfterStep,
        Event::AfterBatch,
        Event::AfterTrain,
        Event::AfterValidate,
        Event::AfterEpoch,
        Event::AfterFit,
        Event::AfterCancelBatch,
        Event::AfterCancelTrain,
        Event::AfterCancelValidate,
        Event::AfterCancelEpoch,
        Event::AfterCancelFit,
    ];

    /// The snake-case name of the event, as in fastai: `"before_batch"`.
    pub fn name(self) -> &'static str {
        match self {
            Event::BeforeFit => "before_fit",
            Event::BeforeEpoch => "before_epoch",
            Event::BeforeTrain => "before_train",
            Event::BeforeValidate => "before_validate",
            Event::BeforeBatch => "before_batch",
            Event::AfterPred => "after_pred",
            Event::AfterLoss => "after_loss",
            Event::AfterBackward => "after_backward",
            Event::AfterStep => "after_step",
            Event::AfterBatch => "after_batch",
            Event::AfterTrain => "after_train",
            Event::AfterValidate => "after_validate",
            Event::AfterEpoch => "after_epoch",
            Event::AfterFit => "after_fit",
            Event::AfterCancelBatch => "after_cancel_batch",
            Event::AfterCancelTrain => "after_cancel_train",
            Event::AfterCancelValidate => "after_cancel_validate",
            Event::AfterCancelEpoch => "after_cancel_epoch",
            Event::AfterCancelFit => "after_cancel_fit",
        }
    }

    /// The innermost scope the event belongs to: `AfterLoss` happens inside a batch,
    /// `AfterTrain` inside the training phase, and so on. A batch event's scope is
    /// [`Scope::Batch`] whatever the phase.
    pub fn scope(self) -> Scope {
        match self {
            Event::BeforeFit | Event::AfterFit | Event::AfterCancelFit => Scope::Fit,
            Event::BeforeEpoch | Event::AfterEpoch | Event::AfterCancelEpoch => Scope::Epoch,
            Event::BeforeTrain | Event::AfterTrain | Event::AfterCancelTrain => Scope::Train,
            Event::BeforeValidate | Event::AfterValidate | Event::AfterCancelValidate => {
                Scope::Validate
            }
            Event::BeforeBatch
            | Event::AfterPred
            | Event::AfterLoss
            | Event::AfterBackward
            | Event::AfterStep
            | Event::AfterBatch
            | Event::AfterCancelBatch => Scope::Batch,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_snake_case() {
        let names: std::collections::HashSet<_> = Event::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Event::ALL.len());
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        assert_eq!(Event::AfterCancelFit.to_string(), "after_cancel_fit");
    }

    #[test]
    fn scopes() {
        assert_eq!(Event::AfterStep.scope(), Scope::Batch);
        assert_eq!(Event::AfterCancelValidate.scope(), Scope::Validate);
        assert_eq!(Event::BeforeEpoch.scope(), Scope::Epoch);
        assert!(Scope::Batch < Scope::Fit);
    }
}
