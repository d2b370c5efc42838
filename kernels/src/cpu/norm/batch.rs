//! Batch normalisation over `(N, C, S)`: per-channel statistics over `N * S` values.

use rayon::prelude::*;

use super::simd::{acc_sums_pos, grad_input_pos, grad_sums_pos, normalize_pos, Prims, Runs};
use super::{
    check_eps, check_len, check_opt, mean_invstd, Affine, NormGrads, NormScalar, NormStats,
    NormStatsMut, RunningStats, RunningStatsMut,
};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::error::{KernelError, Result};

/// The `(N, C, S)` view a batch norm works on: `N` samples, `C` channels, `S` positions
/// per channel (`H * W` for BatchNorm2d, 1 for BatchNorm1d), dense row-major.
///
/// ```
/// use kernels::cpu::norm::BatchNormShape;
/// let s = BatchNormShape::new(64, 16, 7 * 7).unwrap();
/// assert_eq!((s.len(), s.count()), (64 * 16 * 49, 64 * 49));
/// assert!(BatchNormShape::new(0, 16, 49).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchNormShape {
    n: usize,
    c: usize,
    s: usize,
}

impl BatchNormShape {
    /// Validates the sizes: all at least 1 (statistics over an empty set are undefined)
    /// and `N * C * S` must fit in `usize`.
    pub fn new(n: usize, c: usize, s: usize) -> Result<Self> {
        if n == 0 || c == 0 || s == 0 {
            return Err(KernelError::InvalidArgument {
                op: "batch_norm",
                detail: format!("(N, C, S) = ({n}, {c}, {s}) has a zero size"),
            });
        }
        if n.checked_mul(c).and_then(|v| v.checked_mul(s)).is_none() {
            return Err(KernelError::InvalidArgument {
                op: "batch_norm",
                detail: format!("(N, C, S) = ({n}, {c}, {s}) overflows usize"),
            });
        }
        Ok(Self { n, c, s })
    }

    /// Samples `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Channels `C`.
    pub fn c(&self) -> usize {
        self.c
    }

    /// Positions per channel and sample `S`.
    pub fn s(&self) -> usize {
        self.s
    }

    /// Elements of the input: `N * C * S`.
    pub fn len(&self) -> usize {
        self.n * self.c * self.s
    }

    /// Always false: a valid shape has no zero size (provided for `len`'s sake).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Values each channel's statistics are computed over: `N * S`.
    pub fn count(&self) -> usize {
        self.n * self.s
    }
}

/// Runs at least this long are processed one channel at a time with the SIMD run loops;
/// shorter ones in blocks of channels with per-position loops, which avoid a call per
/// run (measured on the lesson's shapes: per-position wins for `S` = 49 by 2x and for
/// 196 slightly; the run loops win for 784).
const RUN_MIN: usize = 256;

/// How the channels are split into parallel units.
#[derive(Clone, Copy)]
struct Plan {
    /// Channels per unit (the last unit may have fewer).
    cb: usize,
    /// Whether units use the per-position loops (`S < RUN_MIN`).
    positions: bool,
}

impl Plan {
    fn new(shape: &BatchNormShape) -> Self {
        let (n, c, s) = (shape.n, shape.c, shape.s);
        if s >= RUN_MIN {
            return Self {
                cb: 1,
                positions: false,
            };
        }
        // About 256 positions per segment, enough units to balance the threads, and a
        // unit's data small enough (~1 MiB of f32) to stay in L2 between its two passes.
        let by_vector = 256usize.div_ceil(s);
        let by_balance = c.div_ceil(2 * rayon::current_num_threads());
        let by_cache = ((1usize << 18) / (n * s)).max(1);
        Self {
            cb: by_vector.min(by_balance).min(by_cache).clamp(1, c),
            positions: true,
        }
    }

    fn units(&self, shape: &BatchNormShape) -> usize {
        shape.c.div_ceil(self.cb)
    }

    /// Channels `[c0, c0 + len)` of unit `u`.
    fn channels(&self, shape: &BatchNormShape, u: usize) -> (usize, usize) {
        let c0 = u * self.cb;
        (c0, self.cb.min(shape.c - c0))
    }
}

/// Unit `u`'s segment of sample `i`: channels `[c0, c0 + len)`, contiguous in NCS.
fn segment<'a, T>(x: &'a [T], shape: &BatchNormShape, plan: &Plan, u: usize, i: usize) -> &'a [T] {
    let (c0, len) = plan.channels(shape, u);
    &x[(i * shape.c + c0) * shape.s..][..len * shape.s]
}

/// Channel `c`'s values: `N` runs of `S`.
fn channel_runs(shape: &BatchNormShape, c: usize) -> Runs {
    Runs {
        first: c * shape.s,
        len: shape.s,
        stride: shape.c * shape.s,
        count: shape.n,
    }
}

/// Splits `data` into per-unit lists of mutable segments (one per sample), so that units
/// can write their channels in parallel without aliasing.
fn segments_mut<'a, T>(
    data: &'a mut [T],
    shape: &BatchNormShape,
    plan: &Plan,
) -> Vec<Vec<&'a mut [T]>> {
    let mut units: Vec<Vec<&mut [T]>> = (0..plan.units(shape))
        .map(|_| Vec::with_capacity(shape.n))
        .collect();
    for sample in data.chunks_exact_mut(shape.c * shape.s) {
        for (u, seg) in sample.chunks_mut(plan.cb * shape.s).enumerate() {
            units[u].push(seg);
        }
    }
    units
}

/// Per-position copies of per-channel values: `S` copies of each.
fn per_position<T: Copy>(per_channel: impl Iterator<Item = T>, s: usize) -> Vec<T> {
    per_channel
        .flat_map(|v| std::iter::repeat_n(v, s))
        .collect()
}

/// Sums of `S` consecutive positions: per-channel totals of per-position accumulators.
fn fold_positions(v: &[f64], s: usize) -> impl Iterator<Item = f64> + '_ {
    v.chunks_exact(s).map(|c| c.iter().sum())
}

/// Per-position copies of per-channel `[mean, a, b, c]` input-gradient coefficients,
/// as four arrays (structure of arrays: plain vector loads in the position loop, which
/// halved the backward pass of the lesson CNN's first BatchNorm against an array of
/// `[T; 4]`).
struct PositionCoefs<T> {
    parts: [Vec<T>; 4],
}

impl<T: Copy> PositionCoefs<T> {
    fn new(per_channel: &[[T; 4]], s: usize) -> Self {
        let part = |j: usize| per_position(per_channel.iter().map(|c| c[j]), s);
        Self {
            parts: [part(0), part(1), part(2), part(3)],
        }
    }

    fn slices(&self) -> [&[T]; 4] {
        let [m, a, b, c] = &self.parts;
        [m, a, b, c]
    }
}

fn value<T: Prims>(v: Option<&[T]>, c: usize, default: T) -> T {
    v.map_or(default, |v| v[c])
}

/// Training-mode batch norm forward at the default SIMD level: per-channel batch mean
/// and biased variance over `N * S` values, `out = (x - mean) / sqrt(var + eps) * gamma
/// + beta`, and the statistics saved for [`batch_norm_backward`].
///
/// `x` and `out` hold `N * C * S` values; `affine` and the two `save` slices `C` each.
/// Errors if a length disagrees with `shape` or `eps` is negative or not finite. With a
/// single value per channel (`N * S == 1`) the variance is 0 and `eps` alone sets the
/// scale, so the output is `beta`.
///
/// ```
/// use kernels::cpu::norm::{batch_norm_forward_train, Affine, BatchNormShape, NormStatsMut};
/// let shape = BatchNormShape::new(4, 1, 1).unwrap(); // BatchNorm1d over 4 samples
/// let (mut y, mut m, mut is) = ([0.0f64; 4], [0.0], [0.0]);
/// let affine = Affine::new(&[2.0], &[1.0]);
/// let save = NormStatsMut { mean: &mut m, invstd: &mut is };
/// batch_norm_forward_train(&shape, &[1.0, 2.0, 3.0, 4.0], affine, 0.0, &mut y, save).unwrap();
/// assert_eq!(m, [2.5]);
/// assert!((y[3] - (1.0 + 2.0 * 1.5 / 1.25f64.sqrt())).abs() < 1e-12);
/// ```
pub fn batch_norm_forward_train<T: NormScalar>(
    shape: &BatchNormShape,
    x: &[T],
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
    save: NormStatsMut<'_, T>,
) -> Result<()> {
    batch_norm_forward_train_at(dispatch::active(), shape, x, affine, eps, out, save)
}

/// [`batch_norm_forward_train`] at an explicit SIMD level.
pub fn batch_norm_forward_train_at<T: NormScalar>(
    level: SimdLevel,
    shape: &BatchNormShape,
    x: &[T],
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
    save: NormStatsMut<'_, T>,
) -> Result<()> {
    const OP: &str = "batch_norm_forward_train";
    let c = shape.c;
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_opt(OP, "gamma", c, affine.gamma, shape)?;
    check_opt(OP, "beta", c, affine.beta, shape)?;
    check_len(OP, "save.mean", c, save.mean.len(), shape)?;
    check_len(OP, "save.invstd", c, save.invstd.len(), shape)?;
    check_eps(OP, eps)?;
    let plan = Plan::new(shape);
    let (s, count) = (shape.s, shape.count() as f64);
    let stats: Vec<Vec<(f64, f64)>> = segments_mut(out, shape, &plan)
        .into_par_iter()
        .enumerate()
        .map(|(u, outs)| {
            let (c0, len) = plan.channels(shape, u);
            let segs = (0..shape.n).map(|i| segment(x, shape, &plan, u, i));
            let gamma = |k: usize| value(affine.gamma, c0 + k, T::ONE);
            let beta = |k: usize| value(affine.beta, c0 + k, T::ZERO);
            if !plan.positions {
                let shift = x[c0 * s].to_f64();
                let (sum, sq) = T::shifted_sums(level, x, channel_runs(shape, c0), shift);
                let (mean, invstd) = mean_invstd(shift, sum, sq, count, eps);
                let scale = T::from_f64(gamma(0).to_f64() * invstd);
                for (seg, out) in segs.zip(outs) {
                    T::normalize(level, seg, out, T::from_f64(mean), scale, beta(0));
                }
                vec![(mean, invstd)]
            } else {
                let shifts = per_position((0..len).map(|k| x[(c0 + k) * s].to_f64()), s);
                let (mut sum, mut sq) = (vec![0.0; len * s], vec![0.0; len * s]);
                for seg in segs.clone() {
                    acc_sums_pos(level, seg, &shifts, &mut sum, &mut sq);
                }
                let stats: Vec<(f64, f64)> = fold_positions(&sum, s)
                    .zip(fold_positions(&sq, s))
                    .enumerate()
                    .map(|(k, (a, b))| mean_invstd(shifts[k * s], a, b, count, eps))
                    .collect();
                let mean = per_position(stats.iter().map(|&(m, _)| T::from_f64(m)), s);
                let scale = per_position(
                    stats
                        .iter()
                        .enumerate()
                        .map(|(k, &(_, is))| T::from_f64(gamma(k).to_f64() * is)),
                    s,
                );
                let shift = per_position((0..len).map(beta), s);
                for (seg, out) in segs.zip(outs) {
                    normalize_pos(level, seg, out, &mean, &scale, &shift);
                }
                stats
            }
        })
        .collect();
    for (k, (mean, invstd)) in stats.into_iter().flatten().enumerate() {
        save.mean[k] = T::from_f64(mean);
        save.invstd[k] = T::from_f64(invstd);
    }
    Ok(())
}

/// Updates running statistics with the batch statistics of a training forward pass,
/// following PyTorch: `running = (1 - momentum) * running + momentum * batch`, where the
/// batch variance used is the *unbiased* one, `var * n / (n - 1)` with `n = N * S` (the
/// normalisation itself used the biased one).
///
/// The batch variance is recovered from the saved statistics as `1 / invstd^2 - eps`
/// (clamped at 0), so `eps` must be the one the forward pass used; in f32 that recovery
/// loses about `1e-7 * (var + eps)` in absolute terms, far below what the running
/// average can resolve. Errors if `N * S < 2` (the unbiased variance of one value is
/// undefined; PyTorch refuses such a batch in training mode too), if `momentum` is not in
/// `[0, 1]`, or if a length is not `C`.
///
/// ```
/// use kernels::cpu::norm::{
///     batch_norm_update_running_stats, BatchNormShape, NormStats, RunningStatsMut,
/// };
/// let shape = BatchNormShape::new(4, 1, 1).unwrap();
/// // A batch with mean 2.5 and biased variance 1.25 (eps 0): unbiased 5/3.
/// let saved = NormStats { mean: &[2.5f64], invstd: &[1.0 / 1.25f64.sqrt()] };
/// let (mut rm, mut rv) = ([0.0], [1.0]);
/// let running = RunningStatsMut { mean: &mut rm, var: &mut rv };
/// batch_norm_update_running_stats(&shape, saved, 0.0, 0.1, running).unwrap();
/// assert!((rm[0] - 0.25).abs() < 1e-12);
/// assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-12);
/// ```
pub fn batch_norm_update_running_stats<T: NormScalar>(
    shape: &BatchNormShape,
    saved: NormStats<'_, T>,
    eps: f64,
    momentum: f64,
    running: RunningStatsMut<'_, T>,
) -> Result<()> {
    const OP: &str = "batch_norm_update_running_stats";
    let c = shape.c;
    check_len(OP, "saved.mean", c, saved.mean.len(), shape)?;
    check_len(OP, "saved.invstd", c, saved.invstd.len(), shape)?;
    check_len(OP, "running.mean", c, running.mean.len(), shape)?;
    check_len(OP, "running.var", c, running.var.len(), shape)?;
    check_eps(OP, eps)?;
    if !(0.0..=1.0).contains(&momentum) {
        return Err(KernelError::InvalidArgument {
            op: OP,
            detail: format!("momentum must be in [0, 1], got {momentum}"),
        });
    }
    let n = shape.count();
    if n < 2 {
        return Err(KernelError::InvalidArgument {
            op: OP,
            detail: format!(
                "the unbiased variance needs at least 2 values per channel, got N * S = {n} for {shape:?}"
            ),
        });
    }
    let unbias = n as f64 / (n - 1) as f64;
    for k in 0..c {
        let invstd = saved.invstd[k].to_f64();
        let var = (1.0 / (invstd * invstd) - eps).max(0.0);
        let rm = running.mean[k].to_f64();
        let rv = running.var[k].to_f64();
        running.mean[k] = T::from_f64((1.0 - momentum) * rm + momentum * saved.mean[k].to_f64());
        running.var[k] = T::from_f64((1.0 - momentum) * rv + momentum * var * unbias);
    }
    Ok(())
}

/// `invstd = 1 / sqrt(var + eps)` per channel, computed in f64: turns running statistics
/// into the [`NormStats`] that [`batch_norm_backward_eval`] takes. Errors if the lengths
/// differ, `eps` is invalid or some `var + eps` is not positive.
pub fn batch_norm_eval_invstd<T: NormScalar>(var: &[T], eps: f64, invstd: &mut [T]) -> Result<()> {
    const OP: &str = "batch_norm_eval_invstd";
    check_eps(OP, eps)?;
    if var.len() != invstd.len() {
        return Err(KernelError::SizeMismatch {
            op: OP,
            detail: format!(
                "var has {} elements but invstd has {}",
                var.len(),
                invstd.len()
            ),
        });
    }
    for (k, (is, v)) in invstd.iter_mut().zip(var).enumerate() {
        let d = v.to_f64() + eps;
        // Also rejects NaN.
        if d.is_nan() || d <= 0.0 {
            return Err(KernelError::InvalidArgument {
                op: OP,
                detail: format!("var[{k}] + eps = {} + {eps} is not positive", v.to_f64()),
            });
        }
        *is = T::from_f64(1.0 / d.sqrt());
    }
    Ok(())
}

/// Evaluation-mode batch norm forward at the default SIMD level: `out = (x -
/// running.mean) / sqrt(running.var + eps) * gamma + beta`, one pass.
///
/// Errors if a length disagrees with `shape`, `eps` is invalid or some `running.var +
/// eps` is not positive.
pub fn batch_norm_forward_eval<T: NormScalar>(
    shape: &BatchNormShape,
    x: &[T],
    running: RunningStats<'_, T>,
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
) -> Result<()> {
    batch_norm_forward_eval_at(dispatch::active(), shape, x, running, affine, eps, out)
}

/// [`batch_norm_forward_eval`] at an explicit SIMD level.
pub fn batch_norm_forward_eval_at<T: NormScalar>(
    level: SimdLevel,
    shape: &BatchNormShape,
    x: &[T],
    running: RunningStats<'_, T>,
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
) -> Result<()> {
    const OP: &str = "batch_norm_forward_eval";
    let c = shape.c;
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_len(OP, "running.mean", c, running.mean.len(), shape)?;
    check_len(OP, "running.var", c, running.var.len(), shape)?;
    check_opt(OP, "gamma", c, affine.gamma, shape)?;
    check_opt(OP, "beta", c, affine.beta, shape)?;
    let mut invstd = vec![T::ZERO; c];
    batch_norm_eval_invstd(running.var, eps, &mut invstd).map_err(|e| match e {
        KernelError::InvalidArgument { detail, .. } => {
            KernelError::InvalidArgument { op: OP, detail }
        }
        other => other,
    })?;
    let scale: Vec<T> = (0..c)
        .map(|k| T::from_f64(value(affine.gamma, k, T::ONE).to_f64() * invstd[k].to_f64()))
        .collect();
    let shift: Vec<T> = (0..c).map(|k| value(affine.beta, k, T::ZERO)).collect();
    let plan = Plan::new(shape);
    let s = shape.s;
    segments_mut(out, shape, &plan)
        .into_par_iter()
        .enumerate()
        .for_each(|(u, outs)| {
            let (c0, len) = plan.channels(shape, u);
            let segs = (0..shape.n).map(|i| segment(x, shape, &plan, u, i));
            if !plan.positions {
                for (seg, out) in segs.zip(outs) {
                    T::normalize(level, seg, out, running.mean[c0], scale[c0], shift[c0]);
                }
            } else {
                let mean = per_position(running.mean[c0..c0 + len].iter().copied(), s);
                let a = per_position(scale[c0..c0 + len].iter().copied(), s);
                let b = per_position(shift[c0..c0 + len].iter().copied(), s);
                for (seg, out) in segs.zip(outs) {
                    normalize_pos(level, seg, out, &mean, &a, &b);
                }
            }
        });
    Ok(())
}

/// Checks the common arguments of the two backward passes.
fn check_backward<T>(
    op: &'static str,
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: &NormStats<'_, T>,
    grads: &NormGrads<'_, T>,
) -> Result<()> {
    let c = shape.c;
    check_len(op, "x", shape.len(), x.len(), shape)?;
    check_len(op, "grad_out", shape.len(), grad_out.len(), shape)?;
    check_opt(op, "gamma", c, gamma, shape)?;
    check_len(op, "saved.mean", c, saved.mean.len(), shape)?;
    check_len(op, "saved.invstd", c, saved.invstd.len(), shape)?;
    check_opt(op, "grads.x", shape.len(), grads.x.as_deref(), shape)?;
    check_opt(op, "grads.gamma", c, grads.gamma.as_deref(), shape)?;
    check_opt(op, "grads.beta", c, grads.beta.as_deref(), shape)
}

/// Training-mode batch norm backward at the default SIMD level, from the input `x`, the
/// output gradient and the statistics saved by [`batch_norm_forward_train`]:
///
/// `grad_beta = sum(g)`, `grad_gamma = sum(g * xhat)` and
/// `grad_x = gamma * invstd * (g - sum(g) / n - xhat * sum(g * xhat) / n)` with `xhat =
/// (x - mean) * invstd` and `n = N * S`. One pass over `(x, g)` for the two sums, one to
/// write `grad_x` (skipped when `grads.x` is `None`). Errors if a length disagrees with
/// `shape`.
pub fn batch_norm_backward<T: NormScalar>(
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    batch_norm_backward_at(dispatch::active(), shape, x, grad_out, gamma, saved, grads)
}

/// [`batch_norm_backward`] at an explicit SIMD level.
pub fn batch_norm_backward_at<T: NormScalar>(
    level: SimdLevel,
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    check_backward(
        "batch_norm_backward",
        shape,
        x,
        grad_out,
        gamma,
        &saved,
        &grads,
    )?;
    backward::<T, true>(level, shape, x, grad_out, gamma, saved, grads);
    Ok(())
}

/// Evaluation-mode batch norm backward at the default SIMD level: the statistics are
/// constants, so `grad_x = g * gamma * invstd`, `grad_gamma = sum(g * xhat)` and
/// `grad_beta = sum(g)`. `saved` holds the running mean and `1 / sqrt(running_var +
/// eps)` (see [`batch_norm_eval_invstd`]). Errors if a length disagrees with `shape`.
pub fn batch_norm_backward_eval<T: NormScalar>(
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    batch_norm_backward_eval_at(dispatch::active(), shape, x, grad_out, gamma, saved, grads)
}

/// [`batch_norm_backward_eval`] at an explicit SIMD level.
pub fn batch_norm_backward_eval_at<T: NormScalar>(
    level: SimdLevel,
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    check_backward(
        "batch_norm_backward_eval",
        shape,
        x,
        grad_out,
        gamma,
        &saved,
        &grads,
    )?;
    backward::<T, false>(level, shape, x, grad_out, gamma, saved, grads);
    Ok(())
}

/// The shared backward; `TRAIN` selects whether the statistics depend on `x`.
fn backward<T: NormScalar, const TRAIN: bool>(
    level: SimdLevel,
    shape: &BatchNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) {
    let plan = Plan::new(shape);
    let (s, count) = (shape.s, shape.count() as f64);
    let NormGrads {
        x: grad_x,
        gamma: grad_gamma,
        beta: grad_beta,
    } = grads;
    let gx_units = match grad_x {
        Some(gx) => segments_mut(gx, shape, &plan),
        None => (0..plan.units(shape)).map(|_| Vec::new()).collect(),
    };
    // Coefficients of grad_x = a * g + b * (x - mean) + c from the two sums.
    let coefficients = |k: usize, sg: f64, sgd: f64| -> [T; 4] {
        let invstd = saved.invstd[k].to_f64();
        let a = value(gamma, k, T::ONE).to_f64() * invstd;
        let (b, c) = if TRAIN {
            (-a * invstd * invstd * sgd / count, -a * sg / count)
        } else {
            (0.0, 0.0)
        };
        [
            saved.mean[k],
            T::from_f64(a),
            T::from_f64(b),
            T::from_f64(c),
        ]
    };
    let sums: Vec<Vec<(f64, f64)>> = gx_units
        .into_par_iter()
        .enumerate()
        .map(|(u, gxs)| {
            let (c0, len) = plan.channels(shape, u);
            let xs = (0..shape.n).map(|i| segment(x, shape, &plan, u, i));
            let gs = (0..shape.n).map(|i| segment(grad_out, shape, &plan, u, i));
            if !plan.positions {
                let mean = saved.mean[c0].to_f64();
                let (sg, sgd) = T::grad_sums(level, grad_out, x, channel_runs(shape, c0), mean);
                let coef = coefficients(c0, sg, sgd);
                for ((g, x), gx) in gs.zip(xs).zip(gxs) {
                    T::grad_input(level, g, x, gx, coef);
                }
                vec![(sg, sgd)]
            } else {
                let mean = per_position((c0..c0 + len).map(|k| saved.mean[k].to_f64()), s);
                let (mut sg, mut sgd) = (vec![0.0; len * s], vec![0.0; len * s]);
                for (g, x) in gs.clone().zip(xs.clone()) {
                    grad_sums_pos(level, g, x, &mean, &mut sg, &mut sgd);
                }
                let sums: Vec<(f64, f64)> = fold_positions(&sg, s)
                    .zip(fold_positions(&sgd, s))
                    .collect();
                if !gxs.is_empty() {
                    let per_channel: Vec<[T; 4]> = sums
                        .iter()
                        .enumerate()
                        .map(|(k, &(a, b))| coefficients(c0 + k, a, b))
                        .collect();
                    let coef = PositionCoefs::new(&per_channel, s);
                    for ((g, x), gx) in gs.zip(xs).zip(gxs) {
                        grad_input_pos(level, g, x, gx, coef.slices());
                    }
                }
                sums
            }
        })
        .collect();
    let mut grad_gamma = grad_gamma;
    let mut grad_beta = grad_beta;
    for (k, (sg, sgd)) in sums.into_iter().flatten().enumerate() {
        if let Some(gg) = grad_gamma.as_deref_mut() {
            gg[k] = T::from_f64(sgd * saved.invstd[k].to_f64());
        }
        if let Some(gb) = grad_beta.as_deref_mut() {
            gb[k] = T::from_f64(sg);
        }
    }
}
