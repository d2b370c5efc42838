//! Measuring text and shortening it to fit a width.
//!
//! Layer paths such as `body.3.conv.0 (Conv2d)` can be long; a legend or category axis
//! that grew without bound would squeeze the data out of the picture, so labels are
//! cut with an ellipsis instead.

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend};
use plotters::style::{FontDesc, TextStyle};

/// Width in pixels of `text` in `font`, as the bundled font lays it out.
///
/// Falls back to a generous per-character estimate if the backend cannot measure.
pub(crate) fn width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &FontDesc<'_>,
) -> u32 {
    match area.estimate_text_size(text, &TextStyle::from(font.clone())) {
        Ok((w, _)) => w,
        // Estimation only fails when the font is missing, which `prepare` rules out;
        // 0.6 em per character over-estimates DejaVu Sans, which errs on the safe side.
        Err(_) => (text.chars().count() as f64 * font.get_size() * 0.6).ceil() as u32,
    }
}

/// `text` unchanged if it fits in `max_width` pixels, else its longest prefix that
/// fits followed by `…` (just `…` if not even one character fits).
pub(crate) fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &FontDesc<'_>,
    max_width: u32,
) -> String {
    if width(area, text, font) <= max_width {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    // Binary search for the longest prefix that fits together with the ellipsis.
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let candidate: String = chars[..mid].iter().chain(['…'].iter()).collect();
        if width(area, &candidate, font) <= max_width {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let mut shortened: String = chars[..lo].iter().collect();
    shortened.push('…');
    shortened
}
