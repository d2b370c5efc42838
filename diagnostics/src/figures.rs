//! The figures of a run, drawn with the `plots` crate: one function per figure, each
//! returning `Ok(None)` when the log holds nothing to draw, and
//! [`write_all_plots`], which writes every figure that has data.
//!
//! | file | what it shows | lesson |
//! |---|---|---|
//! | `activation_means` | mean of each layer's output per batch | fastai 10 |
//! | `activation_stds` | std per batch (log scale: spikes and collapses show) | fastai 10 |
//! | `dead_chart` | fraction of dead outputs per batch | fastai 10 |
//! | `activation_histograms` | per-layer histograms at one batch, with mean/std/saturation | Karpathy 3 |
//! | `gradient_histograms` | per-parameter gradient histograms at one step, with grad:data | Karpathy 3 |
//! | `grad_data` | grad:data ratio per parameter over steps | Karpathy 3 |
//! | `update_data` | log10 update:data per parameter over steps, guide at -3 | Karpathy 3 |
//! | `loss` | training (and validation) loss | both |

use std::path::{Path, PathBuf};

use plots::{LinePlot, Scale, Series};

use crate::activations::{ActivationLog, Pass};
use crate::error::Result;
use crate::gradients::GradientLog;
use crate::losses::LossLog;
use crate::training_log::TrainingLog;

/// Size and formats of the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FigureOptions {
    /// Width of a line plot, in pixels.
    pub width: u32,
    /// Height of a line plot, in pixels.
    pub height: u32,
    /// Also write an SVG beside each line plot's PNG (cheap: a few kB per figure).
    pub svg: bool,
}

impl Default for FigureOptions {
    /// 1000 x 600, with SVGs.
    fn default() -> Self {
        Self {
            width: 1000,
            height: 600,
            svg: true,
        }
    }
}

/// Saves a line plot as `dir/name.png` (and `.svg`), returning the files written.
fn save_line(
    plot: &LinePlot,
    dir: &Path,
    name: &str,
    opts: &FigureOptions,
) -> Result<Vec<PathBuf>> {
    let png = dir.join(format!("{name}.png"));
    plot.save_png(&png, opts.width, opts.height)?;
    let mut files = vec![png];
    if opts.svg {
        let svg = dir.join(format!("{name}.svg"));
        plot.save_svg(&svg, opts.width, opts.height)?;
        files.push(svg);
    }
    Ok(files)
}

/// One series per layer of a per-record statistic over the training calls, or `None`
/// if no layer has a training record.
fn per_layer_plot(
    log: &ActivationLog,
    title: &str,
    y_label: &str,
    stat: impl Fn(&crate::activations::ActivationRecord) -> f64,
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

/// The dead chart: the fraction of each layer's outputs in the lowest bins of the
/// magnitude histogram (fastai's `get_min`), or near zero for signed histograms.
pub fn dead_chart(log: &ActivationLog) -> Option<LinePlot> {
    let what = if log.config.has_low_bins() {
        let width = log.config.histogram.bin_width() * log.config.dead_bins as f64;
        format!("fraction with |x| < {width}")
    } else {
        format!("fraction with |x| < {:e}", log.config.near_zero)
    };
    per_layer_plot(
        log,
        "Dead chart: near-zero activations per layer",
        &what,
        |r| r.dead_fraction(),
    )
}

/// Karpathy's activation-distribution figure: each layer's histogram at the snapshot
/// call as a density curve, its legend entry carrying mean, std and saturation.
pub fn activation_histograms(log: &ActivationLog) -> Option<LinePlot> {
    let snap = log.snapshot.as_ref()?;
    let mut plot = LinePlot::new(
        format!("Activation distribution at training batch {}", snap.call),
        "activation",
        "density",
    );
    for layer in &snap.layers {
        let counts = crate::histogram::fold_outliers(&layer.counts, layer.below, layer.above);
        plot.push(Series::new(
            format!("{}: {}", layer.label(), layer.stat_line()),
            density_curve(&layer.spec.edges(), &counts),
        ));
    }
    (!snap.layers.is_empty()).then_some(plot)
}

/// `(bin centre, density)` points of a histogram (density integrates to 1).
fn density_curve(edges: &[f64], counts: &[u64]) -> Vec<(f64, f64)> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(edges.windows(2))
        .map(|(&c, w)| {
            let width = w[1] - w[0];
            let density = if total == 0 {
                0.0
            } else {
                c as f64 / (total as f64 * width)
            };
            (0.5 * (w[0] + w[1]), density)
        })
        .collect()
}

/// Karpathy's gradient-distribution figure: each parameter's gradient histogram at
/// one step, its legend entry carrying mean, std and grad:data.
pub fn gradient_histograms(log: &GradientLog) -> Option<LinePlot> {
    let mut plot = None::<LinePlot>;
    for p in &log.params {
        let Some(h) = &p.histogram else { continue };
        let plot = plot.get_or_insert_with(|| {
            LinePlot::new(
                format!("Gradient distribution at step {}", h.step),
                "gradient",
                "density",
            )
        });
        plot.push(Series::new(
            format!(
                "{}: mean {:+.2e}, std {:.2e}, grad:data {:.2e}",
                p.label(),
                h.record.grad_mean,
                h.record.grad_std,
                h.record.grad_data
            ),
            density_curve(&h.spec.edges(), &h.counts),
        ));
    }
    plot
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
    for p in &log.params {
        if p.records.is_empty() {
            continue;
        }
        any = true;
        plot.push(Series::new(
            p.label(),
            p.records.iter().map(|r| (r.step as f64, r.grad_data)),
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
                p.records
                    .iter()
                    .map(|r| (r.step as f64, r.update_data_log10)),
            ));
        }
    }
    any.then_some(plot)
}

/// Training loss per step, and validation loss (dashed) where recorded.
pub fn loss_curves(log: &LossLog) -> Option<LinePlot> {
    if log.is_empty() {
        return None;
    }
    let mut plot = LinePlot::new("Loss", "training step", "loss");
    if !log.train.is_empty() {
        plot.push(Series::new(
            "train",
            log.train.iter().map(|&(s, l)| (s as f64, l)),
        ));
    }
    if !log.valid.is_empty() {
        plot.push(Series::new("valid", log.valid.iter().map(|&(s, l)| (s as f64, l))).dashed());
    }
    Some(plot)
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
    if let Some(acts) = &log.activations {
        let figures = [
            ("activation_means", activation_means(acts)),
            ("activation_stds", activation_stds(acts)),
            ("dead_chart", dead_chart(acts)),
            ("activation_histograms", activation_histograms(acts)),
        ];
        for (name, plot) in figures {
            if let Some(plot) = plot {
                files.extend(save_line(&plot, dir, name, opts)?);
            }
        }
    }
    if let Some(grads) = &log.gradients {
        let figures = [
            ("gradient_histograms", gradient_histograms(grads)),
            ("grad_data", grad_data(grads)),
            ("update_data", update_data(grads)),
        ];
        for (name, plot) in figures {
            if let Some(plot) = plot {
                files.extend(save_line(&plot, dir, name, opts)?);
            }
        }
    }
    if let Some(plot) = loss_curves(&log.losses) {
        files.extend(save_line(&plot, dir, "loss", opts)?);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn density_integrates_to_one() {
        let edges = [0.0, 0.5, 1.0, 2.0];
        let pts = density_curve(&edges, &[1, 1, 2]);
        let integral: f64 = pts
            .iter()
            .zip(edges.windows(2))
            .map(|((_, d), w)| d * (w[1] - w[0]))
            .sum();
        assert!((integral - 1.0).abs() < 1e-12);
        assert_eq!(pts[2].0, 1.5);
        assert!(density_curve(&edges, &[0, 0, 0])
            .iter()
            .all(|&(_, d)| d == 0.0));
    }

    #[test]
    fn empty_logs_draw_nothing() {
        let log = TrainingLog::default();
        let dir = std::env::temp_dir();
        assert!(write_all_plots(&log, &dir, &FigureOptions::default())
            .unwrap()
            .is_empty());
    }
}
