//! Batch normalisation and group normalisation forward/backward kernels, in f32 (fast
//! path) and f64 (the exact path gradient checks use).
//!
//! Both kernels view their input as `(N, C, S)`, dense row-major: `S = H * W` for 2-d
//! feature maps, `S = 1` for `(N, C)` activations.
//!
//! - **Batch norm** ([`BatchNormShape`]) normalises each channel over `N * S` values:
//!   [`batch_norm_forward_train`] (batch statistics, saved for the backward pass),
//!   [`batch_norm_update_running_stats`] (momentum update, PyTorch's convention),
//!   [`batch_norm_forward_eval`] (running statistics), [`batch_norm_backward`] and
//!   [`batch_norm_backward_eval`].
//! - **Group norm** ([`GroupNormShape`]) normalises each `(sample, group)` over its
//!   `C / G * S` values and then applies a per-channel affine map:
//!   [`group_norm_forward`], [`group_norm_backward`]. With `G = 1` it is the lesson's
//!   LayerNorm (view the input as `(N, 1, C*H*W)` for a scalar affine, or `(N, D, 1)` for
//!   PyTorch's per-feature one); with `G = C` it is InstanceNorm.
//!
//! # Numerics
//!
//! Statistics are accumulated in f64 as *shifted* sums, `sum(x - K)` and `sum((x -
//! K)^2)` with `K` the group's first value, so the variance does not cancel
//! catastrophically the way a naive f32 `E[x^2] - E[x]^2` does; the relative error of the
//! variance is about `1e-16 * ((K - mean) / std)^2`. Normalisation and the input gradient
//! are then computed in the element type. The backward sums `sum(g)` and `sum(g * (x -
//! mean))` are also accumulated in f64.
//!
//! # Passes
//!
//! The training forward reads x once for the statistics and once more to write the
//! output; the backward reads `(x, grad_out)` once for the two sums and once more to
//! write the input gradient.
//!
//! Batch norm walks the tensor front to back in memory order, in contiguous units of at
//! least 2^16 values that run in parallel with rayon; each unit adds into its own
//! per-channel (or per-position) accumulators, and the units' partial sums are added in
//! unit order, so results do not depend on the thread count. Long sequential streams are
//! what the hardware prefetchers serve best: walking channel by channel instead (each
//! channel is `N` runs of `S` values, `C * S` apart) was 2-2.7x slower at the lesson's
//! (256, 64, 14, 14), even though it read each value from DRAM only once. Group norm's
//! units are whole `(sample, group)` rows, contiguous already; each makes both of its
//! passes back to back, the second reading from L2.
//!
//! # SIMD
//!
//! The `*_at` variants take an explicit [`SimdLevel`]. The f32 loops over long runs are
//! hand-written with AVX-512 / AVX2+FMA intrinsics; the batch-norm loops over short runs
//! (`S < 64`, where whole samples are processed position by position) and the f64 loops are portable
//! Rust compiled once per level with `#[target_feature]` so the compiler vectorises them
//! for that level.
//!
//! ```
//! use kernels::cpu::norm::{batch_norm_forward_train, Affine, BatchNormShape, NormStatsMut};
//! // Two samples of one channel with two positions each: values 1, 3, 5, 7.
//! let shape = BatchNormShape::new(2, 1, 2).unwrap();
//! let x = [1.0f32, 3.0, 5.0, 7.0];
//! let (mut y, mut mean, mut invstd) = ([0.0f32; 4], [0.0f32], [0.0f32]);
//! let save = NormStatsMut { mean: &mut mean, invstd: &mut invstd };
//! batch_norm_forward_train(&shape, &x, Affine::identity(), 0.0, &mut y, save).unwrap();
//! assert_eq!(mean, [4.0]);
//! assert!((invstd[0] - 1.0 / 5f32.sqrt()).abs() < 1e-7); // biased variance 5
//! assert!((y[0] + 3.0 / 5f32.sqrt()).abs() < 1e-6);
//! ```

mod batch;
mod group;
pub mod reference;
mod simd;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use batch::{
    batch_norm_backward, batch_norm_backward_at, batch_norm_backward_eval,
    batch_norm_backward_eval_at, batch_norm_eval_invstd, batch_norm_forward_eval,
    batch_norm_forward_eval_at, batch_norm_forward_train, batch_norm_forward_train_at,
    batch_norm_update_running_stats, BatchNormShape,
};
pub use group::{
    group_norm_backward, group_norm_backward_at, group_norm_forward, group_norm_forward_at,
    GroupNormShape,
};

#[cfg(doc)]
use crate::cpu::dispatch::SimdLevel;
use crate::error::{KernelError, Result};

/// Element types the normalisation kernels are implemented for: `f32` (the fast path) and
/// `f64` (the exact path used by gradient checks). Sealed: no other type can implement it.
pub trait NormScalar: simd::Prims {}

impl NormScalar for f32 {}
impl NormScalar for f64 {}

/// Optional per-channel affine parameters `y = gamma * xhat + beta`; `None` stands for
/// the identity (`gamma = 1`, `beta = 0`).
#[derive(Debug)]
pub struct Affine<'a, T> {
    /// Per-channel scale (`C` values), or `None` for 1.
    pub gamma: Option<&'a [T]>,
    /// Per-channel shift (`C` values), or `None` for 0.
    pub beta: Option<&'a [T]>,
}

impl<T> Clone for Affine<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Affine<'_, T> {}

impl<'a, T> Affine<'a, T> {
    /// Both a scale and a shift.
    pub fn new(gamma: &'a [T], beta: &'a [T]) -> Self {
        Self {
            gamma: Some(gamma),
            beta: Some(beta),
        }
    }

    /// No affine map (`gamma = 1`, `beta = 0`).
    pub fn identity() -> Self {
        Self {
            gamma: None,
            beta: None,
        }
    }
}

/// Statistics saved by a training forward pass (one value per normalised group): the
/// mean and `1 / sqrt(var + eps)` with the biased variance.
#[derive(Debug)]
pub struct NormStats<'a, T> {
    /// Per-group mean.
    pub mean: &'a [T],
    /// Per-group inverse standard deviation `1 / sqrt(var + eps)`.
    pub invstd: &'a [T],
}

impl<T> Clone for NormStats<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for NormStats<'_, T> {}

/// Where a training forward pass writes its statistics (see [`NormStats`]).
#[derive(Debug)]
pub struct NormStatsMut<'a, T> {
    /// Per-group mean, written.
    pub mean: &'a mut [T],
    /// Per-group `1 / sqrt(var + eps)`, written.
    pub invstd: &'a mut [T],
}

impl<T> NormStatsMut<'_, T> {
    /// A read-only view of the same statistics.
    pub fn as_stats(&self) -> NormStats<'_, T> {
        NormStats {
            mean: self.mean,
            invstd: self.invstd,
        }
    }
}

/// Running (evaluation-mode) per-channel statistics of a batch norm.
#[derive(Debug)]
pub struct RunningStats<'a, T> {
    /// Running mean (`C` values).
    pub mean: &'a [T],
    /// Running unbiased variance (`C` values).
    pub var: &'a [T],
}

impl<T> Clone for RunningStats<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for RunningStats<'_, T> {}

/// Running statistics to update in place (see [`batch_norm_update_running_stats`]).
#[derive(Debug)]
pub struct RunningStatsMut<'a, T> {
    /// Running mean (`C` values), updated.
    pub mean: &'a mut [T],
    /// Running unbiased variance (`C` values), updated.
    pub var: &'a mut [T],
}

/// The gradients a normalisation backward pass writes; each is optional so callers that
/// need only some of them skip the rest (without `x`, the second pass over the data is
/// skipped).
#[derive(Debug)]
pub struct NormGrads<'a, T> {
    /// Gradient with respect to the input (same shape as the input), overwritten.
    pub x: Option<&'a mut [T]>,
    /// Gradient with respect to `gamma` (`C` values), overwritten.
    pub gamma: Option<&'a mut [T]>,
    /// Gradient with respect to `beta` (`C` values), overwritten.
    pub beta: Option<&'a mut [T]>,
}

impl<T> Default for NormGrads<'_, T> {
    fn default() -> Self {
        Self {
            x: None,
            gamma: None,
            beta: None,
        }
    }
}

/// Errors unless `got == expected`, naming the argument and the shape.
fn check_len(
    op: &'static str,
    what: &str,
    expected: usize,
    got: usize,
    shape: &dyn std::fmt::Debug,
) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(KernelError::SizeMismatch {
            op,
            detail: format!("{what} has {got} elements but {shape:?} needs {expected}"),
        })
    }
}

/// Checks an optional per-channel slice.
fn check_opt<T>(
    op: &'static str,
    what: &str,
    expected: usize,
    v: Option<&[T]>,
    shape: &dyn std::fmt::Debug,
) -> Result<()> {
    v.map_or(Ok(()), |v| check_len(op, what, expected, v.len(), shape))
}

/// Errors unless `eps` is finite and non-negative.
fn check_eps(op: &'static str, eps: f64) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(KernelError::InvalidArgument {
            op,
            detail: format!("eps must be finite and >= 0, got {eps}"),
        })
    }
}

/// Mean and `1 / sqrt(var + eps)` from shifted sums `s = sum(x - shift)` and
/// `q = sum((x - shift)^2)` over `count` values (biased variance, clamped at 0).
fn mean_invstd(shift: f64, s: f64, q: f64, count: f64, eps: f64) -> (f64, f64) {
    let d = s / count;
    let var = (q / count - d * d).max(0.0);
    (shift + d, 1.0 / (var + eps).sqrt())
}
