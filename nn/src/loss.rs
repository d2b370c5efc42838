//! Loss functions over the autograd ops (fused and numerically stable there).
//!
//! ```
//! use autograd::{Reduction, Var};
//! use tensor::{DType, Device, Tensor};
//! # fn main() -> Result<(), nn::NnError> {
//! let logits = Var::constant(Tensor::zeros([2, 27], DType::F32, &Device::Cpu)?);
//! let targets = Tensor::from_vec(vec![0u32, 5], [2], &Device::Cpu)?;
//! let loss = nn::loss::cross_entropy(&logits, &targets)?;
//! // The makemore lesson's sanity check: a uniform guess over 27 symbols.
//! assert!((loss.tensor().item()? - 27f64.ln()).abs() < 1e-5);
//! # Ok(())
//! # }
//! ```

use autograd::{Reduction, Var};
use tensor::Tensor;

use crate::error::Result;

/// Mean cross-entropy of logits `[N, C]` against class indices (u32 `[N]`).
pub fn cross_entropy(logits: &Var, targets: &Tensor) -> Result<Var> {
    Ok(logits.cross_entropy(targets, Reduction::Mean)?)
}

/// Mean negative log-likelihood of log-probabilities `[N, C]` against class indices.
pub fn nll_loss(log_probs: &Var, targets: &Tensor) -> Result<Var> {
    Ok(log_probs.nll_loss(targets, Reduction::Mean)?)
}

/// Mean binary cross-entropy on logits against targets in [0, 1] of the same shape:
/// one independent sigmoid per output, for multi-label problems.
pub fn bce_with_logits(logits: &Var, targets: &Tensor) -> Result<Var> {
    Ok(
        logits
            .binary_cross_entropy_with_logits(&Var::constant(targets.clone()), Reduction::Mean)?,
    )
}

/// Mean squared error against targets of the same shape.
pub fn mse(pred: &Var, target: &Tensor) -> Result<Var> {
    Ok(pred.mse(&Var::constant(target.clone()), Reduction::Mean)?)
}
