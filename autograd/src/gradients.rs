//! The store of gradients that [`Var::backward`](crate::Var::backward) returns.

use std::collections::HashMap;

use tensor::Tensor;

use crate::var::{Var, VarId};

/// Gradients computed by one backward pass, keyed by value id: every leaf that
/// requires a gradient, plus every intermediate value that asked for
/// [`retain_grad`](crate::Var::retain_grad).
///
/// Leaves also accumulate their gradient in [`Var::grad`](crate::Var::grad) across
/// backward calls (until [`zero_grad`](crate::Var::zero_grad)); this store holds what
/// this one pass contributed.
#[derive(Default, Debug)]
pub struct Gradients {
    map: HashMap<VarId, Tensor>,
}

impl Gradients {
    /// The gradient this pass computed for `var`, if any.
    pub fn get(&self, var: &Var) -> Option<&Tensor> {
        self.map.get(&var.id())
    }

    /// The gradient for a value id, if any.
    pub fn get_by_id(&self, id: VarId) -> Option<&Tensor> {
        self.map.get(&id)
    }

    /// Number of gradients stored.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no gradient was stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub(crate) fn insert(&mut self, id: VarId, grad: Tensor) {
        self.map.insert(id, grad);
    }
}
