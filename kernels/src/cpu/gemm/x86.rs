//! x86-64 micro-kernels: AVX-512 and AVX2+FMA, for f32 and f64.
//!
//! All four share one shape: `MR` rows by two SIMD vectors of columns. Each step of the
//! `k` loop loads the two B vectors of the packed sliver once, broadcasts each of the
//! `MR` A values, and issues `2 * MR` fused multiply-adds into `2 * MR` accumulator
//! registers. `MR` is chosen so the accumulators plus the two B vectors fill the
//! register file without spilling (32 zmm registers for AVX-512, 16 ymm for AVX2) and
//! there are enough independent FMA chains to hide the FMA latency on both ports.

use std::arch::x86_64::*;

use super::kernel::{store_tile, MicroKernel, Sliver, Tile};

/// Defines a `MicroKernel` with `MR` rows and two SIMD vectors of `LANES` columns.
macro_rules! two_vector_kernel {
    (
        $(#[$doc:meta])*
        $name:ident {
            elem: $t:ty,
            feature: $feature:literal,
            lanes: $lanes:literal,
            mr: $mr:literal,
            blocking: ($mc:literal, $kc:literal, $nc:literal),
            zero: $zero:ident,
            load: $load:ident,
            store: $store:ident,
            splat: $splat:ident,
            fmadd: $fmadd:ident,
            mul: $mul:ident,
            add: $add:ident,
            $(lane_packer: $lane_packer:ident,)?
        }
    ) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl MicroKernel for $name {
            type T = $t;
            const MR: usize = $mr;
            const NR: usize = 2 * $lanes;
            const MC: usize = $mc;
            const KC: usize = $kc;
            const NC: usize = $nc;

            unsafe fn run(kc: usize, a: Sliver<$t>, b: Sliver<$t>, tile: &Tile<$t>) {
                if a.lane_stride == 1 && a.step_stride == $mr {
                    // SAFETY: the caller guarantees that the CPU supports this kernel's
                    // instruction set and the contract of `MicroKernel::run`.
                    unsafe { kernel::<true>(kc, a, b, tile) }
                } else {
                    // SAFETY: as above.
                    unsafe { kernel::<false>(kc, a, b, tile) }
                }
            }

            $(
                unsafe fn pack_contiguous_lanes(
                    src: *const $t,
                    lane_stride: usize,
                    w: usize,
                    depth: usize,
                    dst: &mut [$t],
                ) -> bool {
                    // SAFETY: forwarded contract of `MicroKernel::pack_contiguous_lanes`.
                    unsafe { $lane_packer(src, lane_stride, w, depth, dst) }
                }
            )?
        }

        /// The kernel body; `PACKED_A` hard-codes the packed layout of A so the hot
        /// loop of large problems addresses A with constant offsets.
        #[target_feature(enable = $feature)]
        unsafe fn kernel<const PACKED_A: bool>(
            kc: usize,
            a: Sliver<$t>,
            b: Sliver<$t>,
            tile: &Tile<$t>,
        ) {
            const MR: usize = $mr;
            const L: usize = $lanes;
            let (a_lane, a_step) = if PACKED_A {
                (1, MR)
            } else {
                (a.lane_stride, a.step_stride)
            };
            // Start fetching C now: it is needed only after the k loop, which is long
            // enough to hide a miss to L3. Prefetches never fault, so no bounds matter.
            for i in 0..tile.rows {
                let row = tile.ptr.wrapping_add(i * tile.rs) as *const i8;
                _mm_prefetch::<_MM_HINT_T0>(row);
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(2 * L * size_of::<$t>() - 1));
            }
            let mut acc = [[$zero(); 2]; MR];
            let b_step = b.step_stride;
            let (mut a, mut b) = (a.ptr, b.ptr);
            for _ in 0..kc {
                // SAFETY: `b` points at the current step of the B sliver, whose `2 * L`
                // lanes are contiguous and readable (MicroKernel contract).
                let (b0, b1) = unsafe { ($load(b), $load(b.add(L))) };
                for (i, row) in acc.iter_mut().enumerate() {
                    // SAFETY: likewise, lane `i < MR` of the current step of A is readable.
                    let ai = $splat(unsafe { *a.add(i * a_lane) });
                    row[0] = $fmadd(ai, b0, row[0]);
                    row[1] = $fmadd(ai, b1, row[1]);
                }
                a = a.wrapping_add(a_step);
                b = b.wrapping_add(b_step);
            }

            let alpha = $splat(tile.alpha);
            if tile.rows == MR && tile.cols == 2 * L && tile.cs == 1 {
                // Full tile over contiguous rows of C: update C with vector loads/stores.
                let beta = $splat(tile.beta);
                for (i, row) in acc.iter().enumerate() {
                    let c = tile.ptr.wrapping_add(i * tile.rs);
                    let (mut v0, mut v1) = ($mul(alpha, row[0]), $mul(alpha, row[1]));
                    if tile.beta != 0.0 {
                        // SAFETY: row `i` of the full tile is `2 * L` contiguous
                        // elements of C that this call owns (MicroKernel contract).
                        let (c0, c1) = unsafe { ($load(c), $load(c.add(L))) };
                        v0 = $add(v0, $mul(beta, c0));
                        v1 = $add(v1, $mul(beta, c1));
                    }
                    // SAFETY: as above.
                    unsafe {
                        $store(c, v0);
                        $store(c.add(L), v1);
                    }
                }
            } else {
                // Edge tile or strided C: spill alpha * acc and merge element by element.
                let mut buf = [0.0 as $t; MR * 2 * L];
                for (row, out) in acc.iter().zip(buf.chunks_exact_mut(2 * L)) {
                    // SAFETY: `out` is a chunk of exactly `2 * L` elements.
                    unsafe {
                        $store(out.as_mut_ptr(), $mul(alpha, row[0]));
                        $store(out.as_mut_ptr().add(L), $mul(alpha, row[1]));
                    }
                }
                // SAFETY: `buf` is MR x 2L with leading dimension 2L; the tile contract
                // is the caller's.
                unsafe { store_tile(&buf, 2 * L, tile) };
            }
        }
    };
}

/// Kernels are defined in modules so each macro expansion gets its own `kernel` fn.
mod avx512_f32 {
    use super::*;
    two_vector_kernel! {
        /// AVX-512 f32: 12 rows x 32 columns (24 zmm accumulators).
        Avx512F32 {
            elem: f32,
            feature: "avx512f",
            lanes: 16,
            mr: 12,
            blocking: (96, 256, 1024),
            zero: _mm512_setzero_ps,
            load: _mm512_loadu_ps,
            store: _mm512_storeu_ps,
            splat: _mm512_set1_ps,
            fmadd: _mm512_fmadd_ps,
            mul: _mm512_mul_ps,
            add: _mm512_add_ps,
            lane_packer: gather_lanes_f32,
        }
    }
}

mod avx512_f64 {
    use super::*;
    two_vector_kernel! {
        /// AVX-512 f64: 12 rows x 16 columns (24 zmm accumulators).
        Avx512F64 {
            elem: f64,
            feature: "avx512f",
            lanes: 8,
            mr: 12,
            blocking: (192, 256, 2048),
            zero: _mm512_setzero_pd,
            load: _mm512_loadu_pd,
            store: _mm512_storeu_pd,
            splat: _mm512_set1_pd,
            fmadd: _mm512_fmadd_pd,
            mul: _mm512_mul_pd,
            add: _mm512_add_pd,
        }
    }
}

mod avx2_f32 {
    use super::*;
    two_vector_kernel! {
        /// AVX2+FMA f32: 6 rows x 16 columns (12 ymm accumulators).
        Avx2F32 {
            elem: f32,
            feature: "avx2,fma",
            lanes: 8,
            mr: 6,
            blocking: (144, 256, 4096),
            zero: _mm256_setzero_ps,
            load: _mm256_loadu_ps,
            store: _mm256_storeu_ps,
            splat: _mm256_set1_ps,
            fmadd: _mm256_fmadd_ps,
            mul: _mm256_mul_ps,
            add: _mm256_add_ps,
        }
    }
}

mod avx2_f64 {
    use super::*;
    two_vector_kernel! {
        /// AVX2+FMA f64: 6 rows x 8 columns (12 ymm accumulators).
        Avx2F64 {
            elem: f64,
            feature: "avx2,fma",
            lanes: 4,
            mr: 6,
            blocking: (144, 256, 2048),
            zero: _mm256_setzero_pd,
            load: _mm256_loadu_pd,
            store: _mm256_storeu_pd,
            splat: _mm256_set1_pd,
            fmadd: _mm256_fmadd_pd,
            mul: _mm256_mul_pd,
            add: _mm256_add_pd,
        }
    }
}

/// Packs `w <= 32` lanes (contiguous runs `lane_stride` apart) for `depth` steps with
/// AVX-512 gathers: one masked gather and one masked store per 16 lanes and step,
/// instead of one scalar load and store per element.
///
/// # Safety
/// The CPU supports AVX-512F; `src[i * lane_stride + p]` is readable for `i < w`,
/// `p < depth`; `dst.len() >= w * depth`.
#[target_feature(enable = "avx512f")]
unsafe fn gather_lanes_f32(
    src: *const f32,
    lane_stride: usize,
    w: usize,
    depth: usize,
    dst: &mut [f32],
) -> bool {
    // Gather offsets are i32: the farthest lane must be addressable that way.
    let fits = lane_stride
        .checked_mul(w)
        .is_some_and(|span| span <= i32::MAX as usize);
    if w == 0 || w > 32 || !fits || dst.len() < w * depth {
        return false;
    }
    let stride = _mm512_set1_epi32(lane_stride as i32);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let idx_lo = _mm512_mullo_epi32(lanes, stride);
    let idx_hi = _mm512_add_epi32(idx_lo, _mm512_set1_epi32((16 * lane_stride) as i32));
    let mask_lo: __mmask16 = if w >= 16 { 0xffff } else { (1u16 << w) - 1 };
    let mask_hi: __mmask16 = if w > 16 {
        ((1u32 << (w - 16)) - 1) as u16
    } else {
        0
    };
    let zero = _mm512_setzero_ps();
    for p in 0..depth {
        let base = src.wrapping_add(p);
        let out = dst[p * w..].as_mut_ptr();
        // SAFETY: the gathers read lanes `i < w` of step p (masked lanes are not
        // accessed), which the caller guarantees readable; the masked stores write
        // `dst[p * w .. p * w + w]`, inside `dst`.
        unsafe {
            let v = _mm512_mask_i32gather_ps::<4>(zero, mask_lo, idx_lo, base);
            _mm512_mask_storeu_ps(out, mask_lo, v);
            if mask_hi != 0 {
                let v = _mm512_mask_i32gather_ps::<4>(zero, mask_hi, idx_hi, base);
                _mm512_mask_storeu_ps(out.add(16), mask_hi, v);
            }
        }
    }
    true
}

pub(crate) use avx2_f32::Avx2F32;
pub(crate) use avx2_f64::Avx2F64;
pub(crate) use avx512_f32::Avx512F32;
pub(crate) use avx512_f64::Avx512F64;
