//! The GotoBLAS/BLIS loop nest around the micro-kernels, and the split across threads.
//!
//! ```text
//! for jc in 0..n step NC             B block: KC x NC, packed once per (jc, pc)
//!   for pc in 0..k step KC
//!     pack B[pc.., jc..]             -> slivers of NR columns
//!     for ic in 0..m step MC         A block: MC x KC, packed once per (jc, pc, ic), in L2
//!       pack A[ic.., pc..]           -> slivers of MR rows
//!       for jr in 0..NC step NR      B sliver KC x NR stays in L1 ...
//!         for ir in 0..MC step MR    ... while the A slivers stream through it
//!           micro-kernel             MR x NR tile of C in registers
//! ```
//!
//! Small problems skip packing an operand whose slivers would be reused only a few
//! times (see [`DIRECT_A_MAX_N`], [`DIRECT_B_MAX_M`]): the micro-kernel then reads it in
//! place, and only a trailing partial sliver is packed (zero-padded).
//!
//! Threads (only for problems of at least [`MIN_WORK_PER_THREAD`] multiply-adds per
//! thread):
//! - enough rows: the `ic` loop runs on rayon; all threads pack each B block together
//!   and share it, each packing its own A blocks;
//! - few rows, many columns: independent problems on disjoint column ranges of C;
//! - a long reduction into a small C: disjoint ranges of k whose partial products are
//!   summed in a fixed order afterwards.
//!
//! In every case an element of C is computed by the same sequence of operations on
//! every run with the same thread count, so results are reproducible.

use super::element::Element;
use super::kernel::{MicroKernel, Sliver, Tile};
use super::pack::{pack, packed_len};
use super::raw::{RawMut, RawRef};
use super::{GemmScalar, MatMut, MatRef};
use crate::cpu::dispatch::SimdLevel;
use rayon::prelude::*;

/// Multiply-adds (m * n * k) below which a problem runs on one thread: spawning rayon
/// work costs a few microseconds, about what one core needs for this much work.
pub(crate) const MIN_WORK_PER_THREAD: usize = 1 << 21;

/// A validated gemm: `C (m x n) = alpha * A (m x k) * B (k x n) + beta * C`.
#[derive(Debug)]
pub(crate) struct Problem<T> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: T,
    pub beta: T,
    pub a: RawRef<T>,
    pub b: RawRef<T>,
    pub c: RawMut<T>,
}

impl<T: Copy> Clone for Problem<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Copy> Copy for Problem<T> {}

impl<T: Copy> Problem<T> {
    /// The same problem on `C^T = B^T A^T` (so a column-major C becomes row-major).
    fn transposed(self) -> Self {
        Self {
            m: self.n,
            n: self.m,
            a: self.b.t(),
            b: self.a.t(),
            c: self.c.t(),
            ..self
        }
    }

    /// The sub-problem for rows `i0..i0 + m` and columns `j0..j0 + n` of C.
    fn block(self, i0: usize, m: usize, j0: usize, n: usize) -> Self {
        Self {
            m,
            n,
            a: self.a.at(i0, 0),
            b: self.b.at(0, j0),
            c: self.c.at(i0, j0),
            ..self
        }
    }
}

/// Validated entry point shared by every public gemm function: handles the degenerate
/// cases, orients the problem so that C's unit stride runs along the micro-tile's
/// vector direction, and dispatches to the kernel for `level` on up to `threads` threads.
/// Dimensions must already agree (see `check_dims`).
pub(crate) fn gemm<T: Element>(
    level: SimdLevel,
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    mut c: MatMut<'_, T>,
    threads: usize,
) {
    let problem = Problem {
        m: a.rows(),
        n: b.cols(),
        k: a.cols(),
        alpha,
        beta,
        a: RawRef::from_mat(&a),
        b: RawRef::from_mat(&b),
        c: RawMut::from_mat(&mut c),
    };
    if problem.m == 0 || problem.n == 0 {
        return;
    }
    if problem.k == 0 || alpha == T::ZERO {
        // SAFETY: the view came from a validated `MatMut` that we borrow exclusively.
        unsafe { scale(problem) };
        return;
    }
    // The micro-kernels store whole vectors along rows of C; a column-major C is the
    // row-major C^T of the transposed product.
    let problem = if problem.c.cs != 1 && problem.c.rs == 1 {
        problem.transposed()
    } else {
        problem
    };
    T::run_at(level, problem, threads.max(1));
}

/// `C = beta * C` (C overwritten with zeros when beta is 0, so NaN in C does not leak).
///
/// # Safety
/// `p.c` addresses `p.m x p.n` distinct elements we may write.
unsafe fn scale<T: Element>(p: Problem<T>) {
    if p.beta == T::ONE {
        return;
    }
    for i in 0..p.m {
        for j in 0..p.n {
            // SAFETY: (i, j) is inside C (caller's contract).
            let slot = unsafe { &mut *p.c.at(i, j).ptr };
            *slot = if p.beta == T::ZERO {
                T::ZERO
            } else {
                p.beta * *slot
            };
        }
    }
}

/// Splits `total` into the fewest blocks of at most `max` (a multiple of `unit`) and
/// returns a block size, a multiple of `unit`, that makes them as even as possible
/// (e.g. k = 300 with KC = 256 gives two blocks of 152 and 148 rather than 256 and 44).
fn even_block(total: usize, max: usize, unit: usize) -> usize {
    let blocks = total.div_ceil(max);
    total.div_ceil(blocks).div_ceil(unit) * unit
}

/// Runs `p` with micro-kernel `K`, split over up to `threads` rayon tasks when it is big
/// enough to pay for them.
///
/// # Safety
/// The CPU supports `K`'s instruction set, and `p` is a validated problem (every element
/// it addresses is in bounds, C's elements are distinct and exclusively ours) with
/// `m, n, k >= 1`.
pub(crate) unsafe fn run<K: MicroKernel>(p: Problem<K::T>, threads: usize) {
    let work = p.m.saturating_mul(p.n).saturating_mul(p.k);
    let tasks = threads.min(work / MIN_WORK_PER_THREAD).max(1);
    let (m_slivers, n_slivers) = (p.m.div_ceil(K::MR), p.n.div_ceil(K::NR));
    if tasks == 1 {
        // SAFETY: forwarded contract.
        unsafe { blocked::<K>(p, 1) };
    } else if p.k >= 8 * p.m.max(p.n) {
        // A long reduction into a small C: share out k.
        // SAFETY: forwarded contract.
        unsafe { split_k::<K>(p, tasks) };
    } else if m_slivers >= 2 * tasks {
        // Enough rows: threads share each packed block of B.
        // SAFETY: forwarded contract.
        unsafe { blocked::<K>(p, tasks) };
    } else {
        // SAFETY: forwarded contract.
        unsafe { split_n::<K>(p, tasks.min(n_slivers)) };
    }
}

/// Splits the columns of C into `tasks` independent problems (for a C too short to
/// share out by rows, such as a conv layer's `c_out x (batch * pixels)` output).
///
/// # Safety
/// As for [`run`].
unsafe fn split_n<K: MicroKernel>(p: Problem<K::T>, tasks: usize) {
    let chunk = p.n.div_ceil(K::NR).div_ceil(tasks.max(1)) * K::NR;
    (0..p.n.div_ceil(chunk)).into_par_iter().for_each(|t| {
        let start = t * chunk;
        let sub = p.block(0, p.m, start, chunk.min(p.n - start));
        // SAFETY: `sub` is a block of `p`, disjoint from every other task's block, so the
        // contract carries over and no element of C is shared between threads.
        unsafe { blocked::<K>(sub, 1) };
    });
}

/// Splits k into `tasks` ranges, computes each partial product into its own buffer in
/// parallel, then merges `C = alpha * (P0 + P1 + ..) + beta * C` in a fixed order.
///
/// # Safety
/// As for [`run`].
unsafe fn split_k<K: MicroKernel>(p: Problem<K::T>, tasks: usize) {
    type E<K> = <K as MicroKernel>::T;
    let chunk = p.k.div_ceil(tasks);
    let tasks = p.k.div_ceil(chunk);
    let mn = p.m * p.n;
    let mut partials = vec![E::<K>::ZERO; mn * tasks];
    partials
        .par_chunks_mut(mn)
        .enumerate()
        .for_each(|(t, part)| {
            let k0 = t * chunk;
            let sub = Problem {
                k: chunk.min(p.k - k0),
                alpha: E::<K>::ONE,
                beta: E::<K>::ZERO,
                a: p.a.at(0, k0),
                b: p.b.at(k0, 0),
                c: RawMut {
                    ptr: part.as_mut_ptr(),
                    rs: p.n,
                    cs: 1,
                },
                ..p
            };
            // SAFETY: A and B sub-views are in range; C is this task's own dense buffer.
            unsafe { blocked::<K>(sub, 1) };
        });
    for i in 0..p.m {
        for j in 0..p.n {
            let mut sum = partials[i * p.n + j];
            for part in partials.chunks_exact(mn).skip(1) {
                sum = sum + part[i * p.n + j];
            }
            // SAFETY: (i, j) is inside C, which is exclusively ours (caller's contract).
            let slot = unsafe { &mut *p.c.at(i, j).ptr };
            *slot = if p.beta == E::<K>::ZERO {
                p.alpha * sum
            } else {
                p.alpha * sum + p.beta * *slot
            };
        }
    }
}

/// A 64-byte aligned window of `len` elements in `buf`, growing `buf` if needed.
fn aligned<T: Element>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    let pad = 64 / std::mem::size_of::<T>();
    if buf.len() < len + pad {
        buf.resize(len + pad, T::ZERO);
    }
    // `align_offset` may in principle decline (usize::MAX); an unaligned window is
    // still correct, only slower.
    let offset = buf.as_ptr().align_offset(64).min(pad);
    &mut buf[offset..offset + len]
}

/// Problems with at most this many rows read B straight from memory instead of packing
/// it (when B's rows are contiguous): each B sliver is reused by only a few A slivers,
/// so copying it would cost about as much as the multiply.
const DIRECT_B_MAX_M: usize = 64;
/// Problems with at most this many columns read A straight from memory: each A sliver
/// meets only a few B slivers.
const DIRECT_A_MAX_N: usize = 128;

/// The loop nest. With `threads > 1`, each packed block of B is packed by all threads
/// and then shared: the blocks of rows of A (at least two per thread, sized so threads
/// finish together) are dealt out to rayon's threads, each packing its own A block.
///
/// # Safety
/// As for [`run`].
unsafe fn blocked<K: MicroKernel>(p: Problem<K::T>, threads: usize) {
    let (mr, nr) = (K::MR, K::NR);
    let nc_max = even_block(p.n, K::NC, nr);
    let kc_max = even_block(p.k, K::KC, 1);
    // Blocks of rows: whole slivers, sizes differing by at most one sliver.
    let slivers = p.m.div_ceil(mr);
    let mut m_blocks = slivers.div_ceil((K::MC / mr).max(1));
    if threads > 1 {
        m_blocks = m_blocks.max(2 * threads).div_ceil(threads) * threads;
    }
    let m_blocks = m_blocks.min(slivers);
    let mc_max = slivers.div_ceil(m_blocks) * mr;
    let parallel = threads > 1;
    let direct_b = !parallel && p.b.cs == 1 && p.m <= DIRECT_B_MAX_M;
    let direct_a = p.n <= DIRECT_A_MAX_N;
    K::T::with_b_buffer(|bbuf| {
        let b_pack = aligned(bbuf, packed_len(nc_max, kc_max, nr));
        for jc in (0..p.n).step_by(nc_max) {
            let nc = nc_max.min(p.n - jc);
            for pc in (0..p.k).step_by(kc_max) {
                let kc = kc_max.min(p.k - pc);
                // B is handled as its transpose (the rows of that view are B's columns).
                let b_view = p.b.at(pc, jc).t();
                if parallel {
                    let len = packed_len(nc, kc, nr);
                    b_pack[..len]
                        .par_chunks_mut(kc * nr)
                        .enumerate()
                        .for_each(|(q, dst)| {
                            let rows = nr.min(nc - q * nr);
                            // SAFETY: sliver q of B[pc..pc + kc, jc..jc + nc] is in range.
                            unsafe {
                                pack(
                                    b_view.at(q * nr, 0),
                                    rows,
                                    kc,
                                    nr,
                                    dst,
                                    K::pack_contiguous_lanes,
                                )
                            };
                        });
                }
                // SAFETY: B[pc..pc + kc, jc..jc + nc] is in range (and already packed
                // when parallel).
                let b_panels = unsafe {
                    if parallel {
                        Panels::prepacked(b_view, nc, kc, nr, b_pack)
                    } else {
                        Panels::new::<K>(b_view, nc, kc, nr, direct_b, b_pack)
                    }
                };
                let beta = if pc == 0 { p.beta } else { K::T::ONE };
                let row_block = |blk: usize| {
                    let ic = blk * slivers / m_blocks * mr;
                    let mc = ((blk + 1) * slivers / m_blocks * mr).min(p.m) - ic;
                    K::T::with_a_buffer(|abuf| {
                        let a_pack = aligned(abuf, packed_len(mc_max, kc_max, mr));
                        // SAFETY: A[ic..ic + mc, pc..pc + kc] is in range, and the block
                        // of C at (ic, jc) is disjoint from every other row block's; the
                        // CPU contract is the caller's.
                        unsafe {
                            let a_panels =
                                Panels::new::<K>(p.a.at(ic, pc), mc, kc, mr, direct_a, a_pack);
                            macro_kernel::<K>(&a_panels, &b_panels, p.c.at(ic, jc), p.alpha, beta);
                        }
                    });
                };
                if parallel {
                    (0..m_blocks).into_par_iter().for_each(row_block);
                } else {
                    (0..m_blocks).for_each(row_block);
                }
            }
        }
    });
}

/// A `rows x kc` block of A (or of B transposed) cut into slivers of `w` rows, each
/// either packed or read in place.
struct Panels<'a, T> {
    view: RawRef<T>,
    rows: usize,
    kc: usize,
    w: usize,
    direct: bool,
    packed: &'a [T],
}

impl<'a, T: Element> Panels<'a, T> {
    /// Packs the block into `buf`, or, when `direct`, only its trailing partial sliver
    /// (full slivers are then read in place).
    ///
    /// # Safety
    /// Elements `(i, p)`, `i < rows`, `p < kc` of `view` are readable, `buf` holds at
    /// least `packed_len(rows, kc, w)` elements, and the CPU supports `K`.
    unsafe fn new<K: MicroKernel<T = T>>(
        view: RawRef<T>,
        rows: usize,
        kc: usize,
        w: usize,
        direct: bool,
        buf: &'a mut [T],
    ) -> Self {
        let full = rows / w * w;
        if !direct {
            // SAFETY: forwarded contract.
            unsafe { pack(view, rows, kc, w, buf, K::pack_contiguous_lanes) };
        } else if full < rows {
            // SAFETY: the trailing rows are part of the block.
            unsafe {
                pack(
                    view.at(full, 0),
                    rows - full,
                    kc,
                    w,
                    buf,
                    K::pack_contiguous_lanes,
                )
            };
        }
        Self {
            view,
            rows,
            kc,
            w,
            direct,
            packed: buf,
        }
    }

    /// A block that is already packed in `buf` (as [`Panels::new`] without `direct`
    /// would have packed it).
    ///
    /// # Safety
    /// `buf` holds the packed block.
    unsafe fn prepacked(view: RawRef<T>, rows: usize, kc: usize, w: usize, buf: &'a [T]) -> Self {
        Self {
            view,
            rows,
            kc,
            w,
            direct: false,
            packed: buf,
        }
    }

    /// Number of slivers.
    fn len(&self) -> usize {
        self.rows.div_ceil(self.w)
    }

    /// Sliver `q`: in place when direct and full, otherwise in the packed buffer.
    fn sliver(&self, q: usize) -> Sliver<T> {
        let start = q * self.w;
        if self.direct && start + self.w <= self.rows {
            Sliver {
                ptr: self.view.at(start, 0).ptr,
                lane_stride: self.view.rs,
                step_stride: self.view.cs,
            }
        } else {
            let offset = if self.direct { 0 } else { q * self.w * self.kc };
            Sliver {
                ptr: self.packed[offset..].as_ptr(),
                lane_stride: 1,
                step_stride: self.w,
            }
        }
    }
}

/// Runs the micro-kernel over every `MR x NR` tile of one block of C.
///
/// # Safety
/// The CPU supports `K`; the panels were prepared for this block (`a`: `mc x kc` with
/// `w = MR`; `b`: `nc x kc` with `w = NR`, lanes contiguous); `c` addresses `mc x nc`
/// distinct elements that are exclusively ours.
#[inline]
unsafe fn macro_kernel<K: MicroKernel>(
    a: &Panels<'_, K::T>,
    b: &Panels<'_, K::T>,
    c: RawMut<K::T>,
    alpha: K::T,
    beta: K::T,
) {
    let (mr, nr) = (K::MR, K::NR);
    for jq in 0..b.len() {
        let b_sliver = b.sliver(jq);
        let j0 = jq * nr;
        for iq in 0..a.len() {
            let i0 = iq * mr;
            let c = c.at(i0, j0);
            let tile = Tile {
                ptr: c.ptr,
                rs: c.rs,
                cs: c.cs,
                rows: mr.min(a.rows - i0),
                cols: nr.min(b.rows - j0),
                alpha,
                beta,
            };
            // SAFETY: both slivers have `kc` readable steps of MR / NR lanes (packed and
            // zero-padded, or full slivers in place); B's lanes are contiguous because
            // direct B requires `B.cs == 1`; the tile is inside the block.
            unsafe { K::run(a.kc, a.sliver(iq), b_sliver, &tile) };
        }
    }
}
