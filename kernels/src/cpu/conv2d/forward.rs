//! Convolution forward pass.

use rayon::prelude::*;

use super::im2col::{im2col, scatter_group};
use super::{images_per_chunk, with_scratch, Conv2dAlgo, Conv2dShape, ConvScalar};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::gemm::{MatMut, MatRef};
use crate::error::Result;

/// Convolution forward pass at the default SIMD level: `out = conv2d(input, weight) +
/// bias`, overwriting `out`.
///
/// `input` is `(N, C_in, H, W)`, `weight` `(C_out, C_in/groups, kH, kW)`, `bias` (if any)
/// `(C_out)` and `out` `(N, C_out, H_out, W_out)`, all dense row-major as described by
/// `shape`. Errors if a slice length disagrees with `shape`.
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_forward, Conv2dParams, Conv2dShape};
/// // A 1x3 "difference" kernel over a 1x4 row, padded by one column on each side.
/// let p = Conv2dParams { padding: (0, 1), ..Conv2dParams::default() };
/// let shape = Conv2dShape::new([1, 1, 1, 4], [1, 1, 1, 3], p).unwrap();
/// let mut y = [0.0f64; 4];
/// conv2d_forward(&shape, &[1.0, 2.0, 4.0, 8.0], &[-1.0, 0.0, 1.0], None, &mut y).unwrap();
/// assert_eq!(y, [2.0, 3.0, 6.0, -4.0]);
/// ```
pub fn conv2d_forward<T: ConvScalar>(
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    conv2d_forward_at(dispatch::active(), shape, input, weight, bias, out)
}

/// [`conv2d_forward`] at an explicit SIMD level (clamped to what the CPU supports).
pub fn conv2d_forward_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    conv2d_forward_with(level, Conv2dAlgo::Auto, shape, input, weight, bias, out)
}

/// [`conv2d_forward`] at an explicit SIMD level with an explicit algorithm (for tests
/// and benchmarks; [`Conv2dAlgo::Auto`] is what the other entry points use).
pub fn conv2d_forward_with<T: ConvScalar>(
    level: SimdLevel,
    algo: Conv2dAlgo,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) -> Result<()> {
    const OP: &str = "conv2d_forward";
    let bias_len = bias.map(<[T]>::len);
    shape.check_forward(OP, input.len(), weight.len(), bias_len, out.len())?;
    if shape.batch() == 0 {
        return Ok(());
    }
    let level = level.clamp_to_supported();
    if algo.lanes(shape, level) && T::lanes_forward(level, shape, input, weight, bias, None, out) {
        return Ok(());
    }
    let s = *shape;
    let (k, plane, opg) = (s.col_rows(), s.out_plane(), s.out_per_group());
    let nb_max = images_per_chunk(
        s.batch(),
        (k + opg) * plane,
        2 * rayon::current_num_threads(),
    );
    out.par_chunks_mut(nb_max * s.output_image_len())
        .enumerate()
        .try_for_each(|(chunk, out)| {
            let nb = out.len() / s.output_image_len();
            let input = &input[chunk * nb_max * s.input_image_len()..][..nb * s.input_image_len()];
            let bp = nb * plane;
            with_scratch(k * bp + opg * bp, |buf: &mut [T]| {
                let (col, tmp) = buf.split_at_mut(k * bp);
                for g in 0..s.params().groups {
                    im2col(&s, input, nb, g, col);
                    let w = MatRef::row_major(&weight[g * opg * k..][..opg * k], opg, k)?;
                    let cols = MatRef::row_major(&*col, k, bp)?;
                    if nb == 1 {
                        // One image: the group's output block is already `C_out/g x P`.
                        let dst = &mut out[g * opg * plane..][..opg * plane];
                        T::gemm_at(
                            level,
                            T::ONE,
                            w,
                            cols,
                            T::ZERO,
                            MatMut::row_major(dst, opg, plane)?,
                        )?;
                        if let Some(bias) = bias {
                            for (row, &b) in dst.chunks_exact_mut(plane).zip(&bias[g * opg..]) {
                                row.iter_mut().for_each(|v| *v += b);
                            }
                        }
                    } else {
                        T::gemm_at(
                            level,
                            T::ONE,
                            w,
                            cols,
                            T::ZERO,
                            MatMut::row_major(tmp, opg, bp)?,
                        )?;
                        scatter_group(&s, tmp, nb, g, bias, out);
                    }
                }
                Ok(())
            })
        })
}
