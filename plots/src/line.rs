//! Line plots: several named series of (x, y) points, optionally on log axes, with
//! horizontal guide lines and marked points.
//!
//! This is the workhorse of the diagnostics: activation means and stds over batches
//! (one series per layer), the dead chart, loss curves, gradient statistics over steps,
//! update:data ratios with their 1e-3 guide, and the LR finder with its suggestion.

use std::path::Path;

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::element::{Circle, DashedPathElement, PathElement};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::Color;

use crate::axis::{valid_range, Coord, Scale};
use crate::error::{Context, DrawResult, PlotError};
use crate::layout;
use crate::legend::{self, Entry, Swatch};
use crate::output::{self, Figure};
use crate::theme::{self, Theme, BACKGROUND, GUIDE, INK, MARKER};

/// How a series' line is stroked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineStyle {
    /// A continuous line.
    #[default]
    Solid,
    /// A dashed line, e.g. to set validation loss apart from training loss.
    Dashed,
}

/// One named curve of a [`LinePlot`].
///
/// Points whose x or y is NaN or infinite (or not positive, on a log axis) are skipped
/// and the line is broken there rather than bridged, so a gap in the data shows as a
/// gap in the curve. An isolated point between gaps is drawn as a dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    name: String,
    xs: Vec<f64>,
    ys: Vec<f64>,
    style: LineStyle,
}

impl Series {
    /// A series from `(x, y)` pairs.
    pub fn new(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let (xs, ys) = points.into_iter().unzip();
        Self {
            name: name.into(),
            xs,
            ys,
            style: LineStyle::Solid,
        }
    }

    /// A series from separate x and y columns. Their lengths must agree, or saving
    /// the plot fails with [`PlotError::LengthMismatch`].
    pub fn from_xy(name: impl Into<String>, xs: Vec<f64>, ys: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            xs,
            ys,
            style: LineStyle::Solid,
        }
    }

    /// A series of y values at x = 0, 1, 2, ... (e.g. one value per recorded batch).
    pub fn from_ys(name: impl Into<String>, ys: impl IntoIterator<Item = f64>) -> Self {
        let ys: Vec<f64> = ys.into_iter().collect();
        // Indices are far below 2^53, so the conversion is exact.
        let xs = (0..ys.len()).map(|i| i as f64).collect();
        Self::from_xy(name, xs, ys)
    }

    /// The same series drawn with `style`.
    pub fn style(mut self, style: LineStyle) -> Self {
        self.style = style;
        self
    }

    /// The same series drawn dashed.
    pub fn dashed(self) -> Self {
        self.style(LineStyle::Dashed)
    }

    /// The name shown in the legend.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A horizontal reference line with a legend label, e.g. the 1e-3 update:data guide.
#[derive(Debug, Clone, PartialEq)]
struct Guide {
    y: f64,
    label: String,
}

/// A highlighted point with a legend label, e.g. the LR finder's suggestion.
#[derive(Debug, Clone, PartialEq)]
struct Marker {
    x: f64,
    y: f64,
    label: String,
}

/// Named series of (x, y) points on linear or log axes.
///
/// Every series gets its own colour (Tableau 10; series eleven to twenty reuse the
/// colours with the other line style, and so on) and one legend entry in a column to
/// the right of the chart, so the legend never hides data. 1000 x 600 is a good size.
///
/// ```
/// use plots::{LinePlot, Scale, Series};
///
/// let dir = std::env::temp_dir().join(format!("plots-doc-line-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let lrs: Vec<f64> = (0..50).map(|i| 1e-5 * 1.3f64.powi(i)).collect();
/// let losses: Vec<f64> = lrs.iter().map(|lr| 2.3 - 0.3 * lr.log10().min(-1.0).abs().recip()).collect();
/// LinePlot::new("LR finder", "learning rate", "loss")
///     .series(Series::from_xy("loss", lrs, losses))
///     .x_scale(Scale::Log10)
///     .marker(3e-2, 2.2, "suggested lr 3e-2")
///     .save_png(dir.join("lr_finder.png"), 1000, 600)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinePlot {
    title: String,
    x_label: String,
    y_label: String,
    x_scale: Scale,
    y_scale: Scale,
    series: Vec<Series>,
    guides: Vec<Guide>,
    markers: Vec<Marker>,
}

impl LinePlot {
    /// An empty plot with a title and axis labels; add series before saving.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            series: Vec::new(),
            guides: Vec::new(),
            markers: Vec::new(),
        }
    }

    /// Adds a series (builder style).
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Adds a series (for loops over layers).
    pub fn push(&mut self, series: Series) {
        self.series.push(series);
    }

    /// Sets the x axis scale; on [`Scale::Log10`] points with x <= 0 are skipped.
    pub fn x_scale(mut self, scale: Scale) -> Self {
        self.x_scale = scale;
        self
    }

    /// Sets the y axis scale; on [`Scale::Log10`] points with y <= 0 are skipped.
    pub fn y_scale(mut self, scale: Scale) -> Self {
        self.y_scale = scale;
        self
    }

    /// Adds a dashed grey horizontal line at `y`, listed in the legend as `label`.
    /// The y axis always extends to show it. `y` must be finite (and positive on a
    /// log y axis), or saving fails with [`PlotError::InvalidValue`].
    pub fn guide(mut self, y: f64, label: impl Into<String>) -> Self {
        self.guides.push(Guide {
            y,
            label: label.into(),
        });
        self
    }

    /// Marks the point (`x`, `y`) with a red dot and a dotted vertical line, listed in
    /// the legend as `label`. Both coordinates must be showable on their axes, or
    /// saving fails with [`PlotError::InvalidValue`].
    pub fn marker(mut self, x: f64, y: f64, label: impl Into<String>) -> Self {
        self.markers.push(Marker {
            x,
            y,
            label: label.into(),
        });
        self
    }

    /// Writes the plot as a `width` x `height` PNG to `path`, atomically (through a
    /// temporary file in the same directory). The directory must exist.
    ///
    /// # Errors
    /// [`PlotError::Empty`] without series or without a single drawable point;
    /// [`PlotError::LengthMismatch`] for a series with unequal x and y columns;
    /// [`PlotError::InvalidValue`] for an undrawable guide or marker;
    /// [`PlotError::InvalidRange`] if the data spans more than `f64` can;
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

    /// Writes the plot as a `width` x `height` SVG document to `path`, atomically.
    /// Same checks and errors as [`LinePlot::save_png`].
    pub fn save_svg(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_svg(self, path.as_ref(), width, height)
    }

    /// Whether the point can be placed on this plot's axes.
    fn shows(&self, x: f64, y: f64) -> bool {
        self.x_scale.shows(x) && self.y_scale.shows(y)
    }
}

/// A series split into runs of drawable points, with its look.
struct Curve {
    runs: Vec<Vec<(f64, f64)>>,
    color: plotters::style::RGBColor,
    dashed: bool,
}

/// What [`LinePlot`] draws once checked.
pub(crate) struct Prepared {
    x: (f64, f64),
    y: (f64, f64),
    curves: Vec<Curve>,
    entries: Vec<Entry>,
}

impl Figure for LinePlot {
    type Prepared = Prepared;
    const KIND: &'static str = "line plot";

    fn title(&self) -> &str {
        &self.title
    }

    fn prepare(&self, ctx: &Context) -> Result<Prepared, PlotError> {
        if self.series.is_empty() {
            return Err(ctx.empty("no series"));
        }
        for series in &self.series {
            if series.xs.len() != series.ys.len() {
                return Err(ctx.mismatch(
                    format!("series {:?}: y values for its x values", series.name),
                    series.xs.len(),
                    series.ys.len(),
                ));
            }
        }
        let axis_rule = "must be finite, and positive on a log axis";
        for guide in &self.guides {
            if !self.y_scale.shows(guide.y) {
                return Err(ctx.value(format!("guide {:?} y", guide.label), guide.y, axis_rule));
            }
        }
        for marker in &self.markers {
            if !self.x_scale.shows(marker.x) {
                return Err(ctx.value(format!("marker {:?} x", marker.label), marker.x, axis_rule));
            }
            if !self.y_scale.shows(marker.y) {
                return Err(ctx.value(format!("marker {:?} y", marker.label), marker.y, axis_rule));
            }
        }

        let drawable = || {
            self.series.iter().flat_map(|s| {
                s.xs.iter()
                    .zip(&s.ys)
                    .map(|(&x, &y)| (x, y))
                    .filter(|&(x, y)| self.shows(x, y))
            })
        };
        if drawable().next().is_none() {
            return Err(ctx.empty(
                "no series has a drawable point (NaN and inf are skipped, and values <= 0 on a log axis)",
            ));
        }
        let xs = drawable()
            .map(|(x, _)| x)
            .chain(self.markers.iter().map(|m| m.x));
        let ys = drawable()
            .map(|(_, y)| y)
            .chain(self.guides.iter().map(|g| g.y))
            .chain(self.markers.iter().map(|m| m.y));
        let x = checked_span(ctx, "x data range", self.x_scale, xs)?;
        let y = checked_span(ctx, "y data range", self.y_scale, ys)?;

        let mut curves = Vec::with_capacity(self.series.len());
        let mut entries = Vec::new();
        for (index, series) in self.series.iter().enumerate() {
            let (color, dashed) = theme::series_look(index, series.style == LineStyle::Dashed);
            let runs = runs(series, |x, y| self.shows(x, y));
            let label = if runs.is_empty() {
                format!("{} (nothing drawable)", series.name)
            } else {
                series.name.clone()
            };
            entries.push(Entry {
                label,
                detail: None,
                swatch: Swatch::Line { color, dashed },
            });
            curves.push(Curve {
                runs,
                color,
                dashed,
            });
        }
        entries.extend(self.guides.iter().map(|g| Entry {
            label: g.label.clone(),
            detail: None,
            swatch: Swatch::Line {
                color: GUIDE,
                dashed: true,
            },
        }));
        entries.extend(self.markers.iter().map(|m| Entry {
            label: m.label.clone(),
            detail: None,
            swatch: Swatch::Dot(MARKER),
        }));
        Ok(Prepared {
            x,
            y,
            curves,
            entries,
        })
    }

    fn draw<DB: DrawingBackend>(
        &self,
        prepared: &Prepared,
        root: &DrawingArea<DB, Shift>,
    ) -> DrawResult {
        let theme = Theme::for_size(root.dim_in_pixel());
        root.fill(&BACKGROUND)?;
        let (chart_area, legend_area) =
            layout::with_legend(root, &self.title, &prepared.entries, &theme)?;

        let x_coord = Coord::new(self.x_scale, prepared.x.0, prepared.x.1);
        let y_coord = Coord::new(self.y_scale, prepared.y.0, prepared.y.1);
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(theme.px(50.0))
            .y_label_area_size(theme.px(70.0))
            .margin_right(theme.px(10.0))
            .build_cartesian_2d(x_coord, y_coord)?;
        let (plot_width, plot_height) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .x_labels(theme.x_ticks(plot_width))
            .y_labels(theme.y_ticks(plot_height))
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(Theme::ink(theme.axis_font()))
            .label_style(Theme::ink(theme.tick_font()))
            .light_line_style(INK.mix(0.04))
            .bold_line_style(INK.mix(0.12))
            .axis_style(INK.stroke_width(1))
            .draw()?;

        let (dash, gap) = theme.dash();
        for guide in &self.guides {
            let line = vec![(prepared.x.0, guide.y), (prepared.x.1, guide.y)];
            chart.draw_series(std::iter::once(DashedPathElement::new(
                line,
                dash,
                gap,
                theme.guide_style(),
            )))?;
        }
        for curve in &prepared.curves {
            let style = theme.line_style(curve.color);
            for run in &curve.runs {
                if let [point] = run.as_slice() {
                    chart.draw_series(std::iter::once(Circle::new(
                        *point,
                        theme.px(3.0),
                        curve.color.filled(),
                    )))?;
                } else if curve.dashed {
                    chart.draw_series(std::iter::once(DashedPathElement::new(
                        run.iter().copied(),
                        dash,
                        gap,
                        style,
                    )))?;
                } else {
                    chart.draw_series(std::iter::once(PathElement::new(run.clone(), style)))?;
                }
            }
        }
        for marker in &self.markers {
            let line = vec![(marker.x, prepared.y.0), (marker.x, prepared.y.1)];
            chart.draw_series(std::iter::once(DashedPathElement::new(
                line,
                theme.px(2.0),
                theme.px(4.0),
                MARKER.stroke_width(theme.px(1.0)),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (marker.x, marker.y),
                theme.px(6.0),
                MARKER.filled(),
            )))?;
        }

        legend::draw(&legend_area, &prepared.entries, &theme)?;
        Ok(())
    }
}

/// The padded span of `values` on `scale`, or an error naming `what`.
fn checked_span(
    ctx: &Context,
    what: &str,
    scale: Scale,
    values: impl IntoIterator<Item = f64>,
) -> Result<(f64, f64), PlotError> {
    match scale.span(values) {
        Some((lo, hi)) if valid_range(lo, hi) => Ok((lo, hi)),
        Some((lo, hi)) => Err(ctx.range(what, lo, hi)),
        None => Err(ctx.empty(format!("no drawable values for the {what}"))),
    }
}

/// Splits a series into maximal runs of points that `shows` accepts.
fn runs(series: &Series, shows: impl Fn(f64, f64) -> bool) -> Vec<Vec<(f64, f64)>> {
    let mut runs = Vec::new();
    let mut current = Vec::new();
    for (&x, &y) in series.xs.iter().zip(&series.ys) {
        if shows(x, y) {
            current.push((x, y));
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_break_at_skipped_points() {
        let s = Series::from_ys("s", [1.0, 2.0, f64::NAN, 3.0, f64::INFINITY, 4.0, 5.0]);
        let got = runs(&s, |x, y| x.is_finite() && y.is_finite());
        assert_eq!(
            got,
            vec![
                vec![(0.0, 1.0), (1.0, 2.0)],
                vec![(3.0, 3.0)],
                vec![(5.0, 4.0), (6.0, 5.0)]
            ]
        );
    }

    #[test]
    fn palette_overflow_flips_dash_style() {
        let mut plot = LinePlot::new("t", "x", "y");
        for i in 0..12 {
            plot.push(Series::from_ys(format!("s{i}"), [0.0, 1.0]));
        }
        let ctx = Context::new("line plot", "t", "unused.png".into());
        let prepared = plot.prepare(&ctx).unwrap();
        let dashed: Vec<bool> = prepared.curves.iter().map(|c| c.dashed).collect();
        assert!(dashed[..10].iter().all(|d| !d));
        assert!(dashed[10..].iter().all(|&d| d));
    }
}
