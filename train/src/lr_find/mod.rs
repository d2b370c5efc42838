//! The learning-rate finder (Smith 2015; fastai's `lr_find`): train for a few batches
//! with a learning rate growing exponentially, watch the loss, stop when it
//! diverges, then put everything back.
//!
//! [`lr_find`] sets the learning rate of batch `i` to
//! `start_lr * (end_lr / start_lr)^(i / (max_iters - 1))`, smooths the loss with
//! fastai's debiased exponential moving average (`avg = beta * avg + (1 - beta) *
//! loss`, `smoothed = avg / (1 - beta^(i+1))`), and stops when the smoothed loss
//! exceeds `stop_factor` times the best seen so far, when a loss is not finite, or
//! after `max_iters` batches.
//!
//! Afterwards the model's parameters and buffers (and its training flag) are restored
//! from a copy taken before the sweep, and the learner's optimiser, callbacks and
//! report are exactly the ones it had: the sweep runs on a
//! [fresh optimiser](crate::Learner::fresh_optimizer) with the same hyper-parameters,
//! so momentum buffers or Adam moments of the real one are never touched, and
//! without the learner's callbacks (a scheduler would fight the sweep, and the
//! metrics table would print partial epochs).
//!
//! [`LrFinderResult::plot`] draws the loss against the learning rate on a log axis
//! with the suggestion marked ([`LrFinderResult::save_png`] writes it).
//!
//! The **suggested learning rate** is the one at the minimum of the smoothed loss
//! (leaving out the first `skip_start` points), divided by 10 (the classic rule: an order of magnitude below where the loss stops
//! improving). The learning rate of steepest descent of the smoothed loss (before its
//! minimum) is reported beside it.

mod plot;

use crate::callback::{Callback, Interrupt};
use crate::error::{Result, TrainError};
use crate::event::Event;
use crate::learner::Learner;
use crate::snapshot::ModelSnapshot;

/// Settings of [`lr_find`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrFinderConfig {
    /// Learning rate of the first batch (> 0).
    pub start_lr: f64,
    /// Learning rate of batch `max_iters - 1` (> `start_lr`).
    pub end_lr: f64,
    /// Most batches to run (>= 2); the sweep runs as many epochs as it needs.
    pub max_iters: usize,
    /// Stop when the smoothed loss exceeds this many times the best one (> 1).
    pub stop_factor: f64,
    /// Smoothing factor of the moving average, in [0, 1).
    pub beta: f64,
    /// Points left out at the start when choosing the suggestion (fastai's
    /// `skip_start`): the first smoothed values average only a handful of losses, so
    /// one lucky batch there can look like the minimum. Ignored when the sweep has
    /// no more points than this.
    pub skip_start: usize,
}

impl Default for LrFinderConfig {
    /// fastai's sweep: 1e-7 to 10 over 100 batches, smoothing 0.98, stopping at 3x
    /// the best smoothed loss, suggesting from the 11th point on.
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            max_iters: 100,
            stop_factor: 3.0,
            beta: 0.98,
            skip_start: 10,
        }
    }
}

impl LrFinderConfig {
    /// Checks every value; the error names the setting and its value.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(TrainError::config("lr_find", detail));
        if !(self.start_lr > 0.0 && self.start_lr.is_finite()) {
            return bad(format!(
                "start_lr must be finite and > 0, got {}",
                self.start_lr
            ));
        }
        if !(self.end_lr > self.start_lr && self.end_lr.is_finite()) {
            return bad(format!(
                "end_lr must be finite and > start_lr ({}), got {}",
                self.start_lr, self.end_lr
            ));
        }
        if self.max_iters < 2 {
            return bad(format!("max_iters must be >= 2, got {}", self.max_iters));
        }
        if self.stop_factor.is_nan() || self.stop_factor <= 1.0 {
            return bad(format!("stop_factor must be > 1, got {}", self.stop_factor));
        }
        if !(0.0..1.0).contains(&self.beta) {
            return bad(format!("beta must be in [0, 1), got {}", self.beta));
        }
        Ok(())
    }

    /// The learning rate of batch `i` of the sweep.
    pub fn lr_at(&self, i: usize) -> f64 {
        let pos = i as f64 / (self.max_iters - 1).max(1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(pos)
    }
}

/// What [`lr_find`] saw: one entry per batch with a finite loss.
#[derive(Clone, Debug, PartialEq)]
pub struct LrFinderResult {
    /// Learning rate of each batch.
    pub lrs: Vec<f64>,
    /// Raw loss of each batch.
    pub losses: Vec<f64>,
    /// Smoothed (debiased moving average) loss of each batch.
    pub smoothed: Vec<f64>,
    /// Whether the sweep stopped because the loss diverged (smoothed loss above
    /// `stop_factor` times the best, or a non-finite loss) rather than running out of
    /// batches.
    pub diverged: bool,
    /// The learning rate at the minimum of the smoothed loss (after `skip_start`).
    pub lr_at_min: f64,
    /// The learning rate where the smoothed loss falls fastest per unit of
    /// `ln(lr)`, between `skip_start` and the minimum; `None` with fewer than two
    /// points there.
    pub lr_steepest: Option<f64>,
    /// The suggestion: `lr_at_min / 10`.
    pub suggested_lr: f64,
}

impl LrFinderResult {
    /// The smoothed loss at the recorded learning rate closest (in log scale) to
    /// `lr`, for marking a learning rate on the curve.
    pub fn smoothed_at(&self, lr: f64) -> f64 {
        self.lrs
            .iter()
            .zip(&self.smoothed)
            .min_by(|a, b| {
                let da = (a.0.ln() - lr.ln()).abs();
                let db = (b.0.ln() - lr.ln()).abs();
                da.total_cmp(&db)
            })
            .map_or(f64::NAN, |(_, &s)| s)
    }
}

/// The callback that drives the sweep.
struct Sweep {
    config: LrFinderConfig,
    lrs: Vec<f64>,
    losses: Vec<f64>,
    smoothed: Vec<f64>,
    avg: f64,
    best: f64,
    diverged: bool,
}

impl Sweep {
    fn new(config: LrFinderConfig) -> Self {
        Self {
            config,
            lrs: Vec::new(),
            losses: Vec::new(),
            smoothed: Vec::new(),
            avg: 0.0,
            best: f64::INFINITY,
            diverged: false,
        }
    }

    /// Records one loss; returns whether the sweep must stop.
    fn record(&mut self, lr: f64, loss: f64) -> bool {
        if !loss.is_finite() {
            self.diverged = true;
            return true;
        }
        let i = self.losses.len();
        let beta = self.config.beta;
        self.avg = beta * self.avg + (1.0 - beta) * loss;
        let smooth = self.avg / (1.0 - beta.powi(i as i32 + 1));
        self.lrs.push(lr);
        self.losses.push(loss);
        self.smoothed.push(smooth);
        if i > 0 && smooth > self.config.stop_factor * self.best {
            self.diverged = true;
            return true;
        }
        self.best = self.best.min(smooth);
        i + 1 >= self.config.max_iters
    }

    fn finish(self) -> Result<LrFinderResult> {
        let n = self.smoothed.len();
        let first = if n > self.config.skip_start {
            self.config.skip_start
        } else {
            0
        };
        let Some(min_index) =
            (first..n).min_by(|&a, &b| self.smoothed[a].total_cmp(&self.smoothed[b]))
        else {
            return Err(TrainError::config(
                "lr_find",
                format!(
                    "no finite loss at all (the first batch, at lr {}, already gave a \
                     non-finite loss): check the model and data before looking for a \
                     learning rate",
                    self.config.start_lr
                ),
            ));
        };
        let lr_at_min = self.lrs[min_index];
        let lr_steepest = (first..min_index)
            .map(|i| {
                let slope = (self.smoothed[i + 1] - self.smoothed[i])
                    / (self.lrs[i + 1].ln() - self.lrs[i].ln());
                (i, slope)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| self.lrs[i]);
        Ok(LrFinderResult {
            lrs: self.lrs,
            losses: self.losses,
            smoothed: self.smoothed,
            diverged: self.diverged,
            lr_at_min,
            lr_steepest,
            suggested_lr: lr_at_min / 10.0,
        })
    }
}

impl Callback for Sweep {
    fn on_event(
        &mut self,
        event: Event,
        learn: &mut Learner,
    ) -> std::result::Result<(), Interrupt> {
        match event {
            Event::BeforeBatch if learn.training => {
                learn.optimizer.set_lr(self.config.lr_at(self.losses.len()));
            }
            Event::AfterLoss if learn.training => {
                let lr = learn
                    .optimizer
                    .groups()
                    .first()
                    .map_or(f64::NAN, |g| g.hp.lr);
                let loss = match &learn.loss {
                    Some(loss) if loss.tensor().elem_count() == 1 => loss.tensor().item()?,
                    // Not a single value: let the learner report it.
                    _ => return Ok(()),
                };
                if self.record(lr, loss) {
                    return Err(Interrupt::CancelFit);
                }
            }
            Event::BeforeValidate => return Err(Interrupt::CancelValidate),
            _ => {}
        }
        Ok(())
    }
}

/// Runs the LR finder on `learn` (see the [module docs](self)) and restores the
/// model, optimiser, callbacks and report afterwards, also when the sweep fails.
///
/// ```
/// # use data::loader::DataLoader;
/// # use nn::layers::{Linear, Relu, Sequential};
/// # use nn::optim::{HyperParams, Sgd};
/// # use tensor::{DType, Device, Tensor};
/// use train::lr_find::{lr_find, LrFinderConfig};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let mut rng = nn::init::seeded_rng(0);
/// # let x = Tensor::randn([256, 8], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?;
/// # let labels: Vec<u32> = x.to_vec::<f32>()?.chunks(8).map(|r| u32::from(r[0] > 0.0)).collect();
/// # let y = Tensor::from_vec(labels, [256], &Device::Cpu)?;
/// # let model = Sequential::new(vec![
/// #     Box::new(Linear::new(8, 32, true, DType::F32, &mut rng)?),
/// #     Box::new(Relu::new()),
/// #     Box::new(Linear::new(32, 2, true, DType::F32, &mut rng)?),
/// # ]);
/// # let mut learn = train::Learner::new(
/// #     Box::new(model),
/// #     |p| Sgd::new(p, HyperParams::default()),
/// #     nn::loss::cross_entropy,
/// #     DataLoader::new(&x, &y, 16)?.shuffle(1),
/// #     DataLoader::new(&x, &y, 256)?,
/// # )?;
/// let weights_before = train::ModelSnapshot::capture(&*learn.model)?;
/// let found = lr_find(&mut learn, LrFinderConfig { end_lr: 1e3, ..LrFinderConfig::default() })?;
/// assert!(found.diverged);
/// assert!(found.suggested_lr > 1e-3 && found.suggested_lr < 10.0);
/// // The sweep trained the model, then put the weights back.
/// # let _ = weights_before;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`TrainError::Config`] for a bad configuration or when not a single finite loss
/// was seen; any error of the sweep's [`fit`](Learner::fit) (after restoring).
pub fn lr_find(learn: &mut Learner, config: LrFinderConfig) -> Result<LrFinderResult> {
    config.validate()?;
    let snapshot = ModelSnapshot::capture(&*learn.model)?;
    let mut sweep_optimizer = learn.fresh_optimizer()?;
    for (fresh, current) in sweep_optimizer
        .groups_mut()
        .iter_mut()
        .zip(learn.optimizer.groups())
    {
        fresh.hp = current.hp;
    }
    let n_epochs = config
        .max_iters
        .div_ceil(learn.train_dl.num_batches().max(1));

    let optimizer = std::mem::replace(&mut learn.optimizer, sweep_optimizer);
    let callbacks = learn.take_callbacks();
    let report = std::mem::take(&mut learn.report);
    learn.add_callback(Sweep::new(config));

    let run = learn.fit(n_epochs);
    let sweep = learn.remove_callback::<Sweep>();

    learn.take_callbacks();
    learn.add_callbacks(callbacks);
    learn.optimizer = optimizer;
    learn.report = report;
    let restored = snapshot.restore(&*learn.model);
    run?;
    restored?;
    match sweep {
        Some(sweep) => sweep.finish(),
        None => Err(TrainError::config(
            "lr_find",
            "a callback of the sweep removed the sweep itself",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_checks() {
        assert!(LrFinderConfig::default().validate().is_ok());
        let bad = [
            LrFinderConfig {
                start_lr: 0.0,
                ..Default::default()
            },
            LrFinderConfig {
                end_lr: 1e-8,
                ..Default::default()
            },
            LrFinderConfig {
                max_iters: 1,
                ..Default::default()
            },
            LrFinderConfig {
                stop_factor: 1.0,
                ..Default::default()
            },
            LrFinderConfig {
                beta: 1.0,
                ..Default::default()
            },
        ];
        for c in bad {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with("lr_find:"), "{e}");
        }
    }

    #[test]
    fn lr_sweep_is_geometric_from_start_to_end() {
        let c = LrFinderConfig {
            start_lr: 1e-4,
            end_lr: 1.0,
            max_iters: 5,
            ..Default::default()
        };
        let lrs: Vec<f64> = (0..5).map(|i| c.lr_at(i)).collect();
        for (got, want) in lrs.iter().zip([1e-4, 1e-3, 1e-2, 1e-1, 1.0]) {
            assert!((got / want - 1.0).abs() < 1e-12, "{got} vs {want}");
        }
    }

    #[test]
    fn smoothing_is_debiased_and_divergence_stops() {
        let c = LrFinderConfig {
            beta: 0.5,
            stop_factor: 3.0,
            ..Default::default()
        };
        let mut s = Sweep::new(c);
        assert!(!s.record(1e-3, 2.0));
        // Debiased: the first smoothed value is the first loss itself.
        assert!((s.smoothed[0] - 2.0).abs() < 1e-12);
        assert!(!s.record(1e-2, 1.0));
        // avg = 0.5 * 1 + 0.25 * 2 = ... debiased by 1 - 0.25
        assert!((s.smoothed[1] - (0.5 * 1.0 + 0.5 * 0.5 * 2.0) / 0.75).abs() < 1e-12);
        assert!(s.record(1e-1, 100.0), "a jump to 100 is above 3x the best");
        assert!(s.diverged);
        let r = s.finish().unwrap();
        assert_eq!(r.lr_at_min, 1e-2);
        assert!((r.suggested_lr - 1e-3).abs() < 1e-15);
        assert_eq!(r.lr_steepest, Some(1e-3));
    }

    #[test]
    fn the_first_points_do_not_decide_the_suggestion() {
        let c = LrFinderConfig {
            beta: 0.0, // no smoothing: smoothed == raw
            stop_factor: 20.0,
            skip_start: 2,
            max_iters: 100,
            ..Default::default()
        };
        let mut s = Sweep::new(c);
        // A lucky first batch (0.1), then a descent to 0.5 at lr 1e-3.
        for (lr, loss) in [
            (1e-6, 0.1),
            (1e-5, 1.0),
            (1e-4, 0.9),
            (1e-3, 0.5),
            (1e-2, 0.8),
        ] {
            assert!(!s.record(lr, loss));
        }
        let r = s.finish().unwrap();
        assert_eq!(r.lr_at_min, 1e-3);
        assert_eq!(r.lr_steepest, Some(1e-4));
    }

    #[test]
    fn no_finite_loss_is_an_error() {
        let mut s = Sweep::new(LrFinderConfig::default());
        assert!(s.record(1e-7, f64::NAN));
        assert!(s
            .finish()
            .unwrap_err()
            .to_string()
            .contains("no finite loss"));
    }
}
