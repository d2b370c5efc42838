//! The bundled font.
//!
//! plotters' `ab_glyph` text backend knows no system fonts: every family must be
//! registered from bytes. We ship DejaVu Sans (see `assets/DejaVuSans-LICENSE.txt`,
//! Bitstream Vera licence with public-domain DejaVu changes) inside the binary and
//! register it once, as the `sans-serif` family that all figures use, so text renders
//! identically on a headless CI machine and a laptop.

use std::sync::OnceLock;

use plotters::style::{register_font, FontFamily, FontStyle};

/// DejaVu Sans Book, embedded at compile time.
static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// The family every figure draws its text with.
pub(crate) const FAMILY: FontFamily<'static> = FontFamily::SansSerif;

/// Registers the bundled font with plotters, once per process.
///
/// Returns `false` if the embedded bytes are not a usable font (which would mean a
/// corrupted build); callers turn that into [`crate::PlotError::Font`].
pub(crate) fn ensure_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // Bold and italic requests fall back to the normal face inside plotters.
        register_font(FAMILY.as_str(), FontStyle::Normal, DEJAVU_SANS).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_font_registers_and_is_idempotent() {
        assert!(ensure_registered());
        assert!(ensure_registered());
    }
}
