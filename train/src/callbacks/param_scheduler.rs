//! Learning-rate and momentum schedules applied batch by batch.

use crate::callback::{Callback, Interrupt};
use crate::event::Event;
use crate::learner::Learner;
use crate::schedule::{one_cycle, Schedule};

/// What a [`ParamScheduler`] set before one training batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduledValues {
    /// Global training step of the batch.
    pub step: usize,
    /// Position in training, `step / total_steps`.
    pub pos: f64,
    /// Learning rate set on every parameter group.
    pub lr: f64,
    /// Momentum (Adam: beta1) set on every group, if scheduled.
    pub momentum: Option<f64>,
}

/// Sets the learning rate, and optionally the momentum, of every parameter group
/// before each training batch, from schedules evaluated at
/// `pos = step / total_steps` (0 at the first batch of the fit, `1 - 1/total_steps`
/// at the last), and records what it set.
///
/// ```
/// use train::callbacks::ParamScheduler;
/// use train::schedule::Cosine;
/// let sched = ParamScheduler::new(Cosine { start: 0.1, end: 0.0 });
/// let one_cycle = ParamScheduler::one_cycle(0.6, 0.25); // lr and momentum
/// assert!(sched.history().is_empty() && one_cycle.history().is_empty());
/// ```
pub struct ParamScheduler {
    lr: Box<dyn Schedule>,
    momentum: Option<Box<dyn Schedule>>,
    history: Vec<ScheduledValues>,
}

impl std::fmt::Debug for ParamScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParamScheduler")
            .field("momentum", &self.momentum.is_some())
            .field("history", &self.history.len())
            .finish_non_exhaustive()
    }
}

impl ParamScheduler {
    /// Schedules the learning rate only.
    pub fn new(lr: impl Schedule + 'static) -> Self {
        Self {
            lr: Box::new(lr),
            momentum: None,
            history: Vec::new(),
        }
    }

    /// Also schedules the momentum (Adam: beta1).
    pub fn with_momentum(mut self, momentum: impl Schedule + 'static) -> Self {
        self.momentum = Some(Box::new(momentum));
        self
    }

    /// The one-cycle policy ([`one_cycle`]): lr from `max_lr / 25` up to `max_lr`
    /// over the first `pct_start` of training and down to `max_lr / 1e5`; momentum
    /// from 0.95 to 0.85 and back.
    pub fn one_cycle(max_lr: f64, pct_start: f64) -> Self {
        let (lr, momentum) = one_cycle(max_lr, pct_start);
        Self::new(lr).with_momentum(momentum)
    }

    /// What was set, one entry per training batch, across fits.
    pub fn history(&self) -> &[ScheduledValues] {
        &self.history
    }
}

impl Callback for ParamScheduler {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        if event != Event::BeforeBatch || !learn.training {
            return Ok(());
        }
        let pos = if learn.total_steps == 0 {
            0.0
        } else {
            learn.step as f64 / learn.total_steps as f64
        };
        let lr = self.lr.value(pos);
        learn.optimizer.set_lr(lr);
        let momentum = self.momentum.as_ref().map(|m| m.value(pos));
        if let Some(m) = momentum {
            learn.optimizer.set_momentum(m);
        }
        self.history.push(ScheduledValues {
            step: learn.step,
            pos,
            lr,
            momentum,
        });
        Ok(())
    }

    /// Before the other callbacks, so they see this batch's values.
    fn order(&self) -> i32 {
        -10
    }
}
