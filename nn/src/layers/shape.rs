//! Layers that only change shape.

use autograd::Var;

use crate::error::Result;
use crate::hooks::Hooks;
use crate::module::Module;

/// Flattens every dim after the first: `[N, ...] -> [N, prod(...)]`.
#[derive(Default)]
pub struct Flatten {
    hooks: Hooks,
}

impl Flatten {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Module for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        super::expect_rank(
            "Flatten",
            input,
            &[2, 3, 4, 5, 6],
            "a batch [N, ...] of rank >= 2",
        )?;
        match input.rank() {
            2 => Ok(input.clone()),
            r => Ok(input.flatten(1, r - 1)?),
        }
    }
}
