//! Group normalisation over `(N, G, C/G * S)` with a per-channel affine map: serves
//! GroupNorm, LayerNorm (`G = 1`) and InstanceNorm (`G = C`).

use rayon::prelude::*;

use super::simd::Prims;
use super::{
    check_eps, check_len, check_opt, mean_invstd, Affine, NormGrads, NormScalar, NormStats,
    NormStatsMut,
};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::error::{KernelError, Result};

/// The `(N, C, S)` view a group norm works on, with `C` split into `groups` groups of
/// `C / groups` consecutive channels; each `(sample, group)` row of `C / groups * S`
/// contiguous values is normalised on its own.
///
/// ```
/// use kernels::cpu::norm::GroupNormShape;
/// let s = GroupNormShape::new(8, 32, 49, 4).unwrap();
/// assert_eq!((s.rows(), s.row_len()), (8 * 4, 8 * 49));
/// let err = GroupNormShape::new(8, 30, 49, 4).unwrap_err();
/// assert!(err.to_string().contains("groups 4 must divide the 30 channels"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupNormShape {
    n: usize,
    c: usize,
    s: usize,
    groups: usize,
}

impl GroupNormShape {
    /// Validates the sizes: all at least 1, `groups` dividing `c`, and `N * C * S`
    /// fitting in `usize`.
    pub fn new(n: usize, c: usize, s: usize, groups: usize) -> Result<Self> {
        let invalid = |detail| KernelError::InvalidArgument {
            op: "group_norm",
            detail,
        };
        if n == 0 || c == 0 || s == 0 || groups == 0 {
            return Err(invalid(format!(
                "(N, C, S) = ({n}, {c}, {s}) with {groups} groups has a zero size"
            )));
        }
        if !c.is_multiple_of(groups) {
            return Err(invalid(format!(
                "groups {groups} must divide the {c} channels"
            )));
        }
        if n.checked_mul(c).and_then(|v| v.checked_mul(s)).is_none() {
            return Err(invalid(format!(
                "(N, C, S) = ({n}, {c}, {s}) overflows usize"
            )));
        }
        Ok(Self { n, c, s, groups })
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

    /// Groups `G`.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Elements of the input: `N * C * S`.
    pub fn len(&self) -> usize {
        self.n * self.c * self.s
    }

    /// Always false: a valid shape has no zero size (provided for `len`'s sake).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Normalised rows, `N * G`: the length of the saved statistics.
    pub fn rows(&self) -> usize {
        self.n * self.groups
    }

    /// Values per row, `C / G * S`.
    pub fn row_len(&self) -> usize {
        self.c / self.groups * self.s
    }
}

/// Channel runs at least this long use the SIMD run loops; shorter ones a scalar loop
/// (a call per run of a handful of values would cost more than it saves).
const RUN_MIN: usize = 16;

fn value<T: Prims>(v: Option<&[T]>, c: usize, default: T) -> T {
    v.map_or(default, |v| v[c])
}

/// Group norm forward at the default SIMD level: for each `(sample, group)` row, `xhat =
/// (x - mean) / sqrt(var + eps)` (biased variance over the row), then `out = xhat *
/// gamma[c] + beta[c]` per channel; the row statistics are saved for
/// [`group_norm_backward`].
///
/// `x` and `out` hold `N * C * S` values, `affine` `C` values each, the two `save` slices
/// `N * G` each. Errors if a length disagrees with `shape` or `eps` is invalid.
///
/// ```
/// use kernels::cpu::norm::{group_norm_forward, Affine, GroupNormShape, NormStatsMut};
/// // LayerNorm over 4 features of 1 sample: (N, C, S) = (1, 4, 1), one group.
/// let shape = GroupNormShape::new(1, 4, 1, 1).unwrap();
/// let (mut y, mut m, mut is) = ([0.0f64; 4], [0.0], [0.0]);
/// let save = NormStatsMut { mean: &mut m, invstd: &mut is };
/// group_norm_forward(&shape, &[1.0, 2.0, 3.0, 4.0], Affine::identity(), 0.0, &mut y, save)
///     .unwrap();
/// assert_eq!(m, [2.5]);
/// assert!((y[0] + 1.5 / 1.25f64.sqrt()).abs() < 1e-12);
/// ```
pub fn group_norm_forward<T: NormScalar>(
    shape: &GroupNormShape,
    x: &[T],
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
    save: NormStatsMut<'_, T>,
) -> Result<()> {
    group_norm_forward_at(dispatch::active(), shape, x, affine, eps, out, save)
}

/// [`group_norm_forward`] at an explicit SIMD level.
pub fn group_norm_forward_at<T: NormScalar>(
    level: SimdLevel,
    shape: &GroupNormShape,
    x: &[T],
    affine: Affine<'_, T>,
    eps: f64,
    out: &mut [T],
    save: NormStatsMut<'_, T>,
) -> Result<()> {
    const OP: &str = "group_norm_forward";
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "out", shape.len(), out.len(), shape)?;
    check_opt(OP, "gamma", shape.c, affine.gamma, shape)?;
    check_opt(OP, "beta", shape.c, affine.beta, shape)?;
    check_len(OP, "save.mean", shape.rows(), save.mean.len(), shape)?;
    check_len(OP, "save.invstd", shape.rows(), save.invstd.len(), shape)?;
    check_eps(OP, eps)?;
    let (m, s, cpg) = (shape.row_len(), shape.s, shape.c / shape.groups);
    out.par_chunks_mut(m)
        .zip(x.par_chunks(m))
        .zip(save.mean.par_iter_mut().zip(save.invstd.par_iter_mut()))
        .enumerate()
        .for_each(|(row, ((out, x), (save_mean, save_invstd)))| {
            let g = row % shape.groups;
            let shift = x[0].to_f64();
            let (sum, sq) = T::shifted_sums(level, x, shift);
            let (mean, invstd) = mean_invstd(shift, sum, sq, m as f64, eps);
            *save_mean = T::from_f64(mean);
            *save_invstd = T::from_f64(invstd);
            let mean = T::from_f64(mean);
            for (cl, (out, x)) in out.chunks_exact_mut(s).zip(x.chunks_exact(s)).enumerate() {
                let c = g * cpg + cl;
                let scale = T::from_f64(value(affine.gamma, c, T::ONE).to_f64() * invstd);
                let beta = value(affine.beta, c, T::ZERO);
                if s >= RUN_MIN {
                    T::normalize(level, x, out, mean, scale, beta);
                } else {
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o = (v - mean) * scale + beta;
                    }
                }
            }
        });
    Ok(())
}

/// Group norm backward at the default SIMD level, from the input `x`, the output
/// gradient and the statistics saved by [`group_norm_forward`]. Per row, with `dxhat =
/// g * gamma[c]` and `m = C / G * S`:
///
/// `grad_x = invstd * (dxhat - sum(dxhat) / m - xhat * sum(dxhat * xhat) / m)`, and per
/// channel `grad_gamma = sum(g * xhat)`, `grad_beta = sum(g)` over samples and positions.
///
/// One pass over `(x, g)` per row for the per-channel sums, one to write `grad_x`
/// (skipped when `grads.x` is `None`). Errors if a length disagrees with `shape`.
pub fn group_norm_backward<T: NormScalar>(
    shape: &GroupNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    group_norm_backward_at(dispatch::active(), shape, x, grad_out, gamma, saved, grads)
}

/// [`group_norm_backward`] at an explicit SIMD level.
pub fn group_norm_backward_at<T: NormScalar>(
    level: SimdLevel,
    shape: &GroupNormShape,
    x: &[T],
    grad_out: &[T],
    gamma: Option<&[T]>,
    saved: NormStats<'_, T>,
    grads: NormGrads<'_, T>,
) -> Result<()> {
    const OP: &str = "group_norm_backward";
    let c = shape.c;
    check_len(OP, "x", shape.len(), x.len(), shape)?;
    check_len(OP, "grad_out", shape.len(), grad_out.len(), shape)?;
    check_opt(OP, "gamma", c, gamma, shape)?;
    check_len(OP, "saved.mean", shape.rows(), saved.mean.len(), shape)?;
    check_len(OP, "saved.invstd", shape.rows(), saved.invstd.len(), shape)?;
    check_opt(OP, "grads.x", shape.len(), grads.x.as_deref(), shape)?;
    check_opt(OP, "grads.gamma", c, grads.gamma.as_deref(), shape)?;
    check_opt(OP, "grads.beta", c, grads.beta.as_deref(), shape)?;
    let (m, s, cpg) = (shape.row_len(), shape.s, c / shape.groups);
    // Per row: per-channel (sum(g), sum(g * xhat)), and grad_x if asked for.
    let row = |row: usize, gx: Option<&mut [T]>| -> Vec<(f64, f64)> {
        let g0 = row % shape.groups;
        let (x, g) = (&x[row * m..][..m], &grad_out[row * m..][..m]);
        let (mean, invstd) = (saved.mean[row].to_f64(), saved.invstd[row].to_f64());
        let sums: Vec<(f64, f64)> = x
            .chunks_exact(s)
            .zip(g.chunks_exact(s))
            .map(|(x, g)| {
                if s >= RUN_MIN {
                    T::grad_sums(level, g, x, mean)
                } else {
                    g.iter().zip(x).fold((0.0, 0.0), |(a, b), (&g, &x)| {
                        let g = g.to_f64();
                        (a + g, b + g * (x.to_f64() - mean))
                    })
                }
            })
            .collect();
        if let Some(gx) = gx {
            let gam = |cl: usize| value(gamma, g0 * cpg + cl, T::ONE).to_f64();
            let sum_dxhat: f64 = sums
                .iter()
                .enumerate()
                .map(|(cl, &(a, _))| gam(cl) * a)
                .sum();
            let sum_dxhat_xhat: f64 = invstd
                * sums
                    .iter()
                    .enumerate()
                    .map(|(cl, &(_, b))| gam(cl) * b)
                    .sum::<f64>();
            let b = T::from_f64(-invstd * invstd * sum_dxhat_xhat / m as f64);
            let c = T::from_f64(-invstd * sum_dxhat / m as f64);
            let mean_t = T::from_f64(mean);
            for (cl, ((gx, x), g)) in gx
                .chunks_exact_mut(s)
                .zip(x.chunks_exact(s))
                .zip(g.chunks_exact(s))
                .enumerate()
            {
                let a = T::from_f64(invstd * gam(cl));
                if s >= RUN_MIN {
                    T::grad_input(level, g, x, gx, [mean_t, a, b, c]);
                } else {
                    for ((o, &g), &x) in gx.iter_mut().zip(g).zip(x) {
                        *o = a * g + b * (x - mean_t) + c;
                    }
                }
            }
        }
        sums.into_iter().map(|(a, b)| (a, b * invstd)).collect()
    };
    let NormGrads {
        x: grad_x,
        gamma: grad_gamma,
        beta: grad_beta,
    } = grads;
    let per_row: Vec<Vec<(f64, f64)>> = match grad_x {
        Some(gx) => gx
            .par_chunks_mut(m)
            .enumerate()
            .map(|(r, gx)| row(r, Some(gx)))
            .collect(),
        None => (0..shape.rows())
            .into_par_iter()
            .map(|r| row(r, None))
            .collect(),
    };
    // Reduce over samples in a fixed order.
    let mut totals = vec![(0.0f64, 0.0f64); c];
    for (r, sums) in per_row.iter().enumerate() {
        let c0 = (r % shape.groups) * cpg;
        for (t, &(a, b)) in totals[c0..c0 + cpg].iter_mut().zip(sums) {
            t.0 += a;
            t.1 += b;
        }
    }
    if let Some(gg) = grad_gamma {
        for (o, t) in gg.iter_mut().zip(&totals) {
            *o = T::from_f64(t.1);
        }
    }
    if let Some(gb) = grad_beta {
        for (o, t) in gb.iter_mut().zip(&totals) {
            *o = T::from_f64(t.0);
        }
    }
    Ok(())
}
