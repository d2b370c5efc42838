//! BinaryImage: white where true, black where false; a dead column shows at a glance.

mod common;

use common::{read_png, title_ink, Scratch};
use plots::{BinaryImage, PlotError};

/// Longest vertical run of pure white pixels in column `x`.
fn white_run(image: &common::Image, x: u32) -> u32 {
    let (mut best, mut run) = (0, 0);
    for y in 0..image.height {
        if image.pixel(x, y) == [255, 255, 255] {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[test]
fn a_saturated_column_is_a_white_stripe_through_black() {
    let dir = Scratch::new("binary-dead");
    let path = dir.join("sat.png");
    // 32 examples x 20 units, only unit 7 saturated (for every example).
    let rows: Vec<Vec<bool>> = (0..32).map(|_| (0..20).map(|u| u == 7).collect()).collect();
    BinaryImage::from_rows("Saturation", "hidden unit", "example", rows)
        .white_means("|h| > 0.99")
        .save_png(&path, 1000, 600)
        .unwrap();
    let image = read_png(&path, 1000, 600);
    assert!(title_ink(&image) > 0.01);
    // Mostly black inside the plot.
    let black = (0..image.width)
        .flat_map(|x| (0..image.height).map(move |y| (x, y)))
        .filter(|&(x, y)| image.pixel(x, y) == [0, 0, 0])
        .count();
    assert!(black > 100_000, "{black} black pixels");
    // The image columns that are white for most of the plot height (>= 350 px) form
    // one narrow band (unit 7 of 20, about 36 px) with black on both sides.
    // Only look between the leftmost and rightmost black pixel of a middle row, i.e.
    // inside the plot, not at the white page margins.
    let black_at = |x: u32| image.pixel(x, 300) == [0, 0, 0];
    let left = (0..image.width).find(|&x| black_at(x)).unwrap();
    let right = (0..image.width).rev().find(|&x| black_at(x)).unwrap();
    let band: Vec<u32> = (left..right)
        .filter(|&x| white_run(&image, x) >= 350)
        .collect();
    assert!(!band.is_empty(), "no white stripe inside the plot");
    let (first, last) = (band[0], band[band.len() - 1]);
    assert_eq!(band.len() as u32, last - first + 1, "one contiguous band");
    assert!((10..100).contains(&band.len()), "band width {}", band.len());
    assert_eq!(image.pixel(first - 3, 300), [0, 0, 0]);
    assert_eq!(image.pixel(last + 3, 300), [0, 0, 0]);
}

#[test]
fn flat_buffers_and_huge_grids_render() {
    let dir = Scratch::new("binary-flat");
    let path = dir.join("flat.png");
    let (rows, cols) = (700, 3000);
    let cells: Vec<bool> = (0..rows * cols).map(|i| (i % cols) % 5 == 0).collect();
    BinaryImage::from_flat("Large", "unit", "example", rows, cols, cells)
        .save_png(&path, 800, 500)
        .unwrap();
    // Merged cells show as grey (share of white), so there are intermediate shades.
    let image = read_png(&path, 800, 500);
    assert!(image
        .rgb
        .chunks_exact(3)
        .any(|p| p[0] == p[1] && p[1] == p[2] && p[0] > 20 && p[0] < 235));
}

#[test]
fn bad_grids_are_errors() {
    let dir = Scratch::new("binary-bad");
    let path = dir.join("bad.png");
    let err = BinaryImage::from_rows("Ragged", "u", "e", vec![vec![true; 4], vec![false; 3]])
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlotError::LengthMismatch {
                expected: 4,
                found: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = BinaryImage::from_flat("Flat", "u", "e", 3, 4, vec![true; 11])
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(
        matches!(
            err,
            PlotError::LengthMismatch {
                expected: 12,
                found: 11,
                ..
            }
        ),
        "{err}"
    );
    let err = BinaryImage::from_flat("Overflow", "u", "e", usize::MAX, 2, vec![])
        .save_png(&path, 800, 600)
        .unwrap_err();
    assert!(matches!(err, PlotError::LengthMismatch { .. }), "{err}");
    for figure in [
        BinaryImage::from_rows("No rows", "u", "e", vec![]),
        BinaryImage::from_rows("No cols", "u", "e", vec![vec![], vec![]]),
        BinaryImage::from_flat("Zero", "u", "e", 0, 5, vec![]),
    ] {
        let err = figure.save_png(&path, 800, 600).unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }), "{err}");
    }
    assert!(dir.files().is_empty());
}
