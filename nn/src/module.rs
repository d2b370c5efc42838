//! The [`Module`] trait: a layer or a network of layers, with named children,
//! parameters, buffers, train/eval mode and hooks.

use autograd::Var;
use tensor::Tensor;

use crate::error::Result;
use crate::hooks::Hooks;

/// A layer or a network of layers.
///
/// Implementors write [`forward_raw`](Module::forward_raw) (the computation) and
/// expose their [`Hooks`]; callers use [`forward`](Module::forward), which runs the
/// registered hooks around it (and costs one check when none is registered). All
/// methods take `&self`: modules are shared between the training loop, hooks and
/// diagnostics, so mutable state (running statistics, mode flags) uses interior
/// mutability.
pub trait Module: Send + Sync {
    /// A short type name used by filters and reports, e.g. `"Conv2d"`.
    fn kind(&self) -> &'static str;

    /// The computation itself, without hooks.
    fn forward_raw(&self, input: &Var) -> Result<Var>;

    /// This module's hook registry.
    fn hooks(&self) -> &Hooks;

    /// Runs the module: forward hooks see the input and output, and backward hooks are
    /// attached to the result so they see the gradients when backward runs.
    fn forward(&self, input: &Var) -> Result<Var> {
        let hooks = self.hooks();
        if hooks.is_empty() {
            return self.forward_raw(input);
        }
        hooks.run(self.kind(), self.is_training(), input, |x| {
            self.forward_raw(x)
        })
    }

    /// Direct children with their names (the name is one component of a dotted path).
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// Whether this layer is a plain ReLU that the layer before it may absorb through
    /// [`Module::forward_then_relu`]: `true` only for a [`Relu`](crate::layers::Relu)
    /// whose hooks (if any) only read its output
    /// ([`Hooks::only_output_hooks`](crate::hooks::Hooks::only_output_hooks)); the
    /// container then runs them on the fused output.
    fn is_fusable_relu(&self) -> bool {
        false
    }

    /// This layer's forward pass followed by a ReLU, as one fused op, when the layer
    /// has one and no hooks (which would have to see the output before the ReLU);
    /// `None` otherwise. [`Sequential`](crate::layers::Sequential) calls it for a layer
    /// followed by a fusable ReLU; [`Conv2d`](crate::layers::Conv2d) implements it
    /// with [`autograd::Var::conv2d_relu`]. The values are those of the two layers run
    /// one after the other.
    fn forward_then_relu(&self, input: &Var) -> Option<Result<Var>> {
        let _ = input;
        None
    }

    /// Parameters owned by this module itself (not its children), with local names
    /// such as `"weight"`.
    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        Vec::new()
    }

    /// Buffers owned by this module itself: state saved with the model but not
    /// trained by gradient descent (running statistics).
    fn own_buffers(&self) -> Vec<(&'static str, Tensor)> {
        Vec::new()
    }

    /// Switches this module (not its children) between training and evaluation.
    ///
    /// The mode is kept in the module's [`Hooks`], so every module has one: layers
    /// whose computation depends on it (BatchNorm, Dropout) read
    /// [`is_training`](Module::is_training), and hooks see it as
    /// [`HookContext::training`](crate::hooks::HookContext::training). Use
    /// [`ModuleExt::set_training`], [`train`](ModuleExt::train) or
    /// [`eval`](ModuleExt::eval) to switch a whole tree.
    fn set_own_training(&self, training: bool) {
        self.hooks().set_training(training);
    }

    /// Whether the module is in training mode (the mode of a new module).
    fn is_training(&self) -> bool {
        self.hooks().is_training()
    }

    /// One line describing the module's configuration, e.g. `"784 -> 128, bias"`.
    fn describe(&self) -> String {
        String::new()
    }

    /// For a rectifying activation, the output of a unit that does not fire (its
    /// input at or below zero): `0` for ReLU and leaky ReLU, `-sub` for
    /// [`GeneralRelu`](crate::layers::GeneralRelu). Dead-unit statistics count the
    /// outputs close to it. `None` (the default) for every other layer.
    fn inactive_output(&self) -> Option<f64> {
        None
    }
}

/// A module somewhere in a tree, with its dotted path from the root (`""` for the
/// root itself, `"0"`, `"0.conv"`, ...).
pub struct NamedModule<'a> {
    /// Dotted path from the root.
    pub path: String,
    /// The module.
    pub module: &'a dyn Module,
}

/// Walking the tree of modules: paths, parameters, buffers, mode.
pub trait ModuleExt: Module {
    /// Every module of the tree, root first, depth-first in child order, with paths.
    fn named_modules(&self) -> Vec<NamedModule<'_>>
    where
        Self: Sized,
    {
        named_modules_of(self)
    }

    /// Every parameter of the tree with its dotted name (`"0.weight"`).
    fn named_parameters(&self) -> Vec<(String, Var)>
    where
        Self: Sized,
    {
        named_parameters_of(self)
    }

    /// Every parameter of the tree.
    fn parameters(&self) -> Vec<Var>
    where
        Self: Sized,
    {
        named_parameters_of(self)
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Every buffer of the tree with its dotted name.
    fn named_buffers(&self) -> Vec<(String, Tensor)>
    where
        Self: Sized,
    {
        named_buffers_of(self)
    }

    /// Switches the whole tree to training (`true`) or evaluation (`false`) mode.
    fn set_training(&self, training: bool)
    where
        Self: Sized,
    {
        set_training_of(self, training)
    }

    /// Switches the whole tree to training mode (PyTorch's `model.train()`).
    fn train(&self)
    where
        Self: Sized,
    {
        set_training_of(self, true)
    }

    /// Switches the whole tree to evaluation mode (PyTorch's `model.eval()`):
    /// BatchNorm uses its running statistics, Dropout passes its input through, and
    /// hooks see `training == false`.
    ///
    /// ```
    /// use nn::layers::{Relu, Sequential};
    /// use nn::{Module, ModuleExt};
    /// let model = Sequential::new(vec![Box::new(Relu::new())]);
    /// model.eval();
    /// assert!(model.named_modules().iter().all(|m| !m.module.is_training()));
    /// model.train();
    /// assert!(model.layers()[0].is_training());
    /// ```
    fn eval(&self)
    where
        Self: Sized,
    {
        set_training_of(self, false)
    }

    /// Clears the accumulated gradient of every parameter.
    fn zero_grad(&self)
    where
        Self: Sized,
    {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
}

impl<M: Module> ModuleExt for M {}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// [`ModuleExt::named_modules`] for a trait object.
pub fn named_modules_of(root: &dyn Module) -> Vec<NamedModule<'_>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root)];
    while let Some((path, module)) = stack.pop() {
        let children = module.children();
        for (name, child) in children.into_iter().rev() {
            stack.push((join(&path, &name), child));
        }
        out.push(NamedModule { path, module });
    }
    out
}

/// [`ModuleExt::named_parameters`] for a trait object.
pub fn named_parameters_of(root: &dyn Module) -> Vec<(String, Var)> {
    named_modules_of(root)
        .into_iter()
        .flat_map(|m| {
            m.module
                .own_parameters()
                .into_iter()
                .map(move |(name, v)| (join(&m.path, name), v))
        })
        .collect()
}

/// [`ModuleExt::named_buffers`] for a trait object.
pub fn named_buffers_of(root: &dyn Module) -> Vec<(String, Tensor)> {
    named_modules_of(root)
        .into_iter()
        .flat_map(|m| {
            m.module
                .own_buffers()
                .into_iter()
                .map(move |(name, t)| (join(&m.path, name), t))
        })
        .collect()
}

/// [`ModuleExt::set_training`] for a trait object.
pub fn set_training_of(root: &dyn Module, training: bool) {
    for m in named_modules_of(root) {
        m.module.set_own_training(training);
    }
}
