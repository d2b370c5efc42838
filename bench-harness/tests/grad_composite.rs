//! Gradient checks of composite graphs, where the engine (topological order, gradient
//! accumulation, broadcasting reductions between ops) matters as much as each rule:
//!
//! - a 2-layer MLP (`matmul + bias -> tanh -> matmul + bias -> cross_entropy`) with the
//!   input, both weights and both biases checked;
//! - a broadcasting expression that reuses one input several times,
//!   `(x*y + x).exp().sum(dim) / x.sum_all()`;
//! - layer normalisation from primitives (mean, var, sqrt, broadcasting sub/div);
//! - a softmax attention block (`softmax(Q·Kᵀ/√d)·V` with Q, K, V from one input);
//! - one value reaching the loss through many paths, in different layouts.
//!
//! Why: single-op checks cannot see a gradient that is overwritten instead of
//! accumulated, a node processed before all its consumers, or a broadcast gradient
//! summed to the wrong shape two ops later.

use autograd::{Reduction, Var};
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{
    arrangement_without_repeats, broadcast_pair, cases, dim, positive_tensor, shape, tensor_of,
    tensor_with, uniform_values,
};
use proptest::prelude::*;
use tensor::{Device, Tensor};

const CASES: u32 = 32;

/// Inputs of the MLP: `x [N, D]`, `W1 [D, H]`, `b1 [H]`, `W2 [H, C]`, `b2 [C]`, and
/// class indices `[N]`.
fn mlp_case() -> impl Strategy<Value = (Vec<Tensor>, Tensor)> {
    (dim(4), dim(5), dim(4), 2usize..=4).prop_flat_map(|(n, d, h, c)| {
        (
            (
                tensor_of(vec![n, d], 1.5, 0.0),
                tensor_of(vec![d, h], 1.0, 0.0),
                tensor_of(vec![h], 0.5, 0.0),
                tensor_of(vec![h, c], 1.0, 0.0),
                tensor_of(vec![c], 0.5, 0.0),
            )
                .prop_map(|(x, w1, b1, w2, b2)| vec![x, w1, b1, w2, b2]),
            proptest::collection::vec(0..c as u32, n)
                .prop_map(move |t| Tensor::from_vec(t, [n], &Device::Cpu).expect("n targets")),
        )
    })
}

fn mlp(v: &[Var], targets: &Tensor, reduction: Reduction) -> autograd::Result<Var> {
    let hidden = v[0].matmul(&v[1])?.add(&v[2])?.tanh()?;
    hidden
        .matmul(&v[3])?
        .add(&v[4])?
        .cross_entropy(targets, reduction)
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn mlp_cross_entropy((inputs, targets) in mlp_case(), sum in any::<bool>()) {
        let r = if sum { Reduction::Sum } else { Reduction::Mean };
        prop_gradcheck(|v| mlp(v, &targets, r), &inputs)?;
    }

    /// `(x*y + x).exp().sum(dim) / x.sum_all()`: x is used three times, once through a
    /// broadcast against y. x is positive (the divisor is at least 0.2 per element).
    #[test]
    fn broadcasting_reuse(
        (x, y, dim) in broadcast_pair(3, 4).prop_flat_map(|(a, b)| {
            let rank = a.len().max(b.len());
            (positive_tensor(a, 0.2, 1.0), tensor_of(b, 1.0, 0.0), 0..rank)
        })
    ) {
        let f = |v: &[Var]| v[0].mul(&v[1])?.add(&v[0])?.exp()?.sum(&[dim], false)?.div(&v[0].sum_all()?);
        prop_gradcheck(f, &[x.clone(), y.clone()])?;
        // The same with the broadcast operands swapped.
        let g = |v: &[Var]| v[1].mul(&v[0])?.add(&v[1])?.exp()?.sum(&[dim], true)?.div(&v[1].sum_all()?);
        prop_gradcheck(g, &[y.abs().unwrap().add_scalar(0.2).unwrap(), x])?;
    }

    /// `(x - mean) / sqrt(var + 1e-5) * gamma + beta` over the last dim.
    #[test]
    fn layer_norm(
        (x, gamma, beta) in shape(2, 3, 4).prop_filter("a last dim of 2+", |d| d[d.len() - 1] > 1).prop_flat_map(|d| {
            let c = d[d.len() - 1];
            (tensor_of(d, 2.0, 0.0), tensor_of(vec![c], 1.5, 0.0), tensor_of(vec![c], 1.0, 0.0))
        }),
        unbiased in any::<bool>(),
    ) {
        prop_gradcheck(
            |v| {
                let last = v[0].rank() - 1;
                let centred = v[0].sub(&v[0].mean(&[last], true)?)?;
                let std = v[0].var(&[last], unbiased, true)?.add_scalar(1e-5)?.sqrt()?;
                centred.div(&std)?.mul(&v[1])?.add(&v[2])
            },
            &[x, gamma, beta],
        )?;
    }

    /// Single-head attention with Q, K and V all projected from one input.
    #[test]
    fn attention(
        inputs in (dim(4), dim(4), dim(3)).prop_flat_map(|(t, d, k)| {
            (
                tensor_of(vec![2, t, d], 1.0, 0.0),
                tensor_of(vec![d, k], 1.0, 0.0),
                tensor_of(vec![d, k], 1.0, 0.0),
                tensor_of(vec![d, k], 1.0, 0.0),
            )
                .prop_map(|(x, q, kk, vv)| vec![x, q, kk, vv])
        })
    ) {
        prop_gradcheck(
            |v| {
                let (q, k, val) = (v[0].matmul(&v[1])?, v[0].matmul(&v[2])?, v[0].matmul(&v[3])?);
                let scale = 1.0 / (v[1].dims()[1] as f64).sqrt();
                let scores = q.matmul(&k.transpose(1, 2)?)?.mul_scalar(scale)?;
                scores.softmax(2)?.matmul(&val)
            },
            &inputs,
        )?;
    }

    /// One value consumed by many ops in different layouts (itself, transposed,
    /// narrowed, expanded, reduced, divided by itself): every contribution accumulates.
    #[test]
    fn many_paths(x in (dim(4), dim(4)).prop_flat_map(|(m, n)| {
        // No expanded layout: the row max needs distinct values.
        tensor_with(vec![m, n], |k| uniform_values(k, 0.3, 1.5), arrangement_without_repeats())
    })) {
        prop_gradcheck(
            |v| {
                let x = &v[0];
                let (m, n) = (x.dims()[0], x.dims()[1]);
                let a = x.mul(x)?.add(&x.div(x)?)?; // x^2 + 1, via two reuses
                let b = x.t()?.matmul(x)?.sum(&[0], false)?.unsqueeze(0)?; // [1, n]
                let c = x.narrow(1, 0, 1)?.expand([m, n])?; // first column, broadcast
                let d = x.max(&[1], true)?.add(&x.mean_all()?)?; // [m, 1]
                a.add(&b)?.mul(&c)?.sub(&d)?.log_softmax(1)
            },
            &[x],
        )?;
    }
}
