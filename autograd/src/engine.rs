//! The backward pass: topological order from the output, then one reverse sweep.

use std::collections::{HashMap, HashSet};

use tensor::Tensor;

use crate::error::{AutogradError, Result};
use crate::gradients::Gradients;
use crate::op::Op;
use crate::var::{lock, NodeKind, Var, VarId};

/// Options of a backward pass.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackwardOptions {
    /// Keep the saved state of every op so that backward can run through the same
    /// graph again (PyTorch's `retain_graph`). Off by default: the state is released as
    /// soon as each op's gradient is computed, which is what keeps memory flat.
    pub keep_graph: bool,
}

impl Var {
    /// Back-propagates from this single-element value (a loss): every leaf that
    /// requires a gradient accumulates d(self)/d(leaf) in [`Var::grad`]; the returned
    /// store holds this pass's leaf gradients and any retained ones.
    pub fn backward(&self) -> Result<Gradients> {
        self.backward_with(None, BackwardOptions::default())
    }

    /// Back-propagates from a value of any shape, given the gradient of some scalar
    /// with respect to it (same shape as `self`).
    pub fn backward_with_grad(&self, grad: &Tensor) -> Result<Gradients> {
        self.backward_with(Some(grad), BackwardOptions::default())
    }

    /// The general form: optional output gradient (required unless `self` has one
    /// element) and [`BackwardOptions`].
    pub fn backward_with(
        &self,
        grad: Option<&Tensor>,
        options: BackwardOptions,
    ) -> Result<Gradients> {
        if !self.requires_grad() {
            return Err(AutogradError::InvalidArgument {
                op: "backward",
                detail: format!(
                    "the value of shape {} does not require a gradient: no parameter was involved in computing it, or it was computed under no_grad",
                    self.shape()
                ),
            });
        }
        let seed = match grad {
            Some(g) => {
                if g.shape() != self.shape() {
                    return Err(AutogradError::GradShape {
                        expected: self.shape().clone(),
                        got: g.shape().clone(),
                    });
                }
                g.to_dtype(self.dtype())?
            }
            None => {
                let count = self.tensor().elem_count();
                if count != 1 {
                    return Err(AutogradError::NonScalarBackward {
                        shape: self.shape().clone(),
                        count,
                    });
                }
                self.tensor().ones_like()?
            }
        };
        let order = topological_order(self)?;
        let mut pending: HashMap<VarId, Tensor> = HashMap::with_capacity(order.len());
        pending.insert(self.id(), seed);
        let mut store = Gradients::default();
        for var in order.iter().rev() {
            let Some(grad) = pending.remove(&var.id()) else {
                continue;
            };
            let grad = var.run_hooks(grad)?;
            match &var.inner.kind {
                NodeKind::Constant => {}
                NodeKind::Leaf { .. } => {
                    var.accumulate_leaf_grad(&grad)?;
                    store.insert(var.id(), grad);
                }
                NodeKind::Interior { op, name } => {
                    let op = {
                        let mut slot = lock(op);
                        if options.keep_graph {
                            slot.clone()
                        } else {
                            slot.take()
                        }
                    }
                    .ok_or(AutogradError::GraphFreed { op: name })?;
                    if var.retains_grad() {
                        store.insert(var.id(), grad.clone());
                    }
                    for (input, input_grad) in op.backward(var.tensor(), &grad)? {
                        if input_grad.shape() != input.shape() {
                            return Err(AutogradError::InvalidArgument {
                                op: name,
                                detail: format!(
                                    "backward rule produced a gradient of shape {} for an input of shape {} (a bug in the rule)",
                                    input_grad.shape(),
                                    input.shape()
                                ),
                            });
                        }
                        accumulate(&mut pending, input.id(), input_grad)?;
                    }
                }
            }
        }
        Ok(store)
    }
}

fn accumulate(pending: &mut HashMap<VarId, Tensor>, id: VarId, grad: Tensor) -> Result<()> {
    match pending.remove(&id) {
        None => {
            pending.insert(id, grad);
        }
        Some(previous) => {
            pending.insert(id, previous.add(&grad)?);
        }
    }
    Ok(())
}

/// Values that require a gradient and are reachable from `root`, inputs before the
/// values computed from them (iterative post-order DFS: deep graphs do not recurse).
fn topological_order(root: &Var) -> Result<Vec<Var>> {
    let mut order = Vec::new();
    let mut visited: HashSet<VarId> = HashSet::new();
    // (value, whether its inputs were already pushed)
    let mut stack: Vec<(Var, bool)> = vec![(root.clone(), false)];
    while let Some((var, expanded)) = stack.pop() {
        if expanded {
            order.push(var);
            continue;
        }
        if !visited.insert(var.id()) {
            continue;
        }
        let inputs = match &var.inner.kind {
            NodeKind::Interior { op, name } => {
                let slot = lock(op);
                let op: &Op = slot
                    .as_ref()
                    .ok_or(AutogradError::GraphFreed { op: name })?;
                op.inputs()
                    .into_iter()
                    .filter(|v| v.requires_grad())
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        stack.push((var, true));
        for input in inputs {
            if !visited.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    Ok(order)
}
