//! The batch-in-lanes f32 convolution: 16 images side by side in every SIMD vector.
//!
//! im2col + gemm pays for the im2col copy, which on small feature maps (the lesson's
//! 28x28 down to 2x2) is a storm of short strided runs that costs more than the gemm.
//! Here a sub-chunk of [`L`] = 16 images is first transposed into a zero-padded
//! `[C_in][H + 2pH][W + 2pW][16]` buffer, so the 16 values one kernel tap of one output
//! position reads across the images form a single contiguous vector, at an offset that is
//! the sum of a per-tap and a per-position constant (the [`Geometry`]). Padding needs no
//! branch and any stride, dilation and group count is just a different offset table.
//!
//! - forward: `y[co][p] = b[co] + sum_k W[co][k] x[pos[p] + tap[k]]`: one vector load per
//!   tap feeds a block of output channels held in registers;
//! - input gradient: the same sum scattered, `gx[pos[p] + tap[k]] += sum_co W[co][k]
//!   gy[co][p]`, with the output-gradient vectors held in registers;
//! - weight gradient: `dW[co][k] += sum_p gy[co][p] x[pos[p] + tap[k]]`, register-blocked
//!   over channels and taps, accumulated per lane across the thread's images and summed
//!   across lanes once at the end.
//!
//! Results come back to NCHW by the inverse transpose. Sub-chunks run in parallel with
//! rayon; the weight gradient uses one contiguous run of sub-chunks per thread and adds
//! the per-thread partials in a fixed order.

use rayon::prelude::*;

use super::lanes_kernels::{self, transpose};
use super::{with_scratch, Conv2dShape};
use crate::cpu::dispatch::SimdLevel;

/// Images per vector (sub-chunk size).
pub(super) const L: usize = 16;

/// Offsets (in f32 elements) into the padded, lane-interleaved buffers.
pub(super) struct Geometry {
    /// Per input element `(c, h, w)` of an image: its offset in the padded buffer.
    in_map: Vec<usize>,
    /// Offsets of the padding border in the padded buffer (zeroed when packing).
    pad_offsets: Vec<usize>,
    /// Elements of one sub-chunk's padded input: `C_in * hp * wp * L`.
    pub xp_len: usize,
    /// Elements of one sub-chunk's output (gradient): `C_out * P * L`.
    pub gt_len: usize,
    /// Per group, per tap `k = (c, i, j)`: offset of the tap relative to a position.
    pub taps: Vec<usize>,
    /// Per output position `p = (oh, ow)`: offset of its top-left tap.
    pub pos: Vec<usize>,
    /// Taps per group `K`, output positions `P`, output channels per group, groups.
    pub k: usize,
    pub p: usize,
    pub opg: usize,
    pub groups: usize,
}

impl Geometry {
    pub(super) fn new(s: &Conv2dShape) -> Self {
        let prm = s.params();
        let (h, w) = s.input_hw();
        let (kh, kw) = s.kernel_hw();
        let (oh, ow) = s.output_hw();
        let (hp, wp) = (h + 2 * prm.padding.0, w + 2 * prm.padding.1);
        let cpg = s.in_per_group();
        let taps: Vec<usize> = (0..prm.groups)
            .flat_map(|g| {
                (0..cpg).flat_map(move |c| {
                    (0..kh).flat_map(move |i| {
                        (0..kw).map(move |j| {
                            (((g * cpg + c) * hp + i * prm.dilation.0) * wp + j * prm.dilation.1)
                                * L
                        })
                    })
                })
            })
            .collect();
        let pos: Vec<usize> = (0..oh)
            .flat_map(|y| (0..ow).map(move |x| (y * prm.stride.0 * wp + x * prm.stride.1) * L))
            .collect();
        let xp_len = s.in_channels() * hp * wp * L;
        let (ph, pw) = prm.padding;
        let mut in_map = Vec::with_capacity(s.input_image_len());
        let mut pad_offsets = Vec::new();
        for c in 0..s.in_channels() {
            for y in 0..hp {
                for x in 0..wp {
                    let off = ((c * hp + y) * wp + x) * L;
                    if (ph..ph + h).contains(&y) && (pw..pw + w).contains(&x) {
                        in_map.push(off);
                    } else {
                        pad_offsets.push(off);
                    }
                }
            }
        }
        // The invariant the kernels rely on: every tap of every position is in bounds.
        // Conv2dShape guarantees it ((out - 1) * stride + (k - 1) * dilation < padded).
        let max_tap = taps.iter().max().copied().unwrap_or(0);
        let max_pos = pos.iter().max().copied().unwrap_or(0);
        assert!(
            max_tap + max_pos + L <= xp_len,
            "conv2d lanes geometry out of bounds"
        );
        Self {
            in_map,
            pad_offsets,
            xp_len,
            gt_len: s.out_channels() * oh * ow * L,
            taps,
            pos,
            k: s.col_rows(),
            p: oh * ow,
            opg: s.out_per_group(),
            groups: prm.groups,
        }
    }
}

/// Whether the lanes path is expected to beat im2col + gemm for `s` (the `Auto` choice):
/// small padded images (a sub-chunk's padded input within 256 KiB), a weight whose
/// per-lane gradient accumulators stay within 4 MiB, and at least half a vector of images.
pub(super) fn preferred(s: &Conv2dShape) -> bool {
    let (h, w) = s.input_hw();
    let p = s.params().padding;
    let padded = s.in_channels() * (h + 2 * p.0) * (w + 2 * p.1);
    padded <= 4096 && s.weight_len() <= 65_536 && s.batch() >= L / 2
}

/// `wt[g][k][co] = W[g * opg + co][k]`: per tap, the output channels side by side.
fn transpose_weights(s: &Conv2dShape, weight: &[f32]) -> Vec<f32> {
    let (k, opg) = (s.col_rows(), s.out_per_group());
    let mut wt = vec![0.0; weight.len()];
    for g in 0..s.params().groups {
        for co in 0..opg {
            for kk in 0..k {
                wt[(g * k + kk) * opg + co] = weight[(g * opg + co) * k + kk];
            }
        }
    }
    wt
}

/// Zeroes the padding border of a `[C][hp][wp][L]` buffer. Packing writes only the
/// interior, so a buffer reused for several sub-chunks of one call needs this once.
fn zero_padding(level: SimdLevel, g: &Geometry, xp: &mut [f32]) {
    let xp = &mut xp[..g.xp_len];
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the function asserts its bounds.
            unsafe { transpose::avx512::zero_lanes(&g.pad_offsets, xp) }
        }
        _ => transpose::zero_lanes(&g.pad_offsets, xp),
    }
}

/// Transposes `nb <= L` NCHW images into the interior of the `[C][hp][wp][L]` buffer,
/// whose padding border [`zero_padding`] has zeroed.
fn pack_input(
    level: SimdLevel,
    s: &Conv2dShape,
    g: &Geometry,
    x: &[f32],
    nb: usize,
    xp: &mut [f32],
) {
    let xp = &mut xp[..g.xp_len];
    images_to_lanes(level, x, s.input_image_len(), nb, Some(&g.in_map), xp);
}

/// The inverse of [`pack_input`] for the first `nb` lanes (padding dropped).
fn unpack_input(
    level: SimdLevel,
    s: &Conv2dShape,
    g: &Geometry,
    xp: &[f32],
    nb: usize,
    x: &mut [f32],
) {
    lanes_to_images(level, xp, s.input_image_len(), nb, Some(&g.in_map), x);
}

/// Transposes `nb` NCHW output(-gradient) images into `[C_out][P][L]`, zeroing the
/// unused lanes.
fn pack_output(
    level: SimdLevel,
    s: &Conv2dShape,
    g: &Geometry,
    y: &[f32],
    nb: usize,
    yt: &mut [f32],
) {
    images_to_lanes(
        level,
        y,
        s.output_image_len(),
        nb,
        None,
        &mut yt[..g.gt_len],
    );
}

/// The inverse of [`pack_output`] for the first `nb` lanes.
fn unpack_output(
    level: SimdLevel,
    s: &Conv2dShape,
    g: &Geometry,
    yt: &[f32],
    nb: usize,
    y: &mut [f32],
) {
    lanes_to_images(level, &yt[..g.gt_len], s.output_image_len(), nb, None, y);
}

/// Zeroes `buf` with `memset` (all-zero bytes are `0.0f32`): `fill(0.0)` on `f32`
/// compiles to a loop of 16-byte stores in this crate's baseline code.
fn zero(buf: &mut [f32]) {
    // SAFETY: the pointer and length come from the slice; every f32 bit pattern is valid
    // and the all-zero one is +0.0.
    unsafe { std::ptr::write_bytes(buf.as_mut_ptr(), 0, buf.len()) };
}

/// ReLU in place on a lanes buffer (in L2), with the values of the elementwise
/// kernel: `x > 0` and NaN pass, everything else (negative values and both zeros)
/// becomes `+0.0`; and the ReLU mask of the result (see
/// [`relu_mask_len`](super::relu_mask_len)): bit `l` of `bits[e]` says whether lane `l`
/// of element `e` is positive.
fn relu_with_mask(level: SimdLevel, v: &mut [f32], bits: &mut [u16]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is supported by this CPU; the function asserts its bounds.
        SimdLevel::Avx512 => unsafe { transpose::avx512::relu_with_mask(v, bits) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is supported by this CPU.
        SimdLevel::Avx2Fma => unsafe { transpose::avx2::relu_with_mask(v, bits) },
        _ => transpose::relu_with_mask(v, bits),
    }
}

/// The output gradient of a convolution followed by a ReLU, through the ReLU: lane `l`
/// of element `e` of `gt` keeps its value where bit `l` of `bits[e]` is set and is
/// zeroed elsewhere, as the elementwise `relu_backward` does.
fn gate_by_mask(level: SimdLevel, gt: &mut [f32], bits: &[u16]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is supported by this CPU; the function asserts its bounds.
        SimdLevel::Avx512 => unsafe { transpose::avx512::gate_by_mask(gt, bits) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is supported by this CPU.
        SimdLevel::Avx2Fma => unsafe { transpose::avx2::gate_by_mask(gt, bits) },
        _ => transpose::gate_by_mask(gt, bits),
    }
}

/// Packs sub-chunk `sub` (`nb` images) of the output gradient into `gt`, taking it
/// through the ReLU when the convolution's output went through one (`relu_mask`, the
/// mask [`forward`] wrote).
#[allow(clippy::too_many_arguments)]
fn pack_grad_out(
    level: SimdLevel,
    s: &Conv2dShape,
    g: &Geometry,
    grad_out: &[f32],
    relu_mask: Option<&[u16]>,
    sub: usize,
    nb: usize,
    gt: &mut [f32],
) {
    let out_img = s.output_image_len();
    let gy = &grad_out[sub * L * out_img..][..nb * out_img];
    pack_output(level, s, g, gy, nb, gt);
    if let Some(mask) = relu_mask {
        gate_by_mask(
            level,
            &mut gt[..g.gt_len],
            &mask[sub * out_img..][..out_img],
        );
    }
}

fn images_to_lanes(
    level: SimdLevel,
    src: &[f32],
    img: usize,
    nb: usize,
    map: Option<&[usize]>,
    dst: &mut [f32],
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the function asserts its bounds.
            unsafe { transpose::avx512::images_to_lanes(src, img, nb, map, dst) }
        }
        _ => transpose::images_to_lanes(src, img, nb, map, dst),
    }
}

fn lanes_to_images(
    level: SimdLevel,
    src: &[f32],
    img: usize,
    nb: usize,
    map: Option<&[usize]>,
    dst: &mut [f32],
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the function asserts its bounds.
            unsafe { transpose::avx512::lanes_to_images(src, img, nb, map, dst) }
        }
        _ => transpose::lanes_to_images(src, img, nb, map, dst),
    }
}

/// Runs the forward kernel of `level` (already clamped to what the CPU supports).
fn kernel_forward(
    level: SimdLevel,
    g: &Geometry,
    xp: &[f32],
    wt: &[f32],
    b: &[f32],
    yt: &mut [f32],
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx512::forward(g, xp, wt, b, yt) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx2::forward(g, xp, wt, b, yt) }
        }
        _ => {
            // SAFETY: portable code; the kernel asserts its lengths.
            unsafe { lanes_kernels::portable::forward(g, xp, wt, b, yt) }
        }
    }
}

fn kernel_backward_input(level: SimdLevel, g: &Geometry, gxp: &mut [f32], wt: &[f32], gt: &[f32]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx512::backward_input(g, gxp, wt, gt) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx2::backward_input(g, gxp, wt, gt) }
        }
        _ => {
            // SAFETY: portable code; the kernel asserts its lengths.
            unsafe { lanes_kernels::portable::backward_input(g, gxp, wt, gt) }
        }
    }
}

fn kernel_backward_bias(level: SimdLevel, g: &Geometry, gt: &[f32], bias_acc: &mut [f32]) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx512::backward_bias(g, gt, bias_acc) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx2::backward_bias(g, gt, bias_acc) }
        }
        _ => {
            // SAFETY: portable code; the kernel asserts its lengths.
            unsafe { lanes_kernels::portable::backward_bias(g, gt, bias_acc) }
        }
    }
}

fn kernel_backward_weight(
    level: SimdLevel,
    g: &Geometry,
    xps: &[f32],
    gts: &[f32],
    ng: usize,
    acc: &mut [f32],
) {
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx512::backward_weight(g, xps, gts, ng, acc) }
        }
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2Fma => {
            // SAFETY: the level is supported by this CPU; the kernel asserts its lengths.
            unsafe { lanes_kernels::avx2::backward_weight(g, xps, gts, ng, acc) }
        }
        _ => {
            // SAFETY: portable code; the kernel asserts its lengths.
            unsafe { lanes_kernels::portable::backward_weight(g, xps, gts, ng, acc) }
        }
    }
}

/// Forward pass; arguments already validated, `level` clamped, batch non-empty.
pub(super) fn forward(
    level: SimdLevel,
    s: &Conv2dShape,
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    relu_mask: Option<&mut [u16]>,
    out: &mut [f32],
) {
    let g = Geometry::new(s);
    let wt = transpose_weights(s, weight);
    let zeros;
    let bias = match bias {
        Some(b) => b,
        None => {
            zeros = vec![0.0; s.out_channels()];
            &zeros
        }
    };
    let (in_img, out_img) = (s.input_image_len(), s.output_image_len());
    // Several sub-chunks per task share one scratch buffer, whose padding is zeroed
    // once; about four tasks per thread keep the threads balanced.
    let subs = s.batch().div_ceil(L);
    let per_task = (subs / (4 * rayon::current_num_threads())).clamp(1, 8);
    // Per task: its part of the ReLU mask (one word per output element per sub-chunk).
    let mut masks: Vec<Option<&mut [u16]>> = match relu_mask {
        Some(mask) => mask.chunks_mut(per_task * out_img).map(Some).collect(),
        None => (0..subs.div_ceil(per_task)).map(|_| None).collect(),
    };
    out.par_chunks_mut(per_task * L * out_img)
        .zip(masks.par_iter_mut())
        .enumerate()
        .for_each(|(task, (out, mask))| {
            with_scratch(g.xp_len + g.gt_len, |buf: &mut [f32]| {
                let (xp, yt) = buf.split_at_mut(g.xp_len);
                zero_padding(level, &g, xp);
                for (j, out) in out.chunks_mut(L * out_img).enumerate() {
                    let nb = out.len() / out_img;
                    let x = &input[(task * per_task + j) * L * in_img..][..nb * in_img];
                    pack_input(level, s, &g, x, nb, xp);
                    kernel_forward(level, &g, xp, &wt, bias, yt);
                    if let Some(mask) = mask.as_deref_mut() {
                        let bits = &mut mask[j * out_img..][..out_img];
                        relu_with_mask(level, &mut yt[..g.gt_len], bits);
                        if nb < L {
                            // The unused lanes hold the bias: no image, no bit.
                            let used = ((1u32 << nb) - 1) as u16;
                            bits.iter_mut().for_each(|w| *w &= used);
                        }
                    }
                    unpack_output(level, s, &g, yt, nb, out);
                }
            });
        });
}

/// Input gradient; arguments already validated, `level` clamped, batch non-empty.
pub(super) fn backward_input(
    level: SimdLevel,
    s: &Conv2dShape,
    grad_out: &[f32],
    relu_mask: Option<&[u16]>,
    weight: &[f32],
    grad_input: &mut [f32],
) {
    let g = Geometry::new(s);
    let wt = transpose_weights(s, weight);
    let in_img = s.input_image_len();
    grad_input
        .par_chunks_mut(L * in_img)
        .enumerate()
        .for_each(|(chunk, gx)| {
            let nb = gx.len() / in_img;
            with_scratch(g.xp_len + g.gt_len, |buf: &mut [f32]| {
                let (gxp, gt) = buf.split_at_mut(g.xp_len);
                pack_grad_out(level, s, &g, grad_out, relu_mask, chunk, nb, gt);
                zero(gxp);
                kernel_backward_input(level, &g, gxp, &wt, gt);
                unpack_input(level, s, &g, gxp, nb, gx);
            });
        });
}

/// Weight (and bias) gradient; arguments already validated, `level` clamped. Returns
/// the gradient as `[grad_weight | grad_bias]` when `with_bias`.
pub(super) fn backward_weight(
    level: SimdLevel,
    s: &Conv2dShape,
    input: &[f32],
    grad_out: &[f32],
    relu_mask: Option<&[u16]>,
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    backward(
        level,
        s,
        input,
        grad_out,
        relu_mask,
        None,
        grad_weight,
        grad_bias,
    );
}

/// The input gradient to compute beside the weight gradient in [`backward`]: the
/// weight and the `grad_input` to overwrite.
pub(super) struct InputGrad<'a> {
    pub weight: &'a [f32],
    pub grad_input: &'a mut [f32],
}

/// Weight (and bias) gradient, and the input gradient too when `input_grad` is given;
/// arguments already validated, `level` clamped.
///
/// Each sub-chunk's output gradient is transposed into lanes once and feeds both
/// kernels, which saves the second transpose that separate [`backward_input`] and
/// [`backward_weight`] calls pay. The batch is split into one contiguous run of
/// sub-chunks per thread and the per-thread weight partials are added in run order, so
/// the weight gradient is the same bit for bit with or without the input gradient, and
/// the input gradient is the same as [`backward_input`]'s.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    level: SimdLevel,
    s: &Conv2dShape,
    input: &[f32],
    grad_out: &[f32],
    relu_mask: Option<&[u16]>,
    input_grad: Option<InputGrad<'_>>,
    grad_weight: &mut [f32],
    grad_bias: Option<&mut [f32]>,
) {
    let g = Geometry::new(s);
    let (n, cout, kk) = (s.batch(), s.out_channels(), g.k);
    let in_img = s.input_image_len();
    let subs = n.div_ceil(L);
    let threads = subs.min(rayon::current_num_threads()).max(1);
    let range = |t: usize| (t * subs / threads, (t + 1) * subs / threads);
    // Sub-chunks per kernel call: the lane accumulators are read and written once per
    // call, so several sub-chunks amortise that, within ~512 KiB of scratch.
    let per_call = (131_072 / (g.xp_len + g.gt_len)).clamp(1, 8);
    let with_gx = input_grad.is_some();
    // Per thread: its slice of the input gradient (its images), if one is wanted.
    let (wt, mut gx_runs) = match input_grad {
        Some(InputGrad { weight, grad_input }) => {
            let mut runs = Vec::with_capacity(threads);
            let mut rest = grad_input;
            for t in 0..threads {
                let (lo, hi) = range(t);
                let images = (hi * L).min(n) - lo * L;
                let (run, tail) = rest.split_at_mut(images * in_img);
                runs.push(Some(run));
                rest = tail;
            }
            (transpose_weights(s, weight), runs)
        }
        None => (Vec::new(), (0..threads).map(|_| None).collect()),
    };
    let partials: Vec<Vec<f32>> = gx_runs
        .par_iter_mut()
        .enumerate()
        .map(|(t, gx_run)| {
            let (lo, hi) = range(t);
            let mut acc = vec![0.0f32; cout * kk * L];
            let mut bias_acc = vec![0.0f32; cout * L];
            let gxp_len = if with_gx { g.xp_len } else { 0 };
            let slots = per_call.min(hi - lo);
            with_scratch(
                slots * (g.xp_len + g.gt_len) + gxp_len,
                |buf: &mut [f32]| {
                    let (xps, rest) = buf.split_at_mut(slots * g.xp_len);
                    let (gts, gxp) = rest.split_at_mut(slots * g.gt_len);
                    for xp in xps.chunks_exact_mut(g.xp_len) {
                        zero_padding(level, &g, xp);
                    }
                    for first in (lo..hi).step_by(per_call) {
                        let ng = per_call.min(hi - first);
                        for j in 0..ng {
                            let sub = first + j;
                            let nb = L.min(n - sub * L);
                            let x = &input[sub * L * in_img..][..nb * in_img];
                            pack_input(level, s, &g, x, nb, &mut xps[j * g.xp_len..][..g.xp_len]);
                            let gt = &mut gts[j * g.gt_len..][..g.gt_len];
                            pack_grad_out(level, s, &g, grad_out, relu_mask, sub, nb, gt);
                            kernel_backward_bias(level, &g, gt, &mut bias_acc);
                            if let Some(gx_run) = gx_run.as_deref_mut() {
                                let gx = &mut gx_run[(sub - lo) * L * in_img..][..nb * in_img];
                                zero(gxp);
                                kernel_backward_input(level, &g, gxp, &wt, gt);
                                unpack_input(level, s, &g, gxp, nb, gx);
                            }
                        }
                        kernel_backward_weight(level, &g, xps, gts, ng, &mut acc);
                    }
                },
            );
            // Sum the lanes: [grad_weight | grad_bias] of this thread's images.
            acc.chunks_exact(L)
                .chain(bias_acc.chunks_exact(L))
                .map(|lanes| lanes.iter().sum())
                .collect()
        })
        .collect();
    let wlen = s.weight_len();
    for (i, gw) in grad_weight.iter_mut().enumerate() {
        *gw = partials.iter().map(|p| p[i]).sum();
    }
    if let Some(gb) = grad_bias {
        for (i, b) in gb.iter_mut().enumerate() {
            *b = partials.iter().map(|p| p[wlen + i]).sum();
        }
    }
}
