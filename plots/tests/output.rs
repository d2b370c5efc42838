//! Behaviour shared by every figure's writer: sizes, directories, atomic replacement.

mod common;

use std::fs;

use common::{read_png, Scratch};
use plots::{BarChart, LinePlot, PlotError, Series, MAX_SIDE, MIN_SIDE};

fn plot() -> LinePlot {
    LinePlot::new("Loss", "step", "loss").series(Series::from_ys("train", [3.0, 2.0, 1.5, 1.2]))
}

#[test]
fn sizes_outside_the_accepted_range_are_errors() {
    let dir = Scratch::new("out-size");
    let path = dir.join("s.png");
    for (w, h) in [(0, 600), (800, 0), (MIN_SIDE - 1, 600), (800, MAX_SIDE + 1)] {
        let err = plot().save_png(&path, w, h).unwrap_err();
        match err {
            PlotError::InvalidSize { width, height, .. } => assert_eq!((width, height), (w, h)),
            other => panic!("unexpected {other}"),
        }
        let err = plot().save_svg(dir.join("s.svg"), w, h).unwrap_err();
        assert!(matches!(err, PlotError::InvalidSize { .. }));
    }
    plot().save_png(&path, MIN_SIDE, MIN_SIDE).unwrap();
    read_png(&path, MIN_SIDE, MIN_SIDE);
}

#[test]
fn a_missing_directory_is_an_error_and_not_created() {
    let dir = Scratch::new("out-missing");
    let missing = dir.join("no/such/dir");
    let err = plot()
        .save_png(missing.join("loss.png"), 800, 600)
        .unwrap_err();
    match &err {
        PlotError::MissingDirectory { dir: reported, .. } => assert_eq!(reported, &missing),
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("no/such/dir"), "{err}");
    assert!(!missing.exists());
}

#[test]
fn unwritable_targets_are_io_errors_without_leftovers() {
    let dir = Scratch::new("out-unwritable");
    // The target is an existing directory: the final rename must fail.
    let occupied = dir.join("occupied.png");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("keep"), b"x").unwrap();
    let err = plot().save_png(&occupied, 800, 600).unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
    let err = BarChart::new("b", "c", "v")
        .bar("a", 1.0)
        .save_svg(&occupied, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
    assert_eq!(
        dir.files(),
        vec!["occupied.png".to_owned()],
        "temporary files removed"
    );

    // A path that names no file.
    let err = plot()
        .save_png(dir.path().join(".."), 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::Io { .. }), "{err}");
}

#[test]
fn saving_replaces_the_file_and_leaves_no_temporary_files() {
    let dir = Scratch::new("out-replace");
    let path = dir.join("loss.png");
    fs::write(&path, b"an old, broken picture").unwrap();
    plot().save_png(&path, 640, 480).unwrap();
    read_png(&path, 640, 480);
    plot().save_png(&path, 800, 400).unwrap();
    read_png(&path, 800, 400);
    plot().save_svg(dir.join("loss.svg"), 800, 400).unwrap();
    assert_eq!(
        dir.files(),
        vec!["loss.png".to_owned(), "loss.svg".to_owned()]
    );
}

#[test]
fn relative_paths_in_the_current_directory_work() {
    // A bare file name has an empty parent, which means the current directory.
    let dir = Scratch::new("out-relative");
    let previous = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir.path()).unwrap();
    let result = plot().save_png("bare.png", 400, 300);
    std::env::set_current_dir(previous).unwrap();
    result.unwrap();
    read_png(&dir.join("bare.png"), 400, 300);
}

#[test]
fn the_extension_does_not_choose_the_format() {
    let dir = Scratch::new("out-ext");
    let path = dir.join("figure.dat");
    plot().save_png(&path, 400, 300).unwrap();
    read_png(&path, 400, 300);
}
