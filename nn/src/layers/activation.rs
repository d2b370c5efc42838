//! Activation layers, including the lesson's GeneralRelu.

use autograd::Var;

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

macro_rules! simple_activation {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $method:ident) => {
        simple_activation!($(#[$doc])* $name, $kind, $method, fusable: false, floor: None);
    };
    ($(#[$doc:meta])* $name:ident, $kind:literal, $method:ident, fusable: $fusable:literal, floor: $floor:expr) => {
        $(#[$doc])*
        #[derive(Default)]
        pub struct $name {
            hooks: Hooks,
        }

        impl $name {
            /// The layer.
            pub fn new() -> Self {
                Self::default()
            }
        }

        impl Module for $name {
            fn kind(&self) -> &'static str {
                $kind
            }

            fn hooks(&self) -> &Hooks {
                &self.hooks
            }

            fn forward_raw(&self, input: &Var) -> Result<Var> {
                Ok(input.$method()?)
            }

            fn is_fusable_relu(&self) -> bool {
                $fusable && (self.hooks.is_empty() || self.hooks.only_output_hooks())
            }

            fn inactive_output(&self) -> Option<f64> {
                $floor
            }
        }
    };
}

simple_activation!(
    /// `max(x, 0)`. In a [`Sequential`](crate::layers::Sequential) right after a
    /// [`Conv2d`](crate::layers::Conv2d) with no hooks, it runs fused into the
    /// convolution when its own hooks only read its output (see
    /// [`Module::forward_then_relu`] and [`ForwardHook::reads_input`]).
    ///
    /// [`ForwardHook::reads_input`]: crate::hooks::ForwardHook::reads_input
    Relu,
    "ReLU",
    relu,
    fusable: true,
    floor: Some(0.0)
);
simple_activation!(
    /// Hyperbolic tangent.
    Tanh,
    "Tanh",
    tanh
);
simple_activation!(
    /// Logistic sigmoid.
    Sigmoid,
    "Sigmoid",
    sigmoid
);

/// `x` for `x > 0`, `slope * x` otherwise.
pub struct LeakyRelu {
    slope: f64,
    hooks: Hooks,
}

impl LeakyRelu {
    /// A leaky ReLU with the given negative slope (must be finite).
    pub fn new(slope: f64) -> Result<Self> {
        if !slope.is_finite() {
            return Err(config_error(
                "LeakyReLU",
                format!("slope must be finite, got {slope}"),
            ));
        }
        Ok(Self {
            slope,
            hooks: Hooks::new(),
        })
    }
}

impl Module for LeakyRelu {
    fn kind(&self) -> &'static str {
        "LeakyReLU"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        Ok(input.leaky_relu(self.slope)?)
    }

    fn describe(&self) -> String {
        format!("slope {}", self.slope)
    }

    fn inactive_output(&self) -> Option<f64> {
        Some(0.0)
    }
}

/// The lesson's GeneralRelu: a (leaky) ReLU, shifted down by `sub` so its mean is
/// nearer zero, optionally clamped at `maxv`.
///
/// `y = min(leaky_relu(x, leak) - sub, maxv)`; with `leak = None` a plain ReLU.
/// The fastai lesson uses `GeneralRelu(leak=0.1, sub=0.4)`.
pub struct GeneralRelu {
    leak: Option<f64>,
    sub: f64,
    maxv: Option<f64>,
    hooks: Hooks,
}

impl GeneralRelu {
    /// A GeneralRelu; every given value must be finite.
    pub fn new(leak: Option<f64>, sub: f64, maxv: Option<f64>) -> Result<Self> {
        let bad = [leak, Some(sub), maxv]
            .into_iter()
            .flatten()
            .find(|v| !v.is_finite());
        if let Some(v) = bad {
            return Err(config_error(
                "GeneralRelu",
                format!("leak, sub and maxv must be finite, got {v}"),
            ));
        }
        Ok(Self {
            leak,
            sub,
            maxv,
            hooks: Hooks::new(),
        })
    }

    /// The negative slope (`None` for a plain ReLU).
    pub fn leak(&self) -> Option<f64> {
        self.leak
    }
}

impl Module for GeneralRelu {
    fn kind(&self) -> &'static str {
        "GeneralRelu"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        let mut x = match self.leak {
            // One pass for the leak and the shift (the lesson's GeneralRelu(0.1, 0.4)).
            Some(leak) if self.sub != 0.0 => input.shifted_leaky_relu(leak, -self.sub)?,
            Some(leak) => input.leaky_relu(leak)?,
            None if self.sub != 0.0 => input.relu()?.add_scalar(-self.sub)?,
            None => input.relu()?,
        };
        if let Some(maxv) = self.maxv {
            x = x.clamp(f64::NEG_INFINITY, maxv)?;
        }
        Ok(x)
    }

    fn describe(&self) -> String {
        format!(
            "leak {:?}, sub {}, maxv {:?}",
            self.leak, self.sub, self.maxv
        )
    }

    /// `-sub` (clamped at `maxv`): where a unit whose input is zero sits.
    fn inactive_output(&self) -> Option<f64> {
        Some(self.maxv.map_or(-self.sub, |m| (-self.sub).min(m)))
    }
}
