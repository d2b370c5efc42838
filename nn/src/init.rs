//! Parameter initialisation: uniform, normal, constant, Xavier/Glorot,
//! Kaiming/He (with PyTorch's `calculate_gain` table), and LSUV.
//!
//! Every function writes into an existing tensor in place (through its shared
//! storage), so it works on a layer's parameters directly:
//!
//! ```
//! use nn::init::{kaiming_normal_, seeded_rng, FanMode, Nonlinearity};
//! use nn::layers::Linear;
//! use tensor::DType;
//! # fn main() -> Result<(), nn::NnError> {
//! let mut rng = seeded_rng(42);
//! let layer = Linear::new(784, 128, true, DType::F32, &mut rng)?;
//! kaiming_normal_(layer.weight().tensor(), 0.0, FanMode::FanIn, Nonlinearity::Relu, &mut rng)?;
//! let std = layer.weight().tensor().var(&[0, 1], false, false)?.item()?.sqrt();
//! assert!((std - (2.0f64 / 784.0).sqrt()).abs() < 0.002);
//! # Ok(())
//! # }
//! ```

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::Tensor;

use crate::error::{config_error, Result};

pub use crate::init_lsuv::{lsuv, LsuvConfig, LsuvLayerReport, LsuvTarget};

/// A seeded random generator: the same seed gives the same parameters.
pub fn seeded_rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Fills `t` with draws from U(lo, hi).
pub fn uniform_<R: Rng + ?Sized>(t: &Tensor, lo: f64, hi: f64, rng: &mut R) -> Result<()> {
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) || !lo.is_finite() || !hi.is_finite() {
        return Err(config_error(
            "init::uniform_",
            format!("need finite lo < hi, got lo = {lo}, hi = {hi}"),
        ));
    }
    let fresh = Tensor::rand_uniform(t.shape().clone(), lo, hi, t.dtype(), &t.device(), rng)?;
    Ok(t.assign(&fresh)?)
}

/// Fills `t` with draws from N(mean, std^2).
pub fn normal_<R: Rng + ?Sized>(t: &Tensor, mean: f64, std: f64, rng: &mut R) -> Result<()> {
    if std.is_nan() || std < 0.0 || !mean.is_finite() || !std.is_finite() {
        return Err(config_error(
            "init::normal_",
            format!("need a finite mean and std >= 0, got mean = {mean}, std = {std}"),
        ));
    }
    let fresh = Tensor::randn(t.shape().clone(), mean, std, t.dtype(), &t.device(), rng)?;
    Ok(t.assign(&fresh)?)
}

/// Fills `t` with `value`.
pub fn constant_(t: &Tensor, value: f64) -> Result<()> {
    Ok(t.fill_(value)?)
}

/// Fills `t` with zeros.
pub fn zeros_(t: &Tensor) -> Result<()> {
    constant_(t, 0.0)
}

/// Fills `t` with ones.
pub fn ones_(t: &Tensor) -> Result<()> {
    constant_(t, 1.0)
}

/// The nonlinearity that follows a layer, for [`calculate_gain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// Identity / linear / conv without activation: gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// Tanh: gain 5/3.
    Tanh,
    /// ReLU: gain sqrt(2).
    Relu,
    /// Leaky ReLU with negative slope `a` (taken from the `a` argument): gain
    /// sqrt(2 / (1 + a^2)).
    LeakyRelu,
    /// SELU: gain 3/4.
    Selu,
}

/// The recommended gain for a nonlinearity (PyTorch's `calculate_gain` table);
/// `slope` is used only for [`Nonlinearity::LeakyRelu`].
pub fn calculate_gain(nonlinearity: Nonlinearity, slope: f64) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu => (2.0 / (1.0 + slope * slope)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight: for `[out, in, k...]`, fan_in = in * prod(k) and
/// fan_out = out * prod(k).
pub fn fans(t: &Tensor) -> Result<(usize, usize)> {
    let dims = t.dims();
    if dims.len() < 2 {
        return Err(config_error(
            "init",
            format!(
                "fan in/out need a weight of rank >= 2, got shape {}",
                t.shape()
            ),
        ));
    }
    let receptive: usize = dims[2..].iter().product();
    Ok((dims[1] * receptive, dims[0] * receptive))
}

/// Whether the scale is computed from the fan in (preserves activation variance in
/// the forward pass) or the fan out (preserves gradient variance in backward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Use fan_in.
    FanIn,
    /// Use fan_out.
    FanOut,
}

fn fan(t: &Tensor, mode: FanMode) -> Result<f64> {
    let (fan_in, fan_out) = fans(t)?;
    let f = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    if f == 0 {
        return Err(config_error(
            "init",
            format!("zero fan for a weight of shape {}", t.shape()),
        ));
    }
    Ok(f as f64)
}

/// Xavier/Glorot uniform: U(-b, b) with `b = gain * sqrt(6 / (fan_in + fan_out))`.
pub fn xavier_uniform_<R: Rng + ?Sized>(t: &Tensor, gain: f64, rng: &mut R) -> Result<()> {
    let (fan_in, fan_out) = fans(t)?;
    let bound = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    uniform_(t, -bound, bound, rng)
}

/// Xavier/Glorot normal: N(0, std^2) with `std = gain * sqrt(2 / (fan_in + fan_out))`.
pub fn xavier_normal_<R: Rng + ?Sized>(t: &Tensor, gain: f64, rng: &mut R) -> Result<()> {
    let (fan_in, fan_out) = fans(t)?;
    normal_(t, 0.0, gain * (2.0 / (fan_in + fan_out) as f64).sqrt(), rng)
}

/// Kaiming/He uniform: U(-b, b) with `b = gain * sqrt(3 / fan)`; `a` is the negative
/// slope for leaky units.
pub fn kaiming_uniform_<R: Rng + ?Sized>(
    t: &Tensor,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut R,
) -> Result<()> {
    let bound = calculate_gain(nonlinearity, a) * (3.0 / fan(t, mode)?).sqrt();
    uniform_(t, -bound, bound, rng)
}

/// Kaiming/He normal: N(0, std^2) with `std = gain / sqrt(fan)`; `a` is the negative
/// slope for leaky units (the lesson uses `a = 0.1` with GeneralRelu(0.1)).
pub fn kaiming_normal_<R: Rng + ?Sized>(
    t: &Tensor,
    a: f64,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    rng: &mut R,
) -> Result<()> {
    let std = calculate_gain(nonlinearity, a) / fan(t, mode)?.sqrt();
    normal_(t, 0.0, std, rng)
}
