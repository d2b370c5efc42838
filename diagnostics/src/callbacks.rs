//! Thin adapters that drive the recorders from a [`train::Learner`] (feature
//! `learner`, on by default): [`Diagnostics`] records activations, gradients and
//! losses; [`EarlyAbort`] cancels a run whose activations blow up.
//!
//! Everything they do can be done without a learner with the recorders themselves;
//! these only map the learner's events to the recorders' calls:
//!
//! | event | [`Diagnostics`] | [`EarlyAbort`] |
//! |---|---|---|
//! | `before_fit` | attach hooks to `learn.model`; watch its parameters | reset the rule; attach its own hooks (if any) |
//! | `before_train` / `before_validate` | declare the pass | declare the pass |
//! | `after_loss` | log the training loss at `learn.step` | |
//! | `after_backward` | gradient statistics with the optimiser's lr | |
//! | `after_validate` | log the validation loss | |
//! | `after_batch` (training) | | feed new records to the rule; cancel the fit if it fires |
//! | `after_fit` | remove the hooks (records stay) | remove its own hooks |

use nn::hooks::ModuleFilter;
use train::{Callback, Event, Interrupt, Learner};

use crate::activations::{ActivationConfig, ActivationReader, ActivationStats, Pass};
use crate::early_abort::{AbortReason, AbortRule, EarlyAbortConfig};
use crate::error::Result;
use crate::gradients::{GradientConfig, GradientStats};
use crate::losses::LossLog;
use crate::training_log::TrainingLog;

/// Records everything the figures and the health report need while a learner trains:
/// activation statistics of the modules `filter` chooses (every training batch by
/// default), gradient statistics of the weights, and the losses. Each log keeps a
/// bounded number of records (the activation config's
/// [`capacity`](ActivationConfig::capacity) for the activations and the loss curves,
/// the gradient config's for the gradients; see [`crate::bounded`]), so memory stays
/// flat however many epochs are fitted.
///
/// After the run, get it back with `learn.callback::<Diagnostics>()` and call
/// [`log`](Diagnostics::log), then
/// [`TrainingLog::write_all`](crate::TrainingLog::write_all).
///
/// ```
/// use data::fashion_mnist::FashionMnist;
/// use data::loader::{DataLoader, Flatten, Normalize};
/// use diagnostics::activations::ActivationConfig;
/// use diagnostics::callbacks::Diagnostics;
/// use diagnostics::gradients::GradientConfig;
/// use diagnostics::health::HealthConfig;
/// use nn::hooks::ModuleFilter;
/// use nn::layers::{Linear, Relu, Sequential};
/// use nn::optim::{HyperParams, Sgd};
/// use tensor::DType;
/// use train::Learner;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let ds = FashionMnist::load_embedded()?;
/// let norm = Normalize::fit(&ds.train.images)?;
/// let train_dl = DataLoader::new(&ds.train.images, &ds.train.labels, 500)?.transform(norm).transform(Flatten);
/// let valid_dl = DataLoader::new(&ds.test.images, &ds.test.labels, 1000)?.transform(norm).transform(Flatten);
/// let mut rng = nn::init::seeded_rng(0);
/// let model = Sequential::new(vec![
///     Box::new(Linear::new(784, 50, true, DType::F32, &mut rng)?),
///     Box::new(Relu::new()),
///     Box::new(Linear::new(50, 10, true, DType::F32, &mut rng)?),
/// ]);
/// let diagnostics = Diagnostics::new(ModuleFilter::Leaves, ActivationConfig::relu())?
///     .with_gradients(GradientConfig::default())?;
/// let mut learn = Learner::new(
///     Box::new(model),
///     |p| Sgd::new(p, HyperParams { lr: 0.1, ..HyperParams::default() }),
///     nn::loss::cross_entropy,
///     train_dl,
///     valid_dl,
/// )?
/// .with_callback(diagnostics);
/// learn.fit(1)?;
/// let log = learn.callback::<Diagnostics>().unwrap().log();
/// assert_eq!(log.losses.train.len(), 10);
/// assert_eq!(log.activations.as_ref().unwrap().layers[1].records.len(), 10);
/// let report = log.health(&HealthConfig::classifier(10));
/// println!("{}", report.to_markdown(&[]));
/// # Ok(())
/// # }
/// ```
pub struct Diagnostics {
    filter: ModuleFilter,
    activations: ActivationStats,
    gradient_config: Option<GradientConfig>,
    gradients: Option<GradientStats>,
    losses: LossLog,
}

impl Diagnostics {
    /// Activation statistics of the modules `filter` chooses, recorded as `config`
    /// says; no gradient statistics (add them with
    /// [`with_gradients`](Self::with_gradients)).
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`](crate::error::DiagError::InvalidConfig) if
    /// `config` does not validate.
    pub fn new(filter: ModuleFilter, config: ActivationConfig) -> Result<Self> {
        let losses = LossLog::with_capacity(config.capacity);
        Ok(Self {
            filter,
            activations: ActivationStats::new(config)?,
            gradient_config: None,
            gradients: None,
            losses,
        })
    }

    /// Also records gradient statistics of the model's parameters.
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`](crate::error::DiagError::InvalidConfig) if
    /// `config` does not validate.
    pub fn with_gradients(mut self, config: GradientConfig) -> Result<Self> {
        config.validate()?;
        self.gradient_config = Some(config);
        Ok(self)
    }

    /// A read handle on the activation records (e.g. for [`EarlyAbort::watching`]).
    pub fn reader(&self) -> ActivationReader {
        self.activations.reader()
    }

    /// The activation recorder.
    pub fn activations(&self) -> &ActivationStats {
        &self.activations
    }

    /// Removes the hooks now. A fit that ends normally does this itself; one that
    /// stops with an error fires no further event, so its hooks stay until the next
    /// fit ends, this call, or the callback is dropped.
    pub fn detach(&mut self) {
        self.activations.detach();
        self.activations.set_pass(None);
    }

    /// A copy of everything recorded.
    pub fn log(&self) -> TrainingLog {
        TrainingLog {
            activations: Some(self.activations.log()),
            gradients: self.gradients.as_ref().map(|g| g.log().clone()),
            losses: self.losses.clone(),
        }
    }
}

/// The value of a single-element loss.
fn loss_value(learn: &Learner) -> Option<f64> {
    learn.loss.as_ref().and_then(|l| l.tensor().item().ok())
}

impl Callback for Diagnostics {
    fn on_event(
        &mut self,
        event: Event,
        learn: &mut Learner,
    ) -> std::result::Result<(), Interrupt> {
        match event {
            Event::BeforeFit => {
                if !self.activations.is_attached() {
                    self.activations.attach(&*learn.model, &self.filter)?;
                }
                if let (Some(config), None) = (self.gradient_config, &self.gradients) {
                    self.gradients = Some(GradientStats::for_model(&*learn.model, config)?);
                }
            }
            Event::BeforeTrain => self.activations.set_pass(Some(Pass::Train)),
            Event::BeforeValidate => self.activations.set_pass(Some(Pass::Valid)),
            Event::AfterLoss if learn.training => {
                if let Some(v) = loss_value(learn) {
                    self.losses.push_train(learn.step, v);
                }
            }
            Event::AfterBackward => {
                if let Some(grads) = &mut self.gradients {
                    grads.record_with_optimizer(learn.step, &*learn.optimizer)?;
                }
            }
            Event::AfterValidate => {
                let m = learn.phase_metrics();
                if m.batches > 0 {
                    // `step` has moved past the last training batch of the epoch.
                    self.losses.push_valid(learn.step, m.loss);
                }
            }
            Event::AfterFit => {
                self.detach();
                // A hook that could not read its output reports it here, failing the
                // fit loudly rather than leaving a silent gap in the figures.
                self.activations.check()?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Where [`EarlyAbort`] reads activation records from.
enum Source {
    /// Another recorder's records (a [`Diagnostics`] or an [`ActivationStats`]).
    Shared(ActivationReader),
    /// Its own hooks, attached for each fit.
    Own {
        stats: ActivationStats,
        filter: ModuleFilter,
    },
}

/// Cancels a run whose activation variance spikes and then collapses, or whose
/// activations turn NaN/infinite (the [`AbortRule`]), and says why: the reason is
/// printed to stderr (unless [`quiet`](EarlyAbort::quiet)) and kept in
/// [`reason`](EarlyAbort::reason). `fit` then returns normally, its report ending
/// where the run was cancelled.
///
/// Share a [`Diagnostics`]' records with [`watching`](EarlyAbort::watching) (no
/// extra hooks), or let it watch on its own with [`new`](EarlyAbort::new).
pub struct EarlyAbort {
    rule: AbortRule,
    source: Source,
    quiet: bool,
}

impl EarlyAbort {
    /// Watches the modules `filter` chooses with its own hooks (recording only what
    /// the rule needs, every training batch).
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`](crate::error::DiagError::InvalidConfig) if
    /// `config` does not validate.
    pub fn new(filter: ModuleFilter, config: EarlyAbortConfig) -> Result<Self> {
        let stats = ActivationStats::new(ActivationConfig::relu())?;
        Ok(Self {
            rule: AbortRule::new(config)?,
            source: Source::Own { stats, filter },
            quiet: false,
        })
    }

    /// Reads the records of another recorder (e.g. `diagnostics.reader()`); that
    /// recorder must record training batches, every batch or every few.
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`](crate::error::DiagError::InvalidConfig) if
    /// `config` does not validate.
    pub fn watching(reader: ActivationReader, config: EarlyAbortConfig) -> Result<Self> {
        Ok(Self {
            rule: AbortRule::new(config)?,
            source: Source::Shared(reader),
            quiet: false,
        })
    }

    /// Does not print the reason (it is still kept).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Why the last fit was cancelled, if it was.
    pub fn reason(&self) -> Option<&AbortReason> {
        self.rule.reason()
    }

    /// Removes its own hooks now (after a fit that stopped with an error, which fires
    /// no `after_fit`); does nothing when it reads another recorder's records.
    pub fn detach(&mut self) {
        if let Source::Own { stats, .. } = &mut self.source {
            stats.detach();
            stats.set_pass(None);
        }
    }
}

impl Callback for EarlyAbort {
    fn on_event(
        &mut self,
        event: Event,
        learn: &mut Learner,
    ) -> std::result::Result<(), Interrupt> {
        match event {
            Event::BeforeFit => {
                self.rule = AbortRule::new(*self.rule.config())?;
                match &mut self.source {
                    Source::Own { stats, filter } => {
                        stats.clear();
                        if !stats.is_attached() {
                            stats.attach(&*learn.model, filter)?;
                        }
                    }
                    Source::Shared(reader) => {
                        let rule = &mut self.rule;
                        reader.with_log(|log| rule.skip_existing(log));
                    }
                }
            }
            Event::BeforeTrain | Event::BeforeValidate => {
                if let Source::Own { stats, .. } = &self.source {
                    let pass = if event == Event::BeforeTrain {
                        Pass::Train
                    } else {
                        Pass::Valid
                    };
                    stats.set_pass(Some(pass));
                }
            }
            Event::AfterBatch if learn.training => {
                let rule = &mut self.rule;
                let fired = match &self.source {
                    Source::Shared(reader) => reader.with_log(|log| rule.scan(log).is_some()),
                    Source::Own { stats, .. } => stats.with_log(|log| rule.scan(log).is_some()),
                };
                if fired {
                    if let (false, Some(reason)) = (self.quiet, self.rule.reason()) {
                        eprintln!("early abort at training step {}: {reason}", learn.step);
                    }
                    return Err(Interrupt::CancelFit);
                }
            }
            Event::AfterFit => self.detach(),
            _ => {}
        }
        Ok(())
    }

    /// After [`Diagnostics`] (order 0), so a shared log is up to date.
    fn order(&self) -> i32 {
        5
    }
}
