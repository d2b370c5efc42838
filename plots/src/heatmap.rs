//! The histogram heat map (fastai's `color_dim`): for each layer, one column per
//! recorded batch, one row per histogram bin, colour = log1p(count) through viridis.
//!
//! A healthy layer shows a band that stays wide; a layer whose activations collapse to
//! zero shows a bright bottom row and a dark rest; a rise-and-crash shows as a band that
//! fans out and falls back to the bottom. log1p keeps the huge zero bin from washing
//! out everything else.

use std::path::Path;

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::element::{Rectangle, Text};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform, RGBColor};

use crate::axis::{valid_range, Coord, Scale};
use crate::coalesce::groups;
use crate::error::{Context, DrawResult, PlotError};
use crate::layout::{self, half, Area};
use crate::output::{self, Figure};
use crate::text;
use crate::theme::{Theme, BACKGROUND, INK};

/// One layer's histograms over time: one histogram per recorded batch, all with the
/// same number of bins spanning `lo..hi`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapPanel {
    name: String,
    lo: f64,
    hi: f64,
    histograms: Vec<Vec<u64>>,
}

impl HeatmapPanel {
    /// A panel titled `name` (e.g. the layer path) whose histograms cover values
    /// `lo..hi` in equal bins; `histograms[i]` is the histogram of the i-th recorded
    /// batch.
    pub fn new(name: impl Into<String>, lo: f64, hi: f64, histograms: Vec<Vec<u64>>) -> Self {
        Self {
            name: name.into(),
            lo,
            hi,
            histograms,
        }
    }

    /// The panel title.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One heat-map panel per layer, arranged in a grid.
///
/// Colours are scaled per panel (the brightest cell of each panel is yellow), as in
/// fastai, so a layer with few activations is as readable as one with many. When a
/// panel has more batches (or bins) than its plot has pixels, neighbouring batches
/// (bins) are merged and their mean count is shown. 1200 x 800 suits six panels.
///
/// ```
/// use plots::{HeatmapPanel, HistogramHeatmap};
///
/// let dir = std::env::temp_dir().join(format!("plots-doc-heatmap-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// // 30 batches of a 40-bin histogram over [-3, 3] whose mass drifts upward.
/// let histograms: Vec<Vec<u64>> = (0..30u64)
///     .map(|b| (0..40u64).map(|bin| if bin.abs_diff(10 + b / 2) < 4 { 100 } else { 1 }).collect())
///     .collect();
/// HistogramHeatmap::new("Activation histograms", "batch", "activation")
///     .panel(HeatmapPanel::new("layers.0 (ReLU)", -3.0, 3.0, histograms))
///     .save_png(dir.join("color_dim.png"), 800, 500)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramHeatmap {
    title: String,
    x_label: String,
    y_label: String,
    panels: Vec<HeatmapPanel>,
    columns: usize,
    first_batch: f64,
    batch_step: f64,
}

impl HistogramHeatmap {
    /// An empty figure; `x_label` describes the batch axis, `y_label` the value axis.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            panels: Vec::new(),
            columns: 0,
            first_batch: 0.0,
            batch_step: 1.0,
        }
    }

    /// Adds a panel (builder style).
    pub fn panel(mut self, panel: HeatmapPanel) -> Self {
        self.panels.push(panel);
        self
    }

    /// Adds a panel (for loops over layers).
    pub fn push(&mut self, panel: HeatmapPanel) {
        self.panels.push(panel);
    }

    /// Number of panel columns; 0 (the default) picks 1 for one panel, 2 for up to
    /// four, 3 beyond. More columns than panels are reduced to the number of panels.
    pub fn columns(mut self, columns: usize) -> Self {
        self.columns = columns;
        self
    }

    /// Labels the x axis with batch numbers: histogram `i` is batch
    /// `first + i * step` (e.g. `(0.0, 10.0)` when every tenth batch was recorded).
    /// Default `(0.0, 1.0)`. Both must be finite and `step > 0`, or saving fails with
    /// [`PlotError::InvalidValue`].
    pub fn batch_numbering(mut self, first: f64, step: f64) -> Self {
        self.first_batch = first;
        self.batch_step = step;
        self
    }

    /// Writes the figure as a `width` x `height` PNG to `path`, atomically. The
    /// directory must exist. (No SVG: thousands of cells make a slow, heavy SVG.)
    ///
    /// # Errors
    /// [`PlotError::Empty`] without panels, for a panel without histograms or with
    /// zero bins; [`PlotError::LengthMismatch`] for ragged histograms;
    /// [`PlotError::InvalidRange`] for a panel range that is not finite with lo < hi;
    /// [`PlotError::InvalidValue`] for bad batch numbering; [`PlotError::InvalidSize`],
    /// [`PlotError::MissingDirectory`], [`PlotError::Io`] for the output.
    pub fn save_png(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_png(self, path.as_ref(), width, height)
    }

    fn column_count(&self) -> usize {
        let n = self.panels.len();
        let auto = match n {
            0 | 1 => 1,
            2..=4 => 2,
            _ => 3,
        };
        let chosen = if self.columns == 0 {
            auto
        } else {
            self.columns
        };
        chosen.clamp(1, n.max(1))
    }
}

/// Checked figure data: the panel grid shape.
pub(crate) struct Prepared {
    columns: usize,
    rows: usize,
}

impl Figure for HistogramHeatmap {
    type Prepared = Prepared;
    const KIND: &'static str = "histogram heat map";

    fn title(&self) -> &str {
        &self.title
    }

    fn prepare(&self, ctx: &Context) -> Result<Prepared, PlotError> {
        if self.panels.is_empty() {
            return Err(ctx.empty("no panels"));
        }
        let rule = "must be finite, with step > 0";
        if !self.first_batch.is_finite() {
            return Err(ctx.value("first batch number", self.first_batch, rule));
        }
        if !(self.batch_step.is_finite() && self.batch_step > 0.0) {
            return Err(ctx.value("batch step", self.batch_step, rule));
        }
        for panel in &self.panels {
            let Some(first) = panel.histograms.first() else {
                return Err(ctx.empty(format!("panel {:?} has no histograms", panel.name)));
            };
            let bins = first.len();
            if bins == 0 {
                return Err(ctx.empty(format!(
                    "panel {:?} has histograms with no bins",
                    panel.name
                )));
            }
            for (index, histogram) in panel.histograms.iter().enumerate() {
                if histogram.len() != bins {
                    return Err(ctx.mismatch(
                        format!("panel {:?}, histogram {index}: number of bins", panel.name),
                        bins,
                        histogram.len(),
                    ));
                }
            }
            if !valid_range(panel.lo, panel.hi) {
                return Err(ctx.range(
                    format!("histogram range of panel {:?}", panel.name),
                    panel.lo,
                    panel.hi,
                ));
            }
            let last = self.first_batch + self.batch_step * panel.histograms.len() as f64;
            if !valid_range(self.first_batch, last) {
                return Err(ctx.range(
                    format!("batch axis of panel {:?}", panel.name),
                    self.first_batch,
                    last,
                ));
            }
        }
        let columns = self.column_count();
        Ok(Prepared {
            columns,
            rows: self.panels.len().div_ceil(columns),
        })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        prepared: &Prepared,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult {
        let theme = Theme::for_size(root.dim_in_pixel());
        root.fill(&BACKGROUND)?;
        let body = layout::titled(root, &self.title, &theme)?;

        // Shared axis descriptions: y on the left, x at the bottom, colour bar right.
        let (body_width, body_height) = body.dim_in_pixel();
        let (left, rest) = body.split_horizontally(theme.px(28.0));
        let (rest, colorbar) =
            rest.split_horizontally(body_width.saturating_sub(theme.px(28.0) + theme.px(95.0)));
        let (grid, bottom) = rest.split_vertically(body_height.saturating_sub(theme.px(30.0)));
        draw_axis_descriptions(&left, &bottom, &self.x_label, &self.y_label, &theme)?;
        draw_colorbar(&colorbar, &theme)?;

        let cells = grid.split_evenly((prepared.rows, prepared.columns));
        for (panel, area) in self.panels.iter().zip(&cells) {
            self.draw_panel(panel, area, &theme)?;
        }
        Ok(())
    }
}

impl HistogramHeatmap {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &HeatmapPanel,
        area: &Area<DB>,
        theme: &Theme,
    ) -> DrawResult {
        let pad = theme.px(6.0);
        let area = area.margin(pad, pad, pad, pad);
        let font = theme.panel_title_font();
        let (width, _) = area.dim_in_pixel();
        let title_height = theme.px(24.0);
        let label_area = theme.px(44.0);
        // Centre the title over the plot, not over plot plus tick labels.
        let plot_width = width.saturating_sub(label_area);
        let centre = i32::try_from(label_area).unwrap_or(0) + half(plot_width);
        area.draw(&Text::new(
            text::fit(&area, &panel.name, &font, width),
            (centre, half(title_height)),
            Theme::ink(font).pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        let (_, area) = area.split_vertically(title_height);

        let batches = panel.histograms.len();
        let bins = panel.histograms.first().map_or(0, Vec::len);
        let x_end = self.first_batch + self.batch_step * batches as f64;
        let mut x_coord = Coord::new(Scale::Linear, self.first_batch, x_end);
        if self.first_batch.fract() == 0.0 && self.batch_step.fract() == 0.0 {
            x_coord = x_coord.integral();
        }
        let y_coord = Coord::new(Scale::Linear, panel.lo, panel.hi);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(theme.px(22.0))
            .y_label_area_size(label_area)
            .build_cartesian_2d(x_coord, y_coord)?;
        let (plot_width, plot_height) = chart.plotting_area().dim_in_pixel();

        let grid = coalesce(&panel.histograms, plot_width as usize, plot_height as usize);
        let brightest = grid.cells.iter().flatten().fold(0.0f64, |m, &v| m.max(v));
        let bin_width = (panel.hi - panel.lo) / bins as f64;
        let mut rectangles = Vec::with_capacity(grid.cells.len() * bins);
        for (column, (b0, b1)) in grid.columns.iter().enumerate() {
            let x0 = self.first_batch + self.batch_step * *b0 as f64;
            let x1 = self.first_batch + self.batch_step * *b1 as f64;
            for (row, (k0, k1)) in grid.rows.iter().enumerate() {
                let y0 = panel.lo + bin_width * *k0 as f64;
                let y1 = panel.lo + bin_width * *k1 as f64;
                let color = heat_color(grid.cells[column][row], brightest);
                rectangles.push(Rectangle::new([(x0, y0), (x1, y1)], color.filled()));
            }
        }
        chart.draw_series(rectangles)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(theme.x_ticks(plot_width))
            .y_labels(theme.y_ticks(plot_height))
            .label_style(Theme::ink(theme.tick_font()))
            .axis_style(INK.stroke_width(1))
            .draw()?;
        Ok(())
    }
}

/// Viridis colour of a mean count, on a log1p scale relative to the panel's brightest
/// cell.
fn heat_color(count: f64, brightest: f64) -> RGBColor {
    let top = brightest.ln_1p();
    let level = if top > 0.0 { count.ln_1p() / top } else { 0.0 };
    // ViridisRGB takes f32 in [0, 1]; the level is already in that range.
    ViridisRGB::get_color(level.clamp(0.0, 1.0) as f32)
}

/// Histograms merged to at most `max_columns` x `max_rows` cells.
struct Coalesced {
    /// Half-open batch index range of each column.
    columns: Vec<(usize, usize)>,
    /// Half-open bin index range of each row.
    rows: Vec<(usize, usize)>,
    /// `cells[column][row]`: mean over the column's batches of the summed counts of
    /// the row's bins.
    cells: Vec<Vec<f64>>,
}

/// Merges neighbouring batches (and bins) so there is at most one cell per pixel.
fn coalesce(histograms: &[Vec<u64>], max_columns: usize, max_rows: usize) -> Coalesced {
    let bins = histograms.first().map_or(0, Vec::len);
    let columns = groups(histograms.len(), max_columns);
    let rows = groups(bins, max_rows);
    let cells = columns
        .iter()
        .map(|&(b0, b1)| {
            rows.iter()
                .map(|&(k0, k1)| {
                    let total: f64 = histograms[b0..b1]
                        .iter()
                        .map(|h| h[k0..k1].iter().map(|&c| c as f64).sum::<f64>())
                        .sum();
                    total / (b1 - b0) as f64
                })
                .collect()
        })
        .collect();
    Coalesced {
        columns,
        rows,
        cells,
    }
}

/// The shared "batch" label under the grid and the rotated value label left of it.
fn draw_axis_descriptions<DB: DrawingBackend>(
    left: &Area<DB>,
    bottom: &Area<DB>,
    x_label: &str,
    y_label: &str,
    theme: &Theme,
) -> DrawResult {
    let font = theme.axis_font();
    let (w, h) = bottom.dim_in_pixel();
    bottom.draw(&Text::new(
        text::fit(bottom, x_label, &font, w),
        (half(w), half(h)),
        Theme::ink(font.clone()).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let (w, h) = left.dim_in_pixel();
    left.draw(&Text::new(
        text::fit(left, y_label, &font, h),
        (half(w), half(h)),
        Theme::ink(font.transform(FontTransform::Rotate270))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// A vertical viridis bar explaining the colours.
fn draw_colorbar<DB: DrawingBackend>(area: &Area<DB>, theme: &Theme) -> DrawResult {
    let (width, height) = area.dim_in_pixel();
    let top = i32::try_from(theme.px(40.0)).unwrap_or(0);
    let bottom = i32::try_from(height.saturating_sub(theme.px(60.0))).unwrap_or(0);
    let left = i32::try_from(theme.px(14.0)).unwrap_or(0);
    let right = left + i32::try_from(theme.px(18.0)).unwrap_or(0);
    if bottom <= top {
        return Ok(());
    }
    let steps = 64;
    for step in 0..steps {
        let level = f64::from(step) / f64::from(steps - 1);
        let y1 = bottom - (bottom - top) * step / steps;
        let y0 = bottom - (bottom - top) * (step + 1) / steps;
        area.draw(&Rectangle::new(
            [(left, y0), (right, y1)],
            ViridisRGB::get_color(level as f32).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(left, top), (right, bottom)],
        INK.stroke_width(1),
    ))?;
    let font = theme.tick_font();
    let label_x = right + i32::try_from(theme.px(5.0)).unwrap_or(0);
    let style = Theme::ink(font.clone()).pos(Pos::new(HPos::Left, VPos::Center));
    area.draw(&Text::new("max", (label_x, top), style.clone()))?;
    area.draw(&Text::new("0", (label_x, bottom), style))?;
    let caption = "log1p(count), per panel";
    let caption_x = right + i32::try_from(theme.px(40.0)).unwrap_or(0);
    let caption_width = u32::try_from(bottom - top).unwrap_or(0);
    area.draw(&Text::new(
        text::fit(area, caption, &font, caption_width),
        (
            caption_x.min(i32::try_from(width).unwrap_or(0)),
            (top + bottom) / 2,
        ),
        Theme::ink(font.transform(FontTransform::Rotate270))
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalescing_averages_batches_and_sums_bins() {
        let histograms = vec![vec![1, 2, 3, 4], vec![3, 4, 5, 6]];
        let merged = coalesce(&histograms, 1, 2);
        assert_eq!(merged.columns, vec![(0, 2)]);
        assert_eq!(merged.rows, vec![(0, 2), (2, 4)]);
        // Batch means of bin sums: ((1+2) + (3+4)) / 2 = 5, ((3+4) + (5+6)) / 2 = 9.
        assert_eq!(merged.cells, vec![vec![5.0, 9.0]]);
    }

    #[test]
    fn colours_run_from_dark_to_bright() {
        assert_eq!(heat_color(0.0, 100.0), ViridisRGB::get_color(0.0f32));
        assert_eq!(heat_color(100.0, 100.0), ViridisRGB::get_color(1.0f32));
        assert_eq!(heat_color(0.0, 0.0), ViridisRGB::get_color(0.0f32));
    }
}
