//! LinePlot: renders readable PNG/SVG files, skips undrawable points, rejects bad data.

mod common;

use common::{assert_drawn, read_png, read_svg, title_ink, Scratch};
use plots::{LinePlot, PlotError, Scale, Series};

fn layers_plot(title: &str) -> LinePlot {
    let mut plot = LinePlot::new(title, "batch", "std");
    for layer in 0..5 {
        let ys = (0..100)
            .map(move |b| (f64::from(b) / 10.0 + f64::from(layer)).sin() + f64::from(layer));
        plot.push(Series::from_ys(format!("layers.{layer} (ReLU)"), ys));
    }
    plot
}

#[test]
fn png_has_requested_size_and_ink() {
    let dir = Scratch::new("line-png");
    let path = dir.join("stds.png");
    layers_plot("Activation std")
        .save_png(&path, 1000, 600)
        .unwrap();
    let image = read_png(&path, 1000, 600);
    assert_drawn(&image, 0.02);
    // The legend column on the right holds the series colours.
    let legend = image.ink_fraction((800, 60), (1000, 200));
    assert!(legend > 0.01, "legend ink {legend}");
}

#[test]
fn title_text_is_rendered() {
    let dir = Scratch::new("line-title");
    let titled = dir.join("titled.png");
    let untitled = dir.join("untitled.png");
    layers_plot("A clearly visible title")
        .save_png(&titled, 1000, 600)
        .unwrap();
    layers_plot("").save_png(&untitled, 1000, 600).unwrap();
    let with = title_ink(&read_png(&titled, 1000, 600));
    let without = title_ink(&read_png(&untitled, 1000, 600));
    assert!(with > 0.02, "title strip ink {with}");
    assert_eq!(without, 0.0, "an empty title draws nothing");
}

#[test]
fn svg_contains_title_labels_and_legend() {
    let dir = Scratch::new("line-svg");
    let path = dir.join("stds.svg");
    layers_plot("Activation <std> & mean")
        .save_svg(&path, 900, 500)
        .unwrap();
    let svg = read_svg(&path, 900, 500);
    assert!(
        svg.contains("Activation &lt;std&gt; &amp; mean"),
        "escaped title"
    );
    assert!(svg.contains("batch"));
    assert!(svg.contains("layers.4 (ReLU)"));
    assert!(svg.contains("<polyline") || svg.contains("<path") || svg.contains("<line"));
}

#[test]
fn log_axes_skip_nan_zero_and_negative_points() {
    let dir = Scratch::new("line-log");
    let path = dir.join("lr.png");
    let lrs = vec![
        1e-5,
        1e-4,
        0.0,
        -1e-3,
        f64::NAN,
        1e-2,
        1e-1,
        f64::INFINITY,
        1.0,
    ];
    let losses = vec![2.3, 2.2, 2.1, 2.0, 1.9, -1.0, 1.0, 1.2, 0.0];
    LinePlot::new("LR finder", "lr", "loss")
        .series(Series::from_xy("loss", lrs, losses))
        .x_scale(Scale::Log10)
        .y_scale(Scale::Log10)
        .marker(1e-1, 1.0, "suggestion")
        .guide(2.0, "start")
        .save_png(&path, 800, 500)
        .unwrap();
    // Few points survive: a short line, a dot, the guide and the marker.
    assert_drawn(&read_png(&path, 800, 500), 0.01);
}

#[test]
fn isolated_points_and_partly_empty_series_render() {
    let dir = Scratch::new("line-sparse");
    let path = dir.join("sparse.png");
    LinePlot::new("Sparse", "x", "y")
        .series(Series::new("single", [(1.0, 1.0)]))
        .series(Series::new("all NaN", [(f64::NAN, 1.0), (2.0, f64::NAN)]))
        .series(Series::new("empty", []))
        .save_png(&path, 400, 300)
        .unwrap();
    read_png(&path, 400, 300);
}

#[test]
fn many_series_and_long_names_fit() {
    let dir = Scratch::new("line-many");
    let path = dir.join("many.png");
    let mut plot = LinePlot::new("Fifty layers", "batch", "mean");
    for i in 0..50 {
        plot.push(Series::from_ys(
            format!("model.body.block{i}.conv.very.long.path.name.that.goes.on (Conv2d 64->64)"),
            (0..30).map(|b| f64::from(b * i)),
        ));
    }
    plot.save_png(&path, 1000, 600).unwrap();
    plot.save_png(&path, 200, 200).unwrap();
    read_png(&path, 200, 200);
}

#[test]
fn empty_data_is_an_error() {
    let dir = Scratch::new("line-empty");
    let path = dir.join("empty.png");
    let err = LinePlot::new("Nothing", "x", "y")
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("line plot \"Nothing\""), "{err}");
    assert!(err.to_string().contains("empty.png"), "{err}");

    let err = LinePlot::new("Only NaN", "x", "y")
        .series(Series::from_ys("a", [f64::NAN, f64::INFINITY]))
        .series(Series::from_ys("b", []))
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");

    let err = LinePlot::new("Non-positive on log y", "x", "y")
        .series(Series::from_ys("a", [0.0, -1.0]))
        .y_scale(Scale::Log10)
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    assert!(dir.files().is_empty(), "nothing written: {:?}", dir.files());
}

#[test]
fn mismatched_columns_name_the_series() {
    let dir = Scratch::new("line-mismatch");
    let err = LinePlot::new("Ragged", "x", "y")
        .series(Series::from_xy(
            "train",
            vec![1.0, 2.0, 3.0],
            vec![1.0, 2.0],
        ))
        .save_png(dir.join("r.png"), 800, 600)
        .unwrap_err();
    match &err {
        PlotError::LengthMismatch {
            what,
            expected,
            found,
            ..
        } => {
            assert!(what.contains("\"train\""), "{what}");
            assert_eq!((*expected, *found), (3, 2));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn undrawable_guides_and_markers_are_errors() {
    let dir = Scratch::new("line-guide");
    let base = || LinePlot::new("G", "x", "y").series(Series::from_ys("a", [1.0, 2.0]));
    let err = base()
        .guide(f64::NAN, "nan guide")
        .save_png(dir.join("g.png"), 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::InvalidValue { .. }), "{err}");
    let err = base()
        .y_scale(Scale::Log10)
        .guide(0.0, "zero on log")
        .save_png(dir.join("g.png"), 800, 600)
        .unwrap_err();
    assert!(err.to_string().contains("zero on log"), "{err}");
    let err = base()
        .x_scale(Scale::Log10)
        .marker(-1.0, 1.0, "negative lr")
        .save_png(dir.join("g.png"), 800, 600)
        .unwrap_err();
    assert!(
        matches!(err, PlotError::InvalidValue { value, .. } if value == -1.0),
        "{err}"
    );
}

#[test]
fn data_spanning_more_than_f64_is_an_error() {
    let dir = Scratch::new("line-huge");
    let err = LinePlot::new("Huge", "x", "y")
        .series(Series::from_ys("a", [-f64::MAX, f64::MAX]))
        .save_png(dir.join("h.png"), 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::InvalidRange { .. }), "{err}");
}
