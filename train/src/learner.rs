//! The [`Learner`]: a model, its optimiser, a loss function, data and callbacks, plus
//! the state of the run that callbacks read and change.
//!
//! The training loop itself is in [`fit`](crate::fit); this module holds what it
//! works on.
//!
//! # Why `Box<dyn Module>`
//!
//! The learner is the model's one owner. Every [`Module`] method takes `&self` (layers
//! use interior mutability), hooks are removed by handles that hold only a `Weak` to
//! the module's registry, and every callback receives `&mut Learner` at every event,
//! so nothing needs a second strong reference to the model. An `Arc` would let a
//! callback keep the model alive past the run and race the loop for it, for no gain.
//! A program gets the trained model back through the public field or
//! [`Learner::into_model`].

use std::any::Any;
use std::fmt;

use autograd::Var;
use data::loader::DataLoader;
use nn::optim::Optimizer;
use nn::Module;
use tensor::Tensor;

use crate::callback::Callback;
use crate::callbacks::{PrintMetrics, Progress};
use crate::error::{Result, TrainError};
use crate::event::Phase;
use crate::metrics::{Accumulator, FitReport, PhaseMetrics};

/// A loss function: predictions and targets to a single-value loss.
/// `nn::loss::cross_entropy` is one.
pub type LossFn = Box<dyn Fn(&Var, &Tensor) -> nn::Result<Var> + Send + Sync>;

/// Builds an optimiser over the model's parameters (the lesson's `opt_func`). The
/// learner calls it once at construction and again for
/// [`Learner::fresh_optimizer`] (the LR finder sweeps with a fresh one so the real
/// optimiser's state is untouched).
pub type OptimizerFn = Box<dyn Fn(Vec<Var>) -> nn::Result<Box<dyn Optimizer>>>;

/// A model, its optimiser, a loss function, training and validation data, and
/// callbacks; [`fit`](Learner::fit) trains.
///
/// The public fields are the state of the run. The loop sets the counters and the
/// batch before each event; callbacks may read all of it and may replace the model,
/// the optimiser, the batch (`xb`/`yb` in `before_batch`), the predictions (in
/// `after_pred`) and the loss (in `after_loss`), and the loop carries on with what
/// they leave.
///
/// ```
/// use data::loader::DataLoader;
/// use nn::layers::{Linear, Relu, Sequential};
/// use nn::optim::{HyperParams, Sgd};
/// use tensor::{DType, Device, Tensor};
/// use train::Learner;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Two Gaussian blobs, classes 0 and 1.
/// let mut rng = nn::init::seeded_rng(0);
/// let x = Tensor::randn([64, 2], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?;
/// let labels: Vec<u32> = (0..64).map(|i| (i % 2) as u32).collect();
/// let shift = Tensor::from_vec(labels.iter().map(|&l| l as f32 * 4.0 - 2.0).collect(), [64, 1], &Device::Cpu)?;
/// let x = x.add(&shift)?;
/// let y = Tensor::from_vec(labels, [64], &Device::Cpu)?;
///
/// let model = Sequential::new(vec![
///     Box::new(Linear::new(2, 16, true, DType::F32, &mut rng)?),
///     Box::new(Relu::new()),
///     Box::new(Linear::new(16, 2, true, DType::F32, &mut rng)?),
/// ]);
/// let mut learn = Learner::new(
///     Box::new(model),
///     |params| Sgd::new(params, HyperParams { lr: 0.1, ..HyperParams::default() }),
///     nn::loss::cross_entropy,
///     DataLoader::new(&x, &y, 16)?.shuffle(0),
///     DataLoader::new(&x, &y, 64)?,
/// )?;
/// let report = learn.fit(3)?;
/// assert_eq!(report.rows.len(), 3);
/// assert!(report.rows[2].valid.unwrap().accuracy.unwrap() > 0.9);
/// # Ok(())
/// # }
/// ```
pub struct Learner {
    /// The model (owned: see the module docs).
    pub model: Box<dyn Module>,
    /// The optimiser over the model's parameters.
    pub optimizer: Box<dyn Optimizer>,
    /// Predictions and targets to the loss.
    pub loss_fn: LossFn,
    /// Batches for the training phase.
    pub train_dl: DataLoader,
    /// Batches for the validation phase (zero batches skips validation).
    pub valid_dl: DataLoader,

    /// Current epoch (0-based).
    pub epoch: usize,
    /// Epochs of the current `fit`.
    pub n_epochs: usize,
    /// Batch index within the current phase (0-based).
    pub iter: usize,
    /// Batches in the current phase.
    pub n_iters: usize,
    /// Global training step: the index of the current training batch over the whole
    /// fit (0 for the first), i.e. the number of training batches begun before it.
    /// A scheduler's position is `step / total_steps`.
    pub step: usize,
    /// Training batches of the whole fit: `n_epochs * train_dl.num_batches()`.
    pub total_steps: usize,
    /// Whether the current phase is training (set by the loop; changing it does not
    /// change the loop).
    pub training: bool,
    /// The current batch's inputs.
    pub xb: Option<Tensor>,
    /// The current batch's targets.
    pub yb: Option<Tensor>,
    /// The model's output for the current batch (from `after_pred` on).
    pub preds: Option<Var>,
    /// The current batch's loss (from `after_loss` on).
    pub loss: Option<Var>,
    /// The report of the current (or last) fit, filled as the run goes: rows appear
    /// when their phase ends.
    pub report: FitReport,
    /// Whether `fit` flushes subnormal floats to zero on its threads while it runs
    /// (default `true`; see [`kernels::cpu::denormals`]): a dying network otherwise
    /// spends much of its time in the CPU's slow path for numbers below `1e-38`.
    pub flush_denormals: bool,

    pub(crate) phase: Option<Phase>,
    pub(crate) running: Accumulator,
    pub(crate) callbacks: Vec<Box<dyn Callback>>,
    optimizer_fn: OptimizerFn,
}

impl fmt::Debug for Learner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Learner")
            .field("model", &self.model.kind())
            .field("train_dl", &self.train_dl)
            .field("valid_dl", &self.valid_dl)
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .field("callbacks", &self.callback_names())
            .finish_non_exhaustive()
    }
}

impl Learner {
    /// A learner for `model`, with the optimiser `optimizer_fn` builds over the
    /// model's parameters, the loss `loss_fn`, and the two loaders.
    ///
    /// It starts with two callbacks: [`Progress`] (a progress bar, drawn only when
    /// stderr is a terminal) and [`PrintMetrics`] (the per-phase table on stdout);
    /// remove them with [`remove_callback`](Learner::remove_callback).
    ///
    /// # Errors
    /// [`TrainError::Nn`] if the optimiser cannot be built (bad hyper-parameters);
    /// [`TrainError::Config`] if the model has no parameters.
    pub fn new<O, F, L>(
        model: Box<dyn Module>,
        optimizer_fn: F,
        loss_fn: L,
        train_dl: DataLoader,
        valid_dl: DataLoader,
    ) -> Result<Self>
    where
        O: Optimizer + 'static,
        F: Fn(Vec<Var>) -> nn::Result<O> + 'static,
        L: Fn(&Var, &Tensor) -> nn::Result<Var> + Send + Sync + 'static,
    {
        let optimizer_fn: OptimizerFn =
            Box::new(move |params| Ok(Box::new(optimizer_fn(params)?) as Box<dyn Optimizer>));
        let params = parameters(&*model);
        if params.is_empty() {
            return Err(TrainError::config(
                "Learner::new",
                format!("the model ({}) has no parameters to train", model.kind()),
            ));
        }
        let optimizer = optimizer_fn(params).map_err(|source| TrainError::Nn {
            during: "building the optimizer",
            source: Box::new(source),
        })?;
        Ok(Self {
            model,
            optimizer,
            loss_fn: Box::new(loss_fn),
            train_dl,
            valid_dl,
            epoch: 0,
            n_epochs: 0,
            iter: 0,
            n_iters: 0,
            step: 0,
            total_steps: 0,
            training: false,
            xb: None,
            yb: None,
            preds: None,
            loss: None,
            report: FitReport::default(),
            flush_denormals: true,
            phase: None,
            running: Accumulator::start(),
            callbacks: vec![Box::new(Progress::new()), Box::new(PrintMetrics::new())],
            optimizer_fn,
        })
    }

    /// A new optimiser from the learner's optimiser function over the model's current
    /// parameters: initial hyper-parameters, empty state (momentum buffers, Adam
    /// moments).
    pub fn fresh_optimizer(&self) -> Result<Box<dyn Optimizer>> {
        (self.optimizer_fn)(parameters(&*self.model)).map_err(|source| TrainError::Nn {
            during: "building a fresh optimizer",
            source: Box::new(source),
        })
    }

    /// Replaces the optimiser with a [fresh](Learner::fresh_optimizer) one (e.g.
    /// after replacing the model, or to start a new experiment on the same model).
    pub fn reset_optimizer(&mut self) -> Result<()> {
        self.optimizer = self.fresh_optimizer()?;
        Ok(())
    }

    /// The phase being run, or `None` outside a phase (between epochs, before and
    /// after the fit).
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    /// Loss and accuracy of the current phase so far (complete in `after_train` and
    /// `after_validate`).
    pub fn phase_metrics(&self) -> PhaseMetrics {
        self.running.metrics()
    }

    /// Adds a named value to the current epoch's row of the report (a callback's
    /// own measurement: a dead-unit fraction, a gradient ratio...), so it travels with
    /// the loss and accuracy in the [`FitReport`]. From `before_epoch` on it goes to
    /// the epoch in progress (after the run, to the last one); before the first epoch
    /// it returns `false` and records nothing.
    pub fn record_value(&mut self, name: impl Into<String>, value: f64) -> bool {
        match self.report.rows.last_mut() {
            Some(row) if row.epoch == self.epoch => {
                row.extra.push((name.into(), value));
                true
            }
            _ => false,
        }
    }

    /// Adds a callback (builder style).
    pub fn with_callback(mut self, callback: impl Callback) -> Self {
        self.add_callback(callback);
        self
    }

    /// Adds a callback, after those of lower or equal [`order`](Callback::order),
    /// so the list is always in the order the callbacks run. Added during a fit (by
    /// another callback), it takes part from the next fit on.
    pub fn add_callback(&mut self, callback: impl Callback) {
        self.add_boxed_callback(Box::new(callback));
    }

    /// Adds an already boxed callback (see [`add_callback`](Learner::add_callback)).
    pub fn add_boxed_callback(&mut self, callback: Box<dyn Callback>) {
        let order = callback.order();
        let at = self.callbacks.partition_point(|c| c.order() <= order);
        self.callbacks.insert(at, callback);
    }

    /// The first callback of type `T`, to read what it recorded. Callbacks are out of
    /// the learner while `fit` runs, so this finds nothing from inside a callback.
    pub fn callback<T: Callback>(&self) -> Option<&T> {
        self.callbacks.iter().find_map(|c| {
            let any: &dyn Any = c.as_ref();
            any.downcast_ref::<T>()
        })
    }

    /// The first callback of type `T`, mutably.
    pub fn callback_mut<T: Callback>(&mut self) -> Option<&mut T> {
        self.callbacks.iter_mut().find_map(|c| {
            let any: &mut dyn Any = c.as_mut();
            any.downcast_mut::<T>()
        })
    }

    /// Removes and returns the first callback of type `T`.
    pub fn remove_callback<T: Callback>(&mut self) -> Option<T> {
        let index = self.callbacks.iter().position(|c| {
            let any: &dyn Any = c.as_ref();
            any.is::<T>()
        })?;
        let boxed: Box<dyn Any> = self.callbacks.remove(index);
        boxed.downcast::<T>().ok().map(|b| *b)
    }

    /// Adds callbacks taken from a learner with
    /// [`take_callbacks`](Learner::take_callbacks).
    pub fn add_callbacks(&mut self, callbacks: Vec<Box<dyn Callback>>) {
        for callback in callbacks {
            self.add_boxed_callback(callback);
        }
    }

    /// Removes every callback and returns them (to run a bare loop, or to move them
    /// to another learner).
    pub fn take_callbacks(&mut self) -> Vec<Box<dyn Callback>> {
        std::mem::take(&mut self.callbacks)
    }

    /// The names of the installed callbacks, in the order they run.
    pub fn callback_names(&self) -> Vec<String> {
        self.callbacks.iter().map(|c| c.name()).collect()
    }

    /// Gives the model back, dropping the rest.
    pub fn into_model(self) -> Box<dyn Module> {
        self.model
    }
}

/// Every parameter of the model tree.
pub(crate) fn parameters(model: &dyn Module) -> Vec<Var> {
    nn::module::named_parameters_of(model)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}
