//! The micro-kernel contract and the portable micro-kernel.
//!
//! A micro-kernel multiplies one packed `MR x kc` sliver of A by one packed `kc x NR`
//! sliver of B, keeping the `MR x NR` product in registers, and merges
//! `alpha * product` into a tile of C. Everything else in gemm (blocking, packing,
//! threads) is shared; only this inner loop differs between instruction sets.

use super::Element;

/// Where a micro-kernel writes its result: a `rows x cols` corner (at most `MR x NR`)
/// of C at `ptr`, with C's strides, and the scalars of `C = alpha * A * B + beta * C`.
#[derive(Clone, Copy)]
pub(crate) struct Tile<T> {
    /// Element `(0, 0)` of the tile in C.
    pub ptr: *mut T,
    /// Row stride of C, in elements.
    pub rs: usize,
    /// Column stride of C, in elements.
    pub cs: usize,
    /// Valid rows of the tile (`1..=MR`); packed rows beyond are zero padding.
    pub rows: usize,
    /// Valid columns of the tile (`1..=NR`).
    pub cols: usize,
    /// Scale of the product.
    pub alpha: T,
    /// Scale of the old C; when zero, C is written without being read.
    pub beta: T,
}

/// Where a micro-kernel reads one operand sliver: `w` lanes (`MR` rows of A, or `NR`
/// columns of B) for each of `kc` steps along k. Element `(lane, step)` is
/// `ptr[lane * lane_stride + step * step_stride]`.
///
/// A packed sliver (see [`super::pack`]) has `lane_stride = 1, step_stride = w`. Small
/// problems skip packing and point slivers straight into the operand instead, with the
/// operand's own strides (B's lanes must then be contiguous, `lane_stride = 1`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sliver<T> {
    /// Element `(0, 0)`.
    pub ptr: *const T,
    /// Distance between consecutive lanes.
    pub lane_stride: usize,
    /// Distance between consecutive steps along k.
    pub step_stride: usize,
}

/// One register-tile inner kernel plus the cache-blocking sizes tuned for it.
pub(crate) trait MicroKernel {
    /// Element type.
    type T: Element;
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Rows of A packed at once (a multiple of `MR`; the packed block lives in L2).
    const MC: usize;
    /// Depth of one packed block (the B sliver, `KC x NR`, lives in L1).
    const KC: usize;
    /// Columns of B packed at once (a multiple of `NR`).
    const NC: usize;

    /// Computes `alpha * A_sliver * B_sliver` and merges it into `tile`.
    ///
    /// # Safety
    /// - the CPU supports the instruction set this kernel is compiled for;
    /// - `kc >= 1`; every element `(lane, step)`, `lane < MR` (for `a`) or `< NR` (for
    ///   `b`), `step < kc`, is readable; `b.lane_stride == 1`;
    /// - `tile.rows <= MR`, `tile.cols <= NR`, and every `tile.ptr + i * rs + j * cs`
    ///   for `i < rows`, `j < cols` is a distinct element that this call may read and
    ///   write with no other thread touching it.
    unsafe fn run(kc: usize, a: Sliver<Self::T>, b: Sliver<Self::T>, tile: &Tile<Self::T>);

    /// Packs one full sliver of `w` lanes from a source whose lanes are contiguous runs
    /// `lane_stride` apart (a row-major A, or a column-major B), a transposing copy that
    /// plain code does one element at a time. Returns `false` when this kernel has no
    /// faster way, and the caller packs element by element.
    ///
    /// # Safety
    /// The CPU supports the kernel's instruction set; elements `src[i * lane_stride + p]`
    /// for `i < w`, `p < depth` are readable; `dst.len() >= w * depth`.
    unsafe fn pack_contiguous_lanes(
        src: *const Self::T,
        lane_stride: usize,
        w: usize,
        depth: usize,
        dst: &mut [Self::T],
    ) -> bool {
        let _ = (src, lane_stride, w, depth, dst);
        false
    }
}

/// [`MicroKernel::pack_contiguous_lanes`] as a function pointer, for the packing code.
pub(crate) type LanePacker<T> = unsafe fn(*const T, usize, usize, usize, &mut [T]) -> bool;

/// Merges `vals` (row-major with leading dimension `ld`, already multiplied by alpha)
/// into the valid part of `tile`: `c = vals + beta * c`, or `c = vals` when beta is 0.
///
/// The SIMD fast paths compute exactly the same expression (a multiply, then an add,
/// no fused multiply-add), so an element's value does not depend on whether it sat in
/// a full or an edge tile.
///
/// # Safety
/// `vals` holds at least `tile.rows * ld` elements with `tile.cols <= ld`, and the tile
/// satisfies the contract of [`MicroKernel::run`].
#[inline]
pub(crate) unsafe fn store_tile<T: Element>(vals: &[T], ld: usize, tile: &Tile<T>) {
    for i in 0..tile.rows {
        let row = &vals[i * ld..i * ld + tile.cols];
        for (j, &v) in row.iter().enumerate() {
            // SAFETY: (i, j) is inside the valid tile, which the caller guarantees is
            // addressable and exclusively ours.
            let slot = unsafe { &mut *tile.ptr.add(i * tile.rs + j * tile.cs) };
            *slot = if tile.beta == T::ZERO {
                v
            } else {
                v + tile.beta * *slot
            };
        }
    }
}

/// The plain-Rust micro-kernel: an `MR x NR` accumulator array the compiler keeps in
/// registers (and vectorises for the baseline instruction set). Used at
/// [`SimdLevel::Portable`](crate::cpu::dispatch::SimdLevel::Portable) and on every
/// non-x86 target.
pub(crate) struct Portable<T, const MR: usize, const NR: usize>(std::marker::PhantomData<T>);

/// Portable f32 kernel: 4 x 8 accumulators fit the 16 SSE registers of baseline x86-64.
pub(crate) type PortableF32 = Portable<f32, 4, 8>;
/// Portable f64 kernel: 4 x 4 accumulators.
pub(crate) type PortableF64 = Portable<f64, 4, 4>;

impl<T: Element, const MR: usize, const NR: usize> MicroKernel for Portable<T, MR, NR> {
    type T = T;
    const MR: usize = MR;
    const NR: usize = NR;
    const MC: usize = 64 * MR;
    const KC: usize = 256;
    const NC: usize = 512 * NR;

    unsafe fn run(kc: usize, a: Sliver<T>, b: Sliver<T>, tile: &Tile<T>) {
        let mut acc = [[T::ZERO; NR]; MR];
        for p in 0..kc {
            let (a_step, b_step) = (
                a.ptr.wrapping_add(p * a.step_stride),
                b.ptr.wrapping_add(p * b.step_stride),
            );
            // SAFETY: lanes `0..NR` of step `p < kc` of B are readable and contiguous
            // (`b.lane_stride == 1`), by the caller's contract.
            let b_row = unsafe { std::slice::from_raw_parts(b_step, NR) };
            for (i, row) in acc.iter_mut().enumerate() {
                // SAFETY: lane `i < MR`, step `p < kc` of A is readable (caller's contract).
                let ai = unsafe { *a_step.add(i * a.lane_stride) };
                for (x, &bj) in row.iter_mut().zip(b_row) {
                    *x = *x + ai * bj;
                }
            }
        }
        for row in acc.iter_mut() {
            for x in row.iter_mut() {
                *x = tile.alpha * *x;
            }
        }
        // SAFETY: `acc` is MR x NR with leading dimension NR; the tile contract is the caller's.
        unsafe { store_tile(acc.as_flattened(), NR, tile) };
    }
}
