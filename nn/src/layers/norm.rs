//! The normalisation layers the lesson compares: BatchNorm, LayerNorm, InstanceNorm,
//! GroupNorm, and the lesson's RunningBatchNorm.

use std::sync::Mutex;

use autograd::{no_grad, Var};
use tensor::{DType, Device, Tensor};

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

fn check_eps(layer: &str, eps: f64) -> Result<()> {
    if eps > 0.0 && eps.is_finite() {
        Ok(())
    } else {
        Err(config_error(
            layer,
            format!("eps must be finite and > 0, got {eps}"),
        ))
    }
}

fn channels_of(layer: &str, input: &Var, channels: usize, ranks: &[usize]) -> Result<()> {
    if !ranks.contains(&input.rank()) || input.dims()[1] != channels {
        return Err(config_error(
            layer,
            format!("expected an input of rank {ranks:?} with {channels} channels in dim 1, got shape {}", input.shape()),
        ));
    }
    Ok(())
}

fn affine_params(c: usize, dtype: DType) -> Result<(Var, Var)> {
    Ok((
        Var::parameter(Tensor::ones([c], dtype, &Device::Cpu)?),
        Var::parameter(Tensor::zeros([c], dtype, &Device::Cpu)?),
    ))
}

/// Batch normalisation (Ioffe & Szegedy) over `[N, C]` / `[N, C, L]` (1-d) or
/// `[N, C, H, W]` (2-d) inputs: in training, each channel is normalised with the
/// batch's mean and biased variance and the running statistics are updated with
/// `momentum` (PyTorch's convention: the running variance uses the unbiased batch
/// variance); in evaluation the running statistics are used.
pub struct BatchNorm {
    gamma: Var,
    beta: Var,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    eps: f64,
    ranks: &'static [usize],
    name: &'static str,
    hooks: Hooks,
}

impl BatchNorm {
    fn build(
        name: &'static str,
        ranks: &'static [usize],
        channels: usize,
        momentum: f64,
        eps: f64,
        dtype: DType,
    ) -> Result<Self> {
        if channels == 0 {
            return Err(config_error(name, "channels must be positive"));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(config_error(
                name,
                format!("momentum must be in [0, 1], got {momentum}"),
            ));
        }
        check_eps(name, eps)?;
        let (gamma, beta) = affine_params(channels, dtype)?;
        Ok(Self {
            gamma,
            beta,
            running_mean: Tensor::zeros([channels], dtype, &Device::Cpu)?,
            running_var: Tensor::ones([channels], dtype, &Device::Cpu)?,
            momentum,
            eps,
            ranks,
            name,
            hooks: Hooks::new(),
        })
    }

    /// BatchNorm1d for `[N, C]` or `[N, C, L]` (PyTorch defaults: momentum 0.1, eps 1e-5).
    pub fn new_1d(channels: usize, momentum: f64, eps: f64, dtype: DType) -> Result<Self> {
        Self::build("BatchNorm1d", &[2, 3], channels, momentum, eps, dtype)
    }

    /// BatchNorm2d for `[N, C, H, W]`.
    pub fn new_2d(channels: usize, momentum: f64, eps: f64, dtype: DType) -> Result<Self> {
        Self::build("BatchNorm2d", &[4], channels, momentum, eps, dtype)
    }

    /// The running mean `[C]`.
    pub fn running_mean(&self) -> &Tensor {
        &self.running_mean
    }

    /// The running (unbiased) variance `[C]`.
    pub fn running_var(&self) -> &Tensor {
        &self.running_var
    }

    /// The scale `[C]`.
    pub fn gamma(&self) -> &Var {
        &self.gamma
    }

    /// The shift `[C]`.
    pub fn beta(&self) -> &Var {
        &self.beta
    }
}

impl Module for BatchNorm {
    fn kind(&self) -> &'static str {
        self.name
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        channels_of(self.name, input, self.running_mean.elem_count(), self.ranks)?;
        if !self.is_training() {
            return Ok(input.batch_norm_eval(
                &self.running_mean,
                &self.running_var,
                Some(&self.gamma),
                Some(&self.beta),
                self.eps,
            )?);
        }
        let count = input.tensor().elem_count() / self.running_mean.elem_count();
        if count < 2 {
            return Err(config_error(
                self.name,
                format!(
                    "training needs more than one value per channel, got input shape {}",
                    input.shape()
                ),
            ));
        }
        let (out, stats) = input.batch_norm_train(Some(&self.gamma), Some(&self.beta), self.eps)?;
        let _guard = no_grad();
        // biased var = 1/invstd^2 - eps; unbiased = biased * n / (n - 1)
        let biased = stats.invstd.square()?.recip()?.add_scalar(-self.eps)?;
        let unbiased = biased.mul_scalar(count as f64 / (count as f64 - 1.0))?;
        let m = self.momentum;
        self.running_mean.assign(
            &self
                .running_mean
                .affine(1.0 - m, 0.0)?
                .add(&stats.mean.mul_scalar(m)?)?,
        )?;
        self.running_var.assign(
            &self
                .running_var
                .affine(1.0 - m, 0.0)?
                .add(&unbiased.mul_scalar(m)?)?,
        )?;
        Ok(out)
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        vec![("weight", self.gamma.clone()), ("bias", self.beta.clone())]
    }

    fn own_buffers(&self) -> Vec<(&'static str, Tensor)> {
        vec![
            ("running_mean", self.running_mean.clone()),
            ("running_var", self.running_var.clone()),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "{} channels, momentum {}, eps {}",
            self.running_mean.elem_count(),
            self.momentum,
            self.eps
        )
    }
}

/// Normalises each `(sample, group of channels)` over its channels and positions,
/// then applies a per-channel affine map. The same statistics are used in training and
/// evaluation (they do not depend on the batch), so these layers work at any batch
/// size — the lesson's point — but see InstanceNorm's caveat.
pub struct GroupNorm {
    groups: usize,
    channels: usize,
    gamma: Var,
    beta: Var,
    eps: f64,
    name: &'static str,
    hooks: Hooks,
}

impl GroupNorm {
    fn build(
        name: &'static str,
        groups: usize,
        channels: usize,
        eps: f64,
        dtype: DType,
    ) -> Result<Self> {
        if groups == 0 || channels == 0 || !channels.is_multiple_of(groups) {
            return Err(config_error(
                name,
                format!("groups ({groups}) must be positive and divide the channels ({channels})"),
            ));
        }
        check_eps(name, eps)?;
        let (gamma, beta) = affine_params(channels, dtype)?;
        Ok(Self {
            groups,
            channels,
            gamma,
            beta,
            eps,
            name,
            hooks: Hooks::new(),
        })
    }

    /// GroupNorm (Wu & He): `groups` groups of `channels / groups` channels.
    pub fn new(groups: usize, channels: usize, eps: f64, dtype: DType) -> Result<Self> {
        Self::build("GroupNorm", groups, channels, eps, dtype)
    }

    /// InstanceNorm2d with a per-channel affine map: every channel of every image is
    /// normalised on its own. The lesson's caveat: this removes each image's overall
    /// brightness and contrast per channel — exactly the information a classifier of
    /// Fashion-MNIST needs early on — so a network normalised this way cannot classify.
    pub fn instance_norm(channels: usize, eps: f64, dtype: DType) -> Result<Self> {
        Self::build("InstanceNorm2d", channels, channels, eps, dtype)
    }

    /// LayerNorm over every dim but the batch dim (all channels and positions of one
    /// sample together), with a per-channel affine map. The lesson's LayerNorm uses one
    /// scalar scale and shift; a per-channel map starts identical (ones and zeros) and
    /// can only fit better.
    pub fn layer_norm(channels: usize, eps: f64, dtype: DType) -> Result<Self> {
        Self::build("LayerNorm", 1, channels, eps, dtype)
    }
}

impl Module for GroupNorm {
    fn kind(&self) -> &'static str {
        self.name
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        channels_of(self.name, input, self.channels, &[2, 3, 4, 5])?;
        Ok(input.group_norm(self.groups, Some(&self.gamma), Some(&self.beta), self.eps)?)
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        vec![("weight", self.gamma.clone()), ("bias", self.beta.clone())]
    }

    fn describe(&self) -> String {
        format!(
            "{} groups over {} channels, eps {}",
            self.groups, self.channels, self.eps
        )
    }
}

/// The lesson's RunningBatchNorm (fastai, "Deep Learning from the Foundations"):
/// batch norm that normalises with momentum-averaged running sums in training as well
/// as in evaluation, so tiny batches (even batch size 2) train.
///
/// Per training batch of size `bs`, with `m = 1 - (1 - momentum) / sqrt(bs - 1)`:
/// `sums = lerp(sums, sum(x), m)`, `sqrs = lerp(sqrs, sum(x^2), m)`,
/// `count = lerp(count, numel / C, m)`. The lesson also divides the sums and the
/// count by a debiasing factor for the first 100 steps; it divides numerator and
/// denominator alike and cancels, so it is left out here.
/// Then `mean = sums / count`, `var = sqrs / count - mean^2`, clamped to at least
/// 0.01 while fewer than 20 samples were seen (and at 0 always, against rounding),
/// and `y = (x - mean) / sqrt(var + eps) * gamma + beta`. As in the lesson the
/// current batch's contribution to the sums stays in the graph, so its gradient flows.
/// Note that `var` is the lesson's `E[x^2] - E[x]^2`, computed here in f64 buffers.
pub struct RunningBatchNorm {
    gamma: Var,
    beta: Var,
    momentum: f64,
    eps: f64,
    channels: usize,
    /// Momentum-weighted per-channel sums and sums of squares (f64 `[C]`), and
    /// `[count, samples seen, steps]` (f64 `[3]`): buffers, so they are saved
    /// with the model. Updated in place so saved references stay live.
    sums: Tensor,
    sqrs: Tensor,
    meta: Tensor,
    /// Serialises updates of the buffers between concurrent forward calls.
    update: Mutex<()>,
    hooks: Hooks,
}

impl RunningBatchNorm {
    /// A RunningBatchNorm over `[N, C, ...]` (lesson defaults: momentum 0.1, eps 1e-5).
    pub fn new(channels: usize, momentum: f64, eps: f64, dtype: DType) -> Result<Self> {
        if channels == 0 {
            return Err(config_error(
                "RunningBatchNorm",
                "channels must be positive",
            ));
        }
        if !(momentum > 0.0 && momentum <= 1.0) {
            return Err(config_error(
                "RunningBatchNorm",
                format!("momentum must be in (0, 1], got {momentum}"),
            ));
        }
        check_eps("RunningBatchNorm", eps)?;
        let (gamma, beta) = affine_params(channels, dtype)?;
        let cpu = Device::Cpu;
        Ok(Self {
            gamma,
            beta,
            momentum,
            eps,
            channels,
            sums: Tensor::zeros([channels], DType::F64, &cpu)?,
            sqrs: Tensor::zeros([channels], DType::F64, &cpu)?,
            meta: Tensor::zeros([3], DType::F64, &cpu)?,
            update: Mutex::new(()),
            hooks: Hooks::new(),
        })
    }
}

impl Module for RunningBatchNorm {
    fn kind(&self) -> &'static str {
        "RunningBatchNorm"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        channels_of("RunningBatchNorm", input, self.channels, &[2, 3, 4, 5])?;
        let dtype = input.dtype();
        let bs = input.dims()[0];
        // Per-channel view [N, C, S] and the reduced dims (0, 2).
        let (n, c) = (input.dims()[0], self.channels);
        // Values per channel and sample (0 for an empty batch or empty spatial dims).
        let s = input.dims()[2..].iter().product::<usize>();
        let x = input.reshape([n, c, s])?;
        let _serial = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let meta = self.meta.to_vec::<f64>()?;
        let (mut count, mut seen, mut steps) = (meta[0], meta[1], meta[2]);
        let (sums, sqrs) = if self.is_training() {
            if bs < 2 {
                return Err(config_error(
                    "RunningBatchNorm",
                    format!(
                        "training needs a batch of at least 2, got {}",
                        input.shape()
                    ),
                ));
            }
            if s == 0 {
                return Err(config_error(
                    "RunningBatchNorm",
                    format!(
                        "training needs at least one value per channel and sample, got {}",
                        input.shape()
                    ),
                ));
            }
            let m = 1.0 - (1.0 - self.momentum) / ((bs - 1) as f64).sqrt();
            // In the graph: the previous sums (constants) and this batch's sums.
            let prev_sums = Var::constant(self.sums.to_dtype(dtype)?.mul_scalar(1.0 - m)?);
            let prev_sqrs = Var::constant(self.sqrs.to_dtype(dtype)?.mul_scalar(1.0 - m)?);
            let sums = prev_sums.add(&x.sum(&[0, 2], false)?.mul_scalar(m)?)?;
            let sqrs = prev_sqrs.add(&x.square()?.sum(&[0, 2], false)?.mul_scalar(m)?)?;
            {
                // The buffers: the same update with this batch's sums taken in f64.
                let _guard = no_grad();
                let x64 = x.tensor().to_dtype(DType::F64)?;
                let batch_sum = x64.sum(&[0, 2], false)?;
                let batch_sqr = x64.square()?.sum(&[0, 2], false)?;
                self.sums.assign(
                    &self
                        .sums
                        .mul_scalar(1.0 - m)?
                        .add(&batch_sum.mul_scalar(m)?)?,
                )?;
                self.sqrs.assign(
                    &self
                        .sqrs
                        .mul_scalar(1.0 - m)?
                        .add(&batch_sqr.mul_scalar(m)?)?,
                )?;
            }
            count = count * (1.0 - m) + m * (n * s) as f64;
            seen += bs as f64;
            steps += 1.0;
            self.meta.assign(&Tensor::from_vec(
                vec![count, seen, steps],
                [3],
                &Device::Cpu,
            )?)?;
            (sums, sqrs)
        } else {
            if steps == 0.0 {
                return Err(config_error(
                    "RunningBatchNorm",
                    "evaluation before any training batch: no running statistics yet",
                ));
            }
            (
                Var::constant(self.sums.to_dtype(dtype)?),
                Var::constant(self.sqrs.to_dtype(dtype)?),
            )
        };
        let scale = 1.0 / count;
        let means = sums.mul_scalar(scale)?;
        let floor = if seen < 20.0 { 0.01 } else { 0.0 };
        let vars = sqrs
            .mul_scalar(scale)?
            .sub(&means.square()?)?
            .clamp(floor, f64::INFINITY)?;
        let shape_c = [1, c, 1];
        let xhat = x
            .sub(&means.reshape(shape_c)?)?
            .div(&vars.add_scalar(self.eps)?.sqrt()?.reshape(shape_c)?)?;
        let y = xhat
            .mul(&self.gamma.reshape(shape_c)?)?
            .add(&self.beta.reshape(shape_c)?)?;
        Ok(y.reshape(input.shape().clone())?)
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        vec![("weight", self.gamma.clone()), ("bias", self.beta.clone())]
    }

    fn own_buffers(&self) -> Vec<(&'static str, Tensor)> {
        vec![
            ("sums", self.sums.clone()),
            ("sqrs", self.sqrs.clone()),
            ("state", self.meta.clone()),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "{} channels, momentum {}, eps {}",
            self.channels, self.momentum, self.eps
        )
    }
}
