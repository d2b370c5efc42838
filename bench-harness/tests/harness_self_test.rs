//! Tests of the harness itself: a gradient check that never fails is worse than none.
//!
//! Hand-written backward rules, plugged into autograd as custom ops, are deliberately
//! broken (a flipped sign; a factor on one element of one input; a NaN; an infinity; a
//! missing gradient; a gradient in the wrong precision) and each must be caught, with
//! the reported worst element (input, multi-index, analytic and numeric values) being
//! exactly the one the fault predicts. The projection weights are public, so the
//! expected numeric gradient of `sum(w * x^2)` is known in closed form: `2 x_j w_j`.
//! The correct rules must pass. The strategies are checked to produce what they
//! promise (broadcastable pairs, margins, distinct values, the requested layouts).

use std::sync::Arc;

use autograd::op::CustomBackward;
use autograd::Var;
use bench_harness::gradcheck::{projection_weights, F32_AGREEMENT_SEED};
use bench_harness::strategies::{
    arrange, arrangement, away_from, broadcast_pair, cases, dim_set, lattice_values, shape,
    storage_len, tensor_of, values, Arrangement,
};
use bench_harness::{check_f32_agrees, gradcheck, GradcheckConfig, GradcheckError, Mismatch};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

/// How a test rule deviates from the true gradient.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The correct rule.
    None,
    /// The gradient's sign is flipped everywhere.
    FlipSign,
    /// The gradient at one (row-major) element is multiplied by a factor.
    Scale { flat: usize, factor: f64 },
    /// The gradient at one element is replaced by a value (NaN, infinity).
    Replace { flat: usize, value: f64 },
    /// No gradient is returned.
    Missing,
    /// The gradient is returned in f64 whatever the input's dtype.
    AlwaysF64,
    /// The gradient is off by a relative 1e-3 when computed in f32 only.
    SloppyF32,
}

impl Fault {
    fn apply(self, g: Tensor) -> autograd::Result<Option<Tensor>> {
        let edit = |flat: usize, op: &dyn Fn(f64) -> f64| -> autograd::Result<Tensor> {
            let mut v = g.to_vec_f64()?;
            v[flat] = op(v[flat]);
            Ok(Tensor::from_vec(v, g.shape().clone(), &Device::Cpu)?.to_dtype(g.dtype())?)
        };
        Ok(match self {
            Fault::None => Some(g),
            Fault::FlipSign => Some(g.neg()?),
            Fault::Scale { flat, factor } => Some(edit(flat, &|x| x * factor)?),
            Fault::Replace { flat, value } => Some(edit(flat, &|_| value)?),
            Fault::Missing => None,
            Fault::AlwaysF64 => Some(g.to_dtype(DType::F64)?),
            Fault::SloppyF32 if g.dtype() == DType::F32 => Some(g.mul_scalar(1.0 + 1e-3)?),
            Fault::SloppyF32 => Some(g),
        })
    }
}

/// `y = x^2` elementwise, backward `2 x g` (with a fault).
struct Square(Fault);

impl CustomBackward for Square {
    fn name(&self) -> &'static str {
        "test_square"
    }

    fn backward(
        &self,
        inputs: &[Var],
        _output: &Tensor,
        grad: &Tensor,
    ) -> autograd::Result<Vec<Option<Tensor>>> {
        let g = grad.mul(inputs[0].tensor())?.mul_scalar(2.0)?;
        Ok(vec![self.0.apply(g)?])
    }
}

/// `y = a * b` (same shapes), backward `(b g, a g)`, with a fault in `b`'s gradient.
struct Product(Fault);

impl CustomBackward for Product {
    fn name(&self) -> &'static str {
        "test_product"
    }

    fn backward(
        &self,
        inputs: &[Var],
        _output: &Tensor,
        grad: &Tensor,
    ) -> autograd::Result<Vec<Option<Tensor>>> {
        let (a, b) = (inputs[0].tensor(), inputs[1].tensor());
        Ok(vec![Some(grad.mul(b)?), self.0.apply(grad.mul(a)?)?])
    }
}

fn square(fault: Fault) -> impl Fn(&[Var]) -> autograd::Result<Var> {
    let rule: Arc<dyn CustomBackward> = Arc::new(Square(fault));
    move |v: &[Var]| {
        let out = v[0].tensor().square()?;
        Ok(Var::from_custom(out, vec![v[0].clone()], rule.clone()))
    }
}

fn product(fault: Fault) -> impl Fn(&[Var]) -> autograd::Result<Var> {
    let rule: Arc<dyn CustomBackward> = Arc::new(Product(fault));
    move |v: &[Var]| {
        let out = v[0].tensor().mul(v[1].tensor())?;
        Ok(Var::from_custom(
            out,
            vec![v[0].clone(), v[1].clone()],
            rule.clone(),
        ))
    }
}

/// Splits a failed check into its parts, failing the test on any other outcome.
fn mismatch(result: Result<usize, GradcheckError>) -> (Mismatch, usize, usize) {
    match result {
        Err(GradcheckError::Mismatch {
            worst,
            failures,
            checked,
        }) => (worst, failures, checked),
        other => panic!("expected a gradient mismatch, got {other:?}"),
    }
}

fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut index = vec![0; dims.len()];
    for (slot, &d) in index.iter_mut().zip(dims).rev() {
        *slot = flat % d;
        flat /= d;
    }
    index
}

/// Inputs for the faulty rules: any shape (rank 0-4) and layout, magnitudes in
/// [0.1, 2] so that every element's gradient `2 x w` is clearly above the tolerance.
fn input() -> impl Strategy<Value = Tensor> {
    shape(0, 4, 4).prop_flat_map(|d| tensor_of(d, 2.0, 0.1))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * (1.0 + b.abs())
}

proptest! {
    #![proptest_config(cases(32))]

    /// The correct rule passes and every element is compared.
    #[test]
    fn correct_rule_passes(x in input()) {
        let n = x.elem_count();
        prop_assert_eq!(gradcheck(square(Fault::None), &[x], GradcheckConfig::default()).unwrap(), n);
    }

    /// A flipped sign fails every element; the worst is the one with the largest
    /// `|x_j| w_j` (its excess is `4 |x_j| w_j` minus the tolerance).
    #[test]
    fn flipped_sign_is_caught(x in input()) {
        let n = x.elem_count();
        let xs = x.to_vec_f64().unwrap();
        let w = projection_weights(n, GradcheckConfig::default().seed);
        let (worst, failures, checked) = mismatch(gradcheck(square(Fault::FlipSign), std::slice::from_ref(&x), GradcheckConfig::default()));
        prop_assert_eq!((failures, checked), (n, n));
        let excess = |j: usize| {
            let (a, num) = (-2.0 * xs[j] * w[j], 2.0 * xs[j] * w[j]);
            (a - num).abs() - (1e-5 + 1e-3 * num.abs())
        };
        let expected = (0..n).max_by(|&i, &j| excess(i).total_cmp(&excess(j))).unwrap();
        prop_assert_eq!(worst.input, 0);
        prop_assert_eq!(&worst.index, &unravel(expected, x.dims()));
        prop_assert!(close(worst.numeric, 2.0 * xs[expected] * w[expected]), "{worst}");
        prop_assert!(close(worst.analytic, -2.0 * xs[expected] * w[expected]), "{worst}");
    }

    /// A factor of 1.5 on one element of the second input: exactly that element fails,
    /// and it is reported with its input and multi-index.
    #[test]
    fn one_wrong_element_is_found(
        (a, b, at) in shape(0, 4, 4).prop_flat_map(|d| {
            let n = d.iter().product::<usize>();
            (tensor_of(d.clone(), 2.0, 0.1), tensor_of(d, 2.0, 0.1), 0..n)
        })
    ) {
        let n = a.elem_count();
        let w = projection_weights(n, GradcheckConfig::default().seed);
        let av = a.to_vec_f64().unwrap();
        let fault = Fault::Scale { flat: at, factor: 1.5 };
        let (worst, failures, checked) = mismatch(gradcheck(product(fault), &[a, b.clone()], GradcheckConfig::default()));
        prop_assert_eq!((failures, checked), (1, 2 * n));
        prop_assert_eq!(worst.input, 1);
        prop_assert_eq!(&worst.index, &unravel(at, b.dims()));
        let numeric = av[at] * w[at];
        prop_assert!(close(worst.numeric, numeric), "{worst}");
        prop_assert!(close(worst.analytic, 1.5 * numeric), "{worst}");
        prop_assert!(close(worst.abs_err, 0.5 * numeric.abs()), "{worst}");
    }

    /// A NaN (or an infinity) in one element's gradient fails, and that element is the
    /// one reported, even though every other element is right.
    #[test]
    fn non_finite_gradient_fails(x in input(), at in any::<prop::sample::Index>(), nan in any::<bool>()) {
        let n = x.elem_count();
        let flat = at.index(n);
        let value = if nan { f64::NAN } else { f64::INFINITY };
        let (worst, failures, _) = mismatch(gradcheck(square(Fault::Replace { flat, value }), std::slice::from_ref(&x), GradcheckConfig::default()));
        prop_assert_eq!(failures, 1);
        prop_assert_eq!(&worst.index, &unravel(flat, x.dims()));
        prop_assert!(!worst.analytic.is_finite());
    }
}

/// The failure message names the worst element.
#[test]
fn message_names_the_worst_element() {
    let a = Tensor::from_vec(
        vec![1.0f64, -2.0, 0.5, 1.5, 0.7, -1.1],
        [2, 3],
        &Device::Cpu,
    )
    .unwrap();
    let b = a.affine(0.5, 0.25).unwrap();
    let fault = Fault::Scale {
        flat: 4,
        factor: -1.0,
    };
    let err = gradcheck(product(fault), &[a, b], GradcheckConfig::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("gradcheck failed (1 of 12 elements out of tolerance); worst: input 1 at index [1, 1]: analytic "),
        "{text}"
    );
}

#[test]
fn missing_gradient_is_reported() {
    let x = Tensor::from_vec(vec![1.0f64, 2.0], [2], &Device::Cpu).unwrap();
    let err = gradcheck(square(Fault::Missing), &[x], GradcheckConfig::default()).unwrap_err();
    assert!(
        matches!(err, GradcheckError::MissingGradient { input: 0 }),
        "{err:?}"
    );
}

#[test]
fn f32_inputs_are_refused() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [2], &Device::Cpu).unwrap();
    let err = gradcheck(square(Fault::None), &[x], GradcheckConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            GradcheckError::NotF64 {
                input: 0,
                dtype: DType::F32
            }
        ),
        "{err:?}"
    );
}

/// A tolerance is a tolerance: an error of 5e-4 relative passes at rtol 1e-3 and
/// fails at rtol 1e-4 (so the defaults are not vacuous).
#[test]
fn tolerance_is_applied() {
    let x = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], [3], &Device::Cpu).unwrap();
    let f = square(Fault::Scale {
        flat: 2,
        factor: 1.0 + 5e-4,
    });
    gradcheck(&f, std::slice::from_ref(&x), GradcheckConfig::default()).unwrap();
    let strict = GradcheckConfig {
        rtol: 1e-4,
        ..GradcheckConfig::default()
    };
    let (worst, failures, _) = mismatch(gradcheck(&f, &[x], strict));
    assert_eq!((failures, worst.index), (1, vec![2]));
}

/// `check_f32_agrees` passes a correct rule, catches an f32-only error of 1e-3
/// relative at a 1e-4 tolerance (reporting the largest one), and catches a gradient
/// returned in f64 for an f32 input.
#[test]
fn f32_agreement_catches_precision_faults() {
    let x = Tensor::from_vec(vec![0.5f64, -1.25, 2.0, 0.75], [2, 2], &Device::Cpu).unwrap();
    check_f32_agrees(square(Fault::None), std::slice::from_ref(&x), 1e-5).unwrap();
    match check_f32_agrees(square(Fault::SloppyF32), std::slice::from_ref(&x), 1e-4) {
        Err(GradcheckError::Mismatch {
            worst, failures, ..
        }) => {
            // Errors relative to the largest gradient 2|x|w: the largest |x| w wins.
            let w = projection_weights(4, F32_AGREEMENT_SEED);
            let xs = x.to_vec_f64().unwrap();
            let big = (0..4)
                .max_by(|&i, &j| (xs[i].abs() * w[i]).total_cmp(&(xs[j].abs() * w[j])))
                .unwrap();
            assert_eq!((worst.input, worst.index), (0, unravel(big, &[2, 2])));
            assert!(failures >= 1);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    let err = check_f32_agrees(square(Fault::AlwaysF64), &[x], 1e-4).unwrap_err();
    assert!(
        matches!(
            err,
            GradcheckError::WrongDType {
                input: Some(0),
                expected: DType::F32,
                got: DType::F64
            }
        ),
        "{err:?}"
    );
}

proptest! {
    #![proptest_config(cases(48))]

    /// Broadcast pairs broadcast, to the larger rank.
    #[test]
    fn broadcast_pairs_broadcast((a, b) in broadcast_pair(4, 4)) {
        let ta = Tensor::zeros(a.clone(), DType::F64, &Device::Cpu).unwrap();
        let tb = Tensor::zeros(b.clone(), DType::F64, &Device::Cpu).unwrap();
        let out = ta.add(&tb).unwrap();
        prop_assert_eq!(out.rank(), a.len().max(b.len()));
    }

    /// Values respect their margin and range; `away_from` keeps the margin from a kink.
    #[test]
    fn values_keep_their_margins(v in values(64, 2.0, 0.1), kink in -1.0f64..1.0) {
        prop_assert!(v.iter().all(|x| (0.1..=2.0).contains(&x.abs())));
        let moved = away_from(v, &[kink], 0.05);
        prop_assert!(moved.iter().all(|x| (x - kink).abs() >= 0.05 - 1e-12));
    }

    /// Lattice values are pairwise at least 3/4 step apart, and two lattices with
    /// phases half a step apart at least 1/4 step apart.
    #[test]
    fn lattices_are_separated(
        (a, b) in (1usize..40).prop_flat_map(|n| (lattice_values(n, 0.2, 0.0), lattice_values(n, 0.2, 0.1)))
    ) {
        for (i, x) in a.iter().enumerate() {
            for y in &a[i + 1..] {
                prop_assert!((x - y).abs() >= 0.15 - 1e-12);
            }
            for y in &b {
                prop_assert!((x - y).abs() >= 0.05 - 1e-12);
            }
        }
    }

    /// `arrange` gives the asked shape and the asked kind of layout, with its logical
    /// elements taken from the pool.
    #[test]
    fn arrangements_are_what_they_say((dims, arr) in (shape(0, 4, 4), arrangement())) {
        let pool: Vec<f64> = (0..storage_len(&dims)).map(|i| i as f64).collect();
        let t = arrange(&dims, arr, &pool).unwrap();
        prop_assert_eq!(t.dims(), dims.as_slice());
        let got = t.to_vec_f64().unwrap();
        prop_assert!(got.iter().all(|v| pool.contains(v)));
        let rank = dims.len();
        let n: usize = dims.iter().product();
        match arr {
            Arrangement::Contiguous => {
                prop_assert!(t.is_contiguous());
                prop_assert_eq!(got, pool[..n].to_vec());
            }
            Arrangement::Permuted if dims.iter().filter(|&&d| d > 1).count() >= 2 => {
                prop_assert!(!t.is_contiguous());
            }
            Arrangement::Narrowed if rank >= 2 && dims[..rank - 1].iter().any(|&d| d > 1) => {
                prop_assert!(!t.is_contiguous());
            }
            Arrangement::Expanded if dims.iter().any(|&d| d > 1) => {
                prop_assert!(t.strides().contains(&0));
            }
            _ => {}
        }
    }

    /// Dim sets are non-empty, distinct and in range.
    #[test]
    fn dim_sets_are_sets(ds in (1usize..=4).prop_flat_map(|r| (Just(r), dim_set(r)))) {
        let (rank, dims) = ds;
        prop_assert!(!dims.is_empty() && dims.len() <= rank);
        let mut sorted = dims.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), dims.len());
        prop_assert!(dims.iter().all(|&d| d < rank));
    }
}
