//! Batch and group normalisation over dense `[N, C, S]` buffers (batch norm with batch
//! or running statistics; forward and backward) and the per-channel sum. One block per
//! channel (batch norm) or per `(sample, group)` row (group norm); statistics and
//! backward sums accumulate in f64, the variance in two passes.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::{elems_cfg, kname, rows_cfg, source, CudaDevice, CudaFloat, CudaResultExt};
use crate::cpu::norm::{BatchNormShape, GroupNormShape};
use crate::error::{KernelError, Result};

const SRC: super::device::Source = source!("norm", "src/norm.cu");

fn check(op: &'static str, what: &'static str, len: usize, needed: usize) -> Result<()> {
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

fn check_eps(op: &'static str, eps: f64) -> Result<()> {
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(KernelError::InvalidArgument {
            op,
            detail: format!("eps must be finite and >= 0, got {eps}"),
        });
    }
    Ok(())
}

/// The optional per-channel parameter as (buffer, present flag); a one-element dummy
/// stands in for a missing one (the kernel never reads it).
fn param<'a, T: CudaFloat>(
    op: &'static str,
    what: &'static str,
    p: Option<&'a CudaSlice<T>>,
    c: usize,
    dummy: &'a CudaSlice<T>,
) -> Result<(&'a CudaSlice<T>, u32)> {
    match p {
        Some(p) => {
            check(op, what, p.len(), c)?;
            Ok((p, 1))
        }
        None => Ok((dummy, 0)),
    }
}

/// Sum over `N` and `S` of each channel of a dense `[N, C, S]` buffer (`[C]`).
pub fn channel_sum<T: CudaFloat>(
    dev: &CudaDevice,
    x: &CudaSlice<T>,
    (n, c, s): (usize, usize, usize),
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda channel_sum";
    check(OP, "input", x.len(), n * c * s)?;
    if n * s == 0 || c == 0 {
        return dev.zeros(c);
    }
    let mut out = dev.alloc::<T>(c)?;
    let f = dev.function(SRC, &kname::<T>("channel_sum"))?;
    let (n64, c64, s64) = (n as u64, c as u64, s as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64).arg(&c64).arg(&s64).arg(x).arg(&mut out);
    // SAFETY: sizes checked above and the argument list matches the kernel's signature.
    unsafe { l.launch(rows_cfg(c)) }.op(OP)?;
    Ok(out)
}

/// Training-mode forward: returns the output, the per-channel batch mean and
/// `invstd = 1 / sqrt(var + eps)` (biased variance).
pub fn batch_norm_forward_train<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &BatchNormShape,
    x: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    beta: Option<&CudaSlice<T>>,
    eps: f64,
) -> Result<(CudaSlice<T>, CudaSlice<T>, CudaSlice<T>)> {
    const OP: &str = "cuda batch_norm_forward_train";
    check_eps(OP, eps)?;
    let (n, c, s) = (shape.n(), shape.c(), shape.s());
    check(OP, "x", x.len(), shape.len())?;
    let dummy = dev.zeros::<T>(1)?;
    let (g, hg) = param(OP, "gamma", gamma, c, &dummy)?;
    let (b, hb) = param(OP, "beta", beta, c, &dummy)?;
    let mut y = dev.alloc::<T>(shape.len())?;
    let mut mean = dev.alloc::<T>(c)?;
    let mut invstd = dev.alloc::<T>(c)?;
    let f = dev.function(SRC, &kname::<T>("bn_forward_train"))?;
    let (n64, c64, s64) = (n as u64, c as u64, s as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&c64)
        .arg(&s64)
        .arg(x)
        .arg(g)
        .arg(b)
        .arg(&hg)
        .arg(&hb)
        .arg(&eps)
        .arg(&mut y)
        .arg(&mut mean)
        .arg(&mut invstd);
    // SAFETY: sizes checked above (the shape has no zero size) and the argument list
    // matches the kernel's signature.
    unsafe { l.launch(rows_cfg(c)) }.op(OP)?;
    Ok((y, mean, invstd))
}

/// Evaluation-mode forward with running statistics: returns the output and
/// `invstd = 1 / sqrt(running_var + eps)`.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward_eval<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &BatchNormShape,
    x: &CudaSlice<T>,
    running_mean: &CudaSlice<T>,
    running_var: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    beta: Option<&CudaSlice<T>>,
    eps: f64,
) -> Result<(CudaSlice<T>, CudaSlice<T>)> {
    const OP: &str = "cuda batch_norm_forward_eval";
    check_eps(OP, eps)?;
    let (c, s) = (shape.c(), shape.s());
    check(OP, "x", x.len(), shape.len())?;
    check(OP, "running_mean", running_mean.len(), c)?;
    check(OP, "running_var", running_var.len(), c)?;
    let dummy = dev.zeros::<T>(1)?;
    let (g, hg) = param(OP, "gamma", gamma, c, &dummy)?;
    let (b, hb) = param(OP, "beta", beta, c, &dummy)?;
    let mut invstd = dev.alloc::<T>(c)?;
    let c64 = c as u64;
    let f = dev.function(SRC, &kname::<T>("bn_eval_invstd"))?;
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&c64).arg(running_var).arg(&eps).arg(&mut invstd);
    // SAFETY: both buffers hold C elements and the argument list matches the kernel.
    unsafe { l.launch(elems_cfg(c)) }.op(OP)?;
    let total = shape.len();
    let mut y = dev.alloc::<T>(total)?;
    let (t64, s64) = (total as u64, s as u64);
    let f = dev.function(SRC, &kname::<T>("bn_forward_eval"))?;
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&t64)
        .arg(&c64)
        .arg(&s64)
        .arg(x)
        .arg(running_mean)
        .arg(&invstd)
        .arg(g)
        .arg(b)
        .arg(&hg)
        .arg(&hb)
        .arg(&mut y);
    // SAFETY: sizes checked above and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(total)) }.op(OP)?;
    Ok((y, invstd))
}

/// Which gradients [`batch_norm_backward`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Want {
    /// The input gradient.
    pub x: bool,
    /// The gamma gradient.
    pub gamma: bool,
    /// The beta gradient.
    pub beta: bool,
}

/// The optional gradients of input, gamma and beta.
pub type NormGradients<T> = (
    Option<CudaSlice<T>>,
    Option<CudaSlice<T>>,
    Option<CudaSlice<T>>,
);

/// Backward of batch norm given the saved `mean` and `invstd`: with `train` the
/// statistics depend on the input (training mode), otherwise they are constants
/// (evaluation mode).
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &BatchNormShape,
    x: &CudaSlice<T>,
    grad_out: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    mean: &CudaSlice<T>,
    invstd: &CudaSlice<T>,
    train: bool,
    want: Want,
) -> Result<NormGradients<T>> {
    const OP: &str = "cuda batch_norm_backward";
    let (n, c, s) = (shape.n(), shape.c(), shape.s());
    check(OP, "x", x.len(), shape.len())?;
    check(OP, "grad_out", grad_out.len(), shape.len())?;
    check(OP, "mean", mean.len(), c)?;
    check(OP, "invstd", invstd.len(), c)?;
    let dummy = dev.zeros::<T>(1)?;
    let (g, hg) = param(OP, "gamma", gamma, c, &dummy)?;
    let mut gx = dev.alloc::<T>(if want.x { shape.len() } else { 1 })?;
    let mut gg = dev.alloc::<T>(if want.gamma { c } else { 1 })?;
    let mut gb = dev.alloc::<T>(if want.beta { c } else { 1 })?;
    let f = dev.function(SRC, &kname::<T>("bn_backward"))?;
    let (n64, c64, s64) = (n as u64, c as u64, s as u64);
    let flags = [train, want.x, want.gamma, want.beta].map(u32::from);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&c64)
        .arg(&s64)
        .arg(x)
        .arg(grad_out)
        .arg(g)
        .arg(&hg)
        .arg(mean)
        .arg(invstd)
        .arg(&flags[0])
        .arg(&mut gx)
        .arg(&mut gg)
        .arg(&mut gb)
        .arg(&flags[1])
        .arg(&flags[2])
        .arg(&flags[3]);
    // SAFETY: sizes checked above; each output is written only when requested, in which
    // case it has its full size; the argument list matches the kernel's signature.
    unsafe { l.launch(rows_cfg(c)) }.op(OP)?;
    Ok((
        want.x.then_some(gx),
        want.gamma.then_some(gg),
        want.beta.then_some(gb),
    ))
}

/// Group normalisation forward over a dense `[N, C, S]` buffer: returns the output and
/// the mean and `invstd = 1 / sqrt(var + eps)` of each `(sample, group)` row (`N *
/// groups` values, biased variance).
pub fn group_norm_forward<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &GroupNormShape,
    x: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    beta: Option<&CudaSlice<T>>,
    eps: f64,
) -> Result<(CudaSlice<T>, CudaSlice<T>, CudaSlice<T>)> {
    const OP: &str = "cuda group_norm_forward";
    check_eps(OP, eps)?;
    check(OP, "x", x.len(), shape.len())?;
    let dummy = dev.zeros::<T>(1)?;
    let (g, hg) = param(OP, "gamma", gamma, shape.c(), &dummy)?;
    let (b, hb) = param(OP, "beta", beta, shape.c(), &dummy)?;
    let rows = shape.rows();
    let mut y = dev.alloc::<T>(shape.len())?;
    let mut mean = dev.alloc::<T>(rows)?;
    let mut invstd = dev.alloc::<T>(rows)?;
    let f = dev.function(SRC, &kname::<T>("gn_forward"))?;
    let dims = [rows, shape.row_len(), shape.groups(), shape.s()].map(|v| v as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&dims[0])
        .arg(&dims[1])
        .arg(&dims[2])
        .arg(&dims[3])
        .arg(x)
        .arg(g)
        .arg(b)
        .arg(&hg)
        .arg(&hb)
        .arg(&eps)
        .arg(&mut y)
        .arg(&mut mean)
        .arg(&mut invstd);
    // SAFETY: sizes checked above (the shape has no zero size) and the argument list
    // matches the kernel's signature.
    unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
    Ok((y, mean, invstd))
}

/// Group normalisation backward given the saved per-row `mean` and `invstd`.
#[allow(clippy::too_many_arguments)]
pub fn group_norm_backward<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &GroupNormShape,
    x: &CudaSlice<T>,
    grad_out: &CudaSlice<T>,
    gamma: Option<&CudaSlice<T>>,
    mean: &CudaSlice<T>,
    invstd: &CudaSlice<T>,
    want: Want,
) -> Result<NormGradients<T>> {
    const OP: &str = "cuda group_norm_backward";
    let (n, c, s, groups, rows) = (
        shape.n(),
        shape.c(),
        shape.s(),
        shape.groups(),
        shape.rows(),
    );
    check(OP, "x", x.len(), shape.len())?;
    check(OP, "grad_out", grad_out.len(), shape.len())?;
    check(OP, "mean", mean.len(), rows)?;
    check(OP, "invstd", invstd.len(), rows)?;
    let dummy = dev.zeros::<T>(1)?;
    let (g, hg) = param(OP, "gamma", gamma, c, &dummy)?;
    let gx = if want.x {
        let mut gx = dev.alloc::<T>(shape.len())?;
        let f = dev.function(SRC, &kname::<T>("gn_backward_x"))?;
        let dims = [rows, shape.row_len(), groups, s].map(|v| v as u64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&dims[0])
            .arg(&dims[1])
            .arg(&dims[2])
            .arg(&dims[3])
            .arg(x)
            .arg(grad_out)
            .arg(g)
            .arg(&hg)
            .arg(mean)
            .arg(invstd)
            .arg(&mut gx);
        // SAFETY: sizes checked above and the argument list matches the kernel.
        unsafe { l.launch(rows_cfg(rows)) }.op(OP)?;
        Some(gx)
    } else {
        None
    };
    let (gg, gb) = if want.gamma || want.beta {
        let mut gg = dev.alloc::<T>(if want.gamma { c } else { 1 })?;
        let mut gb = dev.alloc::<T>(if want.beta { c } else { 1 })?;
        let f = dev.function(SRC, &kname::<T>("gn_backward_params"))?;
        let dims = [n, c, s, groups].map(|v| v as u64);
        let flags = [want.gamma, want.beta].map(u32::from);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&dims[0])
            .arg(&dims[1])
            .arg(&dims[2])
            .arg(&dims[3])
            .arg(x)
            .arg(grad_out)
            .arg(mean)
            .arg(invstd)
            .arg(&mut gg)
            .arg(&mut gb)
            .arg(&flags[0])
            .arg(&flags[1]);
        // SAFETY: sizes checked above; each output is written only when requested, in
        // which case it holds C elements; the argument list matches the kernel.
        unsafe { l.launch(rows_cfg(c)) }.op(OP)?;
        (want.gamma.then_some(gg), want.beta.then_some(gb))
    } else {
        (None, None)
    };
    Ok((gx, gg, gb))
}
