//! Where Fashion-MNIST is looked for, and reading a split from there.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{read_split_from, subset, RawSplit, Split};
use crate::error::{DataError, Result};
use crate::idx::IdxReader;

/// The environment variable naming a directory that holds the four IDX files.
pub const ENV_VAR: &str = "FASHION_MNIST_DIR";

/// Where Debian's `dataset-fashion-mnist` package installs the data set.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Name of the folder inside the user cache directory.
const CACHE_SUBDIR: &str = "fashion-mnist";

/// Where a data set was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A directory the caller passed explicitly.
    Explicit(PathBuf),
    /// The directory named by `$FASHION_MNIST_DIR`.
    EnvVar(PathBuf),
    /// The system-wide install ([`SYSTEM_DIR`]).
    System(PathBuf),
    /// The user cache (`$XDG_CACHE_HOME/fashion-mnist` or `~/.cache/fashion-mnist`).
    UserCache(PathBuf),
    /// The class-balanced subset compiled into the binary (see
    /// [`subset`](super::subset)).
    Embedded,
}

impl Source {
    /// The directory the files live in, or `None` for the embedded subset.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            Source::Explicit(p) | Source::EnvVar(p) | Source::System(p) | Source::UserCache(p) => {
                Some(p)
            }
            Source::Embedded => None,
        }
    }

    /// Reads one split (images and labels) from this source.
    ///
    /// Both headers are read and checked against the data set's layout before either
    /// payload: images must be `[N, 28, 28]`, labels `[N]` with the same `N`, and `N`
    /// at most the full split's size ([`Split::full_len`]: 60,000 for training,
    /// 10,000 for test; smaller partial sets are fine). A file that breaks one of
    /// these is an [`InvalidDataset`](DataError::InvalidDataset) error naming it,
    /// raised without reading its payload, so memory stays bounded by the real data
    /// set's size whatever a header claims. Labels must also be class indices.
    pub fn read_split(&self, split: Split) -> Result<RawSplit> {
        match self.dir() {
            Some(dir) => {
                let (images_path, labels_path) =
                    split_files(dir, split).map_err(|missing| DataError::MissingDataset {
                        path: dir.to_path_buf(),
                        detail: format!("missing {}", missing.join(" and ")),
                    })?;
                let images = IdxReader::open(&images_path)?;
                let labels = IdxReader::open(&labels_path)?;
                read_split_from(images, labels, split)
            }
            None => {
                let (images_name, images_bytes) = subset::embedded_images(split);
                let (labels_name, labels_bytes) = subset::embedded_labels(split);
                let images = IdxReader::from_bytes(images_bytes, Path::new(images_name))?;
                let labels = IdxReader::from_bytes(labels_bytes, Path::new(labels_name))?;
                read_split_from(images, labels, split)
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Explicit(p) | Source::System(p) => write!(f, "{}", p.display()),
            Source::EnvVar(p) => write!(f, "{} (via {ENV_VAR})", p.display()),
            Source::UserCache(p) => write!(f, "{} (user cache)", p.display()),
            Source::Embedded => f.write_str("the embedded subset"),
        }
    }
}

/// The paths of a split's images and labels in `dir`, each as `name.gz` or raw `name`
/// (the gzip file preferred); or the names of the files that are missing.
fn split_files(dir: &Path, split: Split) -> std::result::Result<(PathBuf, PathBuf), Vec<String>> {
    let find = |stem: &str| {
        let gz = dir.join(format!("{stem}.gz"));
        let raw = dir.join(stem);
        if gz.is_file() {
            Ok(gz)
        } else if raw.is_file() {
            Ok(raw)
        } else {
            Err(format!("{stem}[.gz]"))
        }
    };
    match (find(split.images_file()), find(split.labels_file())) {
        (Ok(i), Ok(l)) => Ok((i, l)),
        (i, l) => Err([i.err(), l.err()].into_iter().flatten().collect()),
    }
}

/// The files of both splits missing from `dir` (empty when the data set is complete).
fn missing_files(dir: &Path) -> Vec<String> {
    Split::ALL
        .into_iter()
        .filter_map(|s| split_files(dir, s).err())
        .flatten()
        .collect()
}

/// The places Fashion-MNIST is looked for, in order. Build it with
/// [`SearchPath::from_env`] (what [`FashionMnist::load`](super::FashionMnist::load)
/// does) or set the fields yourself, e.g. in tests, to keep the environment out.
///
/// [`resolve`](SearchPath::resolve) takes the first that applies:
///
/// 1. `explicit`: a directory the caller named. If it does not exist or lacks a file
///    the result is an error: an explicit request never silently falls back.
/// 2. `env_dir`: `$FASHION_MNIST_DIR`.
/// 3. `system_dir`: [`SYSTEM_DIR`], installed by `apt-get install dataset-fashion-mnist`.
/// 4. `cache_dir`: `$XDG_CACHE_HOME/fashion-mnist`, else `$HOME/.cache/fashion-mnist`.
/// 5. The embedded subset, if `allow_embedded`.
///
/// Steps 2 to 4 are skipped when the directory is missing or lacks one of the four
/// files (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each gzipped with a `.gz` suffix or raw). A directory
/// that has them all is chosen even if a file turns out to be corrupt, so that a
/// broken install is reported rather than hidden behind the subset.
///
/// ```
/// use data::fashion_mnist::{SearchPath, Source};
///
/// let search = SearchPath { allow_embedded: true, ..SearchPath::default() };
/// assert_eq!(search.resolve()?, Source::Embedded);
///
/// let bad = SearchPath { explicit: Some("/no/such/dir".into()), ..search };
/// assert!(bad.resolve().unwrap_err().to_string().contains("/no/such/dir"));
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchPath {
    /// A directory given by the caller (a command-line argument).
    pub explicit: Option<PathBuf>,
    /// The directory from the environment variable [`ENV_VAR`].
    pub env_dir: Option<PathBuf>,
    /// The system-wide install directory.
    pub system_dir: Option<PathBuf>,
    /// The per-user cache directory.
    pub cache_dir: Option<PathBuf>,
    /// Whether to fall back to the embedded subset. Programs that need the full set
    /// (benchmarks) turn this off and get an error instead.
    pub allow_embedded: bool,
}

impl SearchPath {
    /// The standard search: `explicit`, then `$FASHION_MNIST_DIR`, [`SYSTEM_DIR`], the
    /// user cache, and the embedded subset. Empty environment variables count as
    /// unset, and a relative `$XDG_CACHE_HOME` is ignored (as the XDG spec says).
    pub fn from_env(explicit: Option<&Path>) -> Self {
        let var = |name: &str| {
            env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let cache_dir = var("XDG_CACHE_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| var("HOME").map(|home| home.join(".cache")))
            .map(|cache| cache.join(CACHE_SUBDIR));
        SearchPath {
            explicit: explicit.map(Path::to_path_buf),
            env_dir: var(ENV_VAR),
            system_dir: Some(PathBuf::from(SYSTEM_DIR)),
            cache_dir,
            allow_embedded: true,
        }
    }

    /// The first source that applies (see the type's documentation).
    pub fn resolve(&self) -> Result<Source> {
        if let Some(dir) = &self.explicit {
            if !dir.is_dir() {
                return Err(DataError::MissingDataset {
                    path: dir.clone(),
                    detail: "the Fashion-MNIST directory given does not exist or is not a \
                             directory"
                        .into(),
                });
            }
            let missing = missing_files(dir);
            if !missing.is_empty() {
                return Err(DataError::MissingDataset {
                    path: dir.clone(),
                    detail: format!(
                        "the Fashion-MNIST directory given lacks {}",
                        missing.join(", ")
                    ),
                });
            }
            return Ok(Source::Explicit(dir.clone()));
        }
        let candidates = [
            (&self.env_dir, Source::EnvVar as fn(PathBuf) -> Source),
            (&self.system_dir, Source::System),
            (&self.cache_dir, Source::UserCache),
        ];
        for (dir, make) in candidates {
            if let Some(dir) = dir.as_ref().filter(|d| d.is_dir()) {
                if missing_files(dir).is_empty() {
                    return Ok(make(dir.clone()));
                }
            }
        }
        if self.allow_embedded {
            return Ok(Source::Embedded);
        }
        let tried: Vec<String> = [&self.env_dir, &self.system_dir, &self.cache_dir]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        Err(DataError::MissingDataset {
            path: PathBuf::from("Fashion-MNIST"),
            detail: format!(
                "no complete data set found (looked in: {}) and the embedded subset is \
                 not allowed; apt-get install dataset-fashion-mnist, or set {ENV_VAR}",
                if tried.is_empty() {
                    "nowhere".to_string()
                } else {
                    tried.join(", ")
                }
            ),
        })
    }
}
