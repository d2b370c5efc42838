//! Batch and group normalisation through the kernels crate's fused kernels.
//!
//! Inputs are viewed as `(N, C, S)` with `S` the product of the dims after the
//! channel dim (`S = 1` for `[N, C]`). Batch norm normalises each channel over `N * S`
//! values; group norm normalises each `(sample, group of channels)` and serves
//! LayerNorm (one group) and InstanceNorm (one group per channel).

use kernels::cpu::norm::{
    batch_norm_backward, batch_norm_backward_eval, batch_norm_eval_invstd, batch_norm_forward_eval,
    batch_norm_forward_train, group_norm_backward, group_norm_forward, Affine, BatchNormShape,
    GroupNormShape, NormGrads, NormScalar, NormStats, NormStatsMut, RunningStats,
};
use tensor::{DType, Device, Element, Tensor};

use super::slices::{read1, read2};
use crate::error::{AutogradError, Result};
use crate::op::Op;
use crate::var::Var;

/// Which normalisation an [`Op::Norm`] recorded, with its geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// Batch statistics (training mode).
    BatchTrain(BatchNormShape),
    /// Running statistics (evaluation mode): the statistics are constants.
    BatchEval(BatchNormShape),
    /// Per-(sample, group) statistics.
    Group(GroupNormShape),
}

/// The statistics a batch-norm training pass used, per channel: mean and
/// `1 / sqrt(var + eps)` with the biased batch variance.
#[derive(Clone, Debug)]
pub struct BatchStats {
    /// Per-channel batch mean `[C]`.
    pub mean: Tensor,
    /// Per-channel `1 / sqrt(var + eps)` `[C]`.
    pub invstd: Tensor,
}

fn ncs(op: &'static str, x: &Tensor) -> Result<(usize, usize, usize)> {
    if x.rank() < 2 || !x.dtype().is_float() {
        return Err(AutogradError::InvalidArgument {
            op,
            detail: format!(
                "expected a float input [N, C, ...] of rank >= 2, got {} of shape {}",
                x.dtype(),
                x.shape()
            ),
        });
    }
    let d = x.dims();
    Ok((d[0], d[1], d[2..].iter().product()))
}

fn check_affine(
    op: &'static str,
    x: &Tensor,
    channels: usize,
    p: Option<&Var>,
    what: &str,
) -> Result<()> {
    if let Some(p) = p {
        if p.dims() != [channels] || p.dtype() != x.dtype() {
            return Err(AutogradError::InvalidArgument {
                op,
                detail: format!(
                    "{what} must be {} of shape [{channels}], got {} of shape {}",
                    x.dtype(),
                    p.dtype(),
                    p.shape()
                ),
            });
        }
    }
    Ok(())
}

fn tensor_of<T: Element>(v: Vec<T>, dims: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(v, dims.to_vec(), &Device::Cpu)?)
}

/// Reads optional gamma/beta and runs `f` with them as an [`Affine`].
fn with_affine<T: Element, R>(
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    f: impl FnOnce(Affine<'_, T>) -> Result<R>,
) -> Result<R> {
    match (gamma, beta) {
        (Some(g), Some(b)) => read2::<T, R>(g, b, |g, b| {
            f(Affine {
                gamma: Some(g),
                beta: Some(b),
            })
        }),
        (Some(g), None) => read1::<T, R>(g, |g| {
            f(Affine {
                gamma: Some(g),
                beta: None,
            })
        }),
        (None, Some(b)) => read1::<T, R>(b, |b| {
            f(Affine {
                gamma: None,
                beta: Some(b),
            })
        }),
        (None, None) => f(Affine::identity()),
    }
}

fn opt_read<T: Element, R>(
    t: Option<&Tensor>,
    f: impl FnOnce(Option<&[T]>) -> Result<R>,
) -> Result<R> {
    match t {
        Some(t) => read1::<T, R>(t, |s| f(Some(s))),
        None => f(None),
    }
}

/// The normalisations whose forward computes (and saves) statistics of the input.
#[derive(Clone, Copy)]
enum StatsShape {
    Batch(BatchNormShape),
    Group(GroupNormShape),
}

fn train_forward<T: NormScalar + Element>(
    kind: StatsShape,
    x: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return match kind {
            StatsShape::Batch(s) => Ok(tensor::cuda::batch_norm_forward_train(
                &s, x, gamma, beta, eps,
            )?),
            StatsShape::Group(s) => Ok(tensor::cuda::group_norm_forward(&s, x, gamma, beta, eps)?),
        };
    }
    let groups = match kind {
        StatsShape::Batch(s) => s.c(),
        StatsShape::Group(s) => s.rows(),
    };
    let mut out = tensor::pool::try_buffer::<T>("norm", x.shape())?;
    let (mut mean, mut invstd) = (
        vec![<T as Element>::ZERO; groups],
        vec![<T as Element>::ZERO; groups],
    );
    read1::<T, ()>(x, |xs| {
        with_affine::<T, ()>(gamma, beta, |affine| {
            let save = NormStatsMut {
                mean: &mut mean,
                invstd: &mut invstd,
            };
            match kind {
                StatsShape::Batch(s) => {
                    batch_norm_forward_train(&s, xs, affine, eps, &mut out, save)?
                }
                StatsShape::Group(s) => group_norm_forward(&s, xs, affine, eps, &mut out, save)?,
            }
            Ok(())
        })
    })?;
    Ok((
        tensor_of(out, x.dims())?,
        tensor_of(mean, &[groups])?,
        tensor_of(invstd, &[groups])?,
    ))
}

fn eval_forward<T: NormScalar + Element>(
    shape: BatchNormShape,
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    gamma: Option<&Tensor>,
    beta: Option<&Tensor>,
    eps: f64,
) -> Result<(Tensor, Tensor)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return Ok(tensor::cuda::batch_norm_forward_eval(
            &shape,
            x,
            running_mean,
            running_var,
            gamma,
            beta,
            eps,
        )?);
    }
    let mut out = tensor::pool::try_buffer::<T>("batch_norm_eval", x.shape())?;
    let mut invstd = vec![<T as Element>::ZERO; shape.c()];
    read2::<T, ()>(running_mean, running_var, |rm, rv| {
        batch_norm_eval_invstd(rv, eps, &mut invstd)?;
        read1::<T, ()>(x, |xs| {
            with_affine::<T, ()>(gamma, beta, |affine| {
                Ok(batch_norm_forward_eval(
                    &shape,
                    xs,
                    RunningStats { mean: rm, var: rv },
                    affine,
                    eps,
                    &mut out,
                )?)
            })
        })
    })?;
    Ok((tensor_of(out, x.dims())?, tensor_of(invstd, &[shape.c()])?))
}

/// Gradients of input, gamma and beta (each only if requested).
#[allow(clippy::too_many_arguments)]
fn backward<T: NormScalar + Element>(
    kind: NormKind,
    x: &Tensor,
    g: &Tensor,
    gamma: Option<&Tensor>,
    mean: &Tensor,
    invstd: &Tensor,
    want: (bool, bool, bool),
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        let (sh, train) = match kind {
            NormKind::BatchTrain(sh) => (sh, true),
            NormKind::BatchEval(sh) => (sh, false),
            NormKind::Group(sh) => {
                return Ok(tensor::cuda::group_norm_backward(
                    &sh, x, g, gamma, mean, invstd, want,
                )?)
            }
        };
        return Ok(tensor::cuda::batch_norm_backward(
            &sh, x, g, gamma, mean, invstd, train, want,
        )?);
    }
    let channels = x.dims()[1];
    let mut gx = match want.0 {
        true => Some(tensor::pool::try_buffer::<T>("norm_backward", x.shape())?),
        false => None,
    };
    let mut gg = want.1.then(|| vec![<T as Element>::ZERO; channels]);
    let mut gb = want.2.then(|| vec![<T as Element>::ZERO; channels]);
    read2::<T, ()>(x, g, |xs, gs| {
        read2::<T, ()>(mean, invstd, |m, s| {
            opt_read::<T, ()>(gamma, |gamma| {
                let saved = NormStats { mean: m, invstd: s };
                let grads = NormGrads {
                    x: gx.as_deref_mut(),
                    gamma: gg.as_deref_mut(),
                    beta: gb.as_deref_mut(),
                };
                match kind {
                    NormKind::BatchTrain(sh) => {
                        batch_norm_backward(&sh, xs, gs, gamma, saved, grads)?
                    }
                    NormKind::BatchEval(sh) => {
                        batch_norm_backward_eval(&sh, xs, gs, gamma, saved, grads)?
                    }
                    NormKind::Group(sh) => group_norm_backward(&sh, xs, gs, gamma, saved, grads)?,
                }
                Ok(())
            })
        })
    })?;
    Ok((
        gx.map(|v| tensor_of(v, x.dims())).transpose()?,
        gg.map(|v| tensor_of(v, &[channels])).transpose()?,
        gb.map(|v| tensor_of(v, &[channels])).transpose()?,
    ))
}

/// Backward of [`Op::Norm`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn norm_backward(
    kind: NormKind,
    input: &Var,
    gamma: Option<&Var>,
    beta: Option<&Var>,
    mean: &Tensor,
    invstd: &Tensor,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let want = (
        input.requires_grad(),
        gamma.is_some_and(Var::requires_grad),
        beta.is_some_and(Var::requires_grad),
    );
    let gamma_t = gamma.map(Var::tensor);
    match input.dtype() {
        DType::F32 => backward::<f32>(kind, input.tensor(), g, gamma_t, mean, invstd, want),
        _ => backward::<f64>(kind, input.tensor(), g, gamma_t, mean, invstd, want),
    }
}

fn record(
    kind: NormKind,
    input: &Var,
    gamma: Option<&Var>,
    beta: Option<&Var>,
    out: Tensor,
    mean: Tensor,
    invstd: Tensor,
) -> Var {
    Var::from_op(
        out,
        Op::Norm {
            kind,
            input: input.clone(),
            gamma: gamma.cloned(),
            beta: beta.cloned(),
            mean,
            invstd,
        },
    )
}

impl Var {
    /// Batch normalisation with batch statistics (training mode) over `[N, C, ...]`:
    /// each channel is normalised over the batch and spatial positions, then scaled by
    /// `gamma` and shifted by `beta` (both `[C]`, optional). Returns the output and the
    /// statistics used, from which a layer updates its running statistics.
    pub fn batch_norm_train(
        &self,
        gamma: Option<&Var>,
        beta: Option<&Var>,
        eps: f64,
    ) -> Result<(Var, BatchStats)> {
        const OP: &str = "batch_norm";
        let (n, c, s) = ncs(OP, self.tensor())?;
        check_affine(OP, self.tensor(), c, gamma, "gamma")?;
        check_affine(OP, self.tensor(), c, beta, "beta")?;
        let shape = BatchNormShape::new(n, c, s)?;
        let (g, b) = (gamma.map(Var::tensor), beta.map(Var::tensor));
        let (out, mean, invstd) = match self.dtype() {
            DType::F32 => train_forward::<f32>(StatsShape::Batch(shape), self.tensor(), g, b, eps)?,
            _ => train_forward::<f64>(StatsShape::Batch(shape), self.tensor(), g, b, eps)?,
        };
        let stats = BatchStats {
            mean: mean.clone(),
            invstd: invstd.clone(),
        };
        Ok((
            record(
                NormKind::BatchTrain(shape),
                self,
                gamma,
                beta,
                out,
                mean,
                invstd,
            ),
            stats,
        ))
    }

    /// Batch normalisation with given running statistics (evaluation mode): a fixed
    /// per-channel affine map of the input; `running_mean`/`running_var` are `[C]`.
    pub fn batch_norm_eval(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        gamma: Option<&Var>,
        beta: Option<&Var>,
        eps: f64,
    ) -> Result<Var> {
        const OP: &str = "batch_norm (eval)";
        let (n, c, s) = ncs(OP, self.tensor())?;
        check_affine(OP, self.tensor(), c, gamma, "gamma")?;
        check_affine(OP, self.tensor(), c, beta, "beta")?;
        for (what, t) in [("running_mean", running_mean), ("running_var", running_var)] {
            if t.dims() != [c] || t.dtype() != self.dtype() {
                return Err(AutogradError::InvalidArgument {
                    op: OP,
                    detail: format!(
                        "{what} must be {} of shape [{c}], got {} of shape {}",
                        self.dtype(),
                        t.dtype(),
                        t.shape()
                    ),
                });
            }
        }
        let shape = BatchNormShape::new(n, c, s)?;
        let (g, b) = (gamma.map(Var::tensor), beta.map(Var::tensor));
        let (out, invstd) = match self.dtype() {
            DType::F32 => {
                eval_forward::<f32>(shape, self.tensor(), running_mean, running_var, g, b, eps)?
            }
            _ => eval_forward::<f64>(shape, self.tensor(), running_mean, running_var, g, b, eps)?,
        };
        Ok(record(
            NormKind::BatchEval(shape),
            self,
            gamma,
            beta,
            out,
            running_mean.clone(),
            invstd,
        ))
    }

    /// Group normalisation over `[N, C, ...]`: channels split into `groups` groups of
    /// consecutive channels, each `(sample, group)` normalised over its channels and
    /// positions, then a per-channel affine map (`gamma`, `beta`: `[C]`, optional).
    /// `groups = 1` is a LayerNorm over everything but the batch dim; `groups = C` is
    /// an InstanceNorm.
    pub fn group_norm(
        &self,
        groups: usize,
        gamma: Option<&Var>,
        beta: Option<&Var>,
        eps: f64,
    ) -> Result<Var> {
        const OP: &str = "group_norm";
        let (n, c, s) = ncs(OP, self.tensor())?;
        check_affine(OP, self.tensor(), c, gamma, "gamma")?;
        check_affine(OP, self.tensor(), c, beta, "beta")?;
        let shape = GroupNormShape::new(n, c, s, groups)?;
        let (g, b) = (gamma.map(Var::tensor), beta.map(Var::tensor));
        let (out, mean, invstd) = match self.dtype() {
            DType::F32 => train_forward::<f32>(StatsShape::Group(shape), self.tensor(), g, b, eps)?,
            _ => train_forward::<f64>(StatsShape::Group(shape), self.tensor(), g, b, eps)?,
        };
        Ok(record(
            NormKind::Group(shape),
            self,
            gamma,
            beta,
            out,
            mean,
            invstd,
        ))
    }
}
