//! Fully connected layer.

use autograd::Var;
use rand::Rng;
use tensor::{DType, Device, Tensor};

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

/// `y = x W^T + b` with `W` of shape `[out, in]` (PyTorch's layout).
pub struct Linear {
    weight: Var,
    bias: Option<Var>,
    in_features: usize,
    out_features: usize,
    hooks: Hooks,
}

impl Linear {
    /// A layer with PyTorch's default initialisation: weight and bias uniform in
    /// `±1/sqrt(in_features)`. (The lessons show why this default is too small for
    /// deep ReLU nets; re-initialise with [`crate::init::kaiming_normal_`].)
    pub fn new<R: Rng + ?Sized>(
        in_features: usize,
        out_features: usize,
        bias: bool,
        dtype: DType,
        rng: &mut R,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(config_error("Linear", format!("in_features ({in_features}) and out_features ({out_features}) must be positive")));
        }
        let bound = 1.0 / (in_features as f64).sqrt();
        let weight = Tensor::rand_uniform(
            [out_features, in_features],
            -bound,
            bound,
            dtype,
            &Device::Cpu,
            rng,
        )?;
        let bias = if bias {
            Some(Var::parameter(Tensor::rand_uniform(
                [out_features],
                -bound,
                bound,
                dtype,
                &Device::Cpu,
                rng,
            )?))
        } else {
            None
        };
        Ok(Self {
            weight: Var::parameter(weight),
            bias,
            in_features,
            out_features,
            hooks: Hooks::new(),
        })
    }

    /// A layer from existing parameters (`weight` `[out, in]`, `bias` `[out]`).
    pub fn from_parameters(weight: Var, bias: Option<Var>) -> Result<Self> {
        let dims = weight.dims().to_vec();
        if dims.len() != 2 {
            return Err(config_error(
                "Linear",
                format!("weight must have shape [out, in], got {}", weight.shape()),
            ));
        }
        if let Some(b) = &bias {
            if b.dims() != [dims[0]] {
                return Err(config_error(
                    "Linear",
                    format!("bias must have shape [{}], got {}", dims[0], b.shape()),
                ));
            }
        }
        Ok(Self {
            weight,
            bias,
            in_features: dims[1],
            out_features: dims[0],
            hooks: Hooks::new(),
        })
    }

    /// The weight, `[out, in]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// The bias, `[out]`, if any.
    pub fn bias(&self) -> Option<&Var> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.out_features
    }
}

impl Module for Linear {
    fn kind(&self) -> &'static str {
        "Linear"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        if input.rank() == 0 || input.dims()[input.rank() - 1] != self.in_features {
            return Err(config_error(
                "Linear",
                format!(
                    "expected an input whose last dim is in_features = {}, got shape {}",
                    self.in_features,
                    input.shape()
                ),
            ));
        }
        let y = input.matmul(&self.weight.t()?)?;
        Ok(match &self.bias {
            Some(b) => y.add(b)?,
            None => y,
        })
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        let mut p = vec![("weight", self.weight.clone())];
        if let Some(b) = &self.bias {
            p.push(("bias", b.clone()));
        }
        p
    }

    fn describe(&self) -> String {
        format!(
            "{} -> {}{}",
            self.in_features,
            self.out_features,
            if self.bias.is_some() { ", bias" } else { "" }
        )
    }
}
