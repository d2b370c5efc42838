//! What every path of the kernel shares: the configuration converted to the element
//! type ([`Prepared`]), the per-element rule ([`Prepared::slot`], [`ScalarAcc`]) that
//! the vector paths must reproduce exactly, and one chunk's result ([`Partial`]).

use crate::cpu::simd::sealed::Sealed;
use crate::error::{KernelError, Result};

use super::{Float, StatsConfig};

/// One chunk's result, before it is folded into a [`Stats`](super::Stats). The histogram, `below`
/// and `above` counts stay in the sub-histogram scratch.
#[derive(Clone, Copy, Debug)]
pub(super) struct Partial {
    pub(super) count: u64,
    /// The chunk's shift: sums are of `x - shift`.
    pub(super) shift: f64,
    pub(super) sum: f64,
    pub(super) sum_sq: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) near_zero: u64,
    pub(super) saturated: u64,
    pub(super) non_finite: u64,
}

/// A configuration converted to the element type, with the histogram slot values.
#[derive(Clone, Copy, Debug)]
pub(super) struct Prepared<T> {
    pub(super) lo: T,
    pub(super) hi: T,
    pub(super) scale: T,
    pub(super) last_bin: T,
    pub(super) below_slot: T,
    pub(super) above_slot: T,
    pub(super) near_zero: T,
    pub(super) saturation: T,
    pub(super) abs: bool,
    pub(super) bins: usize,
}

impl<T: Float> Prepared<T> {
    /// Converts a (validated) configuration to `T`; errors if the range collapses or
    /// the bin scale overflows in `T`.
    pub(super) fn new(cfg: &StatsConfig) -> Result<Self> {
        cfg.validate()?;
        let (lo, hi) = (T::from_f64(cfg.lo), T::from_f64(cfg.hi));
        let scale = T::from_f64(cfg.bins as f64 / (hi.to_f64() - lo.to_f64()));
        let ok = lo < hi
            && Sealed::is_finite(lo)
            && Sealed::is_finite(hi)
            && Sealed::is_finite(scale)
            && scale > T::ZERO;
        if !ok {
            return Err(KernelError::InvalidArgument {
                op: "stats",
                detail: format!(
                    "histogram range [{}, {}) with {} bins is not representable in {}",
                    cfg.lo,
                    cfg.hi,
                    cfg.bins,
                    T::NAME
                ),
            });
        }
        Ok(Self {
            lo,
            hi,
            scale,
            last_bin: T::from_f64((cfg.bins - 1) as f64),
            below_slot: T::from_f64(cfg.bins as f64),
            above_slot: T::from_f64((cfg.bins + 1) as f64),
            near_zero: T::from_f64(cfg.near_zero),
            saturation: T::from_f64(cfg.saturation),
            abs: cfg.abs,
            bins: cfg.bins,
        })
    }

    /// The histogram slot of a finite value: a bin, `bins` (below) or `bins + 1`
    /// (above). The same IEEE operations as the vector path, so the same slot.
    #[inline(always)]
    pub(super) fn slot(&self, x: T) -> usize {
        let h = if self.abs { Sealed::abs(x) } else { x };
        if h < self.lo {
            return self.bins;
        }
        if h >= self.hi {
            return self.bins + 1;
        }
        let t = (h - self.lo) * self.scale;
        let t = if t < self.last_bin { t } else { self.last_bin };
        let t = if T::ZERO > t { T::ZERO } else { t };
        // t is in [0, bins - 1]: truncation is the floor.
        t.to_f64() as usize
    }
}

/// Scalar accumulators for elements outside the vector loop (tails and vectors that
/// hold a non-finite value).
pub(super) struct ScalarAcc {
    pub(super) shift: f64,
    pub(super) sum: f64,
    pub(super) sum_sq: f64,
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) near_zero: u64,
    pub(super) saturated: u64,
    pub(super) non_finite: u64,
}

impl ScalarAcc {
    /// Empty accumulators for sums of `x - shift`.
    pub(super) fn new(shift: f64) -> Self {
        Self {
            shift,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            near_zero: 0,
            saturated: 0,
            non_finite: 0,
        }
    }

    /// Adds one value: a non-finite one is only counted; a finite one goes into the
    /// moments, min/max, the thresholds and the histogram slot row `sub` of
    /// `scratch` (rows of `bins + 2` counters).
    #[inline(always)]
    pub(super) fn push<T: Float>(
        &mut self,
        x: T,
        p: &Prepared<T>,
        scratch: &mut [u32],
        sub: usize,
    ) {
        if !Sealed::is_finite(x) {
            self.non_finite += 1;
            return;
        }
        let xf = x.to_f64();
        let d = xf - self.shift;
        self.sum += d;
        self.sum_sq += d * d;
        // x is finite here, so plain comparisons suffice (no NaN handling).
        if xf < self.min {
            self.min = xf;
        }
        if xf > self.max {
            self.max = xf;
        }
        let a = Sealed::abs(x);
        self.near_zero += u64::from(a < p.near_zero);
        self.saturated += u64::from(a > p.saturation);
        scratch[sub * (p.bins + 2) + p.slot(x)] += 1;
    }
}
