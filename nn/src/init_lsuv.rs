//! Layer-sequential unit-variance initialisation (LSUV, Mishkin & Matas 2015), as the
//! fastai lesson applies it: for each weighted layer in order, run one real batch,
//! read the following activation through a forward hook, then subtract its mean from
//! the layer's bias and divide the layer's weight by its std, until the activation's
//! mean is near 0 and its std near 1.

use std::sync::{Arc, Mutex};

use autograd::{no_grad, Var};
use tensor::Tensor;

use crate::error::{config_error, Result};
use crate::hooks::HookContext;
use crate::module::{named_modules_of, Module};

/// Which layer to adjust and which module's output to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LsuvTarget {
    /// Dotted path of the layer whose `weight` (and `bias`, if any) is adjusted.
    pub layer: String,
    /// Dotted path of the module whose output is measured (the activation after it).
    pub observe: String,
}

impl LsuvTarget {
    /// Pairs each module whose kind is in `layer_kinds` with the first later module
    /// (in tree order) whose kind is in `activation_kinds`, or with itself if another
    /// layer comes first or none follows.
    pub fn pairs(
        model: &dyn Module,
        layer_kinds: &[&str],
        activation_kinds: &[&str],
    ) -> Vec<LsuvTarget> {
        let modules = named_modules_of(model);
        let mut targets = Vec::new();
        for (i, m) in modules.iter().enumerate() {
            if !layer_kinds.contains(&m.module.kind()) {
                continue;
            }
            let mut observe = m.path.clone();
            for later in &modules[i + 1..] {
                if layer_kinds.contains(&later.module.kind()) {
                    break;
                }
                if activation_kinds.contains(&later.module.kind()) {
                    observe = later.path.clone();
                    break;
                }
            }
            targets.push(LsuvTarget {
                layer: m.path.clone(),
                observe,
            });
        }
        targets
    }
}

/// Tolerance and iteration cap.
#[derive(Clone, Copy, Debug)]
pub struct LsuvConfig {
    /// Stop when `|mean| <= tol` and `|std - 1| <= tol`.
    pub tol: f64,
    /// Give up on a layer after this many adjustments (and report it).
    pub max_iters: usize,
}

impl Default for LsuvConfig {
    fn default() -> Self {
        Self {
            tol: 1e-3,
            max_iters: 50,
        }
    }
}

/// What LSUV did to one layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LsuvLayerReport {
    /// The adjusted layer.
    pub layer: String,
    /// The measured module.
    pub observe: String,
    /// Mean and std of the measured output before any adjustment.
    pub initial: (f64, f64),
    /// Mean and std after the last adjustment.
    pub last: (f64, f64),
    /// Adjustments made.
    pub iterations: usize,
    /// Whether both tolerances were met.
    pub converged: bool,
}

fn find<'a>(model: &'a dyn Module, path: &str) -> Result<&'a dyn Module> {
    named_modules_of(model)
        .into_iter()
        .find(|m| m.path == path)
        .map(|m| m.module)
        .ok_or_else(|| config_error("lsuv", format!("no module at path `{path}`")))
}

/// Runs LSUV on `targets` in order with `batch` as input; returns one report per
/// target (check `converged`: with ReLU-like units a mean of 0 and a std of 1 cannot
/// always both be reached, which the report then shows instead of hiding).
pub fn lsuv(
    model: &dyn Module,
    batch: &Var,
    targets: &[LsuvTarget],
    config: LsuvConfig,
) -> Result<Vec<LsuvLayerReport>> {
    if config.tol.is_nan() || config.tol <= 0.0 || config.max_iters == 0 {
        return Err(config_error(
            "lsuv",
            format!(
                "tol must be > 0 and max_iters > 0, got tol = {}, max_iters = {}",
                config.tol, config.max_iters
            ),
        ));
    }
    let _guard = no_grad();
    let mut reports = Vec::with_capacity(targets.len());
    for target in targets {
        let layer = find(model, &target.layer)?;
        let params = layer.own_parameters();
        let weight: Tensor = params
            .iter()
            .find(|(n, _)| *n == "weight")
            .map(|(_, v)| v.tensor().clone())
            .ok_or_else(|| {
                config_error(
                    "lsuv",
                    format!("module `{}` ({}) has no weight", target.layer, layer.kind()),
                )
            })?;
        let bias: Option<Tensor> = params
            .iter()
            .find(|(n, _)| *n == "bias")
            .map(|(_, v)| v.tensor().clone());
        let observed = find(model, &target.observe)?;
        let stats: Arc<Mutex<Option<(f64, f64)>>> = Arc::default();
        let sink = stats.clone();
        let handle = observed.hooks().register_forward(
            &target.observe,
            move |_: &HookContext<'_>, _: &Tensor, out: &Tensor| {
                let moments = out.mean_all().and_then(|m| m.item()).and_then(|m| {
                    Ok((
                        m,
                        out.var(&(0..out.rank()).collect::<Vec<_>>(), false, false)?
                            .item()?
                            .sqrt(),
                    ))
                });
                *sink.lock().unwrap_or_else(|p| p.into_inner()) = moments.ok();
            },
        );
        let measure = || -> Result<(f64, f64)> {
            model.forward(batch)?;
            let value = *stats.lock().unwrap_or_else(|p| p.into_inner());
            value.ok_or_else(|| {
                config_error(
                    "lsuv",
                    format!(
                        "module `{}` did not run during the forward pass",
                        target.observe
                    ),
                )
            })
        };
        let initial = measure()?;
        let (mut last, mut iterations) = (initial, 0);
        while iterations < config.max_iters
            && (last.0.abs() > config.tol || (last.1 - 1.0).abs() > config.tol)
        {
            if last.1.is_nan() || last.1 <= 0.0 || !last.1.is_finite() || !last.0.is_finite() {
                return Err(config_error(
                    "lsuv",
                    format!(
                        "output of `{}` has mean {} and std {}: cannot rescale",
                        target.observe, last.0, last.1
                    ),
                ));
            }
            if let Some(b) = &bias {
                b.assign(&b.add_scalar(-last.0)?)?;
            }
            weight.mul_scalar_(1.0 / last.1)?;
            iterations += 1;
            last = measure()?;
        }
        drop(handle);
        let converged = last.0.abs() <= config.tol && (last.1 - 1.0).abs() <= config.tol;
        reports.push(LsuvLayerReport {
            layer: target.layer.clone(),
            observe: target.observe.clone(),
            initial,
            last,
            iterations,
            converged,
        });
    }
    Ok(reports)
}
