//! Horizontal bar charts: one bar per named category, e.g. the dead fraction or the
//! tanh saturation of each layer.
//!
//! Bars run horizontally so that category names (layer paths) are written level and
//! in full on the left, readable for a dozen layers without rotation.

use std::path::Path;

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::element::{DashedPathElement, PathElement, Rectangle, Text};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontDesc, FontTransform, IntoFont};

use crate::axis::{format_tick, valid_range, Coord, Scale};
use crate::error::{Context, DrawResult, PlotError};
use crate::font::FAMILY;
use crate::layout::{self, half};
use crate::output::{self, Figure};
use crate::text;
use crate::theme::{Theme, ALERT, BACKGROUND, BAR, GUIDE, INK};

/// How bar values (and value-axis ticks) are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueFormat {
    /// Compact decimal, e.g. `0.25`, `1e-4`.
    #[default]
    Plain,
    /// Values are fractions, written as percentages, e.g. `0.041` as `4.1%`.
    Percent,
}

impl ValueFormat {
    fn format(self, value: f64) -> String {
        match self {
            ValueFormat::Plain => format_tick(value),
            ValueFormat::Percent => format!("{}%", format_tick(value * 100.0)),
        }
    }

    /// A bar's value, with a little more precision than a tick needs.
    fn format_value(self, value: f64) -> String {
        if !value.is_finite() {
            return format!("{value}");
        }
        match self {
            ValueFormat::Plain => format_tick(value),
            ValueFormat::Percent => format!("{:.1}%", value * 100.0),
        }
    }
}

/// A vertical reference line across the bars.
#[derive(Debug, Clone, PartialEq)]
struct Guide {
    value: f64,
    label: String,
}

/// One horizontal bar per named category, top to bottom in the order added, each
/// labelled with its value.
///
/// A NaN or infinite value gets no bar; its value label reads `NaN` / `inf` in red, so
/// a broken layer is called out rather than hidden. 1000 x 600 fits about twenty
/// categories.
///
/// ```
/// use plots::{BarChart, ValueFormat};
///
/// let dir = std::env::temp_dir().join(format!("plots-doc-bar-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// BarChart::new("Dead units per layer", "layer", "fraction of activations near zero")
///     .bar("layers.0 (ReLU)", 0.12)
///     .bar("layers.1 (ReLU)", 0.64)
///     .format(ValueFormat::Percent)
///     .value_range(0.0, 1.0)
///     .save_png(dir.join("dead.png"), 1000, 600)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    title: String,
    category_label: String,
    value_label: String,
    bars: Vec<(String, f64)>,
    format: ValueFormat,
    range: Option<(f64, f64)>,
    guides: Vec<Guide>,
}

impl BarChart {
    /// An empty chart; `category_label` describes the bars (e.g. `layer`),
    /// `value_label` their length.
    pub fn new(
        title: impl Into<String>,
        category_label: impl Into<String>,
        value_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            category_label: category_label.into(),
            value_label: value_label.into(),
            bars: Vec::new(),
            format: ValueFormat::Plain,
            range: None,
            guides: Vec::new(),
        }
    }

    /// Adds a bar (builder style).
    pub fn bar(mut self, category: impl Into<String>, value: f64) -> Self {
        self.bars.push((category.into(), value));
        self
    }

    /// Adds a bar (for loops over layers).
    pub fn push(&mut self, category: impl Into<String>, value: f64) {
        self.bars.push((category.into(), value));
    }

    /// How values and ticks are written.
    pub fn format(mut self, format: ValueFormat) -> Self {
        self.format = format;
        self
    }

    /// Fixes the value axis to `lo..hi` (e.g. `0..1` for fractions) instead of
    /// fitting it to the data; parts of bars outside are clipped. Must be finite with
    /// `lo < hi`, or saving fails with [`PlotError::InvalidRange`].
    pub fn value_range(mut self, lo: f64, hi: f64) -> Self {
        self.range = Some((lo, hi));
        self
    }

    /// Adds a dashed vertical line at `value`, labelled at its top (e.g. a 5%
    /// saturation threshold). Must be finite, or saving fails with
    /// [`PlotError::InvalidValue`].
    pub fn guide(mut self, value: f64, label: impl Into<String>) -> Self {
        self.guides.push(Guide {
            value,
            label: label.into(),
        });
        self
    }

    /// Writes the chart as a `width` x `height` PNG to `path`, atomically. The
    /// directory must exist.
    ///
    /// # Errors
    /// [`PlotError::Empty`] without bars; [`PlotError::InvalidRange`] for a bad
    /// [`BarChart::value_range`]; [`PlotError::InvalidValue`] for a non-finite guide;
    /// [`PlotError::InvalidSize`], [`PlotError::MissingDirectory`], [`PlotError::Io`]
    /// for the output.
    pub fn save_png(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_png(self, path.as_ref(), width, height)
    }

    /// Writes the chart as a `width` x `height` SVG document to `path`, atomically.
    /// Same checks and errors as [`BarChart::save_png`].
    pub fn save_svg(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_svg(self, path.as_ref(), width, height)
    }
}

/// The checked value axis.
pub(crate) struct Prepared {
    lo: f64,
    hi: f64,
}

impl Figure for BarChart {
    type Prepared = Prepared;
    const KIND: &'static str = "bar chart";

    fn title(&self) -> &str {
        &self.title
    }

    fn prepare(&self, ctx: &Context) -> Result<Prepared, PlotError> {
        if self.bars.is_empty() {
            return Err(ctx.empty("no bars"));
        }
        for guide in &self.guides {
            if !guide.value.is_finite() {
                return Err(ctx.value(
                    format!("guide {:?}", guide.label),
                    guide.value,
                    "must be finite",
                ));
            }
        }
        let (lo, hi) = match self.range {
            Some((lo, hi)) if valid_range(lo, hi) => (lo, hi),
            Some((lo, hi)) => return Err(ctx.range("value range", lo, hi)),
            None => {
                // Bars start at zero, so zero is always in view.
                let values = self
                    .bars
                    .iter()
                    .map(|b| b.1)
                    .chain(self.guides.iter().map(|g| g.value));
                let (lo, hi) = Scale::Linear
                    .span(values.chain([0.0]))
                    .unwrap_or((-1.0, 1.0));
                let room = (hi - lo) * 0.12;
                let values = || {
                    self.bars
                        .iter()
                        .map(|b| b.1)
                        .chain(self.guides.iter().map(|g| g.value))
                };
                // Value labels sit right of each bar (right of zero for negative
                // bars), so only the right end needs room for them.
                let lo = if values().any(|v| v < 0.0) {
                    lo
                } else {
                    lo.max(0.0)
                };
                let hi = if values().any(|v| v.is_finite() && v != 0.0) {
                    hi + room
                } else {
                    hi
                };
                (lo, hi)
            }
        };
        if !valid_range(lo, hi) {
            return Err(ctx.range("value range fitted to the bars", lo, hi));
        }
        Ok(Prepared { lo, hi })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        prepared: &Prepared,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult {
        let theme = Theme::for_size(root.dim_in_pixel());
        root.fill(&BACKGROUND)?;
        let body = layout::titled(root, &self.title, &theme)?;
        let (body_width, body_height) = body.dim_in_pixel();

        // Left: the rotated category description, then the category names.
        let (description, rest) = body.split_horizontally(theme.px(30.0));
        let rows = self.bars.len();
        let x_area = theme.px(50.0);
        let row_height = f64::from(body_height.saturating_sub(x_area)) / rows as f64;
        let label_font = category_font(&theme, row_height);
        let widest = self
            .bars
            .iter()
            .map(|(name, _)| text::width(&rest, name, &label_font))
            .max()
            .unwrap_or(0);
        let label_width = (widest + theme.px(12.0)).min(body_width * 2 / 5);
        let (labels, chart_area) = rest.split_horizontally(label_width);

        let font = theme.axis_font();
        let (w, h) = description.dim_in_pixel();
        let plot_centre = half(h.saturating_sub(x_area));
        description.draw(&Text::new(
            text::fit(&description, &self.category_label, &font, h),
            (half(w), plot_centre),
            Theme::ink(font.transform(FontTransform::Rotate270))
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;

        let rows_f = rows as f64;
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(x_area)
            .margin_right(theme.px(20.0))
            .build_cartesian_2d(
                Coord::new(Scale::Linear, prepared.lo, prepared.hi),
                Coord::flipped(0.0, rows_f),
            )?;
        let format = self.format;
        let (plot_width, plot_height) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .x_labels(theme.x_ticks(plot_width))
            .y_labels(theme.y_ticks(plot_height))
            .disable_y_mesh()
            .x_desc(self.value_label.as_str())
            .x_label_formatter(&|v: &f64| format.format(*v))
            .axis_desc_style(Theme::ink(theme.axis_font()))
            .label_style(Theme::ink(theme.tick_font()))
            .light_line_style(INK.mix(0.04))
            .bold_line_style(INK.mix(0.12))
            .axis_style(INK.stroke_width(1))
            .draw()?;

        let (label_left, _) = labels.get_base_pixel();
        let label_right = label_left + i32::try_from(label_width).unwrap_or(0)
            - i32::try_from(theme.px(8.0)).unwrap_or(0);
        let name_room = label_width.saturating_sub(theme.px(12.0));
        let value_font = theme.tick_font();
        let gap = i32::try_from(theme.px(5.0)).unwrap_or(0);
        for (row, (name, value)) in self.bars.iter().enumerate() {
            let (top, bottom) = (row as f64 + 0.15, row as f64 + 0.85);
            let centre = row as f64 + 0.5;
            let (_, y) = chart.backend_coord(&(prepared.lo, centre));
            root.draw(&Text::new(
                text::fit(root, name, &label_font, name_room),
                (label_right, y),
                Theme::ink(label_font.clone()).pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
            let shown = self.format.format_value(*value);
            if value.is_finite() {
                let end = value.clamp(prepared.lo, prepared.hi);
                let start = 0.0f64.clamp(prepared.lo, prepared.hi);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(start, top), (end, bottom)],
                    BAR.filled(),
                )))?;
                // Labels go right of the bar's end, or for a negative bar right of
                // the zero line, so they never run into the category names.
                let label_at = if *value >= 0.0 { end } else { start };
                let (x, y) = chart.backend_coord(&(label_at, centre));
                root.draw(&Text::new(
                    shown,
                    (x + gap, y),
                    Theme::ink(value_font.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
            } else {
                let at = 0.0f64.clamp(prepared.lo, prepared.hi);
                let (x, y) = chart.backend_coord(&(at, centre));
                root.draw(&Text::new(
                    shown,
                    (x + gap, y),
                    value_font
                        .clone()
                        .color(&ALERT)
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
            }
        }

        // The zero baseline, then the guides on top of the bars.
        if prepared.lo < 0.0 && prepared.hi > 0.0 {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (0.0, rows_f)],
                INK.stroke_width(1),
            )))?;
        }
        let (dash, dash_gap) = theme.dash();
        for guide in &self.guides {
            if guide.value < prepared.lo || guide.value > prepared.hi {
                continue;
            }
            chart.draw_series(std::iter::once(DashedPathElement::new(
                vec![(guide.value, 0.0), (guide.value, rows_f)],
                dash,
                dash_gap,
                theme.guide_style(),
            )))?;
            let (x, y) = chart.backend_coord(&(guide.value, 0.0));
            root.draw(&Text::new(
                guide.label.clone(),
                (x + gap, y + gap),
                theme
                    .tick_font()
                    .color(&GUIDE)
                    .pos(Pos::new(HPos::Left, VPos::Top)),
            ))?;
        }
        Ok(())
    }
}

/// Category names in the legend size, shrunk when rows are too thin to hold it.
fn category_font(theme: &Theme, row_height: f64) -> FontDesc<'static> {
    let size = f64::from(theme.px(15.0)).min(row_height * 0.8).max(7.0);
    (FAMILY, size).into_font()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_format() {
        assert_eq!(ValueFormat::Percent.format_value(0.041), "4.1%");
        assert_eq!(ValueFormat::Percent.format(0.25), "25%");
        assert_eq!(ValueFormat::Plain.format_value(f64::NAN), "NaN");
        assert_eq!(ValueFormat::Percent.format_value(f64::INFINITY), "inf");
    }

    #[test]
    fn fitted_range_includes_zero_and_label_room() {
        let ctx = Context::new("bar chart", "t", "unused.png".into());
        let chart = BarChart::new("t", "c", "v").bar("a", 0.5).bar("b", 2.0);
        let prepared = chart.prepare(&ctx).unwrap();
        assert_eq!(prepared.lo, 0.0);
        assert!(prepared.hi > 2.0);
        let negative = BarChart::new("t", "c", "v")
            .bar("a", -3.0)
            .bar("b", f64::NAN);
        let prepared = negative.prepare(&ctx).unwrap();
        assert!(prepared.lo < -3.0 && prepared.hi >= 0.0);
    }
}
