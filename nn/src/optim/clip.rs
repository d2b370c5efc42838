//! Gradient clipping.

use autograd::Var;

use crate::error::{config_error, Result};

/// Scales all gradients together so their global L2 norm is at most `max_norm`;
/// returns the norm before clipping (worth logging: a spike means trouble).
/// Gradients are replaced, never modified in place.
pub fn clip_grad_norm(params: &[Var], max_norm: f64) -> Result<f64> {
    if max_norm.is_nan() || max_norm <= 0.0 || !max_norm.is_finite() {
        return Err(config_error(
            "clip_grad_norm",
            format!("max_norm must be finite and > 0, got {max_norm}"),
        ));
    }
    let mut total = 0.0;
    for p in params {
        if let Some(g) = p.grad() {
            total += g
                .to_dtype(tensor::DType::F64)?
                .square()?
                .sum_all()?
                .item()?;
        }
    }
    let norm = total.sqrt();
    if norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for p in params {
            if let Some(g) = p.grad() {
                p.set_grad(Some(g.mul_scalar(scale)?));
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient element into `[-clip, clip]`.
pub fn clip_grad_value(params: &[Var], clip: f64) -> Result<()> {
    if clip.is_nan() || clip <= 0.0 || !clip.is_finite() {
        return Err(config_error(
            "clip_grad_value",
            format!("clip must be finite and > 0, got {clip}"),
        ));
    }
    for p in params {
        if let Some(g) = p.grad() {
            p.set_grad(Some(g.clamp(-clip, clip)?));
        }
    }
    Ok(())
}
