//! Numerically stable softmax and log-softmax.

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    /// Softmax along `dim` (the max is subtracted first, so large logits are safe).
    pub fn softmax(&self, dim: usize) -> Result<Var> {
        let out = self.tensor().softmax(dim)?;
        Ok(Var::from_op(
            out.clone(),
            Op::Softmax {
                input: self.clone(),
                dim,
                output: out,
            },
        ))
    }

    /// Log-softmax along `dim`, computed as `x - max - ln(sum(exp(x - max)))`.
    pub fn log_softmax(&self, dim: usize) -> Result<Var> {
        let out = self.tensor().log_softmax(dim)?;
        Ok(Var::from_op(
            out.clone(),
            Op::LogSoftmax {
                input: self.clone(),
                dim,
                output: out,
            },
        ))
    }
}
