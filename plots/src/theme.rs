//! Colours, font sizes and line widths shared by all figures.
//!
//! Sizes scale with the image so that a figure saved at twice the default size is the
//! same picture at twice the resolution, not the same text on a bigger canvas.

use plotters::style::{Color, FontDesc, IntoFont, RGBColor, ShapeStyle, TextStyle};

use crate::font::FAMILY;

/// Tableau 10, the matplotlib default cycle: ten hues that stay distinguishable on
/// white and for most colour-blind readers.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Number of distinct series colours before the cycle repeats.
const PALETTE_LEN: usize = PALETTE.len();

/// Colour of the `index`-th series (cycles after [`PALETTE_LEN`]).
fn series_color(index: usize) -> RGBColor {
    PALETTE[index % PALETTE_LEN]
}

/// Colour and dash of the `index`-th series, given whether its owner asked for a
/// dashed line. Past the palette the colours repeat with the other line style, so
/// series 1 and 11 still differ.
pub(crate) fn series_look(index: usize, dashed: bool) -> (RGBColor, bool) {
    let cycle_flips = (index / PALETTE_LEN) % 2 == 1;
    (series_color(index), dashed != cycle_flips)
}

/// Page background.
pub(crate) const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
/// Text, axes and frames.
pub(crate) const INK: RGBColor = RGBColor(20, 20, 20);
/// Reference lines (guides) that must not compete with the data.
pub(crate) const GUIDE: RGBColor = RGBColor(90, 90, 90);
/// Highlighted single points (e.g. the suggested learning rate).
pub(crate) const MARKER: RGBColor = RGBColor(200, 0, 0);
/// Bars of a bar chart.
pub(crate) const BAR: RGBColor = RGBColor(31, 119, 180);
/// Values that could not be drawn (NaN, inf) are called out in this colour.
pub(crate) const ALERT: RGBColor = RGBColor(200, 0, 0);

/// Sizes for one image, derived from its pixel dimensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    scale: f64,
}

impl Theme {
    /// The theme for a `width` x `height` image; 1000 x 600 is scale 1.
    pub(crate) fn for_size((width, height): (u32, u32)) -> Self {
        let scale = (f64::from(width) / 1000.0)
            .min(f64::from(height) / 600.0)
            .clamp(0.7, 3.0);
        Self { scale }
    }

    /// `base` pixels at scale 1, scaled and rounded.
    pub(crate) fn px(&self, base: f64) -> u32 {
        // Sizes are small positive numbers (at most a few hundred pixels).
        (base * self.scale).round().max(1.0) as u32
    }

    /// Font of the figure title.
    pub(crate) fn title_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(24.0))).into_font()
    }

    /// Font of panel titles in multi-panel figures.
    pub(crate) fn panel_title_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(17.0))).into_font()
    }

    /// Font of axis descriptions ("batch", "loss").
    pub(crate) fn axis_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(18.0))).into_font()
    }

    /// Font of tick labels.
    pub(crate) fn tick_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(14.0))).into_font()
    }

    /// Font of legend labels.
    pub(crate) fn legend_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(15.0))).into_font()
    }

    /// Font of the second, smaller line of a legend entry (statistics).
    pub(crate) fn detail_font(&self) -> FontDesc<'static> {
        (FAMILY, f64::from(self.px(13.0))).into_font()
    }

    /// `font` in the ink colour.
    pub(crate) fn ink(font: FontDesc<'static>) -> TextStyle<'static> {
        font.color(&INK)
    }

    /// Stroke of a data line.
    pub(crate) fn line_style(&self, color: RGBColor) -> ShapeStyle {
        color.stroke_width(self.px(2.0))
    }

    /// Stroke of a guide line.
    pub(crate) fn guide_style(&self) -> ShapeStyle {
        GUIDE.stroke_width(self.px(1.5))
    }

    /// Length of a dash and of the gap after it, in pixels.
    pub(crate) fn dash(&self) -> (u32, u32) {
        (self.px(9.0), self.px(5.0))
    }

    /// How many labelled ticks fit along an x axis `width` pixels long without the
    /// labels running into each other.
    pub(crate) fn x_ticks(&self, width: u32) -> usize {
        (width / self.px(70.0)).clamp(2, 12) as usize
    }

    /// How many labelled ticks fit along a y axis `height` pixels long.
    pub(crate) fn y_ticks(&self, height: u32) -> usize {
        (height / self.px(45.0)).clamp(2, 12) as usize
    }

    /// Margin around the whole figure.
    pub(crate) fn margin(&self) -> u32 {
        self.px(12.0)
    }
}
