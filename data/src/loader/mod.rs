//! Mini-batches over a pair of tensors `(x, y)`, with seeded shuffling and per-batch
//! transforms.
//!
//! A [`DataLoader`] holds the full tensors (cheap: a tensor is an `Arc` to its storage)
//! and, for each batch, copies the selected rows into fresh buffers that become the
//! batch tensors, then runs the [`Transform`]s. Shuffling draws a permutation per
//! epoch from a generator seeded by `(seed, epoch)`: the same seed replays the same
//! batches, each epoch sees a different order, and an epoch can be replayed alone
//! (resuming a run at epoch 7 needs no replay of epochs 0 to 6).
//!
//! ```
//! use data::loader::{DataLoader, Normalize};
//! use tensor::{Device, Tensor};
//!
//! let dev = Device::Cpu;
//! let x = Tensor::from_vec((0..20).map(|v| v as f32).collect(), [10, 2], &dev)?;
//! let y = Tensor::from_vec((0..10u32).collect(), [10], &dev)?;
//! let norm = Normalize::fit(&x)?; // the lesson's input normalisation
//! let loader = DataLoader::new(&x, &y, 4)?
//!     .shuffle(42)
//!     .drop_last(true)
//!     .transform(norm);
//! assert_eq!(loader.num_batches(), 2); // 10 examples: two full batches of 4
//! for batch in loader.epoch(0) {
//!     let (xb, yb) = batch?;
//!     assert_eq!(xb.dims(), &[4, 2]);
//!     assert_eq!(yb.dims(), &[4]);
//! }
//! # Ok::<(), data::DataError>(())
//! ```

mod transform;

pub use transform::{Flatten, Normalize, Transform};

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use tensor::{DType, Device, Element, Shape, Tensor};

use crate::error::{DataError, Result};

/// Batches over `(x, y)`: inputs and targets that share their first dimension, the
/// example index. Configure with the chained methods, then iterate
/// [`epoch`](DataLoader::epoch).
#[derive(Clone)]
pub struct DataLoader {
    x: Tensor,
    y: Tensor,
    len: usize,
    x_row: usize,
    y_row: usize,
    batch_size: usize,
    seed: Option<u64>,
    drop_last: bool,
    transforms: Vec<Arc<dyn Transform>>,
    device: Device,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("x", &self.x.shape())
            .field("y", &self.y.shape())
            .field("batch_size", &self.batch_size)
            .field("seed", &self.seed)
            .field("drop_last", &self.drop_last)
            .field("transforms", &self.transforms.len())
            .field("device", &self.device)
            .finish()
    }
}

impl DataLoader {
    /// A loader yielding batches of `batch_size` examples in order (no shuffling, last
    /// batch kept even if short, no transforms, batches on the CPU).
    ///
    /// `x` and `y` must have rank at least 1 and the same first dimension; they are
    /// brought to the CPU and made contiguous once, here (a no-op for freshly loaded
    /// data).
    pub fn new(x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Self> {
        const OP: &str = "DataLoader::new";
        if batch_size == 0 {
            return Err(DataError::invalid(OP, "batch size must be at least 1"));
        }
        let (Some(&nx), Some(&ny)) = (x.dims().first(), y.dims().first()) else {
            return Err(DataError::invalid(
                OP,
                format!(
                    "x and y need a leading example dimension, got shapes {} and {}",
                    x.shape(),
                    y.shape()
                ),
            ));
        };
        if nx != ny {
            return Err(DataError::invalid(
                OP,
                format!(
                    "x has {nx} examples but y has {ny} (shapes {} and {})",
                    x.shape(),
                    y.shape()
                ),
            ));
        }
        let host = |t: &Tensor| -> Result<Tensor> { Ok(t.to_device(&Device::Cpu)?.contiguous()?) };
        Ok(DataLoader {
            x: host(x)?,
            y: host(y)?,
            len: nx,
            x_row: x.dims()[1..].iter().product(),
            y_row: y.dims()[1..].iter().product(),
            batch_size,
            seed: None,
            drop_last: false,
            transforms: Vec::new(),
            device: Device::Cpu,
        })
    }

    /// Shuffles every epoch with a permutation drawn from a generator seeded by
    /// `(seed, epoch)`.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Whether to drop the last batch of an epoch when it has fewer than `batch_size`
    /// examples (useful with BatchNorm, whose statistics are noisy on tiny batches).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Appends a transform applied to every batch, after the earlier ones.
    pub fn transform(mut self, transform: impl Transform + 'static) -> Self {
        self.transforms.push(Arc::new(transform));
        self
    }

    /// Creates the batch tensors on `device` (the transforms then run there).
    pub fn on_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Number of examples in the data set.
    pub fn num_examples(&self) -> usize {
        self.len
    }

    /// The configured batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches in one epoch: `ceil(n / batch_size)`, or `floor` with
    /// [`drop_last`](DataLoader::drop_last).
    pub fn num_batches(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }

    /// The batches of epoch `epoch`, in that epoch's order. Each item is `(x, y)` with
    /// the first dimension the batch size (smaller for a short last batch), or the error
    /// of a failing transform.
    pub fn epoch(&self, epoch: u64) -> Batches<'_> {
        let order = self.seed.map(|seed| {
            let mut order: Vec<usize> = (0..self.len).collect();
            order.shuffle(&mut StdRng::seed_from_u64(epoch_seed(seed, epoch)));
            order
        });
        Batches {
            loader: self,
            order,
            next: 0,
            end: self.num_batches(),
        }
    }

    /// Builds the batch of the examples at indices `rows` (already mapped through the
    /// epoch's permutation) and runs the transforms on it.
    fn make_batch(&self, rows: &[usize]) -> Result<(Tensor, Tensor)> {
        let mut x_dims = self.x.dims().to_vec();
        x_dims[0] = rows.len();
        let mut y_dims = self.y.dims().to_vec();
        y_dims[0] = rows.len();
        let mut x = gather_rows(&self.x, rows, self.x_row, x_dims, &self.device)?;
        let mut y = gather_rows(&self.y, rows, self.y_row, y_dims, &self.device)?;
        let mut transforms = self.transforms.iter();
        if let Some(first) = transforms.next() {
            // The batch tensors were just built from fresh buffers: nothing shares them.
            (x, y) = first.apply_to_fresh(x, y)?;
        }
        for t in transforms {
            (x, y) = t.apply(x, y)?;
        }
        Ok((x, y))
    }
}

/// The generator seed of epoch `epoch` under `seed`: two rounds of SplitMix64, a
/// bijection per round, so different epochs of one seed never share a stream.
fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    splitmix64(splitmix64(seed) ^ epoch)
}

/// One step of SplitMix64 (Steele, Lea and Flood, 2014): a fast, well-mixing bijection
/// on `u64`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Copies rows `rows` (each `row_len` elements) of the contiguous CPU tensor `t` into a
/// new tensor of shape `dims` on `device`.
fn gather_rows(
    t: &Tensor,
    rows: &[usize],
    row_len: usize,
    dims: Vec<usize>,
    device: &Device,
) -> Result<Tensor> {
    // The batch's buffer comes from the tensor pool (fallibly), so the buffers of one
    // epoch's batches are reused by the next instead of piling up.
    fn gather<T: Element>(
        t: &Tensor,
        rows: &[usize],
        row_len: usize,
        shape: &Shape,
    ) -> Result<Vec<T>> {
        let mut out = tensor::pool::try_buffer::<T>("DataLoader batch", shape)?;
        if row_len > 0 {
            t.with_slice(|data: &[T]| {
                for (dst, &r) in out.chunks_exact_mut(row_len).zip(rows) {
                    dst.copy_from_slice(&data[r * row_len..(r + 1) * row_len]);
                }
            })?;
        }
        Ok(out)
    }
    let shape = Shape::from(dims);
    Ok(match t.dtype() {
        DType::F32 => Tensor::from_vec(gather::<f32>(t, rows, row_len, &shape)?, shape, device)?,
        DType::F64 => Tensor::from_vec(gather::<f64>(t, rows, row_len, &shape)?, shape, device)?,
        DType::U32 => Tensor::from_vec(gather::<u32>(t, rows, row_len, &shape)?, shape, device)?,
    })
}

/// The batches of one epoch, from [`DataLoader::epoch`].
#[derive(Debug)]
pub struct Batches<'a> {
    loader: &'a DataLoader,
    /// The epoch's permutation, or `None` for the natural order.
    order: Option<Vec<usize>>,
    next: usize,
    end: usize,
}

impl Iterator for Batches<'_> {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let l = self.loader;
        let start = self.next * l.batch_size;
        let stop = (start + l.batch_size).min(l.len);
        self.next += 1;
        Some(match &self.order {
            Some(order) => l.make_batch(&order[start..stop]),
            None => l.make_batch(&(start..stop).collect::<Vec<_>>()),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seeds_differ_across_epochs_and_seeds() {
        let seeds: std::collections::HashSet<u64> = (0..4)
            .flat_map(|s| (0..100).map(move |e| epoch_seed(s, e)))
            .collect();
        assert_eq!(seeds.len(), 400);
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference SplitMix64 generator seeded with 0 (state
        // advanced by the golden gamma before each output).
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(0x9e37_79b9_7f4a_7c15), 0x6e78_9e6a_a1b9_65f4);
    }
}
