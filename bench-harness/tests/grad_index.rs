//! Gradient checks of the integer-indexed ops of `autograd::Var`: `index_select`
//! (embedding lookup) and `gather`, along a random dim, with indices that repeat and
//! skip entries.
//!
//! Why: their backward scatters the gradient with `index_add` / `scatter_add`, and an
//! index used twice must receive the sum of both gradients (a scatter that assigns
//! instead of adding passes every test without repeats). An entry never picked must
//! get exactly zero. The gathered index may be smaller than the input in the other
//! dims (torch.gather semantics), and both the input and the index tensor come in
//! random layouts (permuted, narrowed, expanded).

use bench_harness::prop_gradcheck;
use bench_harness::strategies::{
    arrangement, cases, dim, shape, storage_len, tensor_of, Arrangement,
};
use proptest::prelude::*;
use tensor::{Device, Tensor};

const CASES: u32 = 48;

fn u32_tensor(values: Vec<u32>, dims: Vec<usize>) -> Tensor {
    Tensor::from_vec(values, dims, &Device::Cpu).expect("indices sized by their dims")
}

/// A u32 index tensor of logical shape `dims` taken from `pool` (at least
/// `storage_len(dims)` values) in the given layout, like `strategies::arrange` does
/// for f64: index tensors are views too (a transposed target matrix, a narrowed
/// batch), and the gathers and their scatter-add backward must follow the strides.
fn index_tensor(pool: &[u32], dims: &[usize], arr: Arrangement) -> Tensor {
    let rank = dims.len();
    let take = |shape: &[usize]| {
        u32_tensor(
            pool[..shape.iter().product::<usize>()].to_vec(),
            shape.to_vec(),
        )
    };
    let view = match arr {
        Arrangement::Permuted if rank >= 2 => {
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            let order: Vec<usize> = (0..rank).rev().collect();
            take(&reversed).permute(&order)
        }
        Arrangement::Narrowed if rank >= 1 => {
            let mut wide = dims.to_vec();
            wide[rank - 1] += 2;
            take(&wide).narrow(rank - 1, 1, dims[rank - 1])
        }
        Arrangement::Expanded if dims.iter().any(|&d| d > 1) => {
            let d = dims.iter().position(|&d| d > 1).unwrap_or(0);
            let mut base = dims.to_vec();
            base[d] = 1;
            take(&base).expand(dims.to_vec())
        }
        _ => Ok(take(dims)),
    };
    view.expect("pool sized by storage_len")
}

/// An input of rank 1-4, a dim, and 1-6 indices into that dim (repeats likely).
fn index_select_case() -> impl Strategy<Value = (Tensor, usize, Tensor)> {
    shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (Just(dims), 0..rank).prop_flat_map(|(dims, d)| {
            let size = dims[d] as u32;
            (
                tensor_of(dims, 2.0, 0.0),
                Just(d),
                (1usize..=6, arrangement()).prop_flat_map(move |(n, arr)| {
                    proptest::collection::vec(0..size, storage_len(&[n]))
                        .prop_map(move |pool| index_tensor(&pool, &[n], arr))
                }),
            )
        })
    })
}

/// An input, a dim, and an index of the input's rank: along `dim` any length 1-5 with
/// values below the input's size there, elsewhere no larger than the input.
fn gather_case() -> impl Strategy<Value = (Tensor, usize, Tensor)> {
    shape(1, 4, 4).prop_flat_map(|dims| {
        let rank = dims.len();
        (
            Just(dims),
            0..rank,
            proptest::collection::vec(any::<u64>(), rank),
            1usize..=5,
        )
            .prop_flat_map(|(dims, d, shrink, len)| {
                let index_dims: Vec<usize> = dims
                    .iter()
                    .zip(&shrink)
                    .enumerate()
                    .map(|(i, (&s, &r))| {
                        if i == d {
                            len
                        } else {
                            1 + (r % s as u64) as usize
                        }
                    })
                    .collect();
                let size = dims[d] as u32;
                (
                    tensor_of(dims, 2.0, 0.0),
                    Just(d),
                    (
                        proptest::collection::vec(0..size, storage_len(&index_dims)),
                        arrangement(),
                    )
                        .prop_map(move |(pool, arr)| index_tensor(&pool, &index_dims, arr)),
                )
            })
    })
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn index_select((x, d, ix) in index_select_case()) {
        prop_gradcheck(|v| v[0].index_select(d, &ix), &[x])?;
    }

    /// An embedding lookup: ids `[batch, seq]` flattened into a `[vocab, width]` table,
    /// the rows reshaped back and fed through a smooth op.
    #[test]
    fn embedding(
        (table, ids, b, s) in (dim(5), dim(4), dim(3), dim(4)).prop_flat_map(|(vocab, width, b, s)| {
            (
                tensor_of(vec![vocab, width], 1.0, 0.0),
                proptest::collection::vec(0..vocab as u32, b * s).prop_map(|ix| {
                    let n = ix.len();
                    u32_tensor(ix, vec![n])
                }),
                Just(b),
                Just(s),
            )
        })
    ) {
        let width = table.dims()[1];
        prop_gradcheck(|v| v[0].index_select(0, &ids)?.reshape([b, s, width])?.tanh(), &[table])?;
    }

    #[test]
    fn gather((x, d, ix) in gather_case()) {
        prop_gradcheck(|v| v[0].gather(d, &ix), &[x])?;
    }
}
