//! Indexing with index tensors (`u32`): `index_select` and `gather`, and their
//! out-of-place scatter counterparts `index_add` and `scatter_add` (the backward of
//! the first two: repeated indices accumulate).

use rayon::prelude::*;

use crate::cpu::write::zip_into;
use crate::cpu::{alloc_buf, map};
use crate::dtype::{DType, Element, FloatElement};
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::{CpuStorage, ReadSet, Storage};
use crate::strided::Runs;
use crate::Tensor;

/// Outputs of `index_select` at least this large (elements) are copied on all threads.
const PAR_SELECT_MIN_ELEMS: usize = 1 << 18;

impl Tensor {
    /// The index values of a `u32` tensor, in logical order.
    fn index_values(&self, op: &'static str) -> Result<Vec<u32>> {
        if self.dtype != DType::U32 {
            return Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: DType::U32,
            });
        }
        self.to_vec_for::<u32>(op)
    }

    /// Checks a 1-D `u32` index tensor against `size` of `dim`; returns its values.
    fn checked_indices_1d(
        indices: &Tensor,
        dim: usize,
        size: usize,
        op: &'static str,
    ) -> Result<Vec<u32>> {
        if indices.rank() != 1 {
            return Err(TensorError::invalid(
                op,
                format!("indices must be 1-D, got shape {}", indices.shape()),
            ));
        }
        check_range(indices.index_values(op)?, dim, size, op)
    }

    /// Checks that an index tensor is on this tensor's device.
    fn check_index_device(&self, index: &Tensor, op: &'static str) -> Result<()> {
        if self.device != index.device {
            return Err(TensorError::DeviceMismatch {
                op,
                lhs: self.device,
                rhs: index.device,
            });
        }
        Ok(())
    }

    /// Checks that `other` is on this tensor's device and of its dtype.
    fn check_same_kind(&self, other: &Tensor, op: &'static str) -> Result<()> {
        if self.device != other.device {
            return Err(TensorError::DeviceMismatch {
                op,
                lhs: self.device,
                rhs: other.device,
            });
        }
        if self.dtype != other.dtype {
            return Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: other.dtype,
            });
        }
        Ok(())
    }

    /// The entries at `indices` (1-D, `u32`) along `dim`, in that order; the result has
    /// `indices.elem_count()` entries along `dim`. The lookup of an embedding table.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let table = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::Cpu).unwrap().reshape([3, 2]).unwrap();
    /// let ids = Tensor::from_vec(vec![2u32, 0, 2], [3], &Device::Cpu).unwrap();
    /// let rows = table.index_select(0, &ids).unwrap();
    /// assert_eq!(rows.to_vec::<f32>().unwrap(), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
    /// let bad = Tensor::from_vec(vec![3u32], [1], &Device::Cpu).unwrap();
    /// assert_eq!(
    ///     table.index_select(0, &bad).unwrap_err().to_string(),
    ///     "index_select: index 3 is out of range for dimension 0 of size 3"
    /// );
    /// ```
    pub fn index_select(&self, dim: usize, indices: &Tensor) -> Result<Tensor> {
        const OP: &str = "index_select";
        self.shape().check_dim(dim, OP)?;
        self.check_index_device(indices, OP)?;
        let idx = Self::checked_indices_1d(indices, dim, self.dims()[dim], OP)?;
        let mut dims = self.dims().to_vec();
        dims[dim] = idx.len();
        let out_shape = Shape::from(dims);
        let dense = Layout::contiguous(out_shape.clone());
        fn select_cpu<T: Element>(
            data: &[T],
            l: &Layout,
            dense: &Layout,
            dim: usize,
            idx: &[u32],
        ) -> Result<Vec<T>> {
            let mut out = alloc_buf::buffer(OP, dense.shape())?;
            if dim == 0 && l.is_contiguous() && !idx.is_empty() {
                // Whole rows (a training batch gathered from a data set): plain copies,
                // on all threads once the batch is large.
                let row = out.len() / idx.len();
                let src = &data[l.offset()..];
                let copy = |(dst, &j): (&mut [T], &u32)| {
                    dst.copy_from_slice(&src[j as usize * row..][..row]);
                };
                if out.len() >= PAR_SELECT_MIN_ELEMS && row > 0 {
                    out.par_chunks_mut(row).zip(idx).for_each(copy);
                } else if row > 0 {
                    out.chunks_mut(row).zip(idx).for_each(copy);
                }
                return Ok(out);
            }
            for (i, &j) in idx.iter().enumerate() {
                zip_into(
                    &mut out,
                    &dense.select(dim, i)?,
                    data,
                    &l.select(dim, j as usize)?,
                    |d, s| *d = s,
                );
            }
            Ok(out)
        }
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => {
                    CpuStorage::F32(select_cpu(v, &self.layout, &dense, dim, &idx)?)
                }
                CpuStorage::F64(v) => {
                    CpuStorage::F64(select_cpu(v, &self.layout, &dense, dim, &idx)?)
                }
                CpuStorage::U32(v) => {
                    CpuStorage::U32(select_cpu(v, &self.layout, &dense, dim, &idx)?)
                }
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                use crate::cuda::{index_op, IndexKind};
                return index_op(s, &self.layout, dim, &idx, IndexKind::Select, OP);
            }
        };
        Ok(Tensor::from_cpu_storage(out, out_shape))
    }

    /// `out[i][j][k] = self[index[i][j][k]][j][k]` for `dim == 0` (and likewise for other
    /// dims), as `torch.gather`: `index` is `u32` of the same rank as `self`, no larger
    /// than `self` in the other dims; the result has `index`'s shape. Picking the
    /// target-class log-probabilities in cross-entropy is `gather(1, targets)`.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let logp = Tensor::from_vec(vec![0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6], [2, 3], &Device::Cpu).unwrap();
    /// let target = Tensor::from_vec(vec![2u32, 0], [2, 1], &Device::Cpu).unwrap();
    /// assert_eq!(logp.gather(1, &target).unwrap().to_vec::<f32>().unwrap(), vec![0.3, 0.4]);
    /// ```
    pub fn gather(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        const OP: &str = "gather";
        self.check_index_device(index, OP)?;
        let idx = self.checked_index_nd(dim, index, None, OP)?;
        let pos = self.index_positions(dim, index.shape())?;
        let sd = self.strides()[dim];
        fn gather_cpu<T: Element>(
            data: &[T],
            pos: &Layout,
            idx: &[u32],
            sd: usize,
        ) -> Result<Vec<T>> {
            let runs = Runs::new(pos.dims(), [pos.strides()], [pos.offset()]);
            let (len, [s]) = (runs.inner_len(), runs.inner_strides());
            // `pos` has the index tensor's shape, which the output takes.
            let mut out = alloc_buf::with_capacity(OP, pos.shape())?;
            let mut p = 0;
            runs.for_each(|[o]| {
                for i in 0..len {
                    out.push(data[o + i * s + idx[p] as usize * sd]);
                    p += 1;
                }
            });
            Ok(out)
        }
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => CpuStorage::F32(gather_cpu(v, &pos, &idx, sd)?),
                CpuStorage::F64(v) => CpuStorage::F64(gather_cpu(v, &pos, &idx, sd)?),
                CpuStorage::U32(v) => CpuStorage::U32(gather_cpu(v, &pos, &idx, sd)?),
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                use crate::cuda::{index_op, IndexKind};
                let kind = IndexKind::Gather(index.shape());
                return index_op(s, &self.layout, dim, &idx, kind, OP);
            }
        };
        Ok(Tensor::from_cpu_storage(out, index.shape().clone()))
    }

    /// `self` plus `source` added at `indices` along `dim` (out of place): for each
    /// `i`, entry `indices[i]` of the result gains entry `i` of `source`. Repeated
    /// indices accumulate. `source` has `self`'s shape except `indices.elem_count()`
    /// along `dim`. The backward of [`Tensor::index_select`] (and of an embedding).
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let grad_table = Tensor::zeros([3, 2], DType::F32, &Device::Cpu).unwrap();
    /// let ids = Tensor::from_vec(vec![2u32, 0, 2], [3], &Device::Cpu).unwrap();
    /// let grad_rows = Tensor::ones([3, 2], DType::F32, &Device::Cpu).unwrap();
    /// let g = grad_table.index_add(0, &ids, &grad_rows).unwrap();
    /// assert_eq!(g.to_vec::<f32>().unwrap(), vec![1.0, 1.0, 0.0, 0.0, 2.0, 2.0]);
    /// ```
    pub fn index_add(&self, dim: usize, indices: &Tensor, source: &Tensor) -> Result<Tensor> {
        const OP: &str = "index_add";
        self.shape().check_dim(dim, OP)?;
        self.check_same_kind(source, OP)?;
        self.check_index_device(indices, OP)?;
        let idx = Self::checked_indices_1d(indices, dim, self.dims()[dim], OP)?;
        let mut expected = self.dims().to_vec();
        expected[dim] = idx.len();
        if source.dims() != expected.as_slice() {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                lhs: Shape::from(expected),
                rhs: source.shape().clone(),
            });
        }
        #[cfg(feature = "cuda")]
        if self.device.is_cuda() {
            let reads = ReadSet::new(&[self, source]);
            if let (Storage::Cuda(s), Storage::Cuda(src)) = (reads.get(0), reads.get(1)) {
                use crate::cuda::{index_op, IndexKind};
                let kind = IndexKind::Add(src, &source.layout);
                return index_op(s, &self.layout, dim, &idx, kind, OP);
            }
        }
        let dense = self.dense_layout();
        fn index_add_cpu<T: FloatElement>(
            out: &mut [T],
            dense: &Layout,
            src: &[T],
            ls: &Layout,
            dim: usize,
            idx: &[u32],
        ) -> Result<()> {
            for (i, &j) in idx.iter().enumerate() {
                zip_into(
                    out,
                    &dense.select(dim, j as usize)?,
                    src,
                    &ls.select(dim, i)?,
                    |d, s| *d += s,
                );
            }
            Ok(())
        }
        self.accumulate_into_copy(source, OP, |out, src| match (out, src) {
            (CpuStorage::F32(o), CpuStorage::F32(s)) => {
                index_add_cpu(o, &dense, s, &source.layout, dim, &idx)
            }
            (CpuStorage::F64(o), CpuStorage::F64(s)) => {
                index_add_cpu(o, &dense, s, &source.layout, dim, &idx)
            }
            (o, _) => Err(TensorError::UnsupportedDType {
                op: OP,
                dtype: o.dtype(),
            }),
        })
    }

    /// `self` plus `src` scattered along `dim` by `index` (out of place), as
    /// `torch.scatter_add`: for every position `p` of `index`, the result at `p` with
    /// its `dim` coordinate replaced by `index[p]` gains `src[p]`. `index` is `u32` with
    /// the rank of `self`, no larger than `src` in any dim nor than `self` outside
    /// `dim`. The backward of [`Tensor::gather`].
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let z = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    /// let target = Tensor::from_vec(vec![2u32, 0], [2, 1], &Device::Cpu).unwrap();
    /// let g = Tensor::from_vec(vec![-1.0f32, -2.0], [2, 1], &Device::Cpu).unwrap();
    /// let out = z.scatter_add(1, &target, &g).unwrap();
    /// assert_eq!(out.to_vec::<f32>().unwrap(), vec![0.0, 0.0, -1.0, -2.0, 0.0, 0.0]);
    /// ```
    pub fn scatter_add(&self, dim: usize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        const OP: &str = "scatter_add";
        self.check_same_kind(src, OP)?;
        self.check_index_device(index, OP)?;
        let idx = self.checked_index_nd(dim, index, Some(src), OP)?;
        let dense = self.dense_layout();
        // Output positions with the `dim` coordinate zeroed, and the matching sources.
        let mut out_strides = dense.strides().to_vec();
        let sd = out_strides[dim];
        out_strides[dim] = 0;
        let pos = Layout::new(index.shape().clone(), out_strides, 0)?;
        let mut src_layout = src.layout.clone();
        for (d, &n) in index.dims().iter().enumerate() {
            src_layout = src_layout.narrow(d, 0, n)?;
        }
        #[cfg(feature = "cuda")]
        if self.device.is_cuda() {
            let reads = ReadSet::new(&[self, src]);
            if let (Storage::Cuda(s), Storage::Cuda(from)) = (reads.get(0), reads.get(1)) {
                use crate::cuda::{index_op, IndexKind};
                let kind = IndexKind::Scatter(index.shape(), from, &src_layout);
                return index_op(s, &self.layout, dim, &idx, kind, OP);
            }
        }
        fn scatter_cpu<T: FloatElement>(
            out: &mut [T],
            pos: &Layout,
            sd: usize,
            src: &[T],
            ls: &Layout,
            idx: &[u32],
        ) {
            let runs = Runs::new(pos.dims(), [pos.strides(), ls.strides()], [0, ls.offset()]);
            let (len, [so, ss]) = (runs.inner_len(), runs.inner_strides());
            let mut p = 0;
            runs.for_each(|[oo, os]| {
                for i in 0..len {
                    out[oo + i * so + idx[p] as usize * sd] += src[os + i * ss];
                    p += 1;
                }
            });
        }
        self.accumulate_into_copy(src, OP, |out, s| match (out, s) {
            (CpuStorage::F32(o), CpuStorage::F32(s)) => {
                scatter_cpu(o, &pos, sd, s, &src_layout, &idx);
                Ok(())
            }
            (CpuStorage::F64(o), CpuStorage::F64(s)) => {
                scatter_cpu(o, &pos, sd, s, &src_layout, &idx);
                Ok(())
            }
            (o, _) => Err(TensorError::UnsupportedDType {
                op: OP,
                dtype: o.dtype(),
            }),
        })
    }

    /// Validates an n-D index tensor for `gather`/`scatter_add` and returns its values.
    fn checked_index_nd(
        &self,
        dim: usize,
        index: &Tensor,
        src: Option<&Tensor>,
        op: &'static str,
    ) -> Result<Vec<u32>> {
        self.shape().check_dim(dim, op)?;
        let fits = index.rank() == self.rank()
            && (0..self.rank()).all(|d| d == dim || index.dims()[d] <= self.dims()[d])
            && src.is_none_or(|s| {
                s.rank() == index.rank() && index.dims().iter().zip(s.dims()).all(|(i, s)| i <= s)
            });
        if !fits {
            return Err(TensorError::ShapeMismatch {
                op,
                lhs: self.shape().clone(),
                rhs: index.shape().clone(),
            });
        }
        check_range(index.index_values(op)?, dim, self.dims()[dim], op)
    }

    /// The layout, over `index_shape`, of `self`'s element positions with the `dim`
    /// coordinate left at 0 (stride 0): adding `index * stride[dim]` gives the element.
    fn index_positions(&self, dim: usize, index_shape: &Shape) -> Result<Layout> {
        let mut strides = self.strides().to_vec();
        strides[dim] = 0;
        Layout::new(index_shape.clone(), strides, self.layout.offset())
    }

    /// A dense copy of `self` updated by `f` with `other`'s storage: the shared body of
    /// the out-of-place scatter ops.
    fn accumulate_into_copy(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl FnOnce(&mut CpuStorage, &CpuStorage) -> Result<()>,
    ) -> Result<Tensor> {
        if !self.dtype.is_float() {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: self.dtype,
            });
        }
        let mut out = {
            let guard = self.read_storage();
            match &*guard {
                Storage::Cpu(cpu) => match cpu {
                    CpuStorage::F32(v) => CpuStorage::F32(map::gather(op, v, &self.layout)?),
                    CpuStorage::F64(v) => CpuStorage::F64(map::gather(op, v, &self.layout)?),
                    CpuStorage::U32(v) => CpuStorage::U32(map::gather(op, v, &self.layout)?),
                },
                #[cfg(not(feature = "cuda"))]
                Storage::Cuda(s) => match *s {},
                #[cfg(feature = "cuda")]
                Storage::Cuda(_) => return Err(crate::cuda::not_implemented(op, self.device)),
            }
        };
        let reads = ReadSet::new(&[other]);
        match reads.get(0) {
            Storage::Cpu(src) => f(&mut out, src)?,
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => return Err(crate::cuda::not_implemented(op, other.device)),
        }
        Ok(Tensor::from_cpu_storage(out, self.shape().clone()))
    }
}

/// Checks that every index value is below `size`; returns the values.
fn check_range(values: Vec<u32>, dim: usize, size: usize, op: &'static str) -> Result<Vec<u32>> {
    match values.iter().find(|&&v| v as usize >= size) {
        Some(&v) => Err(TensorError::IndexOutOfRange {
            op,
            index: v as usize,
            size,
            dim,
        }),
        None => Ok(values),
    }
}
