//! CUDA storage and the CUDA side of the tensor ops (feature `cuda`).
//!
//! [`CudaStorage`] holds a device buffer of one dtype plus the handle of its GPU. The
//! ops in `crate::ops` match on `Storage::Cuda` and call the functions here, which run
//! the kernels of `kernels::cuda` on strided views, so views stay free on the GPU too.
//! Creating a tensor from host data (`from_vec`, `arange`, `eye`, random tensors)
//! builds it on the host and uploads it once.
//!
//! The public functions at the bottom ([`conv2d_forward`], [`batch_norm_forward_train`],
//! [`cross_entropy_rows`], [`stats`], ...) are the fused kernels for the autograd and
//! diagnostics crates: they take tensors on a CUDA device and return tensors there.

use std::fmt;
use std::sync::{Arc, RwLock};

use kernels::cpu::conv2d::Conv2dShape;
use kernels::cpu::norm::{BatchNormShape, GroupNormShape};
use kernels::cpu::stats::{Stats, StatsConfig};
use kernels::cuda::cudarc::driver::CudaSlice;
use kernels::cuda::elementwise::{self, BinaryOp, CmpOp, UnaryOp, Update, View};
use kernels::cuda::matmul::{gemm, Operand, Output};
use kernels::cuda::reduce::{self as kreduce, Reduction};
use kernels::cuda::{conv2d, norm, CudaDevice, CudaElem, CudaFloat};
use kernels::KernelError;

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::Storage;
use crate::{Device, Tensor};

/// A device buffer of one dtype.
pub(crate) enum CudaData {
    F32(CudaSlice<f32>),
    F64(CudaSlice<f64>),
    U32(CudaSlice<u32>),
}

/// A tensor's elements on a GPU: the buffer and the device it lives on.
pub(crate) struct CudaStorage {
    pub(crate) dev: Arc<CudaDevice>,
    pub(crate) data: CudaData,
}

impl fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dtype, len) = match &self.data {
            CudaData::F32(s) => ("f32", s.len()),
            CudaData::F64(s) => ("f64", s.len()),
            CudaData::U32(s) => ("u32", s.len()),
        };
        write!(
            f,
            "CudaStorage(cuda:{}, {dtype} x {len})",
            self.dev.ordinal()
        )
    }
}

impl CudaStorage {
    /// The device of this storage.
    pub(crate) fn device(&self) -> Device {
        Device::Cuda(self.dev.ordinal())
    }

    fn dtype(&self) -> DType {
        match &self.data {
            CudaData::F32(_) => DType::F32,
            CudaData::F64(_) => DType::F64,
            CudaData::U32(_) => DType::U32,
        }
    }
}

/// Element types with a CUDA buffer variant.
pub(crate) trait CudaElement: Element + CudaElem {
    fn wrap(s: CudaSlice<Self>) -> CudaData;
    fn slice(d: &CudaData) -> Option<&CudaSlice<Self>>;
}

macro_rules! cuda_element {
    ($t:ty, $v:ident) => {
        impl CudaElement for $t {
            fn wrap(s: CudaSlice<Self>) -> CudaData {
                CudaData::$v(s)
            }
            fn slice(d: &CudaData) -> Option<&CudaSlice<Self>> {
                match d {
                    CudaData::$v(s) => Some(s),
                    _ => None,
                }
            }
        }
    };
}
cuda_element!(f32, F32);
cuda_element!(f64, F64);
cuda_element!(u32, U32);

/// Turns a kernel error into a tensor error naming `op` and the device.
fn kerr(op: &'static str, device: Device) -> impl Fn(KernelError) -> TensorError {
    move |e| match e {
        KernelError::Cuda { detail, .. } => TensorError::Cuda { op, device, detail },
        other => TensorError::Kernel(other),
    }
}

/// The handle of GPU `ordinal`, or an error naming `op` and the device.
pub(crate) fn device(ordinal: usize, op: &'static str) -> Result<Arc<CudaDevice>> {
    CudaDevice::get(ordinal).map_err(kerr(op, Device::Cuda(ordinal)))
}

/// The error of an op this backend does not implement on CUDA.
pub(crate) fn not_implemented(op: &'static str, device: Device) -> TensorError {
    TensorError::Cuda {
        op,
        device,
        detail: "not implemented on CUDA (move the tensors to the CPU with to_device)".into(),
    }
}

fn view(l: &Layout) -> View<'_> {
    View {
        dims: l.dims(),
        strides: l.strides(),
        offset: l.offset(),
    }
}

fn dense_view<'a>(dims: &'a [usize], strides: &'a [usize]) -> View<'a> {
    View {
        dims,
        strides,
        offset: 0,
    }
}

fn typed<'a, T: CudaElement>(s: &'a CudaStorage, op: &'static str) -> Result<&'a CudaSlice<T>> {
    T::slice(&s.data).ok_or(TensorError::DTypeMismatch {
        op,
        lhs: s.dtype(),
        rhs: T::DTYPE,
    })
}

impl Tensor {
    /// A contiguous tensor owning CUDA `storage`, of `shape`.
    pub(crate) fn from_cuda_storage(storage: CudaStorage, shape: Shape) -> Tensor {
        let dtype = storage.dtype();
        let device = storage.device();
        Tensor {
            storage: Arc::new(RwLock::new(Storage::Cuda(storage))),
            layout: Layout::contiguous(shape),
            dtype,
            device,
        }
    }
}

fn wrap_tensor<T: CudaElement>(dev: &Arc<CudaDevice>, s: CudaSlice<T>, shape: Shape) -> Tensor {
    Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(dev),
            data: T::wrap(s),
        },
        shape,
    )
}

// ----- creation and transfer -----

/// A tensor of `shape` filled with `value` on GPU `ordinal`.
pub(crate) fn full(
    shape: Shape,
    value: f64,
    dtype: DType,
    ordinal: usize,
    op: &'static str,
) -> Result<Tensor> {
    let dev = device(ordinal, op)?;
    let n = crate::cpu::alloc_buf::checked_len(op, &shape, dtype, dtype.size_in_bytes())?;
    fn make<T: CudaElement>(
        dev: &Arc<CudaDevice>,
        n: usize,
        v: T,
        op: &'static str,
    ) -> Result<CudaData> {
        let e = kerr(op, Device::Cuda(dev.ordinal()));
        let mut s = dev.zeros::<T>(n).map_err(&e)?;
        // Fresh memory is +0.0; anything else (-0.0 and NaN included) is written.
        if v.to_f64().to_bits() != 0 {
            let dims = [n];
            elementwise::fill(dev, &mut s, dense_view(&dims, &[1]), v).map_err(&e)?;
        }
        Ok(T::wrap(s))
    }
    let data = match dtype {
        DType::F32 => make(&dev, n, <f32 as Element>::from_f64(value), op)?,
        DType::F64 => make(&dev, n, value, op)?,
        DType::U32 => make(&dev, n, <u32 as Element>::from_f64(value), op)?,
    };
    Ok(Tensor::from_cuda_storage(CudaStorage { dev, data }, shape))
}

/// A copy of the CPU tensor `t` on GPU `ordinal`.
pub(crate) fn upload(t: &Tensor, ordinal: usize) -> Result<Tensor> {
    const OP: &str = "to_device";
    let dev = device(ordinal, OP)?;
    let t = t.contiguous()?;
    fn up<T: CudaElement>(dev: &Arc<CudaDevice>, t: &Tensor) -> Result<Tensor> {
        let e = kerr(OP, Device::Cuda(dev.ordinal()));
        let s = t.with_slice::<T, _>(|xs| dev.htod(xs))?.map_err(e)?;
        Ok(wrap_tensor(dev, s, t.shape().clone()))
    }
    match t.dtype {
        DType::F32 => up::<f32>(&dev, &t),
        DType::F64 => up::<f64>(&dev, &t),
        DType::U32 => up::<u32>(&dev, &t),
    }
}

/// The elements of a view of `s` in logical order, on the host.
pub(crate) fn to_host<T: CudaElement>(
    s: &CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<Vec<T>> {
    let src = typed::<T>(s, op)?;
    let e = kerr(op, s.device());
    let n = l.shape().elem_count();
    if l.is_contiguous() && l.offset() == 0 {
        return s.dev.dtoh(src, n).map_err(e);
    }
    let dense = elementwise::copy(&s.dev, src, view(l)).map_err(&e)?;
    s.dev.dtoh(&dense, n).map_err(e)
}

/// The elements of a view of `s` in logical order, as host storage.
pub(crate) fn to_host_storage(
    s: &CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<crate::storage::CpuStorage> {
    use crate::storage::CpuStorage;
    Ok(match s.dtype() {
        DType::F32 => CpuStorage::F32(to_host::<f32>(s, l, op)?),
        DType::F64 => CpuStorage::F64(to_host::<f64>(s, l, op)?),
        DType::U32 => CpuStorage::U32(to_host::<u32>(s, l, op)?),
    })
}

/// The elements of a view of `s` as `T` on the host; `T` must be the storage's dtype.
pub(crate) fn to_host_typed<T: Element>(
    s: &CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<Vec<T>> {
    if T::DTYPE != s.dtype() {
        return Err(TensorError::DTypeMismatch {
            op,
            lhs: s.dtype(),
            rhs: T::DTYPE,
        });
    }
    let dtype = s.dtype();
    T::from_cpu_storage(to_host_storage(s, l, op)?).ok_or(TensorError::DTypeMismatch {
        op,
        lhs: dtype,
        rhs: T::DTYPE,
    })
}

/// The elements of a view of `s` converted to `f64`, on the host.
pub(crate) fn to_host_f64(s: &CudaStorage, l: &Layout) -> Result<Vec<f64>> {
    const OP: &str = "to_vec_f64";
    let e = kerr(OP, s.device());
    let n = l.shape().elem_count();
    let conv = match &s.data {
        CudaData::F32(v) => elementwise::cast::<f32, f64>(&s.dev, v, view(l)),
        CudaData::F64(v) => elementwise::cast::<f64, f64>(&s.dev, v, view(l)),
        CudaData::U32(v) => elementwise::cast::<u32, f64>(&s.dev, v, view(l)),
    }
    .map_err(&e)?;
    s.dev.dtoh(&conv, n).map_err(e)
}

/// A CPU tensor with the values of a view of `s`.
pub(crate) fn download(s: &CudaStorage, l: &Layout) -> Result<Tensor> {
    let cpu = to_host_storage(s, l, "to_device")?;
    Ok(Tensor::from_cpu_storage(cpu, l.shape().clone()))
}

/// A dense copy of a view of `s` converted to `dtype` (a plain copy for its own dtype).
pub(crate) fn cast(s: &CudaStorage, l: &Layout, dtype: DType) -> Result<Tensor> {
    const OP: &str = "to_dtype";
    let e = kerr(OP, s.device());
    let d = &*s.dev;
    fn to<S: CudaElement>(
        d: &CudaDevice,
        v: &CudaSlice<S>,
        vw: View<'_>,
        dtype: DType,
    ) -> kernels::Result<CudaData> {
        Ok(match dtype {
            DType::F32 => CudaData::F32(elementwise::cast::<S, f32>(d, v, vw)?),
            DType::F64 => CudaData::F64(elementwise::cast::<S, f64>(d, v, vw)?),
            DType::U32 => CudaData::U32(elementwise::cast::<S, u32>(d, v, vw)?),
        })
    }
    let data = match &s.data {
        CudaData::F32(v) => to(d, v, view(l), dtype),
        CudaData::F64(v) => to(d, v, view(l), dtype),
        CudaData::U32(v) => to(d, v, view(l), dtype),
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&s.dev),
            data,
        },
        l.shape().clone(),
    ))
}

// ----- elementwise -----

/// A unary float op on a view of `s`.
pub(crate) fn unary(
    s: &CudaStorage,
    l: &Layout,
    op: UnaryOp,
    name: &'static str,
) -> Result<Tensor> {
    let e = kerr(name, s.device());
    let data = match &s.data {
        CudaData::F32(v) => CudaData::F32(elementwise::unary(&s.dev, op, v, view(l)).map_err(&e)?),
        CudaData::F64(v) => CudaData::F64(elementwise::unary(&s.dev, op, v, view(l)).map_err(&e)?),
        CudaData::U32(_) => {
            return Err(TensorError::UnsupportedDType {
                op: name,
                dtype: DType::U32,
            })
        }
    };
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&s.dev),
            data,
        },
        l.shape().clone(),
    ))
}

/// Errors unless both storages live on the same GPU.
fn same_device(op: &'static str, a: &CudaStorage, b: &CudaStorage) -> Result<()> {
    if a.dev.ordinal() != b.dev.ordinal() {
        return Err(TensorError::DeviceMismatch {
            op,
            lhs: a.device(),
            rhs: b.device(),
        });
    }
    Ok(())
}

/// Broadcast arithmetic (`cmp == None`) or comparison of two views over `shape`.
pub(crate) fn binary(
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    shape: &Shape,
    op: std::result::Result<BinaryOp, CmpOp>,
    name: &'static str,
) -> Result<Tensor> {
    same_device(name, a.0, b.0)?;
    let e = kerr(name, a.0.device());
    let d = &*a.0.dev;
    let dims = shape.dims();
    let data = match (&a.0.data, &b.0.data, op) {
        (CudaData::F32(x), CudaData::F32(y), Ok(op)) => CudaData::F32(
            elementwise::binary(d, op, dims, (x, view(a.1)), (y, view(b.1))).map_err(&e)?,
        ),
        (CudaData::F64(x), CudaData::F64(y), Ok(op)) => CudaData::F64(
            elementwise::binary(d, op, dims, (x, view(a.1)), (y, view(b.1))).map_err(&e)?,
        ),
        (CudaData::F32(x), CudaData::F32(y), Err(op)) => CudaData::F32(
            elementwise::compare(d, op, dims, (x, view(a.1)), (y, view(b.1))).map_err(&e)?,
        ),
        (CudaData::F64(x), CudaData::F64(y), Err(op)) => CudaData::F64(
            elementwise::compare(d, op, dims, (x, view(a.1)), (y, view(b.1))).map_err(&e)?,
        ),
        (CudaData::U32(x), CudaData::U32(y), Err(op)) => CudaData::U32(
            elementwise::compare(d, op, dims, (x, view(a.1)), (y, view(b.1))).map_err(&e)?,
        ),
        (CudaData::U32(_), CudaData::U32(_), Ok(_)) => {
            return Err(TensorError::UnsupportedDType {
                op: name,
                dtype: DType::U32,
            })
        }
        _ => {
            return Err(TensorError::DTypeMismatch {
                op: name,
                lhs: a.0.dtype(),
                rhs: b.0.dtype(),
            })
        }
    };
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&a.0.dev),
            data,
        },
        shape.clone(),
    ))
}

/// `where_cond` over `shape` (all three views broadcast to it).
pub(crate) fn where_cond(
    m: (&CudaStorage, &Layout),
    t: (&CudaStorage, &Layout),
    f: (&CudaStorage, &Layout),
    shape: &Shape,
) -> Result<Tensor> {
    const OP: &str = "where_cond";
    same_device(OP, m.0, t.0)?;
    same_device(OP, t.0, f.0)?;
    let e = kerr(OP, m.0.device());
    let d = &*m.0.dev;
    let dims = shape.dims();
    fn pick<M: CudaElement>(
        d: &CudaDevice,
        dims: &[usize],
        m: (&CudaSlice<M>, View<'_>),
        t: (&CudaStorage, &Layout),
        f: (&CudaStorage, &Layout),
    ) -> Result<std::result::Result<CudaData, KernelError>> {
        Ok(match (&t.0.data, &f.0.data) {
            (CudaData::F32(x), CudaData::F32(y)) => {
                elementwise::where_cond(d, dims, m, (x, view(t.1)), (y, view(f.1)))
                    .map(CudaData::F32)
            }
            (CudaData::F64(x), CudaData::F64(y)) => {
                elementwise::where_cond(d, dims, m, (x, view(t.1)), (y, view(f.1)))
                    .map(CudaData::F64)
            }
            (CudaData::U32(x), CudaData::U32(y)) => {
                elementwise::where_cond(d, dims, m, (x, view(t.1)), (y, view(f.1)))
                    .map(CudaData::U32)
            }
            _ => {
                return Err(TensorError::DTypeMismatch {
                    op: OP,
                    lhs: t.0.dtype(),
                    rhs: f.0.dtype(),
                })
            }
        })
    }
    let data = match &m.0.data {
        CudaData::F32(v) => pick(d, dims, (v, view(m.1)), t, f)?,
        CudaData::F64(v) => pick(d, dims, (v, view(m.1)), t, f)?,
        CudaData::U32(v) => pick(d, dims, (v, view(m.1)), t, f)?,
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&m.0.dev),
            data,
        },
        shape.clone(),
    ))
}

// ----- reductions -----

/// The layout with the dims where `reduced` is true moved last, as a dense buffer of
/// `rows x k`, and `k`.
fn rows_last<'a, T: CudaElement>(
    s: &'a CudaStorage,
    l: &Layout,
    reduced: &[bool],
    op: &'static str,
) -> Result<(Dense<'a, T>, usize)> {
    let src = typed::<T>(s, op)?;
    let perm: Vec<usize> = (0..reduced.len())
        .filter(|&d| !reduced[d])
        .chain((0..reduced.len()).filter(|&d| reduced[d]))
        .collect();
    let k: usize = (0..reduced.len())
        .filter(|&d| reduced[d])
        .map(|d| l.dims()[d])
        .product();
    let pl = l.permute(&perm)?;
    if pl.is_contiguous() && pl.offset() == 0 {
        return Ok((Dense::Borrowed(src), k));
    }
    let dense = elementwise::copy(&s.dev, src, view(&pl)).map_err(kerr(op, s.device()))?;
    Ok((Dense::Owned(dense), k))
}

/// Sum / mean / variance / max / min over the dims where `reduced` is true.
pub(crate) fn reduce(
    s: &CudaStorage,
    l: &Layout,
    reduced: &[bool],
    red: Reduction,
    out_shape: Shape,
    op: &'static str,
) -> Result<Tensor> {
    let e = kerr(op, s.device());
    let rows = out_shape.elem_count();
    fn run<T: CudaElement>(
        s: &CudaStorage,
        l: &Layout,
        reduced: &[bool],
        red: Reduction,
        rows: usize,
        op: &'static str,
    ) -> Result<std::result::Result<CudaData, KernelError>> {
        let (dense, k) = rows_last::<T>(s, l, reduced, op)?;
        Ok(kreduce::reduce_rows(&s.dev, &dense, rows, k, red).map(T::wrap))
    }
    let data = match (s.dtype(), red) {
        (DType::F32, _) => run::<f32>(s, l, reduced, red, rows, op)?,
        (DType::F64, _) => run::<f64>(s, l, reduced, red, rows, op)?,
        (DType::U32, Reduction::Max | Reduction::Min) => run::<u32>(s, l, reduced, red, rows, op)?,
        (DType::U32, _) => {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: DType::U32,
            })
        }
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&s.dev),
            data,
        },
        out_shape,
    ))
}

/// Arg-max / arg-min along `dim` (`u32` indices).
pub(crate) fn arg_reduce(
    s: &CudaStorage,
    l: &Layout,
    dim: usize,
    max: bool,
    out_shape: Shape,
    op: &'static str,
) -> Result<Tensor> {
    let e = kerr(op, s.device());
    let mut reduced = vec![false; l.dims().len()];
    reduced[dim] = true;
    let rows = out_shape.elem_count();
    fn run<T: CudaElement>(
        s: &CudaStorage,
        l: &Layout,
        reduced: &[bool],
        rows: usize,
        max: bool,
        op: &'static str,
    ) -> Result<std::result::Result<CudaSlice<u32>, KernelError>> {
        let (dense, k) = rows_last::<T>(s, l, reduced, op)?;
        Ok(kreduce::argreduce_rows(&s.dev, &dense, rows, k, max))
    }
    let out = match s.dtype() {
        DType::F32 => run::<f32>(s, l, &reduced, rows, max, op)?,
        DType::F64 => run::<f64>(s, l, &reduced, rows, max, op)?,
        DType::U32 => run::<u32>(s, l, &reduced, rows, max, op)?,
    }
    .map_err(e)?;
    Ok(wrap_tensor(&s.dev, out, out_shape))
}

/// Softmax or log-softmax of the rows of a contiguous view of `s` with shape `shape`
/// (the softmax dim last).
pub(crate) fn softmax_rows(
    s: &CudaStorage,
    l: &Layout,
    log: bool,
    op: &'static str,
) -> Result<Tensor> {
    let e = kerr(op, s.device());
    let dims = l.dims();
    let k = dims.last().copied().unwrap_or(1);
    let rows = l.shape().elem_count().checked_div(k).unwrap_or(0);
    fn run<T: CudaElement + CudaFloat>(
        s: &CudaStorage,
        l: &Layout,
        rows: usize,
        k: usize,
        log: bool,
        op: &'static str,
    ) -> Result<std::result::Result<CudaData, KernelError>> {
        let dense = contiguous_buffer::<T>(s, l, op)?;
        Ok(kreduce::softmax_rows(&s.dev, &dense, rows, k, log).map(T::wrap))
    }
    let data = match s.dtype() {
        DType::F32 => run::<f32>(s, l, rows, k, log, op)?,
        DType::F64 => run::<f64>(s, l, rows, k, log, op)?,
        DType::U32 => {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: DType::U32,
            })
        }
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&s.dev),
            data,
        },
        l.shape().clone(),
    ))
}

/// A dense buffer from offset 0: the storage itself or a copy.
enum Dense<'a, T> {
    Borrowed(&'a CudaSlice<T>),
    Owned(CudaSlice<T>),
}

impl<T> std::ops::Deref for Dense<'_, T> {
    type Target = CudaSlice<T>;
    fn deref(&self) -> &CudaSlice<T> {
        match self {
            Dense::Borrowed(s) => s,
            Dense::Owned(s) => s,
        }
    }
}

/// A dense buffer with the elements of a view (a copy unless the view is dense from
/// offset 0).
fn contiguous_buffer<'a, T: CudaElement>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<Dense<'a, T>> {
    let src = typed::<T>(s, op)?;
    if l.is_contiguous() && l.offset() == 0 {
        return Ok(Dense::Borrowed(src));
    }
    let copy = elementwise::copy(&s.dev, src, view(l)).map_err(kerr(op, s.device()))?;
    Ok(Dense::Owned(copy))
}

/// How cuBLAS can read the matrices of a `[batch.., rows, cols]` view in place:
/// whether each is stored transposed, and the stride between consecutive matrices
/// (0 for a broadcast batch). `None` when the view needs a dense copy.
fn gemm_view(l: &Layout) -> Option<(bool, usize)> {
    let (d, s) = (l.dims(), l.strides());
    let r = d.len();
    let (rows, cols, rs, cs) = (d[r - 2], d[r - 1], s[r - 2], s[r - 1]);
    let transposed = if (cs == 1 || cols == 1) && (rs == cols || rows == 1) {
        false
    } else if (rs == 1 || rows == 1) && (cs == rows || cols == 1) {
        true
    } else {
        return None;
    };
    let batch: Vec<(usize, usize)> = d[..r - 2]
        .iter()
        .zip(&s[..r - 2])
        .filter(|(&n, _)| n != 1)
        .map(|(&n, &st)| (n, st))
        .collect();
    // The batch dims must flatten to one stride: each is its successor's stride times
    // its successor's size (all 0 for a broadcast batch).
    if batch.windows(2).any(|w| w[0].1 != w[1].1 * w[1].0) {
        return None;
    }
    let stride = batch.last().map_or(0, |&(_, st)| st);
    if stride != 0 && stride < rows * cols {
        // Overlapping matrices: not a layout cuBLAS can be given.
        return None;
    }
    Some((transposed, stride))
}

/// A gemm operand reading a view in place when possible, else a dense copy.
fn gemm_operand<'a, T: CudaElement>(
    s: &'a CudaStorage,
    l: &Layout,
    op: &'static str,
) -> Result<(Dense<'a, T>, usize, bool, usize)> {
    let r = l.dims().len();
    let size = l.dims()[r - 2] * l.dims()[r - 1];
    if let Some((transposed, stride)) = gemm_view(l) {
        return Ok((
            Dense::Borrowed(typed::<T>(s, op)?),
            l.offset(),
            transposed,
            stride,
        ));
    }
    Ok((contiguous_buffer::<T>(s, l, op)?, 0, false, size))
}

// ----- matmul -----

/// Batched matmul of the (promoted) operand layouts `pa` `[.., m, k]` and `pb`
/// `[.., k, n]` broadcast over the batch dims `batch`; the result has `out_dims`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    a: (&CudaStorage, &Layout),
    b: (&CudaStorage, &Layout),
    batch: &[usize],
    (m, k, n): (usize, usize, usize),
    out_dims: Vec<usize>,
) -> Result<Tensor> {
    const OP: &str = "matmul";
    same_device(OP, a.0, b.0)?;
    let e = kerr(OP, a.0.device());
    let nb: usize = batch.iter().product();
    let full = |l: &Layout, r: usize, c: usize| -> Result<Layout> {
        let mut dims = batch.to_vec();
        dims.extend([r, c]);
        l.broadcast_as(&Shape::from(dims), OP)
    };
    let la = full(a.1, m, k)?;
    let lb = full(b.1, k, n)?;
    fn run<T: CudaElement + CudaFloat>(
        a: &CudaStorage,
        la: &Layout,
        b: &CudaStorage,
        lb: &Layout,
        nb: usize,
        mkn: (usize, usize, usize),
    ) -> Result<std::result::Result<CudaData, KernelError>> {
        let (m, k, n) = mkn;
        let (xa, oa, ta, sa) = gemm_operand::<T>(a, la, OP)?;
        let (xb, ob, tb, sb) = gemm_operand::<T>(b, lb, OP)?;
        let d = &*a.dev;
        let mut out = match d.zeros::<T>(nb * m * n) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let opa = Operand {
            buf: &xa,
            offset: oa,
            transposed: ta,
            batch_stride: sa,
        };
        let opb = Operand {
            buf: &xb,
            offset: ob,
            transposed: tb,
            batch_stride: sb,
        };
        let o = Output {
            buf: &mut out,
            offset: 0,
            batch_stride: m * n,
        };
        Ok(gemm(d, nb, (m, n, k), opa, opb, 0.0, o).map(|()| T::wrap(out)))
    }
    let data = match a.0.dtype() {
        DType::F32 => run::<f32>(a.0, &la, b.0, &lb, nb, (m, k, n))?,
        DType::F64 => run::<f64>(a.0, &la, b.0, &lb, nb, (m, k, n))?,
        DType::U32 => {
            return Err(TensorError::UnsupportedDType {
                op: OP,
                dtype: DType::U32,
            })
        }
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(&a.0.dev),
            data,
        },
        Shape::from(out_dims),
    ))
}

// ----- in place -----

/// `dst op= src` on views (the source already broadcast to the destination's shape and
/// not sharing its storage).
pub(crate) fn update(
    dst: (&mut CudaStorage, &Layout),
    src: (&CudaStorage, &Layout),
    op: Update,
    name: &'static str,
) -> Result<()> {
    if dst.0.dev.ordinal() != src.0.dev.ordinal() {
        return Err(TensorError::DeviceMismatch {
            op: name,
            lhs: dst.0.device(),
            rhs: src.0.device(),
        });
    }
    let e = kerr(name, dst.0.device());
    let alpha = match op {
        Update::Axpy(a) | Update::Scale(a) => a,
        _ => 0.0,
    };
    let dev = Arc::clone(&dst.0.dev);
    let (dl, sl) = (view(dst.1), view(src.1));
    match (&mut dst.0.data, &src.0.data) {
        (CudaData::F32(d), CudaData::F32(s)) => {
            elementwise::update(&dev, op, alpha as f32, (d, dl), (s, sl))
        }
        (CudaData::F64(d), CudaData::F64(s)) => {
            elementwise::update(&dev, op, alpha, (d, dl), (s, sl))
        }
        (CudaData::U32(d), CudaData::U32(s)) if op == Update::Assign => {
            elementwise::update(&dev, op, 0, (d, dl), (s, sl))
        }
        (CudaData::U32(_), CudaData::U32(_)) => {
            return Err(TensorError::UnsupportedDType {
                op: name,
                dtype: DType::U32,
            })
        }
        (d, s) => {
            let lhs = match d {
                CudaData::F32(_) => DType::F32,
                CudaData::F64(_) => DType::F64,
                CudaData::U32(_) => DType::U32,
            };
            return Err(TensorError::DTypeMismatch {
                op: name,
                lhs,
                rhs: match s {
                    CudaData::F32(_) => DType::F32,
                    CudaData::F64(_) => DType::F64,
                    CudaData::U32(_) => DType::U32,
                },
            });
        }
    }
    .map_err(e)
}

/// `dst *= v` on a view (float dtypes).
pub(crate) fn scale(dst: &mut CudaStorage, l: &Layout, v: f64, name: &'static str) -> Result<()> {
    let e = kerr(name, dst.device());
    let dev = Arc::clone(&dst.dev);
    match &mut dst.data {
        CudaData::F32(d) => elementwise::scale(&dev, d, view(l), v),
        CudaData::F64(d) => elementwise::scale(&dev, d, view(l), v),
        CudaData::U32(_) => {
            return Err(TensorError::UnsupportedDType {
                op: name,
                dtype: DType::U32,
            })
        }
    }
    .map_err(e)
}

/// Writes `v` (converted with `as` semantics) into a view.
pub(crate) fn fill(dst: &mut CudaStorage, l: &Layout, v: f64, name: &'static str) -> Result<()> {
    let e = kerr(name, dst.device());
    let dev = Arc::clone(&dst.dev);
    match &mut dst.data {
        CudaData::F32(d) => elementwise::fill(&dev, d, view(l), <f32 as Element>::from_f64(v)),
        CudaData::F64(d) => elementwise::fill(&dev, d, view(l), v),
        CudaData::U32(d) => elementwise::fill(&dev, d, view(l), <u32 as Element>::from_f64(v)),
    }
    .map_err(e)
}

/// `cat` on a GPU: each part assigned into its slice of a fresh output.
pub(crate) fn cat(tensors: &[Tensor], dim: usize, out_shape: Shape) -> Result<Tensor> {
    let first = &tensors[0];
    let out = Tensor::zeros(out_shape, first.dtype, &first.device)?;
    let mut start = 0;
    for t in tensors {
        let len = t.dims()[dim];
        out.narrow(dim, start, len)?.assign(t)?;
        start += len;
    }
    Ok(out)
}

// ----- fused kernels for the autograd and diagnostics crates -----

/// `t` as a tensor whose storage is exactly its dense elements from offset 0 (a copy
/// on the GPU otherwise); errors unless it lives on `device`.
fn dense_on(t: &Tensor, device: Device, op: &'static str) -> Result<Tensor> {
    if t.device != device {
        return Err(TensorError::DeviceMismatch {
            op,
            lhs: device,
            rhs: t.device,
        });
    }
    if t.is_contiguous() && t.layout.offset() == 0 {
        Ok(t.clone())
    } else {
        t.copy()
    }
}

/// The device handle and typed buffer behind a CUDA storage.
fn buffer<'a, T: CudaElement>(
    g: &'a Storage,
    op: &'static str,
) -> Result<(&'a Arc<CudaDevice>, &'a CudaSlice<T>)> {
    match g {
        Storage::Cuda(s) => Ok((&s.dev, typed::<T>(s, op)?)),
        Storage::Cpu(_) => Err(TensorError::invalid(
            op,
            "expected a tensor on a CUDA device",
        )),
    }
}

/// The GPU ordinal of `t`, or an error naming `op` if it is not on a CUDA device.
fn cuda_device_of(t: &Tensor, op: &'static str) -> Result<Device> {
    match t.device {
        d @ Device::Cuda(_) => Ok(d),
        d => Err(TensorError::invalid(
            op,
            format!("expected a tensor on a CUDA device, got one on {d}"),
        )),
    }
}

fn float_dtype(t: &Tensor, op: &'static str) -> Result<DType> {
    if !t.dtype.is_float() {
        return Err(TensorError::UnsupportedDType { op, dtype: t.dtype });
    }
    Ok(t.dtype)
}

fn conv_fwd<T: CudaElement + CudaFloat>(
    shape: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    device: Device,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let (x, w) = (dense_on(x, device, OP)?, dense_on(w, device, OP)?);
    let b = b.map(|b| dense_on(b, device, OP)).transpose()?;
    let (gx, gw) = (x.read_storage(), w.read_storage());
    let gb = b.as_ref().map(Tensor::read_storage);
    let (dev, xs) = buffer::<T>(&gx, OP)?;
    let (_, ws) = buffer::<T>(&gw, OP)?;
    let bs = gb
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|x| x.1))
        .transpose()?;
    let out = conv2d::conv2d_forward(dev, shape, xs, ws, bs).map_err(kerr(OP, device))?;
    Ok(wrap_tensor(
        dev,
        out,
        Shape::from(shape.output_dims().to_vec()),
    ))
}

/// Conv2d forward on a GPU (the CUDA counterpart of `kernels::cpu::conv2d::
/// conv2d_forward`): input, weight and optional bias must share one CUDA device and a
/// float dtype and match `shape`.
pub fn conv2d_forward(
    shape: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
) -> Result<Tensor> {
    const OP: &str = "conv2d";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => conv_fwd::<f32>(shape, x, w, b, device),
        _ => conv_fwd::<f64>(shape, x, w, b, device),
    }
}

fn conv_bwd_in<T: CudaElement + CudaFloat>(
    shape: &Conv2dShape,
    g: &Tensor,
    w: &Tensor,
    device: Device,
) -> Result<Tensor> {
    const OP: &str = "conv2d backward (input)";
    let (g, w) = (dense_on(g, device, OP)?, dense_on(w, device, OP)?);
    let (gg, gw) = (g.read_storage(), w.read_storage());
    let (dev, gs) = buffer::<T>(&gg, OP)?;
    let (_, ws) = buffer::<T>(&gw, OP)?;
    let out = conv2d::conv2d_backward_input(dev, shape, gs, ws).map_err(kerr(OP, device))?;
    Ok(wrap_tensor(
        dev,
        out,
        Shape::from(shape.input_dims().to_vec()),
    ))
}

/// Gradient of the conv2d input on a GPU, given the output gradient and the weight.
pub fn conv2d_backward_input(shape: &Conv2dShape, g: &Tensor, w: &Tensor) -> Result<Tensor> {
    const OP: &str = "conv2d backward (input)";
    let device = cuda_device_of(g, OP)?;
    match float_dtype(g, OP)? {
        DType::F32 => conv_bwd_in::<f32>(shape, g, w, device),
        _ => conv_bwd_in::<f64>(shape, g, w, device),
    }
}

fn conv_bwd_w<T: CudaElement + CudaFloat>(
    shape: &Conv2dShape,
    x: &Tensor,
    g: &Tensor,
    with_bias: bool,
    device: Device,
) -> Result<(Tensor, Option<Tensor>)> {
    const OP: &str = "conv2d backward (weight)";
    let (x, g) = (dense_on(x, device, OP)?, dense_on(g, device, OP)?);
    let (gx, gg) = (x.read_storage(), g.read_storage());
    let (dev, xs) = buffer::<T>(&gx, OP)?;
    let (_, gs) = buffer::<T>(&gg, OP)?;
    let (gw, gb) =
        conv2d::conv2d_backward_weight(dev, shape, xs, gs, with_bias).map_err(kerr(OP, device))?;
    let gw = wrap_tensor(dev, gw, Shape::from(shape.weight_dims().to_vec()));
    let gb = gb.map(|b| wrap_tensor(dev, b, Shape::from([shape.out_channels()])));
    Ok((gw, gb))
}

/// Gradients of the conv2d weight and (with `with_bias`) bias on a GPU.
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    x: &Tensor,
    g: &Tensor,
    with_bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    const OP: &str = "conv2d backward (weight)";
    let device = cuda_device_of(g, OP)?;
    match float_dtype(g, OP)? {
        DType::F32 => conv_bwd_w::<f32>(shape, x, g, with_bias, device),
        _ => conv_bwd_w::<f64>(shape, x, g, with_bias, device),
    }
}

/// Dense copies of optional per-channel parameters.
fn opt_dense(p: Option<&Tensor>, device: Device, op: &'static str) -> Result<Option<Tensor>> {
    p.map(|p| dense_on(p, device, op)).transpose()
}

fn bn_train<T: CudaElement + CudaFloat>(
    shape: &BatchNormShape,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
    device: Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "batch_norm";
    let x = dense_on(x, device, OP)?;
    let (gamma, beta) = (opt_dense(gamma, device, OP)?, opt_dense(beta, device, OP)?);
    let gx = x.read_storage();
    let (gg, gb) = (
        gamma.as_ref().map(Tensor::read_storage),
        beta.as_ref().map(Tensor::read_storage),
    );
    let (dev, xs) = buffer::<T>(&gx, OP)?;
    let gs = gg
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let bs = gb
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let (y, mean, invstd) =
        norm::batch_norm_forward_train(dev, shape, xs, gs, bs, eps).map_err(kerr(OP, device))?;
    let c = Shape::from([shape.c()]);
    Ok((
        wrap_tensor(dev, y, x.shape().clone()),
        wrap_tensor(dev, mean, c.clone()),
        wrap_tensor(dev, invstd, c),
    ))
}

/// Batch norm with batch statistics on a GPU: output, per-channel mean and
/// `1 / sqrt(var + eps)`.
pub fn batch_norm_forward_train(
    shape: &BatchNormShape,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "batch_norm";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => bn_train::<f32>(shape, x, gamma, beta, eps, device),
        _ => bn_train::<f64>(shape, x, gamma, beta, eps, device),
    }
}

#[allow(clippy::too_many_arguments)]
fn bn_eval<T: CudaElement + CudaFloat>(
    shape: &BatchNormShape,
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
    device: Device,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "batch_norm (eval)";
    let x = dense_on(x, device, OP)?;
    let (rm, rv) = (
        dense_on(running_mean, device, OP)?,
        dense_on(running_var, device, OP)?,
    );
    let (gamma, beta) = (opt_dense(gamma, device, OP)?, opt_dense(beta, device, OP)?);
    let (gx, gm, gv) = (x.read_storage(), rm.read_storage(), rv.read_storage());
    let (gg, gb) = (
        gamma.as_ref().map(Tensor::read_storage),
        beta.as_ref().map(Tensor::read_storage),
    );
    let (dev, xs) = buffer::<T>(&gx, OP)?;
    let (_, ms) = buffer::<T>(&gm, OP)?;
    let (_, vs) = buffer::<T>(&gv, OP)?;
    let gs = gg
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let bs = gb
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let (y, invstd) = norm::batch_norm_forward_eval(dev, shape, xs, ms, vs, gs, bs, eps)
        .map_err(kerr(OP, device))?;
    Ok((
        wrap_tensor(dev, y, x.shape().clone()),
        wrap_tensor(dev, invstd, Shape::from([shape.c()])),
    ))
}

/// Batch norm with running statistics on a GPU: output and `1 / sqrt(var + eps)`.
pub fn batch_norm_forward_eval(
    shape: &BatchNormShape,
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "batch_norm (eval)";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => bn_eval::<f32>(
            shape,
            x,
            running_mean,
            running_var,
            gamma,
            beta,
            eps,
            device,
        ),
        _ => bn_eval::<f64>(
            shape,
            x,
            running_mean,
            running_var,
            gamma,
            beta,
            eps,
            device,
        ),
    }
}

/// The optional gradients of batch norm's input, gamma and beta.
pub type NormGrads = (Option<Tensor>, Option<Tensor>, Option<Tensor>);

#[allow(clippy::too_many_arguments)]
fn bn_backward<T: CudaElement + CudaFloat>(
    shape: &BatchNormShape,
    x: &Tensor,
    g: &Tensor,
    gamma: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    train: bool,
    want: (bool, bool, bool),
    device: Device,
) -> Result<NormGrads> {
    const OP: &str = "batch_norm backward";
    let (x, g) = (dense_on(x, device, OP)?, dense_on(g, device, OP)?);
    let (m, s) = (dense_on(mean, device, OP)?, dense_on(invstd, device, OP)?);
    let gamma = opt_dense(gamma, device, OP)?;
    let (lx, lg, lm, ls) = (
        x.read_storage(),
        g.read_storage(),
        m.read_storage(),
        s.read_storage(),
    );
    let lgam = gamma.as_ref().map(Tensor::read_storage);
    let (dev, xs) = buffer::<T>(&lx, OP)?;
    let (_, gs) = buffer::<T>(&lg, OP)?;
    let (_, ms) = buffer::<T>(&lm, OP)?;
    let (_, ss) = buffer::<T>(&ls, OP)?;
    let gams = lgam
        .as_ref()
        .map(|l| buffer::<T>(l, OP).map(|b| b.1))
        .transpose()?;
    let w = norm::Want {
        x: want.0,
        gamma: want.1,
        beta: want.2,
    };
    let (gx, gg, gb) = norm::batch_norm_backward(dev, shape, xs, gs, gams, ms, ss, train, w)
        .map_err(kerr(OP, device))?;
    let c = Shape::from([shape.c()]);
    Ok((
        gx.map(|v| wrap_tensor(dev, v, x.shape().clone())),
        gg.map(|v| wrap_tensor(dev, v, c.clone())),
        gb.map(|v| wrap_tensor(dev, v, c.clone())),
    ))
}

/// Batch norm backward on a GPU given the saved mean and invstd (`train`: batch
/// statistics, else running statistics); `want` selects the input, gamma and beta
/// gradients.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward(
    shape: &BatchNormShape,
    x: &Tensor,
    g: &Tensor,
    gamma: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    train: bool,
    want: (bool, bool, bool),
) -> Result<NormGrads> {
    const OP: &str = "batch_norm backward";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => bn_backward::<f32>(shape, x, g, gamma, mean, invstd, train, want, device),
        _ => bn_backward::<f64>(shape, x, g, gamma, mean, invstd, train, want, device),
    }
}

fn gn_forward<T: CudaElement + CudaFloat>(
    shape: &GroupNormShape,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
    device: Device,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "group_norm";
    let x = dense_on(x, device, OP)?;
    let (gamma, beta) = (opt_dense(gamma, device, OP)?, opt_dense(beta, device, OP)?);
    let gx = x.read_storage();
    let (gg, gb) = (
        gamma.as_ref().map(Tensor::read_storage),
        beta.as_ref().map(Tensor::read_storage),
    );
    let (dev, xs) = buffer::<T>(&gx, OP)?;
    let gs = gg
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let bs = gb
        .as_ref()
        .map(|g| buffer::<T>(g, OP).map(|b| b.1))
        .transpose()?;
    let (y, mean, invstd) =
        norm::group_norm_forward(dev, shape, xs, gs, bs, eps).map_err(kerr(OP, device))?;
    let rows = Shape::from([shape.rows()]);
    Ok((
        wrap_tensor(dev, y, x.shape().clone()),
        wrap_tensor(dev, mean, rows.clone()),
        wrap_tensor(dev, invstd, rows),
    ))
}

/// Group normalisation on a GPU: output and the mean and `1 / sqrt(var + eps)` of each
/// `(sample, group)` row (`[N * groups]`).
pub fn group_norm_forward(
    shape: &GroupNormShape,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "group_norm";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => gn_forward::<f32>(shape, x, gamma, beta, eps, device),
        _ => gn_forward::<f64>(shape, x, gamma, beta, eps, device),
    }
}

#[allow(clippy::too_many_arguments)]
fn gn_backward<T: CudaElement + CudaFloat>(
    shape: &GroupNormShape,
    x: &Tensor,
    g: &Tensor,
    gamma: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    want: (bool, bool, bool),
    device: Device,
) -> Result<NormGrads> {
    const OP: &str = "group_norm backward";
    let (x, g) = (dense_on(x, device, OP)?, dense_on(g, device, OP)?);
    let (m, s) = (dense_on(mean, device, OP)?, dense_on(invstd, device, OP)?);
    let gamma = opt_dense(gamma, device, OP)?;
    let (lx, lg, lm, ls) = (
        x.read_storage(),
        g.read_storage(),
        m.read_storage(),
        s.read_storage(),
    );
    let lgam = gamma.as_ref().map(Tensor::read_storage);
    let (dev, xs) = buffer::<T>(&lx, OP)?;
    let (_, gs) = buffer::<T>(&lg, OP)?;
    let (_, ms) = buffer::<T>(&lm, OP)?;
    let (_, ss) = buffer::<T>(&ls, OP)?;
    let gams = lgam
        .as_ref()
        .map(|l| buffer::<T>(l, OP).map(|b| b.1))
        .transpose()?;
    let w = norm::Want {
        x: want.0,
        gamma: want.1,
        beta: want.2,
    };
    let (gx, gg, gb) =
        norm::group_norm_backward(dev, shape, xs, gs, gams, ms, ss, w).map_err(kerr(OP, device))?;
    let c = Shape::from([shape.c()]);
    Ok((
        gx.map(|v| wrap_tensor(dev, v, x.shape().clone())),
        gg.map(|v| wrap_tensor(dev, v, c.clone())),
        gb.map(|v| wrap_tensor(dev, v, c.clone())),
    ))
}

/// Group normalisation backward on a GPU given the saved per-row mean and invstd;
/// `want` selects the input, gamma and beta gradients.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward(
    shape: &GroupNormShape,
    x: &Tensor,
    g: &Tensor,
    gamma: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    want: (bool, bool, bool),
) -> Result<NormGrads> {
    const OP: &str = "group_norm backward";
    let device = cuda_device_of(x, OP)?;
    match float_dtype(x, OP)? {
        DType::F32 => gn_backward::<f32>(shape, x, g, gamma, mean, invstd, want, device),
        _ => gn_backward::<f64>(shape, x, g, gamma, mean, invstd, want, device),
    }
}

fn check_targets(op: &'static str, targets: &[u32], rows: usize, cols: usize) -> Result<()> {
    if targets.len() != rows {
        return Err(TensorError::invalid(
            op,
            format!("{} targets for {rows} rows", targets.len()),
        ));
    }
    if let Some((r, &t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= cols)
    {
        return Err(TensorError::invalid(
            op,
            format!("target {t} of row {r} is out of range for {cols} classes"),
        ));
    }
    Ok(())
}

fn ce_fwd<T: CudaElement + CudaFloat>(
    logits: &Tensor,
    targets: &[u32],
    device: Device,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "cross_entropy";
    let (rows, cols) = (logits.dims()[0], logits.dims()[1]);
    let l = dense_on(logits, device, OP)?;
    let g = l.read_storage();
    let (dev, ls) = buffer::<T>(&g, OP)?;
    let e = kerr(OP, device);
    let t = dev.htod(targets).map_err(&e)?;
    let (loss, lp) = kreduce::cross_entropy_rows(dev, ls, &t, rows, cols).map_err(&e)?;
    Ok((
        wrap_tensor(dev, loss, Shape::from([rows])),
        wrap_tensor(dev, lp, Shape::from([rows, cols])),
    ))
}

/// Per-row cross-entropy losses `[N]` and log-probabilities `[N, C]` of logits
/// `[N, C]` on a GPU against class indices (checked: one per row, each below `C`).
pub fn cross_entropy_rows(logits: &Tensor, targets: &[u32]) -> Result<(Tensor, Tensor)> {
    const OP: &str = "cross_entropy";
    let device = cuda_device_of(logits, OP)?;
    if logits.rank() != 2 {
        return Err(TensorError::invalid(
            OP,
            format!("expected logits [N, C], got shape {}", logits.shape()),
        ));
    }
    check_targets(OP, targets, logits.dims()[0], logits.dims()[1])?;
    match float_dtype(logits, OP)? {
        DType::F32 => ce_fwd::<f32>(logits, targets, device),
        _ => ce_fwd::<f64>(logits, targets, device),
    }
}

fn ce_bwd<T: CudaElement + CudaFloat>(
    log_probs: &Tensor,
    targets: &[u32],
    grad_rows: &Tensor,
    device: Device,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy backward";
    let (rows, cols) = (log_probs.dims()[0], log_probs.dims()[1]);
    let (lp, gr) = (
        dense_on(log_probs, device, OP)?,
        dense_on(grad_rows, device, OP)?,
    );
    let (glp, ggr) = (lp.read_storage(), gr.read_storage());
    let (dev, lps) = buffer::<T>(&glp, OP)?;
    let (_, grs) = buffer::<T>(&ggr, OP)?;
    let e = kerr(OP, device);
    let t = dev.htod(targets).map_err(&e)?;
    let out = kreduce::cross_entropy_rows_backward(dev, lps, &t, grs, rows, cols).map_err(&e)?;
    Ok(wrap_tensor(dev, out, Shape::from([rows, cols])))
}

/// Gradient of the logits on a GPU: `grad_rows[r] * (exp(log_probs[r, j]) - [j ==
/// targets[r]])`.
pub fn cross_entropy_rows_backward(
    log_probs: &Tensor,
    targets: &[u32],
    grad_rows: &Tensor,
) -> Result<Tensor> {
    const OP: &str = "cross_entropy backward";
    let device = cuda_device_of(log_probs, OP)?;
    if log_probs.rank() != 2 || grad_rows.dims() != [log_probs.dims()[0]] {
        return Err(TensorError::invalid(
            OP,
            format!(
                "expected log-probabilities [N, C] and row gradients [N], got {} and {}",
                log_probs.shape(),
                grad_rows.shape()
            ),
        ));
    }
    check_targets(OP, targets, log_probs.dims()[0], log_probs.dims()[1])?;
    match float_dtype(log_probs, OP)? {
        DType::F32 => ce_bwd::<f32>(log_probs, targets, grad_rows, device),
        _ => ce_bwd::<f64>(log_probs, targets, grad_rows, device),
    }
}

fn stats_t<T: CudaElement + CudaFloat>(
    t: &Tensor,
    config: &StatsConfig,
    device: Device,
) -> Result<Stats> {
    const OP: &str = "stats";
    let d = dense_on(t, device, OP)?;
    let g = d.read_storage();
    let (dev, xs) = buffer::<T>(&g, OP)?;
    kernels::cuda::stats::stats(dev, xs, d.elem_count(), config).map_err(kerr(OP, device))
}

/// The fused statistics (`kernels::cpu::stats`) of every element of a float tensor on
/// a GPU, computed there: only the totals and the histogram come back to the host.
pub fn stats(t: &Tensor, config: &StatsConfig) -> Result<Stats> {
    const OP: &str = "stats";
    let device = cuda_device_of(t, OP)?;
    match float_dtype(t, OP)? {
        DType::F32 => stats_t::<f32>(t, config, device),
        _ => stats_t::<f64>(t, config, device),
    }
}

// ----- indexing (indices validated on the host by the callers) -----

/// Which indexed copy [`index_op`] runs.
pub(crate) enum IndexKind<'a> {
    /// `index_select(dim, idx)`: the result has `idx.len()` entries along `dim`.
    Select,
    /// `gather(dim, index)` with the index tensor's shape.
    Gather(&'a Shape),
    /// `index_add(dim, idx, source)` with the source view.
    Add(&'a CudaStorage, &'a Layout),
    /// `scatter_add(dim, index, src)` with the index shape and the source view (already
    /// narrowed to the index shape).
    Scatter(&'a Shape, &'a CudaStorage, &'a Layout),
}

/// The geometry of one indexed copy, owned (see `elementwise::IndexCopy`).
struct IndexPlan<'a> {
    out_shape: Shape,
    dims: Vec<usize>,
    src: &'a CudaStorage,
    src_strides: Vec<usize>,
    src_offset: usize,
    src_dim_stride: usize,
    dst_strides: Vec<usize>,
    dst_dim_stride: usize,
    idx_strides: Vec<usize>,
    index_bound: usize,
    accumulate: bool,
}

impl IndexPlan<'_> {
    fn geometry(&self) -> elementwise::IndexCopy<'_> {
        elementwise::IndexCopy {
            dims: &self.dims,
            src_strides: &self.src_strides,
            src_offset: self.src_offset,
            src_dim_stride: self.src_dim_stride,
            dst_strides: &self.dst_strides,
            dst_offset: 0,
            dst_dim_stride: self.dst_dim_stride,
            idx_strides: &self.idx_strides,
            index_bound: self.index_bound,
            accumulate: self.accumulate,
        }
    }
}

/// `index_select`, `gather`, `index_add` or `scatter_add` of a view of `s` along `dim`
/// with the validated indices `idx` (in the logical order of the index tensor).
pub(crate) fn index_op(
    s: &CudaStorage,
    l: &Layout,
    dim: usize,
    idx: &[u32],
    kind: IndexKind<'_>,
    op: &'static str,
) -> Result<Tensor> {
    let device = s.device();
    let e = kerr(op, device);
    let dev = &s.dev;
    let rank = l.dims().len();
    let one_hot: Vec<usize> = (0..rank).map(|i| usize::from(i == dim)).collect();
    let mut zeroed = l.strides().to_vec();
    zeroed[dim] = 0;
    let dense_self = l.shape().contiguous_strides();
    let mut dense_zeroed = dense_self.clone();
    dense_zeroed[dim] = 0;
    let plan = match kind {
        IndexKind::Select => {
            let mut dims = l.dims().to_vec();
            dims[dim] = idx.len();
            let out_shape = Shape::from(dims.clone());
            IndexPlan {
                dst_strides: out_shape.contiguous_strides(),
                out_shape,
                dims,
                src: s,
                src_strides: zeroed,
                src_offset: l.offset(),
                src_dim_stride: l.strides()[dim],
                dst_dim_stride: 0,
                idx_strides: one_hot,
                index_bound: l.dims()[dim],
                accumulate: false,
            }
        }
        IndexKind::Gather(shape) => IndexPlan {
            out_shape: shape.clone(),
            dims: shape.dims().to_vec(),
            src: s,
            src_strides: zeroed,
            src_offset: l.offset(),
            src_dim_stride: l.strides()[dim],
            dst_strides: shape.contiguous_strides(),
            dst_dim_stride: 0,
            idx_strides: shape.contiguous_strides(),
            index_bound: l.dims()[dim],
            accumulate: false,
        },
        IndexKind::Add(src, sl) => IndexPlan {
            out_shape: l.shape().clone(),
            dims: sl.dims().to_vec(),
            src,
            src_strides: sl.strides().to_vec(),
            src_offset: sl.offset(),
            src_dim_stride: 0,
            dst_strides: dense_zeroed,
            dst_dim_stride: dense_self[dim],
            idx_strides: one_hot,
            index_bound: l.dims()[dim],
            accumulate: true,
        },
        IndexKind::Scatter(shape, src, sl) => IndexPlan {
            out_shape: l.shape().clone(),
            dims: shape.dims().to_vec(),
            src,
            src_strides: sl.strides().to_vec(),
            src_offset: sl.offset(),
            src_dim_stride: 0,
            dst_strides: dense_zeroed,
            dst_dim_stride: dense_self[dim],
            idx_strides: shape.contiguous_strides(),
            index_bound: l.dims()[dim],
            accumulate: true,
        },
    };
    same_device(op, s, plan.src)?;
    let ibuf = dev.htod(idx).map_err(&e)?;
    fn run<T: CudaElement>(
        s: &CudaStorage,
        l: &Layout,
        ibuf: &CudaSlice<u32>,
        plan: &IndexPlan<'_>,
        op: &'static str,
    ) -> Result<std::result::Result<CudaData, KernelError>> {
        let dev = &s.dev;
        let from = typed::<T>(plan.src, op)?;
        // Accumulating ops start from a dense copy of `self`; the others from zeros
        // that the copy overwrites entirely.
        let out = if plan.accumulate {
            elementwise::copy(dev, typed::<T>(s, op)?, view(l))
        } else {
            dev.zeros::<T>(plan.out_shape.elem_count())
        };
        Ok(out.and_then(|mut out| {
            elementwise::index_copy(dev, from, &mut out, ibuf, plan.geometry())?;
            Ok(T::wrap(out))
        }))
    }
    let data = match (s.dtype(), plan.accumulate) {
        (DType::F32, _) => run::<f32>(s, l, &ibuf, &plan, op)?,
        (DType::F64, _) => run::<f64>(s, l, &ibuf, &plan, op)?,
        (DType::U32, false) => run::<u32>(s, l, &ibuf, &plan, op)?,
        (DType::U32, true) => {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: DType::U32,
            })
        }
    }
    .map_err(e)?;
    Ok(Tensor::from_cuda_storage(
        CudaStorage {
            dev: Arc::clone(dev),
            data,
        },
        plan.out_shape,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dims: &[usize], strides: &[usize], offset: usize) -> Layout {
        Layout::new(Shape::from(dims.to_vec()), strides.to_vec(), offset).unwrap()
    }

    #[test]
    fn gemm_reads_packed_and_transposed_matrices_in_place() {
        // Row-major and its transpose.
        assert_eq!(gemm_view(&layout(&[3, 4], &[4, 1], 0)), Some((false, 0)));
        assert_eq!(gemm_view(&layout(&[4, 3], &[1, 4], 0)), Some((true, 0)));
        // A contiguous batch, and a broadcast one.
        assert_eq!(
            gemm_view(&layout(&[2, 5, 3, 4], &[60, 12, 4, 1], 7)),
            Some((false, 12))
        );
        assert_eq!(
            gemm_view(&layout(&[2, 5, 3, 4], &[0, 0, 4, 1], 0)),
            Some((false, 0))
        );
        // Size-1 dims do not constrain strides.
        assert_eq!(gemm_view(&layout(&[1, 4], &[99, 1], 0)), Some((false, 0)));
        assert_eq!(
            gemm_view(&layout(&[2, 1, 3, 4], &[12, 5, 4, 1], 0)),
            Some((false, 12))
        );
        // Strided rows, a half-broadcast batch, and overlapping matrices need a copy.
        assert_eq!(gemm_view(&layout(&[3, 4], &[8, 1], 0)), None);
        assert_eq!(gemm_view(&layout(&[3, 2, 3, 4], &[12, 0, 4, 1], 0)), None);
        assert_eq!(gemm_view(&layout(&[2, 3, 4], &[4, 4, 1], 0)), None);
        // A matrix broadcast along its rows is not packed either.
        assert_eq!(gemm_view(&layout(&[3, 4], &[0, 1], 0)), None);
    }
}
