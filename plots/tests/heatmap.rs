//! HistogramHeatmap: panels render as viridis grids; ragged or empty data is rejected.

mod common;

use common::{assert_drawn, read_png, title_ink, Scratch};
use plots::{HeatmapPanel, HistogramHeatmap, PlotError};

/// `batches` histograms of `bins` bins whose peak moves up over time.
fn drifting(batches: usize, bins: usize) -> Vec<Vec<u64>> {
    (0..batches)
        .map(|b| {
            let peak = b * bins / batches.max(1);
            (0..bins)
                .map(|k| {
                    if k.abs_diff(peak) < 3 {
                        500
                    } else {
                        (k % 3) as u64
                    }
                })
                .collect()
        })
        .collect()
}

fn figure(panels: usize, batches: usize) -> HistogramHeatmap {
    let mut figure = HistogramHeatmap::new("Histograms", "batch", "activation");
    for p in 0..panels {
        figure.push(HeatmapPanel::new(
            format!("layers.{p} (ReLU)"),
            -3.0,
            3.0,
            drifting(batches, 40),
        ));
    }
    figure
}

/// Whether the pixel is (close to) a viridis colour: violet-blue-green-yellow, never
/// the grey ink of text.
fn is_viridis(px: [u8; 3]) -> bool {
    let [r, g, b] = px.map(i32::from);
    (r - g).abs() > 30 || (g - b).abs() > 30 || (r - b).abs() > 30
}

#[test]
fn six_panels_render_in_a_grid() {
    let dir = Scratch::new("heat-six");
    let path = dir.join("color_dim.png");
    figure(6, 100).save_png(&path, 1200, 800).unwrap();
    let image = read_png(&path, 1200, 800);
    assert_drawn(&image, 0.3);
    assert!(title_ink(&image) > 0.01);
    // Three columns by two rows: the centre of each panel's plot is coloured.
    for (cx, cy) in [
        (250, 250),
        (600, 250),
        (900, 250),
        (250, 600),
        (600, 600),
        (900, 600),
    ] {
        assert!(
            is_viridis(image.pixel(cx, cy)),
            "panel at ({cx}, {cy}) is {:?}",
            image.pixel(cx, cy)
        );
    }
}

#[test]
fn more_batches_than_pixels_are_merged() {
    let dir = Scratch::new("heat-coalesce");
    let path = dir.join("long.png");
    figure(1, 5000)
        .columns(1)
        .batch_numbering(0.0, 10.0)
        .save_png(&path, 600, 400)
        .unwrap();
    assert_drawn(&read_png(&path, 600, 400), 0.3);
}

#[test]
fn a_single_batch_and_single_bin_render() {
    let dir = Scratch::new("heat-tiny");
    let path = dir.join("tiny.png");
    HistogramHeatmap::new("Tiny", "batch", "value")
        .panel(HeatmapPanel::new("one", 0.0, 1.0, vec![vec![7]]))
        .panel(HeatmapPanel::new(
            "zeros",
            0.0,
            1.0,
            vec![vec![0, 0], vec![0, 0]],
        ))
        .save_png(&path, 400, 300)
        .unwrap();
    read_png(&path, 400, 300);
}

#[test]
fn many_panels_at_the_minimum_size_do_not_panic() {
    let dir = Scratch::new("heat-many");
    let path = dir.join("many.png");
    figure(30, 20).save_png(&path, 200, 200).unwrap();
    read_png(&path, 200, 200);
}

#[test]
fn ragged_histograms_name_panel_and_row() {
    let dir = Scratch::new("heat-ragged");
    let mut histograms = drifting(5, 40);
    histograms[3].pop();
    let err = HistogramHeatmap::new("Ragged", "batch", "value")
        .panel(HeatmapPanel::new("conv1", 0.0, 1.0, histograms))
        .save_png(dir.join("r.png"), 800, 600)
        .unwrap_err();
    match &err {
        PlotError::LengthMismatch {
            what,
            expected,
            found,
            ..
        } => {
            assert!(
                what.contains("\"conv1\"") && what.contains("histogram 3"),
                "{what}"
            );
            assert_eq!((*expected, *found), (40, 39));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(dir.files().is_empty());
}

#[test]
fn empty_inputs_are_errors() {
    let dir = Scratch::new("heat-empty");
    let path = dir.join("e.png");
    let cases = [
        HistogramHeatmap::new("No panels", "b", "v"),
        HistogramHeatmap::new("No batches", "b", "v").panel(HeatmapPanel::new(
            "p",
            0.0,
            1.0,
            vec![],
        )),
        HistogramHeatmap::new("No bins", "b", "v").panel(HeatmapPanel::new(
            "p",
            0.0,
            1.0,
            vec![vec![]],
        )),
    ];
    for figure in cases {
        let err = figure.save_png(&path, 800, 600).unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    }
}

#[test]
fn non_finite_or_reversed_ranges_are_errors() {
    let dir = Scratch::new("heat-range");
    for (lo, hi) in [
        (1.0, 1.0),
        (2.0, 1.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
    ] {
        let err = HistogramHeatmap::new("Range", "b", "v")
            .panel(HeatmapPanel::new("p", lo, hi, vec![vec![1, 2]]))
            .save_png(dir.join("r.png"), 800, 600)
            .unwrap_err();
        assert!(matches!(err, PlotError::InvalidRange { .. }), "{err}");
    }
    let err = figure(1, 3)
        .batch_numbering(0.0, 0.0)
        .save_png(dir.join("r.png"), 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::InvalidValue { .. }), "{err}");
}
