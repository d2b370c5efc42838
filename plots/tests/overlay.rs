//! HistogramOverlay: density curves with statistics in the legend; bad bins rejected.

mod common;

use common::{assert_drawn, read_png, read_svg, Scratch};
use plots::{Histogram, HistogramOverlay, PlotError};

fn tanh_like(spread: u64) -> Vec<u64> {
    (0..40u64).map(|k| 10 + (k.abs_diff(20)) * spread).collect()
}

fn overlay() -> HistogramOverlay {
    let mut figure = HistogramOverlay::new("Activations at step 1000", "tanh output");
    for layer in 1..=4u64 {
        figure.push(
            Histogram::from_range(format!("layer {layer} (Tanh)"), -1.0, 1.0, tanh_like(layer))
                .stats(format!(
                    "mean -0.0{layer}, std 0.6{layer}, saturated {layer}.1%"
                )),
        );
    }
    figure
}

#[test]
fn png_renders_curves_and_legend_with_stats() {
    let dir = Scratch::new("overlay-png");
    let path = dir.join("hist.png");
    overlay().save_png(&path, 1000, 600).unwrap();
    let image = read_png(&path, 1000, 600);
    assert_drawn(&image, 0.02);
    // Legend column: labels and the statistics line under each.
    assert!(image.ink_fraction((700, 60), (1000, 250)) > 0.02);
}

#[test]
fn svg_contains_title_and_stats() {
    let dir = Scratch::new("overlay-svg");
    let path = dir.join("hist.svg");
    overlay().save_svg(&path, 1000, 600).unwrap();
    let svg = read_svg(&path, 1000, 600);
    assert!(svg.contains("Activations at step 1000"));
    assert!(svg.contains("saturated 3.1%"));
}

#[test]
fn explicit_edges_render() {
    let dir = Scratch::new("overlay-edges");
    let path = dir.join("edges.png");
    HistogramOverlay::new("Gradients", "gradient")
        .histogram(Histogram::from_edges(
            "w1",
            vec![-1e-3, -1e-4, 0.0, 1e-4, 1e-3],
            vec![1, 40, 38, 2],
        ))
        .save_png(&path, 600, 400)
        .unwrap();
    assert_drawn(&read_png(&path, 600, 400), 0.02);
}

#[test]
fn bad_histograms_are_errors() {
    let dir = Scratch::new("overlay-bad");
    let path = dir.join("bad.png");
    let save = |h: Histogram| {
        HistogramOverlay::new("Bad", "x")
            .histogram(h)
            .save_png(&path, 800, 600)
            .unwrap_err()
    };

    let err = HistogramOverlay::new("None", "x")
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    let err = save(Histogram::from_range("zeros", 0.0, 1.0, vec![0, 0, 0]));
    assert!(
        matches!(err, PlotError::Empty { .. }) && err.to_string().contains("zeros"),
        "{err}"
    );
    let err = save(Histogram::from_range("no bins", 0.0, 1.0, vec![]));
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    let err = save(Histogram::from_range("nan", f64::NAN, 1.0, vec![1]));
    assert!(matches!(err, PlotError::InvalidRange { .. }), "{err}");
    let err = save(Histogram::from_edges("short", vec![0.0, 1.0], vec![1, 2]));
    assert!(
        matches!(
            err,
            PlotError::LengthMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = save(Histogram::from_edges(
        "unsorted",
        vec![0.0, 2.0, 1.0],
        vec![1, 2],
    ));
    assert!(
        matches!(err, PlotError::InvalidValue { value, .. } if value == 1.0),
        "{err}"
    );
    let err = save(Histogram::from_edges(
        "inf",
        vec![0.0, f64::INFINITY],
        vec![1],
    ));
    assert!(matches!(err, PlotError::InvalidValue { .. }), "{err}");
    assert!(dir.files().is_empty());
}
