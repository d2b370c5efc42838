//! The training loop of the engine, built so that a network can be watched and
//! steered while it trains.
//!
//! - [`Learner`]: a model, an optimiser, a loss function, training and validation
//!   [`DataLoader`](data::loader::DataLoader)s and [`Callback`]s. [`Learner::fit`] runs
//!   epochs of training and validation batches, fires an [`Event`] at every step of
//!   the loop, lets callbacks cancel a batch, a phase, an epoch or the run
//!   ([`Interrupt`]), and stops with [`TrainError::NonFiniteLoss`] the moment a loss
//!   is NaN or infinite.
//! - [`metrics`]: loss and accuracy per epoch and phase, returned as a [`FitReport`]
//!   and printed as a table.
//! - [`callbacks`]: a progress bar, the metrics table, a recorder, and
//!   [`ParamScheduler`](callbacks::ParamScheduler), which applies the [`schedule`]s
//!   (linear, cosine, exponential, combined, one-cycle) batch by batch.
//! - [`lr_find`](mod@lr_find): the LR finder, which restores the model afterwards
//!   ([`ModelSnapshot`]) and plots loss against learning rate with its suggestion
//!   (through the `plots` crate, as does [`Recorder::plot`](callbacks::Recorder::plot)).
//!
//! # Reproducibility
//!
//! The loop draws no random numbers of its own. A run is fixed by the seed of the
//! model's initialisation (`nn::init::seeded_rng`), the seed of the training loader's
//! shuffling ([`DataLoader::shuffle`](data::loader::DataLoader::shuffle), drawn per
//! epoch), the seeds of any stochastic layers (Dropout), and the number of threads
//! the kernels run on: the same seeds and thread count give bit-identical losses.
//!
//! # Example
//!
//! ```
//! use data::fashion_mnist::FashionMnist;
//! use data::loader::{DataLoader, Flatten, Normalize};
//! use nn::layers::{Linear, Relu, Sequential};
//! use nn::optim::{HyperParams, Sgd};
//! use tensor::DType;
//! use train::callbacks::{ParamScheduler, Recorder};
//! use train::Learner;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let ds = FashionMnist::load_embedded()?;
//! let norm = Normalize::fit(&ds.train.images)?;
//! let train_dl = DataLoader::new(&ds.train.images, &ds.train.labels, 500)?
//!     .shuffle(42)
//!     .transform(norm)
//!     .transform(Flatten);
//! let valid_dl = DataLoader::new(&ds.test.images, &ds.test.labels, 1000)?
//!     .transform(norm)
//!     .transform(Flatten);
//! let mut rng = nn::init::seeded_rng(42);
//! let model = Sequential::new(vec![
//!     Box::new(Linear::new(784, 64, true, DType::F32, &mut rng)?),
//!     Box::new(Relu::new()),
//!     Box::new(Linear::new(64, 10, true, DType::F32, &mut rng)?),
//! ]);
//! let mut learn = Learner::new(
//!     Box::new(model),
//!     |params| Sgd::new(params, HyperParams { momentum: 0.9, ..HyperParams::default() }),
//!     nn::loss::cross_entropy,
//!     train_dl,
//!     valid_dl,
//! )?
//! .with_callback(ParamScheduler::one_cycle(0.2, 0.3))
//! .with_callback(Recorder::new());
//! let report = learn.fit(1)?; // prints the table
//! assert!(report.rows[0].valid.unwrap().accuracy.unwrap() > 0.5);
//! assert_eq!(learn.callback::<Recorder>().unwrap().losses().len(), 10);
//! # Ok(())
//! # }
//! ```

pub mod callback;
pub mod callbacks;
pub mod error;
pub mod event;
pub mod fit;
pub mod learner;
pub mod lr_find;
pub mod metrics;
pub mod schedule;
pub mod snapshot;

pub use callback::{Callback, Interrupt};
pub use error::{Result, TrainError};
pub use event::{Event, Phase, Scope};
pub use learner::{Learner, LossFn, OptimizerFn};
pub use lr_find::{lr_find, LrFinderConfig, LrFinderResult};
pub use metrics::FitReport;
pub use snapshot::ModelSnapshot;
