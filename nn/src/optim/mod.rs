//! Optimisers with parameter groups, and gradient clipping.
//!
//! Every optimiser holds [`ParamGroup`]s, each with its own [`HyperParams`], so a
//! scheduler can set the learning rate and momentum per group between steps
//! ([`Optimizer::set_lr`], [`Optimizer::set_momentum`]). For Adam, "momentum" is
//! `beta1`, as in fastai's one-cycle schedule. Updates are fused per parameter: one
//! pass over the parameter, its gradient and its state.
//!
//! [`Optimizer::state`] and [`Optimizer::load_state`] take out and put back what an
//! optimiser remembers between steps (momentum buffers, Adam's moments and step
//! counts, each group's hyper-parameters), so training can stop and resume with
//! exactly the same numbers; [`checkpoint::save_optimizer`](crate::checkpoint::save_optimizer)
//! writes it to a file.
//!
//! ```
//! use autograd::Var;
//! use nn::optim::{HyperParams, Optimizer, Sgd};
//! use tensor::{Device, Tensor};
//! # fn main() -> Result<(), nn::NnError> {
//! let w = Var::parameter(Tensor::from_vec(vec![1.0f32, -2.0], [2], &Device::Cpu)?);
//! let mut opt = Sgd::new(vec![w.clone()], HyperParams { lr: 0.1, ..HyperParams::default() })?;
//! w.square()?.sum_all()?.backward()?; // grad = 2w
//! opt.step()?;
//! opt.zero_grad();
//! assert_eq!(w.tensor().to_vec::<f32>()?, vec![0.8, -1.6]);
//! # Ok(())
//! # }
//! ```

mod adam;
mod clip;
mod sgd;

pub use adam::Adam;
pub use clip::{clip_grad_norm, clip_grad_value};
pub use sgd::Sgd;

use std::collections::HashMap;

use autograd::{Var, VarId};
use tensor::{DType, Tensor};

use crate::error::{config_error, Result};

/// Hyper-parameters of one parameter group. Each optimiser reads the fields it uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HyperParams {
    /// Learning rate (>= 0).
    pub lr: f64,
    /// SGD momentum, or Adam's beta1, in [0, 1).
    pub momentum: f64,
    /// Adam's beta2, in [0, 1).
    pub beta2: f64,
    /// Adam's epsilon (> 0).
    pub eps: f64,
    /// Weight decay (>= 0): L2 added to the gradient for SGD and Adam, decoupled for
    /// AdamW.
    pub weight_decay: f64,
    /// SGD dampening of the momentum buffer's new gradient term, in [0, 1].
    pub dampening: f64,
    /// Nesterov momentum for SGD (needs momentum > 0 and dampening 0).
    pub nesterov: bool,
}

impl Default for HyperParams {
    /// lr 1e-3, no momentum, Adam betas (0.9 is set by `Adam::new` when momentum is
    /// 0), eps 1e-8, no weight decay.
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            dampening: 0.0,
            nesterov: false,
        }
    }
}

impl HyperParams {
    /// Checks every value; the error names the optimiser and the value.
    pub fn validate(&self, optimizer: &str) -> Result<()> {
        let bad = |what: &str, v: f64| {
            Err(config_error(
                optimizer,
                format!("{what} = {v} is out of range"),
            ))
        };
        if self.lr.is_nan() || self.lr < 0.0 || !self.lr.is_finite() {
            return bad("lr (must be finite and >= 0)", self.lr);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad("momentum (must be in [0, 1))", self.momentum);
        }
        if !(0.0..1.0).contains(&self.beta2) {
            return bad("beta2 (must be in [0, 1))", self.beta2);
        }
        if self.eps.is_nan() || self.eps <= 0.0 || !self.eps.is_finite() {
            return bad("eps (must be finite and > 0)", self.eps);
        }
        if self.weight_decay.is_nan() || self.weight_decay < 0.0 || !self.weight_decay.is_finite() {
            return bad("weight_decay (must be finite and >= 0)", self.weight_decay);
        }
        if !(0.0..=1.0).contains(&self.dampening) {
            return bad("dampening (must be in [0, 1])", self.dampening);
        }
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(config_error(optimizer, format!("nesterov needs momentum > 0 and dampening 0, got momentum = {}, dampening = {}", self.momentum, self.dampening)));
        }
        Ok(())
    }
}

/// Parameters that share hyper-parameters.
#[derive(Clone)]
pub struct ParamGroup {
    /// The parameters (leaves that require gradients).
    pub params: Vec<Var>,
    /// Their hyper-parameters.
    pub hp: HyperParams,
}

/// What every optimiser offers a training loop and its schedulers.
pub trait Optimizer {
    /// Updates every parameter that has a gradient (parameters without one are
    /// skipped, as in PyTorch).
    fn step(&mut self) -> Result<()>;

    /// The parameter groups.
    fn groups(&self) -> &[ParamGroup];

    /// The parameter groups, mutably (schedulers write `hp` here; re-validated at the
    /// next step).
    fn groups_mut(&mut self) -> &mut [ParamGroup];

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for g in self.groups() {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }

    /// Sets the learning rate of every group.
    fn set_lr(&mut self, lr: f64) {
        for g in self.groups_mut() {
            g.hp.lr = lr;
        }
    }

    /// Sets the momentum (Adam: beta1) of every group.
    fn set_momentum(&mut self, momentum: f64) {
        for g in self.groups_mut() {
            g.hp.momentum = momentum;
        }
    }

    /// A copy of everything the optimiser remembers between steps: its name, each
    /// group's hyper-parameters (as schedulers last set them) and, per parameter in
    /// group order, its step count and buffers. Parameters are identified by their
    /// position, so the state can be loaded into an optimiser over another model of
    /// the same architecture (a fresh process resuming from a checkpoint).
    fn state(&self) -> OptimizerState;

    /// Replaces the optimiser's state with `state` (from [`state`](Optimizer::state)
    /// of the same kind of optimiser over parameters of the same shapes, in the same
    /// groups and order). Everything is checked before anything changes: on error the
    /// optimiser is untouched.
    ///
    /// # Errors
    /// [`NnError::Config`](crate::NnError::Config) naming the optimiser and what does
    /// not match: another optimiser's state, a different number of groups or
    /// parameters, a buffer whose length is not its parameter's element count, an
    /// unknown or missing buffer, or invalid hyper-parameters.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// What an optimiser remembers about one parameter between steps.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamState {
    /// Updates applied to the parameter so far (Adam's bias correction depends on it).
    pub steps: u64,
    /// Named buffers with one value per element of the parameter, in row-major order:
    /// `momentum_buffer` for SGD with momentum, `exp_avg` and `exp_avg_sq` for Adam.
    pub buffers: Vec<(String, Vec<f64>)>,
}

/// The state of one parameter group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupState {
    /// The group's hyper-parameters.
    pub hp: HyperParams,
    /// One entry per parameter of the group, in order; `None` for a parameter that
    /// has not been updated yet.
    pub params: Vec<Option<ParamState>>,
}

/// Everything an optimiser needs to go on exactly where it stopped (see
/// [`Optimizer::state`]).
///
/// ```
/// use autograd::Var;
/// use nn::optim::{HyperParams, Optimizer, Sgd};
/// use tensor::{Device, Tensor};
/// # fn main() -> Result<(), nn::NnError> {
/// let hp = HyperParams { lr: 0.1, momentum: 0.9, ..HyperParams::default() };
/// let w = Var::parameter(Tensor::from_vec(vec![1.0f32, -2.0], [2], &Device::Cpu)?);
/// let mut opt = Sgd::new(vec![w.clone()], hp)?;
/// w.square()?.sum_all()?.backward()?;
/// opt.step()?;
/// let state = opt.state();
/// assert_eq!(state.optimizer, "SGD");
/// let p = state.groups[0].params[0].as_ref().expect("stepped once");
/// assert_eq!(p.steps, 1);
/// assert_eq!(p.buffers, vec![("momentum_buffer".to_string(), vec![2.0, -4.0])]);
///
/// // A fresh optimiser over another parameter of the same shape takes it over.
/// let v = Var::parameter(Tensor::from_vec(vec![0.8f32, -1.6], [2], &Device::Cpu)?);
/// let mut resumed = Sgd::new(vec![v], HyperParams::default())?;
/// resumed.load_state(&state)?;
/// assert_eq!(resumed.state(), state);
/// assert_eq!(resumed.groups()[0].hp.lr, 0.1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// The optimiser: `"SGD"`, `"Adam"` or `"AdamW"`.
    pub optimizer: String,
    /// One entry per parameter group, in order.
    pub groups: Vec<GroupState>,
}

/// The [`OptimizerState`] of an optimiser called `name` over `groups`, whose
/// per-parameter memory `per_param` (by parameter id) `save` turns into a
/// [`ParamState`]; parameters without an entry (never updated) are `None`.
pub(crate) fn collect_state<S>(
    name: &str,
    groups: &[ParamGroup],
    per_param: &HashMap<VarId, S>,
    save: impl Fn(&S) -> ParamState,
) -> OptimizerState {
    let groups = groups
        .iter()
        .map(|g| GroupState {
            hp: g.hp,
            params: g
                .params
                .iter()
                .map(|p| per_param.get(&p.id()).map(&save))
                .collect(),
        })
        .collect();
    OptimizerState {
        optimizer: name.to_string(),
        groups,
    }
}

/// Checks `state` against an optimiser called `name` over `groups` whose parameter
/// states may hold the buffers `allowed` (all of them if `all_required`), before
/// anything is changed.
pub(crate) fn check_state(
    name: &str,
    groups: &[ParamGroup],
    state: &OptimizerState,
    allowed: &[&str],
    all_required: bool,
) -> Result<()> {
    if state.optimizer != name {
        return Err(config_error(
            name,
            format!("cannot load the state of a {} optimizer", state.optimizer),
        ));
    }
    if state.groups.len() != groups.len() {
        return Err(config_error(
            name,
            format!(
                "the state has {} parameter group(s) but the optimizer has {}",
                state.groups.len(),
                groups.len()
            ),
        ));
    }
    for (g, (group, saved)) in groups.iter().zip(&state.groups).enumerate() {
        saved.hp.validate(name)?;
        if saved.params.len() != group.params.len() {
            return Err(config_error(
                name,
                format!(
                    "group {g}: the state has {} parameter(s) but the optimizer has {}",
                    saved.params.len(),
                    group.params.len()
                ),
            ));
        }
        for (i, (param, saved)) in group.params.iter().zip(&saved.params).enumerate() {
            let Some(saved) = saved else { continue };
            let n = param.tensor().elem_count();
            for (buffer, values) in &saved.buffers {
                if !allowed.contains(&buffer.as_str()) {
                    return Err(config_error(
                        name,
                        format!("group {g}, parameter {i}: unknown state buffer `{buffer}` (expected {allowed:?})"),
                    ));
                }
                if values.len() != n {
                    return Err(config_error(
                        name,
                        format!(
                            "group {g}, parameter {i}: state buffer `{buffer}` has {} values but the parameter (shape {}) has {n}",
                            values.len(),
                            param.shape()
                        ),
                    ));
                }
            }
            if all_required {
                if let Some(missing) = allowed
                    .iter()
                    .find(|b| !saved.buffers.iter().any(|(name, _)| name == *b))
                {
                    return Err(config_error(
                        name,
                        format!("group {g}, parameter {i}: the state lacks buffer `{missing}`"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The buffer called `name` of a checked [`ParamState`] (empty if absent).
pub(crate) fn take_buffer(state: &ParamState, name: &str) -> Option<Vec<f64>> {
    state
        .buffers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// Checks groups at construction: valid hyper-parameters, float leaves only.
pub(crate) fn check_groups(optimizer: &str, groups: &[ParamGroup]) -> Result<()> {
    for (i, g) in groups.iter().enumerate() {
        g.hp.validate(optimizer)?;
        for p in &g.params {
            if !p.is_leaf() || !p.dtype().is_float() {
                return Err(config_error(optimizer, format!("group {i}: parameter of shape {} ({}) is not a float leaf that requires a gradient", p.shape(), p.dtype())));
            }
        }
    }
    Ok(())
}

/// Applies `f(i, &mut param_i, grad_i)` to every element of a parameter in place
/// (through its shared storage), in one pass. The arithmetic is done in f64 whatever
/// the parameter's dtype; optimiser state lives in f64 vectors beside it.
pub(crate) fn fused_update(
    param: &Tensor,
    grad: &Tensor,
    mut f: impl FnMut(usize, &mut f64, f64),
) -> Result<()> {
    if grad.shape() != param.shape() {
        return Err(config_error(
            "optimizer",
            format!(
                "gradient of shape {} for a parameter of shape {}",
                grad.shape(),
                param.shape()
            ),
        ));
    }
    let grad = if grad.dtype() == param.dtype() {
        grad.contiguous()?
    } else {
        grad.to_dtype(param.dtype())?.contiguous()?
    };
    match param.dtype() {
        DType::F32 => param.with_slice_mut::<f32, _>(|p| {
            grad.with_slice::<f32, _>(|g| {
                for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
                    let mut x = f64::from(*p);
                    f(i, &mut x, f64::from(g));
                    *p = x as f32;
                }
            })
        })??,
        DType::F64 => param.with_slice_mut::<f64, _>(|p| {
            grad.with_slice::<f64, _>(|g| {
                for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
                    f(i, p, g);
                }
            })
        })??,
        other => {
            return Err(config_error(
                "optimizer",
                format!("cannot update a parameter of dtype {other}"),
            ))
        }
    }
    Ok(())
}
