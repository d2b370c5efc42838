//! A boolean grid as a black-and-white image (Karpathy's tanh saturation map: examples
//! down, hidden units across, white where |h| > 0.99).
//!
//! A column that is white from top to bottom is a unit saturated for every example:
//! a dead neuron that no gradient will revive. At this size it shows at a glance.

use std::path::Path;

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::element::Rectangle;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::{Color, RGBColor};

use crate::axis::{Coord, Scale};
use crate::coalesce::groups;
use crate::error::{Context, DrawResult, PlotError};
use crate::layout;
use crate::legend::{self, Entry, Swatch};
use crate::output::{self, Figure};
use crate::theme::{Theme, BACKGROUND, INK};

/// The grid as given: rows of cells, or a row-major buffer with its shape.
#[derive(Debug, Clone, PartialEq)]
enum Cells {
    Rows(Vec<Vec<bool>>),
    Flat {
        rows: usize,
        cols: usize,
        cells: Vec<bool>,
    },
}

/// A rows x cols boolean grid drawn white where true and black where false, row 0 at
/// the top, with a legend giving the share of white cells.
///
/// Cells are scaled up to fill the plot. When there are more rows (columns) than
/// pixels, neighbouring cells are merged and drawn in grey by the share of true
/// cells among them. 1000 x 600 suits a 32 x 200 map.
///
/// ```
/// use plots::BinaryImage;
///
/// let dir = std::env::temp_dir().join(format!("plots-doc-binary-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// // Unit 3 is saturated for every example.
/// let rows: Vec<Vec<bool>> = (0..8).map(|r| (0..10).map(|c| c == 3 || (r + c) % 7 == 0).collect()).collect();
/// BinaryImage::from_rows("Saturated tanh units", "hidden unit", "example", rows)
///     .white_means("|h| > 0.99")
///     .save_png(dir.join("saturation.png"), 1000, 600)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryImage {
    title: String,
    x_label: String,
    y_label: String,
    cells: Cells,
    white_means: String,
}

impl BinaryImage {
    /// A grid given row by row; all rows must have the same length.
    pub fn from_rows(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        rows: Vec<Vec<bool>>,
    ) -> Self {
        Self::with_cells(title, x_label, y_label, Cells::Rows(rows))
    }

    /// A `rows` x `cols` grid from a row-major buffer of `rows * cols` cells (the
    /// layout of a contiguous `[examples, units]` tensor).
    pub fn from_flat(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        rows: usize,
        cols: usize,
        cells: Vec<bool>,
    ) -> Self {
        Self::with_cells(title, x_label, y_label, Cells::Flat { rows, cols, cells })
    }

    fn with_cells(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        cells: Cells,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            cells,
            white_means: "true".to_owned(),
        }
    }

    /// What a white cell means, for the legend (default `true`), e.g. `|h| > 0.99`.
    pub fn white_means(mut self, meaning: impl Into<String>) -> Self {
        self.white_means = meaning.into();
        self
    }

    /// Writes the image as a `width` x `height` PNG to `path`, atomically. The
    /// directory must exist.
    ///
    /// # Errors
    /// [`PlotError::Empty`] for a grid without rows or columns;
    /// [`PlotError::LengthMismatch`] for ragged rows or a flat buffer whose length is
    /// not `rows * cols`; [`PlotError::InvalidSize`], [`PlotError::MissingDirectory`],
    /// [`PlotError::Io`] for the output.
    pub fn save_png(
        &self,
        path: impl AsRef<Path>,
        width: u32,
        height: u32,
    ) -> Result<(), PlotError> {
        output::save_png(self, path.as_ref(), width, height)
    }
}

/// The checked grid, row-major.
pub(crate) struct Prepared {
    rows: usize,
    cols: usize,
    cells: Vec<bool>,
    entries: Vec<Entry>,
}

impl Figure for BinaryImage {
    type Prepared = Prepared;
    const KIND: &'static str = "binary image";

    fn title(&self) -> &str {
        &self.title
    }

    fn prepare(&self, ctx: &Context) -> Result<Prepared, PlotError> {
        let (rows, cols, cells) = match &self.cells {
            Cells::Rows(grid) => {
                let cols = grid.first().map_or(0, Vec::len);
                for (index, row) in grid.iter().enumerate() {
                    if row.len() != cols {
                        return Err(ctx.mismatch(
                            format!("row {index}: number of cells"),
                            cols,
                            row.len(),
                        ));
                    }
                }
                (grid.len(), cols, grid.concat())
            }
            Cells::Flat { rows, cols, cells } => {
                let expected = rows.checked_mul(*cols).ok_or_else(|| {
                    ctx.mismatch(
                        format!("{rows} x {cols} grid: number of cells"),
                        usize::MAX,
                        cells.len(),
                    )
                })?;
                if cells.len() != expected {
                    return Err(ctx.mismatch(
                        format!("{rows} x {cols} grid: number of cells"),
                        expected,
                        cells.len(),
                    ));
                }
                (*rows, *cols, cells.clone())
            }
        };
        if rows == 0 || cols == 0 {
            return Err(ctx.empty(format!("the grid is {rows} x {cols}")));
        }
        let white = cells.iter().filter(|&&c| c).count();
        let share = 100.0 * white as f64 / cells.len() as f64;
        let entries = vec![
            Entry {
                label: format!("white: {}", self.white_means),
                detail: Some(format!("{white} of {} cells ({share:.1}%)", cells.len())),
                swatch: Swatch::Square(RGBColor(255, 255, 255)),
            },
            Entry {
                label: "black: otherwise".to_owned(),
                detail: Some(format!("{rows} rows x {cols} columns")),
                swatch: Swatch::Square(RGBColor(0, 0, 0)),
            },
        ];
        Ok(Prepared {
            rows,
            cols,
            cells,
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
        let (rows, cols) = (prepared.rows as f64, prepared.cols as f64);
        let mut chart = ChartBuilder::on(&chart_area)
            .x_label_area_size(theme.px(50.0))
            .y_label_area_size(theme.px(70.0))
            .margin_right(theme.px(10.0))
            .build_cartesian_2d(
                Coord::new(Scale::Linear, 0.0, cols).integral(),
                Coord::flipped(0.0, rows).integral(),
            )?;
        let (width, height) = chart.plotting_area().dim_in_pixel();
        let col_groups = groups(prepared.cols, width as usize);
        let row_groups = groups(prepared.rows, height as usize);

        let mut rectangles = Vec::new();
        for &(r0, r1) in &row_groups {
            // Merge horizontal runs of equal shade into one rectangle.
            let mut run: Option<(usize, u8)> = None;
            for (index, &(c0, c1)) in col_groups.iter().enumerate() {
                let shade = shade(&prepared.cells, prepared.cols, (r0, r1), (c0, c1));
                match run {
                    Some((_, current)) if current == shade => {}
                    Some((start, current)) => {
                        rectangles.push(cell_rect(start, c0, r0, r1, current));
                        run = Some((c0, shade));
                    }
                    None => run = Some((c0, shade)),
                }
                if index + 1 == col_groups.len() {
                    if let Some((start, current)) = run {
                        rectangles.push(cell_rect(start, c1, r0, r1, current));
                    }
                }
            }
        }
        chart.draw_series(rectangles)?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0.0), (cols, rows)],
            INK.stroke_width(1),
        )))?;
        chart
            .configure_mesh()
            .x_labels(theme.x_ticks(width))
            .y_labels(theme.y_ticks(height))
            .disable_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .axis_desc_style(Theme::ink(theme.axis_font()))
            .label_style(Theme::ink(theme.tick_font()))
            .axis_style(INK.stroke_width(1))
            .draw()?;
        legend::draw(&legend_area, &prepared.entries, &theme)?;
        Ok(())
    }
}

/// Grey level (0 black .. 255 white) of a block: the share of true cells in it.
fn shade(cells: &[bool], cols: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)) -> u8 {
    let white = (r0..r1)
        .map(|r| {
            cells[r * cols + c0..r * cols + c1]
                .iter()
                .filter(|&&c| c)
                .count()
        })
        .sum::<usize>();
    let total = (r1 - r0) * (c1 - c0);
    // The share is in [0, 1], so the rounded level fits in a u8.
    (255.0 * white as f64 / total as f64).round() as u8
}

/// A filled rectangle over columns `c0..c1` and rows `r0..r1`.
fn cell_rect(c0: usize, c1: usize, r0: usize, r1: usize, shade: u8) -> Rectangle<(f64, f64)> {
    Rectangle::new(
        [(c0 as f64, r0 as f64), (c1 as f64, r1 as f64)],
        RGBColor(shade, shade, shade).filled(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_are_shares_of_true_cells() {
        // 2 x 4 grid, row-major.
        let cells = [true, true, false, false, true, false, false, false];
        assert_eq!(shade(&cells, 4, (0, 1), (0, 1)), 255);
        assert_eq!(shade(&cells, 4, (0, 1), (2, 4)), 0);
        assert_eq!(shade(&cells, 4, (0, 2), (0, 2)), 191);
    }
}
