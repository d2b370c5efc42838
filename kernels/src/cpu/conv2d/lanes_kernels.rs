//! Micro-kernels of the batch-in-lanes f32 convolution, one module per SIMD level.
//!
//! A vector `V` holds the same element of [`L`] images. Each level's module defines the
//! handful of vector primitives (`zero`, `splat`, `load`, `store`, `fma`, `add`) on its
//! register type and block sizes that fit its register file; the kernels themselves are
//! written once, in [`lane_kernels!`], and expanded into every module with that level's
//! `#[target_feature]` attributes.
//!
//! Safety contract of every kernel: the CPU supports the module's level, and the buffers
//! are at least as long as the [`Geometry`] says (`xp`: `xp_len`, `gt`/`yt`: `gt_len`,
//! weights: `groups * K * C_out/groups`, lane accumulators: `C_out * K * L`). The
//! geometry guarantees that every `pos[p] + taps[k] + L <= xp_len`; the kernels assert
//! the buffer lengths before touching memory.

use super::lanes::{Geometry, L};

/// Expands the three kernels, with the given attributes (the level's `target_feature`),
/// in terms of the enclosing module's `V`, primitives and block sizes.
macro_rules! lane_kernels {
    ($(#[$attr:meta])*) => {
        /// `CO` output channels at one position: `out[c] = bias[c] + sum_k wt[k][c] * x[taps[k]]`.
        $(#[$attr])*
        unsafe fn fwd_block<const CO: usize>(
            x: *const f32,
            taps: &[usize],
            wt: *const f32,
            opg: usize,
            bias: *const f32,
            out: *mut f32,
            out_stride: usize,
        ) {
            // SAFETY: (whole body) the caller passes pointers valid for every offset used
            // (module contract).
            unsafe {
                let mut acc = [zero(); CO];
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = splat(*bias.add(c));
                }
                for (k, &t) in taps.iter().enumerate() {
                    let xv = load(x.add(t));
                    let w = wt.add(k * opg);
                    for (c, a) in acc.iter_mut().enumerate() {
                        *a = fma(splat(*w.add(c)), xv, *a);
                    }
                }
                for (c, a) in acc.iter().enumerate() {
                    store(out.add(c * out_stride), *a);
                }
            }
        }

        /// Forward pass of one sub-chunk: `yt[co][p][..] = bias[co] + sum_k W[co][k] * xp[pos[p] + taps[k]]`.
        $(#[$attr])*
        pub(in crate::cpu::conv2d) unsafe fn forward(
            g: &Geometry,
            xp: &[f32],
            wt: &[f32],
            bias: &[f32],
            yt: &mut [f32],
        ) {
            let (k, np, opg) = (g.k, g.p, g.opg);
            assert!(xp.len() >= g.xp_len && yt.len() >= g.gt_len);
            assert!(wt.len() >= g.groups * k * opg && bias.len() >= g.groups * opg);
            for grp in 0..g.groups {
                let taps = &g.taps[grp * k..][..k];
                for (p, &pos) in g.pos.iter().enumerate() {
                    let mut co = 0;
                    while co < opg {
                        let left = opg - co;
                        // SAFETY: in bounds by the asserts above and the geometry's
                        // invariant; the CPU supports this level (module contract).
                        unsafe {
                            let x = xp.as_ptr().add(pos);
                            let w = wt.as_ptr().add(grp * k * opg + co);
                            let b = bias.as_ptr().add(grp * opg + co);
                            let out = yt.as_mut_ptr().add(((grp * opg + co) * np + p) * L);
                            let stride = np * L;
                            if FWD_CO >= 16 && left >= 16 {
                                fwd_block::<16>(x, taps, w, opg, b, out, stride);
                                co += 16;
                            } else if FWD_CO >= 8 && left >= 8 {
                                fwd_block::<8>(x, taps, w, opg, b, out, stride);
                                co += 8;
                            } else if left >= 4 {
                                fwd_block::<4>(x, taps, w, opg, b, out, stride);
                                co += 4;
                            } else if left >= 2 {
                                fwd_block::<2>(x, taps, w, opg, b, out, stride);
                                co += 2;
                            } else {
                                fwd_block::<1>(x, taps, w, opg, b, out, stride);
                                co += 1;
                            }
                        }
                    }
                }
            }
        }

        /// `CO` output-gradient channels at one position, scattered to every tap:
        /// `gx[taps[k]] += sum_c wt[k][c] * gy[c]`.
        $(#[$attr])*
        unsafe fn bwd_in_block<const CO: usize>(
            gx: *mut f32,
            taps: &[usize],
            wt: *const f32,
            opg: usize,
            gy: *const f32,
            gy_stride: usize,
        ) {
            // SAFETY: (whole body) the caller passes pointers valid for every offset used
            // (module contract); distinct taps of one position are distinct addresses.
            unsafe {
                let mut g = [zero(); CO];
                for (c, v) in g.iter_mut().enumerate() {
                    *v = load(gy.add(c * gy_stride));
                }
                for (k, &t) in taps.iter().enumerate() {
                    let dst = gx.add(t);
                    let w = wt.add(k * opg);
                    // Two partial sums halve the dependency chain through the FMAs.
                    let (mut a0, mut a1) = (load(dst), zero());
                    let mut c = 0;
                    while c + 1 < CO {
                        a0 = fma(splat(*w.add(c)), g[c], a0);
                        a1 = fma(splat(*w.add(c + 1)), g[c + 1], a1);
                        c += 2;
                    }
                    if c < CO {
                        a0 = fma(splat(*w.add(c)), g[c], a0);
                    }
                    store(dst, add(a0, a1));
                }
            }
        }

        /// Input gradient of one sub-chunk: `gxp[pos[p] + taps[k]] += sum_co W[co][k] * gt[co][p]`
        /// (`gxp` zeroed by the caller).
        $(#[$attr])*
        pub(in crate::cpu::conv2d) unsafe fn backward_input(
            g: &Geometry,
            gxp: &mut [f32],
            wt: &[f32],
            gt: &[f32],
        ) {
            let (k, np, opg) = (g.k, g.p, g.opg);
            assert!(gxp.len() >= g.xp_len && gt.len() >= g.gt_len);
            assert!(wt.len() >= g.groups * k * opg);
            for grp in 0..g.groups {
                let taps = &g.taps[grp * k..][..k];
                for (p, &pos) in g.pos.iter().enumerate() {
                    let mut co = 0;
                    while co < opg {
                        let left = opg - co;
                        // SAFETY: in bounds by the asserts above and the geometry's
                        // invariant; the CPU supports this level (module contract).
                        unsafe {
                            let x = gxp.as_mut_ptr().add(pos);
                            let w = wt.as_ptr().add(grp * k * opg + co);
                            let gy = gt.as_ptr().add(((grp * opg + co) * np + p) * L);
                            let stride = np * L;
                            if BWD_CO >= 16 && left >= 16 {
                                bwd_in_block::<16>(x, taps, w, opg, gy, stride);
                                co += 16;
                            } else if BWD_CO >= 8 && left >= 8 {
                                bwd_in_block::<8>(x, taps, w, opg, gy, stride);
                                co += 8;
                            } else if left >= 4 {
                                bwd_in_block::<4>(x, taps, w, opg, gy, stride);
                                co += 4;
                            } else if left >= 2 {
                                bwd_in_block::<2>(x, taps, w, opg, gy, stride);
                                co += 2;
                            } else {
                                bwd_in_block::<1>(x, taps, w, opg, gy, stride);
                                co += 1;
                            }
                        }
                    }
                }
            }
        }

        /// Bias gradient of one sub-chunk: `bias_acc[co][..] += sum_p gt[co][p][..]`.
        $(#[$attr])*
        pub(in crate::cpu::conv2d) unsafe fn backward_bias(
            g: &Geometry,
            gt: &[f32],
            bias_acc: &mut [f32],
        ) {
            let cout = g.groups * g.opg;
            assert!(gt.len() >= cout * g.p * L && bias_acc.len() >= cout * L);
            for co in 0..cout {
                // SAFETY: in bounds by the asserts above; the CPU supports this level
                // (module contract).
                unsafe {
                    let rows = gt.as_ptr().add(co * g.p * L);
                    // Two partial sums halve the dependency chain through the adds.
                    let (mut a0, mut a1) = (zero(), zero());
                    let mut p = 0;
                    while p + 1 < g.p {
                        a0 = add(a0, load(rows.add(p * L)));
                        a1 = add(a1, load(rows.add((p + 1) * L)));
                        p += 2;
                    }
                    if p < g.p {
                        a0 = add(a0, load(rows.add(p * L)));
                    }
                    let dst = bias_acc.as_mut_ptr().add(co * L);
                    store(dst, add(load(dst), add(a0, a1)));
                }
            }
        }

        /// A `CB x KB` block of the weight gradient, accumulated over `ng` sub-chunks
        /// and every position, then added to the lane accumulators.
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)] // a register-blocked inner kernel
        unsafe fn bwd_w_block<const CB: usize, const KB: usize>(
            g: &Geometry,
            xps: *const f32,
            gts: *const f32,
            ng: usize,
            taps: &[usize],
            gy_off: usize,
            acc_out: *mut f32,
            acc_stride: usize,
        ) {
            let stride = g.p * L;
            // SAFETY: (whole body) the caller passes pointers valid for `ng` sub-chunks
            // and every offset used (module contract).
            unsafe {
                let mut acc = [[zero(); KB]; CB];
                for s in 0..ng {
                    let x = xps.add(s * g.xp_len);
                    let gy = gts.add(s * g.gt_len + gy_off);
                    for (p, &pos) in g.pos.iter().enumerate() {
                        let mut xv = [zero(); KB];
                        for (v, &t) in xv.iter_mut().zip(taps) {
                            *v = load(x.add(pos + t));
                        }
                        for (c, row) in acc.iter_mut().enumerate() {
                            let gv = load(gy.add(c * stride + p * L));
                            for (a, &v) in row.iter_mut().zip(&xv) {
                                *a = fma(gv, v, *a);
                            }
                        }
                    }
                }
                for (c, row) in acc.iter().enumerate() {
                    for (kb, a) in row.iter().enumerate() {
                        let dst = acc_out.add(c * acc_stride + kb * L);
                        store(dst, add(load(dst), *a));
                    }
                }
            }
        }

        /// Weight gradient of `ng` consecutive sub-chunks (`xps`, `gts`), added to the lane
        /// accumulators `acc[co][k][..]`.
        $(#[$attr])*
        pub(in crate::cpu::conv2d) unsafe fn backward_weight(
            g: &Geometry,
            xps: &[f32],
            gts: &[f32],
            ng: usize,
            acc: &mut [f32],
        ) {
            let (k, np, opg) = (g.k, g.p, g.opg);
            assert!(xps.len() >= ng * g.xp_len && gts.len() >= ng * g.gt_len);
            assert!(acc.len() >= g.groups * opg * k * L);
            for grp in 0..g.groups {
                let taps = &g.taps[grp * k..][..k];
                let mut co = 0;
                while co < opg {
                    let cb = if opg - co >= WB_CO { WB_CO } else { 1 };
                    let mut k0 = 0;
                    while k0 < k {
                        let kb = if k - k0 >= WB_K { WB_K } else { 1 };
                        let row = grp * opg + co;
                        let gy_off = row * np * L;
                        // SAFETY: in bounds by the asserts above and the geometry's
                        // invariant; the CPU supports this level (module contract).
                        unsafe {
                            let out = acc.as_mut_ptr().add((row * k + k0) * L);
                            let (x, gy) = (xps.as_ptr(), gts.as_ptr());
                            let t = &taps[k0..k0 + kb];
                            match (cb == WB_CO, kb == WB_K) {
                                (true, true) => bwd_w_block::<WB_CO, WB_K>(g, x, gy, ng, t, gy_off, out, k * L),
                                (true, false) => bwd_w_block::<WB_CO, 1>(g, x, gy, ng, t, gy_off, out, k * L),
                                (false, true) => bwd_w_block::<1, WB_K>(g, x, gy, ng, t, gy_off, out, k * L),
                                (false, false) => bwd_w_block::<1, 1>(g, x, gy, ng, t, gy_off, out, k * L),
                            }
                        }
                        k0 += kb;
                    }
                    co += cb;
                }
            }
        }
    };
}

/// AVX-512F: one `__m512` per vector.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512 {
    use super::*;
    use std::arch::x86_64::*;

    type V = __m512;
    const FWD_CO: usize = 16;
    const BWD_CO: usize = 16;
    const WB_CO: usize = 4;
    const WB_K: usize = 6;

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn zero() -> V {
        _mm512_setzero_ps()
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(v: f32) -> V {
        _mm512_set1_ps(v)
    }

    /// Safety: `p` valid for 16 reads.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: forwarded to the caller.
        unsafe { _mm512_loadu_ps(p) }
    }

    /// Safety: `p` valid for 16 writes.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: forwarded to the caller.
        unsafe { _mm512_storeu_ps(p, v) }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn fma(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn add(a: V, b: V) -> V {
        _mm512_add_ps(a, b)
    }

    lane_kernels!(#[target_feature(enable = "avx512f")]);
}

/// AVX2 + FMA: two `__m256` per vector.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    #[derive(Clone, Copy)]
    struct V(__m256, __m256);
    const FWD_CO: usize = 4;
    const BWD_CO: usize = 4;
    const WB_CO: usize = 2;
    const WB_K: usize = 2;

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn zero() -> V {
        V(_mm256_setzero_ps(), _mm256_setzero_ps())
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn splat(v: f32) -> V {
        V(_mm256_set1_ps(v), _mm256_set1_ps(v))
    }

    /// Safety: `p` valid for 16 reads.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: forwarded to the caller.
        unsafe { V(_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8))) }
    }

    /// Safety: `p` valid for 16 writes.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: forwarded to the caller.
        unsafe {
            _mm256_storeu_ps(p, v.0);
            _mm256_storeu_ps(p.add(8), v.1);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn fma(a: V, b: V, c: V) -> V {
        V(
            _mm256_fmadd_ps(a.0, b.0, c.0),
            _mm256_fmadd_ps(a.1, b.1, c.1),
        )
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn add(a: V, b: V) -> V {
        V(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
    }

    lane_kernels!(#[target_feature(enable = "avx2,fma")]);
}

/// Portable: a plain `[f32; 16]` per vector (the compiler vectorises for the baseline).
pub(super) mod portable {
    use super::*;

    type V = [f32; L];
    const FWD_CO: usize = 4;
    const BWD_CO: usize = 4;
    const WB_CO: usize = 2;
    const WB_K: usize = 2;

    #[inline(always)]
    fn zero() -> V {
        [0.0; L]
    }

    #[inline(always)]
    fn splat(v: f32) -> V {
        [v; L]
    }

    /// Safety: `p` valid for 16 reads.
    #[inline(always)]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: forwarded to the caller; unaligned reads are allowed.
        unsafe { p.cast::<V>().read_unaligned() }
    }

    /// Safety: `p` valid for 16 writes.
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: V) {
        // SAFETY: forwarded to the caller; unaligned writes are allowed.
        unsafe { p.cast::<V>().write_unaligned(v) }
    }

    #[inline(always)]
    fn fma(a: V, b: V, c: V) -> V {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }

    #[inline(always)]
    fn add(a: V, b: V) -> V {
        std::array::from_fn(|i| a[i] + b[i])
    }

    lane_kernels!();
}

/// Transposes between NCHW images and lane-interleaved buffers.
///
/// `images_to_lanes` moves element `e` of image `l` (flat index within the image) to
/// `dst[map(e) + l]`, and `lanes_to_images` does the reverse, where `map(e)` is
/// `map[e]` or, without a map, `e * L`. Lanes `l >= nb` are written as zeros
/// (`images_to_lanes`) or ignored (`lanes_to_images`).
pub(super) mod transpose {
    use super::L;

    fn offset(map: Option<&[usize]>, e: usize) -> usize {
        map.map_or(e * L, |m| m[e])
    }

    /// Portable `images_to_lanes`.
    pub(in crate::cpu::conv2d) fn images_to_lanes(
        src: &[f32],
        img: usize,
        nb: usize,
        map: Option<&[usize]>,
        dst: &mut [f32],
    ) {
        for e in 0..img {
            let d = &mut dst[offset(map, e)..][..L];
            for (l, v) in d.iter_mut().enumerate() {
                *v = if l < nb { src[l * img + e] } else { 0.0 };
            }
        }
    }

    /// Portable `zero_lanes`: zeroes the `L` values at each offset (the padding border
    /// of a packed input).
    pub(in crate::cpu::conv2d) fn zero_lanes(offsets: &[usize], dst: &mut [f32]) {
        for &o in offsets {
            dst[o..o + L].fill(0.0);
        }
    }

    /// Portable `lanes_to_images`.
    pub(in crate::cpu::conv2d) fn lanes_to_images(
        src: &[f32],
        img: usize,
        nb: usize,
        map: Option<&[usize]>,
        dst: &mut [f32],
    ) {
        for e in 0..img {
            let s = &src[offset(map, e)..][..nb];
            for (l, &v) in s.iter().enumerate() {
                dst[l * img + e] = v;
            }
        }
    }

    /// Portable ReLU of a lanes buffer and its mask: positive values and NaN pass, the
    /// rest become `+0.0` (the elementwise kernel's values); bit `l` of `bits[e]` is set
    /// when lane `l` of element `e` is positive afterwards.
    #[inline(always)]
    pub(in crate::cpu::conv2d) fn relu_with_mask(v: &mut [f32], bits: &mut [u16]) {
        for (lanes, word) in v.chunks_exact_mut(L).zip(bits.iter_mut()) {
            let mut w = 0u16;
            for (l, x) in lanes.iter_mut().enumerate() {
                *x = if *x <= 0.0 { 0.0 } else { *x };
                w |= u16::from(*x > 0.0) << l;
            }
            *word = w;
        }
    }

    /// Portable ReLU derivative of a lanes buffer: lane `l` of element `e` of `g`
    /// keeps its value where bit `l` of `bits[e]` is set and becomes `0` elsewhere.
    #[inline(always)]
    pub(in crate::cpu::conv2d) fn gate_by_mask(g: &mut [f32], bits: &[u16]) {
        for (lanes, &word) in g.chunks_exact_mut(L).zip(bits) {
            for (l, x) in lanes.iter_mut().enumerate() {
                *x = if word >> l & 1 == 1 { *x } else { 0.0 };
            }
        }
    }

    /// AVX2 builds of [`relu_with_mask`] and [`gate_by_mask`] (the lanes transposes
    /// have no AVX2 version: the portable ones are used there).
    #[cfg(target_arch = "x86_64")]
    pub(in crate::cpu::conv2d) mod avx2 {
        /// [`relu_with_mask`](super::relu_with_mask) compiled for AVX2.
        ///
        /// # Safety
        /// The CPU supports AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub(in crate::cpu::conv2d) unsafe fn relu_with_mask(v: &mut [f32], bits: &mut [u16]) {
            super::relu_with_mask(v, bits)
        }

        /// [`gate_by_mask`](super::gate_by_mask) compiled for AVX2.
        ///
        /// # Safety
        /// The CPU supports AVX2 and FMA.
        #[target_feature(enable = "avx2,fma")]
        pub(in crate::cpu::conv2d) unsafe fn gate_by_mask(g: &mut [f32], bits: &[u16]) {
            super::gate_by_mask(g, bits)
        }
    }

    /// AVX-512 versions: 16 x 16 blocks transposed in registers.
    #[cfg(target_arch = "x86_64")]
    pub(in crate::cpu::conv2d) mod avx512 {
        use super::{offset, L};
        use std::arch::x86_64::*;

        /// Transposes a 16 x 16 block held as 16 row vectors.
        #[target_feature(enable = "avx512f")]
        #[inline]
        fn transpose16(r: &mut [__m512; 16]) {
            let mut t = [_mm512_setzero_ps(); 16];
            for i in 0..8 {
                t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            // Per 128-bit lane q, r[4a + e] = rows 4a..4a+3 at column 4q + e.
            for a in 0..4 {
                let (t0, t1, t2, t3) = (t[4 * a], t[4 * a + 1], t[4 * a + 2], t[4 * a + 3]);
                r[4 * a] = _mm512_shuffle_ps::<0x44>(t0, t2);
                r[4 * a + 1] = _mm512_shuffle_ps::<0xEE>(t0, t2);
                r[4 * a + 2] = _mm512_shuffle_ps::<0x44>(t1, t3);
                r[4 * a + 3] = _mm512_shuffle_ps::<0xEE>(t1, t3);
            }
            // Gather 128-bit lanes: first pairs of row groups, then all four.
            for e in 0..4 {
                t[e] = _mm512_shuffle_f32x4::<0x88>(r[e], r[4 + e]);
                t[4 + e] = _mm512_shuffle_f32x4::<0xDD>(r[e], r[4 + e]);
                t[8 + e] = _mm512_shuffle_f32x4::<0x88>(r[8 + e], r[12 + e]);
                t[12 + e] = _mm512_shuffle_f32x4::<0xDD>(r[8 + e], r[12 + e]);
            }
            for e in 0..8 {
                r[e] = _mm512_shuffle_f32x4::<0x88>(t[e], t[8 + e]);
                r[8 + e] = _mm512_shuffle_f32x4::<0xDD>(t[e], t[8 + e]);
            }
        }

        /// `images_to_lanes` with 16 x 16 register transposes.
        ///
        /// # Safety
        /// The CPU supports AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(in crate::cpu::conv2d) unsafe fn images_to_lanes(
            src: &[f32],
            img: usize,
            nb: usize,
            map: Option<&[usize]>,
            dst: &mut [f32],
        ) {
            assert!(nb <= L && src.len() >= nb * img);
            if let Some(m) = map {
                assert!(m.len() >= img && m[..img].iter().all(|&o| o + L <= dst.len()));
            } else {
                assert!(dst.len() >= img * L);
            }
            let mut e = 0;
            while e < img {
                let len = (img - e).min(L);
                let mask = ((1u32 << len) - 1) as u16;
                let mut r = [_mm512_setzero_ps(); 16];
                for (l, row) in r.iter_mut().enumerate().take(nb) {
                    let p = src.as_ptr().wrapping_add(l * img + e);
                    // SAFETY: the mask enables only elements e..e + len of image l, all
                    // inside `src` (asserted above); a full block needs no mask.
                    *row = unsafe {
                        if len == L {
                            _mm512_loadu_ps(p)
                        } else {
                            _mm512_maskz_loadu_ps(mask, p)
                        }
                    };
                }
                transpose16(&mut r);
                for (j, col) in r.iter().enumerate().take(len) {
                    // SAFETY: every offset plus L is within `dst` (asserted above).
                    unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(offset(map, e + j)), *col) };
                }
                e += len;
            }
        }

        /// `relu_with_mask` with one compare, one masked store and one mask store per
        /// element.
        ///
        /// # Safety
        /// The CPU supports AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(in crate::cpu::conv2d) unsafe fn relu_with_mask(v: &mut [f32], bits: &mut [u16]) {
            assert!(bits.len() * L >= v.len() && v.len().is_multiple_of(L));
            let zero = _mm512_setzero_ps();
            for (e, word) in bits.iter_mut().enumerate().take(v.len() / L) {
                // SAFETY: element e's L lanes are inside `v` (asserted above).
                unsafe {
                    let p = v.as_mut_ptr().add(e * L);
                    let x = _mm512_loadu_ps(p);
                    // Lanes at or below zero become +0 (NaN compares false and passes).
                    let cut = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(x, zero);
                    _mm512_mask_storeu_ps(p, cut, zero);
                    *word = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, zero);
                }
            }
        }

        /// `gate_by_mask` with one masked move per element.
        ///
        /// # Safety
        /// The CPU supports AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(in crate::cpu::conv2d) unsafe fn gate_by_mask(g: &mut [f32], bits: &[u16]) {
            assert!(bits.len() * L >= g.len() && g.len().is_multiple_of(L));
            for (e, &word) in bits.iter().enumerate().take(g.len() / L) {
                // SAFETY: element e's L lanes are inside `g` (asserted above).
                unsafe {
                    let p = g.as_mut_ptr().add(e * L);
                    _mm512_storeu_ps(p, _mm512_maskz_mov_ps(word, _mm512_loadu_ps(p)));
                }
            }
        }

        /// `zero_lanes` with one 64-byte store per offset (the portable code compiles to
        /// four 16-byte stores, and on the lesson's 4x4 and 2x2 maps, where most of the
        /// padded buffer is border, that was a third of the packing time).
        ///
        /// # Safety
        /// The CPU supports AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(in crate::cpu::conv2d) unsafe fn zero_lanes(offsets: &[usize], dst: &mut [f32]) {
            assert!(offsets.iter().all(|&o| o + L <= dst.len()));
            let zero = _mm512_setzero_ps();
            for &o in offsets {
                // SAFETY: o + L <= dst.len() (asserted above).
                unsafe { _mm512_storeu_ps(dst.as_mut_ptr().add(o), zero) };
            }
        }

        /// `lanes_to_images` with 16 x 16 register transposes.
        ///
        /// # Safety
        /// The CPU supports AVX-512F.
        #[target_feature(enable = "avx512f")]
        pub(in crate::cpu::conv2d) unsafe fn lanes_to_images(
            src: &[f32],
            img: usize,
            nb: usize,
            map: Option<&[usize]>,
            dst: &mut [f32],
        ) {
            assert!(nb <= L && dst.len() >= nb * img);
            if let Some(m) = map {
                assert!(m.len() >= img && m[..img].iter().all(|&o| o + L <= src.len()));
            } else {
                assert!(src.len() >= img * L);
            }
            let mut e = 0;
            while e < img {
                let len = (img - e).min(L);
                let mask = ((1u32 << len) - 1) as u16;
                let mut r = [_mm512_setzero_ps(); 16];
                for (j, col) in r.iter_mut().enumerate().take(len) {
                    // SAFETY: every offset plus L is within `src` (asserted above).
                    *col = unsafe { _mm512_loadu_ps(src.as_ptr().add(offset(map, e + j))) };
                }
                transpose16(&mut r);
                for (l, row) in r.iter().enumerate().take(nb) {
                    let p = dst.as_mut_ptr().wrapping_add(l * img + e);
                    // SAFETY: the mask enables only elements e..e + len of image l, all
                    // inside `dst` (asserted above); a full block needs no mask (and
                    // masked stores are slow on some cores).
                    unsafe {
                        if len == L {
                            _mm512_storeu_ps(p, *row)
                        } else {
                            _mm512_mask_storeu_ps(p, mask, *row)
                        }
                    };
                }
                e += len;
            }
        }
    }
}
