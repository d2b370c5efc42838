//! Row kernels over dense `[rows, k]` buffers: sum / mean / variance / max / min,
//! arg-max / arg-min, softmax / log-softmax and cross-entropy forward and backward.
//! Callers bring the reduced dims last (a strided copy) and pass `rows` and `k`.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::{
    elems_cfg, kname, rows_cfg, source, CudaDevice, CudaElem, CudaFloat, CudaResultExt,
};
use crate::error::{KernelError, Result};

const SRC: super::device::Source = source!("reduce", "src/reduce.cu");

/// Which row reduction to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    /// Sum (accumulated in f64).
    Sum,
    /// Mean (accumulated in f64).
    Mean,
    /// Variance around the row mean, divided by `k - ddof` (two passes in f64).
    Var {
        /// Subtracted from the count (1 for Bessel's correction).
        ddof: usize,
    },
    /// NaN-propagating maximum (any element type).
    Max,
    /// NaN-propagating minimum (any element type).
    Min,
}

fn check_rows(
    op: &'static str,
    what: &'static str,
    len: usize,
    rows: usize,
    k: usize,
) -> Result<()> {
    let needed = rows
        .checked_mul(k)
        .ok_or_else(|| KernelError::InvalidArgument {
            op,
            detail: format!("{rows} rows of {k} overflow usize"),
        })?;
    if len < needed {
        return Err(KernelError::SliceTooShort {
            op,
            what,
            needed,
            got: len,
        });
    }
    Ok(())
}

fn need_nonempty_rows(op: &'static str, k: usize) -> Result<()> {
    if k == 0 {
        return Err(KernelError::InvalidArgument {
            op,
            detail: "rows must have at least one element".into(),
        });
    }
    Ok(())
}

/// One value per row of a dense `[rows, k]` buffer. Sum, mean and variance need a
/// float `T`; `k` must be at least 1 except for `Sum` (whose empty rows give 0).
pub fn reduce_rows<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    rows: usize,
    k: usize,
    red: Reduction,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda reduce_rows";
    check_rows(OP, "input", src.len(), rows, k)?;
    if k == 0 {
        if red == Reduction::Sum {
            return dev.zeros(rows);
        }
        need_nonempty_rows(OP, k)?;
    }
    let mut out = dev.alloc::<T>(rows)?;
    if rows == 0 {
        return Ok(out);
    }
    let (code, ddof): (u32, u64) = match red {
        Reduction::Sum => (0, 0),
        Reduction::Mean => (1, 0),
        Reduction::Var { ddof } => (2, ddof as u64),
        Reduction::Max => (3, 0),
        Reduction::Min => (4, 0),
    };
    let f = dev.function(SRC, &kname::<T>("reduce_rows"))?;
    let (r64, k64) = (rows as u64, k as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64)
        .arg(&k64)
        .arg(src)
        .arg(&mut out)
        .arg(&code)
        .arg(&ddof);
    // SAFETY: the input holds rows * k elements, the output `rows`, and the argument
    // list matches the kernel's signature.
    unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
    Ok(out)
}

/// Index of the first maximum (`max`) or minimum of each row (a NaN wins), as `u32`.
pub fn argreduce_rows<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    rows: usize,
    k: usize,
    max: bool,
) -> Result<CudaSlice<u32>> {
    const OP: &str = "cuda argreduce_rows";
    check_rows(OP, "input", src.len(), rows, k)?;
    need_nonempty_rows(OP, k)?;
    let mut out = dev.alloc::<u32>(rows)?;
    if rows == 0 {
        return Ok(out);
    }
    let f = dev.function(SRC, &kname::<T>("argreduce_rows"))?;
    let (r64, k64, m) = (rows as u64, k as u64, u32::from(max));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64).arg(&k64).arg(src).arg(&mut out).arg(&m);
    // SAFETY: the input holds rows * k elements, the output `rows`, and the argument
    // list matches the kernel's signature.
    unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
    Ok(out)
}

/// Softmax (or log-softmax with `log`) of each row, max-subtracted.
pub fn softmax_rows<T: CudaFloat>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    rows: usize,
    k: usize,
    log: bool,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda softmax_rows";
    check_rows(OP, "input", src.len(), rows, k)?;
    let mut out = dev.alloc::<T>(rows * k)?;
    if rows == 0 || k == 0 {
        return Ok(out);
    }
    let f = dev.function(SRC, &kname::<T>("softmax_rows"))?;
    let (r64, k64, lg) = (rows as u64, k as u64, u32::from(log));
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64).arg(&k64).arg(src).arg(&mut out).arg(&lg);
    // SAFETY: input and output hold rows * k elements and the argument list matches
    // the kernel's signature.
    unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
    Ok(out)
}

/// Per-row cross-entropy losses `[rows]` and log-probabilities `[rows, k]` of dense
/// logits against class indices on the device, which the caller has validated
/// (`< k`; the kernel reads `logits[r, targets[r]]`).
pub fn cross_entropy_rows<T: CudaFloat>(
    dev: &CudaDevice,
    logits: &CudaSlice<T>,
    targets: &CudaSlice<u32>,
    rows: usize,
    k: usize,
) -> Result<(CudaSlice<T>, CudaSlice<T>)> {
    const OP: &str = "cuda cross_entropy_rows";
    check_rows(OP, "logits", logits.len(), rows, k)?;
    check_rows(OP, "targets", targets.len(), rows, 1)?;
    need_nonempty_rows(OP, k)?;
    let mut loss = dev.alloc::<T>(rows)?;
    let mut lp = dev.alloc::<T>(rows * k)?;
    if rows == 0 {
        return Ok((loss, lp));
    }
    let f = dev.function(SRC, &kname::<T>("cross_entropy_rows"))?;
    let (r64, k64) = (rows as u64, k as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64)
        .arg(&k64)
        .arg(logits)
        .arg(targets)
        .arg(&mut loss)
        .arg(&mut lp);
    // SAFETY: sizes checked above, targets validated by the caller, and the argument
    // list matches the kernel's signature.
    unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
    Ok((loss, lp))
}

/// Gradient of the logits: `grad_loss[r] * (exp(log_probs[r, j]) - [j == targets[r]])`.
pub fn cross_entropy_rows_backward<T: CudaFloat>(
    dev: &CudaDevice,
    log_probs: &CudaSlice<T>,
    targets: &CudaSlice<u32>,
    grad_loss: &CudaSlice<T>,
    rows: usize,
    k: usize,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda cross_entropy_rows_backward";
    check_rows(OP, "log_probs", log_probs.len(), rows, k)?;
    check_rows(OP, "targets", targets.len(), rows, 1)?;
    check_rows(OP, "grad_loss", grad_loss.len(), rows, 1)?;
    let mut out = dev.alloc::<T>(rows * k)?;
    if rows * k == 0 {
        return Ok(out);
    }
    let f = dev.function(SRC, &kname::<T>("cross_entropy_backward"))?;
    let (r64, k64) = (rows as u64, k as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&r64)
        .arg(&k64)
        .arg(log_probs)
        .arg(targets)
        .arg(grad_loss)
        .arg(&mut out);
    // SAFETY: sizes checked above and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(rows * k)) }.op(OP)?;
    Ok(out)
}
