//! Gradient checks of `Var::matmul` in every form it accepts: vector·vector (a rank-0
//! dot product), vector·matrix, matrix·vector, matrix·matrix, batched products with
//! broadcast batch dims (either operand may lack or have size-1 batch dims), vectors
//! against batches, and transposed operands (a `t()`/`transpose` inside the graph, and
//! inputs stored transposed).
//!
//! Why: matmul's backward is `g·Bᵀ` and `Aᵀ·g`, summed over broadcast batch dims, plus
//! the unsqueeze/squeeze bookkeeping for 1-D operands; each of these forms takes a
//! different path. Inputs come in random layouts (permuted, narrowed, expanded), which
//! the strided gemm consumes without copies, so the backward sees those strides too.

use bench_harness::prop_gradcheck;
use bench_harness::strategies::{cases, dim, tensor_of};
use proptest::prelude::*;
use tensor::Tensor;

const CASES: u32 = 48;

fn t(dims: Vec<usize>) -> impl Strategy<Value = Tensor> {
    tensor_of(dims, 1.5, 0.0)
}

/// Batch dims of two operands that broadcast together: up to two dims, each of which
/// may be 1 or missing on either side.
fn batch_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    bench_harness::strategies::broadcast_pair(2, 3).prop_flat_map(|(a, b)| {
        // Randomly swap, so the lower-rank batch is sometimes on the left.
        any::<bool>().prop_map(move |swap| {
            if swap {
                (b.clone(), a.clone())
            } else {
                (a.clone(), b.clone())
            }
        })
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn vector_vector((a, b) in dim(5).prop_flat_map(|k| (t(vec![k]), t(vec![k])))) {
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn vector_matrix((a, b) in (dim(5), dim(5)).prop_flat_map(|(k, n)| (t(vec![k]), t(vec![k, n])))) {
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn matrix_vector((a, b) in (dim(5), dim(5)).prop_flat_map(|(m, k)| (t(vec![m, k]), t(vec![k])))) {
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[a, b])?;
    }

    #[test]
    fn matrix_matrix(
        (a, b) in (dim(5), dim(5), dim(5)).prop_flat_map(|(m, k, n)| (t(vec![m, k]), t(vec![k, n])))
    ) {
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[a, b])?;
    }

    /// `A·Bᵀ`, `Aᵀ·B` and `Aᵀ·Bᵀ` with the transposes taken inside the graph.
    #[test]
    fn transposed_operands(
        (a, b, at, c) in (dim(5), dim(5), dim(5)).prop_flat_map(|(m, k, n)| {
            (t(vec![m, k]), t(vec![n, k]), t(vec![k, m]), t(vec![k, n]))
        })
    ) {
        prop_gradcheck(|v| v[0].matmul(&v[1].t()?), &[a, b.clone()])?;
        prop_gradcheck(|v| v[0].t()?.matmul(&v[1]), &[at.clone(), c])?;
        prop_gradcheck(|v| v[0].t()?.matmul(&v[1].t()?), &[at, b])?;
    }

    /// Batched products whose batch dims broadcast (`[2, 1, m, k] · [3, k, n]`, ...),
    /// with the last two dims of either operand sometimes transposed in the graph.
    #[test]
    fn batched_broadcast(
        (a, b, ta, tb) in (batch_pair(), dim(4), dim(4), dim(4), any::<bool>(), any::<bool>())
            .prop_flat_map(|((ba, bb), m, k, n, ta, tb)| {
                let mut da = ba;
                da.extend(if ta { [k, m] } else { [m, k] });
                let mut db = bb;
                db.extend(if tb { [n, k] } else { [k, n] });
                (t(da), t(db), Just(ta), Just(tb))
            })
    ) {
        prop_gradcheck(
            |v| {
                let x = if ta { v[0].transpose(v[0].rank() - 2, v[0].rank() - 1)? } else { v[0].clone() };
                let y = if tb { v[1].transpose(v[1].rank() - 2, v[1].rank() - 1)? } else { v[1].clone() };
                x.matmul(&y)
            },
            &[a, b],
        )?;
    }

    /// A vector against a batch of matrices, on either side.
    #[test]
    fn vector_batch(
        (v_left, batch_right, batch_left, v_right) in (dim(3), dim(4), dim(4), dim(4))
            .prop_flat_map(|(bs, m, k, n)| {
                (t(vec![k]), t(vec![bs, k, n]), t(vec![bs, m, k]), t(vec![k]))
            })
    ) {
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[v_left, batch_right])?;
        prop_gradcheck(|v| v[0].matmul(&v[1]), &[batch_left, v_right])?;
    }

    /// `X·Xᵀ`: one input on both sides, the two gradient contributions accumulate.
    #[test]
    fn gram_matrix(x in (dim(5), dim(5)).prop_flat_map(|(m, k)| t(vec![m, k]))) {
        prop_gradcheck(|v| v[0].matmul(&v[0].t()?), &[x])?;
    }
}
