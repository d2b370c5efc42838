//! BarChart: one readable horizontal bar per category; NaN values are called out.

mod common;

use common::{assert_drawn, read_png, read_svg, Scratch};
use plots::{BarChart, PlotError, ValueFormat};

fn dead_fractions() -> BarChart {
    let mut chart = BarChart::new("Dead units per layer", "layer", "fraction near zero")
        .format(ValueFormat::Percent)
        .guide(0.5, "half dead");
    for (i, value) in [0.1, 0.3, 0.5, 0.7, 0.9, 0.2, f64::NAN, 0.05, 0.6, 0.0]
        .into_iter()
        .enumerate()
    {
        chart.push(format!("layers.{i} (ReLU)"), value);
    }
    chart
}

#[test]
fn ten_bars_render() {
    let dir = Scratch::new("bar-png");
    let path = dir.join("dead.png");
    dead_fractions().save_png(&path, 1000, 600).unwrap();
    let image = read_png(&path, 1000, 600);
    assert_drawn(&image, 0.05);
    // Category names on the left.
    assert!(image.ink_fraction((40, 60), (200, 520)) > 0.02);
}

#[test]
fn svg_lists_every_category_and_the_nan() {
    let dir = Scratch::new("bar-svg");
    let path = dir.join("dead.svg");
    dead_fractions().save_svg(&path, 1000, 600).unwrap();
    let svg = read_svg(&path, 1000, 600);
    assert!(svg.contains("Dead units per layer"));
    for i in 0..10 {
        assert!(svg.contains(&format!("layers.{i} (ReLU)")), "category {i}");
    }
    assert!(svg.contains("NaN"));
    assert!(svg.contains("90.0%"));
    assert!(svg.contains("half dead"));
}

#[test]
fn negative_and_all_nan_values_render() {
    let dir = Scratch::new("bar-neg");
    let path = dir.join("neg.png");
    BarChart::new("Mixed", "c", "v")
        .bar("a", -2.0)
        .bar("b", 3.0)
        .save_png(&path, 600, 400)
        .unwrap();
    read_png(&path, 600, 400);
    BarChart::new("NaN only", "c", "v")
        .bar("a", f64::NAN)
        .save_png(&path, 600, 400)
        .unwrap();
    read_png(&path, 600, 400);
}

#[test]
fn bad_input_is_an_error() {
    let dir = Scratch::new("bar-bad");
    let path = dir.join("bad.png");
    let err = BarChart::new("Empty", "c", "v")
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    let err = BarChart::new("Range", "c", "v")
        .bar("a", 1.0)
        .value_range(1.0, 0.0)
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(
        matches!(err, PlotError::InvalidRange { lo, hi, .. } if lo == 1.0 && hi == 0.0),
        "{err}"
    );
    let err = BarChart::new("Guide", "c", "v")
        .bar("a", 1.0)
        .guide(f64::NAN, "g")
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::InvalidValue { .. }), "{err}");
    assert!(dir.files().is_empty());
}
