//! A progress bar over the batches of each phase (indicatif).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::callback::{Callback, Interrupt};
use crate::event::Event;
use crate::learner::Learner;

/// Draws a bar per phase on stderr: epoch, phase, position, batches per second, ETA
/// and the running loss. Hidden when stderr is not a terminal (CI, tests, pipes), so
/// logs stay clean. Installed by [`Learner::new`](crate::Learner::new); remove it with
/// `learn.remove_callback::<Progress>()`.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    visible: bool,
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress {
    /// A bar drawn only when stderr is a terminal.
    pub fn new() -> Self {
        Self {
            bar: None,
            visible: std::io::stderr().is_terminal(),
        }
    }

    /// Whether bars are drawn.
    pub fn is_visible(&self) -> bool {
        self.visible
    }

    fn start(&mut self, learn: &Learner) {
        self.finish();
        let target = if self.visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(learn.n_iters as u64), target);
        // The template is a constant: it parses, and a failure would only cost the
        // styling, never the run.
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        let phase = learn.phase().map_or("", |p| p.name());
        bar.set_prefix(format!(
            "epoch {}/{} {phase}",
            learn.epoch + 1,
            learn.n_epochs
        ));
        self.bar = Some(bar);
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Callback for Progress {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        match event {
            Event::BeforeTrain | Event::BeforeValidate => self.start(learn),
            Event::AfterBatch => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    let loss = learn.phase_metrics().loss;
                    if loss.is_finite() {
                        bar.set_message(format!("loss {loss:.4}"));
                    }
                }
            }
            Event::AfterTrain | Event::AfterValidate | Event::AfterFit => self.finish(),
            _ => {}
        }
        Ok(())
    }

    fn order(&self) -> i32 {
        20
    }
}
