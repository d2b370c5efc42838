//! Adam and AdamW.

use std::collections::HashMap;

use autograd::{Var, VarId};

use super::{
    check_groups, check_state, collect_state, fused_update, take_buffer, HyperParams, Optimizer,
    OptimizerState, ParamGroup, ParamState,
};
use crate::error::{config_error, Result};

/// The names of Adam's state buffers: the first and second moment estimates.
const BUFFERS: [&str; 2] = ["exp_avg", "exp_avg_sq"];

struct Moments {
    m: Vec<f64>,
    v: Vec<f64>,
    steps: i32,
}

/// Adam (Kingma & Ba) with bias correction; `momentum` is beta1. With `decoupled`
/// weight decay it is AdamW (Loshchilov & Hutter): `p -= lr * wd * p` apart from the
/// adaptive step, instead of adding `wd * p` to the gradient.
pub struct Adam {
    groups: Vec<ParamGroup>,
    decoupled: bool,
    state: HashMap<VarId, Moments>,
}

impl Adam {
    /// Adam over one group; a `momentum` of 0 in `hp` is taken as the usual beta1 = 0.9.
    pub fn new(params: Vec<Var>, hp: HyperParams) -> Result<Self> {
        Self::with_groups(
            vec![ParamGroup {
                params,
                hp: with_default_beta1(hp),
            }],
            false,
        )
    }

    /// AdamW over one group (decoupled weight decay).
    pub fn adamw(params: Vec<Var>, hp: HyperParams) -> Result<Self> {
        Self::with_groups(
            vec![ParamGroup {
                params,
                hp: with_default_beta1(hp),
            }],
            true,
        )
    }

    /// Adam (or AdamW if `decoupled`) over several groups, hyper-parameters as given.
    pub fn with_groups(groups: Vec<ParamGroup>, decoupled: bool) -> Result<Self> {
        check_groups(if decoupled { "AdamW" } else { "Adam" }, &groups)?;
        Ok(Self {
            groups,
            decoupled,
            state: HashMap::new(),
        })
    }
}

fn with_default_beta1(mut hp: HyperParams) -> HyperParams {
    if hp.momentum == 0.0 {
        hp.momentum = 0.9;
    }
    hp
}

impl Adam {
    /// `"Adam"` or `"AdamW"`.
    fn name(&self) -> &'static str {
        if self.decoupled {
            "AdamW"
        } else {
            "Adam"
        }
    }
}

impl Optimizer for Adam {
    fn step(&mut self) -> Result<()> {
        let name = self.name();
        for group in &self.groups {
            let hp = group.hp;
            hp.validate(name)?;
            let (b1, b2) = (hp.momentum, hp.beta2);
            for p in &group.params {
                let Some(grad) = p.grad() else { continue };
                let n = grad.elem_count();
                let st = self.state.entry(p.id()).or_insert_with(|| Moments {
                    m: vec![0.0; n],
                    v: vec![0.0; n],
                    steps: 0,
                });
                st.steps = st.steps.saturating_add(1);
                let correction1 = 1.0 - b1.powi(st.steps);
                let correction2 = 1.0 - b2.powi(st.steps);
                let (m, v) = (&mut st.m, &mut st.v);
                let decoupled = self.decoupled;
                fused_update(p.tensor(), &grad, |i, x, g| {
                    let g = if decoupled {
                        *x -= hp.lr * hp.weight_decay * *x;
                        g
                    } else {
                        g + hp.weight_decay * *x
                    };
                    m[i] = b1 * m[i] + (1.0 - b1) * g;
                    v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                    let m_hat = m[i] / correction1;
                    let v_hat = v[i] / correction2;
                    *x -= hp.lr * m_hat / (v_hat.sqrt() + hp.eps);
                })?;
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
        collect_state(self.name(), &self.groups, &self.state, |s| ParamState {
            // Step counts are never negative.
            steps: u64::try_from(s.steps).unwrap_or(0),
            buffers: vec![
                (BUFFERS[0].to_string(), s.m.clone()),
                (BUFFERS[1].to_string(), s.v.clone()),
            ],
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let name = self.name();
        check_state(name, &self.groups, state, &BUFFERS, true)?;
        let mut loaded = HashMap::new();
        for (g, saved) in state.groups.iter().enumerate() {
            for (i, s) in saved.params.iter().enumerate() {
                let Some(s) = s else { continue };
                let steps = i32::try_from(s.steps).map_err(|_| {
                    config_error(
                        name,
                        format!(
                            "group {g}, parameter {i}: step count {} is too large",
                            s.steps
                        ),
                    )
                })?;
                let (Some(m), Some(v)) = (take_buffer(s, BUFFERS[0]), take_buffer(s, BUFFERS[1]))
                else {
                    // check_state required both.
                    continue;
                };
                loaded.insert(self.groups[g].params[i].id(), Moments { m, v, steps });
            }
        }
        for (group, saved) in self.groups.iter_mut().zip(&state.groups) {
            group.hp = saved.hp;
        }
        self.state = loaded;
        Ok(())
    }
}
