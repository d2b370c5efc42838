//! Writes one of each figure, drawn from synthetic data shaped like what the
//! diagnostics callbacks record, into the folder given on the command line.
//!
//! ```text
//! cargo run -p plots --example gallery -- /tmp/gallery
//! ```
//!
//! The folder must exist. The data is deterministic (a small linear congruential
//! generator), so the pictures are the same on every run.

use std::error::Error;
use std::path::{Path, PathBuf};

use plots::{
    BarChart, BinaryImage, HeatmapPanel, Histogram, HistogramHeatmap, HistogramOverlay, LinePlot,
    Scale, Series, ValueFormat,
};

/// Layer paths of a small CNN, as the activation hooks would name them.
const LAYERS: [&str; 6] = [
    "layers.0 (Conv2d 1->8)",
    "layers.1 (Conv2d 8->16)",
    "layers.2 (Conv2d 16->32)",
    "layers.3 (Conv2d 32->64)",
    "layers.4 (Conv2d 64->10)",
    "head (Linear)",
];

/// Deterministic uniform numbers in [0, 1) (Knuth's MMIX LCG), so the gallery needs
/// no random-number crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // The top 53 bits fill an f64 mantissa exactly.
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal noise (sum of uniforms), mean 0, std about `scale`.
    fn noise(&mut self, scale: f64) -> f64 {
        let sum: f64 = (0..12).map(|_| self.next()).sum();
        (sum - 6.0) * scale
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: gallery <existing output folder>");
        std::process::exit(2);
    };
    let mut rng = Lcg(42);
    let written = [
        activation_stds(&dir, &mut rng)?,
        loss_curves(&dir, &mut rng)?,
        lr_finder(&dir, &mut rng)?,
        update_ratios(&dir, &mut rng)?,
        color_dim(&dir, &mut rng)?,
        dead_chart(&dir, &mut rng)?,
        tanh_histograms(&dir, &mut rng)?,
        dead_bars(&dir)?,
        saturation_map(&dir, &mut rng)?,
    ];
    for path in written.iter().flatten() {
        println!("{}", path.display());
    }
    Ok(())
}

/// Activation std per layer over batches: the baseline CNN's rise-and-collapse.
fn activation_stds(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut plot = LinePlot::new("Activation std per layer", "batch", "std of activations");
    for (depth, layer) in LAYERS.iter().enumerate() {
        let ys = (0..120).map(|batch| {
            let t = f64::from(batch) / 40.0;
            let spike = (1.0 + depth as f64) * (t * (-t).exp()) * 2.0;
            (0.35f64.powi(depth as i32) + spike + rng.noise(0.02)).max(0.0)
        });
        plot.push(Series::from_ys(*layer, ys));
    }
    let png = dir.join("activation_std.png");
    let svg = dir.join("activation_std.svg");
    plot.save_png(&png, 1000, 600)?;
    plot.save_svg(&svg, 1000, 600)?;
    Ok(vec![png, svg])
}

/// Train and valid loss; valid is dashed and has a NaN gap.
fn loss_curves(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let train: Vec<(f64, f64)> = (0..200)
        .map(|step| {
            let s = f64::from(step);
            (s, 0.4 + 1.9 * (-s / 40.0).exp() + rng.noise(0.04))
        })
        .collect();
    let valid: Vec<(f64, f64)> = (0..=10)
        .map(|epoch| {
            let s = f64::from(epoch) * 20.0;
            let loss = if epoch == 6 {
                f64::NAN
            } else {
                0.5 + 1.8 * (-s / 45.0).exp()
            };
            (s, loss)
        })
        .collect();
    let path = dir.join("loss.png");
    LinePlot::new("Loss", "step", "cross-entropy loss")
        .series(Series::new("train", train))
        .series(Series::new("valid (NaN at step 120 skipped)", valid).dashed())
        .guide(10f64.ln(), "ln(10): chance level")
        .save_png(&path, 1000, 600)?;
    Ok(vec![path])
}

/// LR finder: loss against learning rate on a log axis, with the suggestion marked.
fn lr_finder(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let points: Vec<(f64, f64)> = (0..100)
        .map(|i| {
            let lr = 1e-6 * 10f64.powf(f64::from(i) / 14.0);
            let x = lr.log10();
            let loss =
                2.3 - 1.2 / (1.0 + (-(x + 2.5) * 2.5).exp()) + (x + 0.7).max(0.0).powi(2) * 6.0;
            (lr, loss + rng.noise(0.01))
        })
        .collect();
    let path = dir.join("lr_finder.png");
    LinePlot::new("LR finder", "learning rate (log scale)", "loss")
        .series(Series::new("smoothed loss", points))
        .x_scale(Scale::Log10)
        .marker(3e-2, 1.12, "suggested lr 3e-2 (steepest descent)")
        .save_png(&path, 1000, 600)?;
    Ok(vec![path])
}

/// update:data ratios per parameter over steps, on a log y axis with the 1e-3 guide.
fn update_ratios(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut plot = LinePlot::new(
        "update:data ratio per parameter",
        "step",
        "std(lr * grad) / std(data)",
    )
    .y_scale(Scale::Log10)
    .guide(1e-3, "1e-3 (rule of thumb)");
    for (i, layer) in LAYERS.iter().enumerate() {
        let ys = (0..300).map(|step| {
            let base = 10f64.powf(-2.0 - 0.35 * i as f64 - f64::from(step) / 300.0);
            // A parameter that got no update at step 150 (ratio 0) is skipped on log y.
            if i == 0 && step == 150 {
                0.0
            } else {
                base * (1.0 + rng.noise(0.1))
            }
        });
        plot.push(Series::from_ys(format!("{layer}.weight"), ys));
    }
    let path = dir.join("update_ratios.png");
    plot.save_png(&path, 1000, 600)?;
    Ok(vec![path])
}

/// Per-layer histograms of |activation| over batches: early layers spread out, deep
/// layers rise, crash to zero and slowly recover (the baseline's "color_dim" picture).
fn color_dim(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    const BINS: usize = 40;
    const BATCHES: usize = 150;
    let (lo, hi) = (0.0, 10.0);
    let mut figure = HistogramHeatmap::new(
        "Histograms of |activation| per layer (color_dim)",
        "batch",
        "|activation|",
    )
    .batch_numbering(0.0, 2.0);
    for (depth, layer) in LAYERS.iter().enumerate() {
        let histograms = (0..BATCHES)
            .map(|batch| {
                let t = batch as f64 / BATCHES as f64;
                // Typical magnitude: grows, crashes at t = 0.3 for deep layers, recovers.
                let crash = if depth >= 2 && t > 0.3 {
                    0.05 + (t - 0.3) * 2.0
                } else {
                    1.0
                };
                let scale = (0.4 + 3.0 * t * (1.0 + depth as f64 * 0.3)) * crash.min(1.0);
                let mut counts = vec![0u64; BINS];
                for _ in 0..400 {
                    let v = (rng.noise(scale)).abs();
                    if v < hi {
                        // In range by the check above, so the bin index is < BINS.
                        counts[((v - lo) / (hi - lo) * BINS as f64) as usize] += 1;
                    }
                }
                counts
            })
            .collect();
        figure.push(HeatmapPanel::new(*layer, lo, hi, histograms));
    }
    let path = dir.join("color_dim.png");
    figure.save_png(&path, 1200, 800)?;
    Ok(vec![path])
}

/// The dead chart: share of near-zero activations per layer over batches.
fn dead_chart(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut plot = LinePlot::new(
        "Dead chart: activations near zero",
        "batch",
        "fraction |a| < 1e-2",
    );
    for (depth, layer) in LAYERS.iter().enumerate() {
        let ys = (0..150).map(|batch| {
            let t = f64::from(batch) / 150.0;
            let dead = 0.1 + 0.12 * depth as f64 * (1.0 - (-6.0 * t).exp());
            (dead + rng.noise(0.01)).clamp(0.0, 1.0)
        });
        plot.push(Series::from_ys(*layer, ys));
    }
    let path = dir.join("dead_chart.png");
    plot.save_png(&path, 1000, 600)?;
    Ok(vec![path])
}

/// Karpathy's per-layer tanh histograms at one step, with statistics in the legend.
fn tanh_histograms(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    const BINS: usize = 50;
    let mut figure = HistogramOverlay::new("Activation distribution at step 1000", "tanh output");
    for layer in 1..=5 {
        let gain = 0.6 + 0.5 * f64::from(layer);
        let mut counts = vec![0u64; BINS];
        let (mut sum, mut sum_sq, mut saturated, n) = (0.0, 0.0, 0u32, 20_000u32);
        for _ in 0..n {
            let h = rng.noise(gain).tanh();
            sum += h;
            sum_sq += h * h;
            if h.abs() > 0.97 {
                saturated += 1;
            }
            // h lies in (-1, 1), so the bin index lies in 0..BINS.
            let bin = (((h + 1.0) / 2.0) * BINS as f64) as usize;
            counts[bin.min(BINS - 1)] += 1;
        }
        let mean = sum / f64::from(n);
        let std = (sum_sq / f64::from(n) - mean * mean).sqrt();
        let stats = format!(
            "mean {mean:+.2}, std {std:.2}, saturated {:.1}%",
            100.0 * f64::from(saturated) / f64::from(n)
        );
        figure.push(
            Histogram::from_range(format!("layer {layer} (Tanh)"), -1.0, 1.0, counts).stats(stats),
        );
    }
    let png = dir.join("tanh_histograms.png");
    figure.save_png(&png, 1000, 600)?;
    Ok(vec![png])
}

/// Dead fraction per layer as a bar chart, with one layer whose statistic is NaN.
fn dead_bars(dir: &Path) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let mut chart = BarChart::new(
        "Dead units per layer after 1 epoch",
        "layer",
        "fraction of activations near zero",
    )
    .format(ValueFormat::Percent)
    .value_range(0.0, 1.0)
    .guide(0.5, "50%: most units dead");
    let fractions = [
        0.08,
        0.21,
        0.47,
        0.66,
        0.83,
        0.12,
        0.05,
        f64::NAN,
        0.31,
        0.02,
    ];
    let names = [
        "layers.0.0 (Conv2d)",
        "layers.0.1 (ReLU)",
        "layers.1.0 (Conv2d)",
        "layers.1.1 (ReLU)",
        "layers.2.0 (Conv2d)",
        "layers.2.1 (ReLU)",
        "layers.3.0 (Conv2d)",
        "layers.3.1 (ReLU)",
        "layers.4 (Conv2d)",
        "head (Linear)",
    ];
    for (name, fraction) in names.iter().zip(fractions) {
        chart.push(*name, fraction);
    }
    let png = dir.join("dead_bars.png");
    let svg = dir.join("dead_bars.svg");
    chart.save_png(&png, 1000, 600)?;
    chart.save_svg(&svg, 1000, 600)?;
    Ok(vec![png, svg])
}

/// Karpathy's saturation map: 32 examples x 200 tanh units, white where |h| > 0.99;
/// units 17, 88 and 140 are saturated for every example.
fn saturation_map(dir: &Path, rng: &mut Lcg) -> Result<Vec<PathBuf>, Box<dyn Error>> {
    let rows: Vec<Vec<bool>> = (0..32)
        .map(|_| {
            (0..200)
                .map(|unit| [17, 88, 140].contains(&unit) || rng.next() < 0.15)
                .collect()
        })
        .collect();
    let path = dir.join("saturation_map.png");
    BinaryImage::from_rows(
        "Saturated tanh units (|h| > 0.99)",
        "hidden unit",
        "example",
        rows,
    )
    .white_means("|h| > 0.99")
    .save_png(&path, 1000, 600)?;
    Ok(vec![path])
}
