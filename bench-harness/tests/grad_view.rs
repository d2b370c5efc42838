//! Gradient checks of the shape and view ops of `autograd::Var` (reshape, view,
//! flatten, squeeze, unsqueeze, contiguous, permute, transpose, t, narrow, select,
//! expand), random chains of them, and the joins cat and stack.
//!
//! Why: a view's gradient is an index mapping, and the classic bugs are mappings that
//! assume a contiguous input (a reshape of a permuted tensor), forget an offset
//! (narrow of a narrow), or do not sum over a broadcast (expand). Inputs come in random
//! non-contiguous layouts, ranks 0-4 with size-1 dims; the projection gradcheck applies
//! to the output gives every output element a different weight, so a gradient routed
//! to the wrong element fails.

use autograd::Var;
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{cases, dim, permutation, shape, tensor_of};
use proptest::prelude::*;
use tensor::Tensor;

const CASES: u32 = 48;

fn input(min_rank: usize) -> impl Strategy<Value = Tensor> {
    shape(min_rank, 4, 4).prop_flat_map(|d| tensor_of(d, 2.0, 0.0))
}

/// One view step of a random chain, applied to whatever shape the chain has reached.
#[derive(Clone, Copy, Debug)]
enum Step {
    Permute(u64),
    Transpose(u64),
    Narrow(u64),
    Select(u64),
    Unsqueeze(u64),
    Squeeze,
    Expand(usize),
    Reshape,
    Flatten(u64),
    Contiguous,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<u64>().prop_map(Step::Permute),
        any::<u64>().prop_map(Step::Transpose),
        any::<u64>().prop_map(Step::Narrow),
        any::<u64>().prop_map(Step::Select),
        any::<u64>().prop_map(Step::Unsqueeze),
        Just(Step::Squeeze),
        (2usize..=3).prop_map(Step::Expand),
        Just(Step::Reshape),
        any::<u64>().prop_map(Step::Flatten),
        Just(Step::Contiguous),
    ]
}

/// Applies `step` (choices derived from its seed, reduced modulo the current shape).
fn apply(x: &Var, step: Step) -> autograd::Result<Var> {
    let rank = x.rank();
    let dims = x.dims().to_vec();
    let pick = |seed: u64, n: usize| (seed % n.max(1) as u64) as usize;
    Ok(match step {
        Step::Permute(s) if rank >= 2 => {
            // A rotation by 1 + seed % (rank - 1) positions.
            let k = 1 + pick(s, rank - 1);
            let order: Vec<usize> = (0..rank).map(|i| (i + k) % rank).collect();
            x.permute(&order)?
        }
        Step::Transpose(s) if rank >= 2 => {
            let a = pick(s, rank);
            let b = pick(s / 7, rank);
            x.transpose(a, b)?
        }
        Step::Narrow(s) if rank >= 1 => {
            let d = pick(s, rank);
            let len = 1 + pick(s / 5, dims[d]);
            let start = pick(s / 31, dims[d] - len + 1);
            x.narrow(d, start, len)?
        }
        Step::Select(s) if rank >= 1 => {
            let d = pick(s, rank);
            x.select(d, pick(s / 5, dims[d]))?
        }
        Step::Unsqueeze(s) => x.unsqueeze(pick(s, rank + 1))?,
        Step::Squeeze => match dims.iter().position(|&d| d == 1) {
            Some(d) => x.squeeze(d)?,
            None => x.clone(),
        },
        Step::Expand(n) => match dims.iter().position(|&d| d == 1) {
            Some(d) => {
                let mut to = dims.clone();
                to[d] = n;
                x.expand(to)?
            }
            None => {
                let mut to = vec![n];
                to.extend(&dims);
                x.expand(to)?
            }
        },
        Step::Reshape => {
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            x.reshape(reversed)?
        }
        Step::Flatten(s) if rank >= 1 => {
            let start = pick(s, rank);
            let end = start + pick(s / 5, rank - start);
            x.flatten(start, end)?
        }
        Step::Contiguous => x.contiguous()?,
        _ => x.clone(),
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    /// Reshape to the same dims in another order (same element count).
    #[test]
    fn reshape((x, order) in shape(0, 4, 4).prop_flat_map(|d| {
        let rank = d.len();
        (tensor_of(d, 2.0, 0.0), permutation(rank))
    })) {
        let to: Vec<usize> = order.iter().map(|&i| x.dims()[i]).collect();
        prop_gradcheck(|v| v[0].reshape(to.clone()), std::slice::from_ref(&x))?;
        let n = x.elem_count();
        prop_gradcheck(|v| v[0].reshape([n]), &[x])?;
    }

    /// `view` needs a layout it can express without copying: checked on a contiguous
    /// copy made inside the graph, so the gradient passes through both.
    #[test]
    fn view(x in input(0)) {
        let n = x.elem_count();
        prop_gradcheck(|v| v[0].contiguous()?.view([n])?.view([1, n]), &[x])?;
    }

    #[test]
    fn flatten((x, start, len) in shape(1, 4, 4).prop_flat_map(|d| {
        let rank = d.len();
        (tensor_of(d, 2.0, 0.0), 0..rank, 0..rank)
    })) {
        let end = (start + len).min(x.rank() - 1);
        prop_gradcheck(|v| v[0].flatten(start, end), &[x])?;
    }

    /// Squeezes every size-1 dim (first unsqueezing one when there is none).
    #[test]
    fn squeeze_unsqueeze(x in input(0), at in any::<u64>()) {
        let d = (at % (x.rank() as u64 + 1)) as usize;
        prop_gradcheck(|v| v[0].unsqueeze(d), std::slice::from_ref(&x))?;
        prop_gradcheck(
            |v| {
                let mut y = v[0].unsqueeze(d)?;
                while let Some(i) = y.dims().iter().position(|&s| s == 1) {
                    y = y.squeeze(i)?;
                }
                Ok(y)
            },
            &[x],
        )?;
    }

    #[test]
    fn contiguous(x in input(0)) {
        prop_gradcheck(|v| v[0].contiguous(), &[x])?;
    }

    #[test]
    fn permute((x, order) in shape(0, 4, 4).prop_flat_map(|d| {
        let rank = d.len();
        (tensor_of(d, 2.0, 0.0), permutation(rank))
    })) {
        prop_gradcheck(|v| v[0].permute(&order), &[x])?;
    }

    #[test]
    fn transpose((x, a, b) in shape(1, 4, 4).prop_flat_map(|d| {
        let rank = d.len();
        (tensor_of(d, 2.0, 0.0), 0..rank, 0..rank)
    })) {
        prop_gradcheck(|v| v[0].transpose(a, b), &[x])?;
    }

    #[test]
    fn t(x in (dim(5), dim(5)).prop_flat_map(|(m, n)| tensor_of(vec![m, n], 2.0, 0.0))) {
        prop_gradcheck(|v| v[0].t(), &[x])?;
    }

    #[test]
    fn narrow((x, d, a, b) in shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (tensor_of(dims, 2.0, 0.0), 0..rank, any::<u64>(), any::<u64>())
    })) {
        let size = x.dims()[d] as u64;
        let len = 1 + (a % size) as usize;
        let start = (b % (size - len as u64 + 1)) as usize;
        prop_gradcheck(|v| v[0].narrow(d, start, len), std::slice::from_ref(&x))?;
        // A narrow of a narrow: offsets must compose.
        prop_gradcheck(|v| v[0].narrow(d, start, len)?.narrow(d, len - 1, 1), &[x])?;
    }

    #[test]
    fn select((x, d, i) in shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (tensor_of(dims, 2.0, 0.0), 0..rank, any::<u64>())
    })) {
        let index = (i % x.dims()[d] as u64) as usize;
        prop_gradcheck(|v| v[0].select(d, index), &[x])?;
    }

    /// Size-1 dims grow to 2-3 and up to two leading dims are added; the gradient
    /// sums over every copy.
    #[test]
    fn expand(
        (x, grow, lead) in shape(0, 3, 4).prop_flat_map(|d| {
            let rank = d.len();
            (
                tensor_of(d, 2.0, 0.0),
                proptest::collection::vec(2usize..=3, rank),
                proptest::collection::vec(1usize..=3, 0..=2),
            )
        })
    ) {
        let mut to = lead;
        to.extend(x.dims().iter().zip(&grow).map(|(&d, &g)| if d == 1 { g } else { d }));
        prop_gradcheck(|v| v[0].expand(to.clone()), &[x])?;
    }

    /// Random chains of up to six view steps over a (possibly already non-contiguous)
    /// input, with a smooth op at the end so a wrong index mapping cannot hide.
    #[test]
    fn view_chains(x in input(1), steps in proptest::collection::vec(step(), 1..=6)) {
        prop_gradcheck(
            |v| {
                let mut y = v[0].clone();
                for &s in &steps {
                    y = apply(&y, s)?;
                }
                y.tanh()
            },
            &[x],
        )?;
    }

    /// `cat` of two or three tensors along a random dim (their sizes there differ).
    #[test]
    fn cat(
        (parts, dim) in shape(1, 3, 4).prop_flat_map(|base| {
            let rank = base.len();
            (Just(base), 0..rank, proptest::collection::vec(1usize..=3, 2..=3))
        }).prop_flat_map(|(base, d, sizes)| {
            let parts: Vec<_> = sizes.into_iter().map(|s| {
                let mut dims = base.clone();
                dims[d] = s;
                tensor_of(dims, 2.0, 0.0)
            }).collect();
            (parts, Just(d))
        })
    ) {
        prop_gradcheck(|v| Var::cat(v, dim), &parts)?;
    }

    /// `stack` of two or three tensors of one shape along a new dim (0..=rank).
    #[test]
    fn stack(
        (parts, dim) in (shape(0, 3, 4), 2usize..=3).prop_flat_map(|(dims, k)| {
            let rank = dims.len();
            (proptest::collection::vec(tensor_of(dims, 2.0, 0.0), k), 0..=rank)
        })
    ) {
        prop_gradcheck(|v| Var::stack(v, dim), &parts)?;
    }

    /// One value in several slots of a join: the gradients of its copies accumulate.
    #[test]
    fn join_reuses_input(x in input(1)) {
        prop_gradcheck(|v| Var::cat(&[v[0].clone(), v[0].tanh()?, v[0].clone()], 0), std::slice::from_ref(&x))?;
        let rank = x.rank();
        prop_gradcheck(|v| Var::stack(&[v[0].clone(), v[0].square()?], rank), &[x])?;
    }
}
