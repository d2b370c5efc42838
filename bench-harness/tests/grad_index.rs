//! Gradient checks of the integer-indexed ops of `autograd::Var`: `index_select`
//! (embedding lookup) and `gather`, along a random dim, with indices that repeat and
//! skip entries.
//!
//! Why: their backward scatters the gradient with `index_add` / `scatter_add`, and an
//! index used twice must receive the sum of both gradients (a scatter that assigns
//! instead of adding passes every test without repeats). An entry never picked must
//! get exactly zero. The gathered index may be smaller than the input in the other
//! dims (torch.gather semantics), and the input comes in random layouts.

use bench_harness::prop_gradcheck;
use bench_harness::strategies::{cases, dim, shape, tensor_of};
use proptest::prelude::*;
use tensor::{Device, Tensor};

const CASES: u32 = 48;

fn u32_tensor(values: Vec<u32>, dims: Vec<usize>) -> Tensor {
    Tensor::from_vec(values, dims, &Device::Cpu).expect("indices sized by their dims")
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
                proptest::collection::vec(0..size, 1..=6).prop_map(|ix| {
                    let n = ix.len();
                    u32_tensor(ix, vec![n])
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
                let n = index_dims.iter().product::<usize>();
                let size = dims[d] as u32;
                (
                    tensor_of(dims, 2.0, 0.0),
                    Just(d),
                    proptest::collection::vec(0..size, n)
                        .prop_map(move |ix| u32_tensor(ix, index_dims.clone())),
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
