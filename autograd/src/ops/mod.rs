//! Differentiable operations on [`Var`], grouped by kind. Each method computes its
//! result with the tensor crate and records an [`Op`].
//!
//! [`Var`]: crate::Var
//! [`Op`]: crate::op::Op

pub mod conv;
pub mod elementwise;
pub(crate) mod fused;
pub mod index;
pub mod join;
pub mod linalg;
pub mod loss;
pub mod norm;
pub mod reduce;
mod slices;
pub mod softmax;
pub mod view;

use std::sync::Arc;

use tensor::Tensor;

use crate::op::{CustomBackward, Op};
use crate::var::Var;

impl Var {
    /// Records a user-defined op: `output` was computed from `inputs` outside this
    /// crate (e.g. by a fused kernel), and `rule` computes the inputs' gradients.
    /// Like every op, nothing is recorded when no input requires a gradient or inside
    /// [`no_grad`](crate::no_grad).
    pub fn from_custom(output: Tensor, inputs: Vec<Var>, rule: Arc<dyn CustomBackward>) -> Var {
        Var::from_op(output, Op::Custom { inputs, rule })
    }
}
