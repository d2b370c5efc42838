//! Readable figures from plain numbers, for looking inside a network while it trains.
//!
//! This crate knows nothing of tensors or training: every figure takes `f64`/`u64`
//! vectors and strings, checks them, and writes a PNG (or SVG) with a title, axis
//! labels and one legend entry per series or layer. It is what the diagnostics
//! callbacks draw with:
//!
//! | figure | used for |
//! |---|---|
//! | [`LinePlot`] | activation mean/std per layer over batches, the dead chart, loss curves, gradient statistics, update:data ratios with the 1e-3 guide, the LR finder |
//! | [`HistogramHeatmap`] | fastai's `color_dim`: per-layer activation histograms over batches |
//! | [`HistogramOverlay`] | Karpathy's per-layer activation or gradient histograms at one step, with statistics in the legend |
//! | [`BarChart`] | one value per layer: dead fraction, tanh saturation |
//! | [`BinaryImage`] | Karpathy's saturation map: examples x hidden units, white where saturated |
//!
//! # Conventions
//!
//! * **Atomic files.** `save_png`/`save_svg` render into a temporary file in the same
//!   directory and rename it over the target, so a reader never sees half a picture.
//!   No directory is created: a missing one is [`PlotError::MissingDirectory`].
//! * **Bad data is an error, not a panic.** Empty inputs, ragged rows, unequal
//!   lengths, non-finite ranges, image sides outside
//!   [`MIN_SIDE`]`..=`[`MAX_SIDE`] and unwritable paths return a [`PlotError`] that
//!   names the figure, the file and the offending values.
//! * **Undrawable points are skipped, not fatal.** In line data, NaN and infinities
//!   (and values <= 0 on a log axis) are left out and the line is broken there.
//! * **Headless text.** Text is rendered with the DejaVu Sans font shipped in the
//!   crate (through plotters' `ab_glyph` backend), never with system fonts.

mod axis;
mod bar;
mod binary;
mod coalesce;
mod error;
mod font;
mod heatmap;
mod layout;
mod legend;
mod line;
mod number;
mod output;
mod overlay;
mod text;
mod theme;

pub use axis::Scale;
pub use bar::{BarChart, ValueFormat};
pub use binary::BinaryImage;
pub use error::PlotError;
pub use heatmap::{HeatmapPanel, HistogramHeatmap};
pub use line::{LinePlot, LineStyle, Series};
pub use number::format_significant;
pub use output::{MAX_SIDE, MIN_SIDE};
pub use overlay::{Histogram, HistogramOverlay};
