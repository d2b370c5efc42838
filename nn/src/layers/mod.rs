//! The layers. Each owns its parameters as [`autograd::Var`] leaves and a
//! [`Hooks`](crate::hooks::Hooks) registry.

mod activation;
mod container;
mod conv;
mod dropout;
mod embedding;
mod linear;
mod norm;
mod pool;
mod shape;

pub use activation::{GeneralRelu, LeakyRelu, Relu, Sigmoid, Tanh};
pub use container::{Lambda, Sequential};
pub use conv::{Conv2d, Conv2dOptions};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use norm::{BatchNorm, GroupNorm, RunningBatchNorm};
pub use pool::AdaptiveAvgPool2d;
pub use shape::Flatten;

use crate::error::{config_error, NnError};

/// Checks that `input` has one of the expected ranks; the error names the layer.
pub(crate) fn expect_rank(
    layer: &str,
    input: &autograd::Var,
    ranks: &[usize],
    what: &str,
) -> Result<(), NnError> {
    if ranks.contains(&input.rank()) {
        Ok(())
    } else {
        Err(config_error(
            layer,
            format!("expected {what}, got an input of shape {}", input.shape()),
        ))
    }
}
