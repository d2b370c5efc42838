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

/// One register-tile inner kernel plus the cache-blocking sizes tuned for it.
///
/// Packed layouts (produced by [`super::pack`]): the A sliver holds, for each `p` in
/// `0..kc`, `MR` consecutive values `A[0..MR, p]`; the B sliver holds, for each `p`,
/// `NR` consecutive values `B[p, 0..NR]`. Both start 64-byte aligned.
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
    /// - `a` points to `MR * kc` and `b` to `NR * kc` readable elements laid out as the
    ///   trait documentation describes, `kc >= 1`;
    /// - `tile.rows <= MR`, `tile.cols <= NR`, and every `tile.ptr + i * rs + j * cs`
    ///   for `i < rows`, `j < cols` is a distinct element that this call may read and
    ///   write with no other thread touching it.
    unsafe fn run(kc: usize, a: *const Self::T, b: *const Self::T, tile: &Tile<Self::T>);
}

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

    unsafe fn run(kc: usize, a: *const T, b: *const T, tile: &Tile<T>) {
        // SAFETY: the caller guarantees MR * kc elements behind `a` and NR * kc behind `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, MR * kc),
                std::slice::from_raw_parts(b, NR * kc),
            )
        };
        let mut acc = [[T::ZERO; NR]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for (row, &ai) in acc.iter_mut().zip(ap) {
                for (x, &bj) in row.iter_mut().zip(bp) {
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
