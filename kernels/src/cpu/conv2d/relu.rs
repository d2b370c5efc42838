//! A convolution followed by a ReLU, fused where the batch-in-lanes kernels run.
//!
//! The lesson CNN is convolution then ReLU, four times over. Run separately, the ReLU
//! reads and writes the whole convolution output once more in the forward pass, and its
//! derivative reads that output and the gradient and writes a new gradient in the
//! backward pass. Fused, the forward pass applies the ReLU to each sub-chunk of 16
//! images while it is still in the kernels' scratch, before the transpose back to NCHW,
//! and records which values passed in a bit mask (one bit per output value, 1/32 of
//! the output's size); the backward pass gates each sub-chunk of the gradient with the
//! mask right after packing it, without reading the output again.
//! Where the batch-in-lanes kernels do not run (f64, large feature maps) these functions
//! run the plain kernels with the ReLU as a separate loop. Either way the values are
//! those of the convolution followed by the elementwise `relu` and `relu_backward`, bit
//! for bit.

use super::{
    conv2d_backward_at, conv2d_backward_input_at, conv2d_backward_weight_at, conv2d_forward_at,
    Conv2dAlgo, Conv2dShape, ConvScalar,
};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::error::{KernelError, Result};

/// Images per word of a ReLU mask.
const MASK_LANES: usize = 16;

/// Length, in `u16` words, of the ReLU mask of `shape`: word `sub * E + e` (`E` the
/// values of one output image) holds, in bit `l`, whether value `e` of image `16 * sub
/// + l` passed the ReLU (was positive). Bits past the last image are zero.
///
/// ```
/// use kernels::cpu::conv2d::{relu_mask_len, Conv2dParams, Conv2dShape};
/// let shape = Conv2dShape::new([17, 1, 4, 4], [2, 1, 3, 3], Conv2dParams::default()).unwrap();
/// // Two groups of up to 16 images, 2 x 2 x 2 output values each.
/// assert_eq!(relu_mask_len(&shape), 2 * 8);
/// ```
pub fn relu_mask_len(shape: &Conv2dShape) -> usize {
    shape.batch().div_ceil(MASK_LANES) * shape.output_image_len()
}

fn check_mask(op: &'static str, shape: &Conv2dShape, len: usize) -> Result<()> {
    let want = relu_mask_len(shape);
    if len == want {
        return Ok(());
    }
    Err(KernelError::SizeMismatch {
        op,
        detail: format!("relu mask has {len} words, the shape needs {want}"),
    })
}

/// `out = relu(conv2d(input, weight) + bias)` at the default SIMD level, overwriting
/// `out`, and the ReLU's `mask` (see [`relu_mask_len`]) for
/// [`conv2d_relu_backward`]. Shapes as in [`conv2d_forward`](super::conv2d_forward).
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_relu_forward, Conv2dParams, Conv2dShape};
/// // A 1x2 kernel [1, -1] over the row [1, 3, 2]: differences -2 and 1.
/// let shape = Conv2dShape::new([1, 1, 1, 3], [1, 1, 1, 2], Conv2dParams::default()).unwrap();
/// let (mut y, mut mask) = ([0.0f32; 2], [0u16; 2]);
/// conv2d_relu_forward(&shape, &[1.0, 3.0, 2.0], &[1.0, -1.0], None, &mut y, &mut mask).unwrap();
/// assert_eq!((y, mask), ([0.0, 1.0], [0, 1]));
/// ```
pub fn conv2d_relu_forward<T: ConvScalar>(
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    mask: &mut [u16],
) -> Result<()> {
    conv2d_relu_forward_at(dispatch::active(), shape, input, weight, bias, out, mask)
}

/// [`conv2d_relu_forward`] at an explicit SIMD level (clamped to what the CPU supports).
pub fn conv2d_relu_forward_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    mask: &mut [u16],
) -> Result<()> {
    const OP: &str = "conv2d_relu_forward";
    let bias_len = bias.map(<[T]>::len);
    shape.check_forward(OP, input.len(), weight.len(), bias_len, out.len())?;
    check_mask(OP, shape, mask.len())?;
    let clamped = level.clamp_to_supported();
    if shape.batch() > 0
        && Conv2dAlgo::Auto.lanes(shape, clamped)
        && T::lanes_forward(clamped, shape, input, weight, bias, Some(&mut *mask), out)
    {
        return Ok(());
    }
    conv2d_forward_at(level, shape, input, weight, bias, out)?;
    mask.fill(0);
    let e_len = shape.output_image_len();
    if e_len == 0 {
        return Ok(());
    }
    for (n, image) in out.chunks_exact_mut(e_len).enumerate() {
        let words = &mut mask[n / MASK_LANES * e_len..][..e_len];
        let bit = 1u16 << (n % MASK_LANES);
        for (y, word) in image.iter_mut().zip(words) {
            // The elementwise relu: positive values and NaN pass, the rest become +0.
            if *y <= T::ZERO {
                *y = T::ZERO;
            }
            if *y > T::ZERO {
                *word |= bit;
            }
        }
    }
    Ok(())
}

/// Gradients of `relu(conv2d(input, weight) + bias)` at the default SIMD level, given
/// the ReLU `mask` that [`conv2d_relu_forward`] wrote and the gradient `grad_out` of the
/// output. Each of `grad_input`, `grad_weight` and `grad_bias` is computed only when
/// given (and overwritten). Shapes as in [`conv2d_backward`](super::conv2d_backward).
///
/// ```
/// use kernels::cpu::conv2d::{conv2d_relu_backward, conv2d_relu_forward, Conv2dParams, Conv2dShape};
/// // y = relu(w x) per element of a 1x2 row, with w = 2: y = [0, 6] for x = [-1, 3].
/// let shape = Conv2dShape::new([1, 1, 1, 2], [1, 1, 1, 1], Conv2dParams::default()).unwrap();
/// let (x, w, gy) = ([-1.0f32, 3.0], [2.0f32], [10.0f32, 10.0]);
/// let (mut y, mut mask) = ([0.0f32; 2], [0u16; 2]);
/// conv2d_relu_forward(&shape, &x, &w, None, &mut y, &mut mask).unwrap();
/// let (mut gx, mut gw) = ([0.0f32; 2], [0.0f32; 1]);
/// conv2d_relu_backward(&shape, &x, &w, &mask, &gy, Some(&mut gx), Some(&mut gw), None).unwrap();
/// // Only the second position passed the ReLU.
/// assert_eq!((gx, gw), ([0.0, 20.0], [30.0]));
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_backward<T: ConvScalar>(
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    mask: &[u16],
    grad_out: &[T],
    grad_input: Option<&mut [T]>,
    grad_weight: Option<&mut [T]>,
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    conv2d_relu_backward_at(
        dispatch::active(),
        shape,
        input,
        weight,
        mask,
        grad_out,
        grad_input,
        grad_weight,
        grad_bias,
    )
}

/// [`conv2d_relu_backward`] at an explicit SIMD level (clamped to what the CPU
/// supports).
#[allow(clippy::too_many_arguments)]
pub fn conv2d_relu_backward_at<T: ConvScalar>(
    level: SimdLevel,
    shape: &Conv2dShape,
    input: &[T],
    weight: &[T],
    mask: &[u16],
    grad_out: &[T],
    grad_input: Option<&mut [T]>,
    grad_weight: Option<&mut [T]>,
    grad_bias: Option<&mut [T]>,
) -> Result<()> {
    const OP: &str = "conv2d_relu_backward";
    shape.check_input(OP, "input", input.len())?;
    shape.check_weight(OP, "weight", weight.len())?;
    check_mask(OP, shape, mask.len())?;
    shape.check_output(OP, "grad_out", grad_out.len())?;
    if let Some(gx) = grad_input.as_deref() {
        shape.check_input(OP, "grad_input", gx.len())?;
    }
    if let Some(gw) = grad_weight.as_deref() {
        shape.check_weight(OP, "grad_weight", gw.len())?;
    }
    if let Some(gb) = grad_bias.as_deref() {
        shape.check_bias(OP, "grad_bias", gb.len())?;
    }
    let want_params = grad_weight.is_some() || grad_bias.is_some();
    if grad_input.is_none() && !want_params {
        return Ok(());
    }
    // The weight-gradient kernels compute the weight gradient in any case.
    let mut scratch_weight = Vec::new();
    let grad_weight = match grad_weight {
        Some(gw) => gw,
        None if want_params => {
            scratch_weight.resize(shape.weight_len(), T::ZERO);
            &mut scratch_weight[..]
        }
        None => &mut [],
    };
    let (mut grad_input, mut grad_bias) = (grad_input, grad_bias);
    let clamped = level.clamp_to_supported();
    if shape.batch() > 0 && Conv2dAlgo::Auto.lanes(shape, clamped) {
        let relu_mask = Some(mask);
        let done = match (grad_input.as_deref_mut(), want_params) {
            (Some(gx), true) => T::lanes_backward(
                clamped,
                shape,
                input,
                weight,
                grad_out,
                relu_mask,
                gx,
                &mut grad_weight[..],
                grad_bias.as_deref_mut(),
            ),
            (Some(gx), false) => {
                T::lanes_backward_input(clamped, shape, grad_out, relu_mask, weight, gx)
            }
            (None, _) => T::lanes_backward_weight(
                clamped,
                shape,
                input,
                grad_out,
                relu_mask,
                &mut grad_weight[..],
                grad_bias.as_deref_mut(),
            ),
        };
        // `false` only for a type without lanes kernels (f64): the plain path below.
        if done {
            return Ok(());
        }
    }
    // The elementwise relu_backward: the gradient passes where the output is positive.
    let e_len = shape.output_image_len().max(1);
    let masked: Vec<T> = grad_out
        .iter()
        .enumerate()
        .map(|(i, &g)| {
            let (n, e) = (i / e_len, i % e_len);
            let word = mask[n / MASK_LANES * e_len + e];
            if word >> (n % MASK_LANES) & 1 == 1 {
                g
            } else {
                T::ZERO
            }
        })
        .collect();
    match (grad_input, want_params) {
        (Some(gx), true) => conv2d_backward_at(
            level,
            shape,
            input,
            weight,
            &masked,
            gx,
            grad_weight,
            grad_bias,
        ),
        (Some(gx), false) => conv2d_backward_input_at(level, shape, &masked, weight, gx),
        (None, _) => {
            conv2d_backward_weight_at(level, shape, input, &masked, grad_weight, grad_bias)
        }
    }
}
