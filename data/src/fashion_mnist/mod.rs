//! Fashion-MNIST: 28x28 grey-scale images of clothing in 10 classes, 60,000 for
//! training and 10,000 for testing (Xiao, Rasul and Vollgraf, 2017).
//!
//! [`FashionMnist::load`] finds the data (see [`SearchPath`] for the order: an explicit
//! directory, `$FASHION_MNIST_DIR`, Debian's `/usr/share/datasets/fashion-mnist`, the
//! user cache, and finally a class-balanced subset embedded in the binary), decodes it
//! and says where it came from, so a program runs anywhere and prints
//! [`FashionMnist::description`] to tell its user what it trained on.
//!
//! Images come as `f32` tensors of shape `[N, 1, 28, 28]` (batch, channel, height,
//! width: what a conv net takes), scaled from bytes to `[0, 1]` by dividing by 255.
//! An MLP wants `[N, 784]`, a view away (`flatten`), or use the loader's
//! [`Flatten`](crate::loader::Flatten) transform. Labels are `u32` tensors of shape
//! `[N]` holding class indices into [`CLASS_NAMES`].
//!
//! Reading is checked: each file's header must fit the data set (28x28 images, as many
//! labels as images, no more examples than the full split) before its payload is read,
//! so a corrupt or crafted file is refused at the cost of its header
//! ([`Source::read_split`]), and every error names the file.
//!
//! ```
//! use data::fashion_mnist::{FashionMnist, CLASS_NAMES};
//!
//! // The embedded subset needs no files; `FashionMnist::load(None)` would prefer the
//! // full set where one is installed.
//! let ds = FashionMnist::load_embedded()?;
//! println!("{}", ds.description());
//! assert_eq!(ds.train.images.dims(), &[5000, 1, 28, 28]);
//! assert_eq!(ds.test.labels.dims(), &[1000]);
//! assert_eq!(CLASS_NAMES[9], "Ankle boot");
//! # Ok::<(), data::DataError>(())
//! ```

mod discovery;
pub mod subset;

pub use discovery::{SearchPath, Source, ENV_VAR, SYSTEM_DIR};

use std::fmt;
use std::path::Path;

use tensor::{Device, Tensor};

use crate::error::{DataError, Result};
use crate::idx::{IdxArray, IdxReader};

/// The names of the 10 classes, indexed by label.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Number of classes.
pub const NUM_CLASSES: usize = CLASS_NAMES.len();

/// Height and width of an image, in pixels.
pub const IMAGE_SIDE: usize = 28;

/// Size of the full training split.
pub const FULL_TRAIN_LEN: usize = 60_000;

/// Size of the full test split.
pub const FULL_TEST_LEN: usize = 10_000;

/// One of the two splits the data set ships as, each a pair of IDX files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl Split {
    /// Both splits, train first.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// The canonical file name of the images, without the `.gz` suffix.
    pub fn images_file(self) -> &'static str {
        match self {
            Split::Train => "train-images-idx3-ubyte",
            Split::Test => "t10k-images-idx3-ubyte",
        }
    }

    /// The canonical file name of the labels, without the `.gz` suffix.
    pub fn labels_file(self) -> &'static str {
        match self {
            Split::Train => "train-labels-idx1-ubyte",
            Split::Test => "t10k-labels-idx1-ubyte",
        }
    }

    /// The number of examples in the full split ([`FULL_TRAIN_LEN`] or
    /// [`FULL_TEST_LEN`]), which is also the most a file of this split may hold:
    /// partial sets are read, larger ones are refused from their headers.
    pub fn full_len(self) -> usize {
        match self {
            Split::Train => FULL_TRAIN_LEN,
            Split::Test => FULL_TEST_LEN,
        }
    }
}

/// Bytes in one image.
const IMAGE_BYTES: usize = IMAGE_SIDE * IMAGE_SIDE;

/// The error for a file that does not fit the data set's layout.
fn bad_layout(path: &Path, detail: String) -> DataError {
    DataError::InvalidDataset {
        path: path.to_path_buf(),
        detail,
    }
}

/// Checks that image dimensions are `[N, 28, 28]`.
fn check_image_dims(dims: &[usize], path: &Path) -> Result<()> {
    if dims.len() != 3 || dims[1..] != [IMAGE_SIDE, IMAGE_SIDE] {
        return Err(bad_layout(
            path,
            format!("expected images of shape [N, {IMAGE_SIDE}, {IMAGE_SIDE}], found {dims:?}"),
        ));
    }
    Ok(())
}

/// Checks that label dimensions are `[N]` and that `N` matches the image count.
fn check_label_dims(
    dims: &[usize],
    image_count: usize,
    path: &Path,
    images_path: &Path,
) -> Result<()> {
    if dims.len() != 1 {
        return Err(bad_layout(
            path,
            format!("expected labels of shape [N], found {dims:?}"),
        ));
    }
    if dims[0] != image_count {
        return Err(bad_layout(
            path,
            format!(
                "{} labels for {image_count} images in {}",
                dims[0],
                images_path.display()
            ),
        ));
    }
    Ok(())
}

/// Reads one split from its two IDX streams: both headers are checked against the
/// data set's layout (28x28 images, as many labels as images, at most
/// [`Split::full_len`] examples) before either payload is read, so a file with a
/// lying header costs no more than its header.
fn read_split_from(images: IdxReader<'_>, labels: IdxReader<'_>, split: Split) -> Result<RawSplit> {
    let images_path = images.name().to_path_buf();
    let labels_path = labels.name().to_path_buf();
    let image_dims = images.header().dims();
    check_image_dims(image_dims, &images_path)?;
    let n = image_dims[0];
    if n > split.full_len() {
        return Err(bad_layout(
            &images_path,
            format!(
                "{n} images, more than the {} of the full {} split",
                split.full_len(),
                match split {
                    Split::Train => "training",
                    Split::Test => "test",
                }
            ),
        ));
    }
    check_label_dims(labels.header().dims(), n, &labels_path, &images_path)?;
    let images = images.read_payload(n * IMAGE_BYTES)?;
    let labels = labels.read_payload(n)?;
    RawSplit::new(images, labels, &images_path, &labels_path)
}

/// One split as the bytes stored on disk: images `[N, 28, 28]` and labels `[N]`,
/// checked to fit together (same `N`, 28x28 images, labels below 10).
///
/// This is what the subset tool works on; [`RawSplit::to_tensors`] turns it into the
/// training-ready form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSplit {
    images: IdxArray,
    labels: IdxArray,
}

impl RawSplit {
    /// Pairs images and labels, checking shapes and label range. `images_path` and
    /// `labels_path` name the sources in error messages.
    pub fn new(
        images: IdxArray,
        labels: IdxArray,
        images_path: &Path,
        labels_path: &Path,
    ) -> Result<Self> {
        check_image_dims(images.dims(), images_path)?;
        check_label_dims(labels.dims(), images.item_count(), labels_path, images_path)?;
        if let Some((i, &l)) = labels
            .data()
            .iter()
            .enumerate()
            .find(|(_, &l)| usize::from(l) >= NUM_CLASSES)
        {
            return Err(bad_layout(
                labels_path,
                format!("label {l} at index {i} is not a class index (0..{NUM_CLASSES})"),
            ));
        }
        Ok(RawSplit { images, labels })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.item_count()
    }

    /// Whether the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The images, `[N, 28, 28]` bytes.
    pub fn images(&self) -> &IdxArray {
        &self.images
    }

    /// The labels, `[N]` class indices.
    pub fn labels(&self) -> &IdxArray {
        &self.labels
    }

    /// How many examples each class has, indexed by label.
    pub fn class_counts(&self) -> [usize; NUM_CLASSES] {
        let mut counts = [0; NUM_CLASSES];
        for &l in self.labels.data() {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Decodes into tensors on `device`: images `f32 [N, 1, 28, 28]` in `[0, 1]`
    /// (byte / 255) and labels `u32 [N]`.
    pub fn to_tensors(&self, device: &Device) -> Result<LabelledImages> {
        let n = self.len();
        let pixels: Vec<f32> = self
            .images
            .data()
            .iter()
            .map(|&b| f32::from(b) / 255.0)
            .collect();
        let labels: Vec<u32> = self.labels.data().iter().map(|&l| u32::from(l)).collect();
        Ok(LabelledImages {
            images: Tensor::from_vec(pixels, [n, 1, IMAGE_SIDE, IMAGE_SIDE], device)?,
            labels: Tensor::from_vec(labels, [n], device)?,
        })
    }
}

/// Both splits as raw bytes, plus where they came from.
#[derive(Clone, Debug)]
pub struct RawFashionMnist {
    /// The training split.
    pub train: RawSplit,
    /// The test split.
    pub test: RawSplit,
    /// Where the files were found.
    pub source: Source,
}

impl RawFashionMnist {
    /// Reads both splits from `source` without converting them to tensors (see
    /// [`Source::read_split`] for the checks).
    pub fn read(source: Source) -> Result<Self> {
        Ok(RawFashionMnist {
            train: source.read_split(Split::Train)?,
            test: source.read_split(Split::Test)?,
            source,
        })
    }
}

/// One split ready for training: images `f32 [N, 1, 28, 28]` in `[0, 1]` and labels
/// `u32 [N]`.
#[derive(Clone)]
pub struct LabelledImages {
    /// Pixel intensities, `[N, 1, 28, 28]`, byte / 255.
    pub images: Tensor,
    /// Class indices, `[N]`.
    pub labels: Tensor,
}

impl LabelledImages {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.dims().first().copied().unwrap_or(0)
    }

    /// Whether the split has no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for LabelledImages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelledImages")
            .field("images", self.images.shape())
            .field("labels", self.labels.shape())
            .finish()
    }
}

/// Fashion-MNIST's train and test splits as tensors on the CPU, and their source.
#[derive(Clone)]
pub struct FashionMnist {
    /// The training split (60,000 examples in the full set).
    pub train: LabelledImages,
    /// The test split (10,000 examples in the full set), used as the validation set in
    /// the lessons.
    pub test: LabelledImages,
    /// Where the data came from.
    pub source: Source,
}

impl FashionMnist {
    /// Finds and loads the data set in the order documented on [`SearchPath`], with
    /// `explicit` (a directory holding the four IDX files) taking precedence.
    ///
    /// An explicit directory that does not exist or lacks a file is an error; it never
    /// falls back. Otherwise this always succeeds on an intact build, ending with the
    /// embedded subset.
    pub fn load(explicit: Option<&Path>) -> Result<Self> {
        Self::load_from(&SearchPath::from_env(explicit))
    }

    /// Loads from the first source `search` resolves to.
    pub fn load_from(search: &SearchPath) -> Result<Self> {
        Self::load_source(search.resolve()?)
    }

    /// Loads the subset embedded in the binary (see [`subset`]); needs no files.
    pub fn load_embedded() -> Result<Self> {
        Self::load_source(Source::Embedded)
    }

    /// Loads from a given source.
    pub fn load_source(source: Source) -> Result<Self> {
        let raw = RawFashionMnist::read(source)?;
        Ok(FashionMnist {
            train: raw.train.to_tensors(&Device::Cpu)?,
            test: raw.test.to_tensors(&Device::Cpu)?,
            source: raw.source,
        })
    }

    /// The one-line summary programs print, naming the source and the split sizes; for
    /// the embedded subset it also says how to get the full set, e.g.
    ///
    /// `Fashion-MNIST: full set from /usr/share/datasets/fashion-mnist (60000 train, 10000 test)`
    pub fn description(&self) -> String {
        describe(&self.source, self.train.len(), self.test.len())
    }
}

impl fmt::Debug for FashionMnist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FashionMnist")
            .field("train", &self.train)
            .field("test", &self.test)
            .field("source", &self.source)
            .finish()
    }
}

/// The text of [`FashionMnist::description`].
fn describe(source: &Source, train: usize, test: usize) -> String {
    match source {
        Source::Embedded => format!(
            "Fashion-MNIST: embedded subset ({train} train, {test} test); for the full set: \
             apt-get install dataset-fashion-mnist, or set {ENV_VAR}"
        ),
        _ => {
            let kind = if (train, test) == (FULL_TRAIN_LEN, FULL_TEST_LEN) {
                "full set"
            } else {
                "partial set"
            };
            format!("Fashion-MNIST: {kind} from {source} ({train} train, {test} test)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn descriptions_name_the_source_and_sizes() {
        let system = Source::System(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        assert_eq!(
            describe(&system, 60_000, 10_000),
            "Fashion-MNIST: full set from /usr/share/datasets/fashion-mnist (60000 train, 10000 test)"
        );
        let env = Source::EnvVar(PathBuf::from("/d"));
        assert_eq!(
            describe(&env, 10, 2),
            "Fashion-MNIST: partial set from /d (via FASHION_MNIST_DIR) (10 train, 2 test)"
        );
        let embedded = describe(&Source::Embedded, 5000, 1000);
        assert!(embedded.starts_with("Fashion-MNIST: embedded subset (5000 train, 1000 test)"));
        assert!(embedded.contains("apt-get install dataset-fashion-mnist"));
        assert!(embedded.contains("FASHION_MNIST_DIR"));
    }

    #[test]
    fn raw_split_rejects_mismatched_counts_and_bad_labels() {
        let images = IdxArray::new(vec![2, 28, 28], vec![0; 2 * 784]).unwrap();
        let (ip, lp) = (Path::new("imgs"), Path::new("lbls"));
        let three = IdxArray::new(vec![3], vec![0, 1, 2]).unwrap();
        let err = RawSplit::new(images.clone(), three, ip, lp).unwrap_err();
        assert!(
            err.to_string().starts_with("lbls: 3 labels for 2 images"),
            "{err}"
        );
        let bad_label = IdxArray::new(vec![2], vec![0, 10]).unwrap();
        let err = RawSplit::new(images.clone(), bad_label, ip, lp).unwrap_err();
        assert!(err.to_string().contains("label 10 at index 1"), "{err}");
        let small = IdxArray::new(vec![1, 4, 4], vec![0; 16]).unwrap();
        let ok_labels = IdxArray::new(vec![1], vec![3]).unwrap();
        let err = RawSplit::new(small, ok_labels, ip, lp).unwrap_err();
        assert!(
            err.to_string().starts_with("imgs: expected images"),
            "{err}"
        );
    }
}
