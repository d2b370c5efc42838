//! Plain nested-loop f64 convolutions: the definitions the fast kernels are tested against.
//!
//! Each function walks every `(image, output channel, output position, input channel,
//! kernel tap)` and skips taps that fall on padding; nothing is blocked, vectorised or
//! parallel, so the code reads as the formula
//!
//! ```text
//! y[n, o, oh, ow] = b[o] + sum_{c, i, j} x[n, g*Cg + c, oh*sH + i*dH - pH, ow*sW + j*dW - pW]
//!                                        * w[o, c, i, j]
//! ```
//!
//! with `g = o / (C_out / groups)` and `Cg = C_in / groups`.
//!
//! ```
//! use kernels::cpu::conv2d::{reference, Conv2dParams, Conv2dShape};
//! let shape = Conv2dShape::new([1, 1, 2, 2], [1, 1, 1, 1], Conv2dParams::default()).unwrap();
//! let mut y = [0.0; 4];
//! reference::conv2d_forward(&shape, &[1.0, 2.0, 3.0, 4.0], &[2.0], Some(&[1.0]), &mut y)
//!     .unwrap();
//! assert_eq!(y, [3.0, 5.0, 7.0, 9.0]);
//! ```

use super::Conv2dShape;
use crate::error::Result;

/// Calls `f(x_index, w_index, y_index)` for every tap of every output element that lands
/// inside the input: the one loop nest all three reference kernels share.
fn for_each_tap(s: &Conv2dShape, mut f: impl FnMut(usize, usize, usize)) {
    let [n, cin, h, w] = s.input_dims();
    let [cout, cpg, kh, kw] = s.weight_dims();
    let [_, _, oh_n, ow_n] = s.output_dims();
    let p = s.params();
    let opg = cout / p.groups;
    for b in 0..n {
        for o in 0..cout {
            let g = o / opg;
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let y_idx = ((b * cout + o) * oh_n + oh) * ow_n + ow;
                    for c in 0..cpg {
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * p.stride.0 + i * p.dilation.0) as isize
                                    - p.padding.0 as isize;
                                let iw = (ow * p.stride.1 + j * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                    continue;
                                }
                                let x_idx =
                                    ((b * cin + g * cpg + c) * h + ih as usize) * w + iw as usize;
                                let w_idx = ((o * cpg + c) * kh + i) * kw + j;
                                f(x_idx, w_idx, y_idx);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Reference forward pass: `out = conv2d(input, weight) + bias` (overwrites `out`).
pub fn conv2d_forward(
    shape: &Conv2dShape,
    input: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
    out: &mut [f64],
) -> Result<()> {
    const OP: &str = "reference::conv2d_forward";
    shape.check_input(OP, "input", input.len())?;
    shape.check_weight(OP, "weight", weight.len())?;
    if let Some(bias) = bias {
        shape.check_bias(OP, "bias", bias.len())?;
    }
    shape.check_output(OP, "output", out.len())?;
    let plane = shape.out_plane();
    for (i, o) in out.iter_mut().enumerate() {
        *o = bias.map_or(0.0, |b| b[(i / plane) % shape.out_channels()]);
    }
    for_each_tap(shape, |xi, wi, yi| out[yi] += input[xi] * weight[wi]);
    Ok(())
}

/// Reference input gradient (overwrites `grad_input`).
pub fn conv2d_backward_input(
    shape: &Conv2dShape,
    grad_out: &[f64],
    weight: &[f64],
    grad_input: &mut [f64],
) -> Result<()> {
    const OP: &str = "reference::conv2d_backward_input";
    shape.check_output(OP, "grad_out", grad_out.len())?;
    shape.check_weight(OP, "weight", weight.len())?;
    shape.check_input(OP, "grad_input", grad_input.len())?;
    grad_input.fill(0.0);
    for_each_tap(shape, |xi, wi, yi| {
        grad_input[xi] += grad_out[yi] * weight[wi]
    });
    Ok(())
}

/// Reference weight and bias gradients (overwrites both).
pub fn conv2d_backward_weight(
    shape: &Conv2dShape,
    input: &[f64],
    grad_out: &[f64],
    grad_weight: &mut [f64],
    grad_bias: Option<&mut [f64]>,
) -> Result<()> {
    const OP: &str = "reference::conv2d_backward_weight";
    shape.check_input(OP, "input", input.len())?;
    shape.check_output(OP, "grad_out", grad_out.len())?;
    shape.check_weight(OP, "grad_weight", grad_weight.len())?;
    if let Some(gb) = grad_bias {
        shape.check_bias(OP, "grad_bias", gb.len())?;
        gb.fill(0.0);
        let plane = shape.out_plane();
        for (i, &g) in grad_out.iter().enumerate() {
            gb[(i / plane) % shape.out_channels()] += g;
        }
    }
    grad_weight.fill(0.0);
    for_each_tap(shape, |xi, wi, yi| {
        grad_weight[wi] += input[xi] * grad_out[yi]
    });
    Ok(())
}
