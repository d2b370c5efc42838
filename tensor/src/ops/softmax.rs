//! Numerically stable softmax and log-softmax along one dim.

use crate::cpu::alloc_buf;
use crate::dtype::FloatElement;
use crate::error::{Result, TensorError};
use crate::shape::Shape;
use crate::storage::{CpuStorage, Storage};
use crate::Tensor;

/// Softmax (or log-softmax) of each contiguous row of `row_len` elements of `x`, by
/// the SIMD row kernels: the row maximum is subtracted before `exp`, so large inputs
/// do not overflow, and the normaliser is accumulated in f64. The output, of `shape`,
/// is allocated for `op`.
fn softmax_rows<T: FloatElement>(
    (op, shape): (&'static str, &Shape),
    x: &[T],
    row_len: usize,
    log: bool,
) -> Result<Vec<T>> {
    let mut out = alloc_buf::zeros(op, shape)?;
    if row_len == 0 || x.is_empty() {
        return Ok(out);
    }
    let rows = x.len() / row_len;
    if log {
        T::k_log_softmax_rows(x, rows, row_len, &mut out)?;
    } else {
        T::k_softmax_rows(x, rows, row_len, &mut out)?;
    }
    Ok(out)
}

impl Tensor {
    /// `exp(x) / sum(exp(x))` along `dim`, computed stably (max subtracted first).
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1000.0f32, 1000.0, 0.0, 0.0], [2, 2], &Device::Cpu).unwrap();
    /// assert_eq!(t.softmax(1).unwrap().to_vec::<f32>().unwrap(), vec![0.5; 4]);
    /// let cols = t.softmax(0).unwrap().to_vec::<f32>().unwrap();
    /// assert_eq!(cols, vec![1.0, 1.0, 0.0, 0.0]);
    /// ```
    pub fn softmax(&self, dim: usize) -> Result<Tensor> {
        self.softmax_impl(dim, false, "softmax")
    }

    /// `x - log(sum(exp(x)))` along `dim`, computed stably (log-sum-exp).
    pub fn log_softmax(&self, dim: usize) -> Result<Tensor> {
        self.softmax_impl(dim, true, "log_softmax")
    }

    fn softmax_impl(&self, dim: usize, log: bool, op: &'static str) -> Result<Tensor> {
        self.shape().check_dim(dim, op)?;
        if !self.dtype.is_float() {
            return Err(TensorError::UnsupportedDType {
                op,
                dtype: self.dtype,
            });
        }
        let last = self.rank() - 1;
        // Work on rows: move `dim` last and make it contiguous, then move it back.
        let rows = if dim == last {
            self.contiguous_for(op)?
        } else {
            self.transpose(dim, last)?.contiguous_for(op)?
        };
        let row_len = rows.dims()[last];
        let guard = rows.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => {
                let (off, n) = (rows.layout.offset(), rows.elem_count());
                let out = (op, rows.shape());
                match cpu {
                    CpuStorage::F32(v) => {
                        CpuStorage::F32(softmax_rows(out, &v[off..off + n], row_len, log)?)
                    }
                    CpuStorage::F64(v) => {
                        CpuStorage::F64(softmax_rows(out, &v[off..off + n], row_len, log)?)
                    }
                    CpuStorage::U32(_) => {
                        return Err(TensorError::UnsupportedDType {
                            op,
                            dtype: self.dtype,
                        })
                    }
                }
            }
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                let result = crate::cuda::softmax_rows(s, &rows.layout, log, op)?;
                return if dim == last {
                    Ok(result)
                } else {
                    result.transpose(dim, last)?.contiguous()
                };
            }
        };
        let result = Tensor::from_cpu_storage(out, rows.shape().clone());
        if dim == last {
            Ok(result)
        } else {
            result.transpose(dim, last)?.contiguous_for(op)
        }
    }
}
