//! Fused one-pass statistics of a slice: count, mean and variance (accumulated in
//! `f64`), min, max, a histogram, and the counts of near-zero, saturated and
//! non-finite values.
//!
//! This is the kernel behind activation and gradient statistics: hooks call it on every
//! watched tensor every batch, so it reads the data once, vectorises the histogram, and
//! runs in parallel on large slices. Its results are mergeable ([`Stats::merge`]), so
//! a strided tensor can feed it one contiguous run at a time and parallel chunks can be
//! combined.
//!
//! # What is counted where
//!
//! - NaN and ±infinity are counted in [`Stats::non_finite`] and excluded from every
//!   other statistic (count, moments, min/max, histogram, near-zero, saturated).
//! - The histogram has [`StatsConfig::bins`] equal bins over `[lo, hi)`. A value `h`
//!   (`h = x`, or `|x|` when [`StatsConfig::abs`] is set) goes to bin
//!   `floor((h - lo) * bins / (hi - lo))`, evaluated in the input's precision and
//!   clamped to `0..bins` for `lo <= h < hi`. Values below `lo` are counted in
//!   [`Stats::below`] and values at or above `hi` in [`Stats::above`]; they are **not**
//!   folded into the edge bins. When `lo`, `hi` and the bin width are exactly
//!   representable (the default `[-10, 10)` with 40 bins of 0.5 is), a value exactly
//!   on an edge lands in the bin that starts there, and `hi` itself counts as above.
//!   For `f32` input, `lo`, `hi` and the thresholds are rounded to `f32` first.
//! - [`Stats::near_zero`] counts `|x| < near_zero`; [`Stats::saturated`] counts
//!   `|x| > saturation` (tanh units near ±1).
//! - The moments are accumulated in `f64` around a shift (the first finite value of
//!   each 65536-element chunk), then chunks are combined with Chan et al.'s pairwise
//!   update. There is no `E[x^2] - E[x]^2` cancellation: a constant `1e4` plus noise
//!   of `1e-3` gets its variance right (see `kernels/tests/stats.rs`).
//! - Min and max ignore the `abs` option (they are of `x`).
//!
//! The data is processed in fixed 65536-element chunks, in parallel on the rayon pool
//! when there are at least two, and the chunk results are merged in order: the result
//! does not depend on the number of threads.
//!
//! ```
//! use kernels::cpu::stats::{stats, StatsConfig};
//! let cfg = StatsConfig { bins: 4, lo: 0.0, hi: 4.0, ..StatsConfig::default() };
//! let s = stats(&[0.5f32, 1.0, 1.5, 3.0, 4.0, -1.0, f32::NAN], &cfg)?;
//! assert_eq!(s.count(), 6);
//! assert_eq!(s.histogram(), &[1, 2, 0, 1]);
//! assert_eq!((s.below(), s.above(), s.non_finite()), (1, 1, 1));
//! assert_eq!(s.min(), Some(-1.0));
//! assert!((s.mean() - 1.5).abs() < 1e-12);
//! # Ok::<(), kernels::KernelError>(())
//! ```

use rayon::prelude::*;

use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::simd::{self, sealed::Sealed, Simd, WithSimd};
use crate::error::{KernelError, Result};

pub use crate::cpu::simd::Float;

/// Elements per chunk: the unit of SIMD accumulation, of parallel work, and of the
/// shifted-sum precision. Fixed so results do not depend on the thread count.
const CHUNK: usize = 1 << 16;

/// Sub-histograms the scatter rotates through, so that runs of equal bins (ReLU
/// zeros) do not serialise on one counter's store-to-load latency. A power of two.
const SUB_HISTS: usize = 8;

/// Largest `bins` whose sub-histograms live on the stack (larger ones allocate).
const STACK_BINS: usize = 126;

/// Largest accepted `bins` (bin indices are computed exactly in `f32`).
pub const MAX_BINS: usize = 1 << 20;

/// What [`stats`] computes besides the moments: the histogram and the thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatsConfig {
    /// Number of histogram bins (1 to [`MAX_BINS`]).
    pub bins: usize,
    /// Lower edge of the histogram (inclusive, finite).
    pub lo: f64,
    /// Upper edge of the histogram (exclusive, finite, greater than `lo`).
    pub hi: f64,
    /// Values with `|x| < near_zero` are counted as near zero (dead units). `0`
    /// disables the count; must not be NaN or negative.
    pub near_zero: f64,
    /// Values with `|x| > saturation` are counted as saturated (tanh units near ±1).
    /// `f64::INFINITY` disables the count; must not be NaN or negative.
    pub saturation: f64,
    /// Histogram `|x|` instead of `x` (e.g. over `[0, 10)` for magnitudes).
    pub abs: bool,
}

impl Default for StatsConfig {
    /// 40 bins of width 0.5 over `[-10, 10)` (signed values; the lesson's histograms
    /// use 40 bins), near zero below `1e-3`, saturated above `0.97`.
    fn default() -> Self {
        Self {
            bins: 40,
            lo: -10.0,
            hi: 10.0,
            near_zero: 1e-3,
            saturation: 0.97,
            abs: false,
        }
    }
}

impl StatsConfig {
    /// Checks the configuration: `bins` in `1..=MAX_BINS`, finite `lo < hi`, and
    /// thresholds that are not NaN or negative. The error names the field and value.
    ///
    /// ```
    /// use kernels::cpu::stats::StatsConfig;
    /// assert!(StatsConfig::default().validate().is_ok());
    /// let bad = StatsConfig { lo: 1.0, hi: 1.0, ..StatsConfig::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("lo < hi"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        let err = |detail: String| {
            Err(KernelError::InvalidArgument {
                op: "stats",
                detail,
            })
        };
        if self.bins == 0 || self.bins > MAX_BINS {
            return err(format!("bins must be in 1..={MAX_BINS}, got {}", self.bins));
        }
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return err(format!(
                "histogram range needs finite lo < hi, got lo = {}, hi = {}",
                self.lo, self.hi
            ));
        }
        if self.near_zero.is_nan() || self.near_zero < 0.0 {
            return err(format!("near_zero must be >= 0, got {}", self.near_zero));
        }
        if self.saturation.is_nan() || self.saturation < 0.0 {
            return err(format!("saturation must be >= 0, got {}", self.saturation));
        }
        Ok(())
    }

    /// Width of one histogram bin, `(hi - lo) / bins`.
    pub fn bin_width(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }

    /// The `bins + 1` bin edges `lo, lo + w, .., hi` (for plot axes).
    pub fn bin_edges(&self) -> Vec<f64> {
        let w = self.bin_width();
        (0..=self.bins)
            .map(|k| {
                if k == self.bins {
                    self.hi
                } else {
                    self.lo + k as f64 * w
                }
            })
            .collect()
    }
}

/// The statistics of everything accumulated so far (see the module docs for what is
/// counted where). Build one with [`stats`] or [`Stats::empty`] + [`accumulate`];
/// combine with [`Stats::merge`].
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    config: StatsConfig,
    /// Finite values accumulated.
    count: u64,
    /// Their mean.
    mean: f64,
    /// Sum of squared deviations from `mean`.
    m2: f64,
    /// Smallest finite value (`+inf` when `count == 0`).
    min: f64,
    /// Largest finite value (`-inf` when `count == 0`).
    max: f64,
    histogram: Vec<u64>,
    below: u64,
    above: u64,
    near_zero: u64,
    saturated: u64,
    non_finite: u64,
}

impl Stats {
    /// An empty accumulator for `config` (validated).
    pub fn empty(config: &StatsConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self::empty_unchecked(config))
    }

    fn empty_unchecked(config: &StatsConfig) -> Self {
        Self {
            config: *config,
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            histogram: vec![0; config.bins],
            below: 0,
            above: 0,
            near_zero: 0,
            saturated: 0,
            non_finite: 0,
        }
    }

    /// Statistics assembled from totals computed elsewhere (the CUDA kernel): `mean` and
    /// `m2` (sum of squared deviations from the mean) describe the `count` finite
    /// values; with `count == 0` min and max are reset to their empty values.
    #[cfg(feature = "cuda")]
    pub(crate) fn from_totals(config: &StatsConfig, t: Totals, histogram: Vec<u64>) -> Self {
        let empty = t.count == 0;
        Self {
            config: *config,
            count: t.count,
            mean: if empty { 0.0 } else { t.mean },
            m2: if empty { 0.0 } else { t.m2 },
            min: if empty { f64::INFINITY } else { t.min },
            max: if empty { f64::NEG_INFINITY } else { t.max },
            histogram,
            below: t.below,
            above: t.above,
            near_zero: t.near_zero,
            saturated: t.saturated,
            non_finite: t.non_finite,
        }
    }

    /// Resets to empty, keeping the configuration and the histogram's allocation.
    pub fn clear(&mut self) {
        let hist = std::mem::take(&mut self.histogram);
        *self = Self {
            histogram: hist,
            ..Self::empty_unchecked(&self.config)
        };
        self.histogram.iter_mut().for_each(|h| *h = 0);
    }

    /// The configuration these statistics were gathered with.
    pub fn config(&self) -> &StatsConfig {
        &self.config
    }

    /// Number of finite values (the ones every other statistic describes).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Number of values seen, finite or not (`count + non_finite`).
    pub fn len(&self) -> u64 {
        self.count + self.non_finite
    }

    /// Whether no value at all has been accumulated.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Mean of the finite values (NaN when there are none).
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.mean
        }
    }

    /// Sum of the finite values.
    pub fn sum(&self) -> f64 {
        self.mean * self.count as f64
    }

    /// Sum of the squares of the finite values.
    pub fn sum_sq(&self) -> f64 {
        self.m2 + self.mean * self.mean * self.count as f64
    }

    /// Population variance `sum((x - mean)^2) / count` (NaN when empty).
    pub fn var(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.m2 / self.count as f64
        }
    }

    /// Sample variance with Bessel's correction, `/ (count - 1)` (NaN below 2 values).
    pub fn sample_var(&self) -> f64 {
        if self.count < 2 {
            f64::NAN
        } else {
            self.m2 / (self.count - 1) as f64
        }
    }

    /// Population standard deviation (NaN when empty).
    pub fn std(&self) -> f64 {
        self.var().sqrt()
    }

    /// Smallest finite value, if any.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest finite value, if any.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Bin counts over `[lo, hi)` (`config().bins` entries).
    pub fn histogram(&self) -> &[u64] {
        &self.histogram
    }

    /// Finite values below `lo` (not in the histogram).
    pub fn below(&self) -> u64 {
        self.below
    }

    /// Finite values at or above `hi` (not in the histogram).
    pub fn above(&self) -> u64 {
        self.above
    }

    /// Finite values with `|x| < near_zero`.
    pub fn near_zero(&self) -> u64 {
        self.near_zero
    }

    /// Finite values with `|x| > saturation`.
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// NaN and infinite values (excluded from everything else).
    pub fn non_finite(&self) -> u64 {
        self.non_finite
    }

    /// `near_zero / count` (NaN when empty): the dead-unit fraction.
    pub fn near_zero_fraction(&self) -> f64 {
        self.near_zero as f64 / self.count as f64
    }

    /// `saturated / count` (NaN when empty).
    pub fn saturated_fraction(&self) -> f64 {
        self.saturated as f64 / self.count as f64
    }

    /// Adds `n` values with the given mean and sum of squared deviations (Chan et al.).
    fn merge_moments(&mut self, n: u64, mean: f64, m2: f64) {
        if n == 0 {
            return;
        }
        if self.count == 0 {
            (self.count, self.mean, self.m2) = (n, mean, m2);
            return;
        }
        let (na, nb) = (self.count as f64, n as f64);
        let total = na + nb;
        let delta = mean - self.mean;
        self.mean += delta * (nb / total);
        self.m2 += m2 + delta * delta * (na * nb / total);
        self.count += n;
    }

    /// Adds the statistics of `other` to `self`, as if its values had been accumulated
    /// here: counts and histograms add exactly, min/max combine, and the moments use
    /// the pairwise update (equal to a single pass up to rounding).
    ///
    /// Errors if the two were gathered with different configurations.
    ///
    /// ```
    /// use kernels::cpu::stats::{stats, StatsConfig};
    /// let cfg = StatsConfig::default();
    /// let mut a = stats(&[1.0f32, 2.0], &cfg)?;
    /// a.merge(&stats(&[3.0f32, 4.0], &cfg)?)?;
    /// assert_eq!(a.count(), 4);
    /// assert!((a.var() - 1.25).abs() < 1e-12);
    /// # Ok::<(), kernels::KernelError>(())
    /// ```
    pub fn merge(&mut self, other: &Stats) -> Result<()> {
        if self.config != other.config || self.histogram.len() != other.histogram.len() {
            return Err(KernelError::InvalidArgument {
                op: "Stats::merge",
                detail: format!(
                    "configurations differ: {:?} vs {:?}",
                    self.config, other.config
                ),
            });
        }
        self.merge_moments(other.count, other.mean, other.m2);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        for (a, b) in self.histogram.iter_mut().zip(&other.histogram) {
            *a += *b;
        }
        self.below += other.below;
        self.above += other.above;
        self.near_zero += other.near_zero;
        self.saturated += other.saturated;
        self.non_finite += other.non_finite;
        Ok(())
    }

    /// Folds one chunk's partial result and its sub-histograms into `self`, then
    /// zeroes the sub-histograms for the next chunk.
    fn fold(&mut self, part: &Partial, scratch: &mut [u32]) {
        if part.count > 0 {
            let n = part.count as f64;
            let mean = part.shift + part.sum / n;
            let m2 = (part.sum_sq - part.sum * (part.sum / n)).max(0.0);
            self.merge_moments(part.count, mean, m2);
            self.min = self.min.min(part.min);
            self.max = self.max.max(part.max);
        }
        let bins = self.histogram.len();
        for sub in scratch.chunks_exact_mut(bins + 2) {
            for (h, c) in self.histogram.iter_mut().zip(&sub[..bins]) {
                *h += u64::from(*c);
            }
            self.below += u64::from(sub[bins]);
            self.above += u64::from(sub[bins + 1]);
            sub.iter_mut().for_each(|c| *c = 0);
        }
        self.near_zero += part.near_zero;
        self.saturated += part.saturated;
        self.non_finite += part.non_finite;
    }
}

/// Totals computed outside this module (by the CUDA kernel), for
/// [`Stats::from_totals`].
#[cfg(feature = "cuda")]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Totals {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) m2: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) below: u64,
    pub(crate) above: u64,
    pub(crate) near_zero: u64,
    pub(crate) saturated: u64,
    pub(crate) non_finite: u64,
}

/// One chunk's result, before it is folded into a [`Stats`]. The histogram, `below`
/// and `above` counts stay in the sub-histogram scratch.
#[derive(Clone, Copy, Debug)]
struct Partial {
    count: u64,
    /// The chunk's shift: sums are of `x - shift`.
    shift: f64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    near_zero: u64,
    saturated: u64,
    non_finite: u64,
}

/// A configuration converted to the element type, with the histogram slot values.
#[derive(Clone, Copy, Debug)]
struct Prepared<T> {
    lo: T,
    hi: T,
    scale: T,
    last_bin: T,
    below_slot: T,
    above_slot: T,
    near_zero: T,
    saturation: T,
    abs: bool,
    bins: usize,
}

impl<T: Float> Prepared<T> {
    /// Converts a (validated) configuration to `T`; errors if the range collapses or
    /// the bin scale overflows in `T`.
    fn new(cfg: &StatsConfig) -> Result<Self> {
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
    fn slot(&self, x: T) -> usize {
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
struct ScalarAcc {
    shift: f64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    near_zero: u64,
    saturated: u64,
    non_finite: u64,
}

impl ScalarAcc {
    #[inline(always)]
    fn push<T: Float>(&mut self, x: T, p: &Prepared<T>, scratch: &mut [u32], sub: usize) {
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

/// The statistics of one chunk (at most [`CHUNK`] elements, so `u32` counters cannot
/// overflow), with the histogram scattered into `scratch`.
struct ChunkKernel<'a, T> {
    x: &'a [T],
    p: &'a Prepared<T>,
    scratch: &'a mut [u32],
}

impl<T: Float> WithSimd<T> for ChunkKernel<'_, T> {
    type Output = Partial;

    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) -> Partial {
        let (x, p, scratch) = (self.x, self.p, self.scratch);
        let l = S::LANES;
        let n = x.len();
        let stride = p.bins + 2;
        let shift = x
            .iter()
            .find(|v| Sealed::is_finite(**v))
            .map_or(0.0, |v| v.to_f64());
        let mut acc = ScalarAcc {
            shift,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            near_zero: 0,
            saturated: 0,
            non_finite: 0,
        };

        let (inf, zero) = (s.splat(T::INFINITY), s.splat(T::ZERO));
        let (lo, hi, scale, last) = (
            s.splat(p.lo),
            s.splat(p.hi),
            s.splat(p.scale),
            s.splat(p.last_bin),
        );
        let (below, above) = (s.splat(p.below_slot), s.splat(p.above_slot));
        let (nz, sat) = (s.splat(p.near_zero), s.splat(p.saturation));
        let shift_w = s.w_splat(shift);
        let mut vmin = inf;
        let mut vmax = s.neg(inf);
        let (mut ws, mut wq) = (s.w_zero(), s.w_zero());
        // Counts as float lanes (exact: at most CHUNK per lane, below 2^24).
        let (mut near_zero, mut saturated) = (zero, zero);
        // Lane j scatters into sub-histogram j % SUB_HISTS; that sub-histogram's
        // offset is added to the (integral) bin index in the vector.
        let mut offsets = [T::ZERO; simd::MAX_LANES];
        for (j, o) in offsets.iter_mut().enumerate() {
            *o = T::from_f64(((j % SUB_HISTS) * stride) as f64);
        }
        // SAFETY: `offsets` holds MAX_LANES >= LANES elements.
        let offsets = unsafe { s.load(offsets.as_ptr()) };
        let scratch = &mut scratch[..SUB_HISTS * stride];
        let mut idx = [0i32; simd::MAX_LANES];
        let mut rot = 0usize;

        let mut i = 0;
        if l == 1 {
            // The portable backend: plain scalar code with (mostly) predictable
            // branches; the vector formulation below would branch on every select.
            i = n;
            for (j, &e) in x.iter().enumerate() {
                acc.push(e, p, scratch, j & (SUB_HISTS - 1));
            }
        }
        while i + l <= n {
            // SAFETY: `i + l <= n`, so the load reads inside `x`.
            let v = unsafe { s.load(x.as_ptr().add(i)) };
            let a = s.abs(v);
            if !s.all(s.lt(a, inf)) {
                // Rare: a NaN or infinity in this vector; take it one element at a time.
                for (j, &e) in x[i..i + l].iter().enumerate() {
                    acc.push(e, p, scratch, (rot + j) & (SUB_HISTS - 1));
                }
                rot += l;
                i += l;
                continue;
            }
            vmin = s.min(vmin, v);
            vmax = s.max(vmax, v);
            let d = s.w_sub(s.w_widen(v), shift_w);
            ws = s.w_add(ws, d);
            wq = s.w_mul_add(d, d, wq);
            near_zero = s.add_one_where(near_zero, s.lt(a, nz));
            saturated = s.add_one_where(saturated, s.gt(a, sat));

            let h = if p.abs { a } else { v };
            // Clamp into [0, last] first (min/max return their second operand for a
            // NaN, so even a NaN would land on a valid slot), then floor.
            let t = s.min(s.mul(s.sub(h, lo), scale), last);
            let f = s.floor(s.max(zero, t));
            let f = s.select(s.lt(h, lo), below, f);
            let f = s.select(s.ge(h, hi), above, f);
            let f = s.add(f, offsets);
            // SAFETY: `idx` holds MAX_LANES >= LANES i32s; the lanes are integers below
            // SUB_HISTS * stride (at most 8 * (MAX_BINS + 2)), within i32.
            unsafe { s.store_index(idx.as_mut_ptr(), f) };
            // Read the indices back from memory (cheap loads) rather than letting the
            // compiler extract them lane by lane from the register (two uops each on
            // one port, which made extraction the bottleneck).
            let idx = std::hint::black_box(&idx);
            for &b in &idx[..l] {
                // SAFETY: each lane is a slot in 0..=bins+1 (clamped and selected above)
                // plus its sub-histogram offset (j % SUB_HISTS) * stride, so it is below
                // SUB_HISTS * stride = scratch.len().
                unsafe { *scratch.get_unchecked_mut(b as usize) += 1 };
            }
            rot += l;
            i += l;
        }
        for (j, &e) in x[i..].iter().enumerate() {
            acc.push(e, p, scratch, (rot + j) & (SUB_HISTS - 1));
        }
        let near_zero = s.reduce_add(near_zero).to_f64() as u64;
        let saturated = s.reduce_add(saturated).to_f64() as u64;

        let count = (n as u64) - acc.non_finite;
        let (vmin, vmax) = (s.reduce_min(vmin).to_f64(), s.reduce_max(vmax).to_f64());
        Partial {
            count,
            shift,
            sum: s.w_sum(ws) + acc.sum,
            sum_sq: s.w_sum(wq) + acc.sum_sq,
            min: vmin.min(acc.min),
            max: vmax.max(acc.max),
            near_zero: near_zero + acc.near_zero,
            saturated: saturated + acc.saturated,
            non_finite: acc.non_finite,
        }
    }
}

/// Accumulates `x` into `acc` chunk by chunk on this thread.
fn accumulate_serial<T: Float>(level: SimdLevel, acc: &mut Stats, x: &[T], p: &Prepared<T>) {
    let len = SUB_HISTS * (p.bins + 2);
    let mut stack = [0u32; SUB_HISTS * (STACK_BINS + 2)];
    let mut heap = Vec::new();
    let scratch: &mut [u32] = if p.bins <= STACK_BINS {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    for chunk in x.chunks(CHUNK) {
        let part = simd::dispatch(
            level,
            ChunkKernel {
                x: chunk,
                p,
                scratch: &mut *scratch,
            },
        );
        acc.fold(&part, scratch);
    }
}

/// Statistics of `x` at the active SIMD level. See [`stats_at`].
///
/// ```
/// use kernels::cpu::stats::{stats, StatsConfig};
/// let x: Vec<f32> = (0..1000).map(|i| i as f32 / 100.0 - 5.0).collect();
/// let s = stats(&x, &StatsConfig::default())?;
/// assert_eq!(s.count(), 1000);
/// assert_eq!(s.histogram().iter().sum::<u64>(), 1000);
/// assert!((s.std() - 2.8867).abs() < 1e-3);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn stats<T: Float>(x: &[T], config: &StatsConfig) -> Result<Stats> {
    stats_at(dispatch::active(), x, config)
}

/// Statistics of `x` at an explicit SIMD level; errors if `config` is invalid
/// ([`StatsConfig::validate`]) or its range is not representable in `T`.
pub fn stats_at<T: Float>(level: SimdLevel, x: &[T], config: &StatsConfig) -> Result<Stats> {
    let mut acc = Stats::empty(config)?;
    accumulate_at(level, &mut acc, x)?;
    Ok(acc)
}

/// Adds the values of `x` to `acc` at the active SIMD level. See [`accumulate_at`].
///
/// ```
/// use kernels::cpu::stats::{accumulate, Stats, StatsConfig};
/// let mut acc = Stats::empty(&StatsConfig::default())?;
/// for run in [[1.0f32, 2.0], [3.0, 4.0]] {
///     accumulate(&mut acc, &run)?; // e.g. the contiguous runs of a strided tensor
/// }
/// assert_eq!(acc.count(), 4);
/// assert_eq!(acc.mean(), 2.5);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn accumulate<T: Float>(acc: &mut Stats, x: &[T]) -> Result<()> {
    accumulate_at(dispatch::active(), acc, x)
}

/// Adds the values of `x` to `acc` at an explicit SIMD level.
///
/// Slices shorter than two chunks (131072 elements) are processed on the calling
/// thread without allocating (for up to 126 bins; more bins allocate a scratch
/// histogram per call). Longer slices are split into chunks processed in parallel,
/// each with its own `Stats`, merged in order. Errors if `acc`'s configuration is not
/// representable in `T`.
pub fn accumulate_at<T: Float>(level: SimdLevel, acc: &mut Stats, x: &[T]) -> Result<()> {
    let p = Prepared::<T>::new(&acc.config)?;
    if x.len() < 2 * CHUNK {
        accumulate_serial(level, acc, x, &p);
        return Ok(());
    }
    let config = acc.config;
    let parts: Vec<Stats> = x
        .par_chunks(CHUNK)
        .map(|chunk| {
            let mut part = Stats::empty_unchecked(&config);
            accumulate_serial(level, &mut part, chunk, &p);
            part
        })
        .collect();
    for part in &parts {
        acc.merge(part)?;
    }
    Ok(())
}
