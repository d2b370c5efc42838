//! The one error type of the crate.
//!
//! Every failure of a `save_*` call names the figure (its kind and title) and the file
//! it was writing, plus the values that were wrong, so a diagnostics run that writes
//! twenty figures says exactly which one failed and why.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

/// Why a figure could not be written.
///
/// `figure` reads like `line plot "Loss"`; `path` is the file that was asked for.
/// Nothing is written when the data is rejected, and a failed write never leaves a
/// half-written file at `path`.
#[derive(Debug, Error)]
pub enum PlotError {
    /// There is nothing to draw: no series, no panels, no bars, or only points that
    /// cannot be shown (non-finite, or non-positive on a log axis).
    #[error("{figure} -> {}: nothing to draw: {what}", path.display())]
    Empty {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// What was empty, e.g. `no series` or `panel "conv1" has no histograms`.
        what: String,
    },

    /// Two lengths that must agree do not, e.g. a series with more x than y values or a
    /// ragged histogram heat map.
    #[error("{figure} -> {}: {what}: expected {expected}, found {found}", path.display())]
    LengthMismatch {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// Which length, e.g. `panel "conv1", histogram 3: number of bins`.
        what: String,
        /// The length required by the rest of the data.
        expected: usize,
        /// The length found.
        found: usize,
    },

    /// A value range is not finite or not increasing (`lo < hi` is required).
    #[error("{figure} -> {}: {what} [{lo}, {hi}] is not a finite range with lo < hi", path.display())]
    InvalidRange {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// Which range, e.g. `histogram range of panel "conv1"`.
        what: String,
        /// Lower end as given.
        lo: f64,
        /// Upper end as given.
        hi: f64,
    },

    /// A single value the caller placed on the figure (a guide line, a marker, an
    /// explicit bin edge) cannot be drawn.
    #[error("{figure} -> {}: {what} is {value}: {why}", path.display())]
    InvalidValue {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// Which value, e.g. `guide "1e-3"`.
        what: String,
        /// The value as given.
        value: f64,
        /// What was expected of it.
        why: &'static str,
    },

    /// The requested image size is outside what the crate can lay out readably.
    #[error(
        "{figure} -> {}: image size {width}x{height} is outside {min}..={max} pixels per side",
        path.display()
    )]
    InvalidSize {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// Requested width in pixels.
        width: u32,
        /// Requested height in pixels.
        height: u32,
        /// Smallest accepted side.
        min: u32,
        /// Largest accepted side.
        max: u32,
    },

    /// The directory that should hold the file does not exist. The crate never creates
    /// directories: a typo in an output folder should fail loudly, not scatter files.
    #[error("{figure} -> {}: directory {} does not exist (plots creates no directories)", path.display(), dir.display())]
    MissingDirectory {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// The missing directory.
        dir: PathBuf,
    },

    /// Reading or writing the file system failed (permissions, full disk, a directory
    /// where the file should be...).
    #[error("{figure} -> {}: {action} failed: {source}", path.display())]
    Io {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// What was being done, e.g. `writing the temporary file`.
        action: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The drawing library reported an error while rendering or encoding.
    #[error("{figure} -> {}: drawing failed: {message}", path.display())]
    Draw {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
        /// The drawing library's message.
        message: String,
    },

    /// The bundled DejaVu Sans font could not be parsed (a corrupted build).
    #[error("{figure} -> {}: the bundled DejaVu Sans font could not be loaded", path.display())]
    Font {
        /// Kind and title of the figure.
        figure: String,
        /// The file that was to be written.
        path: PathBuf,
    },
}

/// Names the figure and file being written, so checks can build a [`PlotError`]
/// without repeating them.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    figure: String,
    path: PathBuf,
}

impl Context {
    /// A context for the figure of `kind` (e.g. `line plot`) titled `title`.
    pub(crate) fn new(kind: &str, title: &str, path: PathBuf) -> Self {
        Self {
            figure: format!("{kind} {title:?}"),
            path,
        }
    }

    /// The file being written.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// [`PlotError::Empty`].
    pub(crate) fn empty(&self, what: impl Into<String>) -> PlotError {
        PlotError::Empty {
            figure: self.figure.clone(),
            path: self.path.clone(),
            what: what.into(),
        }
    }

    /// [`PlotError::LengthMismatch`].
    pub(crate) fn mismatch(
        &self,
        what: impl Into<String>,
        expected: usize,
        found: usize,
    ) -> PlotError {
        PlotError::LengthMismatch {
            figure: self.figure.clone(),
            path: self.path.clone(),
            what: what.into(),
            expected,
            found,
        }
    }

    /// [`PlotError::InvalidRange`].
    pub(crate) fn range(&self, what: impl Into<String>, lo: f64, hi: f64) -> PlotError {
        PlotError::InvalidRange {
            figure: self.figure.clone(),
            path: self.path.clone(),
            what: what.into(),
            lo,
            hi,
        }
    }

    /// [`PlotError::InvalidValue`].
    pub(crate) fn value(
        &self,
        what: impl Into<String>,
        value: f64,
        why: &'static str,
    ) -> PlotError {
        PlotError::InvalidValue {
            figure: self.figure.clone(),
            path: self.path.clone(),
            what: what.into(),
            value,
            why,
        }
    }

    /// [`PlotError::InvalidSize`].
    pub(crate) fn size(&self, width: u32, height: u32, min: u32, max: u32) -> PlotError {
        PlotError::InvalidSize {
            figure: self.figure.clone(),
            path: self.path.clone(),
            width,
            height,
            min,
            max,
        }
    }

    /// [`PlotError::MissingDirectory`].
    pub(crate) fn missing_dir(&self, dir: PathBuf) -> PlotError {
        PlotError::MissingDirectory {
            figure: self.figure.clone(),
            path: self.path.clone(),
            dir,
        }
    }

    /// [`PlotError::Io`].
    pub(crate) fn io(&self, action: &'static str, source: io::Error) -> PlotError {
        PlotError::Io {
            figure: self.figure.clone(),
            path: self.path.clone(),
            action,
            source,
        }
    }

    /// [`PlotError::Draw`].
    pub(crate) fn draw(&self, failure: DrawFailure) -> PlotError {
        PlotError::Draw {
            figure: self.figure.clone(),
            path: self.path.clone(),
            message: failure.0,
        }
    }

    /// [`PlotError::Font`].
    pub(crate) fn font(&self) -> PlotError {
        PlotError::Font {
            figure: self.figure.clone(),
            path: self.path.clone(),
        }
    }
}

/// A drawing-library error reduced to its message, so drawing code can use `?` on
/// plotters' backend-generic error types.
#[derive(Debug)]
pub(crate) struct DrawFailure(pub(crate) String);

impl<E: std::error::Error + Send + Sync> From<plotters::drawing::DrawingAreaErrorKind<E>>
    for DrawFailure
{
    fn from(err: plotters::drawing::DrawingAreaErrorKind<E>) -> Self {
        Self(err.to_string())
    }
}

/// Result of drawing onto a backend.
pub(crate) type DrawResult = Result<(), DrawFailure>;
