//! Figures the `plots` crate does not draw (yet): the fastai lesson's `color_dim`
//! histogram heat map and Karpathy's saturation map. Both are grids of filled
//! rectangles drawn with plotters' bitmap backend and the DejaVu Sans font that the
//! `plots` crate ships (registered here too, since plotters' `ab_glyph` backend knows
//! no system fonts).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::{register_font, FontStyle};

use crate::Result;

/// DejaVu Sans Book, the font the `plots` crate ships.
static DEJAVU_SANS: &[u8] = include_bytes!("../../plots/assets/DejaVuSans.ttf");

fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    if *REGISTERED
        .get_or_init(|| register_font("sans-serif", FontStyle::Normal, DEJAVU_SANS).is_ok())
    {
        Ok(())
    } else {
        Err("the bundled DejaVu Sans font could not be registered with plotters".into())
    }
}

fn draw_err(figure: &str, path: &Path, e: impl std::fmt::Display) -> crate::Error {
    format!("drawing {figure} into {}: {e}", path.display()).into()
}

/// One panel of a heat map: a title and a grid of rows (x, e.g. batches) of columns
/// (y, e.g. histogram bins) of counts.
#[derive(Clone, Debug)]
pub struct HeatPanel {
    /// The panel's title (a layer label).
    pub title: String,
    /// `rows[x][y]`: one histogram per x position.
    pub rows: Vec<Vec<u64>>,
}

/// Writes the lesson's `color_dim` figure: one panel per layer, batches on x, bins on
/// y (lowest bin at the bottom), `log1p(count)` as a viridis colour. `y_label` names
/// the bins (e.g. "|activation| bin (0..10)").
///
/// # Errors
/// No panel, an empty or ragged panel, or a drawing/file error, with the file named.
pub fn heat_map(path: &Path, title: &str, y_label: &str, panels: &[HeatPanel]) -> Result<()> {
    ensure_font()?;
    if panels.is_empty() {
        return Err(format!("heat map {}: no panels to draw", path.display()).into());
    }
    for p in panels {
        let bins = p.rows.first().map_or(0, Vec::len);
        if bins == 0 || p.rows.iter().any(|r| r.len() != bins) {
            return Err(format!(
                "heat map {}: panel `{}` is empty or ragged ({} rows)",
                path.display(),
                p.title,
                p.rows.len()
            )
            .into());
        }
    }
    let cols = panels.len().min(3);
    let grid_rows = panels.len().div_ceil(cols);
    let (w, h) = (420 * cols as u32, 40 + 320 * grid_rows as u32);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| draw_err("heat map", path, e))?;
    let root = root
        .titled(title, ("sans-serif", 22))
        .map_err(|e| draw_err("heat map", path, e))?;
    let areas = root.split_evenly((grid_rows, cols));
    for (area, panel) in areas.iter().zip(panels) {
        let n = panel.rows.len();
        let bins = panel.rows[0].len();
        let max = panel
            .rows
            .iter()
            .flatten()
            .map(|&c| (c as f64).ln_1p())
            .fold(0.0f64, f64::max)
            .max(1e-12);
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 15))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..n as f64, 0f64..bins as f64)
            .map_err(|e| draw_err("heat map", path, e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("batch")
            .y_desc(y_label)
            .label_style(("sans-serif", 11))
            .draw()
            .map_err(|e| draw_err("heat map", path, e))?;
        let cells = panel.rows.iter().enumerate().flat_map(|(x, row)| {
            row.iter().enumerate().map(move |(y, &c)| {
                let v = (c as f64).ln_1p();
                let colour = ViridisRGB::get_color_normalized(v, 0.0, max);
                Rectangle::new(
                    [(x as f64, y as f64), (x as f64 + 1.0, y as f64 + 1.0)],
                    colour.filled(),
                )
            })
        });
        chart
            .draw_series(cells)
            .map_err(|e| draw_err("heat map", path, e))?;
    }
    root.present().map_err(|e| draw_err("heat map", path, e))?;
    Ok(())
}

/// Writes a binary map: `rows x cols` cells, white where `cells[r * cols + c]` is
/// true, black elsewhere (Karpathy's `plt.imshow(h.abs() > 0.99, cmap='gray')`: a
/// white column is a unit saturated for every example, i.e. dead for learning).
///
/// # Errors
/// `cells.len() != rows * cols`, an empty map, or a drawing/file error.
pub fn binary_map(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    rows: usize,
    cols: usize,
    cells: &[bool],
) -> Result<()> {
    ensure_font()?;
    if rows == 0 || cols == 0 || cells.len() != rows * cols {
        return Err(format!(
            "binary map {}: {} cells for {rows} x {cols}",
            path.display(),
            cells.len()
        )
        .into());
    }
    let root = BitMapBackend::new(path, (1000, 360)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| draw_err("binary map", path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..cols as f64, 0f64..rows as f64)
        .map_err(|e| draw_err("binary map", path, e))?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| draw_err("binary map", path, e))?;
    let rects = (0..rows).flat_map(|r| {
        (0..cols).map(move |c| {
            let colour = if cells[r * cols + c] { WHITE } else { BLACK };
            // Row 0 at the top, as imshow draws it.
            let y = (rows - 1 - r) as f64;
            Rectangle::new([(c as f64, y), (c as f64 + 1.0, y + 1.0)], colour.filled())
        })
    });
    chart
        .draw_series(rects)
        .map_err(|e| draw_err("binary map", path, e))?;
    root.present()
        .map_err(|e| draw_err("binary map", path, e))?;
    Ok(())
}
