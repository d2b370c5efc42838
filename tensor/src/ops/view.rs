//! View ops: new layouts over the same storage, O(rank), no element is copied (except
//! by `reshape`/`flatten` when strides cannot express the result, and `contiguous`).

use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::Tensor;

impl Tensor {
    /// The same elements as `shape` (same element count): a view when the layout
    /// allows it (always for a contiguous tensor), otherwise a contiguous copy.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::Cpu).unwrap();
    /// let r = t.reshape([2, 3]).unwrap();
    /// assert!(r.same_storage(&t));
    /// // A transpose cannot be flattened by strides: reshape copies.
    /// let f = r.t().unwrap().reshape([6]).unwrap();
    /// assert!(!f.same_storage(&t));
    /// assert_eq!(f.to_vec::<f32>().unwrap(), vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    /// ```
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let target = self.check_reshape(shape.into(), "reshape")?;
        match self.layout.reshaped(&target) {
            Some(layout) => Ok(self.with_layout(layout)),
            None => self.copy_for("reshape")?.view(target),
        }
    }

    /// Like [`Tensor::reshape`] but never copies: `ViewNotPossible` if strides cannot
    /// express the new shape.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    /// let err = t.t().unwrap().view([6]).unwrap_err();
    /// assert!(err.to_string().starts_with("view: cannot view a tensor of shape [3, 2]"));
    /// ```
    pub fn view(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        const OP: &str = "view";
        let target = self.check_reshape(shape.into(), OP)?;
        match self.layout.reshaped(&target) {
            Some(layout) => Ok(self.with_layout(layout)),
            None => Err(TensorError::ViewNotPossible {
                op: OP,
                shape: self.shape().clone(),
                strides: self.strides().to_vec(),
                target,
            }),
        }
    }

    fn check_reshape(&self, target: Shape, op: &'static str) -> Result<Shape> {
        if target.checked_elem_count() != Some(self.elem_count()) {
            return Err(TensorError::ElementCount {
                op,
                shape: target,
                len: self.elem_count(),
            });
        }
        Ok(target)
    }

    /// Reorders the dims: dim `i` of the result is dim `perm[i]` of `self`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([2, 3, 4], DType::F32, &Device::Cpu).unwrap();
    /// assert_eq!(t.permute(&[2, 0, 1]).unwrap().dims(), &[4, 2, 3]);
    /// assert!(t.permute(&[0, 0, 1]).is_err());
    /// ```
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.permute(perm)?))
    }

    /// Swaps dims `d0` and `d1`.
    pub fn transpose(&self, d0: usize, d1: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.transpose(d0, d1)?))
    }

    /// The transpose of a matrix (rank 2 only).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(TensorError::invalid(
                "t",
                format!("expects a rank-2 tensor, got shape {}", self.shape()),
            ));
        }
        self.transpose(0, 1)
    }

    /// The elements `start..start + len` along `dim`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F64, &Device::Cpu).unwrap();
    /// let n = t.reshape([3, 2]).unwrap().narrow(0, 1, 2).unwrap();
    /// assert_eq!(n.to_vec::<f64>().unwrap(), vec![2.0, 3.0, 4.0, 5.0]);
    /// ```
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.narrow(dim, start, len)?))
    }

    /// The slice at `index` along `dim`, with `dim` removed.
    pub fn select(&self, dim: usize, index: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.select(dim, index)?))
    }

    /// Broadcasts to `shape` by NumPy rules (size-1 dims repeat, new leading dims may
    /// be added) without copying: the expanded dims get stride 0.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let row = Tensor::from_vec(vec![1.0f32, 2.0], [2], &Device::Cpu).unwrap();
    /// let e = row.expand([3, 2]).unwrap();
    /// assert_eq!(e.strides(), &[0, 1]);
    /// assert_eq!(e.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
    /// ```
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.broadcast_as(&shape.into(), "expand")?))
    }

    /// Same as [`Tensor::expand`] (the name candle and NumPy use).
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.broadcast_as(&shape.into(), "broadcast_as")?))
    }

    /// Removes dim `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.squeeze(dim)?))
    }

    /// Inserts a size-1 dim at position `dim` (`0..=rank`).
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        Ok(self.with_layout(self.layout.unsqueeze(dim)?))
    }

    /// Merges dims `start_dim..=end_dim` into one (a view when possible, else a
    /// copy). A rank-0 tensor flattens (with `0, 0`) to shape `[1]`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([2, 3, 4, 5], DType::F32, &Device::Cpu).unwrap();
    /// assert_eq!(t.flatten(1, 2).unwrap().dims(), &[2, 12, 5]);
    /// ```
    pub fn flatten(&self, start_dim: usize, end_dim: usize) -> Result<Tensor> {
        const OP: &str = "flatten";
        if self.rank() == 0 {
            if start_dim != 0 || end_dim != 0 {
                return Err(TensorError::DimOutOfRange {
                    op: OP,
                    dim: start_dim.max(end_dim),
                    rank: 0,
                });
            }
            return self.reshape([1]);
        }
        self.shape().check_dim(start_dim, OP)?;
        self.shape().check_dim(end_dim, OP)?;
        if start_dim > end_dim {
            return Err(TensorError::invalid(
                OP,
                format!("start_dim {start_dim} is after end_dim {end_dim}"),
            ));
        }
        let dims = self.dims();
        let mut new: Vec<usize> = dims[..start_dim].to_vec();
        new.push(dims[start_dim..=end_dim].iter().product());
        new.extend_from_slice(&dims[end_dim + 1..]);
        self.reshape(new)
    }

    /// `self` if it is already contiguous (sharing storage), else a dense copy.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let row = Tensor::zeros([1, 1 << 20], DType::F32, &Device::Cpu).unwrap();
    /// // A view of 2^62 bytes costs nothing; copying it is an error, not an abort.
    /// let huge = row.expand([1 << 40, 1 << 20]).unwrap();
    /// assert_eq!(
    ///     huge.contiguous().unwrap_err().to_string(),
    ///     "contiguous: cannot allocate 4611686018427387904 bytes for a f32 tensor of shape [1099511627776, 1048576]"
    /// );
    /// ```
    pub fn contiguous(&self) -> Result<Tensor> {
        self.contiguous_for("contiguous")
    }

    /// [`Tensor::contiguous`] for the op `op`, which errors name.
    pub(crate) fn contiguous_for(&self, op: &'static str) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            self.copy_for(op)
        }
    }

    /// A contiguous layout of this tensor's shape (for ops building outputs).
    pub(crate) fn dense_layout(&self) -> Layout {
        Layout::contiguous(self.shape().clone())
    }
}
