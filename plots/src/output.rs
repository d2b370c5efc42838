//! Writing a figure to disk: size and path checks, then an atomic write.
//!
//! Every figure renders into a temporary file beside the target (same directory, so
//! the final `rename` never crosses a file system) and is renamed over the target only
//! when encoding succeeded. A reader polling the output folder during training
//! therefore sees either the previous picture or the new one, never half a PNG. The
//! crate creates no directories: a missing parent is [`PlotError::MissingDirectory`].

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, DrawingBackend, IntoDrawingArea, SVGBackend};

use crate::error::{Context, DrawResult, PlotError};
use crate::font;

/// Smallest accepted width or height, in pixels. Below this, titles, tick labels and
/// legends no longer fit beside the data.
pub const MIN_SIDE: u32 = 200;

/// Largest accepted width or height, in pixels (a 16k x 16k RGB buffer is 768 MiB).
pub const MAX_SIDE: u32 = 16_384;

/// What every figure type implements so the writers below can save it.
pub(crate) trait Figure {
    /// Data checked and laid out, ready to draw on any backend.
    type Prepared;

    /// Human name of the figure kind for error messages, e.g. `line plot`.
    const KIND: &'static str;

    /// The figure's title, used in error messages.
    fn title(&self) -> &str;

    /// Checks the data and precomputes what drawing needs; errors name the bad values.
    fn prepare(&self, ctx: &Context) -> Result<Self::Prepared, PlotError>;

    /// Draws the prepared figure onto `root`, which covers the whole image.
    fn draw<DB: DrawingBackend>(
        &self,
        prepared: &Self::Prepared,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult;
}

/// Renders `figure` as a `width` x `height` PNG at `path` (always PNG, whatever the
/// extension), atomically.
pub(crate) fn save_png<F: Figure>(
    figure: &F,
    path: &Path,
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    let ctx = Context::new(F::KIND, figure.title(), path.to_path_buf());
    let prepared = prepare(figure, &ctx, width, height)?;
    let temp = TempFile::create(&ctx, "png")?;
    {
        let root = BitMapBackend::new(temp.path(), (width, height)).into_drawing_area();
        figure
            .draw(&prepared, &root)
            .map_err(|failure| ctx.draw(failure))?;
        root.present().map_err(|e| ctx.draw(e.into()))?;
    }
    temp.commit(&ctx)
}

/// Renders `figure` as a `width` x `height` SVG document at `path`, atomically.
pub(crate) fn save_svg<F: Figure>(
    figure: &F,
    path: &Path,
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    let ctx = Context::new(F::KIND, figure.title(), path.to_path_buf());
    let prepared = prepare(figure, &ctx, width, height)?;
    let mut document = String::new();
    {
        let root = SVGBackend::with_string(&mut document, (width, height)).into_drawing_area();
        figure
            .draw(&prepared, &root)
            .map_err(|failure| ctx.draw(failure))?;
        root.present().map_err(|e| ctx.draw(e.into()))?;
    }
    let temp = TempFile::create(&ctx, "svg")?;
    temp.write_all(&ctx, document.as_bytes())?;
    temp.commit(&ctx)
}

/// The checks shared by all writers, in the order a user would want them reported:
/// size, font, destination, then the data itself.
fn prepare<F: Figure>(
    figure: &F,
    ctx: &Context,
    width: u32,
    height: u32,
) -> Result<F::Prepared, PlotError> {
    let side_ok = |side: u32| (MIN_SIDE..=MAX_SIDE).contains(&side);
    if !side_ok(width) || !side_ok(height) {
        return Err(ctx.size(width, height, MIN_SIDE, MAX_SIDE));
    }
    if !font::ensure_registered() {
        return Err(ctx.font());
    }
    destination_dir(ctx)?;
    figure.prepare(ctx)
}

/// The directory the file goes into; it must exist.
fn destination_dir(ctx: &Context) -> Result<PathBuf, PlotError> {
    let path = ctx.path();
    if path.file_name().is_none() {
        return Err(ctx.io(
            "choosing the file name",
            io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"),
        ));
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ctx.missing_dir(dir));
    }
    Ok(dir)
}

/// A temporary file beside the target, removed on drop unless committed.
struct TempFile {
    path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates an empty, uniquely named temporary file next to the target, so that
    /// permission problems surface as [`PlotError::Io`] before any rendering.
    ///
    /// The name ends in `.{extension}` because plotters' PNG encoder picks the format
    /// from the extension.
    fn create(ctx: &Context, extension: &str) -> Result<Self, PlotError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = destination_dir(ctx)?;
        let name = ctx
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(
            ".{name}.{}.{unique}.tmp.{extension}",
            std::process::id()
        ));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ctx.io("creating the temporary file", e))?;
        Ok(Self {
            path,
            committed: false,
        })
    }

    /// Where the temporary file lives.
    fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the temporary file's contents with `bytes`.
    fn write_all(&self, ctx: &Context, bytes: &[u8]) -> Result<(), PlotError> {
        let mut file =
            fs::File::create(&self.path).map_err(|e| ctx.io("opening the temporary file", e))?;
        file.write_all(bytes)
            .map_err(|e| ctx.io("writing the temporary file", e))
    }

    /// Renames the temporary file over the target.
    fn commit(mut self, ctx: &Context) -> Result<(), PlotError> {
        fs::rename(&self.path, ctx.path())
            .map_err(|e| ctx.io("renaming the temporary file over the target", e))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the file may not exist if encoding failed before creating it.
            let _ = fs::remove_file(&self.path);
        }
    }
}
