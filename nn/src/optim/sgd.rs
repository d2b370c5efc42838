//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

use std::collections::HashMap;

use autograd::{Var, VarId};

use super::{check_groups, fused_update, HyperParams, Optimizer, ParamGroup};
use crate::error::Result;

/// SGD, PyTorch's formulation: `g += wd * p`; `buf = momentum * buf + (1 - dampening)
/// * g` (the first step sets `buf = g`); `g = g + momentum * buf` (Nesterov) or
/// `g = buf`; `p -= lr * g`.
pub struct Sgd {
    groups: Vec<ParamGroup>,
    momentum_buffers: HashMap<VarId, Vec<f64>>,
}

impl Sgd {
    /// SGD over one group of parameters.
    pub fn new(params: Vec<Var>, hp: HyperParams) -> Result<Self> {
        Self::with_groups(vec![ParamGroup { params, hp }])
    }

    /// SGD over several groups with their own hyper-parameters.
    pub fn with_groups(groups: Vec<ParamGroup>) -> Result<Self> {
        check_groups("SGD", &groups)?;
        Ok(Self {
            groups,
            momentum_buffers: HashMap::new(),
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self) -> Result<()> {
        for group in &self.groups {
            let hp = group.hp;
            hp.validate("SGD")?;
            for p in &group.params {
                let Some(grad) = p.grad() else { continue };
                let buffer = if hp.momentum != 0.0 {
                    let fresh = !self.momentum_buffers.contains_key(&p.id());
                    let buf = self
                        .momentum_buffers
                        .entry(p.id())
                        .or_insert_with(|| vec![0.0; grad.elem_count()]);
                    Some((buf, fresh))
                } else {
                    None
                };
                match buffer {
                    None => fused_update(p.tensor(), &grad, |_, x, g| {
                        let g = g + hp.weight_decay * *x;
                        *x -= hp.lr * g;
                    })?,
                    Some((buf, fresh)) => fused_update(p.tensor(), &grad, |i, x, g| {
                        let g = g + hp.weight_decay * *x;
                        buf[i] = if fresh {
                            g
                        } else {
                            hp.momentum * buf[i] + (1.0 - hp.dampening) * g
                        };
                        let step = if hp.nesterov {
                            g + hp.momentum * buf[i]
                        } else {
                            buf[i]
                        };
                        *x -= hp.lr * step;
                    })?,
                }
            }
        }
        Ok(())
    }

    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn groups_mut(&mut self) -> &mut [ParamGroup] {
        &mut self.groups
    }
}
