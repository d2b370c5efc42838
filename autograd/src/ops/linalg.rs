//! Matrix products.

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    /// Matrix product with `torch.matmul` semantics: 1-D operands are promoted to a
    /// row (left) or column (right) and the added dim removed again; operands of rank
    /// above 2 are batches of matrices with broadcast batch dims.
    pub fn matmul(&self, rhs: &Var) -> Result<Var> {
        let lhs_vector = self.rank() == 1;
        let rhs_vector = rhs.rank() == 1;
        let a = if lhs_vector {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rhs_vector {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let out = a.tensor().matmul(b.tensor())?;
        let mut result = Var::from_op(out, Op::Matmul { lhs: a, rhs: b });
        if rhs_vector {
            result = result.squeeze(result.rank() - 1)?;
        }
        if lhs_vector {
            result = result.squeeze(result.rank() - if rhs_vector { 1 } else { 2 })?;
        }
        Ok(result)
    }
}
