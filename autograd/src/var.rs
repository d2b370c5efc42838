//! [`Var`]: a tensor together with its place in the computation graph.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tensor::{DType, Device, Shape, Tensor};

use crate::grad_mode::is_grad_enabled;
use crate::hooks::HookList;
use crate::op::Op;

/// A process-unique identity of a [`Var`] (shared by its clones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(u64);

impl VarId {
    fn fresh() -> VarId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        VarId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The raw number, for display and logging.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

/// A differentiable value: a [`Tensor`] plus the node recording how it was computed.
///
/// Three kinds exist:
/// - a **constant** (`Var::constant`), which never receives a gradient;
/// - a **leaf** that requires a gradient (`Var::parameter`): weights, or inputs whose
///   gradient you want; its gradient accumulates in [`Var::grad`];
/// - an **interior** value produced by an op on values that require gradients while
///   recording is on (see [`no_grad`](crate::no_grad)).
///
/// Cloning is cheap and clones share identity, gradient and hooks.
#[derive(Clone)]
pub struct Var {
    pub(crate) inner: Arc<VarInner>,
}

pub(crate) struct VarInner {
    pub(crate) id: VarId,
    pub(crate) tensor: Tensor,
    pub(crate) kind: NodeKind,
    /// Gradient hooks; created on first registration so unhooked values pay nothing.
    pub(crate) hooks: OnceLock<Arc<HookList>>,
    /// Keep this value's gradient in the returned store even though it is not a leaf.
    pub(crate) retain: AtomicBool,
}

pub(crate) enum NodeKind {
    Constant,
    Leaf {
        grad: Mutex<Option<Tensor>>,
    },
    /// `op` is `None` once a backward pass released the saved state.
    Interior {
        op: Mutex<Option<Op>>,
        name: &'static str,
    },
}

impl Var {
    fn with_kind(tensor: Tensor, kind: NodeKind) -> Var {
        Var {
            inner: Arc::new(VarInner {
                id: VarId::fresh(),
                tensor,
                kind,
                hooks: OnceLock::new(),
                retain: AtomicBool::new(false),
            }),
        }
    }

    /// A value that never receives a gradient (data, targets, masks).
    pub fn constant(tensor: Tensor) -> Var {
        Var::with_kind(tensor, NodeKind::Constant)
    }

    /// A leaf that requires a gradient: a model parameter, or an input whose gradient
    /// you want to inspect.
    pub fn parameter(tensor: Tensor) -> Var {
        Var::with_kind(
            tensor,
            NodeKind::Leaf {
                grad: Mutex::new(None),
            },
        )
    }

    /// A leaf that requires a gradient if `requires_grad`, a constant otherwise.
    pub fn new(tensor: Tensor, requires_grad: bool) -> Var {
        if requires_grad {
            Var::parameter(tensor)
        } else {
            Var::constant(tensor)
        }
    }

    /// Wraps the result of an op: records `op` when recording is on and some input
    /// requires a gradient; otherwise the result is a constant and `op` is dropped
    /// (so subgraphs that lead to no parameter cost nothing at backward time).
    pub(crate) fn from_op(tensor: Tensor, op: Op) -> Var {
        if is_grad_enabled() && op.inputs().iter().any(|v| v.requires_grad()) {
            let name = op.name();
            Var::with_kind(
                tensor,
                NodeKind::Interior {
                    op: Mutex::new(Some(op)),
                    name,
                },
            )
        } else {
            Var::constant(tensor)
        }
    }

    /// The value.
    pub fn tensor(&self) -> &Tensor {
        &self.inner.tensor
    }

    /// This value's identity (shared by clones).
    pub fn id(&self) -> VarId {
        self.inner.id
    }

    /// The value's shape.
    pub fn shape(&self) -> &Shape {
        self.inner.tensor.shape()
    }

    /// The value's dimensions.
    pub fn dims(&self) -> &[usize] {
        self.inner.tensor.dims()
    }

    /// The value's rank.
    pub fn rank(&self) -> usize {
        self.inner.tensor.rank()
    }

    /// The value's element type.
    pub fn dtype(&self) -> DType {
        self.inner.tensor.dtype()
    }

    /// The device the value lives on.
    pub fn device(&self) -> Device {
        self.inner.tensor.device()
    }

    /// Whether a gradient flows to this value (leaf parameters and values computed
    /// from them while recording).
    pub fn requires_grad(&self) -> bool {
        !matches!(self.inner.kind, NodeKind::Constant)
    }

    /// Whether this value is a leaf that requires a gradient.
    pub fn is_leaf(&self) -> bool {
        matches!(self.inner.kind, NodeKind::Leaf { .. })
    }

    /// The name of the op that produced this value, for interior values.
    pub fn op_name(&self) -> Option<&'static str> {
        match &self.inner.kind {
            NodeKind::Interior { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The gradient accumulated so far: for a leaf, the sum over all backward passes
    /// since the last [`zero_grad`](Var::zero_grad); `None` for other values (use
    /// [`retain_grad`](Var::retain_grad) and the returned
    /// [`Gradients`](crate::Gradients) for those).
    pub fn grad(&self) -> Option<Tensor> {
        match &self.inner.kind {
            NodeKind::Leaf { grad } => lock(grad).clone(),
            _ => None,
        }
    }

    /// Replaces a leaf's accumulated gradient (e.g. after clipping). Has no effect on
    /// values that are not leaves.
    pub fn set_grad(&self, value: Option<Tensor>) {
        if let NodeKind::Leaf { grad } = &self.inner.kind {
            *lock(grad) = value;
        }
    }

    /// Clears a leaf's accumulated gradient.
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// A constant sharing this value's storage, cut off from the graph.
    pub fn detach(&self) -> Var {
        Var::constant(self.inner.tensor.clone())
    }

    /// Asks the next backward pass to keep this (non-leaf) value's gradient in the
    /// returned [`Gradients`](crate::Gradients) instead of freeing it once used.
    pub fn retain_grad(&self) {
        self.inner.retain.store(true, Ordering::Relaxed);
    }

    pub(crate) fn retains_grad(&self) -> bool {
        self.inner.retain.load(Ordering::Relaxed)
    }

    pub(crate) fn accumulate_leaf_grad(&self, g: &Tensor) -> tensor::Result<()> {
        if let NodeKind::Leaf { grad } = &self.inner.kind {
            let mut slot = lock(grad);
            *slot = Some(match slot.take() {
                None => g.contiguous()?,
                Some(previous) => previous.add(g)?,
            });
        }
        Ok(())
    }
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the data is
/// a plain gradient or op, still consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner.kind {
            NodeKind::Constant => "constant".to_string(),
            NodeKind::Leaf { .. } => "leaf".to_string(),
            NodeKind::Interior { name, .. } => format!("op {name}"),
        };
        write!(
            f,
            "Var(#{} {kind}, {:?})",
            self.inner.id.0, self.inner.tensor
        )
    }
}

impl Drop for VarInner {
    /// Frees long chains iteratively: a graph of 100k ops would otherwise drop
    /// recursively (one stack frame per node) and overflow the stack.
    fn drop(&mut self) {
        let NodeKind::Interior { op, .. } = &mut self.kind else {
            return;
        };
        let Some(op) = op.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let mut stack = op.into_inputs();
        while let Some(var) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(var.inner) {
                if let NodeKind::Interior { op, .. } = &mut inner.kind {
                    if let Some(op) = op.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
                        stack.extend(op.into_inputs());
                    }
                }
            }
        }
    }
}
