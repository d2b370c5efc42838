//! proptest strategies for gradient and kernel properties.
//!
//! Shapes favour small and size-1 dims (where broadcasting bugs hide); values can be
//! kept away from the kinks of non-smooth ops; tensors can be generated with
//! non-contiguous layouts (permuted, narrowed, expanded) so backward rules are
//! exercised on views, not only on dense inputs.

use proptest::prelude::*;
use tensor::{Device, Tensor};

/// A proptest configuration running `n` cases per property that reports failures
/// without persisting them to regression files in the source tree.
pub fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A dim size: 1 a quarter of the time, otherwise `2..=max`.
pub fn dim(max: usize) -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(1usize), 3 => 2..=max.max(2)]
}

/// A shape of rank `min_rank..=max_rank` with dims up to `max_dim`.
pub fn shape(
    min_rank: usize,
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = Vec<usize>> {
    (min_rank..=max_rank).prop_flat_map(move |rank| proptest::collection::vec(dim(max_dim), rank))
}

/// Two shapes that broadcast together (NumPy rules): the second may have lower rank,
/// and either may have size-1 dims where the other does not.
pub fn broadcast_pair(
    max_rank: usize,
    max_dim: usize,
) -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    shape(1, max_rank, max_dim)
        .prop_flat_map(|full| {
            let rank = full.len();
            (
                Just(full),
                0..=rank,
                proptest::collection::vec(0u8..3, rank),
            )
        })
        .prop_map(|(full, drop, ones)| {
            let mut a = full.clone();
            let mut b = full[drop..].to_vec();
            let offset = drop;
            for (i, choice) in ones.into_iter().enumerate() {
                match choice {
                    1 => a[i] = 1,
                    2 if i >= offset => b[i - offset] = 1,
                    _ => {}
                }
            }
            (a, b)
        })
}

/// How a generated tensor's layout is arranged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrangement {
    /// Dense row-major.
    Contiguous,
    /// Stored with dims reversed, then permuted back.
    Permuted,
    /// A narrow of a wider tensor along the last dim.
    Narrowed,
    /// A size-1 dim expanded to its size (stride 0; values repeat along it).
    Expanded,
}

/// Any arrangement.
pub fn arrangement() -> impl Strategy<Value = Arrangement> {
    prop_oneof![
        Just(Arrangement::Contiguous),
        Just(Arrangement::Permuted),
        Just(Arrangement::Narrowed),
        Just(Arrangement::Expanded),
    ]
}

/// Values in `[-range, range]` whose magnitude is at least `margin` (use a margin to
/// keep away from the kink of relu/abs at 0 when finite differences straddle it).
pub fn values(len: usize, range: f64, margin: f64) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec((margin..=range, any::<bool>()), len).prop_map(|v| {
        v.into_iter()
            .map(|(m, neg)| if neg { -m } else { m })
            .collect()
    })
}

/// Builds an f64 tensor of logical shape `dims` arranged as asked, filled from
/// `pool` (which must hold at least `storage_len(dims, arrangement)` values).
pub fn arrange(dims: &[usize], arrangement: Arrangement, pool: &[f64]) -> tensor::Result<Tensor> {
    let cpu = Device::Cpu;
    let rank = dims.len();
    let take = |shape: &[usize]| -> tensor::Result<Tensor> {
        let n: usize = shape.iter().product();
        Tensor::from_vec(pool[..n].to_vec(), shape.to_vec(), &cpu)
    };
    match arrangement {
        Arrangement::Permuted if rank >= 2 => {
            let reversed: Vec<usize> = dims.iter().rev().copied().collect();
            let order: Vec<usize> = (0..rank).rev().collect();
            take(&reversed)?.permute(&order)
        }
        Arrangement::Narrowed if rank >= 1 => {
            let mut wide = dims.to_vec();
            wide[rank - 1] += 2;
            take(&wide)?.narrow(rank - 1, 1, dims[rank - 1])
        }
        Arrangement::Expanded if dims.iter().any(|&d| d > 1) => {
            let d = dims.iter().position(|&d| d > 1).unwrap_or(0);
            let mut base = dims.to_vec();
            base[d] = 1;
            take(&base)?.expand(dims.to_vec())
        }
        _ => take(dims),
    }
}

/// The number of stored values [`arrange`] needs for a shape (an upper bound for every
/// arrangement).
pub fn storage_len(dims: &[usize]) -> usize {
    let mut wide = dims.to_vec();
    if let Some(last) = wide.last_mut() {
        *last += 2;
    }
    wide.iter().product::<usize>().max(1)
}

/// A tensor of the given shape with random values (magnitudes in `[margin, range]`) and
/// a random arrangement.
pub fn tensor_of(dims: Vec<usize>, range: f64, margin: f64) -> impl Strategy<Value = Tensor> {
    let n = storage_len(&dims);
    (values(n, range, margin), arrangement()).prop_map(move |(pool, arr)| {
        // The pool is sized by storage_len, so arrange cannot fail.
        arrange(&dims, arr, &pool).expect("pool sized by storage_len")
    })
}

/// The arrangements whose logical elements are all stored separately (no expanded
/// dims), for ops that need pairwise distinct values (max/min reductions): an
/// expanded dim repeats one stored value along it, which is a tie.
pub fn arrangement_without_repeats() -> impl Strategy<Value = Arrangement> {
    prop_oneof![
        Just(Arrangement::Contiguous),
        Just(Arrangement::Permuted),
        Just(Arrangement::Narrowed),
    ]
}

/// Values drawn uniformly from `[lo, hi]` (e.g. strictly positive ones for `log`,
/// `sqrt`, `recip` and the base of `pow`).
pub fn uniform_values(len: usize, lo: f64, hi: f64) -> impl Strategy<Value = Vec<f64>> {
    proptest::collection::vec(lo..=hi, len)
}

/// Pairwise distinct values: a shuffled lattice `phase + step * k` (`k` centred on 0)
/// with jitter of at most `step / 8`, so any two values differ by at least
/// `3 * step / 4`. Two pools made with phases `0` and `step / 2` never come closer
/// than `step / 4` to each other (for `maximum`/`minimum` without ties).
pub fn lattice_values(len: usize, step: f64, phase: f64) -> impl Strategy<Value = Vec<f64>> {
    let half = (len / 2) as f64;
    let grid: Vec<f64> = (0..len).map(|k| phase + step * (k as f64 - half)).collect();
    (
        Just(grid).prop_shuffle(),
        proptest::collection::vec(-step / 8.0..=step / 8.0, len),
    )
        .prop_map(|(grid, jitter)| grid.into_iter().zip(jitter).map(|(g, j)| g + j).collect())
}

/// Moves every value closer than `margin` to one of `kinks` out to `kink ± margin`
/// (on the side it was on), e.g. to keep clamp inputs off the clamp bounds.
pub fn away_from(mut values: Vec<f64>, kinks: &[f64], margin: f64) -> Vec<f64> {
    for v in &mut values {
        for &k in kinks {
            if (*v - k).abs() < margin {
                *v = if *v >= k { k + margin } else { k - margin };
            }
        }
    }
    values
}

/// A tensor of logical shape `dims` whose stored values come from `pool(n)` (a
/// strategy for `n` values, `n` as [`storage_len`] computes) and whose layout comes
/// from `arrangements`.
pub fn tensor_with<S, A>(
    dims: Vec<usize>,
    pool: impl Fn(usize) -> S,
    arrangements: A,
) -> impl Strategy<Value = Tensor>
where
    S: Strategy<Value = Vec<f64>>,
    A: Strategy<Value = Arrangement>,
{
    let n = storage_len(&dims);
    (pool(n), arrangements)
        .prop_map(move |(pool, arr)| arrange(&dims, arr, &pool).expect("pool sized by storage_len"))
}

/// A tensor with values in `[lo, hi]` and a random arrangement.
pub fn positive_tensor(dims: Vec<usize>, lo: f64, hi: f64) -> impl Strategy<Value = Tensor> {
    tensor_with(dims, move |n| uniform_values(n, lo, hi), arrangement())
}

/// A tensor whose elements are pairwise at least `3 * step / 4` apart (see
/// [`lattice_values`]), arranged without repeated elements.
pub fn distinct_tensor(dims: Vec<usize>, step: f64, phase: f64) -> impl Strategy<Value = Tensor> {
    tensor_with(
        dims,
        move |n| lattice_values(n, step, phase),
        arrangement_without_repeats(),
    )
}

/// A non-empty set of distinct dims of a rank-`rank` tensor (`rank >= 1`), in random
/// order (reductions must not depend on the order dims are listed in).
pub fn dim_set(rank: usize) -> impl Strategy<Value = Vec<usize>> {
    (
        Just((0..rank).collect::<Vec<_>>()).prop_shuffle(),
        1..=rank.max(1),
    )
        .prop_map(|(dims, k)| dims[..k].to_vec())
}

/// A permutation of `0..rank`.
pub fn permutation(rank: usize) -> impl Strategy<Value = Vec<usize>> {
    Just((0..rank).collect::<Vec<_>>()).prop_shuffle()
}
