//! Plain f64 normalisations: the definitions the fast kernels are tested against.
//!
//! Statistics are computed in two passes (mean, then the mean of squared deviations),
//! each normalised value is formed explicitly as `xhat = (x - mean) * invstd`, and the
//! backward passes follow the textbook formulas; nothing is vectorised or parallel.
//! Both batch norm and group norm are written in terms of one routine that normalises a
//! set of index lists (a channel's values for batch norm, a row's for group norm).
//!
//! ```
//! use kernels::cpu::norm::{reference, Affine, BatchNormShape, NormStatsMut};
//! let shape = BatchNormShape::new(2, 1, 1).unwrap();
//! let (mut y, mut m, mut is) = ([0.0; 2], [0.0], [0.0]);
//! let save = NormStatsMut { mean: &mut m, invstd: &mut is };
//! reference::batch_norm_forward_train(&shape, &[1.0, 3.0], Affine::identity(), 0.0, &mut y, save)
//!     .unwrap();
//! assert_eq!(y, [-1.0, 1.0]);
//! ```

use super::{
    check_eps, check_len, check_opt, Affine, BatchNormShape, GroupNormShape, NormGrads, NormStats,
    NormStatsMut, RunningStats,
};
use crate::error::Result;

/// The indices of one normalised set, and the channel each index belongs to.
type Set = Vec<(usize, usize)>;

/// Batch norm: one set per channel, all samples and positions.
fn batch_sets(shape: &BatchNormShape) -> Vec<Set> {
    let (n, c, s) = (shape.n(), shape.c(), shape.s());
    (0..c)
        .map(|k| {
            (0..n)
                .flat_map(|i| (0..s).map(move |j| ((i * c + k) * s + j, k)))
                .collect()
        })
        .collect()
}

/// Group norm: one set per (sample, group) row.
fn group_sets(shape: &GroupNormShape) -> Vec<Set> {
    let (m, s) = (shape.row_len(), shape.s());
    let cpg = shape.c() / shape.groups();
    (0..shape.rows())
        .map(|r| {
            let g = r % shape.groups();
            (0..m).map(|j| (r * m + j, g * cpg + j / s)).collect()
        })
        .collect()
}

fn forward(
    sets: &[Set],
    x: &[f64],
    affine: Affine<'_, f64>,
    eps: f64,
    out: &mut [f64],
    save: NormStatsMut<'_, f64>,
) {
    for (k, set) in sets.iter().enumerate() {
        let n = set.len() as f64;
        let mean = set.iter().map(|&(i, _)| x[i]).sum::<f64>() / n;
        let var = set.iter().map(|&(i, _)| (x[i] - mean).powi(2)).sum::<f64>() / n;
        let invstd = 1.0 / (var + eps).sqrt();
        for &(i, c) in set {
            let xhat = (x[i] - mean) * invstd;
            out[i] = xhat * affine.gamma.map_or(1.0, |g| g[c]) + affine.beta.map_or(0.0, |b| b[c]);
        }
        save.mean[k] = mean;
        save.invstd[k] = invstd;
    }
}

fn backward(
    sets: &[Set],
    x: &[f64],
    grad_out: &[f64],
    gamma: Option<&[f64]>,
    saved: NormStats<'_, f64>,
    grads: NormGrads<'_, f64>,
    channels: usize,
) {
    let NormGrads {
        x: mut grad_x,
        gamma: grad_gamma,
        beta: grad_beta,
    } = grads;
    let (mut gg, mut gb) = (vec![0.0; channels], vec![0.0; channels]);
    for (k, set) in sets.iter().enumerate() {
        let (mean, invstd) = (saved.mean[k], saved.invstd[k]);
        let n = set.len() as f64;
        let xhat = |i: usize| (x[i] - mean) * invstd;
        let dxhat = |i: usize, c: usize| grad_out[i] * gamma.map_or(1.0, |g| g[c]);
        let sum_dxhat: f64 = set.iter().map(|&(i, c)| dxhat(i, c)).sum();
        let sum_dxhat_xhat: f64 = set.iter().map(|&(i, c)| dxhat(i, c) * xhat(i)).sum();
        for &(i, c) in set {
            gg[c] += grad_out[i] * xhat(i);
            gb[c] += grad_out[i];
            if let Some(gx) = grad_x.as_deref_mut() {
                gx[i] = invstd * (dxhat(i, c) - sum_dxhat / n - xhat(i) * sum_dxhat_xhat / n);
            }
        }
    }
    if let Some(o) = grad_gamma {
        o.copy_from_slice(&gg);
    }
    if let Some(o) = grad_beta {
        o.copy_from_slice(&gb);
    }
}

/// Reference training-mode batch norm forward (see
/// [`batch_norm_forward_train`](super::batch_norm_forward_train)).
pub fn batch_norm_forward_train(
    shape: &BatchNormShape,
    x: &[f64],
    affine: Affine<'_, f64>,
    eps: f64,
    out: &mut [f64],
    save: NormStatsMut<'_, f64>,
) -> Result<()> {
    const OP: &str = "reference::batch_norm_forward_train";
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_opt(OP, "gamma", shape.c(), affine.gamma, shape)?;
    check_opt(OP, "beta", shape.c(), affine.beta, shape)?;
    check_len(OP, "save.mean", shape.c(), save.mean.len(), shape)?;
    check_len(OP, "save.invstd", shape.c(), save.invstd.len(), shape)?;
    check_eps(OP, eps)?;
    forward(&batch_sets(shape), x, affine, eps, out, save);
    Ok(())
}

/// Reference evaluation-mode batch norm forward (see
/// [`batch_norm_forward_eval`](super::batch_norm_forward_eval)).
pub fn batch_norm_forward_eval(
    shape: &BatchNormShape,
    x: &[f64],
    running: RunningStats<'_, f64>,
    affine: Affine<'_, f64>,
    eps: f64,
    out: &mut [f64],
) -> Result<()> {
    const OP: &str = "reference::batch_norm_forward_eval";
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_len(OP, "running.mean", shape.c(), running.mean.len(), shape)?;
    check_len(OP, "running.var", shape.c(), running.var.len(), shape)?;
    check_opt(OP, "gamma", shape.c(), affine.gamma, shape)?;
    check_opt(OP, "beta", shape.c(), affine.beta, shape)?;
    check_eps(OP, eps)?;
    for set in batch_sets(shape) {
        for (i, c) in set {
            let xhat = (x[i] - running.mean[c]) / (running.var[c] + eps).sqrt();
            out[i] = xhat * affine.gamma.map_or(1.0, |g| g[c]) + affine.beta.map_or(0.0, |b| b[c]);
        }
    }
    Ok(())
}

/// Reference training-mode batch norm backward (see
/// [`batch_norm_backward`](super::batch_norm_backward)).
pub fn batch_norm_backward(
    shape: &BatchNormShape,
    x: &[f64],
    grad_out: &[f64],
    gamma: Option<&[f64]>,
    saved: NormStats<'_, f64>,
    grads: NormGrads<'_, f64>,
) -> Result<()> {
    const OP: &str = "reference::batch_norm_backward";
    let c = shape.c();
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "grad_out", shape.len(), grad_out.len(), shape)?;
    check_opt(OP, "gamma", c, gamma, shape)?;
    check_len(OP, "saved.mean", c, saved.mean.len(), shape)?;
    check_len(OP, "saved.invstd", c, saved.invstd.len(), shape)?;
    check_opt(OP, "grads.x", shape.len(), grads.x.as_deref(), shape)?;
    check_opt(OP, "grads.gamma", c, grads.gamma.as_deref(), shape)?;
    check_opt(OP, "grads.beta", c, grads.beta.as_deref(), shape)?;
    backward(&batch_sets(shape), x, grad_out, gamma, saved, grads, c);
    Ok(())
}

/// Reference group norm forward (see [`group_norm_forward`](super::group_norm_forward)).
pub fn group_norm_forward(
    shape: &GroupNormShape,
    x: &[f64],
    affine: Affine<'_, f64>,
    eps: f64,
    out: &mut [f64],
    save: NormStatsMut<'_, f64>,
) -> Result<()> {
    const OP: &str = "reference::group_norm_forward";
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_opt(OP, "gamma", shape.c(), affine.gamma, shape)?;
    check_opt(OP, "beta", shape.c(), affine.beta, shape)?;
    check_len(OP, "save.mean", shape.rows(), save.mean.len(), shape)?;
    check_len(OP, "save.invstd", shape.rows(), save.invstd.len(), shape)?;
    check_eps(OP, eps)?;
    forward(&group_sets(shape), x, affine, eps, out, save);
    Ok(())
}

/// Reference group norm backward (see [`group_norm_backward`](super::group_norm_backward)).
pub fn group_norm_backward(
    shape: &GroupNormShape,
    x: &[f64],
    grad_out: &[f64],
    gamma: Option<&[f64]>,
    saved: NormStats<'_, f64>,
    grads: NormGrads<'_, f64>,
) -> Result<()> {
    const OP: &str = "reference::group_norm_backward";
    let c = shape.c();
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "grad_out", shape.len(), grad_out.len(), shape)?;
    check_opt(OP, "gamma", c, gamma, shape)?;
    check_len(OP, "saved.mean", shape.rows(), saved.mean.len(), shape)?;
    check_len(OP, "saved.invstd", shape.rows(), saved.invstd.len(), shape)?;
    check_opt(OP, "grads.x", shape.len(), grads.x.as_deref(), shape)?;
    check_opt(OP, "grads.gamma", c, grads.gamma.as_deref(), shape)?;
    check_opt(OP, "grads.beta", c, grads.beta.as_deref(), shape)?;
    backward(&group_sets(shape), x, grad_out, gamma, saved, grads, c);
    Ok(())
}
