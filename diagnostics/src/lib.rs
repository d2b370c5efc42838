//! Looking inside a network while it trains: the fastai lesson "10_activations" and
//! Karpathy's makemore part 3 ("activations & gradients, BatchNorm") as a library.
//!
//! - [`activations`]: [`ActivationStats`](activations::ActivationStats) hooks the
//!   modules a [`ModuleFilter`](nn::hooks::ModuleFilter) chooses and records, per
//!   layer and batch, mean, std, min/max, a 40-bin histogram, the dead (near-zero)
//!   and saturated fractions and NaN/inf counts, plus a per-layer histogram snapshot
//!   and a saturation map at a chosen batch.
//! - [`gradients`]: [`GradientStats`](gradients::GradientStats) records, per
//!   parameter and step, gradient mean/std, grad:data and log10 update:data ratios,
//!   and gradient histograms.
//! - [`losses`]: the loss curves and the expected initial loss `ln(classes)`.
//! - [`figures`]: every plot of the lessons, written by
//!   [`TrainingLog::write_all_plots`].
//! - [`health`]: the [`HealthReport`](health::HealthReport), verdicts per layer with
//!   the figure that triggered them and the usual remedy, as a struct and markdown.
//! - [`bounded`]: how every per-step log keeps a bounded number of records (older
//!   ones folded together, the first, last and snapshot records exact), so memory
//!   stays flat however long the run.
//! - [`format`](mod@format): how every report writes numbers (scientific notation outside
//!   `[1e-3, 1e5)`).
//! - [`early_abort`]: the rule that stops a run whose activation variance spikes and
//!   collapses; [`callbacks`] (feature `learner`) drives all of it from a
//!   `train::Learner`.
//!
//! The recorders depend on `nn` hooks and explicit calls only: the learner adapters
//! are a thin layer over them.
//!
//! # Cost
//!
//! A hook reads each watched output once with the fused statistics kernel
//! ([`tensor_stats`](tensor_stats::tensor_stats) over the tensor's contiguous
//! storage): no tensor op, no copy; the time a hook adds is the kernel's time. The hook
//! reads only the output ([`nn::hooks::ForwardHook::reads_input`] is `false`), so a
//! watched ReLU stays fused into the convolution before it.
//! `examples/hook_overhead.rs` measures a training step of the lesson's CNN at batch
//! 1024 on 2 threads, and `compare --only hooks` (bench-harness) the same workload as
//! the PyTorch peer. On the project's 2-core machine (2026-12-03, docs/PERFORMANCE.md),
//! the statistics of the six block outputs took 0.68 ms per step: 3.6% of the baseline
//! CNN's step and 2.1% of the BatchNorm + GeneralRelu one. (After the conv + ReLU fusion
//! made the step itself faster, a later run measured 3.7-5.2% for the statistics and
//! +6.5-11% for the hooked step against the plain one.) PyTorch's `mean`/`std`/`histc`
//! hooks added 51-59% to the same steps in the same run; its statistics alone took
//! 15.9 ms for the same 12.9 MB. Reading a sample of the examples
//! ([`ActivationConfig::sample_examples`](activations::ActivationConfig::sample_examples))
//! lowers the cost further.
//!
//! # Example
//!
//! ```
//! use autograd::Var;
//! use diagnostics::activations::{ActivationConfig, ActivationStats};
//! use diagnostics::health::{Finding, HealthConfig};
//! use diagnostics::TrainingLog;
//! use nn::hooks::ModuleFilter;
//! use nn::layers::{Linear, Sequential, Tanh};
//! use nn::Module;
//! use tensor::{DType, Device, Tensor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Karpathy's mistake: a tanh MLP whose weights are N(0, 1), not scaled by 1/sqrt(fan_in).
//! let mut rng = nn::init::seeded_rng(0);
//! let mut layers: Vec<Box<dyn Module>> = Vec::new();
//! for _ in 0..3 {
//!     let linear = Linear::new(64, 64, false, DType::F32, &mut rng)?;
//!     nn::init::normal_(linear.weight().tensor(), 0.0, 1.0, &mut rng)?;
//!     layers.push(Box::new(linear));
//!     layers.push(Box::new(Tanh::new()));
//! }
//! let model = Sequential::new(layers);
//! let stats = ActivationStats::watch(&model, &ModuleFilter::kinds(&["Tanh"]), ActivationConfig::tanh())?;
//! let x = Var::parameter(Tensor::randn([128, 64], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?);
//! model.forward(&x)?;
//!
//! let log = TrainingLog { activations: Some(stats.log()), ..TrainingLog::default() };
//! let report = log.health(&HealthConfig::default());
//! assert!(report.has(Finding::Saturated));
//! // e.g. "warning 1 (Tanh): saturated units: 85.2% of outputs with |x| > 0.97 ..."
//! println!("{}", report.verdicts[0]);
//! # Ok(())
//! # }
//! ```

pub mod activations;
mod atomic;
pub mod bounded;
#[cfg(feature = "learner")]
pub mod callbacks;
pub mod early_abort;
pub mod error;
pub mod figures;
pub mod format;
pub mod gradients;
pub mod health;
pub mod histogram;
pub mod losses;
pub mod tensor_stats;
mod training_log;

pub use bounded::Span;
pub use error::{DiagError, Result};
pub use training_log::TrainingLog;
