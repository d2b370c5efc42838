//! Adaptive average pooling.

use autograd::Var;

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

/// Averages `[N, C, H, W]` down to `[N, C, oh, ow]` over equal windows. Output sizes
/// must divide the input's (PyTorch also accepts uneven windows; this layer refuses
/// them with an error rather than guess).
pub struct AdaptiveAvgPool2d {
    output: (usize, usize),
    hooks: Hooks,
}

impl AdaptiveAvgPool2d {
    /// Pools to `output` = (height, width), both positive.
    pub fn new(output: (usize, usize)) -> Result<Self> {
        if output.0 == 0 || output.1 == 0 {
            return Err(config_error(
                "AdaptiveAvgPool2d",
                format!("output size must be positive, got {output:?}"),
            ));
        }
        Ok(Self {
            output,
            hooks: Hooks::new(),
        })
    }
}

impl Module for AdaptiveAvgPool2d {
    fn kind(&self) -> &'static str {
        "AdaptiveAvgPool2d"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        super::expect_rank(
            "AdaptiveAvgPool2d",
            input,
            &[4],
            "a batch of images [N, C, H, W]",
        )?;
        let d = input.dims();
        let (n, c, h, w) = (d[0], d[1], d[2], d[3]);
        let (oh, ow) = self.output;
        if h % oh != 0 || w % ow != 0 {
            return Err(config_error(
                "AdaptiveAvgPool2d",
                format!("output {oh}x{ow} must divide the input's {h}x{w}"),
            ));
        }
        let windows = input.reshape([n, c, oh, h / oh, ow, w / ow])?;
        Ok(windows.mean(&[3, 5], false)?)
    }

    fn describe(&self) -> String {
        format!("output {:?}", self.output)
    }
}
