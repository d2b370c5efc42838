//! Several histograms at one moment, overlaid as density curves (Karpathy's per-layer
//! activation and gradient histograms), each with a legend line of statistics.
//!
//! Densities (count / (total * bin width)) rather than counts make layers of different
//! sizes and bin widths comparable: a saturated tanh layer shows as two spikes at
//! +-1, a healthy one as a broad hump, a vanishing gradient as a needle at 0.

use std::path::Path;

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::element::{DashedPathElement, PathElement};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::Color;

use crate::axis::{valid_range, Coord, Scale};
use crate::error::{Context, DrawResult, PlotError};
use crate::layout;
use crate::legend::{self, Entry, Swatch};
use crate::output::{self, Figure};
use crate::theme::{self, Theme, BACKGROUND, INK};

/// Where a histogram's bins are.
#[derive(Debug, Clone, PartialEq)]
enum Edges {
    /// Equal bins spanning `lo..hi`.
    Range { lo: f64, hi: f64 },
    /// Explicit, strictly increasing edges (one more than there are bins).
    Explicit(Vec<f64>),
}

/// One named histogram of a [`HistogramOverlay`].
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    name: String,
    edges: Edges,
    counts: Vec<u64>,
    stats: Option<String>,
}

impl Histogram {
    /// A histogram with `counts.len()` equal bins spanning `lo..hi`.
    pub fn from_range(name: impl Into<String>, lo: f64, hi: f64, counts: Vec<u64>) -> Self {
        Self {
            name: name.into(),
            edges: Edges::Range { lo, hi },
            counts,
            stats: None,
        }
    }

    /// A histogram with explicit bin edges; `edges` must be finite, strictly
    /// increasing and one longer than `counts`.
    pub fn from_edges(name: impl Into<String>, edges: Vec<f64>, counts: Vec<u64>) -> Self {
        Self {
            name: name.into(),
            edges: Edges::Explicit(edges),
            counts,
            stats: None,
        }
    }

    /// Adds a statistics line shown under the name in the legend, e.g.
    /// `mean -0.02, std 0.64, saturated 4.1%`.
    pub fn stats(mut self, stats: impl Into<String>) -> Self {
        self.stats = Some(stats.into());
        self
    }

    /// The name shown in the legend.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bin edges, checked: finite, strictly increasing, `counts.len() + 1` of them.
    fn checked_edges(&self, ctx: &Context) -> Result<Vec<f64>, PlotError> {
        let bins = self.counts.len();
        if bins == 0 {
            return Err(ctx.empty(format!("histogram {:?} has no bins", self.name)));
        }
        match &self.edges {
            Edges::Range { lo, hi } => {
                if !valid_range(*lo, *hi) {
                    return Err(ctx.range(format!("range of histogram {:?}", self.name), *lo, *hi));
                }
                let width = (hi - lo) / bins as f64;
                Ok((0..=bins).map(|i| lo + width * i as f64).collect())
            }
            Edges::Explicit(edges) => {
                if edges.len() != bins + 1 {
                    return Err(ctx.mismatch(
                        format!("histogram {:?}: bin edges for {bins} counts", self.name),
                        bins + 1,
                        edges.len(),
                    ));
                }
                for (i, &edge) in edges.iter().enumerate() {
                    if !edge.is_finite() {
                        return Err(ctx.value(
                            format!("histogram {:?} edge {i}", self.name),
                            edge,
                            "edges must be finite",
                        ));
                    }
                    if i > 0 && edge <= edges[i - 1] {
                        return Err(ctx.value(
                            format!("histogram {:?} edge {i}", self.name),
                            edge,
                            "edges must be strictly increasing",
                        ));
                    }
                }
                Ok(edges.clone())
            }
        }
    }
}

/// Named histograms drawn as density curves over value, with a legend whose entries
/// can carry a statistics line.
///
/// ```
/// use plots::{Histogram, HistogramOverlay};
///
/// let dir = std::env::temp_dir().join(format!("plots-doc-overlay-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let hump: Vec<u64> = (0..20u64).map(|i| 100 - (i as i64 - 10).unsigned_abs() * 9).collect();
/// HistogramOverlay::new("Activations at step 1000", "tanh output")
///     .histogram(Histogram::from_range("layer 1 (Tanh)", -1.0, 1.0, hump).stats("mean 0.00, std 0.45"))
///     .save_png(dir.join("hist.png"), 1000, 600)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramOverlay {
    title: String,
    x_label: String,
    histograms: Vec<Histogram>,
}

impl HistogramOverlay {
    /// An empty figure; `x_label` describes the value axis (the y axis is density).
    pub fn new(title: impl Into<String>, x_label: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            histograms: Vec::new(),
        }
    }

    /// Adds a histogram (builder style).
    pub fn histogram(mut self, histogram: Histogram) -> Self {
        self.histograms.push(histogram);
        self
    }

    /// Adds a histogram (for loops over layers).
    pub fn push(&mut self, histogram: Histogram) {
        self.histograms.push(histogram);
    }

    /// Writes the figure as a `width` x `height` PNG to `path`, atomically. The
    /// directory must exist.
    ///
    /// # Errors
    /// [`PlotError::Empty`] without histograms, for one without bins or with all
    /// counts zero; [`PlotError::LengthMismatch`] when explicit edges are not one
    /// more than the counts; [`PlotError::InvalidValue`] for a non-finite or
    /// non-increasing edge; [`PlotError::InvalidRange`] for a bad `lo..hi`;
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

    /// Writes the figure as a `width` x `height` SVG document to `path`, atomically.
    /// Same checks and errors as [`HistogramOverlay::save_png`].
    pub fn save_svg(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_svg(self, path.as_ref(), width, height)
    }
}

/// A histogram as a density curve.
struct Curve {
    points: Vec<(f64, f64)>,
    color: plotters::style::RGBColor,
    dashed: bool,
}

/// What [`HistogramOverlay`] draws once checked.
pub(crate) struct Prepared {
    x: (f64, f64),
    top: f64,
    curves: Vec<Curve>,
    entries: Vec<Entry>,
}

impl Figure for HistogramOverlay {
    type Prepared = Prepared;
    const KIND: &'static str = "histogram overlay";

    fn title(&self) -> &str {
        &self.title
    }

    fn prepare(&self, ctx: &Context) -> Result<Prepared, PlotError> {
        if self.histograms.is_empty() {
            return Err(ctx.empty("no histograms"));
        }
        let mut curves = Vec::with_capacity(self.histograms.len());
        let mut entries = Vec::with_capacity(self.histograms.len());
        let (mut lo, mut hi, mut top) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for (index, histogram) in self.histograms.iter().enumerate() {
            let edges = histogram.checked_edges(ctx)?;
            let total: f64 = histogram.counts.iter().map(|&c| c as f64).sum();
            if total == 0.0 {
                return Err(ctx.empty(format!(
                    "histogram {:?} has only zero counts",
                    histogram.name
                )));
            }
            let points: Vec<(f64, f64)> = histogram
                .counts
                .iter()
                .zip(edges.windows(2))
                .map(|(&count, edge)| {
                    let centre = 0.5 * (edge[0] + edge[1]);
                    (centre, count as f64 / (total * (edge[1] - edge[0])))
                })
                .collect();
            lo = lo.min(edges[0]);
            hi = hi.max(edges[edges.len() - 1]);
            top = points.iter().fold(top, |m, &(_, d)| m.max(d));
            let (color, dashed) = theme::series_look(index, false);
            entries.push(Entry {
                label: histogram.name.clone(),
                detail: histogram.stats.clone(),
                swatch: Swatch::Line { color, dashed },
            });
            curves.push(Curve {
                points,
                color,
                dashed,
            });
        }
        let top = top * 1.05;
        if !valid_range(lo, hi) {
            return Err(ctx.range("value range of all histograms", lo, hi));
        }
        if !valid_range(0.0, top) {
            return Err(ctx.range("density range", 0.0, top));
        }
        Ok(Prepared {
            x: (lo, hi),
            top,
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
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(theme.px(50.0))
            .y_label_area_size(theme.px(70.0))
            .margin_right(theme.px(10.0))
            .build_cartesian_2d(
                Coord::new(Scale::Linear, prepared.x.0, prepared.x.1),
                Coord::new(Scale::Linear, 0.0, prepared.top),
            )?;
        let (plot_width, plot_height) = chart.plotting_area().dim_in_pixel();
        chart
            .configure_mesh()
            .x_labels(theme.x_ticks(plot_width))
            .y_labels(theme.y_ticks(plot_height))
            .x_desc(self.x_label.as_str())
            .y_desc("density")
            .axis_desc_style(Theme::ink(theme.axis_font()))
            .label_style(Theme::ink(theme.tick_font()))
            .light_line_style(INK.mix(0.04))
            .bold_line_style(INK.mix(0.12))
            .axis_style(INK.stroke_width(1))
            .draw()?;
        let (dash, gap) = theme.dash();
        for curve in &prepared.curves {
            let style = theme.line_style(curve.color);
            if curve.dashed {
                chart.draw_series(std::iter::once(DashedPathElement::new(
                    curve.points.iter().copied(),
                    dash,
                    gap,
                    style,
                )))?;
            } else {
                chart.draw_series(std::iter::once(PathElement::new(
                    curve.points.clone(),
                    style,
                )))?;
            }
        }
        legend::draw(&legend_area, &prepared.entries, &theme)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn densities_integrate_to_one() {
        let ctx = Context::new("histogram overlay", "t", "unused.png".into());
        let overlay = HistogramOverlay::new("t", "x")
            .histogram(Histogram::from_range("a", -1.0, 1.0, vec![1, 3, 4, 2]))
            .histogram(Histogram::from_edges("b", vec![0.0, 0.1, 1.0], vec![5, 5]));
        let prepared = overlay.prepare(&ctx).unwrap();
        let widths = [vec![0.5; 4], vec![0.1, 0.9]];
        for (curve, widths) in prepared.curves.iter().zip(&widths) {
            let area: f64 = curve.points.iter().zip(widths).map(|(p, w)| p.1 * w).sum();
            assert!((area - 1.0).abs() < 1e-12, "area {area}");
        }
        assert_eq!(prepared.x, (-1.0, 1.0));
    }
}
