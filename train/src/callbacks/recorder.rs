//! The loss and learning rate of every training batch.

use crate::callback::{Callback, Interrupt};
use crate::event::Event;
use crate::learner::Learner;

/// One training batch as the [`Recorder`] saw it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchRecord {
    /// Epoch index.
    pub epoch: usize,
    /// Global training step.
    pub step: usize,
    /// The batch's loss.
    pub loss: f64,
    /// The learning rate of the first parameter group when the step was taken.
    pub lr: f64,
}

/// Records every training batch's loss and learning rate (at `after_step`, so
/// batches cancelled before the step are left out), for loss curves and to check
/// what a scheduler did. Read it back after the run with
/// `learn.callback::<Recorder>()`.
///
/// It keeps every batch (32 bytes each, so 32 MB per million steps): for runs whose
/// length is not known in advance, `diagnostics::losses::LossLog` keeps a bounded,
/// folded curve of the whole run instead.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    /// The records, in order, across fits.
    pub batches: Vec<BatchRecord>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The recorded losses.
    pub fn losses(&self) -> Vec<f64> {
        self.batches.iter().map(|b| b.loss).collect()
    }

    /// The recorded learning rates.
    pub fn lrs(&self) -> Vec<f64> {
        self.batches.iter().map(|b| b.lr).collect()
    }

    /// The loss curve: every recorded training loss, in order (x is the record's
    /// index, so several fits follow one another).
    pub fn plot(&self) -> plots::LinePlot {
        plots::LinePlot::new("training loss", "batch", "loss").series(plots::Series::new(
            "training loss",
            self.batches
                .iter()
                .enumerate()
                .map(|(i, b)| (i as f64, b.loss)),
        ))
    }
}

impl Callback for Recorder {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        if event == Event::AfterStep {
            if let Some(loss) = &learn.loss {
                self.batches.push(BatchRecord {
                    epoch: learn.epoch,
                    step: learn.step,
                    loss: loss.tensor().item()?,
                    lr: learn
                        .optimizer
                        .groups()
                        .first()
                        .map_or(f64::NAN, |g| g.hp.lr),
                });
            }
        }
        Ok(())
    }
}
