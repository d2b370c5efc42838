//! Gradient hooks: closures that see, and may replace, the gradient flowing into a value.

use std::sync::{Arc, Mutex, Weak};

use tensor::Tensor;

use crate::error::{AutogradError, Result};
use crate::var::{lock, Var};

/// A gradient hook: sees the complete gradient of a value (summed over all its uses)
/// and returns `Some(replacement)` to change what flows on, or `None` to leave it.
pub type GradHook = Box<dyn FnMut(&Tensor) -> Option<Tensor> + Send>;

/// The hooks registered on one value, in registration order.
#[derive(Default)]
pub(crate) struct HookList {
    next_id: Mutex<u64>,
    hooks: Mutex<Vec<(u64, GradHook)>>,
}

impl HookList {
    fn add(&self, hook: GradHook) -> u64 {
        let mut next = lock(&self.next_id);
        *next += 1;
        lock(&self.hooks).push((*next, hook));
        *next
    }

    fn remove(&self, id: u64) {
        lock(&self.hooks).retain(|(hid, _)| *hid != id);
    }
}

/// Removes its hook when dropped or on [`remove`](HookHandle::remove).
///
/// It holds only a `Weak` reference to the value's hook list, so a handle never keeps
/// a value (or its graph) alive, and dropping it after the value is gone is a no-op.
#[must_use = "the hook is removed as soon as the handle is dropped; bind it to a variable"]
pub struct HookHandle {
    list: Weak<HookList>,
    id: u64,
}

impl HookHandle {
    /// Removes the hook now (same as dropping the handle).
    pub fn remove(self) {}

    /// Disarms the handle: the hook stays registered for as long as the value lives.
    /// Used for hooks that belong to one forward pass (module backward hooks), which
    /// die with the graph.
    pub fn keep(mut self) {
        self.list = Weak::new();
    }

    /// Whether the hook is still registered (false once the value is gone).
    pub fn is_active(&self) -> bool {
        self.list
            .upgrade()
            .is_some_and(|l| lock(&l.hooks).iter().any(|(id, _)| *id == self.id))
    }
}

impl Drop for HookHandle {
    fn drop(&mut self) {
        if let Some(list) = self.list.upgrade() {
            list.remove(self.id);
        }
    }
}

impl Var {
    /// Registers a gradient hook on this value; it runs during every backward pass that
    /// reaches the value, once its gradient is complete and before it flows further.
    ///
    /// ```
    /// use autograd::Var;
    /// use tensor::{Device, Tensor};
    /// # fn main() -> Result<(), autograd::AutogradError> {
    /// let x = Var::parameter(Tensor::from_vec(vec![1.0f64, -2.0], [2], &Device::Cpu)?);
    /// let handle = x.register_hook(|g| Some(g.mul_scalar(10.0).ok()?)); // scale the gradient
    /// x.mul_scalar(3.0)?.sum_all()?.backward()?;
    /// assert_eq!(x.grad().unwrap().to_vec::<f64>()?, vec![30.0, 30.0]);
    /// handle.remove();
    /// # Ok(())
    /// # }
    /// ```
    pub fn register_hook<F>(&self, hook: F) -> HookHandle
    where
        F: FnMut(&Tensor) -> Option<Tensor> + Send + 'static,
    {
        let list = self
            .inner
            .hooks
            .get_or_init(|| Arc::new(HookList::default()));
        let id = list.add(Box::new(hook));
        HookHandle {
            list: Arc::downgrade(list),
            id,
        }
    }

    /// Runs this value's hooks on `grad`, in registration order.
    pub(crate) fn run_hooks(&self, mut grad: Tensor) -> Result<Tensor> {
        let Some(list) = self.inner.hooks.get() else {
            return Ok(grad);
        };
        let mut hooks = lock(&list.hooks);
        for (_, hook) in hooks.iter_mut() {
            if let Some(replacement) = hook(&grad) {
                if replacement.shape() != self.shape() {
                    return Err(AutogradError::HookShape {
                        expected: self.shape().clone(),
                        got: replacement.shape().clone(),
                    });
                }
                grad = replacement;
            }
        }
        Ok(grad)
    }
}
