//! Numbers as people read them on axes, in legends and in reports: a fixed number
//! of significant digits, plain notation for ordinary magnitudes and scientific
//! notation for the rest, no trailing zeros.

use std::ops::Range;

/// Writes `value` with `significant` significant digits (clamped to 1..=17): plainly
/// if its magnitude lies in `plain`, in scientific notation (`1.5e-7`, `-2e5`)
/// otherwise. Trailing zeros after the point are dropped, zero of either sign is `0`,
/// and non-finite values are `NaN`, `inf` and `-inf`.
///
/// Plain numbers keep every digit before the point, so `99999.9` with four
/// significant digits rounds to `100000` rather than switching notation.
///
/// ```
/// use plots::format_significant;
/// assert_eq!(format_significant(0.1 + 0.2, 4, 1e-2..1e5), "0.3");
/// assert_eq!(format_significant(123456789.0, 4, 1e-3..1e5), "1.235e8");
/// assert_eq!(format_significant(-0.00004217, 3, 1e-3..1e5), "-4.22e-5");
/// ```
pub fn format_significant(value: f64, significant: usize, plain: Range<f64>) -> String {
    let significant = significant.clamp(1, 17);
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    if value == 0.0 {
        return "0".to_owned();
    }
    let magnitude = value.abs();
    if plain.contains(&magnitude) {
        // The position of the leading digit: -3 for 0.00123, 4 for 12345.6.
        let leading = magnitude.log10().floor() as i32;
        let decimals = usize::try_from(significant as i32 - 1 - leading).unwrap_or(0);
        trim_zeros(&format!("{value:.decimals$}")).to_owned()
    } else {
        let text = format!("{value:.prec$e}", prec = significant - 1);
        match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        }
    }
}

/// `"2.500"` -> `"2.5"`, `"3.000"` -> `"3"`; integers are left alone.
fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}
