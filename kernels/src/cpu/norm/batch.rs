//! Batch normalisation over `(N, C, S)`: per-channel statistics over `N * S` values.

use rayon::prelude::*;

use super::simd::{acc_sums_pos, grad_input_pos, grad_sums_pos, normalize_pos, Prims};
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

/// Channels with fewer positions than this (`S`, per sample) are walked position by
/// position, whole samples at a time; longer ones run by run, with the SIMD run loops.
/// Measured with 2 threads on the lesson's shapes and the makemore MLP's BatchNorm1d:
/// positions win by 1.4x for `S` = 49 and by over 10x for `S` = 1, runs by 2x for
/// `S` = 196 and 4x for 784 (where the per-position accumulators outgrow L1/L2).
const POSITIONS_BELOW: usize = 64;

/// A parallel unit holds at least this many values (256 KiB of f32): few enough units
/// that scheduling costs nothing, each a long contiguous stretch the hardware
/// prefetchers stream at full speed.
const UNIT_MIN: usize = 1 << 16;

/// How the kernels walk an `(N, C, S)` tensor: front to back in memory order, split into
/// contiguous units that run in parallel. Per-channel sums are accumulated per unit and
/// the units' partial sums added in unit order, a fixed order that depends on the shape
/// only, so results are bit-identical whatever the thread count.
///
/// Walking in memory order is what makes the kernels fast: a channel's values are `N`
/// runs of `S` values, `C * S` apart, and walking channel by channel (our first
/// version) left the prefetchers restarting on every short run. Memory-order passes are
/// 2.4-2.7x faster at (256, 64, 14, 14) with 2 threads, although each of a kernel's two
/// passes now reads the whole tensor (the second mostly from L3), where the channel walk
/// re-read each channel from L2.
#[derive(Clone, Copy, Debug)]
enum Walk {
    /// `S < POSITIONS_BELOW`: units of `unit` values, whole samples, with one
    /// accumulator (or coefficient) per position of a sample (`C * S` of them).
    Positions { unit: usize },
    /// `S >= POSITIONS_BELOW`: units of `unit` values, whole runs of `S`; run `r` of the
    /// tensor belongs to channel `r % C`.
    Runs { unit: usize },
}

impl Walk {
    fn new(shape: &BatchNormShape) -> Self {
        let (c, s) = (shape.c, shape.s);
        if s < POSITIONS_BELOW {
            let samples = UNIT_MIN.div_ceil(c * s).min(shape.n);
            Walk::Positions {
                unit: samples * c * s,
            }
        } else {
            let runs = UNIT_MIN.div_ceil(s).min(shape.n * c);
            Walk::Runs { unit: runs * s }
        }
    }

    /// Values per unit (the last unit may have fewer).
    fn unit(self) -> usize {
        match self {
            Walk::Positions { unit } | Walk::Runs { unit } => unit,
        }
    }

    /// Per-position copies of per-channel values (`S` copies of each) for a walk by
    /// positions; nothing for a walk by runs, which reads the per-channel values.
    fn per_position<T: Copy>(
        self,
        per_channel: impl ExactSizeIterator<Item = T>,
        s: usize,
    ) -> Vec<T> {
        if let Walk::Runs { .. } = self {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(per_channel.len() * s);
        for v in per_channel {
            out.resize(out.len() + s, v);
        }
        out
    }

    /// Per-channel pairs of f64 sums over two tensors `a` and `b` of the shape (the
    /// forward passes `x` twice). `run(a, b, k)` sums a run of channel `k`; `sample(a, b,
    /// p, q)` adds a whole sample into per-position accumulators.
    fn channel_sums<T: NormScalar>(
        self,
        shape: &BatchNormShape,
        a: &[T],
        b: &[T],
        run: impl Fn(&[T], &[T], usize) -> (f64, f64) + Sync,
        sample: impl Fn(&[T], &[T], &mut [f64], &mut [f64]) + Sync,
    ) -> Vec<(f64, f64)> {
        let (c, s, unit) = (shape.c, shape.s, self.unit());
        let unit_sums = |(u, (au, bu)): (usize, (&[T], &[T]))| -> Vec<(f64, f64)> {
            match self {
                Walk::Runs { .. } => {
                    let mut acc = vec![(0.0, 0.0); c];
                    let first = u * unit / s;
                    for (j, (ar, br)) in au.chunks_exact(s).zip(bu.chunks_exact(s)).enumerate() {
                        let k = (first + j) % c;
                        let (p, q) = run(ar, br, k);
                        acc[k].0 += p;
                        acc[k].1 += q;
                    }
                    acc
                }
                Walk::Positions { .. } => {
                    let (mut p, mut q) = (vec![0.0; c * s], vec![0.0; c * s]);
                    for (sa, sb) in au.chunks_exact(c * s).zip(bu.chunks_exact(c * s)) {
                        sample(sa, sb, &mut p, &mut q);
                    }
                    fold_positions(&p, s).zip(fold_positions(&q, s)).collect()
                }
            }
        };
        // One unit runs on the calling thread: handing it to the pool costs more than a
        // small tensor's whole pass (the makemore MLP's BatchNorm1d: 6400 values).
        let partials: Vec<Vec<(f64, f64)>> = if a.len() <= unit {
            vec![unit_sums((0, (a, b)))]
        } else {
            a.par_chunks(unit)
                .zip(b.par_chunks(unit))
                .enumerate()
                .map(unit_sums)
                .collect()
        };
        let mut total = vec![(0.0, 0.0); c];
        for partial in partials {
            for (t, (p, q)) in total.iter_mut().zip(partial) {
                t.0 += p;
                t.1 += q;
            }
        }
        total
    }

    /// Writes `out` from two tensors `a` and `b` of the shape: `run(out, a, b, k)` for a
    /// run of channel `k`, or `sample(out, a, b)` for a whole sample.
    fn write<T: NormScalar>(
        self,
        shape: &BatchNormShape,
        out: &mut [T],
        a: &[T],
        b: &[T],
        run: impl Fn(&mut [T], &[T], &[T], usize) + Sync,
        sample: impl Fn(&mut [T], &[T], &[T]) + Sync,
    ) {
        let (c, s, unit) = (shape.c, shape.s, self.unit());
        let unit_write = |u: usize, ou: &mut [T], au: &[T], bu: &[T]| match self {
            Walk::Runs { .. } => {
                let first = u * unit / s;
                let runs = ou
                    .chunks_exact_mut(s)
                    .zip(au.chunks_exact(s).zip(bu.chunks_exact(s)));
                for (j, (or, (ar, br))) in runs.enumerate() {
                    run(or, ar, br, (first + j) % c);
                }
            }
            Walk::Positions { .. } => {
                let samples = ou
                    .chunks_exact_mut(c * s)
                    .zip(au.chunks_exact(c * s).zip(bu.chunks_exact(c * s)));
                for (os, (sa, sb)) in samples {
                    sample(os, sa, sb);
                }
            }
        };
        if out.len() <= unit {
            unit_write(0, out, a, b);
        } else {
            out.par_chunks_mut(unit)
                .zip(a.par_chunks(unit).zip(b.par_chunks(unit)))
                .enumerate()
                .for_each(|(u, (ou, (au, bu)))| unit_write(u, ou, au, bu));
        }
    }
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
    fn new(walk: Walk, per_channel: &[[T; 4]], s: usize) -> Self {
        let part = |j: usize| walk.per_position(per_channel.iter().map(|c| c[j]), s);
        Self {
            parts: [part(0), part(1), part(2), part(3)],
        }
    }

    fn slices(&self) -> [&[T]; 4] {
        let [m, a, b, c] = &self.parts;
        [m, a, b, c]
    }
}

/// Writes `out = (x - mean) * scale + shift` over the walk, from per-channel `[mean,
/// scale, shift]`.
fn normalize<T: NormScalar>(
    level: SimdLevel,
    walk: Walk,
    shape: &BatchNormShape,
    per_channel: &[[T; 3]],
    x: &[T],
    out: &mut [T],
) {
    let part = |j: usize| walk.per_position(per_channel.iter().map(|c| c[j]), shape.s);
    let [mean_pos, scale_pos, shift_pos] = [part(0), part(1), part(2)];
    walk.write(
        shape,
        out,
        x,
        x,
        |o, xr, _, k| {
            let [mean, scale, shift] = per_channel[k];
            T::normalize(level, xr, o, mean, scale, shift);
        },
        |o, xs, _| normalize_pos(level, xs, o, &mean_pos, &scale_pos, &shift_pos),
    );
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
    let walk = Walk::new(shape);
    let (c, s, count) = (shape.c, shape.s, shape.count() as f64);
    // Each channel's first value is the shift of its sums (see the module's Numerics).
    let shifts: Vec<f64> = (0..c).map(|k| x[k * s].to_f64()).collect();
    let shifts_pos = walk.per_position(shifts.iter().copied(), s);
    let sums = walk.channel_sums(
        shape,
        x,
        x,
        |run, _, k| T::shifted_sums(level, run, shifts[k]),
        |sample, _, p, q| acc_sums_pos(level, sample, &shifts_pos, p, q),
    );
    let stats: Vec<(f64, f64)> = sums
        .into_iter()
        .zip(&shifts)
        .map(|((p, q), &shift)| mean_invstd(shift, p, q, count, eps))
        .collect();
    let per_channel: Vec<[T; 3]> = stats
        .iter()
        .enumerate()
        .map(|(k, &(mean, invstd))| {
            let scale = value(affine.gamma, k, T::ONE).to_f64() * invstd;
            [
                T::from_f64(mean),
                T::from_f64(scale),
                value(affine.beta, k, T::ZERO),
            ]
        })
        .collect();
    normalize(level, walk, shape, &per_channel, x, out);
    for (k, (mean, invstd)) in stats.into_iter().enumerate() {
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
    let per_channel: Vec<[T; 3]> = (0..c)
        .map(|k| {
            let scale = value(affine.gamma, k, T::ONE).to_f64() * invstd[k].to_f64();
            [
                running.mean[k],
                T::from_f64(scale),
                value(affine.beta, k, T::ZERO),
            ]
        })
        .collect();
    let walk = Walk::new(shape);
    normalize(level, walk, shape, &per_channel, x, out);
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
    let walk = Walk::new(shape);
    let (c, s, count) = (shape.c, shape.s, shape.count() as f64);
    let NormGrads {
        x: grad_x,
        gamma: mut grad_gamma,
        beta: mut grad_beta,
    } = grads;
    let means: Vec<f64> = saved.mean.iter().map(|m| m.to_f64()).collect();
    let means_pos = walk.per_position(means.iter().copied(), s);
    let sums = walk.channel_sums(
        shape,
        grad_out,
        x,
        |g, x, k| T::grad_sums(level, g, x, means[k]),
        |g, x, p, q| grad_sums_pos(level, g, x, &means_pos, p, q),
    );
    if let Some(grad_x) = grad_x {
        // Coefficients of grad_x = a * g + b * (x - mean) + c from the two sums.
        let coefs: Vec<[T; 4]> = (0..c)
            .map(|k| {
                let (sg, sgd) = sums[k];
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
            })
            .collect();
        let coefs_pos = PositionCoefs::new(walk, &coefs, s);
        walk.write(
            shape,
            grad_x,
            grad_out,
            x,
            |gx, g, x, k| T::grad_input(level, g, x, gx, coefs[k]),
            |gx, g, x| grad_input_pos(level, g, x, gx, coefs_pos.slices()),
        );
    }
    for (k, (sg, sgd)) in sums.into_iter().enumerate() {
        if let Some(gg) = grad_gamma.as_deref_mut() {
            gg[k] = T::from_f64(sgd * saved.invstd[k].to_f64());
        }
        if let Some(gb) = grad_beta.as_deref_mut() {
            gb[k] = T::from_f64(sg);
        }
    }
}
