//! Gradient checks of the reductions and normalisations of `autograd::Var`: sum, mean,
//! var (unbiased and not), max and min over random sets of dims (listed in random
//! order, keepdim both ways), sum_all and mean_all, and softmax / log_softmax along a
//! random dim.
//!
//! Why: a reduction's backward must put the reduced dims back (unsqueezing them in the
//! right order when `keepdim` is false) and broadcast the gradient over them; max/min
//! must route it to the arg position; var has a mean inside. Inputs are random shapes
//! (rank 1-4, size-1 dims) in random non-contiguous layouts. For max/min the values
//! are pairwise distinct (a lattice with jitter, arranged without expanded dims),
//! because at a tie of k > 2 elements a central difference gives 1/2 to each while any
//! subgradient shares 1 among them.

use autograd::Var;
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{cases, dim_set, distinct_tensor, shape, tensor_of};
use proptest::prelude::*;
use tensor::Tensor;

const CASES: u32 = 48;

/// A tensor of rank 1-4 (dims up to 4, values in [-2, 2]) with a set of its dims.
fn with_dims() -> impl Strategy<Value = (Tensor, Vec<usize>)> {
    shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (tensor_of(dims, 2.0, 0.0), dim_set(rank))
    })
}

/// Like [`with_dims`], with pairwise distinct values.
fn distinct_with_dims() -> impl Strategy<Value = (Tensor, Vec<usize>)> {
    shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (distinct_tensor(dims, 0.05, 0.0), dim_set(rank))
    })
}

/// A tensor of rank 1-4 with one of its dims.
fn with_dim(range: f64) -> impl Strategy<Value = (Tensor, usize)> {
    shape(1, 4, 4).prop_flat_map(move |dims| {
        let rank = dims.len();
        (tensor_of(dims, range, 0.0), 0..rank)
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn sum((x, dims) in with_dims(), keepdim in any::<bool>()) {
        prop_gradcheck(|v| v[0].sum(&dims, keepdim), &[x])?;
    }

    #[test]
    fn mean((x, dims) in with_dims(), keepdim in any::<bool>()) {
        prop_gradcheck(|v| v[0].mean(&dims, keepdim), &[x])?;
    }

    /// Unbiased only where at least two elements are reduced (one element gives 0/0).
    #[test]
    fn var((x, dims) in with_dims(), unbiased in any::<bool>(), keepdim in any::<bool>()) {
        let count: usize = dims.iter().map(|&d| x.dims()[d]).product();
        let unbiased = unbiased && count > 1;
        prop_gradcheck(|v| v[0].var(&dims, unbiased, keepdim), &[x])?;
    }

    #[test]
    fn max((x, dims) in distinct_with_dims(), keepdim in any::<bool>()) {
        prop_gradcheck(|v| v[0].max(&dims, keepdim), &[x])?;
    }

    #[test]
    fn min((x, dims) in distinct_with_dims(), keepdim in any::<bool>()) {
        prop_gradcheck(|v| v[0].min(&dims, keepdim), &[x])?;
    }

    /// Rank 0 included.
    #[test]
    fn sum_all(x in shape(0, 4, 4).prop_flat_map(|d| tensor_of(d, 2.0, 0.0))) {
        prop_gradcheck(|v| v[0].sum_all(), &[x])?;
    }

    #[test]
    fn mean_all(x in shape(0, 4, 4).prop_flat_map(|d| tensor_of(d, 2.0, 0.0))) {
        prop_gradcheck(|v| v[0].mean_all(), &[x])?;
    }

    /// Logits in [-4, 4].
    #[test]
    fn softmax((x, dim) in with_dim(4.0)) {
        prop_gradcheck(|v| v[0].softmax(dim), &[x])?;
    }

    #[test]
    fn log_softmax((x, dim) in with_dim(4.0)) {
        prop_gradcheck(|v| v[0].log_softmax(dim), &[x])?;
    }

    /// Large logits (|x| up to 60, where a naive exp would lose everything in f32 and
    /// the max subtraction matters) still give exact gradients.
    #[test]
    fn log_softmax_large_logits((x, dim) in with_dim(60.0)) {
        prop_gradcheck(|v| v[0].log_softmax(dim), &[x])?;
    }

    /// Reductions applied to a reduction: the inner one's gradient arrives already
    /// broadcast (a stride-0 view).
    #[test]
    fn nested_reductions((x, dims) in with_dims(), keepdim in any::<bool>()) {
        prop_gradcheck(
            |v| v[0].mean(&dims, true)?.sub(&v[0])?.square()?.sum(&dims, keepdim),
            &[x],
        )?;
    }
}

/// A two-way tie is the one tie a central difference agrees with: raising either tied
/// element by eps raises the max by eps, lowering it changes nothing, so the numeric
/// gradient is 1/2 for each, which is exactly the even split autograd documents.
#[test]
fn max_two_way_tie_splits_evenly() {
    let x = Tensor::from_vec(vec![0.5f64, 2.0, -1.0, 2.0], [4], &tensor::Device::Cpu).unwrap();
    bench_harness::gradcheck(
        |v| v[0].max(&[0], false),
        std::slice::from_ref(&x),
        Default::default(),
    )
    .unwrap();
    let v = Var::parameter(x);
    v.max(&[0], false).unwrap().backward().unwrap();
    assert_eq!(
        v.grad().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 0.5, 0.0, 0.5]
    );
}
