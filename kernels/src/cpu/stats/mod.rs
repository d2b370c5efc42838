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
//! # Implementation
//!
//! - `prepared`: the configuration in the element type and the per-element rule
//!   (`Prepared::slot`, `ScalarAcc`) that every path reproduces exactly.
//! - `x86` (`f32` at the AVX2+FMA and AVX-512 levels, the hot path of activation
//!   statistics): per L1-sized block, a moments pass and a histogram pass whose
//!   commonest slots are counted in registers; see that module for the paths (in-range
//!   blocks, out-of-range blocks, blocks holding a NaN or an infinity).
//! - `portable` (`f32` at the portable level and on CPUs without the x86 kernels): the
//!   same block structure in plain Rust, with lane arrays the compiler vectorises.
//! - `generic`: the statistics written once over the crate's SIMD backends, for `f64`.
//!
//! Every path gives the same counts, min and max, bit for bit; the `f64` moments differ
//! between paths only in summation order (see `kernels/tests/stats.rs`, which checks
//! every path against a naive reference at every level the CPU has).
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

mod generic;
mod portable;
mod prepared;
#[cfg(target_arch = "x86_64")]
mod x86;

use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::simd::{self, sealed::Sealed};
use crate::error::{KernelError, Result};

use generic::ChunkKernel;
use prepared::{Partial, Prepared};

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

/// The statistics of one chunk at `level`, its histogram left in `scratch` (see
/// [`accumulate_serial`]); `window` is the x86 kernel's hint carried between chunks.
fn chunk_partial<T: Float>(
    level: SimdLevel,
    x: &[T],
    p: &Prepared<T>,
    scratch: &mut [u32],
    window: &mut usize,
) -> Partial {
    if let (Some(x32), Some(p32)) = (
        <T as Sealed>::as_f32_slice(x),
        (p as &dyn std::any::Any).downcast_ref::<Prepared<f32>>(),
    ) {
        #[cfg(target_arch = "x86_64")]
        if let Some(part) = x86::chunk(level, x32, p32, scratch, window) {
            return part;
        }
        return portable::chunk(x32, p32, scratch);
    }
    let _ = window;
    simd::dispatch(level, ChunkKernel { x, p, scratch })
}

/// Accumulates `x` into `acc` chunk by chunk on this thread.
fn accumulate_serial<T: Float>(level: SimdLevel, acc: &mut Stats, x: &[T], p: &Prepared<T>) {
    // Row 0 and SUB_HISTS rotating rows of `bins + 2` slots (bins, below, above).
    let len = (1 + SUB_HISTS) * (p.bins + 2);
    let mut stack = [0u32; (1 + SUB_HISTS) * (STACK_BINS + 2)];
    let mut heap = Vec::new();
    let scratch: &mut [u32] = if p.bins <= STACK_BINS {
        &mut stack[..len]
    } else {
        heap.resize(len, 0);
        &mut heap
    };
    let mut window = usize::MAX;
    for chunk in x.chunks(CHUNK) {
        let part = chunk_partial(level, chunk, p, scratch, &mut window);
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
