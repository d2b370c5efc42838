//! A legend drawn in its own column beside the chart.
//!
//! plotters' built-in legend sits on top of the data; with one entry per layer path it
//! hides exactly the curves a reader is looking at. This legend gets its own strip, as
//! wide as its longest label (within a cap), one entry per series, optionally with a
//! second, smaller line of statistics under the label.

use plotters::coord::Shift;
use plotters::element::{Circle, PathElement, Rectangle, Text};
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor};

use crate::error::DrawResult;
use crate::text;
use crate::theme::{Theme, INK};

/// The small picture left of a legend label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    /// A short line segment, solid or dashed, as the series is drawn.
    Line {
        /// Line colour.
        color: RGBColor,
        /// Whether the series is dashed.
        dashed: bool,
    },
    /// A filled dot, for single marked points.
    Dot(RGBColor),
    /// A filled, outlined square, for areas of colour (e.g. image cells).
    Square(RGBColor),
}

/// One legend line: swatch, label and optional statistics line.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What the swatch stands for, e.g. a layer path.
    pub(crate) label: String,
    /// Optional second line in a smaller font, e.g. `mean -0.02, std 0.64`.
    pub(crate) detail: Option<String>,
    /// How the entry is drawn.
    pub(crate) swatch: Swatch,
}

/// Pixel layout of a legend for one image size.
struct Layout {
    pad: u32,
    swatch: u32,
    gap: u32,
    label_height: u32,
    detail_height: u32,
}

impl Layout {
    fn new(theme: &Theme) -> Self {
        Self {
            pad: theme.px(8.0),
            swatch: theme.px(30.0),
            gap: theme.px(8.0),
            label_height: theme.px(22.0),
            detail_height: theme.px(18.0),
        }
    }

    /// Horizontal space before the text starts.
    fn text_x(&self) -> u32 {
        self.pad + self.swatch + self.gap
    }

    fn entry_height(&self, entry: &Entry) -> u32 {
        self.label_height + entry.detail.as_ref().map_or(0, |_| self.detail_height)
    }
}

/// Width the legend for `entries` needs, at most `max_width` pixels.
pub(crate) fn width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    theme: &Theme,
    max_width: u32,
) -> u32 {
    let layout = Layout::new(theme);
    let (label_font, detail_font) = (theme.legend_font(), theme.detail_font());
    let widest = entries
        .iter()
        .map(|entry| {
            let label = text::width(area, &entry.label, &label_font);
            let detail = entry
                .detail
                .as_ref()
                .map_or(0, |d| text::width(area, d, &detail_font));
            label.max(detail)
        })
        .max()
        .unwrap_or(0);
    (layout.text_x() + widest + 2 * layout.pad).min(max_width)
}

/// Draws `entries` top-down into `area`. Labels wider than the area are cut with an
/// ellipsis; entries that do not fit vertically are summarised as `… and N more`.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
    theme: &Theme,
) -> DrawResult {
    let layout = Layout::new(theme);
    let (area_width, area_height) = area.dim_in_pixel();
    let text_width = area_width.saturating_sub(layout.text_x() + layout.pad);
    let label_font = theme.legend_font();
    let detail_font = theme.detail_font();

    let mut y = layout.pad;
    for (index, entry) in entries.iter().enumerate() {
        let remaining = entries.len() - index;
        let needed = layout.entry_height(entry);
        // Keep room for the "more" line unless this is the last entry.
        let reserve = if remaining > 1 {
            layout.label_height
        } else {
            0
        };
        if y + needed + reserve > area_height {
            let more = format!("… and {remaining} more");
            area.draw(&Text::new(
                more,
                (to_i32(layout.pad), to_i32(y)),
                Theme::ink(label_font.clone()),
            ))?;
            break;
        }
        let centre = to_i32(y + layout.label_height / 2);
        draw_swatch(area, entry.swatch, &layout, centre, theme)?;
        let label = text::fit(area, &entry.label, &label_font, text_width);
        area.draw(&Text::new(
            label,
            (to_i32(layout.text_x()), centre),
            Theme::ink(label_font.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
        if let Some(detail) = &entry.detail {
            let detail = text::fit(area, detail, &detail_font, text_width);
            let detail_centre = to_i32(y + layout.label_height + layout.detail_height / 2);
            area.draw(&Text::new(
                detail,
                (to_i32(layout.text_x()), detail_centre),
                Theme::ink(detail_font.clone()).pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        y += needed;
    }
    Ok(())
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    layout: &Layout,
    centre: i32,
    theme: &Theme,
) -> DrawResult {
    let x0 = to_i32(layout.pad);
    let x1 = to_i32(layout.pad + layout.swatch);
    match swatch {
        Swatch::Line { color, dashed } => {
            let style = theme.line_style(color);
            if dashed {
                // Two dashes with a gap, like the series itself.
                let third = (x1 - x0) / 3;
                area.draw(&PathElement::new(
                    vec![(x0, centre), (x0 + third, centre)],
                    style,
                ))?;
                area.draw(&PathElement::new(
                    vec![(x1 - third, centre), (x1, centre)],
                    style,
                ))?;
            } else {
                area.draw(&PathElement::new(vec![(x0, centre), (x1, centre)], style))?;
            }
        }
        Swatch::Dot(color) => {
            area.draw(&Circle::new(
                ((x0 + x1) / 2, centre),
                theme.px(5.0),
                color.filled(),
            ))?;
        }
        Swatch::Square(color) => {
            let half = to_i32(theme.px(8.0));
            let mid = (x0 + x1) / 2;
            let corners = [(mid - half, centre - half), (mid + half, centre + half)];
            area.draw(&Rectangle::new(corners, color.filled()))?;
            area.draw(&Rectangle::new(corners, INK.stroke_width(1)))?;
        }
    }
    Ok(())
}

/// Pixel offsets are bounded by the image size (at most `MAX_SIDE`), so they fit.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
