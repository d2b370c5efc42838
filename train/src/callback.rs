//! The [`Callback`] trait and [`Interrupt`], the way a callback changes the course of a
//! run.
//!
//! A callback is called at every [`Event`] with the whole [`Learner`], mutably: it can
//! read and change the model, the optimiser, the batch, the predictions and the loss.
//! It returns `Ok(())` to let the run go on, an `Err(Interrupt::Cancel*)` to cancel
//! part of it (the lesson's exceptions used as control flow, as a value), or
//! `Err(Interrupt::Fail(..))` to stop with an error. Every error type converts into
//! `Interrupt::Fail` with `?`.
//!
//! ```
//! use train::{Callback, Event, Interrupt, Learner};
//!
//! /// Stops training after `max_steps` optimiser steps.
//! struct StopAfter {
//!     max_steps: usize,
//! }
//!
//! impl Callback for StopAfter {
//!     fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
//!         if event == Event::AfterStep && learn.step + 1 >= self.max_steps {
//!             return Err(Interrupt::CancelFit);
//!         }
//!         Ok(())
//!     }
//! }
//! ```

use std::any::Any;
use std::fmt;

use crate::event::{Event, Scope};
use crate::learner::Learner;

/// What a callback returns to stop part of the run.
///
/// `CancelX` ends scope X early. The rule, for a cancel returned while handling event
/// `E`:
///
/// 1. The callbacks after this one are not called for `E`.
/// 2. Every scope inside X is left at once, without its `after_*` event.
/// 3. X fires `after_cancel_x`, then `after_x`, and the run goes on after X (the next
///    batch, the validation phase, the next epoch, or the end of `fit`). If `E` was
///    `after_x` or `after_cancel_x` itself, X simply ends there.
///
/// Cancelling a scope the loop is not in (the batch during `before_epoch`,
/// validation while training) is an error, [`TrainError::MisplacedCancel`](crate::TrainError::MisplacedCancel).
pub enum Interrupt {
    /// Skip the rest of this batch (no further forward, loss, backward or step work).
    CancelBatch,
    /// Skip the rest of this epoch's training batches and go on to validation.
    CancelTrain,
    /// Skip the rest of this epoch's validation batches.
    CancelValidate,
    /// Skip the rest of this epoch and go on to the next one.
    CancelEpoch,
    /// End the run (after `after_cancel_fit` and `after_fit`).
    CancelFit,
    /// Stop the run with an error; `fit` returns it as
    /// [`TrainError::Callback`](crate::TrainError::Callback).
    Fail(Box<dyn std::error::Error + Send + Sync>),
}

impl Interrupt {
    /// The scope a cancel ends, or `None` for [`Interrupt::Fail`].
    pub fn scope(&self) -> Option<Scope> {
        match self {
            Interrupt::CancelBatch => Some(Scope::Batch),
            Interrupt::CancelTrain => Some(Scope::Train),
            Interrupt::CancelValidate => Some(Scope::Validate),
            Interrupt::CancelEpoch => Some(Scope::Epoch),
            Interrupt::CancelFit => Some(Scope::Fit),
            Interrupt::Fail(_) => None,
        }
    }

    /// A failure with a plain message.
    pub fn fail(message: impl Into<String>) -> Self {
        let message: String = message.into();
        Interrupt::Fail(message.into())
    }
}

impl fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interrupt::Fail(e) => f.debug_tuple("Fail").field(&e.to_string()).finish(),
            other => match other.scope() {
                Some(scope) => write!(f, "Cancel({scope})"),
                None => f.write_str("Interrupt"),
            },
        }
    }
}

/// Any error converts into [`Interrupt::Fail`], so `?` works inside a callback on
/// tensor, autograd, nn, data and train results alike.
impl<E: std::error::Error + Send + Sync + 'static> From<E> for Interrupt {
    fn from(e: E) -> Self {
        Interrupt::Fail(Box::new(e))
    }
}

/// Something called at every event of a run. See the [module docs](self).
///
/// Callbacks run in ascending [`order`](Callback::order); equal orders keep the order
/// they were added in. They are `'static` so that a program can get one back by type
/// after the run ([`Learner::callback`]) and read what it recorded.
pub trait Callback: Any {
    /// Handles one event. The default of every callback is to ignore events it does
    /// not match on.
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt>;

    /// Where the callback runs among the others (ascending; default 0). The built-in
    /// ones use: [`Progress`](crate::callbacks::Progress) 20,
    /// [`PrintMetrics`](crate::callbacks::PrintMetrics) 30,
    /// [`ParamScheduler`](crate::callbacks::ParamScheduler) -10.
    fn order(&self) -> i32 {
        0
    }

    /// The name used in errors and reports; by default the type's name without its
    /// module path.
    fn name(&self) -> String {
        short_type_name(std::any::type_name::<Self>())
    }
}

/// A closure is a callback: handy for one-off checks and tests.
///
/// ```
/// use train::{Callback, Event, Interrupt, Learner};
/// let mut seen = 0usize;
/// let _cb = move |event: Event, _learn: &mut Learner| -> Result<(), Interrupt> {
///     if event == Event::AfterBatch {
///         seen += 1;
///     }
///     Ok(())
/// };
/// ```
impl<F> Callback for F
where
    F: FnMut(Event, &mut Learner) -> Result<(), Interrupt> + 'static,
{
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        self(event, learn)
    }

    fn name(&self) -> String {
        "closure".to_string()
    }
}

/// `a::b::Foo<c::Bar>` -> `Foo<Bar>`.
fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        match c {
            '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | '&' => {
                out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
                segment.clear();
                out.push(c);
            }
            _ => segment.push(c),
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("train::callbacks::Progress"), "Progress");
        assert_eq!(
            short_type_name("a::Wrap<b::c::Inner, u8>"),
            "Wrap<Inner, u8>"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
    }

    #[test]
    fn interrupts_know_their_scope() {
        assert_eq!(Interrupt::CancelBatch.scope(), Some(Scope::Batch));
        assert_eq!(Interrupt::CancelFit.scope(), Some(Scope::Fit));
        let fail: Interrupt = std::io::Error::other("disk full").into();
        assert!(fail.scope().is_none());
        assert_eq!(format!("{fail:?}"), "Fail(\"disk full\")");
        assert_eq!(format!("{:?}", Interrupt::CancelEpoch), "Cancel(epoch)");
    }
}
