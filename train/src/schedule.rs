//! Hyper-parameter schedules: a value as a function of training progress.
//!
//! A [`Schedule`] maps the position in training, `pos` in `[0, 1]` (0 before the
//! first batch, 1 after the last), to a value. [`Combined`] joins schedules over
//! fractions of training (fastai's `combine_scheds`), and [`one_cycle`] builds the
//! one-cycle policy: learning rate warms up with a cosine and anneals with a cosine,
//! while momentum does the opposite.
//!
//! ```
//! use train::schedule::{one_cycle, Schedule};
//! let (lr, mom) = one_cycle(0.1, 0.25);
//! assert!((lr.value(0.0) - 0.1 / 25.0).abs() < 1e-12); // starts at max / 25
//! assert!((lr.value(0.25) - 0.1).abs() < 1e-12); // peaks after 25% of training
//! assert!(lr.value(1.0) < 1e-5); // ends near zero
//! assert!((mom.value(0.25) - 0.85).abs() < 1e-12); // momentum is lowest at the peak
//! ```

use std::f64::consts::PI;

/// A value as a function of the position in training, `pos` in `[0, 1]`.
pub trait Schedule: Send + Sync {
    /// The value at `pos` (positions outside `[0, 1]` are clamped).
    fn value(&self, pos: f64) -> f64;
}

/// Always the same value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn value(&self, _pos: f64) -> f64 {
        self.0
    }
}

/// Straight line from `start` to `end`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Linear {
    /// Value at 0.
    pub start: f64,
    /// Value at 1.
    pub end: f64,
}

impl Schedule for Linear {
    fn value(&self, pos: f64) -> f64 {
        let pos = pos.clamp(0.0, 1.0);
        self.start + pos * (self.end - self.start)
    }
}

/// Half a cosine from `start` to `end`: flat at both ends, steepest in the middle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// Value at 0.
    pub start: f64,
    /// Value at 1.
    pub end: f64,
}

impl Schedule for Cosine {
    fn value(&self, pos: f64) -> f64 {
        let pos = pos.clamp(0.0, 1.0);
        self.start + (1.0 + (PI * (1.0 - pos)).cos()) * (self.end - self.start) / 2.0
    }
}

/// Geometric progression from `start` to `end` (both must be positive): equal ratios
/// in equal time, as the LR finder sweeps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// Value at 0.
    pub start: f64,
    /// Value at 1.
    pub end: f64,
}

impl Schedule for Exponential {
    fn value(&self, pos: f64) -> f64 {
        let pos = pos.clamp(0.0, 1.0);
        self.start * (self.end / self.start).powf(pos)
    }
}

/// Schedules run one after another over fractions of training.
pub struct Combined {
    phases: Vec<(f64, Box<dyn Schedule>)>,
}

impl Combined {
    /// Joins `phases`, each `(fraction of training, schedule)`; fractions must be
    /// positive and sum to 1 (within 1e-9). Each phase sees its own position 0..1.
    pub fn new(phases: Vec<(f64, Box<dyn Schedule>)>) -> Result<Self, String> {
        if phases.is_empty() {
            return Err("Combined schedule: no phases".into());
        }
        if let Some((f, _)) = phases.iter().find(|(f, _)| f.is_nan() || *f <= 0.0) {
            return Err(format!(
                "Combined schedule: every fraction must be > 0, got {f}"
            ));
        }
        let total: f64 = phases.iter().map(|(f, _)| f).sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(format!(
                "Combined schedule: fractions must sum to 1, got {total}"
            ));
        }
        Ok(Self { phases })
    }
}

impl Schedule for Combined {
    fn value(&self, pos: f64) -> f64 {
        let pos = pos.clamp(0.0, 1.0);
        let mut start = 0.0;
        for (i, (fraction, schedule)) in self.phases.iter().enumerate() {
            let end = start + fraction;
            if pos <= end || i + 1 == self.phases.len() {
                return schedule.value(((pos - start) / fraction).clamp(0.0, 1.0));
            }
            start = end;
        }
        // Unreachable: the last phase always returns above.
        self.phases[self.phases.len() - 1].1.value(1.0)
    }
}

/// The one-cycle policy (Smith; fastai's defaults): learning rate from `max_lr / 25`
/// up to `max_lr` over the first `pct_start` of training (cosine), then down to
/// `max_lr / 1e5` (cosine); momentum from 0.95 down to 0.85 and back up.
/// `pct_start` is clamped into (0, 1).
pub fn one_cycle(max_lr: f64, pct_start: f64) -> (Combined, Combined) {
    let p = pct_start.clamp(1e-6, 1.0 - 1e-6);
    let lr = Combined {
        phases: vec![
            (
                p,
                Box::new(Cosine {
                    start: max_lr / 25.0,
                    end: max_lr,
                }),
            ),
            (
                1.0 - p,
                Box::new(Cosine {
                    start: max_lr,
                    end: max_lr / 1e5,
                }),
            ),
        ],
    };
    let mom = Combined {
        phases: vec![
            (
                p,
                Box::new(Cosine {
                    start: 0.95,
                    end: 0.85,
                }),
            ),
            (
                1.0 - p,
                Box::new(Cosine {
                    start: 0.85,
                    end: 0.95,
                }),
            ),
        ],
    };
    (lr, mom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * (1.0 + b.abs())
    }

    #[test]
    fn start_middle_end() {
        let lin = Linear {
            start: 1.0,
            end: 3.0,
        };
        assert!(
            close(lin.value(0.0), 1.0) && close(lin.value(0.5), 2.0) && close(lin.value(1.0), 3.0)
        );
        let cos = Cosine {
            start: 1.0,
            end: 0.0,
        };
        assert!(
            close(cos.value(0.0), 1.0) && close(cos.value(0.5), 0.5) && close(cos.value(1.0), 0.0)
        );
        let exp = Exponential {
            start: 1e-7,
            end: 10.0,
        };
        assert!(
            close(exp.value(0.0), 1e-7)
                && close(exp.value(0.5), (1e-7f64 * 10.0).sqrt())
                && close(exp.value(1.0), 10.0)
        );
        assert!(close(Constant(0.3).value(0.7), 0.3));
        // clamped outside [0, 1]
        assert!(close(lin.value(-1.0), 1.0) && close(lin.value(2.0), 3.0));
    }

    #[test]
    fn combined_phases() {
        let s = Combined::new(vec![
            (
                0.3,
                Box::new(Linear {
                    start: 0.0,
                    end: 1.0,
                }),
            ),
            (
                0.7,
                Box::new(Linear {
                    start: 1.0,
                    end: 0.0,
                }),
            ),
        ])
        .unwrap();
        assert!(close(s.value(0.0), 0.0));
        assert!(close(s.value(0.15), 0.5));
        assert!(close(s.value(0.3), 1.0));
        assert!(close(s.value(0.65), 0.5));
        assert!(close(s.value(1.0), 0.0));
        assert!(Combined::new(vec![(0.5, Box::new(Constant(1.0)))]).is_err());
        assert!(Combined::new(vec![]).is_err());
    }

    #[test]
    fn one_cycle_shape() {
        let (lr, mom) = one_cycle(0.4, 0.3);
        assert!(close(lr.value(0.0), 0.4 / 25.0));
        assert!(close(lr.value(0.3), 0.4));
        assert!(close(lr.value(1.0), 0.4 / 1e5));
        assert!(close(lr.value(0.15), (0.4 / 25.0 + 0.4) / 2.0));
        assert!(
            close(mom.value(0.0), 0.95)
                && close(mom.value(0.3), 0.85)
                && close(mom.value(1.0), 0.95)
        );
        // increasing then decreasing
        assert!(lr.value(0.1) < lr.value(0.2) && lr.value(0.5) > lr.value(0.8));
    }
}
