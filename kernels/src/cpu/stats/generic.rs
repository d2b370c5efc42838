//! The kernel written once over the crate's [`Simd`] backends: the path for `f64`
//! input, for the portable level, and for CPUs without the x86 `f32` kernels.

use crate::cpu::simd::{self, sealed::Sealed, Simd, WithSimd};

use super::prepared::{Partial, Prepared, ScalarAcc};
use super::{Float, SUB_HISTS};

/// The statistics of one chunk (at most [`CHUNK`](super::CHUNK) elements, so `u32` counters cannot
/// overflow), with the histogram scattered into `scratch`.
pub(super) struct ChunkKernel<'a, T> {
    pub(super) x: &'a [T],
    pub(super) p: &'a Prepared<T>,
    pub(super) scratch: &'a mut [u32],
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
        let mut acc = ScalarAcc::new(shift);

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
