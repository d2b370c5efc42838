//! Convolution backward passes: the input gradient, the weight (and bias) gradient, and
//! both at once.

use rayon::prelude::*;

use super::im2col::{col2im_add, gather_group, im2col};
use super::{images_per_chunk, with_scratch, Conv2dAlgo, Conv2dShape, ConvScalar};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::gemm::{MatMut, MatRef};
use crate::error::Result;

/// Gradient of the convolution with respect to its input, at the default SIMD level:
/// `grad_input = conv2d^T(grad_out, weight)`, overwriting `grad_input`.
///
/// `grad_out` is `(N, C_out, H_out, W_out)`, `weight` `(C_out, C_in/groups, kH, kW)` and
/// `grad_input` `(N, C_in, H, W)`, as described by `shape`. Computed as `W^T @ grad_out`
/// per chunk of images followed by col2im. Errors if a slice length disagrees with
/// `shape`.
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_backward_input, Conv2dParams, Conv2dShape};
/// // y = x conv [1, 2] over a 1x3 row: y0 = x0 + 2 x1, y1 = x1 + 2 x2.
/// let shape = Conv2dShape::new([1, 1, 1, 3], [1, 1, 1, 2], Conv2dParams::default()).unwrap();
/// let mut gx = [0.0f32; 3];
/// conv2d_backward_input(&shape, &[1.0, 10.0], &[1.0, 2.0], &mut gx).unwrap();
/// assert_eq!(gx, [1.0, 12.0, 20.0]);
/// ```
pub fn conv2d_backward_input<T: ConvScalar>(
    shape: &Conv2dShape,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
) -> Result<()> {
    conv2d_backward_input_at(dispatch::active(), shape, grad_out, weight, grad_input)
}

/// [`conv2d_backward_input`] at an explicit SIMD level (clamped to what the CPU supports).
pub fn conv2d_backward_input_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
) -> Result<()> {
    conv2d_backward_input_with(level, Conv2dAlgo::Auto, shape, grad_out, weight, grad_input)
}

/// [`conv2d_backward_input`] at an explicit SIMD level with an explicit algorithm (for
/// tests and benchmarks).
pub fn conv2d_backward_input_with<T: ConvScalar>(
    level: SimdLevel,
    algo: Conv2dAlgo,
    shape: &Conv2dShape,
    grad_out: &[T],
    weight: &[T],
    grad_input: &mut [T],
) -> Result<()> {
    const OP: &str = "conv2d_backward_input";
    shape.check_output(OP, "grad_out", grad_out.len())?;
    shape.check_weight(OP, "weight", weight.len())?;
    shape.check_input(OP, "grad_input", grad_input.len())?;
    if shape.batch() == 0 {
        return Ok(());
    }
    let level = level.clamp_to_supported();
    if algo.lanes(shape, level)
        && T::lanes_backward_input(level, shape, grad_out, None, weight, grad_input)
    {
        return Ok(());
    }
    let s = *shape;
    let (k, plane, opg) = (s.col_rows(), s.out_plane(), s.out_per_group());
    let nb_max = images_per_chunk(
        s.batch(),
        (k + opg) * plane,
        2 * rayon::current_num_threads(),
    );
    grad_input
        .par_chunks_mut(nb_max * s.input_image_len())
        .enumerate()
        .try_for_each(|(chunk, grad_input)| {
            let nb = grad_input.len() / s.input_image_len();
            let grad_out =
                &grad_out[chunk * nb_max * s.output_image_len()..][..nb * s.output_image_len()];
            let bp = nb * plane;
            grad_input.fill(T::ZERO);
            with_scratch(k * bp + opg * bp, |buf: &mut [T]| {
                let (dcol, tmp) = buf.split_at_mut(k * bp);
                for g in 0..s.params().groups {
                    let w = MatRef::row_major(&weight[g * opg * k..][..opg * k], opg, k)?;
                    let gout = if nb == 1 {
                        &grad_out[g * opg * plane..][..opg * plane]
                    } else {
                        gather_group(&s, grad_out, nb, g, tmp);
                        &*tmp
                    };
                    T::gemm_at(
                        level,
                        T::ONE,
                        w.t(),
                        MatRef::row_major(gout, opg, bp)?,
                        T::ZERO,
                        MatMut::row_major(dcol, k, bp)?,
                    )?;
                    col2im_add(&s, dcol, nb, g, grad_input);
                }
                Ok(())
            })
        })
}

/// Gradient of the convolution with respect to its weight and (optionally) its bias, at
/// the default SIMD level, overwriting `grad_weight` and `grad_bias`.
///
/// `input` is `(N, C_in, H, W)`, `grad_out` `(N, C_out, H_out, W_out)`, `grad_weight`
/// `(C_out, C_in/groups, kH, kW)` and `grad_bias` `(C_out)` (the sum of `grad_out` over
/// N, H_out and W_out; pass `None` for a convolution without bias). Errors if a slice
/// length disagrees with `shape`.
///
/// The batch is split into one contiguous run of images per rayon thread; each run
/// accumulates its own partial gradient and the partials are added in run order, so the
/// result is reproducible bit for bit for a given thread count.
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_backward_weight, Conv2dParams, Conv2dShape};
/// // y0 = w0 x0 + w1 x1, y1 = w0 x1 + w1 x2.
/// let shape = Conv2dShape::new([1, 1, 1, 3], [1, 1, 1, 2], Conv2dParams::default()).unwrap();
/// let (mut gw, mut gb) = ([0.0f64; 2], [0.0f64; 1]);
/// conv2d_backward_weight(&shape, &[1.0, 2.0, 3.0], &[1.0, 10.0], &mut gw, Some(&mut gb))
///     .unwrap();
/// assert_eq!((gw, gb), ([21.0, 32.0], [11.0]));
/// ```
pub fn conv2d_backward_weight<T: ConvScalar>(
    shape: &Conv2dShape,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    conv2d_backward_weight_at(
        dispatch::active(),
        shape,
        input,
        grad_out,
        grad_weight,
        grad_bias,
    )
}

/// [`conv2d_backward_weight`] at an explicit SIMD level (clamped to what the CPU
/// supports).
pub fn conv2d_backward_weight_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    conv2d_backward_weight_with(
        level,
        Conv2dAlgo::Auto,
        shape,
        input,
        grad_out,
        grad_weight,
        grad_bias,
    )
}

/// [`conv2d_backward_weight`] at an explicit SIMD level with an explicit algorithm (for
/// tests and benchmarks).
pub fn conv2d_backward_weight_with<T: ConvScalar>(
    level: SimdLevel,
    algo: Conv2dAlgo,
    shape: &Conv2dShape,
    input: &[T],
    grad_out: &[T],
    grad_weight: &mut [T],
    mut grad_bias: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "conv2d_backward_weight";
    shape.check_input(OP, "input", input.len())?;
    shape.check_output(OP, "grad_out", grad_out.len())?;
    shape.check_weight(OP, "grad_weight", grad_weight.len())?;
    if let Some(gb) = grad_bias.as_deref() {
        shape.check_bias(OP, "grad_bias", gb.len())?;
    }
    let level = level.clamp_to_supported();
    if shape.batch() > 0
        && algo.lanes(shape, level)
        && T::lanes_backward_weight(
            level,
            shape,
            input,
            grad_out,
            None,
            grad_weight,
            grad_bias.as_deref_mut(),
        )
    {
        return Ok(());
    }
    let s = *shape;
    let (k, plane, opg) = (s.col_rows(), s.out_plane(), s.out_per_group());
    let (n, wlen, cout) = (s.batch(), s.weight_len(), s.out_channels());
    let with_bias = grad_bias.is_some();
    let lanes = n.min(rayon::current_num_threads()).max(1);
    let nb_max = images_per_chunk(n.div_ceil(lanes), (k + opg) * plane, 1);
    // One partial [grad_weight | grad_bias] per lane.
    let partial_len = wlen + if with_bias { cout } else { 0 };
    let partials = (0..lanes)
        .into_par_iter()
        .map(|lane| -> Result<Vec<T>> {
            let mut acc = vec![T::ZERO; partial_len];
            let (acc_w, acc_b) = acc.split_at_mut(wlen);
            let (lo, hi) = (lane * n / lanes, (lane + 1) * n / lanes);
            for start in (lo..hi).step_by(nb_max) {
                let nb = nb_max.min(hi - start);
                let bp = nb * plane;
                let input = &input[start * s.input_image_len()..][..nb * s.input_image_len()];
                let grad_out =
                    &grad_out[start * s.output_image_len()..][..nb * s.output_image_len()];
                with_scratch(k * bp + opg * bp, |buf: &mut [T]| -> Result<()> {
                    let (col, tmp) = buf.split_at_mut(k * bp);
                    for g in 0..s.params().groups {
                        im2col(&s, input, nb, g, col);
                        let gout = if nb == 1 {
                            &grad_out[g * opg * plane..][..opg * plane]
                        } else {
                            gather_group(&s, grad_out, nb, g, tmp);
                            &*tmp
                        };
                        T::gemm_at(
                            level,
                            T::ONE,
                            MatRef::row_major(gout, opg, bp)?,
                            MatRef::row_major(&*col, k, bp)?.t(),
                            T::ONE,
                            MatMut::row_major(&mut acc_w[g * opg * k..][..opg * k], opg, k)?,
                        )?;
                        if with_bias {
                            for (b, row) in acc_b[g * opg..][..opg]
                                .iter_mut()
                                .zip(gout.chunks_exact(bp))
                            {
                                *b += row.iter().fold(T::ZERO, |a, &v| a + v);
                            }
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(acc)
        })
        .collect::<Result<Vec<_>>>()?;
    // Add the lanes in a fixed order, in parallel over blocks of elements.
    let sum_into = |dst: &mut [T], offset: usize| {
        dst.par_chunks_mut(4096)
            .enumerate()
            .for_each(|(block, dst)| {
                let (at, len) = (offset + block * 4096, dst.len());
                dst.copy_from_slice(&partials[0][at..at + len]);
                for p in &partials[1..] {
                    for (d, &v) in dst.iter_mut().zip(&p[at..at + len]) {
                        *d += v;
                    }
                }
            });
    };
    sum_into(grad_weight, 0);
    if let Some(gb) = grad_bias {
        sum_into(gb, wlen);
    }
    Ok(())
}

/// Gradients of the convolution with respect to its input, weight and (optionally)
/// bias in one call, at the default SIMD level, overwriting `grad_input`, `grad_weight`
/// and `grad_bias`.
///
/// The same results as [`conv2d_backward_input`] followed by
/// [`conv2d_backward_weight`] (bit for bit), for less work where the kernel allows: the
/// batch-in-lanes path transposes each chunk of `grad_out` once for both gradients
/// instead of once per gradient. Shapes as in those two functions; errors if a slice
/// length disagrees with `shape`.
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_backward, Conv2dParams, Conv2dShape};
/// // y0 = w0 x0 + w1 x1, y1 = w0 x1 + w1 x2.
/// let shape = Conv2dShape::new([1, 1, 1, 3], [1, 1, 1, 2], Conv2dParams::default()).unwrap();
/// let (mut gx, mut gw, mut gb) = ([0.0f32; 3], [0.0f32; 2], [0.0f32; 1]);
/// let (x, w, gy) = ([1.0, 2.0, 3.0], [1.0, 2.0], [1.0, 10.0]);
/// conv2d_backward(&shape, &x, &w, &gy, &mut gx, &mut gw, Some(&mut gb)).unwrap();
/// assert_eq!((gx, gw, gb), ([1.0, 12.0, 20.0], [21.0, 32.0], [11.0]));
/// ```
pub fn conv2d_backward<T: ConvScalar>(
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    grad_out: &[T],
    grad_input: &mut [T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    conv2d_backward_at(
        dispatch::active(),
        shape,
        input,
        weight,
        grad_out,
        grad_input,
        grad_weight,
        grad_bias,
    )
}

/// [`conv2d_backward`] at an explicit SIMD level (clamped to what the CPU supports).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    grad_out: &[T],
    grad_input: &mut [T],
    grad_weight: &mut [T],
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    conv2d_backward_with(
        level,
        Conv2dAlgo::Auto,
        shape,
        input,
        weight,
        grad_out,
        grad_input,
        grad_weight,
        grad_bias,
    )
}

/// [`conv2d_backward`] at an explicit SIMD level with an explicit algorithm (for tests
/// and benchmarks). With im2col + gemm it runs the two separate backward kernels.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_with<T: ConvScalar>(
    level: SimdLevel,
    algo: Conv2dAlgo,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    grad_out: &[T],
    grad_input: &mut [T],
    grad_weight: &mut [T],
    mut grad_bias: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "conv2d_backward";
    shape.check_input(OP, "input", input.len())?;
    shape.check_weight(OP, "weight", weight.len())?;
    shape.check_output(OP, "grad_out", grad_out.len())?;
    shape.check_input(OP, "grad_input", grad_input.len())?;
    shape.check_weight(OP, "grad_weight", grad_weight.len())?;
    if let Some(gb) = grad_bias.as_deref() {
        shape.check_bias(OP, "grad_bias", gb.len())?;
    }
    let clamped = level.clamp_to_supported();
    if shape.batch() > 0
        && algo.lanes(shape, clamped)
        && T::lanes_backward(
            clamped,
            shape,
            input,
            weight,
            grad_out,
            None,
            grad_input,
            grad_weight,
            grad_bias.as_deref_mut(),
        )
    {
        return Ok(());
    }
    conv2d_backward_input_with(level, algo, shape, grad_out, weight, grad_input)?;
    conv2d_backward_weight_with(level, algo, shape, input, grad_out, grad_weight, grad_bias)
}
