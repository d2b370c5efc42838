//! Forward and backward hooks on modules — the way to look inside a network.
//!
//! A hook is any value implementing [`ForwardHook`] or [`BackwardHook`]; closures do.
//! Registering returns a [`HookHandle`] that removes the hook when dropped and gives
//! access to the hook's own state (the lesson's `Hook` class that accumulates
//! statistics). [`HookCollection`] registers one hook per module of a tree chosen by a
//! [`ModuleFilter`] and removes them all when it goes out of scope.
//!
//! Hooks receive plain [`Tensor`]s, never [`Var`]s: they cannot keep a graph alive or
//! change a result. A module without hooks pays one atomic load per call.
//!
//! ```
//! use nn::hooks::{HookCollection, HookContext, ModuleFilter};
//! use nn::layers::{Linear, Relu, Sequential};
//! use nn::Module;
//! use autograd::Var;
//! use tensor::{DType, Device, Tensor};
//! # fn main() -> Result<(), nn::NnError> {
//! let mut rng = nn::init::seeded_rng(0);
//! let model = Sequential::new(vec![
//!     Box::new(Linear::new(4, 8, true, DType::F32, &mut rng)?),
//!     Box::new(Relu::new()),
//! ]);
//! // Record the mean activation of every Linear layer.
//! let hooks = HookCollection::forward(&model, &ModuleFilter::kinds(&["Linear"]), |_path, _m| {
//!     let mut means = Vec::new();
//!     move |_ctx: &HookContext, _input: &Tensor, output: &Tensor| {
//!         means.push(output.mean_all().and_then(|m| m.item()).unwrap_or(f64::NAN));
//!     }
//! });
//! model.forward(&Var::constant(Tensor::ones([2, 4], DType::F32, &Device::Cpu)?))?;
//! assert_eq!(hooks.len(), 1);
//! drop(hooks); // removes every hook
//! # Ok(())
//! # }
//! ```

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use autograd::op::CustomBackward;
use autograd::Var;
use tensor::Tensor;

use crate::error::Result;
use crate::module::{named_modules_of, Module};

/// What a hook is told about the module it is attached to.
#[derive(Clone, Copy, Debug)]
pub struct HookContext<'a> {
    /// Dotted path of the module in the tree it was registered through (`""` if the
    /// hook was registered on a module directly with no path).
    pub path: &'a str,
    /// The module's kind, e.g. `"Conv2d"`.
    pub kind: &'static str,
    /// Whether the module was in training mode for this call: `false` after
    /// [`ModuleExt::eval`](crate::ModuleExt::eval) or `set_training(false)` on the
    /// module or a container above it, for every module (stateless ones such as
    /// Conv2d and ReLU included), `true` again after `train()`.
    pub training: bool,
}

/// Called after a module's forward with its input and output.
pub trait ForwardHook: Send + 'static {
    /// Sees one forward call.
    fn on_forward(&mut self, ctx: &HookContext<'_>, input: &Tensor, output: &Tensor);

    /// Whether [`on_forward`](ForwardHook::on_forward) reads its `input`. A hook that
    /// looks only at the output (activation statistics, say) returns `false`, and then
    /// does not stop a [`Relu`](crate::layers::Relu) from being fused into the
    /// convolution before it (see [`Module::forward_then_relu`]); in that case the
    /// ReLU's input, the convolution's output, never exists, and the hook is given an
    /// empty tensor in its place. The default, `true`, keeps the layers apart.
    fn reads_input(&self) -> bool {
        true
    }
}

impl<F> ForwardHook for F
where
    F: FnMut(&HookContext<'_>, &Tensor, &Tensor) + Send + 'static,
{
    fn on_forward(&mut self, ctx: &HookContext<'_>, input: &Tensor, output: &Tensor) {
        self(ctx, input, output)
    }
}

/// Called during backward with the gradient of the loss with respect to a module's
/// output and (when its input requires a gradient) its input.
pub trait BackwardHook: Send + 'static {
    /// Sees the gradients of one forward call's output and input.
    fn on_backward(
        &mut self,
        ctx: &HookContext<'_>,
        grad_output: &Tensor,
        grad_input: Option<&Tensor>,
    );
}

impl<F> BackwardHook for F
where
    F: FnMut(&HookContext<'_>, &Tensor, Option<&Tensor>) + Send + 'static,
{
    fn on_backward(
        &mut self,
        ctx: &HookContext<'_>,
        grad_output: &Tensor,
        grad_input: Option<&Tensor>,
    ) {
        self(ctx, grad_output, grad_input)
    }
}

struct Entry<H: ?Sized> {
    id: u64,
    path: Arc<str>,
    hook: Arc<Mutex<H>>,
}

impl<H: ?Sized> Clone for Entry<H> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            path: self.path.clone(),
            hook: self.hook.clone(),
        }
    }
}

#[derive(Default)]
struct Lists {
    next_id: u64,
    forward: Vec<Entry<dyn ForwardHook>>,
    backward: Vec<Entry<dyn BackwardHook>>,
}

#[derive(Default)]
struct Registry {
    count: AtomicUsize,
    lists: Mutex<Lists>,
}

impl Registry {
    fn remove(&self, id: u64) {
        let mut lists = lock(&self.lists);
        let before = lists.forward.len() + lists.backward.len();
        lists.forward.retain(|e| e.id != id);
        lists.backward.retain(|e| e.id != id);
        let removed = before - (lists.forward.len() + lists.backward.len());
        self.count.fetch_sub(removed, Ordering::Relaxed);
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The hook registry every module owns.
///
/// It also holds the module's train/eval mode, so that every module has one (the
/// default [`Module::is_training`] and [`Module::set_own_training`] read and write
/// it) and hooks are told the mode a module was called in
/// ([`HookContext::training`]). A new registry is in training mode.
#[derive(Default)]
pub struct Hooks {
    registry: Arc<Registry>,
    /// Evaluation mode (`false`, the default, is training mode).
    eval: AtomicBool,
}

impl Hooks {
    /// An empty registry, in training mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the owning module is in training mode (what the default
    /// [`Module::is_training`] returns).
    ///
    /// ```
    /// use nn::hooks::Hooks;
    /// let hooks = Hooks::new();
    /// assert!(hooks.is_training());
    /// hooks.set_training(false);
    /// assert!(!hooks.is_training());
    /// ```
    pub fn is_training(&self) -> bool {
        !self.eval.load(Ordering::Relaxed)
    }

    /// Switches the owning module between training (`true`) and evaluation (what the
    /// default [`Module::set_own_training`] does).
    pub fn set_training(&self, training: bool) {
        self.eval.store(!training, Ordering::Relaxed);
    }

    /// Whether no hook is registered (the fast path of [`Module::forward`]).
    pub fn is_empty(&self) -> bool {
        self.registry.count.load(Ordering::Relaxed) == 0
    }

    /// Whether every hook here is a forward hook that does not read the module's
    /// input ([`ForwardHook::reads_input`]), so the module can run fused into the one
    /// before it, with [`Hooks::run_on_output`] in place of [`Hooks::run`].
    pub fn only_output_hooks(&self) -> bool {
        // Snapshot, then ask each hook: never hold the list lock and a hook's at once
        // (a hook may register hooks while it runs).
        let forward = {
            let lists = lock(&self.registry.lists);
            if !lists.backward.is_empty() {
                return false;
            }
            lists.forward.clone()
        };
        forward.iter().all(|e| !lock(&e.hook).reads_input())
    }

    /// Runs the forward hooks on `output`, the output of a forward pass this module
    /// shared with the one before it (its input was never materialised: the hooks get
    /// an empty tensor in its place). Only for modules whose hooks pass
    /// [`Hooks::only_output_hooks`].
    pub fn run_on_output(&self, kind: &'static str, training: bool, output: &Var) {
        let forward_hooks = lock(&self.registry.lists).forward.clone();
        let no_input = Tensor::zeros([0], output.dtype(), &output.tensor().device());
        let Ok(no_input) = no_input else {
            return;
        };
        for entry in &forward_hooks {
            let ctx = HookContext {
                path: &entry.path,
                kind,
                training,
            };
            lock(&entry.hook).on_forward(&ctx, &no_input, output.tensor());
        }
    }

    /// Registers a forward hook; `path` is what the hook's context reports.
    pub fn register_forward<H: ForwardHook>(&self, path: &str, hook: H) -> HookHandle<H> {
        let hook = Arc::new(Mutex::new(hook));
        let mut lists = lock(&self.registry.lists);
        lists.next_id += 1;
        let id = lists.next_id;
        lists.forward.push(Entry {
            id,
            path: path.into(),
            hook: hook.clone(),
        });
        self.registry.count.fetch_add(1, Ordering::Relaxed);
        HookHandle {
            registry: Arc::downgrade(&self.registry),
            id,
            hook,
        }
    }

    /// Registers a backward hook; `path` is what the hook's context reports.
    pub fn register_backward<H: BackwardHook>(&self, path: &str, hook: H) -> HookHandle<H> {
        let hook = Arc::new(Mutex::new(hook));
        let mut lists = lock(&self.registry.lists);
        lists.next_id += 1;
        let id = lists.next_id;
        lists.backward.push(Entry {
            id,
            path: path.into(),
            hook: hook.clone(),
        });
        self.registry.count.fetch_add(1, Ordering::Relaxed);
        HookHandle {
            registry: Arc::downgrade(&self.registry),
            id,
            hook,
        }
    }

    /// Runs `forward` with this registry's hooks around it (called by
    /// [`Module::forward`]).
    pub fn run(
        &self,
        kind: &'static str,
        training: bool,
        input: &Var,
        forward: impl FnOnce(&Var) -> Result<Var>,
    ) -> Result<Var> {
        // Snapshot the lists so that hooks may register or remove hooks, and nested
        // modules may run theirs, without holding this lock.
        let (forward_hooks, backward_hooks) = {
            let lists = lock(&self.registry.lists);
            (lists.forward.clone(), lists.backward.clone())
        };
        let watch_input =
            !backward_hooks.is_empty() && input.requires_grad() && autograd::is_grad_enabled();
        let layer_input = if watch_input {
            Var::from_custom(
                input.tensor().clone(),
                vec![input.clone()],
                Arc::new(Identity),
            )
        } else {
            input.clone()
        };
        let output = forward(&layer_input)?;
        for entry in &forward_hooks {
            let ctx = HookContext {
                path: &entry.path,
                kind,
                training,
            };
            lock(&entry.hook).on_forward(&ctx, input.tensor(), output.tensor());
        }
        if !backward_hooks.is_empty() && output.requires_grad() {
            attach_backward_hooks(
                kind,
                training,
                backward_hooks,
                &layer_input,
                &output,
                watch_input,
            );
        }
        Ok(output)
    }
}

/// The identity op that marks a module's input so its gradient can be observed.
struct Identity;

impl CustomBackward for Identity {
    fn name(&self) -> &'static str {
        "hook_identity"
    }

    fn backward(
        &self,
        _inputs: &[Var],
        _output: &Tensor,
        grad: &Tensor,
    ) -> autograd::Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(grad.clone())])
    }
}

fn attach_backward_hooks(
    kind: &'static str,
    training: bool,
    hooks: Vec<Entry<dyn BackwardHook>>,
    layer_input: &Var,
    output: &Var,
    watch_input: bool,
) {
    let hooks = Arc::new(hooks);
    let call = move |hooks: &[Entry<dyn BackwardHook>], g_out: &Tensor, g_in: Option<&Tensor>| {
        for entry in hooks {
            let ctx = HookContext {
                path: &entry.path,
                kind,
                training,
            };
            lock(&entry.hook).on_backward(&ctx, g_out, g_in);
        }
    };
    if watch_input {
        // The output's gradient is complete first (reverse topological order); keep it
        // until the input's gradient arrives, then report both.
        let slot: Arc<Mutex<Option<Tensor>>> = Arc::default();
        let out_slot = slot.clone();
        output
            .register_hook(move |g| {
                *lock(&out_slot) = Some(g.clone());
                None
            })
            .keep();
        let hooks_in = hooks.clone();
        layer_input
            .register_hook(move |g_in| {
                if let Some(g_out) = lock(&slot).take() {
                    call(&hooks_in, &g_out, Some(g_in));
                }
                None
            })
            .keep();
    } else {
        output
            .register_hook(move |g| {
                call(&hooks, g, None);
                None
            })
            .keep();
    }
}

/// Removes its hook when dropped or on [`remove`](HookHandle::remove), and gives
/// access to the hook's state through [`lock`](HookHandle::lock).
///
/// It holds a `Weak` reference to the module's registry: a handle never keeps a module
/// alive, and dropping it after the module is gone does nothing.
#[must_use = "the hook is removed as soon as the handle is dropped; bind it to a variable"]
pub struct HookHandle<H: ?Sized> {
    registry: Weak<Registry>,
    id: u64,
    hook: Arc<Mutex<H>>,
}

impl<H: ?Sized> HookHandle<H> {
    /// Removes the hook now (same as dropping the handle).
    pub fn remove(self) {}

    /// The hook's state (e.g. the statistics it collected).
    pub fn lock(&self) -> MutexGuard<'_, H> {
        lock(&self.hook)
    }

    /// Whether the hook is still registered.
    pub fn is_active(&self) -> bool {
        self.registry.upgrade().is_some_and(|r| {
            let lists = lock(&r.lists);
            lists.forward.iter().any(|e| e.id == self.id)
                || lists.backward.iter().any(|e| e.id == self.id)
        })
    }
}

impl<H: ?Sized> Drop for HookHandle<H> {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove(self.id);
        }
    }
}

/// A predicate over a module's dotted path and the module itself.
pub type ModulePredicate = dyn Fn(&str, &dyn Module) -> bool + Send + Sync;

/// Chooses modules of a tree, for [`HookCollection`] and for init schemes.
pub enum ModuleFilter {
    /// Every module, containers included.
    All,
    /// Modules without children (the layers that compute).
    Leaves,
    /// Modules of these kinds (`"Conv2d"`, `"Linear"`, ...).
    Kinds(Vec<&'static str>),
    /// Modules whose dotted path matches a glob pattern (`*` matches any run of
    /// characters, e.g. `"layers.*.conv"`).
    Path(String),
    /// Any predicate over the path and the module.
    Predicate(Box<ModulePredicate>),
}

impl ModuleFilter {
    /// Modules of the given kinds.
    pub fn kinds(kinds: &[&'static str]) -> Self {
        ModuleFilter::Kinds(kinds.to_vec())
    }

    /// Modules whose path matches a glob pattern.
    pub fn path(pattern: &str) -> Self {
        ModuleFilter::Path(pattern.to_string())
    }

    /// Modules chosen by a predicate.
    pub fn predicate(f: impl Fn(&str, &dyn Module) -> bool + Send + Sync + 'static) -> Self {
        ModuleFilter::Predicate(Box::new(f))
    }

    /// Whether the module at `path` is chosen.
    pub fn matches(&self, path: &str, module: &dyn Module) -> bool {
        match self {
            ModuleFilter::All => true,
            ModuleFilter::Leaves => module.children().is_empty(),
            ModuleFilter::Kinds(kinds) => kinds.contains(&module.kind()),
            ModuleFilter::Path(pattern) => glob_match(pattern.as_bytes(), path.as_bytes()),
            ModuleFilter::Predicate(f) => f(path, module),
        }
    }
}

/// `*` matches any (possibly empty) run of characters; everything else literally.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((bp, bt)) = backtrack {
            p = bp + 1;
            t = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// One hook per chosen module of a tree; dropping the collection removes them all.
pub struct HookCollection<H> {
    handles: Vec<(String, &'static str, HookHandle<H>)>,
}

impl<H> HookCollection<H> {
    /// Registers a forward hook made by `make(path, module)` on every module of
    /// `root` that `filter` chooses, in tree order.
    pub fn forward(
        root: &dyn Module,
        filter: &ModuleFilter,
        mut make: impl FnMut(&str, &dyn Module) -> H,
    ) -> Self
    where
        H: ForwardHook,
    {
        let handles = named_modules_of(root)
            .into_iter()
            .filter(|m| filter.matches(&m.path, m.module))
            .map(|m| {
                let hook = make(&m.path, m.module);
                let handle = m.module.hooks().register_forward(&m.path, hook);
                (m.path, m.module.kind(), handle)
            })
            .collect();
        Self { handles }
    }

    /// Registers a backward hook made by `make(path, module)` on every chosen module.
    pub fn backward(
        root: &dyn Module,
        filter: &ModuleFilter,
        mut make: impl FnMut(&str, &dyn Module) -> H,
    ) -> Self
    where
        H: BackwardHook,
    {
        let handles = named_modules_of(root)
            .into_iter()
            .filter(|m| filter.matches(&m.path, m.module))
            .map(|m| {
                let hook = make(&m.path, m.module);
                let handle = m.module.hooks().register_backward(&m.path, hook);
                (m.path, m.module.kind(), handle)
            })
            .collect();
        Self { handles }
    }

    /// Number of hooks registered.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no module was chosen.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// `(path, kind, handle)` for each hook, in tree order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &'static str, &HookHandle<H>)> {
        self.handles.iter().map(|(p, k, h)| (p.as_str(), *k, h))
    }

    /// Removes every hook now (same as dropping the collection).
    pub fn remove(self) {}
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_patterns() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"layers.*.conv", b"layers.3.conv"));
        assert!(!glob_match(b"layers.*.conv", b"layers.3.bn"));
        assert!(glob_match(b"0", b"0"));
        assert!(!glob_match(b"0", b"0.1"));
        assert!(glob_match(b"*bn*", b"block.bn1"));
    }
}
