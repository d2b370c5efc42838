//! Page layout shared by the figures: margin, title strip, chart and legend column.

use plotters::coord::Shift;
use plotters::element::Text;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::DrawFailure;
use crate::legend::{self, Entry};
use crate::text;
use crate::theme::Theme;

/// An area of the image, in the image's own pixel coordinates.
pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

/// Applies the page margin and draws `title` on top; returns the area below it.
pub(crate) fn titled<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    theme: &Theme,
) -> Result<Area<DB>, DrawFailure> {
    let margin = theme.margin();
    let page = root.margin(margin, margin, margin, margin);
    let font = theme.title_font();
    let (width, _) = page.dim_in_pixel();
    let shown = text::fit(&page, title, &font, width);
    let height = theme.px(40.0);
    page.draw(&Text::new(
        shown,
        (half(width), half(height)),
        Theme::ink(font).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let (_, below) = page.split_vertically(height);
    Ok(below)
}

/// Title on top, then the rest split into a chart area on the left and a legend
/// column on the right, as wide as the legend needs (at most 40% of the width).
/// Returns (chart area, legend area).
pub(crate) fn with_legend<DB: DrawingBackend>(
    root: &Area<DB>,
    title: &str,
    entries: &[Entry],
    theme: &Theme,
) -> Result<(Area<DB>, Area<DB>), DrawFailure> {
    let body = titled(root, title, theme)?;
    let (width, _) = body.dim_in_pixel();
    let legend_width = legend::width(&body, entries, theme, width * 2 / 5);
    Ok(body.split_horizontally(width - legend_width))
}

/// Half of a pixel length, as a drawing coordinate.
pub(crate) fn half(length: u32) -> i32 {
    i32::try_from(length / 2).unwrap_or(i32::MAX)
}
