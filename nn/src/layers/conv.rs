//! 2-d convolution layer.

use autograd::Var;
use kernels::cpu::conv2d::Conv2dParams;
use rand::Rng;
use tensor::{DType, Device, Tensor};

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

/// Convolution over `[N, C_in, H, W]` inputs with a `[C_out, C_in / groups, k, k]`
/// weight (square kernels; use [`Conv2d::from_parameters`] for others).
pub struct Conv2d {
    weight: Var,
    bias: Option<Var>,
    params: Conv2dParams,
    hooks: Hooks,
}

/// Construction options of [`Conv2d`] beyond the channel counts and kernel size.
#[derive(Clone, Copy, Debug)]
pub struct Conv2dOptions {
    /// Step between windows.
    pub stride: usize,
    /// Zero padding on each side; `None` means `kernel / 2` ("same"-style for odd
    /// kernels at stride 1, the lesson's `ks//2`).
    pub padding: Option<usize>,
    /// Spacing of kernel taps.
    pub dilation: usize,
    /// Channel groups (both channel counts must be divisible by it).
    pub groups: usize,
    /// Whether the layer has a bias (drop it before a BatchNorm).
    pub bias: bool,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: None,
            dilation: 1,
            groups: 1,
            bias: true,
        }
    }
}

impl Conv2d {
    /// A layer with PyTorch's default initialisation (uniform in `±1/sqrt(fan_in)`).
    pub fn new<R: Rng + ?Sized>(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        options: Conv2dOptions,
        dtype: DType,
        rng: &mut R,
    ) -> Result<Self> {
        let Conv2dOptions {
            stride,
            padding,
            dilation,
            groups,
            bias,
        } = options;
        if in_channels == 0
            || out_channels == 0
            || kernel == 0
            || stride == 0
            || dilation == 0
            || groups == 0
        {
            return Err(config_error("Conv2d", format!("channels ({in_channels} -> {out_channels}), kernel ({kernel}), stride ({stride}), dilation ({dilation}) and groups ({groups}) must be positive")));
        }
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(config_error("Conv2d", format!("groups ({groups}) must divide in_channels ({in_channels}) and out_channels ({out_channels})")));
        }
        let fan_in = (in_channels / groups) * kernel * kernel;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let cpu = Device::Cpu;
        let weight = Tensor::rand_uniform(
            [out_channels, in_channels / groups, kernel, kernel],
            -bound,
            bound,
            dtype,
            &cpu,
            rng,
        )?;
        let bias = if bias {
            Some(Var::parameter(Tensor::rand_uniform(
                [out_channels],
                -bound,
                bound,
                dtype,
                &cpu,
                rng,
            )?))
        } else {
            None
        };
        let pad = padding.unwrap_or(kernel / 2);
        let params = Conv2dParams {
            stride: (stride, stride),
            padding: (pad, pad),
            dilation: (dilation, dilation),
            groups,
        };
        Ok(Self {
            weight: Var::parameter(weight),
            bias,
            params,
            hooks: Hooks::new(),
        })
    }

    /// A layer from existing parameters.
    pub fn from_parameters(weight: Var, bias: Option<Var>, params: Conv2dParams) -> Result<Self> {
        if weight.rank() != 4 {
            return Err(config_error(
                "Conv2d",
                format!("weight must have rank 4, got shape {}", weight.shape()),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [weight.dims()[0]] {
                return Err(config_error(
                    "Conv2d",
                    format!(
                        "bias must have shape [{}], got {}",
                        weight.dims()[0],
                        b.shape()
                    ),
                ));
            }
        }
        Ok(Self {
            weight,
            bias,
            params,
            hooks: Hooks::new(),
        })
    }

    /// The weight `[C_out, C_in / groups, kH, kW]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// The bias `[C_out]`, if any.
    pub fn bias(&self) -> Option<&Var> {
        self.bias.as_ref()
    }

    /// Stride, padding, dilation and groups.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// `op` (the plain or the ReLU-fused convolution) on a checked `[N, C, H, W]` input
    /// with this layer's weight, bias and parameters.
    fn apply(
        &self,
        input: &Var,
        op: fn(&Var, &Var, Option<&Var>, Conv2dParams) -> autograd::Result<Var>,
    ) -> Result<Var> {
        super::expect_rank("Conv2d", input, &[4], "a batch of images [N, C, H, W]")?;
        Ok(op(input, &self.weight, self.bias.as_ref(), self.params)?)
    }
}

impl Module for Conv2d {
    fn kind(&self) -> &'static str {
        "Conv2d"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        self.apply(input, Var::conv2d)
    }

    fn forward_then_relu(&self, input: &Var) -> Option<Result<Var>> {
        // A hook would have to see the output before the ReLU.
        self.hooks
            .is_empty()
            .then(|| self.apply(input, Var::conv2d_relu))
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        let mut p = vec![("weight", self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias", b.clone()));
        }
        p
    }

    fn describe(&self) -> String {
        let d = self.weight.dims();
        format!(
            "{} -> {}, kernel {}x{}, stride {:?}, padding {:?}{}",
            d[1] * self.params.groups,
            d[0],
            d[2],
            d[3],
            self.params.stride,
            self.params.padding,
            if self.bias.is_some() { ", bias" } else { "" }
        )
    }
}
