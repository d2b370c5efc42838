//! Whether operations record a graph: on by default, off inside a [`no_grad`] scope.

use std::cell::Cell;

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether operations on this thread currently record their backward.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(Cell::get)
}

/// Turns graph recording off on this thread until the returned guard is dropped.
///
/// Use it for evaluation, for optimiser updates, and for statistics: values computed
/// inside the scope are constants with no graph behind them. Scopes nest; dropping a
/// guard restores the state that was in force when it was created.
///
/// ```
/// use autograd::{is_grad_enabled, no_grad};
/// assert!(is_grad_enabled());
/// {
///     let _guard = no_grad();
///     assert!(!is_grad_enabled());
/// }
/// assert!(is_grad_enabled());
/// ```
pub fn no_grad() -> NoGradGuard {
    NoGradGuard {
        previous: GRAD_ENABLED.with(|g| g.replace(false)),
    }
}

/// Restores the previous recording state when dropped; see [`no_grad`].
#[must_use = "recording is re-enabled as soon as the guard is dropped"]
pub struct NoGradGuard {
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}
