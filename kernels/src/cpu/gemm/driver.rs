//! The GotoBLAS/BLIS loop nest around the micro-kernels, and the split across threads.
//!
//! ```text
//! for jc in 0..n step NC             B block: KC x NC, packed once per (jc, pc)
//!   for pc in 0..k step KC
//!     pack B[pc.., jc..]             -> panels of NR columns
//!     for ic in 0..m step MC         A block: MC x KC, packed once per (jc, pc, ic), in L2
//!       pack A[ic.., pc..]           -> panels of MR rows
//!       for jr in 0..NC step NR      B sliver KC x NR stays in L1 ...
//!         for ir in 0..MC step MR    ... while the A slivers stream through it
//!           micro-kernel             MR x NR tile of C in registers
//! ```
//!
//! Threads get independent sub-problems: disjoint blocks of rows or columns of C, or,
//! when C is small and k is long, disjoint ranges of k whose partial products are summed
//! in a fixed order afterwards. Each element of C is therefore always computed by the
//! same sequence of operations for a given thread count: results are reproducible.

use super::element::Element;
use super::kernel::{MicroKernel, Tile};
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

/// How many tiles of `unit` along a dimension of `len`, and the balance (in (0, 1]) of
/// dealing them out to `tasks` threads in contiguous chunks.
fn balance(len: usize, unit: usize, tasks: usize) -> f64 {
    let tiles = len.div_ceil(unit);
    tiles as f64 / (tasks * tiles.div_ceil(tasks)) as f64
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
    if tasks == 1 {
        // SAFETY: forwarded contract.
        unsafe { serial::<K>(p) };
        return;
    }
    if p.k >= 8 * p.m.max(p.n) {
        // SAFETY: forwarded contract.
        unsafe { split_k::<K>(p, tasks) };
        return;
    }
    let (bal_m, bal_n) = (balance(p.m, K::MR, tasks), balance(p.n, K::NR, tasks));
    let along_n = bal_n > bal_m || (bal_n == bal_m && p.n.div_ceil(K::NR) >= p.m.div_ceil(K::MR));
    let (len, unit) = if along_n { (p.n, K::NR) } else { (p.m, K::MR) };
    let chunk = len.div_ceil(unit).div_ceil(tasks) * unit;
    let chunks = len.div_ceil(chunk);
    (0..chunks).into_par_iter().for_each(|t| {
        let start = t * chunk;
        let size = chunk.min(len - start);
        let sub = if along_n {
            p.block(0, p.m, start, size)
        } else {
            p.block(start, size, 0, p.n)
        };
        // SAFETY: `sub` is a block of `p`, disjoint from every other task's block, so the
        // contract carries over and no element of C is shared between threads.
        unsafe { serial::<K>(sub) };
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
            unsafe { serial::<K>(sub) };
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

/// The whole loop nest on the current thread, with this thread's packing buffers.
///
/// # Safety
/// As for [`run`].
unsafe fn serial<K: MicroKernel>(p: Problem<K::T>) {
    let (mr, nr) = (K::MR, K::NR);
    let mc_max = even_block(p.m, K::MC, mr);
    let nc_max = even_block(p.n, K::NC, nr);
    let kc_max = even_block(p.k, K::KC, 1);
    K::T::with_pack_buffers(|abuf, bbuf| {
        let a_pack = aligned(abuf, packed_len(mc_max, kc_max, mr));
        let b_pack = aligned(bbuf, packed_len(nc_max, kc_max, nr));
        for jc in (0..p.n).step_by(nc_max) {
            let nc = nc_max.min(p.n - jc);
            for pc in (0..p.k).step_by(kc_max) {
                let kc = kc_max.min(p.k - pc);
                // SAFETY: B[pc..pc + kc, jc..jc + nc] is in range; B is packed as its
                // transpose (rows of the packed view are columns of B).
                unsafe { pack(p.b.at(pc, jc).t(), nc, kc, nr, b_pack) };
                let beta = if pc == 0 { p.beta } else { K::T::ONE };
                for ic in (0..p.m).step_by(mc_max) {
                    let mc = mc_max.min(p.m - ic);
                    // SAFETY: A[ic..ic + mc, pc..pc + kc] is in range.
                    unsafe { pack(p.a.at(ic, pc), mc, kc, mr, a_pack) };
                    let block = Block {
                        mc,
                        nc,
                        kc,
                        c: p.c.at(ic, jc),
                        alpha: p.alpha,
                        beta,
                    };
                    // SAFETY: the packs were just filled for this block; the CPU
                    // contract and C's block are forwarded from the caller.
                    unsafe { macro_kernel::<K>(&block, a_pack, b_pack) };
                }
            }
        }
    });
}

/// One `mc x nc` block of C updated from packed `mc x kc` A and `kc x nc` B.
struct Block<T> {
    mc: usize,
    nc: usize,
    kc: usize,
    c: RawMut<T>,
    alpha: T,
    beta: T,
}

/// Runs the micro-kernel over every `MR x NR` tile of a block.
///
/// # Safety
/// The CPU supports `K`; `a_pack`/`b_pack` hold the packed block (at least
/// `packed_len(mc, kc, MR)` and `packed_len(nc, kc, NR)` elements); `block.c` addresses
/// `mc x nc` distinct elements that are exclusively ours.
#[inline]
unsafe fn macro_kernel<K: MicroKernel>(block: &Block<K::T>, a_pack: &[K::T], b_pack: &[K::T]) {
    let (mr, nr, kc) = (K::MR, K::NR, block.kc);
    let b_slivers = b_pack.chunks_exact(kc * nr).take(block.nc.div_ceil(nr));
    for (jq, b_sliver) in b_slivers.enumerate() {
        let j0 = jq * nr;
        let a_slivers = a_pack.chunks_exact(kc * mr).take(block.mc.div_ceil(mr));
        for (iq, a_sliver) in a_slivers.enumerate() {
            let i0 = iq * mr;
            let c = block.c.at(i0, j0);
            let tile = Tile {
                ptr: c.ptr,
                rs: c.rs,
                cs: c.cs,
                rows: mr.min(block.mc - i0),
                cols: nr.min(block.nc - j0),
                alpha: block.alpha,
                beta: block.beta,
            };
            // SAFETY: the slivers are full `kc * MR` / `kc * NR` chunks of the packs; the
            // tile is inside the block; the CPU contract is the caller's.
            unsafe { K::run(kc, a_sliver.as_ptr(), b_sliver.as_ptr(), &tile) };
        }
    }
}
