//! 2-d convolution (NCHW) through the kernels crate, alone or followed by a ReLU in one
//! op ([`Var::conv2d_relu`]).

use std::sync::Arc;

use kernels::cpu::conv2d::{
    self, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, conv2d_relu_backward,
    conv2d_relu_forward, relu_mask_len, Conv2dParams, Conv2dShape, ConvScalar,
};
use tensor::{DType, Device, Element, Tensor};

use super::slices::{read1, read2, read3};
use crate::error::{AutogradError, Result};
use crate::op::Op;
use crate::var::Var;

fn dims4(op: &'static str, what: &str, t: &Tensor) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(t.dims()).map_err(|_| AutogradError::InvalidArgument {
        op,
        detail: format!("{what} must have rank 4, got shape {}", t.shape()),
    })
}

/// The convolution on the CPU or the GPU, followed by a ReLU in the same pass when
/// `relu` (CPU only: [`Var::conv2d_relu`] runs two ops on a GPU), which then also
/// returns the ReLU's mask for the backward pass.
fn forward<T: ConvScalar + Element>(
    shape: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    relu: bool,
) -> Result<(Tensor, Option<Arc<[u16]>>)> {
    #[cfg(feature = "cuda")]
    if x.device().is_cuda() {
        return Ok((tensor::cuda::conv2d_forward(shape, x, w, b)?, None));
    }
    let mut out = tensor::pool::try_buffer::<T>("conv2d", &shape.output_dims().into())?;
    let mut mask = relu.then(|| vec![0u16; relu_mask_len(shape)]);
    read3::<T, ()>(x, w, b, |x, w, b| {
        match mask.as_deref_mut() {
            Some(mask) => conv2d_relu_forward(shape, x, w, b, &mut out, mask)?,
            None => conv2d_forward(shape, x, w, b, &mut out)?,
        }
        Ok(())
    })?;
    let out = Tensor::from_vec(out, shape.output_dims().to_vec(), &Device::Cpu)?;
    Ok((out, mask.map(Arc::from)))
}

fn backward_input<T: ConvScalar + Element>(
    shape: &Conv2dShape,
    g: &Tensor,
    w: &Tensor,
) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if g.device().is_cuda() {
        return Ok(tensor::cuda::conv2d_backward_input(shape, g, w)?);
    }
    let mut gx = tensor::pool::try_buffer::<T>("conv2d_backward", &shape.input_dims().into())?;
    read2::<T, ()>(g, w, |g, w| {
        Ok(conv2d_backward_input(shape, g, w, &mut gx)?)
    })?;
    Ok(Tensor::from_vec(
        gx,
        shape.input_dims().to_vec(),
        &Device::Cpu,
    )?)
}

fn backward_weight<T: ConvScalar + Element>(
    shape: &Conv2dShape,
    x: &Tensor,
    g: &Tensor,
    with_bias: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    #[cfg(feature = "cuda")]
    if g.device().is_cuda() {
        return Ok(tensor::cuda::conv2d_backward_weight(
            shape, x, g, with_bias,
        )?);
    }
    let mut gw = vec![<T as Element>::ZERO; shape.weight_len()];
    let mut gb = if with_bias {
        Some(vec![<T as Element>::ZERO; shape.out_channels()])
    } else {
        None
    };
    read2::<T, ()>(x, g, |x, g| {
        Ok(conv2d_backward_weight(
            shape,
            x,
            g,
            &mut gw,
            gb.as_deref_mut(),
        )?)
    })?;
    let gw = Tensor::from_vec(gw, shape.weight_dims().to_vec(), &Device::Cpu)?;
    let gb = gb
        .map(|gb| Tensor::from_vec(gb, [shape.out_channels()], &Device::Cpu))
        .transpose()?;
    Ok((gw, gb))
}

/// All three gradients in one kernel call (on the CPU the output gradient is
/// transposed once for both), or the two separate CUDA kernels.
fn backward_all<T: ConvScalar + Element>(
    shape: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    g: &Tensor,
    with_bias: bool,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    #[cfg(feature = "cuda")]
    if g.device().is_cuda() {
        let gx = backward_input::<T>(shape, g, w)?;
        let (gw, gb) = backward_weight::<T>(shape, x, g, with_bias)?;
        return Ok((gx, gw, gb));
    }
    let mut gx = tensor::pool::try_buffer::<T>("conv2d_backward", &shape.input_dims().into())?;
    let mut gw = vec![<T as Element>::ZERO; shape.weight_len()];
    let mut gb = with_bias.then(|| vec![<T as Element>::ZERO; shape.out_channels()]);
    read2::<T, ()>(x, w, |x, w| {
        read1::<T, ()>(g, |g| {
            let gb = gb.as_deref_mut();
            Ok(conv2d::conv2d_backward(
                shape, x, w, g, &mut gx, &mut gw, gb,
            )?)
        })
    })?;
    let gx = Tensor::from_vec(gx, shape.input_dims().to_vec(), &Device::Cpu)?;
    let gw = Tensor::from_vec(gw, shape.weight_dims().to_vec(), &Device::Cpu)?;
    let gb = gb
        .map(|gb| Tensor::from_vec(gb, [shape.out_channels()], &Device::Cpu))
        .transpose()?;
    Ok((gx, gw, gb))
}

/// The gradients of `relu(conv2d(..))` given the ReLU's mask (CPU only), each computed
/// only if wanted.
#[allow(clippy::too_many_arguments)]
fn backward_relu<T: ConvScalar + Element>(
    shape: &Conv2dShape,
    x: &Tensor,
    w: &Tensor,
    mask: &[u16],
    g: &Tensor,
    need_input: bool,
    need_weight: bool,
    with_bias: bool,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let mut gx = match need_input {
        true => Some(tensor::pool::try_buffer::<T>(
            "conv2d_backward",
            &shape.input_dims().into(),
        )?),
        false => None,
    };
    let mut gw = need_weight.then(|| vec![<T as Element>::ZERO; shape.weight_len()]);
    let mut gb = with_bias.then(|| vec![<T as Element>::ZERO; shape.out_channels()]);
    read2::<T, ()>(x, w, |x, w| {
        read1::<T, ()>(g, |g| {
            Ok(conv2d_relu_backward(
                shape,
                x,
                w,
                mask,
                g,
                gx.as_deref_mut(),
                gw.as_deref_mut(),
                gb.as_deref_mut(),
            )?)
        })
    })?;
    let gx = gx
        .map(|gx| Tensor::from_vec(gx, shape.input_dims().to_vec(), &Device::Cpu))
        .transpose()?;
    let gw = gw
        .map(|gw| Tensor::from_vec(gw, shape.weight_dims().to_vec(), &Device::Cpu))
        .transpose()?;
    let gb = gb
        .map(|gb| Tensor::from_vec(gb, [shape.out_channels()], &Device::Cpu))
        .transpose()?;
    Ok((gx, gw, gb))
}

/// Conv2d backward: gradients of input, weight and bias (each only if needed). With
/// `relu_mask`, the op was `relu(conv2d(..))` with that mask, and `g` is the gradient
/// of the ReLU's output.
pub(crate) fn conv2d_backward(
    shape: &Conv2dShape,
    input: &Var,
    weight: &Var,
    bias: Option<&Var>,
    relu_mask: Option<&[u16]>,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let need_w = weight.requires_grad() || bias.is_some_and(Var::requires_grad);
    let with_bias = bias.is_some_and(Var::requires_grad);
    if let Some(m) = relu_mask {
        let (x, w) = (input.tensor(), weight.tensor());
        let (need_x, need_weight) = (input.requires_grad(), weight.requires_grad());
        return match g.dtype() {
            DType::F32 => backward_relu::<f32>(shape, x, w, m, g, need_x, need_weight, with_bias),
            _ => backward_relu::<f64>(shape, x, w, m, g, need_x, need_weight, with_bias),
        };
    }
    if input.requires_grad() && need_w {
        let (x, w) = (input.tensor(), weight.tensor());
        let (gx, gw, gb) = match g.dtype() {
            DType::F32 => backward_all::<f32>(shape, x, w, g, with_bias)?,
            _ => backward_all::<f64>(shape, x, w, g, with_bias)?,
        };
        return Ok((Some(gx), weight.requires_grad().then_some(gw), gb));
    }
    let gx = if input.requires_grad() {
        Some(match g.dtype() {
            DType::F32 => backward_input::<f32>(shape, g, weight.tensor())?,
            _ => backward_input::<f64>(shape, g, weight.tensor())?,
        })
    } else {
        None
    };
    let (gw, gb) = if need_w {
        let with_bias = bias.is_some_and(Var::requires_grad);
        let (gw, gb) = match g.dtype() {
            DType::F32 => backward_weight::<f32>(shape, input.tensor(), g, with_bias)?,
            _ => backward_weight::<f64>(shape, input.tensor(), g, with_bias)?,
        };
        (weight.requires_grad().then_some(gw), gb)
    } else {
        (None, None)
    };
    Ok((gx, gw, gb))
}

impl Var {
    /// 2-d convolution of an `[N, C_in, H, W]` input with an `[C_out, C_in / groups,
    /// kH, kW]` weight and an optional `[C_out]` bias (PyTorch's `conv2d`).
    ///
    /// ```
    /// use autograd::Var;
    /// use kernels::cpu::conv2d::Conv2dParams;
    /// use tensor::{DType, Device, Tensor};
    /// # fn main() -> Result<(), autograd::AutogradError> {
    /// let x = Var::constant(Tensor::ones([2, 1, 28, 28], DType::F32, &Device::Cpu)?);
    /// let w = Var::parameter(Tensor::ones([8, 1, 5, 5], DType::F32, &Device::Cpu)?);
    /// let p = Conv2dParams { stride: (2, 2), padding: (2, 2), ..Conv2dParams::default() };
    /// let y = x.conv2d(&w, None, p)?;
    /// assert_eq!(y.dims(), [2, 8, 14, 14]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn conv2d(&self, weight: &Var, bias: Option<&Var>, params: Conv2dParams) -> Result<Var> {
        self.conv2d_op("conv2d", weight, bias, params, false)
    }

    /// `relu(conv2d(..))` as one op: the same values and gradients as
    /// [`Var::conv2d`] followed by [`Var::relu`] (bit for bit), without the separate
    /// elementwise passes over the convolution's output. On the CPU the kernels apply
    /// the ReLU to each chunk of images while it is still in cache and keep one bit per
    /// output value saying whether it passed; the backward pass gates the output
    /// gradient with those bits while packing it. On a GPU it runs the two ops.
    ///
    /// The convolution's output before the ReLU is never materialised, so nothing can
    /// observe it: a layer hook that wants it needs the two separate ops (`nn`'s
    /// `Sequential` fuses a `Conv2d` and a `ReLU` only when neither has hooks).
    ///
    /// ```
    /// use autograd::Var;
    /// use kernels::cpu::conv2d::Conv2dParams;
    /// use tensor::{Device, Tensor};
    /// # fn main() -> Result<(), autograd::AutogradError> {
    /// let x = Var::constant(Tensor::from_vec(vec![1.0f32, 3.0, 2.0], [1, 1, 1, 3], &Device::Cpu)?);
    /// let w = Var::parameter(Tensor::from_vec(vec![1.0f32, -1.0], [1, 1, 1, 2], &Device::Cpu)?);
    /// let y = x.conv2d_relu(&w, None, Conv2dParams::default())?;
    /// assert_eq!(y.tensor().to_vec::<f32>()?, [0.0, 1.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn conv2d_relu(
        &self,
        weight: &Var,
        bias: Option<&Var>,
        params: Conv2dParams,
    ) -> Result<Var> {
        if !self.tensor().device().is_cpu() {
            return self.conv2d(weight, bias, params)?.relu();
        }
        self.conv2d_op("conv2d_relu", weight, bias, params, true)
    }

    /// [`Var::conv2d`], or [`Var::conv2d_relu`] when `relu` (CPU only), under the name
    /// `op` in errors.
    fn conv2d_op(
        &self,
        op: &'static str,
        weight: &Var,
        bias: Option<&Var>,
        params: Conv2dParams,
        relu: bool,
    ) -> Result<Var> {
        let (x, w) = (self.tensor(), weight.tensor());
        if x.dtype() != w.dtype()
            || bias.is_some_and(|b| b.dtype() != x.dtype())
            || !x.dtype().is_float()
        {
            return Err(AutogradError::InvalidArgument {
                op,
                detail: format!(
                    "input, weight and bias must share one float dtype, got {}, {} and {:?}",
                    x.dtype(),
                    w.dtype(),
                    bias.map(Var::dtype)
                ),
            });
        }
        let shape = Conv2dShape::new(dims4(op, "input", x)?, dims4(op, "weight", w)?, params)?;
        if let Some(b) = bias {
            if b.dims() != [shape.out_channels()] {
                return Err(AutogradError::InvalidArgument {
                    op,
                    detail: format!(
                        "bias must have shape [{}], got {}",
                        shape.out_channels(),
                        b.shape()
                    ),
                });
            }
        }
        let (out, relu_mask) = match x.dtype() {
            DType::F32 => forward::<f32>(&shape, x, w, bias.map(Var::tensor), relu)?,
            _ => forward::<f64>(&shape, x, w, bias.map(Var::tensor), relu)?,
        };
        Ok(Var::from_op(
            out,
            Op::Conv2d {
                input: self.clone(),
                weight: weight.clone(),
                bias: bias.cloned(),
                shape,
                relu_mask,
            },
        ))
    }
}
