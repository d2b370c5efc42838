//! f32 against f64: for a representative set of ops and composites, the output and
//! every input gradient computed in f32 must agree with the f64 ones to `TOL` relative
//! to each tensor's largest magnitude, and stay f32 throughout (no silent upcast).
//!
//! Why: gradcheck runs in f64 only, but training runs in f32, whose kernels (SIMD maps,
//! packed gemm, fused softmax and losses) are separate code paths. A kernel that is
//! right in f64 and wrong in f32, or an f32 reduction that loses precision (a naive
//! `E[x²] - E[x]²` variance, an unshifted softmax), shows up here.
//!
//! Tolerance: f32 keeps 24 bits (about 6e-8 relative per rounding); these graphs
//! chain at most a few dozen roundings per element on values of order 1, so 1e-4
//! leaves a margin of ~100x, yet is 10x tighter than an f32 bug that loses 10 bits.

use autograd::{Reduction, Var};
use bench_harness::prop_f32_agrees;
use bench_harness::strategies::{
    broadcast_pair, cases, dim, dim_set, positive_tensor, shape, tensor_of,
};
use kernels::cpu::conv2d::Conv2dParams;
use proptest::prelude::*;
use tensor::{Device, Tensor};

/// The stated tolerance, relative to each tensor's largest magnitude.
const TOL: f64 = 1e-4;

fn labels(n: usize, c: usize) -> impl Strategy<Value = Tensor> {
    proptest::collection::vec(0..c as u32, n)
        .prop_map(move |t| Tensor::from_vec(t, [n], &Device::Cpu).expect("n labels"))
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn broadcasting_arithmetic(
        (a, b) in broadcast_pair(4, 4).prop_flat_map(|(a, b)| (tensor_of(a, 2.0, 0.0), tensor_of(b, 2.0, 0.5)))
    ) {
        prop_f32_agrees(|v| v[0].mul(&v[1])?.add(&v[0])?.div(&v[1])?.sub(&v[1]), &[a, b], TOL)?;
    }

    #[test]
    fn unary_maps(x in shape(0, 4, 4).prop_flat_map(|d| positive_tensor(d, 0.2, 3.0))) {
        prop_f32_agrees(
            |v| {
                let x = &v[0];
                x.exp()?.add(&x.log()?)?.add(&x.tanh()?)?.add(&x.sigmoid()?)?.add(&x.sqrt()?)?.add(&x.recip()?)
            },
            &[x],
            TOL,
        )?;
    }

    /// The activations with fused f32 backward kernels, on signed inputs kept 0.05 away
    /// from their kinks.
    #[test]
    fn activations(x in shape(0, 4, 5).prop_flat_map(|d| tensor_of(d, 3.0, 0.05))) {
        prop_f32_agrees(
            |v| {
                let x = &v[0];
                x.relu()?.add(&x.leaky_relu(0.1)?)?.add(&x.tanh()?)?.add(&x.sigmoid()?)?.add(&x.abs()?)
            },
            &[x],
            TOL,
        )?;
    }

    /// conv2d (padding 1, stride 1 or 2; no bias, which batch norm would cancel to an
    /// exactly-zero gradient) followed by batch and group normalisation.
    #[test]
    fn conv_and_norms(
        (x, w) in (1usize..=2, 1usize..=3, 1usize..=2, 3usize..=6).prop_flat_map(|(n, cin, half, hw)| {
            (tensor_of(vec![n, cin, hw, hw], 1.5, 0.0), tensor_of(vec![2 * half, cin, 3, 3], 0.5, 0.0))
        }),
        stride in 1usize..=2,
    ) {
        let params = Conv2dParams { stride: (stride, stride), padding: (1, 1), ..Conv2dParams::default() };
        prop_f32_agrees(
            |v| {
                let y = v[0].conv2d(&v[1], None, params)?;
                let (z, _) = y.batch_norm_train(None, None, 1e-5)?;
                z.tanh()?.group_norm(2, None, None, 1e-5)
            },
            &[x, w],
            TOL,
        )?;
    }

    #[test]
    fn reductions(
        (x, dims) in shape(1, 4, 4).prop_flat_map(|d| {
            let rank = d.len();
            (tensor_of(d, 2.0, 0.0), dim_set(rank))
        }),
        keepdim in any::<bool>(),
    ) {
        prop_f32_agrees(|v| v[0].sum(&dims, keepdim), std::slice::from_ref(&x), TOL)?;
        prop_f32_agrees(|v| v[0].mean(&dims, keepdim), std::slice::from_ref(&x), TOL)?;
        prop_f32_agrees(|v| v[0].var(&dims, false, keepdim), &[x], TOL)?;
    }

    /// Variance of values with a large common offset: a naive f32 `E[x²] - E[x]²`
    /// loses every digit here, the two-pass / f64-accumulated one does not.
    #[test]
    fn variance_with_offset((x, d) in shape(1, 3, 5).prop_flat_map(|dims| {
        let rank = dims.len();
        (tensor_of(dims, 1.0, 0.0), 0..rank)
    })) {
        let shifted = x.add_scalar(100.0).unwrap();
        prop_f32_agrees(|v| v[0].var(&[d], false, false), &[shifted], 1e-3)?;
    }

    #[test]
    fn softmax_family((x, d) in shape(1, 4, 5).prop_flat_map(|dims| {
        let rank = dims.len();
        (tensor_of(dims, 8.0, 0.0), 0..rank)
    })) {
        prop_f32_agrees(|v| v[0].softmax(d), std::slice::from_ref(&x), TOL)?;
        prop_f32_agrees(|v| v[0].log_softmax(d), &[x], TOL)?;
    }

    #[test]
    fn batched_matmul(
        (a, b) in (dim(3), dim(8), dim(8), dim(8)).prop_flat_map(|(bs, m, k, n)| {
            (tensor_of(vec![bs, m, k], 1.5, 0.0), tensor_of(vec![k, n], 1.5, 0.0))
        })
    ) {
        prop_f32_agrees(|v| v[0].matmul(&v[1]), &[a, b], TOL)?;
    }

    #[test]
    fn losses(
        (logits, targets, probs) in (dim(6), 2usize..=6).prop_flat_map(|(n, c)| {
            (tensor_of(vec![n, c], 6.0, 0.0), labels(n, c), positive_tensor(vec![n, c], 0.0, 1.0))
        })
    ) {
        prop_f32_agrees(|v| v[0].cross_entropy(&targets, Reduction::Mean), std::slice::from_ref(&logits), TOL)?;
        prop_f32_agrees(|v| v[0].binary_cross_entropy_with_logits(&v[1], Reduction::Sum), &[logits.clone(), probs.clone()], TOL)?;
        prop_f32_agrees(|v| v[0].mse(&v[1], Reduction::Mean), &[logits, probs], TOL)?;
    }

    #[test]
    fn indexing(
        (table, ids, picks) in (dim(6), dim(4), 1usize..=8, 1usize..=3).prop_flat_map(|(vocab, width, n, k)| {
            (
                tensor_of(vec![vocab, width], 2.0, 0.0),
                proptest::collection::vec(0..vocab as u32, n)
                    .prop_map(move |ix| Tensor::from_vec(ix, [n], &Device::Cpu).expect("n ids")),
                proptest::collection::vec(0..width as u32, vocab * k)
                    .prop_map(move |ix| Tensor::from_vec(ix, [vocab, k], &Device::Cpu).expect("picks")),
            )
        })
    ) {
        prop_f32_agrees(|v| v[0].index_select(0, &ids)?.tanh(), std::slice::from_ref(&table), TOL)?;
        prop_f32_agrees(|v| v[0].gather(1, &picks)?.tanh(), &[table], TOL)?;
    }

    /// The 2-layer MLP of `grad_composite`, at a training-like width.
    #[test]
    fn mlp(
        (inputs, targets) in (dim(8), dim(16), dim(16), 2usize..=10).prop_flat_map(|(n, d, h, c)| {
            (
                (
                    tensor_of(vec![n, d], 1.5, 0.0),
                    tensor_of(vec![d, h], 0.5, 0.0),
                    tensor_of(vec![h], 0.5, 0.0),
                    tensor_of(vec![h, c], 0.5, 0.0),
                    tensor_of(vec![c], 0.5, 0.0),
                )
                    .prop_map(|(x, w1, b1, w2, b2)| vec![x, w1, b1, w2, b2]),
                labels(n, c),
            )
        })
    ) {
        prop_f32_agrees(
            |v: &[Var]| {
                let hidden = v[0].matmul(&v[1])?.add(&v[2])?.tanh()?;
                hidden.matmul(&v[3])?.add(&v[4])?.cross_entropy(&targets, Reduction::Mean)
            },
            &inputs,
            TOL,
        )?;
    }
}
