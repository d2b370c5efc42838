//! The `f32` kernel in plain Rust for the portable level (and every CPU without the x86
//! kernels): the block structure of the x86 kernel without intrinsics.
//!
//! Per block of [`BLOCK`] values, a moments pass keeps [`LANES`] independent
//! accumulators in arrays (`f64` sums, min/max, counts), element-wise code that the
//! compiler vectorises for the baseline instruction set (SSE2, NEON) without changing a
//! single rounding; then, when the block is finite and inside the range, a histogram
//! pass with no below/above or non-finite branch that scatters into rotating
//! sub-histograms. Other blocks take the scalar rule element by element.

use super::prepared::{Partial, Prepared, ScalarAcc};
use super::SUB_HISTS;

/// Accumulator lanes of the moments pass.
const LANES: usize = 8;

/// Values per block (a multiple of [`LANES`]; 4 KiB, so the second pass reads L1).
const BLOCK: usize = 1024;

/// The statistics of one chunk (at most `CHUNK` values) of `f32`, with the histogram in
/// rows 1..=SUB_HISTS (and row 0 for the scalar rule) of `scratch`.
pub(super) fn chunk(x: &[f32], p: &Prepared<f32>, scratch: &mut [u32]) -> Partial {
    let stride = p.bins + 2;
    let scratch = &mut scratch[..(1 + SUB_HISTS) * stride];
    let shift = x
        .iter()
        .find(|v| v.is_finite())
        .map_or(0.0, |&v| f64::from(v));
    let mut scalar = ScalarAcc::new(shift);
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    let (mut near_zero, mut saturated) = (0u64, 0u64);
    let full = x.len() - x.len() % LANES;
    for block in x[..full].chunks(BLOCK) {
        let m = moments(block, p, shift);
        if !m.sum_sq.is_finite() {
            // A NaN or an infinity (the sum of squares of finite f32 values cannot
            // overflow an f64): the scalar rule, element by element.
            for &e in block {
                scalar.push(e, p, scratch, 0);
            }
            continue;
        }
        sum += m.sum;
        sum_sq += m.sum_sq;
        min = min.min(m.min);
        max = max.max(m.max);
        near_zero += m.near_zero;
        saturated += m.saturated;
        let (hmin, hmax) = if p.abs {
            let hmin = if m.min >= 0.0 {
                m.min
            } else if m.max <= 0.0 {
                -m.max
            } else {
                0.0
            };
            (hmin, (-m.min).max(m.max))
        } else {
            (m.min, m.max)
        };
        if hmin >= p.lo && hmax < p.hi {
            in_range(block, p, scratch);
        } else {
            let (_, rows) = scratch.split_at_mut(stride);
            for (i, &e) in block.iter().enumerate() {
                rows[(i % SUB_HISTS) * stride + p.slot(e)] += 1;
            }
        }
    }
    for &e in &x[full..] {
        scalar.push(e, p, scratch, 0);
    }
    Partial {
        count: x.len() as u64 - scalar.non_finite,
        shift,
        sum: sum + scalar.sum,
        sum_sq: sum_sq + scalar.sum_sq,
        min: f64::from(min).min(scalar.min),
        max: f64::from(max).max(scalar.max),
        near_zero: near_zero + scalar.near_zero,
        saturated: saturated + scalar.saturated,
        non_finite: scalar.non_finite,
    }
}

/// One block's moments pass.
struct Moments {
    sum: f64,
    sum_sq: f64,
    min: f32,
    max: f32,
    near_zero: u64,
    saturated: u64,
}

/// The moments of a block whose length is a multiple of [`LANES`], lane by lane.
#[inline(always)]
fn moments(x: &[f32], p: &Prepared<f32>, shift: f64) -> Moments {
    let mut s = [0.0f64; LANES];
    let mut q = [0.0f64; LANES];
    let mut mn = [f32::INFINITY; LANES];
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut nz = [0u32; LANES];
    let mut sat = [0u32; LANES];
    for v in x.chunks_exact(LANES) {
        for j in 0..LANES {
            let e = v[j];
            let d = f64::from(e) - shift;
            s[j] += d;
            q[j] += d * d;
            mn[j] = if e < mn[j] { e } else { mn[j] };
            mx[j] = if e > mx[j] { e } else { mx[j] };
            let a = e.abs();
            nz[j] += u32::from(a < p.near_zero);
            sat[j] += u32::from(a > p.saturation);
        }
    }
    Moments {
        sum: s.iter().sum(),
        sum_sq: q.iter().sum(),
        min: mn.iter().copied().fold(f32::INFINITY, f32::min),
        max: mx.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        near_zero: nz.iter().map(|&c| u64::from(c)).sum(),
        saturated: sat.iter().map(|&c| u64::from(c)).sum(),
    }
}

/// The histogram of a finite block inside `[lo, hi)`: [`Prepared::slot`] without its
/// below/above branches (`t >= 0`, so the truncation is the floor).
#[inline(always)]
fn in_range(x: &[f32], p: &Prepared<f32>, scratch: &mut [u32]) {
    let stride = p.bins + 2;
    let (_, rows) = scratch.split_at_mut(stride);
    for v in x.chunks_exact(SUB_HISTS) {
        for (j, &e) in v.iter().enumerate() {
            let h = if p.abs { e.abs() } else { e };
            let t = (h - p.lo) * p.scale;
            let t = if t < p.last_bin { t } else { p.last_bin };
            // t is in [0, bins - 1] (at most 2^20), so the cheap `i32` conversion is
            // exact; the indexing stays checked, so a bug is never a wild write.
            rows[j * stride + t as i32 as usize] += 1;
        }
    }
}
