//! Memory movement between NCHW tensors and the gemm operands of a chunk of images.
//!
//! For a chunk of `nb` images and one group, the column matrix is `K x (nb * P)`
//! row-major with `K = C_in/groups * kH * kW` (row `k = (c * kH + i) * kW + j`, matching
//! the weight layout) and `P = H_out * W_out`: column `b * P + oh * W_out + ow` holds the
//! input pixel tap `(i, j)` of output position `(oh, ow)` of image `b` reads, or 0 where
//! that tap falls on padding.

use super::{Conv2dShape, ConvScalar};

/// Output positions `o` in `[lo, hi)` whose tap lands inside the input:
/// `0 <= o * stride + offset - pad < size`, where `offset` is the tap's dilated position.
fn valid_range(
    out: usize,
    size: usize,
    stride: usize,
    pad: usize,
    offset: usize,
) -> (usize, usize) {
    let lo = if offset >= pad {
        0
    } else {
        (pad - offset).div_ceil(stride)
    };
    let hi = if size + pad <= offset {
        0
    } else {
        out.min((size - 1 + pad - offset) / stride + 1)
    };
    (lo.min(hi), hi)
}

/// Per-tap geometry shared by im2col and col2im: for each kernel row `i` the valid output
/// rows and for each kernel column `j` the valid output columns.
struct Taps {
    rows: Vec<(usize, usize)>,
    cols: Vec<(usize, usize)>,
}

impl Taps {
    fn new(s: &Conv2dShape) -> Self {
        let p = s.params();
        let (h, w) = s.input_hw();
        let (kh, kw) = s.kernel_hw();
        let (oh, ow) = s.output_hw();
        Self {
            rows: (0..kh)
                .map(|i| valid_range(oh, h, p.stride.0, p.padding.0, i * p.dilation.0))
                .collect(),
            cols: (0..kw)
                .map(|j| valid_range(ow, w, p.stride.1, p.padding.1, j * p.dilation.1))
                .collect(),
        }
    }
}

/// `dst[o] = src[o * stride]` for every `o` in `dst`.
#[inline(always)]
fn copy_strided<T: Copy>(src: &[T], dst: &mut [T], stride: usize) {
    if stride == 1 {
        dst.copy_from_slice(&src[..dst.len()]);
    } else {
        for (d, s) in dst.iter_mut().zip(src.iter().step_by(stride)) {
            *d = *s;
        }
    }
}

/// `dst[o * stride] += src[o]` for every `o` in `src`.
#[inline(always)]
fn add_strided<T: ConvScalar>(src: &[T], dst: &mut [T], stride: usize) {
    if stride == 1 {
        for (d, s) in dst[..src.len()].iter_mut().zip(src) {
            *d += *s;
        }
    } else {
        for (d, s) in dst.iter_mut().step_by(stride).zip(src) {
            *d += *s;
        }
    }
}

/// Fills `col` (`K x nb*P`) from `nb` consecutive images of `input`, channels of group `g`.
pub(super) fn im2col<T: ConvScalar>(
    s: &Conv2dShape,
    input: &[T],
    nb: usize,
    g: usize,
    col: &mut [T],
) {
    let p = s.params();
    let (h, w) = s.input_hw();
    let (kh, kw) = s.kernel_hw();
    let (_, ow) = s.output_hw();
    let plane = s.out_plane();
    let bp = nb * plane;
    let cpg = s.in_per_group();
    let taps = Taps::new(s);
    debug_assert_eq!(col.len(), s.col_rows() * bp);
    for (b, image) in input.chunks_exact(s.input_image_len()).take(nb).enumerate() {
        for cl in 0..cpg {
            let src_c = &image[(g * cpg + cl) * h * w..][..h * w];
            for i in 0..kh {
                let (rlo, rhi) = taps.rows[i];
                for j in 0..kw {
                    let (clo, chi) = taps.cols[j];
                    let k = (cl * kh + i) * kw + j;
                    let dst = &mut col[k * bp + b * plane..][..plane];
                    dst[..rlo * ow].fill(T::ZERO);
                    dst[rhi * ow..].fill(T::ZERO);
                    for oh in rlo..rhi {
                        let ih = oh * p.stride.0 + i * p.dilation.0 - p.padding.0;
                        let row = &mut dst[oh * ow..][..ow];
                        row[..clo].fill(T::ZERO);
                        row[chi..].fill(T::ZERO);
                        if chi > clo {
                            let iw = clo * p.stride.1 + j * p.dilation.1 - p.padding.1;
                            copy_strided(&src_c[ih * w + iw..], &mut row[clo..chi], p.stride.1);
                        }
                    }
                }
            }
        }
    }
}

/// Scatter-adds `col` (`K x nb*P`) into `nb` consecutive images of `grad_input`, channels
/// of group `g` (the adjoint of [`im2col`]). Taps on padding are dropped.
pub(super) fn col2im_add<T: ConvScalar>(
    s: &Conv2dShape,
    col: &[T],
    nb: usize,
    g: usize,
    grad_input: &mut [T],
) {
    let p = s.params();
    let (h, w) = s.input_hw();
    let (kh, kw) = s.kernel_hw();
    let (_, ow) = s.output_hw();
    let plane = s.out_plane();
    let bp = nb * plane;
    let cpg = s.in_per_group();
    let taps = Taps::new(s);
    debug_assert_eq!(col.len(), s.col_rows() * bp);
    for (b, image) in grad_input
        .chunks_exact_mut(s.input_image_len())
        .take(nb)
        .enumerate()
    {
        for cl in 0..cpg {
            let dst_c = &mut image[(g * cpg + cl) * h * w..][..h * w];
            for i in 0..kh {
                let (rlo, rhi) = taps.rows[i];
                for j in 0..kw {
                    let (clo, chi) = taps.cols[j];
                    if chi <= clo {
                        continue;
                    }
                    let k = (cl * kh + i) * kw + j;
                    let src = &col[k * bp + b * plane..][..plane];
                    let iw = clo * p.stride.1 + j * p.dilation.1 - p.padding.1;
                    for oh in rlo..rhi {
                        let ih = oh * p.stride.0 + i * p.dilation.0 - p.padding.0;
                        add_strided(
                            &src[oh * ow + clo..oh * ow + chi],
                            &mut dst_c[ih * w + iw..],
                            p.stride.1,
                        );
                    }
                }
            }
        }
    }
}

/// Copies group `g` of `nb` NCHW output(-gradient) images into `dst` (`C_out/groups x
/// nb*P`, row-major): the gemm operand layout.
pub(super) fn gather_group<T: ConvScalar>(
    s: &Conv2dShape,
    src: &[T],
    nb: usize,
    g: usize,
    dst: &mut [T],
) {
    let plane = s.out_plane();
    let bp = nb * plane;
    let opg = s.out_per_group();
    for (b, image) in src.chunks_exact(s.output_image_len()).take(nb).enumerate() {
        for co in 0..opg {
            dst[co * bp + b * plane..][..plane]
                .copy_from_slice(&image[(g * opg + co) * plane..][..plane]);
        }
    }
}

/// The inverse of [`gather_group`], adding the bias: writes `src` (`C_out/groups x
/// nb*P`) into group `g` of `nb` NCHW output images.
pub(super) fn scatter_group<T: ConvScalar>(
    s: &Conv2dShape,
    src: &[T],
    nb: usize,
    g: usize,
    bias: Option<&[T]>,
    dst: &mut [T],
) {
    let plane = s.out_plane();
    let bp = nb * plane;
    let opg = s.out_per_group();
    for (b, image) in dst
        .chunks_exact_mut(s.output_image_len())
        .take(nb)
        .enumerate()
    {
        for co in 0..opg {
            let out = &mut image[(g * opg + co) * plane..][..plane];
            let row = &src[co * bp + b * plane..][..plane];
            match bias {
                Some(bias) => {
                    let bv = bias[g * opg + co];
                    for (o, &v) in out.iter_mut().zip(row) {
                        *o = v + bv;
                    }
                }
                None => out.copy_from_slice(row),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_range;

    #[test]
    fn valid_range_matches_brute_force() {
        for size in 1..7usize {
            for pad in 0..3usize {
                for stride in 1..4usize {
                    for offset in 0..6usize {
                        let out = 6;
                        let (lo, hi) = valid_range(out, size, stride, pad, offset);
                        let brute: Vec<usize> = (0..out)
                            .filter(|&o| {
                                let pos = (o * stride + offset) as isize - pad as isize;
                                pos >= 0 && pos < size as isize
                            })
                            .collect();
                        let got: Vec<usize> = (lo..hi).collect();
                        assert_eq!(
                            got, brute,
                            "size {size} pad {pad} stride {stride} offset {offset}"
                        );
                    }
                }
            }
        }
    }
}
