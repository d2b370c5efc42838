//! [`GradientStats`]: per-parameter gradient statistics after backward, Karpathy's
//! grad:data and update:data ratios, and gradient histograms at one step.
//!
//! For each parameter `w` with gradient `g` and learning rate `lr` (from the
//! optimiser's group that holds it):
//!
//! - **grad:data** = `std(g) / std(w)`: how large the gradient is against the values
//!   it will change;
//! - **update:data** = `log10(std(lr * g) / std(w))`: how much one step changes the
//!   parameter, relative to its size. Karpathy's rule of thumb: about `-3` (an update
//!   of a thousandth of the data per step); far below means the parameter learns too
//!   slowly, far above that the steps are too big. For SGD without momentum this is
//!   the update exactly; with momentum or Adam it is the raw-gradient proxy he plots.
//!
//! Record after `backward` and before the optimiser's step (the gradient is complete
//! and the data is what the step will change). Each tensor is read once by the fused
//! statistics kernel; nothing is copied.
//!
//! Each parameter keeps at most [`GradientConfig::capacity`] records, older ones
//! folded together beyond it (see [`crate::bounded`]).

use autograd::Var;
use kernels::cpu::stats::{Stats, StatsConfig};
use nn::module::named_parameters_of;
use nn::optim::Optimizer;
use nn::Module;

use crate::bounded::{
    combine_moments, fold_to_capacity, mean_of_defined, min_capacity, Fold, Sequence, Span,
    DEFAULT_CAPACITY,
};
use crate::error::{DiagError, Result};
use crate::histogram::HistogramSpec;
use crate::tensor_stats::tensor_stats;

/// What [`GradientStats`] records.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradientConfig {
    /// Record at steps that are multiples of `every`.
    pub every: usize,
    /// Watch only parameters of rank 2 or more (weight matrices and conv kernels), as
    /// Karpathy does (`p.ndim == 2`): biases and norm gains often start at a constant,
    /// where `std(w) = 0` makes the ratios meaningless.
    pub weights_only: bool,
    /// Capture a histogram of each gradient at this step.
    pub histogram_at: Option<usize>,
    /// Bins of those histograms (symmetric over `±max|g|` of each parameter).
    pub histogram_bins: usize,
    /// Records kept per parameter (default
    /// [`DEFAULT_CAPACITY`]): beyond it older
    /// records are folded together, the first, the last and the `histogram_at` step
    /// staying exact (see [`crate::bounded`]). `usize::MAX` keeps every record.
    pub capacity: usize,
}

impl Default for GradientConfig {
    /// Every step, weights only, a 100-bin histogram at step 0, at most
    /// [`DEFAULT_CAPACITY`] records per parameter.
    fn default() -> Self {
        Self {
            every: 1,
            weights_only: true,
            histogram_at: Some(0),
            histogram_bins: 100,
            capacity: DEFAULT_CAPACITY,
        }
    }
}

impl GradientConfig {
    /// Checks every value; the error names the field and the value.
    pub fn validate(&self) -> Result<()> {
        if self.every == 0 {
            return Err(DiagError::config(
                "GradientConfig",
                "every",
                0,
                "must be at least 1",
            ));
        }
        let least = min_capacity(usize::from(self.histogram_at.is_some()));
        if self.capacity < least {
            return Err(DiagError::config(
                "GradientConfig",
                "capacity",
                self.capacity,
                format!("must be at least {least}"),
            ));
        }
        HistogramSpec::signed(self.histogram_bins, -1.0, 1.0).validate("GradientConfig")
    }
}

/// One parameter's gradient at one step, or at the recorded steps
/// `step..=last_step` folded together (see [`crate::bounded`]).
///
/// A folded record's means and stds are those of the union of the steps' values (each
/// step weighted alike: the parameter has the same number of elements at every step);
/// its learning rate and ratios are the mean of the per-step ones, leaving out steps
/// where they are undefined.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientRecord {
    /// The step it was recorded at; the first step covered by a folded record.
    pub step: usize,
    /// The last step covered: `step` for an exact record.
    pub last_step: usize,
    /// How many recorded steps this record stands for: 1 for an exact record.
    pub merged: u64,
    /// The learning rate of the parameter's group (NaN when unknown).
    pub lr: f64,
    /// Mean of the gradient.
    pub grad_mean: f64,
    /// Standard deviation of the gradient.
    pub grad_std: f64,
    /// Mean of the parameter's values.
    pub data_mean: f64,
    /// Standard deviation of the parameter's values.
    pub data_std: f64,
    /// `grad_std / data_std` (NaN when `data_std` is 0).
    pub grad_data: f64,
    /// `log10(lr * grad_std / data_std)` (NaN when undefined, `-inf` at `lr = 0`).
    pub update_data_log10: f64,
    /// NaN and infinite gradient values.
    pub non_finite: u64,
}

impl GradientRecord {
    /// Merges `later` (a record of the same parameter, of later steps) into this one.
    pub fn merge(&mut self, later: &GradientRecord) {
        let (na, nb) = (self.merged, later.merged);
        let (fa, fb) = (na as f64, nb as f64);
        (self.grad_mean, self.grad_std) = combine_moments(
            (fa, self.grad_mean, self.grad_std),
            (fb, later.grad_mean, later.grad_std),
        );
        (self.data_mean, self.data_std) = combine_moments(
            (fa, self.data_mean, self.data_std),
            (fb, later.data_mean, later.data_std),
        );
        self.lr = mean_of_defined(self.lr, na, later.lr, nb);
        self.grad_data = mean_of_defined(self.grad_data, na, later.grad_data, nb);
        self.update_data_log10 =
            mean_of_defined(self.update_data_log10, na, later.update_data_log10, nb);
        self.non_finite += later.non_finite;
        self.merged += later.merged;
        self.last_step = self.last_step.max(later.last_step);
    }
}

impl Span for GradientRecord {
    fn first(&self) -> usize {
        self.step
    }

    fn last(&self) -> usize {
        self.last_step
    }

    fn merged_calls(&self) -> u64 {
        self.merged
    }
}

impl Fold for GradientRecord {
    fn absorb(&mut self, later: &Self) {
        self.merge(later);
    }
}

/// A histogram of one parameter's gradient at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct GradientHistogram {
    /// The step.
    pub step: usize,
    /// The bins.
    pub spec: HistogramSpec,
    /// Counts per bin.
    pub counts: Vec<u64>,
    /// The record of the same step (mean, std, grad:data for the legend).
    pub record: GradientRecord,
}

/// Everything recorded for one parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGradients {
    /// Dotted name, e.g. `"3.weight"`.
    pub name: String,
    /// Shape of the parameter.
    pub shape: Vec<usize>,
    /// One record per recorded step at which the parameter had a gradient, at most
    /// [`GradientConfig::capacity`] of them (older ones folded together).
    pub records: Vec<GradientRecord>,
    /// The histogram captured at [`GradientConfig::histogram_at`].
    pub histogram: Option<GradientHistogram>,
    /// The first recorded step whose gradient had NaN or infinite values (exact
    /// whatever the folding).
    pub first_non_finite: Option<usize>,
}

impl ParamGradients {
    /// `name [shape]`, e.g. `3.weight [16, 8, 3, 3]`.
    pub fn label(&self) -> String {
        format!("{} {:?}", self.name, self.shape)
    }
}

/// Everything a [`GradientStats`] recorded.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GradientLog {
    /// One entry per watched parameter, in the model's order.
    pub params: Vec<ParamGradients>,
}

impl GradientLog {
    /// The parameter named `name`, if watched.
    pub fn param(&self, name: &str) -> Option<&ParamGradients> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.params.iter().all(|p| p.records.is_empty())
    }

    /// The first recorded `(step, parameter)` whose gradient had NaN or infinities
    /// (from [`ParamGradients::first_non_finite`], or for a log built by hand, the
    /// first record with non-finite values).
    pub fn first_non_finite(&self) -> Option<(usize, &str)> {
        self.params
            .iter()
            .filter_map(|p| {
                p.first_non_finite
                    .or_else(|| p.records.iter().find(|r| r.non_finite > 0).map(|r| r.step))
                    .map(|step| (step, p.name.as_str()))
            })
            .min_by_key(|(step, _)| *step)
    }
}

/// Records gradient statistics of a model's parameters, step by step.
///
/// ```
/// use autograd::Var;
/// use diagnostics::gradients::{GradientConfig, GradientStats};
/// use nn::layers::{Linear, Sequential};
/// use nn::optim::{HyperParams, Sgd};
/// use nn::{Module, ModuleExt};
/// use tensor::{DType, Device, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut rng = nn::init::seeded_rng(0);
/// let model = Sequential::new(vec![Box::new(Linear::new(8, 4, true, DType::F32, &mut rng)?)]);
/// let opt = Sgd::new(model.parameters(), HyperParams { lr: 0.1, ..HyperParams::default() })?;
/// let mut grads = GradientStats::for_model(&model, GradientConfig::default())?;
/// let x = Var::constant(Tensor::randn([16, 8], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?);
/// model.forward(&x)?.square()?.mean_all()?.backward()?;
/// grads.record_with_optimizer(0, &opt)?; // after backward, before opt.step()
/// let w = grads.log().param("0.weight").unwrap();
/// let r = &w.records[0];
/// assert!((r.update_data_log10 - (0.1 * r.grad_std / r.data_std).log10()).abs() < 1e-9);
/// # Ok(())
/// # }
/// ```
pub struct GradientStats {
    config: GradientConfig,
    watched: Vec<Var>,
    log: GradientLog,
    /// Folding state of each parameter's records.
    sequences: Vec<Sequence>,
}

impl GradientStats {
    /// Watches the named parameters (those of rank >= 2 only, unless
    /// [`GradientConfig::weights_only`] is off).
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`] for a bad config; [`DiagError::NoParameters`] if
    /// no parameter qualifies.
    pub fn new(params: Vec<(String, Var)>, config: GradientConfig) -> Result<Self> {
        config.validate()?;
        let total = params.len();
        let (watched, entries): (Vec<Var>, Vec<ParamGradients>) = params
            .into_iter()
            .filter(|(_, v)| !config.weights_only || v.rank() >= 2)
            .map(|(name, v)| {
                let entry = ParamGradients {
                    name,
                    shape: v.dims().to_vec(),
                    records: Vec::new(),
                    histogram: None,
                    first_non_finite: None,
                };
                (v, entry)
            })
            .unzip();
        if watched.is_empty() {
            return Err(DiagError::NoParameters {
                what: "GradientStats::new",
                detail: format!(
                    "{total} parameters given, none of rank >= 2 (set weights_only = false to watch vectors)"
                ),
            });
        }
        Ok(Self {
            config,
            sequences: vec![Sequence::new(config.every); watched.len()],
            watched,
            log: GradientLog { params: entries },
        })
    }

    /// Watches the parameters of `model`, named by their dotted paths.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn for_model(model: &dyn Module, config: GradientConfig) -> Result<Self> {
        Self::new(named_parameters_of(model), config)
    }

    /// Records the current gradients at `step`, with each parameter's learning rate
    /// taken from the optimiser group that holds it. Returns how many parameters were
    /// recorded (those with a gradient), 0 when `step` is not recorded.
    ///
    /// # Errors
    /// [`DiagError::Tensor`] / [`DiagError::Kernel`] if a tensor cannot be read.
    pub fn record_with_optimizer(
        &mut self,
        step: usize,
        optimizer: &dyn Optimizer,
    ) -> Result<usize> {
        let groups = optimizer.groups();
        self.record(step, |p| {
            groups
                .iter()
                .find(|g| g.params.iter().any(|q| q.id() == p.id()))
                .map(|g| g.hp.lr)
        })
    }

    /// Records the current gradients at `step` with one learning rate for all.
    ///
    /// # Errors
    /// As [`record_with_optimizer`](Self::record_with_optimizer).
    pub fn record_with_lr(&mut self, step: usize, lr: f64) -> Result<usize> {
        self.record(step, |_| Some(lr))
    }

    /// Records the current gradients at `step`; `lr_of` gives a parameter's
    /// learning rate (`None`: unknown, the update ratio is NaN).
    ///
    /// # Errors
    /// As [`record_with_optimizer`](Self::record_with_optimizer).
    pub fn record(&mut self, step: usize, lr_of: impl Fn(&Var) -> Option<f64>) -> Result<usize> {
        let histogram_now = self.config.histogram_at == Some(step);
        if !step.is_multiple_of(self.config.every) && !histogram_now {
            return Ok(0);
        }
        // Moments only: one bin, no thresholds.
        let moments = StatsConfig {
            bins: 1,
            lo: -1.0,
            hi: 1.0,
            near_zero: 0.0,
            saturation: f64::INFINITY,
            abs: false,
        };
        let mut recorded = 0;
        let (capacity, kept) = (self.config.capacity, self.config.histogram_at);
        for ((var, entry), sequence) in self
            .watched
            .iter()
            .zip(&mut self.log.params)
            .zip(&mut self.sequences)
        {
            let Some(grad) = var.grad() else { continue };
            let g = tensor_stats(&grad, &moments, &format!("gradient of {}", entry.name))?;
            let w = tensor_stats(var.tensor(), &moments, &format!("values of {}", entry.name))?;
            let lr = lr_of(var).unwrap_or(f64::NAN);
            let record = make_record(step, lr, &g, &w);
            if histogram_now {
                let max_abs = g
                    .min()
                    .unwrap_or(0.0)
                    .abs()
                    .max(g.max().unwrap_or(0.0).abs());
                let spec = HistogramSpec::symmetric_around(max_abs, self.config.histogram_bins);
                let cfg = StatsConfig {
                    bins: spec.bins,
                    lo: spec.lo,
                    hi: spec.hi,
                    ..moments
                };
                let h = tensor_stats(&grad, &cfg, &format!("gradient of {}", entry.name))?;
                entry.histogram = Some(GradientHistogram {
                    step,
                    spec,
                    counts: h.histogram().to_vec(),
                    record: record.clone(),
                });
            }
            if record.non_finite > 0 && entry.first_non_finite.is_none() {
                entry.first_non_finite = Some(step);
            }
            entry.records.push(record);
            sequence.len += 1;
            if sequence.len > capacity {
                fold_to_capacity(
                    &mut entry.records,
                    sequence,
                    capacity,
                    |_| true,
                    |r| !r.is_folded() && Some(r.step) == kept,
                );
            }
            recorded += 1;
        }
        Ok(recorded)
    }

    /// What has been recorded.
    pub fn log(&self) -> &GradientLog {
        &self.log
    }

    /// The recorded data, consuming the recorder.
    pub fn into_log(self) -> GradientLog {
        self.log
    }
}

fn make_record(step: usize, lr: f64, g: &Stats, w: &Stats) -> GradientRecord {
    let (grad_std, data_std) = (g.std(), w.std());
    let grad_data = if data_std > 0.0 {
        grad_std / data_std
    } else {
        f64::NAN
    };
    GradientRecord {
        step,
        last_step: step,
        merged: 1,
        lr,
        grad_mean: g.mean(),
        grad_std,
        data_mean: w.mean(),
        data_std,
        grad_data,
        update_data_log10: (lr * grad_data).log10(),
        non_finite: g.non_finite(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensor::{Device, Tensor};

    fn param(values: Vec<f32>, dims: &[usize]) -> Var {
        Var::parameter(Tensor::from_vec(values, dims, &Device::Cpu).unwrap())
    }

    #[test]
    fn ratios_match_their_definitions() {
        let w = param(vec![1.0, -1.0, 3.0, -3.0], &[2, 2]);
        w.set_grad(Some(
            Tensor::from_vec(vec![0.1f32, -0.1, 0.1, -0.1], [2, 2], &Device::Cpu).unwrap(),
        ));
        let mut gs = GradientStats::new(vec![("w".into(), w)], GradientConfig::default()).unwrap();
        assert_eq!(gs.record_with_lr(0, 0.5).unwrap(), 1);
        let r = &gs.log().params[0].records[0];
        // std(w) = sqrt(5), std(g) = 0.1.
        assert!((r.data_std - 5f64.sqrt()).abs() < 1e-6);
        assert!((r.grad_std - 0.1).abs() < 1e-6);
        assert!((r.grad_data - 0.1 / 5f64.sqrt()).abs() < 1e-6);
        assert!((r.update_data_log10 - (0.05 / 5f64.sqrt()).log10()).abs() < 1e-6);
        let h = gs.log().params[0].histogram.as_ref().unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), 4);
    }

    #[test]
    fn vectors_are_skipped_by_default_and_constant_data_gives_nan() {
        let b = param(vec![0.0; 3], &[3]);
        let e = GradientStats::new(vec![("b".into(), b.clone())], GradientConfig::default());
        assert!(e.err().unwrap().to_string().contains("none of rank >= 2"));
        let cfg = GradientConfig {
            weights_only: false,
            ..GradientConfig::default()
        };
        let mut gs = GradientStats::new(vec![("b".into(), b.clone())], cfg).unwrap();
        assert_eq!(gs.record_with_lr(0, 0.1).unwrap(), 0, "no gradient yet");
        b.set_grad(Some(
            Tensor::ones([3], tensor::DType::F32, &Device::Cpu).unwrap(),
        ));
        assert_eq!(gs.record_with_lr(0, 0.1).unwrap(), 1);
        assert!(gs.log().params[0].records[0].grad_data.is_nan());
    }

    #[test]
    fn every_and_config_errors() {
        let w = param(vec![1.0, 2.0], &[1, 2]);
        w.set_grad(Some(
            Tensor::from_vec(vec![f32::NAN, 1.0], [1, 2], &Device::Cpu).unwrap(),
        ));
        let cfg = GradientConfig {
            every: 2,
            histogram_at: None,
            ..GradientConfig::default()
        };
        let mut gs = GradientStats::new(vec![("w".into(), w)], cfg).unwrap();
        for step in 0..5 {
            gs.record_with_lr(step, 0.1).unwrap();
        }
        let steps: Vec<usize> = gs.log().params[0].records.iter().map(|r| r.step).collect();
        assert_eq!(steps, vec![0, 2, 4]);
        assert_eq!(gs.log().first_non_finite(), Some((0, "w")));
        let bad = GradientConfig {
            every: 0,
            ..GradientConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("every = 0"));
    }
}
