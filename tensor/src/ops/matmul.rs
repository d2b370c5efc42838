//! Matrix multiplication with `torch.matmul` semantics, on the strided gemm kernels.
//!
//! Operands are handed to `kernels::cpu::gemm` as strided matrix views built straight
//! from their layouts, so a transposed or narrowed operand is not copied as long as one
//! of its last two dims has unit stride. Batch dims broadcast; when the right operand is
//! shared by the whole batch and the left one's batch and row dims collapse into one
//! stride (a `Linear` layer on `[batch, seq, features]`), the batch folds into a single
//! tall gemm; otherwise the products go to the batched gemm kernel.

use kernels::cpu::gemm::{dgemm, dgemm_batched, sgemm, sgemm_batched, MatMut, MatRef};

use crate::cpu::{alloc_buf, map};
use crate::dtype::FloatElement;
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::{CpuStorage, ReadSet, Storage};
use crate::strided::Runs;
use crate::Tensor;

/// The float types with gemm kernels: `C = A * B` for one product or a batch.
trait GemmFloat: FloatElement {
    fn gemm(a: MatRef<'_, Self>, b: MatRef<'_, Self>, c: MatMut<'_, Self>) -> kernels::Result<()>;
    fn gemm_batched(
        a: &[MatRef<'_, Self>],
        b: &[MatRef<'_, Self>],
        c: &mut [MatMut<'_, Self>],
    ) -> kernels::Result<()>;
}

impl GemmFloat for f32 {
    fn gemm(a: MatRef<'_, f32>, b: MatRef<'_, f32>, c: MatMut<'_, f32>) -> kernels::Result<()> {
        sgemm(1.0, a, b, 0.0, c)
    }
    fn gemm_batched(
        a: &[MatRef<'_, f32>],
        b: &[MatRef<'_, f32>],
        c: &mut [MatMut<'_, f32>],
    ) -> kernels::Result<()> {
        sgemm_batched(1.0, a, b, 0.0, c)
    }
}

impl GemmFloat for f64 {
    fn gemm(a: MatRef<'_, f64>, b: MatRef<'_, f64>, c: MatMut<'_, f64>) -> kernels::Result<()> {
        dgemm(1.0, a, b, 0.0, c)
    }
    fn gemm_batched(
        a: &[MatRef<'_, f64>],
        b: &[MatRef<'_, f64>],
        c: &mut [MatMut<'_, f64>],
    ) -> kernels::Result<()> {
        dgemm_batched(1.0, a, b, 0.0, c)
    }
}

/// Sizes of one batched product: `[batch..] x (m x k) @ (k x n)`.
struct MatmulDims {
    batch: Vec<usize>,
    m: usize,
    k: usize,
    n: usize,
}

impl Tensor {
    /// Matrix product with `torch.matmul` semantics:
    /// - 1-D · 1-D: dot product (rank 0);
    /// - 2-D · 2-D: matrix product;
    /// - a 1-D operand is promoted to a matrix (a row on the left, a column on the
    ///   right) and that dim is removed from the result;
    /// - N-D: batched over the leading dims, which broadcast.
    ///
    /// Float dtypes only; shapes whose inner dims disagree give `ShapeMismatch`.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let a = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::Cpu).unwrap().reshape([2, 3]).unwrap();
    /// let b = Tensor::ones([4, 3, 5], DType::F32, &Device::Cpu).unwrap();
    /// let c = a.matmul(&b).unwrap(); // a broadcasts over the batch of 4
    /// assert_eq!(c.dims(), &[4, 2, 5]);
    /// // A transposed operand is used in place (no copy).
    /// let g = a.matmul(&a.t().unwrap()).unwrap();
    /// assert_eq!(g.to_vec::<f32>().unwrap(), vec![5.0, 14.0, 14.0, 50.0]);
    /// assert_eq!(
    ///     a.matmul(&a).unwrap_err().to_string(),
    ///     "matmul: shape mismatch between [2, 3] and [2, 3]"
    /// );
    /// ```
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        const OP: &str = "matmul";
        if self.device != rhs.device {
            return Err(TensorError::DeviceMismatch {
                op: OP,
                lhs: self.device,
                rhs: rhs.device,
            });
        }
        if self.dtype != rhs.dtype {
            return Err(TensorError::DTypeMismatch {
                op: OP,
                lhs: self.dtype,
                rhs: rhs.dtype,
            });
        }
        if !self.dtype.is_float() {
            return Err(TensorError::UnsupportedDType {
                op: OP,
                dtype: self.dtype,
            });
        }
        if self.rank() == 0 || rhs.rank() == 0 {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "both operands need at least one dimension, got shapes {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        let mismatch = || TensorError::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
        };
        // Promote 1-D operands to matrices.
        let pa = if self.rank() == 1 {
            self.layout.unsqueeze(0)?
        } else {
            self.layout.clone()
        };
        let pb = if rhs.rank() == 1 {
            rhs.layout.unsqueeze(1)?
        } else {
            rhs.layout.clone()
        };
        let (ra, rb) = (pa.dims().len(), pb.dims().len());
        let (m, k) = (pa.dims()[ra - 2], pa.dims()[ra - 1]);
        let (k2, n) = (pb.dims()[rb - 2], pb.dims()[rb - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let batch = Shape::broadcast(
            &Shape::from(&pa.dims()[..ra - 2]),
            &Shape::from(&pb.dims()[..rb - 2]),
            OP,
        )
        .map_err(|_| TensorError::Broadcast {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
        })?;
        let dims = MatmulDims {
            batch: batch.into_dims(),
            m,
            k,
            n,
        };
        let mut out_dims = dims.batch.clone();
        if self.rank() > 1 {
            out_dims.push(m);
        }
        if rhs.rank() > 1 {
            out_dims.push(n);
        }

        let out_shape = Shape::from(out_dims);
        let reads = ReadSet::new(&[self, rhs]);
        let out = match (reads.get(0), reads.get(1)) {
            (Storage::Cpu(a), Storage::Cpu(b)) => match (a, b) {
                (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                    CpuStorage::F32(matmul_cpu((a, &pa), (b, &pb), &dims, &out_shape)?)
                }
                (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                    CpuStorage::F64(matmul_cpu((a, &pa), (b, &pb), &dims, &out_shape)?)
                }
                _ => {
                    return Err(TensorError::UnsupportedDType {
                        op: OP,
                        dtype: self.dtype,
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            (Storage::Cuda(s), _) | (_, Storage::Cuda(s)) => match *s {},
            #[cfg(feature = "cuda")]
            (Storage::Cuda(a), Storage::Cuda(b)) => {
                return crate::cuda::matmul(
                    (a, &pa),
                    (b, &pb),
                    &dims.batch,
                    (m, k, n),
                    out_shape.into_dims(),
                )
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(_), _) | (_, Storage::Cuda(_)) => {
                return Err(TensorError::DeviceMismatch {
                    op: OP,
                    lhs: self.device,
                    rhs: rhs.device,
                })
            }
        };
        Ok(Tensor::from_cpu_storage(out, out_shape))
    }
}

/// Whether gemm can read the matrix formed by the last two dims in place: it packs
/// efficiently when one of the two strides is 1 (or the dim is trivially short).
fn gemm_readable(l: &Layout) -> bool {
    let r = l.dims().len();
    let (rows, cols) = (l.dims()[r - 2], l.dims()[r - 1]);
    let (rs, cs) = (l.strides()[r - 2], l.strides()[r - 1]);
    cs == 1 || rs == 1 || rows <= 1 || cols <= 1
}

/// The batched product on the CPU, into a fresh output of `out_shape`; `pa`/`pb` are
/// the (promoted, unbroadcast) operand layouts.
fn matmul_cpu<T: GemmFloat>(
    (a, pa): (&[T], &Layout),
    (b, pb): (&[T], &Layout),
    d: &MatmulDims,
    out_shape: &Shape,
) -> Result<Vec<T>> {
    const OP: &str = "matmul";
    let MatmulDims { m, k, n, .. } = *d;
    let mut out = alloc_buf::buffer(OP, out_shape)?;
    if out.is_empty() || k == 0 {
        // `buffer` may hand out a reused buffer: an empty inner dim sums nothing.
        out.fill(T::ZERO);
        return Ok(out);
    }
    // The output is not empty, so the batch dims, m and n are all nonzero.
    let batch_count: usize = d.batch.iter().product();
    // Copy an operand only if neither of its matrix strides is 1.
    let a_owned;
    let (a, pa) = if gemm_readable(pa) {
        (a, pa.clone())
    } else {
        a_owned = map::gather(OP, a, pa)?;
        (a_owned.as_slice(), Layout::contiguous(pa.shape().clone()))
    };
    let b_owned;
    let (b, pb) = if gemm_readable(pb) {
        (b, pb.clone())
    } else {
        b_owned = map::gather(OP, b, pb)?;
        (b_owned.as_slice(), Layout::contiguous(pb.shape().clone()))
    };
    let mut a_full = d.batch.clone();
    a_full.extend([m, k]);
    let mut b_full = d.batch.clone();
    b_full.extend([k, n]);
    let la = pa.broadcast_as(&Shape::from(a_full), OP)?;
    let lb = pb.broadcast_as(&Shape::from(b_full), OP)?;
    let nb = d.batch.len();
    let (a_rs, a_cs) = (la.strides()[nb], la.strides()[nb + 1]);
    let (b_rs, b_cs) = (lb.strides()[nb], lb.strides()[nb + 1]);

    // One tall gemm when B is shared by the batch and A's batch and row dims collapse.
    if batch_count > 1 && lb.strides()[..nb].iter().all(|&s| s == 0) {
        let runs = Runs::new(&la.dims()[..=nb], [&la.strides()[..=nb]], [la.offset()]);
        if runs.run_count() == 1 {
            let [row_stride] = runs.inner_strides();
            let rows = batch_count * m;
            let am = MatRef::new(&a[la.offset()..], rows, k, row_stride, a_cs)?;
            let bm = MatRef::new(&b[lb.offset()..], k, n, b_rs, b_cs)?;
            T::gemm(am, bm, MatMut::row_major(&mut out, rows, n)?)?;
            return Ok(out);
        }
    }

    // Per-batch storage offsets of A and B, in batch order.
    let mut offsets: Vec<(usize, usize)> =
        alloc_buf::scratch(OP, out_shape, T::DTYPE, batch_count)?;
    let runs = Runs::new(
        &d.batch,
        [&la.strides()[..nb], &lb.strides()[..nb]],
        [la.offset(), lb.offset()],
    );
    let len = runs.inner_len();
    let [sa, sb] = runs.inner_strides();
    runs.for_each(|[oa, ob]| offsets.extend((0..len).map(|i| (oa + i * sa, ob + i * sb))));

    // The batched kernel deals small products out to threads whole and splits large
    // ones, so batches of any size use the machine.
    let mut a_views = alloc_buf::scratch(OP, out_shape, T::DTYPE, batch_count)?;
    let mut b_views = alloc_buf::scratch(OP, out_shape, T::DTYPE, batch_count)?;
    for &(oa, ob) in &offsets {
        a_views.push(MatRef::new(&a[oa..], m, k, a_rs, a_cs)?);
        b_views.push(MatRef::new(&b[ob..], k, n, b_rs, b_cs)?);
    }
    let mut c_views = alloc_buf::scratch(OP, out_shape, T::DTYPE, batch_count)?;
    for c in out.chunks_mut(m * n) {
        c_views.push(MatMut::row_major(c, m, n)?);
    }
    T::gemm_batched(&a_views, &b_views, &mut c_views)?;
    drop(c_views);
    Ok(out)
}
