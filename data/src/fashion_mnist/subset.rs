//! The class-balanced subset of Fashion-MNIST that ships inside the repository and is
//! embedded in every binary, so that the programs and tests run on a machine without
//! the data set.
//!
//! How it is made (by `cargo run --release -p data --bin make_fashion_subset`): from
//! each full split, keep the first [`TRAIN_PER_CLASS`] (train) or [`TEST_PER_CLASS`]
//! (test) images of every class, in file order, preserving that order. The training
//! subset therefore comes only from the full training split and the test subset only
//! from the full test split: 5,000 + 1,000 images, 500 and 100 per class. The files
//! live in `data/assets/fashion-mnist-subset/` as gzipped IDX (about 2.7 MB) and are
//! written with a fixed gzip header, so rerunning the tool reproduces them byte for byte.

use super::{RawSplit, Split, NUM_CLASSES};
use crate::error::{DataError, Result};
use crate::idx::IdxArray;

/// Training images kept per class.
pub const TRAIN_PER_CLASS: usize = 500;

/// Test images kept per class.
pub const TEST_PER_CLASS: usize = 100;

/// The directory of the subset files, relative to the `data` crate's root.
pub const ASSET_DIR: &str = "assets/fashion-mnist-subset";

/// Images kept per class for `split`.
pub fn per_class(split: Split) -> usize {
    match split {
        Split::Train => TRAIN_PER_CLASS,
        Split::Test => TEST_PER_CLASS,
    }
}

/// `(name, bytes)` of an embedded subset file: the bytes compiled into the binary, and
/// `<embedded>/file` to stand for its path in error messages (it has none on disk).
macro_rules! embedded {
    ($file:literal) => {
        (
            concat!("<embedded>/", $file),
            include_bytes!(concat!("../../assets/fashion-mnist-subset/", $file)).as_slice(),
        )
    };
}

/// The embedded images of `split`: (name for messages, gzipped IDX bytes).
pub(crate) fn embedded_images(split: Split) -> (&'static str, &'static [u8]) {
    match split {
        Split::Train => embedded!("train-images-idx3-ubyte.gz"),
        Split::Test => embedded!("t10k-images-idx3-ubyte.gz"),
    }
}

/// The embedded labels of `split`: (name for messages, gzipped IDX bytes).
pub(crate) fn embedded_labels(split: Split) -> (&'static str, &'static [u8]) {
    match split {
        Split::Train => embedded!("train-labels-idx1-ubyte.gz"),
        Split::Test => embedded!("t10k-labels-idx1-ubyte.gz"),
    }
}

/// Keeps the first `per_class` examples of every class, in file order.
///
/// The result is exactly balanced: if some class has fewer than `per_class` examples
/// this is an error rather than a silently lopsided subset.
///
/// ```
/// use data::fashion_mnist::{subset::class_balanced, RawSplit};
/// use data::idx::IdxArray;
/// use std::path::Path;
///
/// // Twenty images with labels 0, 1, .., 9, 0, 1, .., 9; image i is filled with byte i.
/// let labels: Vec<u8> = (0..20).map(|i| i % 10).collect();
/// let images = IdxArray::new(vec![20, 28, 28], (0..20u8).flat_map(|i| [i; 784]).collect())?;
/// let split = RawSplit::new(
///     images,
///     IdxArray::new(vec![20], labels)?,
///     Path::new("images"),
///     Path::new("labels"),
/// )?;
/// let sub = class_balanced(&split, 1)?;
/// assert_eq!(sub.class_counts(), [1; 10]);
/// assert_eq!(sub.images().item(9).unwrap()[0], 9); // the first of each class, in order
/// assert!(class_balanced(&split, 3).is_err()); // only 2 per class exist
/// # Ok::<(), data::DataError>(())
/// ```
pub fn class_balanced(split: &RawSplit, per_class: usize) -> Result<RawSplit> {
    let counts = split.class_counts();
    if let Some((class, &have)) = counts.iter().enumerate().find(|(_, &c)| c < per_class) {
        return Err(DataError::invalid(
            "class_balanced",
            format!("class {class} has {have} examples, fewer than the {per_class} asked for"),
        ));
    }
    let item_len = split.images().item_len();
    let mut taken = [0usize; NUM_CLASSES];
    let mut images = Vec::with_capacity(per_class * NUM_CLASSES * item_len);
    let mut labels = Vec::with_capacity(per_class * NUM_CLASSES);
    let pairs = split
        .images()
        .data()
        .chunks_exact(item_len)
        .zip(split.labels().data());
    for (image, &label) in pairs {
        let slot = &mut taken[usize::from(label)];
        if *slot < per_class {
            *slot += 1;
            images.extend_from_slice(image);
            labels.push(label);
        }
    }
    let mut image_dims = split.images().dims().to_vec();
    image_dims[0] = labels.len();
    let n = labels.len();
    let name = std::path::Path::new("<class-balanced subset>");
    RawSplit::new(
        IdxArray::new(image_dims, images)?,
        IdxArray::new(vec![n], labels)?,
        name,
        name,
    )
}
