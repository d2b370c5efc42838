//! Shape and view ops. They share storage with their input; their gradients are
//! views or cheap reshapes of the output gradient.

use tensor::Shape;

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    fn reshaped(&self, out: tensor::Tensor) -> Var {
        Var::from_op(
            out,
            Op::Reshape {
                input: self.clone(),
            },
        )
    }

    /// Reshape (a view when the layout allows, otherwise a copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Var> {
        Ok(self.reshaped(self.tensor().reshape(shape)?))
    }

    /// Reshape that never copies (errors if the layout does not allow a view).
    pub fn view(&self, shape: impl Into<Shape>) -> Result<Var> {
        Ok(self.reshaped(self.tensor().view(shape)?))
    }

    /// Flattens dims `start..=end` into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Var> {
        Ok(self.reshaped(self.tensor().flatten(start, end)?))
    }

    /// Removes a size-1 dim.
    pub fn squeeze(&self, dim: usize) -> Result<Var> {
        Ok(self.reshaped(self.tensor().squeeze(dim)?))
    }

    /// Inserts a size-1 dim.
    pub fn unsqueeze(&self, dim: usize) -> Result<Var> {
        Ok(self.reshaped(self.tensor().unsqueeze(dim)?))
    }

    /// A dense copy if the layout is not contiguous (same values, same gradient).
    pub fn contiguous(&self) -> Result<Var> {
        if self.tensor().is_contiguous() {
            return Ok(self.clone());
        }
        Ok(self.reshaped(self.tensor().contiguous()?))
    }

    /// Permutes dims.
    pub fn permute(&self, dims: &[usize]) -> Result<Var> {
        let out = self.tensor().permute(dims)?;
        Ok(Var::from_op(
            out,
            Op::Permute {
                input: self.clone(),
                dims: dims.to_vec(),
            },
        ))
    }

    /// Swaps two dims.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Var> {
        let out = self.tensor().transpose(d0, d1)?;
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(d0, d1);
        Ok(Var::from_op(
            out,
            Op::Permute {
                input: self.clone(),
                dims,
            },
        ))
    }

    /// Transpose of a matrix (rank 2).
    pub fn t(&self) -> Result<Var> {
        let out = self.tensor().t()?;
        Ok(Var::from_op(
            out,
            Op::Permute {
                input: self.clone(),
                dims: vec![1, 0],
            },
        ))
    }

    /// `len` elements of `dim` starting at `start`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Var> {
        let out = self.tensor().narrow(dim, start, len)?;
        Ok(Var::from_op(
            out,
            Op::Narrow {
                input: self.clone(),
                dim,
                start,
            },
        ))
    }

    /// Index `index` of `dim`, removing the dim.
    pub fn select(&self, dim: usize, index: usize) -> Result<Var> {
        let out = self.tensor().select(dim, index)?;
        Ok(Var::from_op(
            out,
            Op::Select {
                input: self.clone(),
                dim,
                index,
            },
        ))
    }

    /// Broadcast to a larger shape (NumPy rules); the gradient is summed back.
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Var> {
        let out = self.tensor().expand(shape)?;
        Ok(Var::from_op(
            out,
            Op::Expand {
                input: self.clone(),
            },
        ))
    }
}
