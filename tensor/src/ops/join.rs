//! Joining tensors: `cat` along an existing dim, `stack` along a new one.

use crate::cpu::alloc_buf;
use crate::cpu::write::zip_into;
use crate::dtype::Element;
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::{CpuStorage, ReadSet, Storage};
use crate::tensor::typed;
use crate::Tensor;

/// The typed CPU slices of every storage in `reads` (tensors `0..n`).
pub(crate) fn cpu_slices<'a, T: Element>(
    reads: &'a ReadSet<'_>,
    n: usize,
    op: &'static str,
) -> Result<Vec<&'a [T]>> {
    (0..n)
        .map(|i| match reads.get(i) {
            Storage::Cpu(cpu) => typed::<T>(cpu, op),
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Err(crate::cuda::not_implemented(op, s.device())),
        })
        .collect()
}

/// Copies each part into its slice along `dim` of a fresh dense output of `out_shape`,
/// allocated for `op`.
fn cat_cpu<T: Element>(
    parts: &[&[T]],
    layouts: &[&Layout],
    (out_shape, op): (&Shape, &'static str),
    dim: usize,
) -> Result<Vec<T>> {
    let mut out = alloc_buf::buffer(op, out_shape)?;
    let dense = Layout::contiguous(out_shape.clone());
    let mut start = 0;
    for (data, l) in parts.iter().zip(layouts) {
        let len = l.dims()[dim];
        let dst = dense.narrow(dim, start, len)?;
        zip_into(&mut out, &dst, data, l, |d, s| *d = s);
        start += len;
    }
    Ok(out)
}

impl Tensor {
    /// Concatenates tensors along `dim` into a new tensor; all must share dtype,
    /// device, rank and every other dim.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let a = Tensor::zeros([2, 1], DType::F32, &Device::Cpu).unwrap();
    /// let b = Tensor::ones([2, 2], DType::F32, &Device::Cpu).unwrap();
    /// let c = Tensor::cat(&[a.clone(), b.clone()], 1).unwrap();
    /// assert_eq!(c.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    /// assert_eq!(
    ///     Tensor::cat(&[a, b], 0).unwrap_err().to_string(),
    ///     "cat: shape mismatch between [2, 1] and [2, 2]"
    /// );
    /// ```
    pub fn cat(tensors: &[Tensor], dim: usize) -> Result<Tensor> {
        Self::cat_for(tensors, dim, "cat")
    }

    /// [`Tensor::cat`] for the op `op`, which errors name.
    fn cat_for(tensors: &[Tensor], dim: usize, op: &'static str) -> Result<Tensor> {
        let Some(first) = tensors.first() else {
            return Err(TensorError::invalid(op, "needs at least one tensor"));
        };
        first.shape().check_dim(dim, op)?;
        let mut cat_len = 0;
        for t in tensors {
            if t.device != first.device {
                return Err(TensorError::DeviceMismatch {
                    op,
                    lhs: first.device,
                    rhs: t.device,
                });
            }
            if t.dtype != first.dtype {
                return Err(TensorError::DTypeMismatch {
                    op,
                    lhs: first.dtype,
                    rhs: t.dtype,
                });
            }
            let same_other_dims = t.rank() == first.rank()
                && (0..first.rank()).all(|d| d == dim || t.dims()[d] == first.dims()[d]);
            if !same_other_dims {
                return Err(TensorError::ShapeMismatch {
                    op,
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                });
            }
            cat_len = usize::checked_add(cat_len, t.dims()[dim]).ok_or_else(|| {
                TensorError::invalid(
                    op,
                    format!("the sizes along dimension {dim} add up to more than usize::MAX"),
                )
            })?;
        }
        if tensors.len() == 1 {
            return first.copy_for(op);
        }
        let mut dims = first.dims().to_vec();
        dims[dim] = cat_len;
        let out_shape = Shape::from(dims);
        #[cfg(feature = "cuda")]
        if first.device.is_cuda() {
            return crate::cuda::cat(tensors, dim, out_shape);
        }
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let layouts: Vec<&Layout> = tensors.iter().map(|t| &t.layout).collect();
        let reads = ReadSet::new(&refs);
        let n = tensors.len();
        let out = match first.dtype {
            crate::DType::F32 => CpuStorage::F32(cat_cpu(
                &cpu_slices::<f32>(&reads, n, op)?,
                &layouts,
                (&out_shape, op),
                dim,
            )?),
            crate::DType::F64 => CpuStorage::F64(cat_cpu(
                &cpu_slices::<f64>(&reads, n, op)?,
                &layouts,
                (&out_shape, op),
                dim,
            )?),
            crate::DType::U32 => CpuStorage::U32(cat_cpu(
                &cpu_slices::<u32>(&reads, n, op)?,
                &layouts,
                (&out_shape, op),
                dim,
            )?),
        };
        Ok(Tensor::from_cpu_storage(out, out_shape))
    }

    /// Stacks tensors of one shape along a new dim `dim` (`0..=rank`), into a new
    /// tensor.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1.0f64, 2.0], [2], &Device::Cpu).unwrap();
    /// let b = Tensor::from_vec(vec![3.0f64, 4.0], [2], &Device::Cpu).unwrap();
    /// let s = Tensor::stack(&[a, b], 1).unwrap();
    /// assert_eq!(s.dims(), &[2, 2]);
    /// assert_eq!(s.to_vec::<f64>().unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    pub fn stack(tensors: &[Tensor], dim: usize) -> Result<Tensor> {
        const OP: &str = "stack";
        let Some(first) = tensors.first() else {
            return Err(TensorError::invalid(OP, "needs at least one tensor"));
        };
        if dim > first.rank() {
            return Err(TensorError::DimOutOfRange {
                op: OP,
                dim,
                rank: first.rank() + 1,
            });
        }
        let parts = tensors
            .iter()
            .map(|t| {
                if t.shape() != first.shape() {
                    return Err(TensorError::ShapeMismatch {
                        op: OP,
                        lhs: first.shape().clone(),
                        rhs: t.shape().clone(),
                    });
                }
                t.unsqueeze(dim)
            })
            .collect::<Result<Vec<_>>>()?;
        if parts.len() == 1 {
            return parts[0].copy_for(OP);
        }
        Tensor::cat_for(&parts, dim, OP)
    }
}
