//! The `f32` kernel for x86-64 with AVX2+FMA or AVX-512F: the hot path of activation
//! statistics.
//!
//! A chunk is processed in blocks of [`BLOCK_VECS`] vectors (4 or 8 KiB, so a block
//! stays in L1 between its two passes; the data comes from memory once):
//!
//! 1. **Moments pass**: the `f64` shifted sums, min/max, near-zero and saturated
//!    counts, all in registers. A non-finite value makes the block's sum of squares
//!    non-finite, so one check after the pass tells whether the block was all finite;
//!    the block's min and max tell whether every value is inside `[lo, hi)`.
//! 2. **Histogram pass**: bin indices computed in vectors with the same IEEE
//!    operations as [`Prepared::slot`]. When the block is finite and inside the range,
//!    the below/above selections are skipped; a block holding a NaN or an infinity is
//!    instead processed vector by vector, with the scalar rule for the vectors that
//!    hold one.
//!
//! Scattering one counter increment per element was the bottleneck of the old kernel
//! (a load, an increment and a store per element, serialised through store-to-load
//! forwarding on runs of equal bins such as ReLU zeros). Here the [`WINDOW`] consecutive
//! slots where most values fall (chosen from the chunk's histogram so far) are counted
//! in registers: each lane holds eight 8-bit counters in two `u32`s, incremented by an
//! entry of a small table (`vpermd` on `slot - base`) under the mask of the lanes inside
//! the window. Only the slots outside the window are packed (`vpcompressd` on AVX-512,
//! a permutation table on AVX2) and scattered after the block into rotating
//! sub-histograms. Counts are exact integers, so the choice of window changes the
//! speed, never the result.
//!
//! Moments, min/max and counts are the same IEEE operations as the scalar rule, so
//! every count agrees with the portable path exactly; the `f64` sums differ from it
//! only in summation order (blocks, lanes), which is fixed, so a result never depends
//! on the thread count.

use std::arch::x86_64::*;

use crate::cpu::dispatch::SimdLevel;

use super::prepared::{Partial, Prepared, ScalarAcc};
use super::SUB_HISTS;

/// Vectors per block: at most 255 so that the 8-bit window counters (one increment
/// per lane per vector) cannot overflow.
const BLOCK_VECS: usize = 128;

/// Consecutive histogram slots counted in registers.
const WINDOW: usize = 8;

/// The window is re-chosen from the full histogram only for at most this many slots
/// (summing the sub-histograms costs a few operations per slot).
const MAX_WINDOW_SEARCH: usize = 256;

/// Largest number of `f32` lanes (AVX-512).
const MAX_LANES: usize = 16;

/// Runs the chunk kernel at `level` if this module has one for it (AVX2+FMA or
/// AVX-512F, with POPCNT) and the CPU supports it; `None` otherwise.
///
/// `scratch` holds `1 + SUB_HISTS` rows of `bins + 2` counters (row 0 takes the window
/// counts and the scalar path's slots, the others the scattered slots); `window` is the
/// first slot of the register window, carried from chunk to chunk.
pub(super) fn chunk(
    level: SimdLevel,
    x: &[f32],
    p: &Prepared<f32>,
    scratch: &mut [u32],
    window: &mut usize,
) -> Option<Partial> {
    if !std::arch::is_x86_feature_detected!("popcnt") {
        return None;
    }
    match level.clamp_to_supported() {
        // SAFETY: `clamp_to_supported` returned Avx512, so the CPU has AVX-512F, and
        // POPCNT was detected above.
        SimdLevel::Avx512 => Some(unsafe { chunk_avx512(x, p, scratch, window) }),
        // SAFETY: `clamp_to_supported` returned Avx2Fma, so the CPU has AVX2 and FMA,
        // and POPCNT was detected above.
        SimdLevel::Avx2Fma => Some(unsafe { chunk_avx2(x, p, scratch, window) }),
        SimdLevel::Portable => None,
    }
}

/// # Safety
/// The CPU must support AVX-512F and POPCNT.
#[target_feature(enable = "avx512f,popcnt")]
unsafe fn chunk_avx512(
    x: &[f32],
    p: &Prepared<f32>,
    scratch: &mut [u32],
    window: &mut usize,
) -> Partial {
    // SAFETY: the caller guarantees AVX-512F and POPCNT.
    run(unsafe { Avx512::new_unchecked() }, x, p, scratch, window)
}

/// # Safety
/// The CPU must support AVX2, FMA and POPCNT.
#[target_feature(enable = "avx2,fma,popcnt")]
unsafe fn chunk_avx2(
    x: &[f32],
    p: &Prepared<f32>,
    scratch: &mut [u32],
    window: &mut usize,
) -> Partial {
    // SAFETY: the caller guarantees AVX2, FMA and POPCNT.
    run(unsafe { Avx2::new_unchecked() }, x, p, scratch, window)
}

/// The vector operations the kernel needs, for one instruction set. Implementors are
/// zero-sized tokens created only by the `chunk_*` entry points after the CPU check,
/// which is what every `unsafe` block in the implementations relies on.
trait Isa: Copy {
    /// `f32` lanes per vector.
    const LANES: usize;
    /// `LANES` × `f32`.
    type F: Copy;
    /// `LANES` × `i32`.
    type I: Copy;
    /// `LANES` × `f64` (accumulators).
    type D: Copy;
    /// A lane counter for [`Isa::count_lt`]: a scalar fed by mask popcounts where
    /// comparisons give masks (AVX-512), a vector of per-lane counts otherwise.
    type C: Copy;

    /// Loads `LANES` floats.
    ///
    /// # Safety
    /// `p` must be valid for reading `LANES` floats.
    unsafe fn load(self, p: *const f32) -> Self::F;
    fn splat(self, x: f32) -> Self::F;
    fn splat_i(self, x: i32) -> Self::I;
    fn abs(self, a: Self::F) -> Self::F;
    fn sub(self, a: Self::F, b: Self::F) -> Self::F;
    fn mul(self, a: Self::F, b: Self::F) -> Self::F;
    /// `if a < b { a } else { b }` (x86 `minps`).
    fn min(self, a: Self::F, b: Self::F) -> Self::F;
    /// `if a > b { a } else { b }` (x86 `maxps`).
    fn max(self, a: Self::F, b: Self::F) -> Self::F;
    /// Truncates to `i32` (values here are integral or in `[0, bins)`).
    fn trunc(self, a: Self::F) -> Self::I;
    /// Number of lanes with `a < b`.
    fn count_lt(self, acc: Self::C, a: Self::F, b: Self::F) -> Self::C;
    /// Number of lanes with `a > b`.
    fn count_gt(self, acc: Self::C, a: Self::F, b: Self::F) -> Self::C;
    /// An empty counter.
    fn c_zero(self) -> Self::C;
    /// The count.
    fn c_total(self, a: Self::C) -> u32;
    /// Whether every lane is finite.
    fn all_finite(self, a: Self::F) -> bool;
    /// `idx`, with `below` where `h < lo` and `above` where `h >= hi`.
    fn place_out_of_range(
        self,
        idx: Self::I,
        h: Self::F,
        lo: Self::F,
        hi: Self::F,
        below: Self::I,
        above: Self::I,
    ) -> Self::I;
    /// Smallest lane (no NaN).
    fn reduce_min(self, a: Self::F) -> f32;
    /// Largest lane (no NaN).
    fn reduce_max(self, a: Self::F) -> f32;

    fn d_zero(self) -> Self::D;
    fn d_splat(self, x: f64) -> Self::D;
    fn d_add(self, a: Self::D, b: Self::D) -> Self::D;
    /// `s += x - shift; q += (x - shift)^2` in `f64` (exact widening, fused square-add).
    fn d_acc(self, x: Self::F, shift: Self::D, s: &mut Self::D, q: &mut Self::D);
    /// Sum of the lanes (fixed order).
    fn d_sum(self, a: Self::D) -> f64;
    /// Whether every lane is finite (the lanes are sums of squares: >= 0 or NaN/inf).
    fn d_finite(self, a: Self::D) -> bool;

    /// Counts the lanes of `idx` whose slot is in the window starting at `base` (in
    /// every lane) into the 8-bit counters `acc` (slots `base..base + 4` in `acc.0`,
    /// the next four in `acc.1`), writes the other lanes' slots to `out` (packed) and
    /// returns how many.
    ///
    /// # Safety
    /// `out` must be valid for writing `LANES` `i32`s.
    unsafe fn split_window(
        self,
        idx: Self::I,
        base: Self::I,
        acc: &mut (Self::I, Self::I),
        out: *mut i32,
    ) -> usize;
    /// `sum over lanes of (acc >> shift) & 0xff`.
    fn field_sum(self, acc: Self::I, shift: u32) -> u32;
    fn zero_i(self) -> Self::I;
}

/// Per-chunk constants in vectors.
#[derive(Clone, Copy)]
struct Consts<I: Isa> {
    lo: I::F,
    hi: I::F,
    scale: I::F,
    last: I::F,
    zero: I::F,
    near_zero: I::F,
    saturation: I::F,
    below: I::I,
    above: I::I,
    shift: I::D,
}

/// One block's moments pass.
struct BlockMoments<I: Isa> {
    s: I::D,
    q: I::D,
    min: f32,
    max: f32,
    near_zero: u32,
    saturated: u32,
}

/// The chunk's running totals (vector accumulators and scalars).
struct ChunkAcc<I: Isa> {
    s: I::D,
    q: I::D,
    min: f32,
    max: f32,
    near_zero: u64,
    saturated: u64,
}

impl<I: Isa> ChunkAcc<I> {
    #[inline(always)]
    fn add(&mut self, isa: I, m: &BlockMoments<I>) {
        self.s = isa.d_add(self.s, m.s);
        self.q = isa.d_add(self.q, m.q);
        self.min = self.min.min(m.min);
        self.max = self.max.max(m.max);
        self.near_zero += u64::from(m.near_zero);
        self.saturated += u64::from(m.saturated);
    }
}

/// The window counters and the buffer of slots outside the window.
struct Window<I: Isa> {
    /// First slot of the window.
    base: usize,
    acc: (I::I, I::I),
    /// Slots outside the window, packed (`BLOCK_VECS` vectors and one spare).
    out: [i32; (BLOCK_VECS + 1) * MAX_LANES],
    /// Entries used in `out`.
    len: usize,
    /// Blocks to wait before the window may be re-chosen, and the wait after the next
    /// choice that leaves it where it is (doubling up to [`MAX_WINDOW_WAIT`]): a spread
    /// distribution, where no window holds 7/8 of a block, is not searched every block.
    wait: u32,
    backoff: u32,
}

/// Longest wait, in blocks, between two searches that do not move the window.
const MAX_WINDOW_WAIT: u32 = 16;

#[inline(always)]
fn run<I: Isa>(
    isa: I,
    x: &[f32],
    p: &Prepared<f32>,
    scratch: &mut [u32],
    window: &mut usize,
) -> Partial {
    let l = I::LANES;
    let n = x.len();
    let stride = p.bins + 2;
    let scratch = &mut scratch[..(1 + SUB_HISTS) * stride];
    let shift = x.iter().find(|v| v.is_finite()).map_or(0.0, |&v| v as f64);
    let c = Consts::<I> {
        lo: isa.splat(p.lo),
        hi: isa.splat(p.hi),
        scale: isa.splat(p.scale),
        last: isa.splat(p.last_bin),
        zero: isa.splat(0.0),
        near_zero: isa.splat(p.near_zero),
        saturation: isa.splat(p.saturation),
        below: isa.splat_i(p.bins as i32),
        above: isa.splat_i(p.bins as i32 + 1),
        shift: isa.d_splat(shift),
    };
    let mut scalar = ScalarAcc::new(shift);
    let mut acc = ChunkAcc::<I> {
        s: isa.d_zero(),
        q: isa.d_zero(),
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        near_zero: 0,
        saturated: 0,
    };
    let mut win = Window::<I> {
        base: (*window).min(stride.saturating_sub(WINDOW)),
        acc: (isa.zero_i(), isa.zero_i()),
        out: [0; (BLOCK_VECS + 1) * MAX_LANES],
        len: 0,
        wait: 0,
        backoff: 1,
    };
    if *window == usize::MAX {
        // No history: centre the window on the shift's slot.
        let first = if shift.is_finite() {
            p.slot(shift as f32)
        } else {
            0
        };
        win.base = first
            .saturating_sub(WINDOW / 2 - 1)
            .min(stride.saturating_sub(WINDOW));
    }

    let full = n - n % l;
    let mut start = 0;
    while start < full {
        let len = (BLOCK_VECS * l).min(full - start);
        let block = &x[start..start + len];
        if p.abs {
            block_kernel::<I, true>(isa, block, p, &c, &mut acc, &mut scalar, &mut win, scratch);
        } else {
            block_kernel::<I, false>(isa, block, p, &c, &mut acc, &mut scalar, &mut win, scratch);
        }
        scatter(&win.out[..win.len], scratch, stride);
        flush_window(isa, &mut win, scratch, stride);
        win.wait = win.wait.saturating_sub(1);
        if win.len * 8 > len && stride <= MAX_WINDOW_SEARCH && win.wait == 0 {
            let base = best_window(scratch, stride);
            win.backoff = if base == win.base {
                (2 * win.backoff).clamp(1, MAX_WINDOW_WAIT)
            } else {
                1
            };
            (win.base, win.wait) = (base, win.backoff);
        }
        win.len = 0;
        start += len;
    }
    for &e in &x[full..] {
        scalar.push(e, p, scratch, 0);
    }
    *window = win.base;

    let count = n as u64 - scalar.non_finite;
    Partial {
        count,
        shift,
        sum: isa.d_sum(acc.s) + scalar.sum,
        sum_sq: isa.d_sum(acc.q) + scalar.sum_sq,
        min: f64::from(acc.min).min(scalar.min),
        max: f64::from(acc.max).max(scalar.max),
        near_zero: acc.near_zero + scalar.near_zero,
        saturated: acc.saturated + scalar.saturated,
        non_finite: scalar.non_finite,
    }
}

/// One block (a whole number of vectors): moments, then the histogram.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn block_kernel<I: Isa, const ABS: bool>(
    isa: I,
    x: &[f32],
    p: &Prepared<f32>,
    c: &Consts<I>,
    acc: &mut ChunkAcc<I>,
    scalar: &mut ScalarAcc,
    win: &mut Window<I>,
    scratch: &mut [u32],
) {
    let m = moments(isa, x, c);
    if !isa.d_finite(m.q) {
        mixed_block::<I, ABS>(isa, x, p, c, acc, scalar, win, scratch);
        return;
    }
    acc.add(isa, &m);
    let (hmin, hmax) = if ABS {
        let hmax = (-m.min).max(m.max);
        let hmin = if m.min >= 0.0 {
            m.min
        } else if m.max <= 0.0 {
            -m.max
        } else {
            0.0
        };
        (hmin, hmax)
    } else {
        (m.min, m.max)
    };
    if !(hmin >= p.lo && hmax < p.hi) {
        histogram::<I, ABS, true, true, true>(isa, x, c, win);
        return;
    }
    let sub = p.lo != 0.0;
    // Finite here, so `>=` is the negation of `<`.
    let clamp = (hmax - p.lo) * p.scale >= p.last_bin;
    match (sub, clamp) {
        (true, true) => histogram::<I, ABS, false, true, true>(isa, x, c, win),
        (true, false) => histogram::<I, ABS, false, true, false>(isa, x, c, win),
        (false, true) => histogram::<I, ABS, false, false, true>(isa, x, c, win),
        (false, false) => histogram::<I, ABS, false, false, false>(isa, x, c, win),
    }
}

/// The moments pass over a block of whole vectors, two vectors at a time with two
/// sets of accumulators (the `f64` adds are latency-bound otherwise).
#[inline(always)]
fn moments<I: Isa>(isa: I, x: &[f32], c: &Consts<I>) -> BlockMoments<I> {
    let l = I::LANES;
    let nv = x.len() / l;
    let ptr = x.as_ptr();
    let (mut s0, mut q0, mut s1, mut q1) = (isa.d_zero(), isa.d_zero(), isa.d_zero(), isa.d_zero());
    let mut vmin = isa.splat(f32::INFINITY);
    let mut vmax = isa.splat(f32::NEG_INFINITY);
    let (mut nz, mut sat) = (isa.c_zero(), isa.c_zero());
    let mut v = 0;
    while v + 2 <= nv {
        // SAFETY: vectors v and v + 1 end at (v + 2) * l <= x.len().
        let (a, b) = unsafe { (isa.load(ptr.add(v * l)), isa.load(ptr.add((v + 1) * l))) };
        isa.d_acc(a, c.shift, &mut s0, &mut q0);
        isa.d_acc(b, c.shift, &mut s1, &mut q1);
        vmin = isa.min(isa.min(a, b), vmin);
        vmax = isa.max(isa.max(a, b), vmax);
        let (aa, ab) = (isa.abs(a), isa.abs(b));
        nz = isa.count_lt(isa.count_lt(nz, aa, c.near_zero), ab, c.near_zero);
        sat = isa.count_gt(isa.count_gt(sat, aa, c.saturation), ab, c.saturation);
        v += 2;
    }
    if v < nv {
        // SAFETY: vector v ends at (v + 1) * l <= x.len().
        let a = unsafe { isa.load(ptr.add(v * l)) };
        isa.d_acc(a, c.shift, &mut s0, &mut q0);
        vmin = isa.min(a, vmin);
        vmax = isa.max(a, vmax);
        let aa = isa.abs(a);
        nz = isa.count_lt(nz, aa, c.near_zero);
        sat = isa.count_gt(sat, aa, c.saturation);
    }
    BlockMoments {
        s: isa.d_add(s0, s1),
        q: isa.d_add(q0, q1),
        min: isa.reduce_min(vmin),
        max: isa.reduce_max(vmax),
        near_zero: isa.c_total(nz),
        saturated: isa.c_total(sat),
    }
}

/// The slot of every lane of `v` (all finite), as [`Prepared::slot`] computes it.
///
/// With `CHECK`, the full rule (clamping, below and above). Without it, the block's
/// range check has established that every `h` is inside `[lo, hi)`, so `t = (h - lo) *
/// scale >= 0` (truncation is the floor) and no lane is below or above; `SUB` is
/// false when `lo == 0` (then `h - lo == h` exactly) and `CLAMP` false when the
/// block's largest `t` is below `bins - 1` (rounding is monotonic, so every `t` is).
#[inline(always)]
fn slots<I: Isa, const ABS: bool, const CHECK: bool, const SUB: bool, const CLAMP: bool>(
    isa: I,
    v: I::F,
    c: &Consts<I>,
) -> I::I {
    let h = if ABS { isa.abs(v) } else { v };
    if CHECK {
        let t = isa.min(isa.mul(isa.sub(h, c.lo), c.scale), c.last);
        let idx = isa.trunc(isa.max(c.zero, t));
        return isa.place_out_of_range(idx, h, c.lo, c.hi, c.below, c.above);
    }
    let d = if SUB { isa.sub(h, c.lo) } else { h };
    let t = isa.mul(d, c.scale);
    isa.trunc(if CLAMP { isa.min(t, c.last) } else { t })
}

/// The histogram pass over a block of finite values (see [`slots`] for the flags).
#[inline(always)]
fn histogram<I: Isa, const ABS: bool, const CHECK: bool, const SUB: bool, const CLAMP: bool>(
    isa: I,
    x: &[f32],
    c: &Consts<I>,
    win: &mut Window<I>,
) {
    let l = I::LANES;
    let nv = x.len() / l;
    let base = isa.splat_i(win.base as i32);
    let mut len = win.len;
    let out = win.out.as_mut_ptr();
    for v in 0..nv {
        // SAFETY: vector v ends at (v + 1) * l <= x.len().
        let x = unsafe { isa.load(x.as_ptr().add(v * l)) };
        let idx = slots::<I, ABS, CHECK, SUB, CLAMP>(isa, x, c);
        // SAFETY: at most `l` entries are added per vector and there are at most
        // BLOCK_VECS vectors, so `len + l <= (BLOCK_VECS + 1) * MAX_LANES`.
        len += unsafe { isa.split_window(idx, base, &mut win.acc, out.add(len)) };
    }
    win.len = len;
}

/// A block holding a NaN or an infinity: vector by vector, the all-finite vectors as
/// usual, the others one element at a time by the scalar rule.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn mixed_block<I: Isa, const ABS: bool>(
    isa: I,
    x: &[f32],
    p: &Prepared<f32>,
    c: &Consts<I>,
    acc: &mut ChunkAcc<I>,
    scalar: &mut ScalarAcc,
    win: &mut Window<I>,
    scratch: &mut [u32],
) {
    let l = I::LANES;
    for v in x.chunks_exact(l) {
        // SAFETY: `v` holds exactly `l` floats.
        let a = unsafe { isa.load(v.as_ptr()) };
        if isa.all_finite(a) {
            let m = moments(isa, v, c);
            acc.add(isa, &m);
            histogram::<I, ABS, true, true, true>(isa, v, c, win);
        } else {
            for &e in v {
                scalar.push(e, p, scratch, 0);
            }
        }
    }
}

/// Adds the packed out-of-window slots to sub-histograms 1..=SUB_HISTS of `scratch`,
/// rotating so that runs of one slot do not wait on one counter.
#[inline(always)]
fn scatter(slots: &[i32], scratch: &mut [u32], stride: usize) {
    let (_, rows) = scratch.split_at_mut(stride);
    let mut groups = slots.chunks_exact(SUB_HISTS);
    for g in &mut groups {
        for (row, &s) in rows.chunks_exact_mut(stride).zip(g) {
            // Checked: a slot outside the row would be a bug, never a wild write.
            row[s as usize] += 1;
        }
    }
    for (row, &s) in rows.chunks_exact_mut(stride).zip(groups.remainder()) {
        row[s as usize] += 1;
    }
}

/// Moves the window counters into row 0 of `scratch` and zeroes them.
#[inline(always)]
fn flush_window<I: Isa>(isa: I, win: &mut Window<I>, scratch: &mut [u32], stride: usize) {
    for f in 0..4 {
        for (half, acc) in [(0, win.acc.0), (4, win.acc.1)] {
            let slot = win.base + half + f;
            if slot < stride {
                scratch[slot] += isa.field_sum(acc, 8 * f as u32);
            }
        }
    }
    win.acc = (isa.zero_i(), isa.zero_i());
}

/// The start of the `WINDOW` consecutive slots with the most values so far.
fn best_window(scratch: &[u32], stride: usize) -> usize {
    let mut total = [0u32; MAX_WINDOW_SEARCH];
    let total = &mut total[..stride];
    for row in scratch.chunks_exact(stride) {
        for (t, &c) in total.iter_mut().zip(row) {
            *t += c;
        }
    }
    if stride <= WINDOW {
        return 0;
    }
    let mut sum: u32 = total[..WINDOW].iter().sum();
    let (mut best, mut best_sum) = (0, sum);
    for b in 1..=stride - WINDOW {
        sum = sum + total[b + WINDOW - 1] - total[b - 1];
        if sum > best_sum {
            (best, best_sum) = (b, sum);
        }
    }
    best
}

/// The window increments: entry `r` of the first table is `1 << 8r` for `r < 4`, of
/// the second `1 << 8(r - 4)` for `4 <= r < 8`, zero elsewhere.
const WINDOW_TABLES: [[i32; 16]; 2] = {
    let mut t = [[0i32; 16]; 2];
    let mut r = 0;
    while r < WINDOW {
        t[r / 4][r] = 1 << (8 * (r % 4));
        r += 1;
    }
    t
};

/// [`WINDOW_TABLES`] as AVX-512 vectors.
///
/// # Safety
/// The CPU must support AVX-512F.
#[inline(always)]
unsafe fn window_tables_512() -> (__m512i, __m512i) {
    // SAFETY: the caller guarantees AVX-512F; each table holds 16 i32s.
    unsafe {
        (
            _mm512_loadu_si512(WINDOW_TABLES[0].as_ptr().cast()),
            _mm512_loadu_si512(WINDOW_TABLES[1].as_ptr().cast()),
        )
    }
}

/// The first 8 entries of [`WINDOW_TABLES`] as AVX2 vectors.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
unsafe fn window_tables_256() -> (__m256i, __m256i) {
    // SAFETY: the caller guarantees AVX; each table holds at least 8 i32s.
    unsafe {
        (
            _mm256_loadu_si256(WINDOW_TABLES[0].as_ptr().cast()),
            _mm256_loadu_si256(WINDOW_TABLES[1].as_ptr().cast()),
        )
    }
}

/// AVX-512F token: 16 lanes.
#[derive(Clone, Copy)]
struct Avx512 {
    _private: (),
}

impl Avx512 {
    /// # Safety
    /// The CPU must support AVX-512F and POPCNT.
    unsafe fn new_unchecked() -> Self {
        Self { _private: () }
    }
}

impl Isa for Avx512 {
    const LANES: usize = 16;
    type F = __m512;
    type I = __m512i;
    type D = (__m512d, __m512d);
    type C = u32;

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: the token proves AVX-512F; the caller guarantees 16 readable floats.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m512i {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_set1_epi32(x) }
    }
    #[inline(always)]
    fn zero_i(self) -> __m512i {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_setzero_si512() }
    }
    #[inline(always)]
    fn abs(self, a: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F (`vpandd` on the bits).
        unsafe {
            _mm512_castsi512_ps(_mm512_and_si512(
                _mm512_castps_si512(a),
                _mm512_set1_epi32(0x7fff_ffff),
            ))
        }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn trunc(self, a: __m512) -> __m512i {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_cvttps_epi32(a) }
    }
    #[inline(always)]
    fn count_lt(self, acc: u32, a: __m512, b: __m512) -> u32 {
        // SAFETY: the token proves AVX-512F (and POPCNT for count_ones).
        acc + unsafe { u32::from(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(a, b)).count_ones() }
    }
    #[inline(always)]
    fn count_gt(self, acc: u32, a: __m512, b: __m512) -> u32 {
        // SAFETY: the token proves AVX-512F (and POPCNT for count_ones).
        acc + unsafe { u32::from(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, b)).count_ones() }
    }
    #[inline(always)]
    fn c_zero(self) -> u32 {
        0
    }
    #[inline(always)]
    fn c_total(self, a: u32) -> u32 {
        a
    }
    #[inline(always)]
    fn all_finite(self, a: __m512) -> bool {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.abs(a), _mm512_set1_ps(f32::INFINITY)) == 0xffff
        }
    }
    #[inline(always)]
    fn place_out_of_range(
        self,
        idx: __m512i,
        h: __m512,
        lo: __m512,
        hi: __m512,
        below: __m512i,
        above: __m512i,
    ) -> __m512i {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            let idx = _mm512_mask_mov_epi32(idx, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(h, lo), below);
            _mm512_mask_mov_epi32(idx, _mm512_cmp_ps_mask::<_CMP_GE_OQ>(h, hi), above)
        }
    }
    #[inline(always)]
    fn reduce_min(self, a: __m512) -> f32 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_min_ps(a) }
    }
    #[inline(always)]
    fn reduce_max(self, a: __m512) -> f32 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_max_ps(a) }
    }
    #[inline(always)]
    fn d_zero(self) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_setzero_pd(), _mm512_setzero_pd()) }
    }
    #[inline(always)]
    fn d_splat(self, x: f64) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_set1_pd(x), _mm512_set1_pd(x)) }
    }
    #[inline(always)]
    fn d_add(self, a: (__m512d, __m512d), b: (__m512d, __m512d)) -> (__m512d, __m512d) {
        // SAFETY: the token proves AVX-512F.
        unsafe { (_mm512_add_pd(a.0, b.0), _mm512_add_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn d_acc(
        self,
        x: __m512,
        shift: (__m512d, __m512d),
        s: &mut (__m512d, __m512d),
        q: &mut (__m512d, __m512d),
    ) {
        // SAFETY: the token proves AVX-512F (the upper half is extracted as 4 × f64,
        // an AVX-512F instruction, and reinterpreted as 8 × f32).
        unsafe {
            let lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
            let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(
                _mm512_castps_pd(x),
            )));
            let (dl, dh) = (_mm512_sub_pd(lo, shift.0), _mm512_sub_pd(hi, shift.1));
            s.0 = _mm512_add_pd(s.0, dl);
            s.1 = _mm512_add_pd(s.1, dh);
            q.0 = _mm512_fmadd_pd(dl, dl, q.0);
            q.1 = _mm512_fmadd_pd(dh, dh, q.1);
        }
    }
    #[inline(always)]
    fn d_sum(self, a: (__m512d, __m512d)) -> f64 {
        // SAFETY: the token proves AVX-512F.
        unsafe { _mm512_reduce_add_pd(_mm512_add_pd(a.0, a.1)) }
    }
    #[inline(always)]
    fn d_finite(self, a: (__m512d, __m512d)) -> bool {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            _mm512_cmp_pd_mask::<_CMP_LT_OQ>(_mm512_add_pd(a.0, a.1), _mm512_set1_pd(f64::INFINITY))
                == 0xff
        }
    }
    #[inline(always)]
    unsafe fn split_window(
        self,
        idx: __m512i,
        base: __m512i,
        acc: &mut (__m512i, __m512i),
        out: *mut i32,
    ) -> usize {
        // SAFETY: the token proves AVX-512F and POPCNT; the caller guarantees 16
        // writable i32s at `out` (the compressed store writes a full vector).
        unsafe {
            // r = slot - base; `vpermd` reads its low 4 bits, so the lanes outside the
            // window (r >= 8 unsigned, which includes r < 0) are masked off.
            let r = _mm512_sub_epi32(idx, base);
            let inside = _mm512_cmplt_epu32_mask(r, _mm512_set1_epi32(WINDOW as i32));
            let (t0, t1) = window_tables_512();
            acc.0 = _mm512_mask_add_epi32(acc.0, inside, acc.0, _mm512_permutexvar_epi32(r, t0));
            acc.1 = _mm512_mask_add_epi32(acc.1, inside, acc.1, _mm512_permutexvar_epi32(r, t1));
            let outside = !inside;
            _mm512_storeu_si512(out.cast(), _mm512_maskz_compress_epi32(outside, idx));
            u32::from(outside).count_ones() as usize
        }
    }
    #[inline(always)]
    fn field_sum(self, acc: __m512i, shift: u32) -> u32 {
        // SAFETY: the token proves AVX-512F.
        unsafe {
            let f = _mm512_and_si512(
                _mm512_srlv_epi32(acc, _mm512_set1_epi32(shift as i32)),
                _mm512_set1_epi32(0xff),
            );
            _mm512_reduce_add_epi32(f) as u32
        }
    }
}

/// AVX2+FMA token: 8 lanes.
#[derive(Clone, Copy)]
struct Avx2 {
    _private: (),
}

impl Avx2 {
    /// # Safety
    /// The CPU must support AVX2, FMA and POPCNT.
    unsafe fn new_unchecked() -> Self {
        Self { _private: () }
    }
}

/// `PACK[m]` lists the lanes set in the 8-bit mask `m`, in order, then zeros: the
/// `vpermd` indices that pack those lanes to the front (AVX2 has no compress).
static PACK: [[u32; 8]; 256] = {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut lane, mut k) = (0, 0);
        while lane < 8 {
            if m & (1 << lane) != 0 {
                t[m][k] = lane as u32;
                k += 1;
            }
            lane += 1;
        }
        m += 1;
    }
    t
};

impl Isa for Avx2 {
    const LANES: usize = 8;
    type F = __m256;
    type I = __m256i;
    type D = (__m256d, __m256d);
    type C = __m256i;

    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: the token proves AVX; the caller guarantees 8 readable floats.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn splat_i(self, x: i32) -> __m256i {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_set1_epi32(x) }
    }
    #[inline(always)]
    fn zero_i(self) -> __m256i {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_setzero_si256() }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff))) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn trunc(self, a: __m256) -> __m256i {
        // SAFETY: the token proves AVX.
        unsafe { _mm256_cvttps_epi32(a) }
    }
    #[inline(always)]
    fn count_lt(self, acc: __m256i, a: __m256, b: __m256) -> __m256i {
        // SAFETY: the token proves AVX2 (a true comparison is -1 in its lane).
        unsafe { _mm256_sub_epi32(acc, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(a, b))) }
    }
    #[inline(always)]
    fn count_gt(self, acc: __m256i, a: __m256, b: __m256) -> __m256i {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sub_epi32(acc, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(a, b))) }
    }
    #[inline(always)]
    fn c_zero(self) -> __m256i {
        self.zero_i()
    }
    #[inline(always)]
    fn c_total(self, a: __m256i) -> u32 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let h = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
            let h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            let h = _mm_add_epi32(h, _mm_shuffle_epi32::<1>(h));
            _mm_cvtsi128_si32(h) as u32
        }
    }
    #[inline(always)]
    fn all_finite(self, a: __m256) -> bool {
        // SAFETY: the token proves AVX.
        unsafe {
            let m = _mm256_cmp_ps::<_CMP_LT_OQ>(self.abs(a), _mm256_set1_ps(f32::INFINITY));
            _mm256_movemask_ps(m) == 0xff
        }
    }
    #[inline(always)]
    fn place_out_of_range(
        self,
        idx: __m256i,
        h: __m256,
        lo: __m256,
        hi: __m256,
        below: __m256i,
        above: __m256i,
    ) -> __m256i {
        // SAFETY: the token proves AVX2.
        unsafe {
            let b = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(h, lo));
            let a = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(h, hi));
            let idx = _mm256_blendv_epi8(idx, below, b);
            _mm256_blendv_epi8(idx, above, a)
        }
    }
    #[inline(always)]
    fn reduce_min(self, a: __m256) -> f32 {
        // SAFETY: the token proves AVX.
        unsafe {
            let m = _mm_min_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let m = _mm_min_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_min_ss(m, _mm_shuffle_ps::<1>(m, m));
            _mm_cvtss_f32(m)
        }
    }
    #[inline(always)]
    fn reduce_max(self, a: __m256) -> f32 {
        // SAFETY: the token proves AVX.
        unsafe {
            let m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps::<1>(a));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_shuffle_ps::<1>(m, m));
            _mm_cvtss_f32(m)
        }
    }
    #[inline(always)]
    fn d_zero(self) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX.
        unsafe { (_mm256_setzero_pd(), _mm256_setzero_pd()) }
    }
    #[inline(always)]
    fn d_splat(self, x: f64) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX.
        unsafe { (_mm256_set1_pd(x), _mm256_set1_pd(x)) }
    }
    #[inline(always)]
    fn d_add(self, a: (__m256d, __m256d), b: (__m256d, __m256d)) -> (__m256d, __m256d) {
        // SAFETY: the token proves AVX.
        unsafe { (_mm256_add_pd(a.0, b.0), _mm256_add_pd(a.1, b.1)) }
    }
    #[inline(always)]
    fn d_acc(
        self,
        x: __m256,
        shift: (__m256d, __m256d),
        s: &mut (__m256d, __m256d),
        q: &mut (__m256d, __m256d),
    ) {
        // SAFETY: the token proves AVX and FMA.
        unsafe {
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(x));
            let (dl, dh) = (_mm256_sub_pd(lo, shift.0), _mm256_sub_pd(hi, shift.1));
            s.0 = _mm256_add_pd(s.0, dl);
            s.1 = _mm256_add_pd(s.1, dh);
            q.0 = _mm256_fmadd_pd(dl, dl, q.0);
            q.1 = _mm256_fmadd_pd(dh, dh, q.1);
        }
    }
    #[inline(always)]
    fn d_sum(self, a: (__m256d, __m256d)) -> f64 {
        // SAFETY: the token proves AVX.
        unsafe {
            let v = _mm256_add_pd(a.0, a.1);
            let h = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd::<1>(v));
            _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)))
        }
    }
    #[inline(always)]
    fn d_finite(self, a: (__m256d, __m256d)) -> bool {
        // SAFETY: the token proves AVX.
        unsafe {
            let v = _mm256_add_pd(a.0, a.1);
            _mm256_movemask_pd(_mm256_cmp_pd::<_CMP_LT_OQ>(
                v,
                _mm256_set1_pd(f64::INFINITY),
            )) == 0xf
        }
    }
    #[inline(always)]
    unsafe fn split_window(
        self,
        idx: __m256i,
        base: __m256i,
        acc: &mut (__m256i, __m256i),
        out: *mut i32,
    ) -> usize {
        // SAFETY: the token proves AVX2 and POPCNT; the caller guarantees 8 writable
        // i32s at `out`; `PACK` has an entry for every 8-bit mask.
        unsafe {
            // r = slot - base; inside the window when 0 <= r < 8, i.e. r >> 3 == 0 as
            // a logical shift. `vpermd` reads the low 3 bits of r; the lanes outside
            // the window are masked off.
            let r = _mm256_sub_epi32(idx, base);
            let inside = _mm256_cmpeq_epi32(_mm256_srli_epi32::<3>(r), _mm256_setzero_si256());
            let (t0, t1) = window_tables_256();
            let a0 = _mm256_and_si256(_mm256_permutevar8x32_epi32(t0, r), inside);
            let a1 = _mm256_and_si256(_mm256_permutevar8x32_epi32(t1, r), inside);
            acc.0 = _mm256_add_epi32(acc.0, a0);
            acc.1 = _mm256_add_epi32(acc.1, a1);
            let outside = !(_mm256_movemask_ps(_mm256_castsi256_ps(inside)) as u32) & 0xff;
            let perm = _mm256_loadu_si256(PACK.get_unchecked(outside as usize).as_ptr().cast());
            _mm256_storeu_si256(out.cast(), _mm256_permutevar8x32_epi32(idx, perm));
            outside.count_ones() as usize
        }
    }
    #[inline(always)]
    fn field_sum(self, acc: __m256i, shift: u32) -> u32 {
        // SAFETY: the token proves AVX2.
        unsafe {
            let f = _mm256_and_si256(
                _mm256_srl_epi32(acc, _mm_cvtsi32_si128(shift as i32)),
                _mm256_set1_epi32(0xff),
            );
            let h = _mm_add_epi32(_mm256_castsi256_si128(f), _mm256_extracti128_si256::<1>(f));
            let h = _mm_add_epi32(h, _mm_unpackhi_epi64(h, h));
            let h = _mm_add_epi32(h, _mm_shuffle_epi32::<1>(h));
            _mm_cvtsi128_si32(h) as u32
        }
    }
}
