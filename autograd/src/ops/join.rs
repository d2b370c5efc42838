//! Concatenation and stacking.

use tensor::Tensor;

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    /// Concatenates values along an existing `dim`.
    pub fn cat(vars: &[Var], dim: usize) -> Result<Var> {
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.tensor().clone()).collect();
        let out = Tensor::cat(&tensors, dim)?;
        Ok(Var::from_op(
            out,
            Op::Cat {
                inputs: vars.to_vec(),
                dim,
            },
        ))
    }

    /// Stacks values of one shape along a new `dim`.
    pub fn stack(vars: &[Var], dim: usize) -> Result<Var> {
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.tensor().clone()).collect();
        let out = Tensor::stack(&tensors, dim)?;
        Ok(Var::from_op(
            out,
            Op::Stack {
                inputs: vars.to_vec(),
                dim,
            },
        ))
    }
}
