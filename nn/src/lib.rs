//! Neural-network building blocks over the autograd crate, built to be looked into.
//!
//! - [`Module`]: forward, named children and dotted paths, parameters and buffers,
//!   train/eval mode, and [`hooks`] — forward and backward hooks with RAII handles,
//!   registered on one module or on many through a [`hooks::ModuleFilter`].
//! - [`layers`]: Linear, Conv2d, the normalisations the lesson compares (BatchNorm,
//!   LayerNorm, InstanceNorm, GroupNorm, RunningBatchNorm), activations including
//!   GeneralRelu, Embedding, pooling, Dropout, Sequential and a closure layer.
//! - [`init`]: uniform/normal/constant, Xavier, Kaiming (with `calculate_gain`), LSUV.
//! - [`loss`], [`optim`] (SGD, Adam, AdamW, parameter groups, gradient clipping) and
//!   [`checkpoint`] (safetensors).

pub mod checkpoint;
pub mod error;
pub mod hooks;
pub mod init;
mod init_lsuv;
pub mod layers;
pub mod loss;
pub mod module;
pub mod optim;

pub use error::{NnError, Result};
pub use module::{Module, ModuleExt, NamedModule};
