//! Gradient checks of the losses of `autograd::Var`: `cross_entropy` and `nll_loss`
//! (class indices; mean, sum and per-example), `binary_cross_entropy_with_logits`
//! (gradients for both logits and targets, every reduction, any shape) and `mse`
//! (gradients for both predictions and targets).
//!
//! Why: the fused losses have hand-derived backward rules (softmax minus one-hot,
//! sigmoid minus target) with a reduction-dependent scale, which is exactly where a
//! missing `1/N` or a gradient for only one argument hides. Logits span [-5, 5]
//! including values near 0, where the stable BCE formula switches branches; targets
//! repeat classes and leave some unused; inputs come in random layouts.

use autograd::{Reduction, Var};
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{
    arrangement, cases, dim, positive_tensor, shape, tensor_of, tensor_with, uniform_values,
};
use proptest::prelude::*;
use tensor::{Device, Tensor};

const CASES: u32 = 48;

fn reduction() -> impl Strategy<Value = Reduction> {
    prop_oneof![
        Just(Reduction::Mean),
        Just(Reduction::Sum),
        Just(Reduction::None)
    ]
}

/// Logits `[N, C]` (N 1-5, C 1-6) and u32 class indices `[N]` (sometimes a strided
/// view).
fn classification(range: f64) -> impl Strategy<Value = (Tensor, Tensor)> {
    (dim(5), 1usize..=6).prop_flat_map(move |(n, c)| {
        (
            tensor_of(vec![n, c], range, 0.0),
            // Every other entry of a longer vector half the time: a strided view.
            (proptest::collection::vec(0..c as u32, 2 * n), any::<bool>()).prop_map(
                move |(t, strided)| {
                    let wide = Tensor::from_vec(t, [n, 2], &Device::Cpu).expect("2n targets");
                    let view = if strided {
                        wide.select(1, 1)
                    } else {
                        wide.reshape([2 * n]).and_then(|w| w.narrow(0, 0, n))
                    };
                    view.expect("in range")
                },
            ),
        )
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn cross_entropy((logits, targets) in classification(5.0), r in reduction()) {
        prop_gradcheck(|v| v[0].cross_entropy(&targets, r), &[logits])?;
    }

    /// Logits up to ±50: the fused loss must stay exact where softmax saturates.
    #[test]
    fn cross_entropy_large_logits((logits, targets) in classification(50.0), r in reduction()) {
        prop_gradcheck(|v| v[0].cross_entropy(&targets, r), &[logits])?;
    }

    /// On log-probabilities from `log_softmax` (the unfused cross-entropy), and on raw
    /// inputs (where it is linear).
    #[test]
    fn nll_loss((logits, targets) in classification(5.0), r in reduction()) {
        prop_gradcheck(|v| v[0].log_softmax(1)?.nll_loss(&targets, r), std::slice::from_ref(&logits))?;
        prop_gradcheck(|v| v[0].nll_loss(&targets, r), &[logits])?;
    }

    /// Gradients for logits and for targets in [0, 1], any shape of rank 0-4.
    #[test]
    fn bce_with_logits(
        (logits, targets) in shape(0, 4, 4).prop_flat_map(|d| {
            (tensor_of(d.clone(), 5.0, 0.0), tensor_with(d, |n| uniform_values(n, 0.0, 1.0), arrangement()))
        }),
        r in reduction(),
    ) {
        prop_gradcheck(|v| v[0].binary_cross_entropy_with_logits(&v[1], r), &[logits.clone(), targets.clone()])?;
        // Only the targets require a gradient.
        let constant_logits = Var::constant(logits);
        prop_gradcheck(|v| constant_logits.binary_cross_entropy_with_logits(&v[0], r), &[targets])?;
    }

    /// Targets as a constant (the usual case): only the logits get a gradient.
    #[test]
    fn bce_with_logits_constant_targets(
        (logits, targets) in shape(1, 3, 4).prop_flat_map(|d| (tensor_of(d.clone(), 5.0, 0.0), positive_tensor(d, 0.0, 1.0))),
        r in reduction(),
    ) {
        prop_gradcheck(
            |v| v[0].binary_cross_entropy_with_logits(&Var::constant(targets.clone()), r),
            &[logits],
        )?;
    }

    #[test]
    fn mse(
        (pred, target) in shape(0, 4, 4).prop_flat_map(|d| (tensor_of(d.clone(), 2.0, 0.0), tensor_of(d, 2.0, 0.0))),
        r in reduction(),
    ) {
        prop_gradcheck(|v| v[0].mse(&v[1], r), &[pred.clone(), target.clone()])?;
        prop_gradcheck(|v| v[0].mse(&Var::constant(target.clone()), r), std::slice::from_ref(&pred))?;
        // Only the target requires a gradient.
        prop_gradcheck(|v| Var::constant(pred.clone()).mse(&v[0], r), &[target])?;
    }
}
