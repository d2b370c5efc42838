//! Loss functions with fused, numerically stable forward and backward.

use tensor::{DType, Tensor};

use crate::error::{AutogradError, Result};
use crate::op::Op;
use crate::var::Var;

/// How per-example losses are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean over all examples (the usual training loss).
    #[default]
    Mean,
    /// The sum over all examples.
    Sum,
    /// No reduction: one loss per example.
    None,
}

fn reduce(losses: Tensor, reduction: Reduction) -> tensor::Result<Tensor> {
    match reduction {
        Reduction::Mean => losses.mean_all(),
        Reduction::Sum => losses.sum_all(),
        Reduction::None => Ok(losses),
    }
}

fn check_targets(op: &'static str, logits: &Var, targets: &Tensor) -> Result<Vec<u32>> {
    if logits.rank() != 2 {
        return Err(AutogradError::InvalidArgument {
            op,
            detail: format!("logits must have shape [N, C], got {}", logits.shape()),
        });
    }
    let (n, c) = (logits.dims()[0], logits.dims()[1]);
    if targets.dtype() != DType::U32 || targets.dims() != [n] {
        return Err(AutogradError::InvalidArgument {
            op,
            detail: format!(
                "targets must be u32 class indices of shape [{n}], got {} of shape {}",
                targets.dtype(),
                targets.shape()
            ),
        });
    }
    if targets.device() != logits.device() {
        return Err(tensor::TensorError::DeviceMismatch {
            op,
            lhs: logits.device(),
            rhs: targets.device(),
        }
        .into());
    }
    let ids = targets.to_vec::<u32>()?;
    if let Some((row, &t)) = ids.iter().enumerate().find(|(_, &t)| t as usize >= c) {
        return Err(AutogradError::InvalidArgument {
            op,
            detail: format!("target {t} at row {row} is out of range for {c} classes"),
        });
    }
    if !logits.dtype().is_float() {
        return Err(AutogradError::InvalidArgument {
            op,
            detail: format!("logits must be a float dtype, got {}", logits.dtype()),
        });
    }
    Ok(ids)
}

impl Var {
    /// Cross-entropy between logits `[N, C]` and class indices (u32 `[N]`): a fused,
    /// stable log-softmax followed by the negative log-likelihood of the targets.
    ///
    /// ```
    /// use autograd::{Reduction, Var};
    /// use tensor::{Device, Tensor};
    /// # fn main() -> Result<(), autograd::AutogradError> {
    /// let logits = Var::parameter(Tensor::zeros([4, 10], tensor::DType::F32, &Device::Cpu)?);
    /// let targets = Tensor::from_vec(vec![0u32, 3, 9, 1], [4], &Device::Cpu)?;
    /// let loss = logits.cross_entropy(&targets, Reduction::Mean)?;
    /// // uniform predictions over 10 classes: loss = ln(10)
    /// assert!((loss.tensor().item()? - 10f64.ln()).abs() < 1e-6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cross_entropy(&self, targets: &Tensor, reduction: Reduction) -> Result<Var> {
        let ids = check_targets("cross_entropy", self, targets)?;
        let (losses, log_probs) = crate::ops::fused::cross_entropy_forward(self.tensor(), &ids)?;
        let out = reduce(losses, reduction)?;
        Ok(Var::from_op(
            out,
            Op::CrossEntropy {
                logits: self.clone(),
                targets: targets.clone(),
                reduction,
                log_probs,
            },
        ))
    }

    /// Negative log-likelihood of class indices given log-probabilities `[N, C]`
    /// (compose with [`log_softmax`](Var::log_softmax); prefer
    /// [`cross_entropy`](Var::cross_entropy) on logits, which is fused).
    pub fn nll_loss(&self, targets: &Tensor, reduction: Reduction) -> Result<Var> {
        check_targets("nll_loss", self, targets)?;
        let picked = self.gather(1, &targets.unsqueeze(1)?)?.squeeze(1)?.neg()?;
        match reduction {
            Reduction::Mean => picked.mean_all(),
            Reduction::Sum => picked.sum_all(),
            Reduction::None => Ok(picked),
        }
    }

    /// Binary cross-entropy on logits, one independent sigmoid per element: the loss
    /// for multi-label targets (an image may hold none or several classes).
    /// Computed stably as `max(x, 0) - x*y + ln(1 + e^-|x|)`.
    pub fn binary_cross_entropy_with_logits(
        &self,
        targets: &Var,
        reduction: Reduction,
    ) -> Result<Var> {
        if self.shape() != targets.shape() {
            return Err(AutogradError::InvalidArgument {
                op: "binary_cross_entropy_with_logits",
                detail: format!(
                    "logits have shape {} but targets have shape {}",
                    self.shape(),
                    targets.shape()
                ),
            });
        }
        let (x, y) = (self.tensor(), targets.tensor());
        let softplus = x.abs()?.neg()?.exp()?.add_scalar(1.0)?.log()?;
        let losses = x.relu()?.sub(&x.mul(y)?)?.add(&softplus)?;
        let out = reduce(losses, reduction)?;
        Ok(Var::from_op(
            out,
            Op::BceWithLogits {
                logits: self.clone(),
                targets: targets.clone(),
                reduction,
            },
        ))
    }

    /// Mean squared error (or summed / per-element, by `reduction`).
    pub fn mse(&self, target: &Var, reduction: Reduction) -> Result<Var> {
        if self.shape() != target.shape() {
            return Err(AutogradError::InvalidArgument {
                op: "mse",
                detail: format!(
                    "predictions have shape {} but targets have shape {}",
                    self.shape(),
                    target.shape()
                ),
            });
        }
        let losses = self.tensor().sub(target.tensor())?.square()?;
        let out = reduce(losses, reduction)?;
        Ok(Var::from_op(
            out,
            Op::Mse {
                pred: self.clone(),
                target: target.clone(),
                reduction,
            },
        ))
    }
}
