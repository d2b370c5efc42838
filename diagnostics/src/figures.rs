//! The figures of a run, drawn with the `plots` crate: one function per figure that
//! builds it from the log (`None` when the log holds nothing to draw), and
//! [`write_all_plots`], which writes every figure that has data.
//!
//! | file | what it shows | lesson |
//! |---|---|---|
//! | `activation_means` | mean of each layer's output per training batch | fastai 10 |
//! | `activation_stds` | std per batch (log scale: spikes and collapses show) | fastai 10 |
//! | `color_dim.png` | histogram heat map: batches across, bins up, log1p counts as colour, one panel per layer | fastai 10 |
//! | `dead_chart` | fraction of dead outputs per batch | fastai 10 |
//! | `dead_per_layer` | near-zero fraction per layer at the end (bars, 90% guide) | fastai 10 |
//! | `saturation_per_layer` | saturated fraction per tanh-like layer (bars, 25% guide) | Karpathy 3 |
//! | `activation_histograms` | per-layer histograms at the snapshot batch, with mean/std/saturation | Karpathy 3 |
//! | `saturation_map.png` | examples x units, white where `|h| > 0.99` | Karpathy 3 |
//! | `gradient_histograms` | per-parameter gradient histograms at one step, with grad:data | Karpathy 3 |
//! | `grad_data` | grad:data ratio per parameter over steps | Karpathy 3 |
//! | `update_data` | log10 update:data per parameter over steps, guide at -3 | Karpathy 3 |
//! | `loss` | training loss per step, validation loss dashed | both |
//!
//! In a long run whose logs were folded (see [`crate::bounded`]), a folded record is
//! drawn at the middle of the calls (steps) it covers, the heat map's columns stay of
//! equal width over the batches, and the end-of-training bars weight each record by
//! the calls it stands for: every figure still shows the whole run.
//!
//! Every figure is a PNG; those without a `.png` in the table also get an SVG
//! ([`FigureOptions::svg`]): the heat map and the saturation map hold thousands of
//! cells, which make a heavy SVG.

use std::path::{Path, PathBuf};

use plots::{
    BarChart, BinaryImage, HeatmapPanel, Histogram, HistogramHeatmap, HistogramOverlay, LinePlot,
    Scale, Series, ValueFormat,
};

use crate::activations::{ActivationLog, ActivationRecord, LayerActivations, Pass};
use crate::bounded::Span;
use crate::error::Result;
use crate::format::Num;
use crate::gradients::GradientLog;
use crate::health::thresholds::{BOUNDED_SLACK, DEAD_FRACTION, FINAL_STRETCH, SATURATED_FRACTION};
use crate::histogram::fold_outliers;
use crate::losses::{LossLog, LossPoint};
use crate::training_log::TrainingLog;

/// Size and formats of the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FigureOptions {
    /// Width of each figure, in pixels.
    pub width: u32,
    /// Height of each figure, in pixels.
    pub height: u32,
    /// Also write an SVG beside the PNG of each figure drawn with lines and bars.
    pub svg: bool,
}

impl Default for FigureOptions {
    /// 1200 x 800, with SVGs.
    fn default() -> Self {
        Self {
            width: 1200,
            height: 800,
            svg: true,
        }
    }
}

/// A figure ready to be saved.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    /// Lines over a shared x axis.
    Line(LinePlot),
    /// One histogram heat map panel per layer.
    Heatmap(HistogramHeatmap),
    /// Density curves of histograms at one moment.
    Overlay(HistogramOverlay),
    /// One bar per layer.
    Bars(BarChart),
    /// A boolean grid.
    Binary(BinaryImage),
}

impl Figure {
    /// Writes `dir/name.png` (and `dir/name.svg` where the figure has one and
    /// `opts.svg` asks for it); returns the files written.
    ///
    /// # Errors
    /// [`DiagError::Plot`](crate::error::DiagError::Plot) naming the figure and file.
    pub fn save(&self, dir: &Path, name: &str, opts: &FigureOptions) -> Result<Vec<PathBuf>> {
        let (w, h) = (opts.width, opts.height);
        let png = dir.join(format!("{name}.png"));
        let svg = dir.join(format!("{name}.svg"));
        let mut files = vec![png.clone()];
        match self {
            Figure::Line(f) => {
                f.save_png(&png, w, h)?;
                if opts.svg {
                    f.save_svg(&svg, w, h)?;
                    files.push(svg);
                }
            }
            Figure::Overlay(f) => {
                f.save_png(&png, w, h)?;
                if opts.svg {
                    f.save_svg(&svg, w, h)?;
                    files.push(svg);
                }
            }
            Figure::Bars(f) => {
                f.save_png(&png, w, h)?;
                if opts.svg {
                    f.save_svg(&svg, w, h)?;
                    files.push(svg);
                }
            }
            Figure::Heatmap(f) => f.save_png(&png, w, h)?,
            Figure::Binary(f) => f.save_png(&png, w, h)?,
        }
        Ok(files)
    }
}

/// One series per layer of a per-record statistic over the training calls, or `None`
/// if no layer has a training record.
fn per_layer_plot(
    log: &ActivationLog,
    title: &str,
    y_label: &str,
    stat: impl Fn(&ActivationRecord) -> f64,
) -> Option<LinePlot> {
    let mut plot = LinePlot::new(title, "training batch", y_label);
    let mut any = false;
    for layer in &log.layers {
        let points = layer.series(Pass::Train, &stat);
        if !points.is_empty() {
            any = true;
            plot.push(Series::new(layer.label(), points));
        }
    }
    any.then_some(plot)
}

/// Activation means per layer over the training batches (fastai's first plot).
pub fn activation_means(log: &ActivationLog) -> Option<LinePlot> {
    per_layer_plot(log, "Activation mean per layer", "mean", |r| r.mean)
}

/// Activation stds per layer over the training batches, on a log scale so that a
/// spike and a collapse both show.
pub fn activation_stds(log: &ActivationLog) -> Option<LinePlot> {
    per_layer_plot(log, "Activation std per layer", "std (log scale)", |r| {
        r.std
    })
    .map(|p| p.y_scale(Scale::Log10))
}

/// What the dead fraction of `log` counts, for axis labels: the rule when every
/// layer has the same one, otherwise a pointer to the labels.
fn dead_measure(log: &ActivationLog) -> String {
    let mut rules = log.layers.iter().map(|l| l.dead_rule);
    match rules.next() {
        Some(first) if rules.all(|r| r == first) => format!("dead fraction ({first})"),
        _ => "dead fraction (each layer's rule after its name)".to_string(),
    }
}

/// A layer's name on the dead figures: with its rule when the layers' rules differ.
fn dead_label(log: &ActivationLog, layer: &LayerActivations) -> String {
    let same = log.layers.iter().all(|l| l.dead_rule == layer.dead_rule);
    if same {
        layer.label()
    } else {
        format!("{}: {}", layer.label(), layer.dead_rule)
    }
}

/// The dead chart: per layer and training batch, the fraction of dead outputs by
/// the layer's [`DeadRule`](crate::activations::DeadRule) (for a ReLU `|x| < 0.5`,
/// fastai's `get_min` over the two lowest bins; for a GeneralRelu the same band
/// around `-sub`), the figure the health report's table and verdicts use.
pub fn dead_chart(log: &ActivationLog) -> Option<LinePlot> {
    let mut plot = LinePlot::new(
        "Dead chart: dead activations per layer",
        "training batch",
        dead_measure(log),
    );
    let mut any = false;
    for layer in &log.layers {
        let points = layer.series(Pass::Train, ActivationRecord::dead_fraction);
        if !points.is_empty() {
            any = true;
            plot.push(Series::new(dead_label(log, layer), points));
        }
    }
    any.then_some(plot)
}

/// fastai's `color_dim`: per layer, the histograms of the training batches as a heat
/// map (batches across, bins up, log1p counts as colour). Values outside the range
/// are drawn in the edge bins. Columns are of equal width over the batches
/// ([`LayerActivations::histogram_columns`](crate::activations::LayerActivations::histogram_columns)):
/// in a long run whose records were folded, each column is the mean histogram of the
/// batches it covers, and the axis still counts batches.
pub fn color_dim(log: &ActivationLog) -> Option<HistogramHeatmap> {
    let spec = log.config.histogram;
    let columns: Vec<_> = log
        .layers
        .iter()
        .filter_map(|layer| {
            layer
                .histogram_columns(Pass::Train, log.config.every)
                .map(|c| (layer, c))
        })
        .collect();
    // One numbering for every panel: the widest columns, from the earliest call.
    let width = columns.iter().map(|(_, c)| c.width).max()?;
    let first = columns.iter().map(|(_, c)| c.first_call).min()?;
    let mut figure = HistogramHeatmap::new(
        "Activation histograms over training (log1p counts)",
        "training batch",
        spec.value_label(),
    )
    .batch_numbering((first - first % width) as f64, width as f64);
    for (layer, c) in columns {
        let c = if c.width == width && c.first_call == first - first % width {
            c
        } else {
            // A layer recorded on finer columns (fewer records folded): re-read on the
            // common ones.
            layer
                .histogram_columns_with(Pass::Train, width, first - first % width)
                .unwrap_or(c)
        };
        figure.push(HeatmapPanel::new(
            layer.label(),
            spec.lo,
            spec.hi,
            c.histograms,
        ));
    }
    Some(figure)
}

/// The mean of `stat` over the last [`FINAL_STRETCH`] of a layer's training calls
/// (records weighted by the calls they stand for).
fn final_mean(layer: &LayerActivations, stat: impl Fn(&ActivationRecord) -> f64) -> f64 {
    layer.final_mean(Pass::Train, FINAL_STRETCH, stat)
}

/// The dead fraction per layer over the end of training (the health report's "dead
/// at end" column and the measure of its dead-unit verdict, by each layer's
/// [`DeadRule`](crate::activations::DeadRule)), with the verdict's threshold as a
/// guide.
pub fn dead_per_layer(log: &ActivationLog) -> Option<BarChart> {
    let mut chart = BarChart::new(
        "Dead activations per layer (last quarter of training)",
        "layer",
        dead_measure(log),
    )
    .format(ValueFormat::Percent)
    .value_range(0.0, 1.0)
    .guide(DEAD_FRACTION, "dead-unit warning");
    let mut any = false;
    for layer in &log.layers {
        if layer.records_of(Pass::Train).any(|r| r.count > 0) {
            any = true;
            chart.push(
                dead_label(log, layer),
                final_mean(layer, ActivationRecord::dead_fraction),
            );
        }
    }
    any.then_some(chart)
}

/// Saturated fraction (`|x| > saturation`) of each tanh-like layer: at the snapshot
/// batch when there is one (Karpathy's figure), otherwise over the end of training.
/// `None` when no layer is bounded by ±1.
pub fn saturation_per_layer(log: &ActivationLog) -> Option<BarChart> {
    let bounded: Vec<_> = log
        .layers
        .iter()
        .filter(|l| l.is_bounded(BOUNDED_SLACK))
        .collect();
    if bounded.is_empty() {
        return None;
    }
    let value_label = format!("fraction with |x| > {}", log.config.saturation);
    let mut chart = match &log.snapshot {
        Some(snap) => {
            let mut chart = BarChart::new(
                format!("Saturated units per layer at training batch {}", snap.call),
                "layer",
                value_label,
            );
            for layer in snap
                .layers
                .iter()
                .filter(|s| bounded.iter().any(|b| b.path == s.path))
            {
                chart.push(layer.label(), layer.record.saturated);
            }
            chart
        }
        None => {
            let mut chart = BarChart::new(
                "Saturated units per layer (last quarter of training)",
                "layer",
                value_label,
            );
            for layer in &bounded {
                if layer.records_of(Pass::Train).any(|r| r.count > 0) {
                    chart.push(layer.label(), final_mean(layer, |r| r.saturated));
                }
            }
            chart
        }
    };
    chart = chart
        .format(ValueFormat::Percent)
        .value_range(0.0, 1.0)
        .guide(SATURATED_FRACTION, "saturation warning");
    Some(chart)
}

/// Karpathy's activation-distribution figure: each layer's histogram at the snapshot
/// call as a density curve, its legend entry carrying mean, std and saturation.
pub fn activation_histograms(log: &ActivationLog) -> Option<HistogramOverlay> {
    let snap = log.snapshot.as_ref().filter(|s| !s.layers.is_empty())?;
    let mut figure = HistogramOverlay::new(
        format!("Activation distribution at training batch {}", snap.call),
        snap.layers[0].spec.value_label(),
    );
    for layer in &snap.layers {
        let counts = fold_outliers(&layer.counts, layer.below, layer.above);
        if counts.iter().all(|&c| c == 0) {
            continue; // nothing finite to draw
        }
        figure.push(
            Histogram::from_range(layer.label(), layer.spec.lo, layer.spec.hi, counts)
                .stats(layer.stat_line()),
        );
    }
    Some(figure)
}

/// Karpathy's saturation map: examples down, units across, white where `|h| >
/// threshold`.
pub fn saturation_map(log: &ActivationLog) -> Option<BinaryImage> {
    let map = log
        .saturation_map
        .as_ref()
        .filter(|m| m.rows > 0 && m.cols > 0)?;
    let label = log
        .layer(&map.layer)
        .map_or_else(|| map.layer.clone(), |l| l.label());
    Some(
        BinaryImage::from_flat(
            format!(
                "Saturated units of {label} at training batch {} ({} always saturated)",
                map.call,
                map.always_saturated_units().len()
            ),
            "unit",
            "example",
            map.rows,
            map.cols,
            map.cells.clone(),
        )
        .white_means(format!("|h| > {}", map.threshold)),
    )
}

/// Karpathy's gradient-distribution figure: each parameter's gradient histogram at
/// one step, its legend entry carrying mean, std and grad:data.
pub fn gradient_histograms(log: &GradientLog) -> Option<HistogramOverlay> {
    let mut figure = None::<HistogramOverlay>;
    for p in &log.params {
        let Some(h) = &p.histogram else { continue };
        if h.counts.iter().all(|&c| c == 0) {
            continue;
        }
        figure
            .get_or_insert_with(|| {
                HistogramOverlay::new(
                    format!("Gradient distribution at step {}", h.step),
                    "gradient",
                )
            })
            .push(
                Histogram::from_range(p.label(), h.spec.lo, h.spec.hi, h.counts.clone()).stats(
                    format!(
                        "mean {:+.3}, std {:.3}, grad:data {:.3}",
                        Num(h.record.grad_mean),
                        Num(h.record.grad_std),
                        Num(h.record.grad_data)
                    ),
                ),
            );
    }
    figure
}

/// Grad:data ratio per parameter over the recorded steps (log scale).
pub fn grad_data(log: &GradientLog) -> Option<LinePlot> {
    let mut plot = LinePlot::new(
        "Grad:data ratio per parameter",
        "step",
        "std(grad) / std(data) (log scale)",
    )
    .y_scale(Scale::Log10);
    let mut any = false;
    for p in log
        .params
        .iter()
        .filter(|p| p.records.iter().any(|r| r.grad_data > 0.0))
    {
        any = true;
        plot.push(Series::new(
            p.label(),
            p.records.iter().map(|r| (r.x(), r.grad_data)),
        ));
    }
    any.then_some(plot)
}

/// Karpathy's update:data figure: log10 of `std(lr * grad) / std(data)` per parameter
/// over the steps, with the guide at -3 (an update of a thousandth of the data).
pub fn update_data(log: &GradientLog) -> Option<LinePlot> {
    let mut plot = LinePlot::new(
        "Update:data ratio per parameter",
        "step",
        "log10 std(lr * grad) / std(data)",
    )
    .guide(-3.0, "1e-3 (rule of thumb)");
    let mut any = false;
    for p in &log.params {
        if p.records.iter().any(|r| r.update_data_log10.is_finite()) {
            any = true;
            plot.push(Series::new(
                p.label(),
                p.records.iter().map(|r| (r.x(), r.update_data_log10)),
            ));
        }
    }
    any.then_some(plot)
}

/// Training loss per step, and validation loss (dashed) where recorded. A folded
/// point (a long run) is the mean loss of its steps, at their middle.
pub fn loss_curves(log: &LossLog) -> Option<LinePlot> {
    let finite = |v: &[LossPoint]| v.iter().any(|p| p.loss.is_finite());
    if !finite(&log.train) && !finite(&log.valid) {
        return None;
    }
    let mut plot = LinePlot::new("Loss", "training step", "loss");
    if !log.train.is_empty() {
        plot.push(Series::new(
            "train",
            log.train.iter().map(|p| (p.x(), p.loss)),
        ));
    }
    if !log.valid.is_empty() {
        plot.push(Series::new("valid", log.valid.iter().map(|p| (p.x(), p.loss))).dashed());
    }
    Some(plot)
}

/// Every figure the log has data for, with its file name (no extension), in the
/// order of the table in the module docs.
pub fn all_figures(log: &TrainingLog) -> Vec<(&'static str, Figure)> {
    let mut figures: Vec<(&'static str, Option<Figure>)> = Vec::new();
    if let Some(acts) = &log.activations {
        figures.extend([
            ("activation_means", activation_means(acts).map(Figure::Line)),
            ("activation_stds", activation_stds(acts).map(Figure::Line)),
            ("color_dim", color_dim(acts).map(Figure::Heatmap)),
            ("dead_chart", dead_chart(acts).map(Figure::Line)),
            ("dead_per_layer", dead_per_layer(acts).map(Figure::Bars)),
            (
                "saturation_per_layer",
                saturation_per_layer(acts).map(Figure::Bars),
            ),
            (
                "activation_histograms",
                activation_histograms(acts).map(Figure::Overlay),
            ),
            ("saturation_map", saturation_map(acts).map(Figure::Binary)),
        ]);
    }
    if let Some(grads) = &log.gradients {
        figures.extend([
            (
                "gradient_histograms",
                gradient_histograms(grads).map(Figure::Overlay),
            ),
            ("grad_data", grad_data(grads).map(Figure::Line)),
            ("update_data", update_data(grads).map(Figure::Line)),
        ]);
    }
    figures.push(("loss", loss_curves(&log.losses).map(Figure::Line)));
    figures
        .into_iter()
        .filter_map(|(name, f)| f.map(|f| (name, f)))
        .collect()
}

/// Writes every figure that has data into `dir` (which must exist; the plots crate
/// creates no directories) and returns the files written, in the order of the table
/// in the module docs.
///
/// # Errors
/// The first figure that fails, as [`DiagError::Plot`](crate::error::DiagError::Plot)
/// (which names the figure, the file and the values).
pub fn write_all_plots(
    log: &TrainingLog,
    dir: &Path,
    opts: &FigureOptions,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (name, figure) in all_figures(log) {
        files.extend(figure.save(dir, name, opts)?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_logs_draw_nothing() {
        let log = TrainingLog::default();
        assert!(all_figures(&log).is_empty());
        let dir = std::env::temp_dir();
        assert!(write_all_plots(&log, &dir, &FigureOptions::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn final_means_use_the_last_quarter() {
        let cfg = crate::activations::ActivationConfig::relu();
        let records: Vec<ActivationRecord> = (0..8)
            .map(|i| {
                let s = kernels::cpu::stats::stats(&[i as f32], &cfg.stats_config()).unwrap();
                ActivationRecord::from_stats(i, Pass::Train, &s, &cfg)
            })
            .collect();
        let mut layer = LayerActivations {
            path: "0".into(),
            kind: "ReLU".into(),
            dead_rule: crate::activations::DeadRule::for_layer(Some(0.0), &cfg),
            records,
            first_non_finite: None,
        };
        // The last quarter of 8 records is records 6 and 7.
        assert_eq!(final_mean(&layer, |r| r.mean), 6.5);
        // Records 0..=5 folded into one: it stands for 6 of the 8 calls, so the last
        // quarter is still records 6 and 7.
        let mut folded = layer.records[0].clone();
        for r in &layer.records[1..6] {
            folded.merge(r);
        }
        let tail = layer.records.split_off(6);
        layer.records = std::iter::once(folded).chain(tail).collect();
        assert_eq!(final_mean(&layer, |r| r.mean), 6.5);
    }
}
