//! The [`Tensor`] type: shared storage plus a layout. Constructors, accessors and
//! conversions live here; the ops are in [`crate::ops`].

use std::sync::{Arc, RwLock};

use crate::cpu::{alloc_buf, map};
use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::{CpuStorage, Storage};
use crate::Device;

/// An n-dimensional array of `f32`, `f64` or `u32` elements on a device.
///
/// A tensor is an `Arc` to storage plus a small [`Layout`] (shape, strides, offset), so
/// `clone()` is cheap and views (`narrow`, `permute`, `expand`, ...) share the storage.
/// Ops return new tensors and never mutate their inputs; the in-place ops (`assign`,
/// `add_`, `axpy_`, ...) write through the shared storage, and every clone and view
/// sees the change, as in PyTorch.
///
/// ```
/// use tensor::{DType, Device, Tensor};
/// # fn main() -> tensor::Result<()> {
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], &Device::Cpu)?;
/// let w = Tensor::ones([3, 2], DType::F32, &Device::Cpu)?;
/// let y = x.matmul(&w)?.add(&Tensor::from_vec(vec![0.5f32, -0.5], [2], &Device::Cpu)?)?;
/// assert_eq!(y.dims(), &[2, 2]);
/// assert_eq!(y.to_vec::<f32>()?, vec![6.5, 5.5, 15.5, 14.5]);
/// assert_eq!(y.sum_all()?.item()?, 42.0);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tensor {
    pub(crate) storage: Arc<RwLock<Storage>>,
    pub(crate) layout: Layout,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
}

/// Returns `CudaUnavailable` for a CUDA device: this build has no CUDA backend.
#[cfg(not(feature = "cuda"))]
pub(crate) fn check_device(device: &Device, op: &'static str) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        Device::Cuda(_) => Err(TensorError::CudaUnavailable {
            op,
            device: *device,
        }),
    }
}

/// Every device is usable in a build with the CUDA backend (opening the GPU happens
/// when storage is created there, and reports its own errors).
#[cfg(feature = "cuda")]
pub(crate) fn check_device(_device: &Device, _op: &'static str) -> Result<()> {
    Ok(())
}

/// A tensor built on the host, moved to `device` (a no-op without the CUDA backend,
/// where `check_device` has already rejected CUDA devices).
#[inline]
pub(crate) fn place(t: Tensor, device: &Device) -> Result<Tensor> {
    match device {
        Device::Cpu => Ok(t),
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => crate::cuda::upload(&t, *i),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Ok(t),
    }
}

impl Tensor {
    // ----- internal construction -----

    /// A contiguous CPU tensor owning `storage`, of `shape` (the caller guarantees the
    /// element count matches).
    pub(crate) fn from_cpu_storage(storage: CpuStorage, shape: Shape) -> Tensor {
        let dtype = storage.dtype();
        Tensor {
            storage: Arc::new(RwLock::new(Storage::Cpu(storage))),
            layout: Layout::contiguous(shape),
            dtype,
            device: Device::Cpu,
        }
    }

    /// A view of the same storage with another layout (the caller guarantees the
    /// layout stays within the storage).
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        Tensor {
            storage: Arc::clone(&self.storage),
            layout,
            dtype: self.dtype,
            device: self.device,
        }
    }

    /// A CPU tensor from a typed vector (length already checked).
    pub(crate) fn from_typed_vec<T: Element>(data: Vec<T>, shape: Shape) -> Tensor {
        Self::from_cpu_storage(T::into_cpu_storage(data), shape)
    }

    // ----- constructors -----

    /// A tensor of `shape` filled with `value` (converted to `dtype` with `as`
    /// semantics: truncation and saturation for `u32`).
    ///
    /// Like every op that creates a tensor, a shape too large for memory is an error,
    /// not an abort: [`TensorError::AllocationFailed`] names the op, the shape and the
    /// bytes.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::full([2, 2], 1.5, DType::F64, &Device::Cpu).unwrap();
    /// assert_eq!(t.to_vec::<f64>().unwrap(), vec![1.5; 4]);
    /// let err = Tensor::full([1 << 40, 1 << 20], 1.5, DType::F32, &Device::Cpu).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "full: cannot allocate 4611686018427387904 bytes for a f32 tensor of shape [1099511627776, 1048576]"
    /// );
    /// ```
    pub fn full(
        shape: impl Into<Shape>,
        value: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Self::full_op(shape.into(), value, dtype, device, "full")
    }

    /// [`Tensor::full`] with the name of the public op for errors.
    fn full_op(
        shape: Shape,
        value: f64,
        dtype: DType,
        device: &Device,
        op: &'static str,
    ) -> Result<Tensor> {
        check_device(device, op)?;
        #[cfg(feature = "cuda")]
        if let Device::Cuda(i) = device {
            return crate::cuda::full(shape, value, dtype, *i, op);
        }
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(alloc_buf::filled(op, &shape, value as f32)?),
            DType::F64 => CpuStorage::F64(alloc_buf::filled(op, &shape, value)?),
            DType::U32 => CpuStorage::U32(alloc_buf::filled(op, &shape, u32::from_f64(value))?),
        };
        Ok(Self::from_cpu_storage(storage, shape))
    }

    /// A tensor of `shape` filled with zeros.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    /// assert_eq!(t.dims(), &[2, 3]);
    /// // A device that cannot be opened is an error (without the `cuda` feature, every
    /// // CUDA device is).
    /// assert!(Tensor::zeros([1], DType::F32, &Device::Cuda(4096)).is_err());
    /// ```
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full_op(shape.into(), 0.0, dtype, device, "zeros")
    }

    /// A tensor of `shape` filled with ones.
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full_op(shape.into(), 1.0, dtype, device, "ones")
    }

    /// A tensor taking ownership of `data` (row-major) as `shape`; the dtype is `T`'s.
    /// Errors if `data.len()` differs from the shape's element count.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1u32, 2, 3], [3], &Device::Cpu).unwrap();
    /// assert_eq!(t.dtype(), tensor::DType::U32);
    /// let err = Tensor::from_vec(vec![1.0f32; 5], [2, 3], &Device::Cpu).unwrap_err();
    /// assert_eq!(err.to_string(), "from_vec: shape [2, 3] holds 6 elements but 5 were given");
    /// ```
    pub fn from_vec<T: Element>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_elem_count() != Some(data.len()) {
            return Err(TensorError::ElementCount {
                op: "from_vec",
                shape,
                len: data.len(),
            });
        }
        check_device(device, "from_vec")?;
        place(Self::from_typed_vec(data, shape), device)
    }

    /// Like [`Tensor::from_vec`], copying from a slice.
    pub fn from_slice<T: Element>(
        data: &[T],
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_elem_count() != Some(data.len()) {
            return Err(TensorError::ElementCount {
                op: "from_slice",
                shape,
                len: data.len(),
            });
        }
        check_device(device, "from_slice")?;
        let data = alloc_buf::copy_of("from_slice", &shape, data)?;
        place(Self::from_typed_vec(data, shape), device)
    }

    /// A rank-0 CPU tensor holding `v`.
    ///
    /// ```
    /// use tensor::Tensor;
    /// let s = Tensor::scalar(2.5f32);
    /// assert_eq!(s.rank(), 0);
    /// assert_eq!(s.to_scalar::<f32>().unwrap(), 2.5);
    /// ```
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Self::from_typed_vec(vec![v], Shape::from(()))
    }

    /// The 1-D tensor `start, start + step, ...` up to but excluding `end` (as NumPy's
    /// `arange`; values are computed in f64 as `start + i * step`, then converted).
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::arange(0.0, 1.0, 0.25, DType::F32, &Device::Cpu).unwrap();
    /// assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    /// ```
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        const OP: &str = "arange";
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "start {start}, end {end} and step {step} must be finite with a nonzero step"
                ),
            ));
        }
        check_device(device, OP)?;
        let count = ((end - start) / step).ceil().max(0.0);
        if count > (isize::MAX as f64) / 8.0 {
            return Err(TensorError::invalid(
                OP,
                format!("start {start}, end {end}, step {step} would produce {count} elements"),
            ));
        }
        let n = count as usize;
        let shape = Shape::from([n]);
        fn values<T: Element>(shape: &Shape, start: f64, step: f64) -> Result<Vec<T>> {
            let mut out = alloc_buf::with_capacity(OP, shape)?;
            out.extend((0..shape.elem_count()).map(|i| T::from_f64(start + i as f64 * step)));
            Ok(out)
        }
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(values(&shape, start, step)?),
            DType::F64 => CpuStorage::F64(values(&shape, start, step)?),
            DType::U32 => CpuStorage::U32(values(&shape, start, step)?),
        };
        place(Self::from_cpu_storage(storage, shape), device)
    }

    /// The `n x n` identity matrix.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let i = Tensor::eye(2, DType::F64, &Device::Cpu).unwrap();
    /// assert_eq!(i.to_vec::<f64>().unwrap(), vec![1.0, 0.0, 0.0, 1.0]);
    /// ```
    pub fn eye(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if device.is_cuda() {
            return place(Self::eye(n, dtype, &Device::Cpu)?, device);
        }
        let t = Self::full_op(Shape::from([n, n]), 0.0, dtype, device, "eye")?;
        // Freshly allocated and contiguous: the diagonal is every (n + 1)-th element.
        match &mut *t.write_storage() {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => v.iter_mut().step_by(n + 1).for_each(|x| *x = 1.0),
                CpuStorage::F64(v) => v.iter_mut().step_by(n + 1).for_each(|x| *x = 1.0),
                CpuStorage::U32(v) => v.iter_mut().step_by(n + 1).for_each(|x| *x = 1),
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => unreachable!("eye builds CUDA tensors on the host"),
        }
        Ok(t)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Self::zeros(self.shape(), self.dtype, &self.device)
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Result<Tensor> {
        Self::ones(self.shape(), self.dtype, &self.device)
    }

    /// `value` everywhere, with this tensor's shape, dtype and device.
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        Self::full(self.shape(), value, self.dtype, &self.device)
    }

    // ----- accessors -----

    /// The shape.
    pub fn shape(&self) -> &Shape {
        self.layout.shape()
    }

    /// The dimension sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.layout.dims()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.layout.dims().len()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.layout.shape().elem_count()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The device the storage lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The layout: shape, strides and offset into the storage.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The strides (in elements) of each dim.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// Whether the view is densely packed in row-major order.
    pub fn is_contiguous(&self) -> bool {
        self.layout.is_contiguous()
    }

    /// The permutation that makes this view contiguous, if its elements fill one
    /// gap-free block of storage in some dim order (see [`Layout::dense_permutation`]);
    /// `None` for views with gaps or repeated elements. Elementwise ops on a dense,
    /// permuted CPU view return a result with the same strides (except perhaps those
    /// of size-1 dims, which address nothing).
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// // Logical [N, C, H, W] = [2, 3, 4, 5], stored batch-minor as [C, H, W, N].
    /// let stored = Tensor::zeros([3, 4, 5, 2], DType::F32, &Device::Cpu).unwrap();
    /// let x = stored.permute(&[3, 0, 1, 2]).unwrap();
    /// assert!(!x.is_contiguous());
    /// let perm = x.dense_permutation().unwrap();
    /// assert_eq!(perm, vec![1, 2, 3, 0]);
    /// assert!(x.permute(&perm).unwrap().is_contiguous());
    /// // Elementwise ops keep the layout.
    /// assert_eq!(x.relu().unwrap().strides(), x.strides());
    /// // One sample of the batch leaves gaps: no order is contiguous.
    /// assert_eq!(x.narrow(0, 0, 1).unwrap().dense_permutation(), None);
    /// ```
    pub fn dense_permutation(&self) -> Option<Vec<usize>> {
        self.layout.dense_permutation()
    }

    /// The size of dim `d`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([2, 3], DType::F32, &Device::Cpu).unwrap();
    /// assert_eq!(t.dim(1).unwrap(), 3);
    /// assert_eq!(
    ///     t.dim(2).unwrap_err().to_string(),
    ///     "dim: dimension 2 is out of range for a tensor of rank 2"
    /// );
    /// ```
    pub fn dim(&self, d: usize) -> Result<usize> {
        self.shape().check_dim(d, "dim")?;
        Ok(self.dims()[d])
    }

    /// Whether two tensors share the same storage (one is a view or clone of the other).
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    // ----- reading values -----

    /// The elements in logical row-major order. `T` must be the tensor's dtype.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
    /// assert_eq!(t.t().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 3.0, 2.0, 4.0]);
    /// assert!(t.to_vec::<f64>().is_err());
    /// ```
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.to_vec_for("to_vec")
    }

    /// [`Tensor::to_vec`] for the op `op`, which errors name.
    pub(crate) fn to_vec_for<T: Element>(&self, op: &'static str) -> Result<Vec<T>> {
        let guard = self.read_storage();
        match &*guard {
            Storage::Cpu(cpu) => map::gather(op, typed::<T>(cpu, op)?, &self.layout),
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::to_host_typed::<T>(s, &self.layout, op),
        }
    }

    /// The elements in logical order, converted to `f64` from any dtype.
    pub fn to_vec_f64(&self) -> Result<Vec<f64>> {
        const OP: &str = "to_vec_f64";
        let guard = self.read_storage();
        match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => map::map1(OP, v, &self.layout, f64::from),
                CpuStorage::F64(v) => map::gather(OP, v, &self.layout),
                CpuStorage::U32(v) => map::map1(OP, v, &self.layout, f64::from),
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => crate::cuda::to_host_f64(s, &self.layout),
        }
    }

    /// The single element of a one-element tensor (of any rank), as `T`.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        const OP: &str = "to_scalar";
        if self.elem_count() != 1 {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "expected a tensor with exactly one element, got shape {}",
                    self.shape()
                ),
            ));
        }
        let guard = self.read_storage();
        match &*guard {
            Storage::Cpu(cpu) => Ok(typed::<T>(cpu, OP)?[self.layout.offset()]),
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => Ok(crate::cuda::to_host_typed::<T>(s, &self.layout, OP)?[0]),
        }
    }

    /// The single element of a one-element tensor as `f64`, from any dtype.
    pub fn item(&self) -> Result<f64> {
        match self.dtype {
            DType::F32 => self.to_scalar::<f32>().map(f64::from),
            DType::F64 => self.to_scalar::<f64>(),
            DType::U32 => self.to_scalar::<u32>().map(f64::from),
        }
    }

    /// A copy converted to `dtype` (`as` semantics); a cheap clone if already `dtype`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.7f32, -2.0], [2], &Device::Cpu).unwrap();
    /// assert_eq!(t.to_dtype(DType::U32).unwrap().to_vec::<u32>().unwrap(), vec![1, 0]);
    /// ```
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype {
            return Ok(self.clone());
        }
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => {
                fn conv<S: Element>(src: &[S], l: &Layout, dtype: DType) -> Result<CpuStorage> {
                    const OP: &str = "to_dtype";
                    Ok(match dtype {
                        DType::F32 => {
                            CpuStorage::F32(map::map1(OP, src, l, |x| x.to_f64() as f32)?)
                        }
                        DType::F64 => CpuStorage::F64(map::map1(OP, src, l, |x| x.to_f64())?),
                        DType::U32 => {
                            CpuStorage::U32(map::map1(OP, src, l, |x| u32::from_f64(x.to_f64()))?)
                        }
                    })
                }
                match cpu {
                    CpuStorage::F32(v) => conv(v, &self.layout, dtype)?,
                    CpuStorage::F64(v) => conv(v, &self.layout, dtype)?,
                    CpuStorage::U32(v) => conv(v, &self.layout, dtype)?,
                }
            }
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => return crate::cuda::cast(s, &self.layout, dtype),
        };
        Ok(Self::from_cpu_storage(out, self.shape().clone()))
    }

    /// This tensor on `device`: a cheap clone if it is already there, else a dense
    /// copy there (between two GPUs the copy goes through the host). Without the `cuda`
    /// feature, moving to a CUDA device returns `CudaUnavailable`.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if *device == self.device {
            return Ok(self.clone());
        }
        check_device(device, "to_device")?;
        #[cfg(feature = "cuda")]
        if self.device.is_cuda() {
            let on_cpu = {
                let guard = self.read_storage();
                match &*guard {
                    Storage::Cuda(s) => crate::cuda::download(s, &self.layout)?,
                    Storage::Cpu(_) => self.clone(),
                }
            };
            return place(on_cpu, device);
        }
        place(self.clone(), device)
    }

    /// A dense row-major copy with its own storage (never shares with `self`, unlike
    /// [`Tensor::contiguous`]).
    pub fn copy(&self) -> Result<Tensor> {
        self.copy_for("copy")
    }

    /// [`Tensor::copy`] for the op `op` (`contiguous`, `reshape`, ...), which errors
    /// name.
    pub(crate) fn copy_for(&self, op: &'static str) -> Result<Tensor> {
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => CpuStorage::F32(map::gather(op, v, &self.layout)?),
                CpuStorage::F64(v) => CpuStorage::F64(map::gather(op, v, &self.layout)?),
                CpuStorage::U32(v) => CpuStorage::U32(map::gather(op, v, &self.layout)?),
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => return crate::cuda::cast(s, &self.layout, self.dtype),
        };
        Ok(Self::from_cpu_storage(out, self.shape().clone()))
    }

    // ----- escape hatches -----

    /// Calls `f` with the elements of a contiguous CPU tensor as one slice (the exact
    /// storage range of the view), for kernels and layers that work on raw slices.
    /// Errors if the tensor is not contiguous, not of dtype `T`, or not on the CPU.
    ///
    /// `f` runs under a read lock: it may read other tensors but must not call an
    /// in-place op on a tensor sharing this storage (that would deadlock).
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], &Device::Cpu).unwrap();
    /// let s = t.with_slice(|xs: &[f32]| xs.iter().sum::<f32>()).unwrap();
    /// assert_eq!(s, 6.0);
    /// ```
    pub fn with_slice<T: Element, R>(&self, f: impl FnOnce(&[T]) -> R) -> Result<R> {
        const OP: &str = "with_slice";
        self.check_slice_access::<T>(OP)?;
        let guard = self.read_storage();
        match &*guard {
            Storage::Cpu(cpu) => {
                let data = typed::<T>(cpu, OP)?;
                let off = self.layout.offset();
                Ok(f(&data[off..off + self.elem_count()]))
            }
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => Err(self.not_on_host(OP)),
        }
    }

    /// Calls `f` with the elements of a contiguous CPU tensor as one mutable slice;
    /// writes are visible through every view of the storage. Same errors as
    /// [`Tensor::with_slice`]. `f` runs under the write lock: it must not touch any
    /// tensor sharing this storage.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::zeros([3], DType::F64, &Device::Cpu).unwrap();
    /// let view = t.narrow(0, 1, 2).unwrap();
    /// view.with_slice_mut(|xs: &mut [f64]| xs.fill(7.0)).unwrap();
    /// assert_eq!(t.to_vec::<f64>().unwrap(), vec![0.0, 7.0, 7.0]);
    /// ```
    pub fn with_slice_mut<T: Element, R>(&self, f: impl FnOnce(&mut [T]) -> R) -> Result<R> {
        const OP: &str = "with_slice_mut";
        self.check_slice_access::<T>(OP)?;
        let mut guard = self.write_storage();
        match &mut *guard {
            Storage::Cpu(cpu) => {
                let dtype = cpu.dtype();
                let data = T::cpu_slice_mut(cpu).ok_or(TensorError::DTypeMismatch {
                    op: OP,
                    lhs: dtype,
                    rhs: T::DTYPE,
                })?;
                let off = self.layout.offset();
                Ok(f(&mut data[off..off + self.elem_count()]))
            }
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(_) => Err(self.not_on_host(OP)),
        }
    }

    /// The error for host-slice access to a tensor on a GPU.
    #[cfg(feature = "cuda")]
    fn not_on_host(&self, op: &'static str) -> TensorError {
        TensorError::invalid(
            op,
            format!(
                "the tensor is on {}; host slices need a CPU tensor (use to_device(&Device::Cpu))",
                self.device
            ),
        )
    }

    fn check_slice_access<T: Element>(&self, op: &'static str) -> Result<()> {
        if T::DTYPE != self.dtype {
            return Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: T::DTYPE,
            });
        }
        if !self.is_contiguous() {
            return Err(TensorError::invalid(
                op,
                format!(
                    "needs a contiguous tensor, got shape {} with strides {:?} (call contiguous() first)",
                    self.shape(),
                    self.strides()
                ),
            ));
        }
        check_device(&self.device, op)
    }
}

/// The elements of `cpu` as `T`, or a `DTypeMismatch` naming `op`.
#[inline]
pub(crate) fn typed<'a, T: Element>(cpu: &'a CpuStorage, op: &'static str) -> Result<&'a [T]> {
    T::cpu_slice(cpu).ok_or(TensorError::DTypeMismatch {
        op,
        lhs: cpu.dtype(),
        rhs: T::DTYPE,
    })
}
