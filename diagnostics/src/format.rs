//! Writing numbers for people: plain notation for ordinary magnitudes, scientific
//! notation for huge and tiny ones.
//!
//! The quantities diagnostics report span many orders of magnitude: a grad:data
//! ratio of a dying layer can be `123456789`, an activation std `3e-9`, a loss `2.3`.
//! Printed with a fixed number of decimals, the first becomes `123456789.000` and the
//! second `0.000`; printed always in scientific notation, `2.3` becomes `2.300e0`.
//! [`format_number`] (and [`Num`], its `Display` form for format strings) writes
//! values whose magnitude lies in [`PLAIN_RANGE`] = `[1e-3, 1e5)` plainly and the
//! others in scientific notation, with a given number of significant digits and no
//! trailing zeros. Every summary, health report and markdown table goes through it.
//!
//! ```
//! use diagnostics::format::{format_number, Num};
//!
//! assert_eq!(format_number(123456789.0, 4), "1.235e8");
//! assert_eq!(format_number(2.302585, 4), "2.303");
//! assert_eq!(format_number(-0.00004217, 3), "-4.22e-5");
//! // In a format string the precision is the number of significant digits (4 if
//! // none is given) and `+` asks for a sign on positive values.
//! assert_eq!(format!("{:.2} / {:+}", Num(0.0163), Num(1e-9)), "0.016 / +1e-9");
//! ```

use std::fmt::{self, Write as _};
use std::ops::Range;

/// Magnitudes written in plain notation; everything else (but zero) is scientific.
pub const PLAIN_RANGE: Range<f64> = 1e-3..1e5;

/// The significant digits [`Num`] shows when a format string gives no precision.
pub const DEFAULT_SIGNIFICANT: usize = 4;

/// Writes `value` with `significant` significant digits (clamped to 1..=17):
/// plainly if its magnitude lies in [`PLAIN_RANGE`], in scientific notation
/// (`1.5e-7`, `-2e5`) otherwise. Trailing zeros after the point are dropped, zero of
/// either sign is `0`, and non-finite values are `NaN`, `inf` and `-inf`.
///
/// Plain numbers keep every digit before the point, so `99999.9` with four
/// significant digits rounds to `100000` rather than switching notation.
pub fn format_number(value: f64, significant: usize) -> String {
    plots::format_significant(value, significant, PLAIN_RANGE)
}

/// A number that displays through [`format_number`]: the format precision is the
/// number of significant digits ([`DEFAULT_SIGNIFICANT`] without one), `+` adds a
/// sign to positive values, and width and alignment apply to the whole text.
///
/// ```
/// use diagnostics::format::Num;
///
/// assert_eq!(format!("{}", Num(0.1 + 0.2)), "0.3");
/// assert_eq!(format!("{:.2}", Num(-123456789.0)), "-1.2e8");
/// assert_eq!(format!("[{:>6}]", Num(f64::NAN)), "[   NaN]");
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = format_number(self.0, f.precision().unwrap_or(DEFAULT_SIGNIFICANT));
        if f.sign_plus() && !text.starts_with('-') && text != "NaN" {
            text.insert(0, '+');
        }
        // `Formatter::pad` would read the precision as a maximum length and cut the
        // text, so the padding is done here; numbers align right by default.
        let len = text.chars().count();
        let pad = f.width().map_or(0, |w| w.saturating_sub(len));
        let (before, after) = match f.align() {
            Some(fmt::Alignment::Left) => (0, pad),
            Some(fmt::Alignment::Center) => (pad / 2, pad - pad / 2),
            Some(fmt::Alignment::Right) | None => (pad, 0),
        };
        let fill = f.fill();
        for _ in 0..before {
            f.write_char(fill)?;
        }
        f.write_str(&text)?;
        for _ in 0..after {
            f.write_char(fill)?;
        }
        Ok(())
    }
}

/// Escapes `text` (a name the report did not write itself: a module path or kind, a
/// parameter name, a file name) for markdown: characters that would start raw HTML or
/// an entity become entities (`<` is `&lt;`, `>` is `&gt;`, `&` is `&amp;`), and the
/// ones markdown gives a meaning (emphasis, code, links, table cells, escapes) are
/// backslash-escaped, so the name renders as written and can neither inject markup nor
/// break a table.
///
/// ```
/// use diagnostics::format::markdown_escape;
/// assert_eq!(markdown_escape("0.conv (Conv2d)"), "0.conv (Conv2d)");
/// assert_eq!(
///     markdown_escape("<script>alert(1)</script>|x_1"),
///     "&lt;script&gt;alert(1)&lt;/script&gt;\\|x\\_1"
/// );
/// ```
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '|' => {
                out.push('\\');
                out.push(c);
            }
            // A line break would end a table row or list item early.
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes only what could start raw HTML or an entity (`<` and `&`) in prose the
/// report wrote that may quote a name (a verdict's evidence): `|x| > 0.97` stays
/// readable, `<script>` does not survive.
///
/// ```
/// use diagnostics::format::html_safe;
/// assert_eq!(html_safe("|x| > 0.97 in <b>"), "|x| > 0.97 in &lt;b>");
/// ```
pub fn html_safe(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(value: f64) -> String {
        format_number(value, 4)
    }

    #[test]
    fn zero_of_either_sign_is_plain_zero() {
        assert_eq!(f(0.0), "0");
        assert_eq!(f(-0.0), "0");
        assert_eq!(format!("{:+}", Num(0.0)), "+0");
    }

    #[test]
    fn non_finite_values_are_named() {
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::INFINITY), "inf");
        assert_eq!(f(f64::NEG_INFINITY), "-inf");
        assert_eq!(format!("{:+}", Num(f64::INFINITY)), "+inf");
        assert_eq!(format!("{:+}", Num(f64::NAN)), "NaN");
    }

    #[test]
    fn the_plain_range_is_closed_below_and_open_above() {
        assert_eq!(f(1e-3), "0.001");
        assert_eq!(f(-1e-3), "-0.001");
        assert_eq!(f(9.99e-4), "9.99e-4");
        assert_eq!(f(99999.9), "100000", "plain: integer digits are kept");
        assert_eq!(format_number(99999.9, 6), "99999.9");
        assert_eq!(f(1e5), "1e5");
        assert_eq!(f(-1e5), "-1e5");
    }

    #[test]
    fn huge_and_tiny_values_are_scientific() {
        assert_eq!(f(123456789.0), "1.235e8");
        assert_eq!(f(-123456789.0), "-1.235e8");
        assert_eq!(f(2.5e-7), "2.5e-7");
        assert_eq!(f(f64::MAX), "1.798e308");
        assert_eq!(f(f64::MIN_POSITIVE), "2.225e-308");
        assert_eq!(f(5e-324), "4.941e-324");
    }

    #[test]
    fn plain_values_have_the_significant_digits_asked_for() {
        assert_eq!(f(0.1 + 0.2), "0.3");
        assert_eq!(f(2.302_685), "2.303");
        assert_eq!(f(-2.302_685), "-2.303");
        assert_eq!(f(0.001_234_5), "0.001234");
        assert_eq!(f(12345.6), "12346");
        assert_eq!(f(42.0), "42");
        assert_eq!(format_number(0.81, 1), "0.8");
        assert_eq!(format_number(0.81, 0), "0.8", "at least one digit");
        assert_eq!(format_number(1.0 / 3.0, 40), "0.33333333333333331");
    }

    #[test]
    fn num_honours_precision_sign_and_width() {
        assert_eq!(Num(1234.5678).to_string(), "1235");
        assert_eq!(format!("{:.6}", Num(1234.5678)), "1234.57");
        assert_eq!(format!("{:+.2}", Num(0.0123)), "+0.012");
        assert_eq!(format!("{:+.2}", Num(-0.0123)), "-0.012");
        assert_eq!(format!("{:<8}|", Num(1e-9)), "1e-9    |");
        assert_eq!(format!("{:*^7.2}", Num(0.126)), "*0.13**");
        assert_eq!(format!("{:7}|{:1}", Num(-2.5), Num(-2.5)), "   -2.5|-2.5");
    }
}
