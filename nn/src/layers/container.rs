//! Containers: a sequence of modules, and a closure as a module.

use autograd::Var;

use crate::error::Result;
use crate::hooks::Hooks;
use crate::module::Module;

/// Runs its children in order; they are named `"0"`, `"1"`, ... in paths.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module>>,
    hooks: Hooks,
}

impl Sequential {
    /// A sequence of layers.
    pub fn new(layers: Vec<Box<dyn Module>>) -> Self {
        Self {
            layers,
            hooks: Hooks::new(),
        }
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Module + 'static) {
        self.layers.push(Box::new(layer));
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module>] {
        &self.layers
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there is no layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Module for Sequential {
    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    /// Runs the layers in order. A layer without hooks followed by a ReLU whose hooks
    /// (if any) only read its output runs as one fused op where the layer has one
    /// ([`Module::forward_then_relu`]: a convolution then its ReLU in one pass over
    /// memory instead of three); the ReLU's hooks then see the fused output.
    fn forward_raw(&self, input: &Var) -> Result<Var> {
        let mut x = input.clone();
        let mut layers = self.layers.iter().peekable();
        while let Some(layer) = layers.next() {
            if let Some(relu) = layers.peek().filter(|next| next.is_fusable_relu()) {
                if let Some(y) = layer.forward_then_relu(&x) {
                    x = y?;
                    if !relu.hooks().is_empty() {
                        relu.hooks()
                            .run_on_output(relu.kind(), relu.is_training(), &x);
                    }
                    layers.next();
                    continue;
                }
            }
            x = layer.forward(&x)?;
        }
        Ok(x)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| (i.to_string(), l.as_ref()))
            .collect()
    }

    /// The last layer's: a block `conv, relu` outputs what its ReLU does.
    fn inactive_output(&self) -> Option<f64> {
        self.layers.last().and_then(|l| l.inactive_output())
    }
}

type LambdaFn = dyn Fn(&Var) -> Result<Var> + Send + Sync;

/// A closure as a layer (the lesson's `Lambda`), e.g. a reshape between layers.
pub struct Lambda {
    name: &'static str,
    f: Box<LambdaFn>,
    hooks: Hooks,
}

impl Lambda {
    /// A layer that applies `f`; `name` is its kind in paths and reports.
    pub fn new(
        name: &'static str,
        f: impl Fn(&Var) -> Result<Var> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name,
            f: Box::new(f),
            hooks: Hooks::new(),
        }
    }
}

impl Module for Lambda {
    fn kind(&self) -> &'static str {
        self.name
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        (self.f)(input)
    }
}
