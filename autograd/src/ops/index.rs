//! Indexing by integer tensors: index_select (embedding lookup) and gather.

use tensor::Tensor;

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    /// Rows (or slices along `dim`) picked by a 1-D U32 index tensor; repeated
    /// indices receive the sum of their gradients. An embedding lookup is
    /// `table.index_select(0, ids)`.
    pub fn index_select(&self, dim: usize, indices: &Tensor) -> Result<Var> {
        let out = self.tensor().index_select(dim, indices)?;
        Ok(Var::from_op(
            out,
            Op::IndexSelect {
                input: self.clone(),
                dim,
                indices: indices.clone(),
            },
        ))
    }

    /// `out[i][j] = self[i][index[i][j]]` for `dim = 1` (torch.gather semantics).
    pub fn gather(&self, dim: usize, index: &Tensor) -> Result<Var> {
        let out = self.tensor().gather(dim, index)?;
        Ok(Var::from_op(
            out,
            Op::Gather {
                input: self.clone(),
                dim,
                index: index.clone(),
            },
        ))
    }
}
