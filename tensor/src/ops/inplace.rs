//! In-place updates that write through the shared storage, so every clone and view of
//! it sees the change (what optimisers use to update parameters).
//!
//! A view with expanded (stride-0) dims cannot be written: one storage slot would be
//! written many times. When the source shares the destination's storage it is copied
//! first, so no read lock and write lock of the same storage are ever held together.

use std::sync::{RwLockReadGuard, RwLockWriteGuard};

use crate::cpu::write::{update, update_runs, zip_into, zip_runs};
use crate::dtype::Element;
use crate::dtype::FloatElement;
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::storage::{CpuStorage, Storage};
use crate::Tensor;

/// What an in-place binary update does with each `(destination, source)` pair.
#[derive(Clone, Copy, Debug)]
enum Update {
    Assign,
    Add,
    Axpy(f64),
}

impl Update {
    fn name(self) -> &'static str {
        match self {
            Update::Assign => "assign",
            Update::Add => "add_",
            Update::Axpy(_) => "axpy_",
        }
    }
}

/// `dst op= src` on float views; contiguous runs use the SIMD kernels.
fn update_float<T: FloatElement>(
    op: Update,
    dst: &mut [T],
    ld: &Layout,
    src: &[T],
    ls: &Layout,
) -> kernels::Result<()> {
    use kernels::cpu::elementwise::BinaryOp;
    match op {
        Update::Assign => zip_runs(
            dst,
            ld,
            src,
            ls,
            |d, s| *d = s,
            |d, s| {
                d.copy_from_slice(s);
                Ok(())
            },
        ),
        Update::Add => zip_runs(
            dst,
            ld,
            src,
            ls,
            |d, s| *d += s,
            |d, s| T::k_binary_inplace(BinaryOp::Add, d, s),
        ),
        Update::Axpy(alpha) => {
            let a = T::from_f64(alpha);
            zip_runs(
                dst,
                ld,
                src,
                ls,
                |d, s| *d += a * s,
                |d, s| T::k_axpy(a, s, d),
            )
        }
    }
}

/// `dst *= v` on a float view; contiguous runs use the SIMD kernel.
fn scale<T: FloatElement>(dst: &mut [T], ld: &Layout, v: f64) {
    let v = T::from_f64(v);
    update_runs(dst, ld, |x| *x = *x * v, |run| T::k_scale(v, run));
}

/// Locks `dst` for writing and `src` (a different storage) for reading, in address
/// order so two threads doing crossed updates cannot deadlock.
fn lock_pair<'a>(
    dst: &'a Tensor,
    src: &'a Tensor,
) -> (RwLockWriteGuard<'a, Storage>, RwLockReadGuard<'a, Storage>) {
    if (dst.storage_ptr() as usize) < (src.storage_ptr() as usize) {
        let w = dst.write_storage();
        (w, src.read_storage())
    } else {
        let r = src.read_storage();
        (dst.write_storage(), r)
    }
}

impl Tensor {
    /// Errors unless every element of this view has its own storage slot.
    fn check_writable(&self, op: &'static str) -> Result<()> {
        if self.layout.has_broadcast_dims() {
            return Err(TensorError::invalid(
                op,
                format!(
                    "cannot write in place into an expanded view (shape {}, strides {:?}): \
                     several elements share one storage slot",
                    self.shape(),
                    self.strides()
                ),
            ));
        }
        Ok(())
    }

    fn update_from(&self, src: &Tensor, op: Update) -> Result<()> {
        let name = op.name();
        self.check_writable(name)?;
        if self.device != src.device {
            return Err(TensorError::DeviceMismatch {
                op: name,
                lhs: self.device,
                rhs: src.device,
            });
        }
        if self.dtype != src.dtype {
            return Err(TensorError::DTypeMismatch {
                op: name,
                lhs: self.dtype,
                rhs: src.dtype,
            });
        }
        if !matches!(op, Update::Assign) && !self.dtype.is_float() {
            return Err(TensorError::UnsupportedDType {
                op: name,
                dtype: self.dtype,
            });
        }
        let ls = src.layout.broadcast_as(self.shape(), name)?;
        // A source aliasing the destination is read from a private copy.
        let copied;
        let (src, ls) = if self.same_storage(src) {
            copied = src.copy_for(name)?;
            let l = copied.layout.broadcast_as(self.shape(), name)?;
            (&copied, l)
        } else {
            (src, ls)
        };
        let (mut w, r) = lock_pair(self, src);
        match (&mut *w, &*r) {
            (Storage::Cpu(d), Storage::Cpu(s)) => match (d, s) {
                (CpuStorage::F32(d), CpuStorage::F32(s)) => {
                    update_float(op, d, &self.layout, s, &ls)?
                }
                (CpuStorage::F64(d), CpuStorage::F64(s)) => {
                    update_float(op, d, &self.layout, s, &ls)?
                }
                (CpuStorage::U32(d), CpuStorage::U32(s)) => {
                    zip_into(d, &self.layout, s, &ls, |d, s| *d = s)
                }
                (d, s) => {
                    return Err(TensorError::DTypeMismatch {
                        op: name,
                        lhs: d.dtype(),
                        rhs: s.dtype(),
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            (Storage::Cuda(s), _) => match *s {},
            #[cfg(feature = "cuda")]
            (Storage::Cuda(d), Storage::Cuda(s)) => {
                use kernels::cuda::elementwise::Update as K;
                let k = match op {
                    Update::Assign => K::Assign,
                    Update::Add => K::Add,
                    Update::Axpy(a) => K::Axpy(a),
                };
                crate::cuda::update((d, &self.layout), (s, &ls), k, name)?
            }
            #[cfg(not(feature = "cuda"))]
            (_, Storage::Cuda(s)) => match *s {},
            #[cfg(feature = "cuda")]
            (Storage::Cuda(_), _) | (_, Storage::Cuda(_)) => {
                return Err(TensorError::DeviceMismatch {
                    op: name,
                    lhs: self.device,
                    rhs: src.device,
                })
            }
        }
        Ok(())
    }

    /// Overwrites this view's elements with `src` broadcast to its shape.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let w = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    /// let row = w.narrow(0, 1, 1).unwrap();
    /// row.assign(&Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], &Device::Cpu).unwrap()).unwrap();
    /// assert_eq!(w.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
    /// ```
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        self.update_from(src, Update::Assign)
    }

    /// `self += other` (broadcast to `self`'s shape), in place.
    pub fn add_(&self, other: &Tensor) -> Result<()> {
        self.update_from(other, Update::Add)
    }

    /// `self += alpha * x` (broadcast to `self`'s shape), in place: the SGD step
    /// `param.axpy_(-lr, &grad)`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let p = Tensor::ones([2], DType::F64, &Device::Cpu).unwrap();
    /// let g = Tensor::from_vec(vec![10.0f64, 20.0], [2], &Device::Cpu).unwrap();
    /// p.axpy_(-0.1, &g).unwrap();
    /// assert_eq!(p.to_vec::<f64>().unwrap(), vec![0.0, -1.0]);
    /// ```
    pub fn axpy_(&self, alpha: f64, x: &Tensor) -> Result<()> {
        self.update_from(x, Update::Axpy(alpha))
    }

    /// `self *= v`, in place (float dtypes).
    pub fn mul_scalar_(&self, v: f64) -> Result<()> {
        const OP: &str = "mul_scalar_";
        self.check_writable(OP)?;
        let mut guard = self.write_storage();
        match &mut *guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(d) => scale(d, &self.layout, v),
                CpuStorage::F64(d) => scale(d, &self.layout, v),
                CpuStorage::U32(_) => {
                    return Err(TensorError::UnsupportedDType {
                        op: OP,
                        dtype: self.dtype,
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::scale(s, &self.layout, v, OP)?,
        }
        Ok(())
    }

    /// Sets every element of this view to `v` (converted to the dtype with `as`
    /// semantics), in place.
    pub fn fill_(&self, v: f64) -> Result<()> {
        self.check_writable("fill_")?;
        fn fill<T: Element>(d: &mut [T], l: &Layout, v: f64) {
            let v = T::from_f64(v);
            update(d, l, |x| *x = v)
        }
        let mut guard = self.write_storage();
        match &mut *guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(d) => fill(d, &self.layout, v),
                CpuStorage::F64(d) => fill(d, &self.layout, v),
                CpuStorage::U32(d) => fill(d, &self.layout, v),
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::fill(s, &self.layout, v, "fill_")?,
        }
        Ok(())
    }

    /// Sets every element of this view to zero, in place (e.g. to reset a gradient).
    pub fn zero_(&self) -> Result<()> {
        self.fill_(0.0)
    }
}
