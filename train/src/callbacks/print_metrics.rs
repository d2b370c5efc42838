//! The metrics table, printed one line per phase as the run goes.

use std::io::Write;

use crate::callback::{Callback, Interrupt};
use crate::event::{Event, Phase};
use crate::learner::Learner;
use crate::metrics::{table_header, table_line};

/// Prints the header at `before_fit` and one line (epoch, phase, loss, accuracy, time)
/// at the end of every phase, like the lesson's metrics callback:
///
/// ```text
/// epoch  phase       loss  accuracy      time
///     0  train     1.0830     0.602     1.25s
///     0  valid     0.7120     0.741     0.10s
/// ```
///
/// Writes to stdout unless built with [`PrintMetrics::to_writer`]. Installed by
/// [`Learner::new`](crate::Learner::new); the same lines are kept in the
/// [`FitReport`](crate::metrics::FitReport) whether or not this prints them.
pub struct PrintMetrics {
    out: Box<dyn Write>,
}

impl std::fmt::Debug for PrintMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrintMetrics").finish_non_exhaustive()
    }
}

impl Default for PrintMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PrintMetrics {
    /// Prints to stdout.
    pub fn new() -> Self {
        Self::to_writer(std::io::stdout())
    }

    /// Prints to `out` (a file, a buffer shared with a test).
    pub fn to_writer(out: impl Write + 'static) -> Self {
        Self { out: Box::new(out) }
    }
}

impl Callback for PrintMetrics {
    fn on_event(&mut self, event: Event, learn: &mut Learner) -> Result<(), Interrupt> {
        let line = match event {
            Event::BeforeFit => table_header(),
            Event::AfterTrain => table_line(learn.epoch, Phase::Train, &learn.phase_metrics()),
            Event::AfterValidate => {
                table_line(learn.epoch, Phase::Validate, &learn.phase_metrics())
            }
            _ => return Ok(()),
        };
        writeln!(self.out, "{line}")?;
        self.out.flush()?;
        Ok(())
    }

    fn order(&self) -> i32 {
        30
    }
}
