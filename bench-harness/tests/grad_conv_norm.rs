//! Gradient checks of the kernel-backed ops of `autograd::Var`: `conv2d` and
//! `conv2d_relu` (input, weight and bias; random stride, padding, dilation and groups)
//! and the fused
//! normalisations `batch_norm_train`, `batch_norm_eval` and `group_norm` (input,
//! gamma and beta, each affine parameter present or not).
//!
//! Why: these backward rules are not compositions of other ops but separate kernels
//! (im2col + gemm transposes, fused norm backward), so nothing else in the suite
//! exercises them; the geometry parameters each change the index arithmetic. Inputs
//! come in random layouts (the ops copy them to dense slices first, which is what is
//! checked). Normalised inputs use no expanded layout: a channel whose values all
//! repeat has zero variance, where the output is a near-singular function of `eps`.

use autograd::Var;
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{
    arrangement_without_repeats, cases, dim, positive_tensor, tensor_of, tensor_with,
    uniform_values,
};
use kernels::cpu::conv2d::Conv2dParams;
use proptest::prelude::*;
use tensor::Tensor;

const CASES: u32 = 32;

/// A conv2d problem: input `[N, C_in, H, W]`, weight `[C_out, C_in / groups, kH,
/// kW]`, optional bias `[C_out]`, and parameters under which the output is non-empty.
fn conv_case() -> impl Strategy<Value = (Vec<Tensor>, Conv2dParams)> {
    (
        (1usize..=2, 1usize..=2, 1usize..=2, 1usize..=2),
        (1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2),
        (1usize..=2, 1usize..=2, 0usize..=1, 0usize..=1),
        (0usize..=3, 0usize..=3, any::<bool>()),
    )
        .prop_flat_map(
            |((n, groups, cpg, opg), (kh, kw, dh, dw), (sh, sw, ph, pw), (eh, ew, bias))| {
                let (cin, cout) = (groups * cpg, groups * opg);
                // The smallest input that gives one output position, plus 0-3.
                let h = (dh * (kh - 1) + 1).saturating_sub(2 * ph).max(1) + eh;
                let w = (dw * (kw - 1) + 1).saturating_sub(2 * pw).max(1) + ew;
                let params = Conv2dParams {
                    stride: (sh, sw),
                    padding: (ph, pw),
                    dilation: (dh, dw),
                    groups,
                };
                let mut parts = vec![
                    tensor_of(vec![n, cin, h, w], 1.5, 0.0).boxed(),
                    tensor_of(vec![cout, cpg, kh, kw], 1.0, 0.0).boxed(),
                ];
                if bias {
                    parts.push(tensor_of(vec![cout], 1.0, 0.0).boxed());
                }
                (parts, Just(params))
            },
        )
}

/// An `[N, C, ...]` input (rank 2-4, no repeated values), `C`, and optional gamma and
/// beta `[C]`.
fn norm_case(
    n_min: usize,
    c: impl Strategy<Value = usize>,
) -> impl Strategy<Value = (Tensor, Option<Tensor>, Option<Tensor>)> {
    (n_min..=3, c, proptest::collection::vec(dim(3), 0..=2)).prop_flat_map(|(n, c, spatial)| {
        let mut dims = vec![n, c];
        dims.extend(spatial);
        (
            tensor_with(
                dims,
                |k| uniform_values(k, -2.0, 2.0),
                arrangement_without_repeats(),
            ),
            proptest::option::of(tensor_of(vec![c], 1.5, 0.2)),
            proptest::option::of(tensor_of(vec![c], 1.0, 0.0)),
        )
    })
}

/// Inputs and the positions of the optional affine parameters among them.
fn with_affine(
    x: Tensor,
    gamma: Option<Tensor>,
    beta: Option<Tensor>,
) -> (Vec<Tensor>, Option<usize>, Option<usize>) {
    let mut inputs = vec![x];
    let g = gamma.map(|t| {
        inputs.push(t);
        inputs.len() - 1
    });
    let b = beta.map(|t| {
        inputs.push(t);
        inputs.len() - 1
    });
    (inputs, g, b)
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn conv2d((inputs, params) in conv_case()) {
        prop_gradcheck(|v| v[0].conv2d(&v[1], v.get(2), params), &inputs)?;
    }

    /// The fused `relu(conv2d(..))`: its backward masks the output gradient with the
    /// saved output before the convolution's backward.
    #[test]
    fn conv2d_relu((inputs, params) in conv_case()) {
        prop_gradcheck(|v| v[0].conv2d_relu(&v[1], v.get(2), params), &inputs)?;
    }

    /// Batch statistics over N and the spatial positions (at least two values per
    /// channel: the batch has 2-3 samples).
    #[test]
    fn batch_norm_train((x, gamma, beta) in norm_case(2, dim(3))) {
        let (inputs, g, b) = with_affine(x, gamma, beta);
        prop_gradcheck(
            |v| Ok(v[0].batch_norm_train(g.map(|i| &v[i]), b.map(|i| &v[i]), 1e-5)?.0),
            &inputs,
        )?;
    }

    /// Fixed running statistics: an affine map per channel.
    #[test]
    fn batch_norm_eval(
        ((x, gamma, beta), stats) in norm_case(1, dim(3)).prop_flat_map(|case| {
            let c = case.0.dims()[1];
            (Just(case), (tensor_of(vec![c], 1.0, 0.0), positive_tensor(vec![c], 0.1, 2.0)))
        })
    ) {
        let (mean, var) = (stats.0.contiguous().unwrap(), stats.1.contiguous().unwrap());
        let (inputs, g, b) = with_affine(x, gamma, beta);
        prop_gradcheck(
            |v| v[0].batch_norm_eval(&mean, &var, g.map(|i| &v[i]), b.map(|i| &v[i]), 1e-5),
            &inputs,
        )?;
    }

    /// Groups of 1-2 channels (groups = 1 is LayerNorm, groups = C InstanceNorm); a
    /// group holds at least two values.
    #[test]
    fn group_norm(
        ((x, gamma, beta), groups) in (1usize..=3, 1usize..=2).prop_flat_map(|(groups, per)| {
            (norm_case(1, Just(groups * per)), Just(groups))
        }).prop_filter("two values per group", |((x, _, _), groups)| {
            x.elem_count() / (x.dims()[0] * groups) >= 2
        })
    ) {
        let (inputs, g, b) = with_affine(x, gamma, beta);
        prop_gradcheck(
            |v| v[0].group_norm(groups, g.map(|i| &v[i]), b.map(|i| &v[i]), 1e-5),
            &inputs,
        )?;
    }

    /// A conv block as a network uses it: conv2d -> batch norm -> tanh -> global mean
    /// over the spatial dims, with input, weight and bias checked.
    #[test]
    fn conv_block((inputs, params) in conv_case().prop_filter("bias", |(i, _)| i.len() == 3)) {
        prop_gradcheck(
            |v: &[Var]| {
                let y = v[0].conv2d(&v[1], Some(&v[2]), params)?;
                let (y, _) = y.batch_norm_train(None, None, 1e-5)?;
                y.tanh()?.mean(&[2, 3], false)
            },
            &inputs,
        )?;
    }
}
