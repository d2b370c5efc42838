//! Reductions: sum, mean, variance, max/min over dims, and over everything.

use crate::error::Result;
use crate::op::Op;
use crate::var::Var;

impl Var {
    /// Sum over `dims` (keeping them with size 1 if `keepdim`).
    pub fn sum(&self, dims: &[usize], keepdim: bool) -> Result<Var> {
        let out = self.tensor().sum(dims, keepdim)?;
        Ok(Var::from_op(
            out,
            Op::Sum {
                input: self.clone(),
                dims: dims.to_vec(),
                keepdim,
            },
        ))
    }

    /// Mean over `dims`.
    pub fn mean(&self, dims: &[usize], keepdim: bool) -> Result<Var> {
        let out = self.tensor().mean(dims, keepdim)?;
        Ok(Var::from_op(
            out,
            Op::Mean {
                input: self.clone(),
                dims: dims.to_vec(),
                keepdim,
            },
        ))
    }

    /// Variance over `dims`, with Bessel's correction if `unbiased`.
    pub fn var(&self, dims: &[usize], unbiased: bool, keepdim: bool) -> Result<Var> {
        let out = self.tensor().var(dims, unbiased, keepdim)?;
        Ok(Var::from_op(
            out,
            Op::Variance {
                input: self.clone(),
                dims: dims.to_vec(),
                unbiased,
                keepdim,
            },
        ))
    }

    /// Maximum over `dims` (gradient shared evenly among tied maxima).
    pub fn max(&self, dims: &[usize], keepdim: bool) -> Result<Var> {
        let kept = self.tensor().max(dims, true)?;
        self.extremum(kept, dims, keepdim)
    }

    /// Minimum over `dims` (gradient shared evenly among tied minima).
    pub fn min(&self, dims: &[usize], keepdim: bool) -> Result<Var> {
        let kept = self.tensor().min(dims, true)?;
        self.extremum(kept, dims, keepdim)
    }

    fn extremum(&self, kept: tensor::Tensor, dims: &[usize], keepdim: bool) -> Result<Var> {
        let out = if keepdim {
            kept.clone()
        } else {
            let mut sorted = dims.to_vec();
            sorted.sort_unstable();
            let mut t = kept.clone();
            for &d in sorted.iter().rev() {
                t = t.squeeze(d)?;
            }
            t
        };
        Ok(Var::from_op(
            out,
            Op::Extremum {
                input: self.clone(),
                dims: dims.to_vec(),
                keepdim,
                output_keepdim: kept,
            },
        ))
    }

    /// Sum of all elements (a rank-0 value).
    pub fn sum_all(&self) -> Result<Var> {
        let out = self.tensor().sum_all()?;
        Ok(Var::from_op(
            out,
            Op::SumAll {
                input: self.clone(),
            },
        ))
    }

    /// Mean of all elements (a rank-0 value).
    pub fn mean_all(&self) -> Result<Var> {
        let out = self.tensor().mean_all()?;
        Ok(Var::from_op(
            out,
            Op::MeanAll {
                input: self.clone(),
            },
        ))
    }
}
