//! Numeric gradient checking by central differences in f64.
//!
//! For a function `f` of several tensors, [`gradcheck`] reduces `f`'s output to a
//! scalar with fixed pseudo-random weights (so every output element's gradient is
//! exercised, not just their sum), back-propagates, and compares each input element's
//! analytic gradient with `(L(x + eps) - L(x - eps)) / (2 eps)`. Inputs are passed to
//! `f` as given — permuted, narrowed or expanded views stay non-contiguous on the
//! analytic path — while perturbations are applied to dense copies.

use autograd::{no_grad, Var};
use tensor::{DType, Device, Tensor};
use thiserror::Error;

/// Tolerances of the check: an element passes when
/// `|analytic - numeric| <= atol + rtol * |numeric|` (PyTorch's defaults).
#[derive(Clone, Copy, Debug)]
pub struct GradcheckConfig {
    /// Finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Seed of the output projection weights.
    pub seed: u64,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        Self {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0x5eed,
        }
    }
}

/// The worst disagreement found by a failing check.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Which input (position in the slice passed to `gradcheck`).
    pub input: usize,
    /// Multi-index of the element within that input.
    pub index: Vec<usize>,
    /// Gradient computed by autograd.
    pub analytic: f64,
    /// Gradient estimated by central differences.
    pub numeric: f64,
    /// `|analytic - numeric|`.
    pub abs_err: f64,
    /// `abs_err / max(|numeric|, tiny)`.
    pub rel_err: f64,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "input {} at index {:?}: analytic {:.6e}, numeric {:.6e}, abs err {:.3e}, rel err {:.3e}",
            self.input, self.index, self.analytic, self.numeric, self.abs_err, self.rel_err
        )
    }
}

/// Why a gradient check did not pass.
#[derive(Debug, Error)]
pub enum GradcheckError {
    /// Some element's gradient is off; the worst one is reported.
    #[error(
        "gradcheck failed ({failures} of {checked} elements out of tolerance); worst: {worst}"
    )]
    Mismatch {
        /// The worst element (largest excess over the tolerance).
        worst: Mismatch,
        /// Elements out of tolerance.
        failures: usize,
        /// Elements checked.
        checked: usize,
    },
    /// An input requires a gradient but backward produced none for it.
    #[error("gradcheck: input {input} received no gradient from backward")]
    MissingGradient {
        /// Which input.
        input: usize,
    },
    /// The inputs are not f64 (the check is only meaningful in double precision).
    #[error("gradcheck: input {input} has dtype {dtype}; gradient checks need f64 inputs")]
    NotF64 {
        /// Which input.
        input: usize,
        /// Its dtype.
        dtype: DType,
    },
    /// The function or backward failed.
    #[error(transparent)]
    Autograd(#[from] autograd::AutogradError),
    /// A tensor op of the harness itself failed.
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

/// Deterministic projection weights in [0.5, 1.5) (never zero, so no output element is
/// ignored), from a SplitMix64 sequence.
fn projection(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            0.5 + (z >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = flat % d;
        flat /= d;
    }
    index
}

/// Checks the gradients of `f` with respect to every input against central
/// differences. `f` receives the inputs as leaves that require gradients and must
/// return any-shaped output; inputs must be f64.
///
/// ```
/// use bench_harness::{gradcheck, GradcheckConfig};
/// use tensor::{Device, Tensor};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let x = Tensor::from_vec(vec![0.3f64, -1.2, 2.0], [3], &Device::Cpu)?;
/// gradcheck(|v| v[0].tanh()?.mul(&v[0]), &[x], GradcheckConfig::default())?;
/// # Ok(())
/// # }
/// ```
pub fn gradcheck<F>(
    f: F,
    inputs: &[Tensor],
    config: GradcheckConfig,
) -> Result<usize, GradcheckError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    for (i, t) in inputs.iter().enumerate() {
        if t.dtype() != DType::F64 {
            return Err(GradcheckError::NotF64 {
                input: i,
                dtype: t.dtype(),
            });
        }
    }
    // Analytic gradients, on the inputs exactly as given.
    let vars: Vec<Var> = inputs.iter().map(|t| Var::parameter(t.clone())).collect();
    let out = f(&vars)?;
    let weights = Tensor::from_vec(
        projection(out.tensor().elem_count(), config.seed),
        out.shape().clone(),
        &Device::Cpu,
    )?;
    let loss = out.mul(&Var::constant(weights.clone()))?.sum_all()?;
    loss.backward()?;
    let analytic: Vec<Vec<f64>> = vars
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.grad()
                .ok_or(GradcheckError::MissingGradient { input: i })?
                .to_vec_f64()
                .map_err(Into::into)
        })
        .collect::<Result<_, GradcheckError>>()?;
    drop((loss, out, vars));

    // Numeric gradients, perturbing dense copies one element at a time.
    let _guard = no_grad();
    let base: Vec<Vec<f64>> = inputs
        .iter()
        .map(|t| t.to_vec_f64())
        .collect::<Result<_, _>>()?;
    let evaluate = |values: &[Vec<f64>]| -> Result<f64, GradcheckError> {
        let vars: Vec<Var> = values
            .iter()
            .zip(inputs)
            .map(|(v, t)| {
                Ok(Var::constant(Tensor::from_vec(
                    v.clone(),
                    t.shape().clone(),
                    &Device::Cpu,
                )?))
            })
            .collect::<Result<_, GradcheckError>>()?;
        Ok(f(&vars)?.tensor().mul(&weights)?.sum_all()?.item()?)
    };
    let mut worst: Option<(f64, Mismatch)> = None;
    let (mut failures, mut checked) = (0, 0);
    let mut values = base.clone();
    for (i, input) in inputs.iter().enumerate() {
        for j in 0..values[i].len() {
            let x = base[i][j];
            values[i][j] = x + config.eps;
            let plus = evaluate(&values)?;
            values[i][j] = x - config.eps;
            let minus = evaluate(&values)?;
            values[i][j] = x;
            let numeric = (plus - minus) / (2.0 * config.eps);
            let a = analytic[i][j];
            let abs_err = (a - numeric).abs();
            let excess = abs_err - (config.atol + config.rtol * numeric.abs());
            checked += 1;
            // NaN on either side must fail, not slip through a comparison.
            let failed = excess > 0.0 || !a.is_finite() || !numeric.is_finite();
            if failed {
                failures += 1;
                let score = if excess.is_nan() {
                    f64::INFINITY
                } else {
                    excess
                };
                if worst.as_ref().is_none_or(|(s, _)| score > *s) {
                    let mismatch = Mismatch {
                        input: i,
                        index: unravel(j, input.dims()),
                        analytic: a,
                        numeric,
                        abs_err,
                        rel_err: abs_err / numeric.abs().max(f64::MIN_POSITIVE),
                    };
                    worst = Some((score, mismatch));
                }
            }
        }
    }
    match worst {
        Some((_, worst)) => Err(GradcheckError::Mismatch {
            worst,
            failures,
            checked,
        }),
        None => Ok(checked),
    }
}

/// Runs `f` on f32 copies of the (f64) inputs and on the inputs themselves and checks
/// that outputs and gradients agree within `tol` relative to each tensor's largest
/// magnitude (f32 keeps about 7 significant digits; 1e-4 suits most ops).
pub fn check_f32_agrees<F>(f: F, inputs: &[Tensor], tol: f64) -> Result<(), GradcheckError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    let run = |dtype: DType| -> Result<(Vec<f64>, Vec<Vec<f64>>), GradcheckError> {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Ok(Var::parameter(t.to_dtype(dtype)?)))
            .collect::<Result<_, GradcheckError>>()?;
        let out = f(&vars)?;
        let weights = Tensor::from_vec(
            projection(out.tensor().elem_count(), 7),
            out.shape().clone(),
            &Device::Cpu,
        )?
        .to_dtype(dtype)?;
        out.mul(&Var::constant(weights))?.sum_all()?.backward()?;
        let grads = vars
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.grad()
                    .ok_or(GradcheckError::MissingGradient { input: i })?
                    .to_vec_f64()
                    .map_err(Into::into)
            })
            .collect::<Result<_, GradcheckError>>()?;
        Ok((out.tensor().to_vec_f64()?, grads))
    };
    let (out64, grads64) = run(DType::F64)?;
    let (out32, grads32) = run(DType::F32)?;
    let mut pairs = vec![(usize::MAX, out64, out32)];
    pairs.extend(
        grads64
            .into_iter()
            .zip(grads32)
            .enumerate()
            .map(|(i, (a, b))| (i, a, b)),
    );
    for (input, want, got) in pairs {
        let scale = want.iter().fold(1e-30f64, |m, v| m.max(v.abs()));
        for (j, (w, g)) in want.iter().zip(&got).enumerate() {
            let abs_err = (w - g).abs();
            if abs_err > tol * scale || !g.is_finite() {
                return Err(GradcheckError::Mismatch {
                    worst: Mismatch {
                        input,
                        index: vec![j],
                        analytic: *g,
                        numeric: *w,
                        abs_err,
                        rel_err: abs_err / scale,
                    },
                    failures: 1,
                    checked: want.len(),
                });
            }
        }
    }
    Ok(())
}
