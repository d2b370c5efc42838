//! Numeric gradient checking by central differences in f64.
//!
//! For a function `f` of several tensors, [`gradcheck`] reduces `f`'s output to a
//! scalar `L = sum(w * out)` with fixed pseudo-random weights `w` (so every output
//! element's gradient is exercised, not just their sum), back-propagates by seeding
//! backward with `w` (so the check does not itself rely on autograd's `mul`/`sum`
//! rules), and compares each input element's analytic gradient with
//! `(L(x + eps) - L(x - eps)) / (2 eps)`, computed with plain tensor ops. Inputs are passed to
//! `f` as given — permuted, narrowed or expanded views stay non-contiguous on the
//! analytic path — while perturbations are applied to dense copies.

use autograd::{no_grad, Var};
use proptest::test_runner::TestCaseError;
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
    /// The f32 run of [`check_f32_agrees`] produced a tensor of another dtype (an op
    /// that silently changes precision). `input` is `None` for the output.
    #[error("check_f32_agrees: {} has dtype {got}, expected {expected}", match input { Some(i) => format!("the gradient of input {i}"), None => "the output".to_string() })]
    WrongDType {
        /// Which input's gradient (`None`: the output).
        input: Option<usize>,
        /// The dtype the run used.
        expected: DType,
        /// The dtype found.
        got: DType,
    },
    /// The function or backward failed.
    #[error(transparent)]
    Autograd(#[from] autograd::AutogradError),
    /// A tensor op of the harness itself failed.
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
}

/// The seed [`check_f32_agrees`] projects outputs with.
pub const F32_AGREEMENT_SEED: u64 = 7;

/// The smallest scale [`check_f32_agrees`] measures a tensor's errors against. For
/// inputs of order 1, a tensor whose values all cancel to well below 1 (the gradient
/// of a softmax at a saturated row, `x - mean` over equal values) carries f32 rounding
/// noise of order `1e-7` that is not small relative to its own size.
pub const F32_SCALE_FLOOR: f64 = 1e-2;

/// Deterministic projection weights in [0.5, 1.5) (never zero, so no output element is
/// ignored), from a SplitMix64 sequence: [`gradcheck`] reduces an output of `len`
/// elements (in row-major order) to `sum(out * projection_weights(len, config.seed))`.
/// Public so tests can predict the exact gradient a check must find.
pub fn projection_weights(len: usize, seed: u64) -> Vec<f64> {
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
        projection_weights(out.tensor().elem_count(), config.seed),
        out.shape().clone(),
        &Device::Cpu,
    )?;
    // d(sum(out * weights))/d(out) = weights: seeding backward with them keeps the
    // check independent of the rules of `mul` and `sum_all`.
    out.backward_with_grad(&weights)?;
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
    drop((out, vars));

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
/// magnitude, or to [`F32_SCALE_FLOOR`] where that is larger (f32 keeps about 7
/// significant digits; 1e-4 suits most ops on inputs of order 1), and that the
/// f32 run's output and gradients are f32. A reported [`Mismatch`] is the element
/// with the largest error relative to its tensor's scale; its `input` is `usize::MAX`
/// for the output, `analytic` is the f32 value and `numeric` the f64 one, and
/// `rel_err` is relative to the tensor's largest magnitude.
pub fn check_f32_agrees<F>(f: F, inputs: &[Tensor], tol: f64) -> Result<(), GradcheckError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    // (output values, gradient values per input, output dims)
    type Run = (Vec<f64>, Vec<Vec<f64>>, Vec<usize>);
    let run = |dtype: DType| -> Result<Run, GradcheckError> {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Ok(Var::parameter(t.to_dtype(dtype)?)))
            .collect::<Result<_, GradcheckError>>()?;
        let out = f(&vars)?;
        let wrong = |input: Option<usize>, got: DType| GradcheckError::WrongDType {
            input,
            expected: dtype,
            got,
        };
        if out.dtype() != dtype {
            return Err(wrong(None, out.dtype()));
        }
        let weights = Tensor::from_vec(
            projection_weights(out.tensor().elem_count(), F32_AGREEMENT_SEED),
            out.shape().clone(),
            &Device::Cpu,
        )?
        .to_dtype(dtype)?;
        out.backward_with_grad(&weights)?;
        let grads = vars
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let g = v
                    .grad()
                    .ok_or(GradcheckError::MissingGradient { input: i })?;
                if g.dtype() != dtype {
                    return Err(wrong(Some(i), g.dtype()));
                }
                g.to_vec_f64().map_err(Into::into)
            })
            .collect::<Result<_, GradcheckError>>()?;
        Ok((out.tensor().to_vec_f64()?, grads, out.dims().to_vec()))
    };
    let (out64, grads64, out_dims) = run(DType::F64)?;
    let (out32, grads32, _) = run(DType::F32)?;
    let mut pairs = vec![(usize::MAX, out_dims.as_slice(), out64, out32)];
    pairs.extend(
        grads64
            .into_iter()
            .zip(grads32)
            .zip(inputs)
            .enumerate()
            .map(|(i, ((a, b), t))| (i, t.dims(), a, b)),
    );
    let mut worst: Option<(f64, Mismatch)> = None;
    let (mut failures, mut checked) = (0, 0);
    for (input, dims, want, got) in pairs {
        let scale = want.iter().fold(F32_SCALE_FLOOR, |m, v| m.max(v.abs()));
        for (j, (w, g)) in want.iter().zip(&got).enumerate() {
            let abs_err = (w - g).abs();
            checked += 1;
            if abs_err > tol * scale || !g.is_finite() || !w.is_finite() {
                failures += 1;
                let score = if abs_err.is_nan() {
                    f64::INFINITY
                } else {
                    abs_err / scale
                };
                if worst.as_ref().is_none_or(|(s, _)| score > *s) {
                    let mismatch = Mismatch {
                        input,
                        index: unravel(j, dims),
                        analytic: *g,
                        numeric: *w,
                        abs_err,
                        rel_err: abs_err / scale,
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
        None => Ok(()),
    }
}

/// [`gradcheck`] for a proptest body: the error's message becomes the failure, and a
/// check that compared fewer elements than the inputs hold fails too (so a property
/// cannot pass by checking nothing).
///
/// ```
/// use bench_harness::gradcheck::prop_gradcheck;
/// use proptest::prelude::*;
/// use tensor::{Device, Tensor};
/// proptest!(|(v in proptest::collection::vec(-2.0f64..2.0, 1..6))| {
///     let n = v.len();
///     let x = Tensor::from_vec(v, [n], &Device::Cpu).unwrap();
///     prop_gradcheck(|v| v[0].tanh(), &[x])?;
/// });
/// ```
pub fn prop_gradcheck<F>(f: F, inputs: &[Tensor]) -> Result<(), TestCaseError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    prop_gradcheck_with(f, inputs, GradcheckConfig::default())
}

/// [`prop_gradcheck`] with explicit tolerances.
pub fn prop_gradcheck_with<F>(
    f: F,
    inputs: &[Tensor],
    config: GradcheckConfig,
) -> Result<(), TestCaseError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    let expected: usize = inputs.iter().map(Tensor::elem_count).sum();
    let shapes: Vec<_> = inputs.iter().map(|t| t.dims().to_vec()).collect();
    match gradcheck(f, inputs, config) {
        Ok(checked) if checked == expected => Ok(()),
        Ok(checked) => Err(TestCaseError::fail(format!(
            "gradcheck compared {checked} elements, the inputs {shapes:?} hold {expected}"
        ))),
        Err(e) => Err(TestCaseError::fail(format!("inputs {shapes:?}: {e}"))),
    }
}

/// [`check_f32_agrees`] for a proptest body.
pub fn prop_f32_agrees<F>(f: F, inputs: &[Tensor], tol: f64) -> Result<(), TestCaseError>
where
    F: Fn(&[Var]) -> autograd::Result<Var>,
{
    let shapes: Vec<_> = inputs.iter().map(|t| t.dims().to_vec()).collect();
    check_f32_agrees(f, inputs, tol)
        .map_err(|e| TestCaseError::fail(format!("inputs {shapes:?}: {e}")))
}
