//! Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

use std::collections::HashMap;

use autograd::{Var, VarId};

use super::{
    check_groups, check_state, collect_state, fused_update, take_buffer, HyperParams, Optimizer,
    OptimizerState, ParamGroup, ParamState,
};
use crate::error::Result;

/// The name of SGD's one state buffer.
const MOMENTUM_BUFFER: &str = "momentum_buffer";

/// What SGD keeps per parameter.
#[derive(Default)]
struct SgdState {
    /// Updates applied so far.
    steps: u64,
    /// The momentum buffer, created by the first update with non-zero momentum.
    momentum_buffer: Option<Vec<f64>>,
}

/// SGD, PyTorch's formulation: `g += wd * p`; `buf = momentum * buf + (1 - dampening)
/// * g` (the first step sets `buf = g`); `g = g + momentum * buf` (Nesterov) or
/// `g = buf`; `p -= lr * g`.
pub struct Sgd {
    groups: Vec<ParamGroup>,
    state: HashMap<VarId, SgdState>,
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
            state: HashMap::new(),
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
                let state = self.state.entry(p.id()).or_default();
                if hp.momentum == 0.0 {
                    fused_update(p.tensor(), &grad, |_, x, g| {
                        let g = g + hp.weight_decay * *x;
                        *x -= hp.lr * g;
                    })?;
                } else {
                    let fresh = state.momentum_buffer.is_none();
                    let buf = state
                        .momentum_buffer
                        .get_or_insert_with(|| vec![0.0; grad.elem_count()]);
                    fused_update(p.tensor(), &grad, |i, x, g| {
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
                    })?;
                }
                // Saturating: a loaded count may be anything a u64 holds.
                state.steps = state.steps.saturating_add(1);
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

    fn state(&self) -> OptimizerState {
        collect_state("SGD", &self.groups, &self.state, |s| ParamState {
            steps: s.steps,
            buffers: s
                .momentum_buffer
                .iter()
                .map(|b| (MOMENTUM_BUFFER.to_string(), b.clone()))
                .collect(),
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        check_state("SGD", &self.groups, state, &[MOMENTUM_BUFFER], false)?;
        let mut loaded = HashMap::new();
        for (group, saved) in self.groups.iter_mut().zip(&state.groups) {
            group.hp = saved.hp;
            for (p, s) in group.params.iter().zip(&saved.params) {
                if let Some(s) = s {
                    loaded.insert(
                        p.id(),
                        SgdState {
                            steps: s.steps,
                            momentum_buffer: take_buffer(s, MOMENTUM_BUFFER),
                        },
                    );
                }
            }
        }
        self.state = loaded;
        Ok(())
    }
}
