//! Fast paths through the kernels crate for the hottest backward rules: activation
//! derivatives in one pass instead of three, and cross-entropy rows. Each returns
//! `None` when its preconditions (float dtype, equal shapes) do not hold, and the
//! caller falls back to the composite rule, which computes the same values.

use kernels::cpu::elementwise::{
    leaky_relu_backward, relu_backward, sigmoid_backward, tanh_backward, Float,
};
use kernels::cpu::reduce::{cross_entropy_rows, cross_entropy_rows_backward};
use tensor::{DType, Device, Element, Tensor};

use super::slices::{read1, read2};
use crate::error::Result;
use crate::op::UnaryKind;

/// The fused derivative for `kind` from the saved tensor `a` it reads (the input `x`
/// or the output `y`) and the output gradient `g`, of one shape; `None` if `kind` has
/// no fused kernel.
fn activation<T: Float + Element>(
    kind: UnaryKind,
    a: &Tensor,
    g: &Tensor,
) -> Result<Option<Tensor>> {
    let mut out = tensor::pool::try_buffer::<T>("activation_backward", g.shape())?;
    let done = match kind {
        UnaryKind::Relu => {
            read2::<T, ()>(a, g, |x, g| Ok(relu_backward(x, g, &mut out)?)).map(|_| true)
        }
        UnaryKind::LeakyRelu(slope) | UnaryKind::ShiftedLeakyRelu { slope, .. } => {
            read2::<T, ()>(a, g, |x, g| {
                Ok(leaky_relu_backward(
                    x,
                    g,
                    <T as Element>::from_f64(slope),
                    &mut out,
                )?)
            })
            .map(|_| true)
        }
        UnaryKind::Tanh => {
            read2::<T, ()>(a, g, |y, g| Ok(tanh_backward(y, g, &mut out)?)).map(|_| true)
        }
        UnaryKind::Sigmoid => {
            read2::<T, ()>(a, g, |y, g| Ok(sigmoid_backward(y, g, &mut out)?)).map(|_| true)
        }
        _ => Ok(false),
    }?;
    if !done {
        return Ok(None);
    }
    Ok(Some(Tensor::from_vec(
        out,
        g.dims().to_vec(),
        &Device::Cpu,
    )?))
}

/// [`activation`], keeping a dense permuted layout of `g` (e.g. an image batch stored
/// batch-minor) when `a` shares it: the kernel runs on both permuted to
/// contiguous views, with no copy, and the result is permuted back to `g`'s strides.
/// Otherwise `read2` makes dense row-major copies as needed.
fn activation_in_order<T: Float + Element>(
    kind: UnaryKind,
    a: &Tensor,
    g: &Tensor,
) -> Result<Option<Tensor>> {
    let perm = match g.dense_permutation() {
        Some(perm) if !g.is_contiguous() => perm,
        _ => return activation::<T>(kind, a, g),
    };
    let (a_p, g_p) = (a.permute(&perm)?, g.permute(&perm)?);
    if !a_p.is_contiguous() || !g_p.is_contiguous() {
        return activation::<T>(kind, a, g);
    }
    let Some(out) = activation::<T>(kind, &a_p, &g_p)? else {
        return Ok(None);
    };
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    Ok(Some(out.permute(&inverse)?))
}

/// The fused derivative of an activation, if one exists for `kind` and the operands
/// have one shape and float dtype.
pub(crate) fn activation_backward(
    kind: UnaryKind,
    x: &Tensor,
    y: &Tensor,
    g: &Tensor,
) -> Result<Option<Tensor>> {
    // On a GPU the composite rule runs as tensor ops there.
    #[cfg(feature = "cuda")]
    if g.device().is_cuda() {
        return Ok(None);
    }
    if x.shape() != g.shape()
        || y.shape() != g.shape()
        || x.dtype() != g.dtype()
        || y.dtype() != g.dtype()
    {
        return Ok(None);
    }
    // The derivative reads the input or the output, never both.
    let a = match kind {
        UnaryKind::Relu | UnaryKind::LeakyRelu(_) | UnaryKind::ShiftedLeakyRelu { .. } => x,
        UnaryKind::Tanh | UnaryKind::Sigmoid => y,
        _ => return Ok(None),
    };
    match g.dtype() {
        DType::F32 => activation_in_order::<f32>(kind, a, g),
        DType::F64 => activation_in_order::<f64>(kind, a, g),
        DType::U32 => Ok(None),
    }
}

fn ce_forward<T: Float + Element>(logits: &Tensor, targets: &[u32]) -> Result<(Tensor, Tensor)> {
    let (rows, cols) = (logits.dims()[0], logits.dims()[1]);
    let mut loss = vec![<T as Element>::ZERO; rows];
    let mut log_probs = tensor::pool::try_buffer::<T>("cross_entropy", logits.shape())?;
    read1::<T, ()>(logits, |l| {
        Ok(cross_entropy_rows(
            l,
            targets,
            rows,
            cols,
            &mut loss,
            &mut log_probs,
        )?)
    })?;
    Ok((
        Tensor::from_vec(loss, [rows], &Device::Cpu)?,
        Tensor::from_vec(log_probs, [rows, cols], &Device::Cpu)?,
    ))
}

/// Per-row cross-entropy losses `[N]` and the log-probabilities `[N, C]` of logits
/// `[N, C]` (float) against validated class indices.
pub(crate) fn cross_entropy_forward(logits: &Tensor, targets: &[u32]) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if logits.device().is_cuda() {
        return Ok(tensor::cuda::cross_entropy_rows(logits, targets)?);
    }
    match logits.dtype() {
        DType::F32 => ce_forward::<f32>(logits, targets),
        _ => ce_forward::<f64>(logits, targets),
    }
}

fn ce_backward<T: Float + Element>(
    log_probs: &Tensor,
    targets: &[u32],
    grad_rows: &Tensor,
) -> Result<Tensor> {
    let (rows, cols) = (log_probs.dims()[0], log_probs.dims()[1]);
    let mut out = tensor::pool::try_buffer::<T>("cross_entropy_backward", log_probs.shape())?;
    read2::<T, ()>(log_probs, grad_rows, |lp, gr| {
        Ok(cross_entropy_rows_backward(
            lp, targets, gr, rows, cols, &mut out,
        )?)
    })?;
    Ok(Tensor::from_vec(out, [rows, cols], &Device::Cpu)?)
}

/// Gradient of the logits given the per-row loss gradients `[N]`.
pub(crate) fn cross_entropy_backward(
    log_probs: &Tensor,
    targets: &Tensor,
    grad_rows: &Tensor,
) -> Result<Tensor> {
    let targets = targets.to_vec::<u32>()?;
    #[cfg(feature = "cuda")]
    if log_probs.device().is_cuda() {
        return Ok(tensor::cuda::cross_entropy_rows_backward(
            log_probs, &targets, grad_rows,
        )?);
    }
    match log_probs.dtype() {
        DType::F32 => ce_backward::<f32>(log_probs, &targets, grad_rows),
        _ => ce_backward::<f64>(log_probs, &targets, grad_rows),
    }
}
