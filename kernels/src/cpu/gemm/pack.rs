//! Packing: copying a block of A or B into the order the micro-kernel reads it.
//!
//! Packing is what makes strides free: whatever the layout of the operand (row-major,
//! column-major, transposed, a slice of a bigger matrix), the micro-kernel always reads
//! one contiguous, aligned stream. Packing also zero-pads the last panel, so the
//! micro-kernel never needs a bounds check in its inner loop.

use super::kernel::LanePacker;
use super::raw::RawRef;
use super::Element;

/// Number of elements [`pack`] writes for `rows x depth` in panels of `w` rows.
#[inline]
pub(crate) fn packed_len(rows: usize, depth: usize, w: usize) -> usize {
    rows.div_ceil(w) * w * depth
}

/// Packs the `rows x depth` block `src` into panels of `w` rows.
///
/// Panel `q` holds, for each `p` in `0..depth`, the `w` values
/// `src[q * w .. q * w + w, p]`, rows past `rows` being zero. A is packed with `w = MR`
/// (rows of A, depth along k); B is packed as its transpose with `w = NR`.
///
/// Full slivers of a source with contiguous lanes (`src.cs == 1`) go through
/// `lane_packer` (a kernel's SIMD transposing copy) when it accepts them.
///
/// # Safety
/// Every element `(i, p)` with `i < rows`, `p < depth` of `src` is readable,
/// `dst.len() >= packed_len(rows, depth, w)`, and `lane_packer` may run on this CPU.
#[inline(always)] // so `w` is a constant in each kernel's driver and the copies unroll
pub(crate) unsafe fn pack<T: Element>(
    src: RawRef<T>,
    rows: usize,
    depth: usize,
    w: usize,
    dst: &mut [T],
    lane_packer: LanePacker<T>,
) {
    let panels = dst[..packed_len(rows, depth, w)].chunks_exact_mut(w * depth);
    for (q, panel) in panels.enumerate() {
        let r0 = q * w;
        let h = w.min(rows - r0);
        let base = src.at(r0, 0);
        if src.rs == 1 {
            // Column-contiguous source: each step p is one contiguous run of h values.
            for (p, out) in panel.chunks_exact_mut(w).enumerate() {
                // SAFETY: with rs == 1, elements (r0..r0 + h, p) are contiguous and in
                // range (caller's contract).
                let run = unsafe { std::slice::from_raw_parts(base.ptr.add(p * src.cs), h) };
                if h == w {
                    // The common case, separate so the copy has a constant length.
                    out.copy_from_slice(run);
                } else {
                    out[..h].copy_from_slice(run);
                    out[h..].fill(T::ZERO);
                }
            }
        } else if src.cs == 1
            && h == w
            // SAFETY: the sliver's elements are in range (caller's contract), and the
            // panel holds w * depth elements.
            && unsafe { lane_packer(base.ptr, src.rs, w, depth, panel) }
        {
            // Packed by the kernel's SIMD path.
        } else if src.cs == 1 && h == w {
            // Row-contiguous source, full sliver: gather one step from every row at a
            // time, so the stores stay sequential.
            for (p, out) in panel.chunks_exact_mut(w).enumerate() {
                for (i, o) in out.iter_mut().enumerate() {
                    // SAFETY: (r0 + i, p) is in range (caller's contract).
                    *o = unsafe { *base.ptr.add(i * src.rs + p) };
                }
            }
        } else if src.cs == 1 {
            // Row-contiguous source: read each row once, scatter it with stride w.
            for i in 0..h {
                // SAFETY: with cs == 1, row r0 + i's elements 0..depth are contiguous and
                // in range (caller's contract).
                let row = unsafe { std::slice::from_raw_parts(base.ptr.add(i * src.rs), depth) };
                for (out, &v) in panel[i..].iter_mut().step_by(w).zip(row) {
                    *out = v;
                }
            }
            if h < w {
                for out in panel.chunks_exact_mut(w) {
                    out[h..].fill(T::ZERO);
                }
            }
        } else {
            // General strides (including stride 0 of a broadcast operand).
            for (p, out) in panel.chunks_exact_mut(w).enumerate() {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = if i < h {
                        // SAFETY: (r0 + i, p) is in range (caller's contract).
                        unsafe { *base.ptr.add(i * src.rs + p * src.cs) }
                    } else {
                        T::ZERO
                    };
                }
            }
        }
    }
}
