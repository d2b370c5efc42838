//! Batched matrix products through cuBLAS (`sgemm` / `dgemm` strided-batched).
//!
//! Operands are row-major matrices, possibly stored transposed. cuBLAS is column-major,
//! so row-major `C = A B` is computed as `Cᵀ = Bᵀ Aᵀ`: a row-major buffer read
//! column-major is already its transpose, so no data moves.

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{GemmConfig, StridedBatchedConfig};
use cudarc::driver::CudaSlice;

use super::device::{CudaDevice, CudaFloat};
use crate::error::{KernelError, Result};

/// One operand of [`gemm`]: a row-major `rows x cols` matrix per batch entry, stored
/// either as is (`transposed == false`, leading dimension `cols`) or as the row-major
/// `cols x rows` matrix of its transpose (leading dimension `rows`).
#[derive(Clone, Copy, Debug)]
pub struct Operand<'a, T> {
    /// The buffer.
    pub buf: &'a CudaSlice<T>,
    /// Offset of the first batch entry, in elements.
    pub offset: usize,
    /// Whether the buffer holds the transpose.
    pub transposed: bool,
    /// Elements between batch entries (0 broadcasts one matrix to every entry).
    pub batch_stride: usize,
}

fn to_i32(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| KernelError::InvalidArgument {
        op,
        detail: format!("{what} = {v} exceeds cuBLAS's 32-bit sizes"),
    })
}

fn check_len(
    op: &'static str,
    what: &'static str,
    len: usize,
    offset: usize,
    batch: usize,
    stride: usize,
    size: usize,
) -> Result<()> {
    let needed = if batch == 0 || size == 0 {
        0
    } else {
        (batch - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(offset))
            .and_then(|x| x.checked_add(size))
            .unwrap_or(usize::MAX)
    };
    if needed > len {
        return Err(KernelError::SliceTooShort {
            op,
            what,
            needed,
            got: len,
        });
    }
    Ok(())
}

/// The output of [`gemm`]: dense row-major `m x n` matrices at `offset + i *
/// batch_stride` (`batch_stride >= m * n`).
#[derive(Debug)]
pub struct Output<'a, T> {
    /// The buffer.
    pub buf: &'a mut CudaSlice<T>,
    /// Offset of the first batch entry, in elements.
    pub offset: usize,
    /// Elements between batch entries.
    pub batch_stride: usize,
}

/// `C[i] = A[i] B[i] + beta C[i]` for `i < batch`, with `A[i]` `m x k` and `B[i]`
/// `k x n`.
pub fn gemm<T: CudaFloat>(
    dev: &CudaDevice,
    batch: usize,
    (m, n, k): (usize, usize, usize),
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: f64,
    c: Output<'_, T>,
) -> Result<()> {
    const OP: &str = "cuda gemm";
    check_len(OP, "A", a.buf.len(), a.offset, batch, a.batch_stride, m * k)?;
    check_len(OP, "B", b.buf.len(), b.offset, batch, b.batch_stride, k * n)?;
    check_len(OP, "C", c.buf.len(), c.offset, batch, c.batch_stride, m * n)?;
    if batch > 1 && c.batch_stride < m * n {
        return Err(KernelError::InvalidArgument {
            op: OP,
            detail: format!(
                "output batch stride {} is below m * n = {}: entries would overlap",
                c.batch_stride,
                m * n
            ),
        });
    }
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    let (stride_c, c_offset, c) = (c.batch_stride, c.offset, c.buf);
    let cfg = StridedBatchedConfig {
        gemm: GemmConfig {
            // Column-major Cᵀ (n x m) = Bᵀ (n x k) · Aᵀ (k x m).
            transa: if b.transposed {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            },
            transb: if a.transposed {
                cublasOperation_t::CUBLAS_OP_T
            } else {
                cublasOperation_t::CUBLAS_OP_N
            },
            m: to_i32(OP, "n", n)?,
            n: to_i32(OP, "m", m)?,
            k: to_i32(OP, "k", k.max(1))?,
            alpha: T::from_f64(if k == 0 { 0.0 } else { 1.0 }),
            lda: to_i32(OP, "ldb", if b.transposed { k.max(1) } else { n })?,
            ldb: to_i32(OP, "lda", if a.transposed { m } else { k.max(1) })?,
            beta: T::from_f64(beta),
            ldc: to_i32(OP, "n", n)?,
        },
        batch_size: to_i32(OP, "batch", batch)?,
        stride_a: b.batch_stride as i64,
        stride_b: a.batch_stride as i64,
        stride_c: stride_c as i64,
    };
    if k == 0 {
        // C = beta C: alpha is 0 and cuBLAS does not read A or B, but it still needs
        // valid pointers and k >= 1 with leading dimensions >= 1.
        let a_view = a.buf.slice(..);
        let b_view = b.buf.slice(..);
        let mut c_view = c.slice_mut(c_offset..);
        // SAFETY: with alpha = 0 cuBLAS only scales C, whose extent was checked.
        return unsafe { T::blas_gemm(dev.blas(), cfg, &b_view, &a_view, &mut c_view) };
    }
    let a_view = a.buf.slice(a.offset..);
    let b_view = b.buf.slice(b.offset..);
    let mut c_view = c.slice_mut(c_offset..);
    // SAFETY: the extents of A, B and C for every batch entry were checked above and
    // the leading dimensions match the stored layouts.
    unsafe { T::blas_gemm(dev.blas(), cfg, &b_view, &a_view, &mut c_view) }
}
