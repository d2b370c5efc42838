//! Axis scales: which values an axis can show, the range it spans, where its ticks go
//! and how they are written.
//!
//! [`Coord`] is the one coordinate type every chart in the crate is built on, so that
//! linear and log axes share the tick formatting and a chart needs no generic code per
//! scale combination.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;

use crate::number::format_significant;

/// How values map to positions along an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    /// Equal steps in value are equal distances.
    #[default]
    Linear,
    /// Equal ratios are equal distances (base 10). Only positive values can be shown:
    /// zero and negative values are skipped, like NaN and infinities on any axis.
    /// Use it for learning rates or update:data ratios; for values that are already
    /// logarithms (e.g. log10 update:data), keep [`Scale::Linear`] and say so in the
    /// axis label.
    Log10,
}

impl Scale {
    /// Whether `value` can be placed on an axis of this scale.
    pub(crate) fn shows(self, value: f64) -> bool {
        match self {
            Scale::Linear => value.is_finite(),
            Scale::Log10 => value.is_finite() && value > 0.0,
        }
    }

    /// The range an axis needs to show every showable value in `values` with a little
    /// air around it, or `None` if none is showable.
    ///
    /// The result may still be non-finite when the data spans more than `f64` can
    /// (e.g. `-1e308` and `1e308`); callers check with [`valid_range`].
    pub(crate) fn span(self, values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
        let (lo, hi) = values.into_iter().filter(|&v| self.shows(v)).fold(
            None,
            |acc: Option<(f64, f64)>, v| match acc {
                None => Some((v, v)),
                Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
            },
        )?;
        Some(match self {
            Scale::Linear => pad_linear(lo, hi),
            Scale::Log10 => pad_log(lo, hi),
        })
    }
}

/// Whether `lo..hi` can be drawn: both ends finite and `lo < hi`.
pub(crate) fn valid_range(lo: f64, hi: f64) -> bool {
    lo.is_finite() && hi.is_finite() && lo < hi
}

/// 5% of the span on each side; a single value gets a window around it.
fn pad_linear(lo: f64, hi: f64) -> (f64, f64) {
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    }
}

/// 5% of the span in log space on each side, widened to whole decades when the range
/// would contain no power of ten (plotters only labels log axes at powers of ten and
/// their multiples, so such an axis would have no tick labels at all).
fn pad_log(lo: f64, hi: f64) -> (f64, f64) {
    let (mut l, mut h) = (lo.log10(), hi.log10());
    if l == h {
        l -= 0.5;
        h += 0.5;
    } else {
        let pad = (h - l) * 0.05;
        l -= pad;
        h += pad;
    }
    if h.floor() < l {
        l = l.floor();
        h = h.ceil();
    }
    (10f64.powf(l), 10f64.powf(h))
}

/// Formats a tick value compactly: `0`, `0.25`, `120`, `1e-3`, `2.5e5`.
///
/// Plain notation between 0.01 and 1e5, scientific outside; at most four significant
/// digits, trailing zeros removed, so `0.30000000000000004` prints as `0.3`.
pub(crate) fn format_tick(value: f64) -> String {
    format_significant(value, 4, 1e-2..1e5)
}

/// One axis of a chart: a value range, a scale, and optionally flipped (so that the
/// first image row can sit at the top, as in a matrix).
pub(crate) struct Coord {
    scale: Scale,
    range: Range<f64>,
    flipped: bool,
    integral: bool,
    /// Linear map of the value (or its log10) onto pixels.
    linear: RangedCoordf64,
}

impl Coord {
    /// An axis from `lo` to `hi` (`lo < hi`, both positive for [`Scale::Log10`]).
    pub(crate) fn new(scale: Scale, lo: f64, hi: f64) -> Self {
        let linear = match scale {
            Scale::Linear => (lo..hi).into(),
            Scale::Log10 => (lo.log10()..hi.log10()).into(),
        };
        Self {
            scale,
            range: lo..hi,
            flipped: false,
            integral: false,
            linear,
        }
    }

    /// The same axis with ticks only at whole numbers (for counts such as batch or
    /// row indices, where a tick at 2.5 means nothing).
    pub(crate) fn integral(self) -> Self {
        Self {
            integral: true,
            ..self
        }
    }

    /// A linear axis from `lo` to `hi` drawn the other way round: for a y axis, `lo`
    /// at the top.
    pub(crate) fn flipped(lo: f64, hi: f64) -> Self {
        Self {
            flipped: true,
            ..Self::new(Scale::Linear, lo, hi)
        }
    }

    /// The value as placed on the linear pixel map.
    fn to_linear(&self, value: f64) -> f64 {
        let value = if self.flipped {
            self.range.start + self.range.end - value
        } else {
            value
        };
        match self.scale {
            Scale::Linear => value,
            Scale::Log10 => value.log10(),
        }
    }

    /// Powers of ten inside the range (every k-th if there are too many), plus their
    /// multiples when the range spans only a few decades and `max_points` allows.
    fn log_key_points(&self, max_points: usize) -> Vec<f64> {
        let max_points = max_points.max(1);
        let (lo, hi) = (self.range.start, self.range.end);
        // Exponents of f64 lie within about +-330, so these conversions are exact.
        let first = lo.log10().ceil() as i32;
        let last = hi.log10().floor() as i32;
        let decades = usize::try_from(last - first + 1).unwrap_or(0);
        let step = decades.div_ceil(max_points).max(1);
        let mut points: Vec<f64> = (first..=last)
            .step_by(step)
            .map(|e| 10f64.powi(e))
            .collect();
        // Fill short ranges with multiples: 2..9 within about a decade, else 2 and 5,
        // as long as the hint allows that many labels.
        for multiples in [
            &[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0][..],
            &[2.0, 5.0][..],
        ] {
            if decades > 3 {
                break;
            }
            let extra: Vec<f64> = (first - 1..=last)
                .flat_map(|e| multiples.iter().map(move |m| m * 10f64.powi(e)))
                .filter(|v| (lo..=hi).contains(v))
                .collect();
            if points.len() + extra.len() <= max_points {
                points.extend(extra);
                points.sort_by(f64::total_cmp);
                break;
            }
        }
        points
    }
}

impl Ranged for Coord {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(&self.to_linear(*value), limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match self.scale {
            Scale::Log10 => self.log_key_points(hint.max_num_points()),
            Scale::Linear => {
                // The linear map's own ticks are round numbers of the value itself
                // (mirrored back when flipped, which keeps them round).
                let unflipped = RangedCoordf64::from(self.range.clone());
                let mut points = unflipped.key_points(hint);
                snap_to_zero(&mut points, self.range.end - self.range.start);
                if self.integral {
                    points.retain(|v| v.fract() == 0.0);
                }
                points
            }
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for Coord {
    fn format(value: &f64) -> String {
        format_tick(*value)
    }
}

/// Ticks closer to zero than this fraction of the tick step are zero.
const ZERO_SNAP: f64 = 1e-9;

/// Sets to exactly `0.0` every tick within [`ZERO_SNAP`] of a step of zero.
///
/// Plotters places linear ticks at `first + i * step` in floating point, so the tick
/// meant to be zero can come out as `-1.4e-17` or `-2.2e-16` and be labelled so. A
/// real tick is a whole step away from its neighbours, so nothing but a rounding
/// error lies that close to zero. The step is the smallest gap between neighbouring
/// ticks, or `span` (the axis range) when there is a single tick.
fn snap_to_zero(points: &mut [f64], span: f64) {
    let step = points
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .filter(|gap| *gap > 0.0)
        .fold(span.abs(), f64::min);
    if !step.is_finite() {
        return;
    }
    for v in points.iter_mut() {
        if v.abs() <= step * ZERO_SNAP {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(format_tick(0.0), "0");
        assert_eq!(format_tick(0.1 + 0.2), "0.3");
        assert_eq!(format_tick(120.0), "120");
        assert_eq!(format_tick(-2.5), "-2.5");
        assert_eq!(format_tick(0.01), "0.01");
        assert_eq!(format_tick(1e-3), "1e-3");
        assert_eq!(format_tick(1e-4), "1e-4");
        assert_eq!(format_tick(2.5e5), "2.5e5");
        assert_eq!(format_tick(12345.0), "12345");
    }

    #[test]
    fn ticks_within_a_tiny_fraction_of_a_step_of_zero_are_zero() {
        let mut points = vec![-0.5, -2.220446049250313e-16, 0.5, 1.0];
        snap_to_zero(&mut points, 2.0);
        assert_eq!(points, vec![-0.5, 0.0, 0.5, 1.0]);
        assert!(points[1].is_sign_positive(), "snapped to +0, not -0");
        // Relative to the step: with ticks 1e-12 apart, 1e-12 is a real tick and stays.
        let mut small = vec![-1e-12, 0.0, 1e-12, 2e-12];
        snap_to_zero(&mut small, 4e-12);
        assert_eq!(small, vec![-1e-12, 0.0, 1e-12, 2e-12]);
        // A lone tick is judged against the axis span.
        let mut lone = vec![3e-17];
        snap_to_zero(&mut lone, 0.1);
        assert_eq!(lone, vec![0.0]);
        let mut far = vec![1e-3];
        snap_to_zero(&mut far, 0.1);
        assert_eq!(far, vec![1e-3]);
    }

    #[test]
    fn an_axis_across_zero_labels_its_zero_tick_0() {
        // Plotters places the middle tick of these axes at -1.39e-17 and 6.9e-18.
        for (lo, hi, hint) in [
            (-0.104, -0.104 + 3.0 * 0.071, 5usize),
            (-0.104, -0.104 + 3.0 * 0.071, 12),
            (-0.052, -0.052 + 3.0 * 0.071, 12),
            (-1.0, 1.0, 10),
        ] {
            let points = Coord::new(Scale::Linear, lo, hi).key_points(hint);
            assert!(points.contains(&0.0), "{lo}..{hi}: {points:?}");
            assert!(
                points.iter().all(|&v| v == 0.0 || v.abs() > 1e-6),
                "{lo}..{hi}: {points:?}"
            );
            let labels: Vec<String> = points.iter().map(|&v| format_tick(v)).collect();
            assert!(labels.iter().any(|l| l == "0"), "{labels:?}");
            assert!(labels.iter().all(|l| !l.contains("e-1")), "{labels:?}");
        }
        // Flipped axes use the same ticks.
        let flipped = Coord::flipped(-0.104, -0.104 + 3.0 * 0.071).key_points(5usize);
        assert!(flipped.contains(&0.0), "{flipped:?}");
    }

    #[test]
    fn linear_span_pads_and_skips_non_finite() {
        let (lo, hi) = Scale::Linear
            .span([0.0, f64::NAN, 10.0, f64::INFINITY])
            .unwrap();
        assert_eq!((lo, hi), (-0.5, 10.5));
        assert_eq!(Scale::Linear.span([f64::NAN]), None);
        assert_eq!(Scale::Linear.span([0.0]), Some((-1.0, 1.0)));
    }

    #[test]
    fn log_span_skips_non_positive_and_contains_a_decade() {
        assert_eq!(Scale::Log10.span([0.0, -1.0]), None);
        let (lo, hi) = Scale::Log10.span([-5.0, 0.0, 2.0, 5.0]).unwrap();
        assert_eq!((lo, hi), (1.0, 10.0));
        let (lo, hi) = Scale::Log10.span([1e-5, 1e-1]).unwrap();
        assert!(lo < 1e-5 && lo > 1e-6 && hi > 1e-1 && hi < 1.0);
    }

    #[test]
    fn log_key_points_are_decades_and_multiples() {
        let coord = Coord::new(Scale::Log10, 1e-3, 1.0);
        assert_eq!(coord.key_points(4usize), vec![1e-3, 1e-2, 1e-1, 1.0]);
        // Too many decades for the hint: every second one.
        assert_eq!(coord.key_points(3usize), vec![1e-3, 1e-1]);
        let few = Coord::new(Scale::Log10, 0.15, 12.0).key_points(10usize);
        assert_eq!(few, vec![0.2, 0.5, 1.0, 2.0, 5.0, 10.0]);
        let narrow = Coord::new(Scale::Log10, 0.9, 3.5).key_points(10usize);
        assert_eq!(narrow, vec![0.9, 1.0, 2.0, 3.0]);
        let many = Coord::new(Scale::Log10, 1e-12, 1.0).key_points(5usize);
        assert_eq!(many.len(), 5);
    }

    #[test]
    fn flipped_axis_maps_low_values_to_the_far_end() {
        let up = Coord::new(Scale::Linear, 0.0, 10.0);
        let down = Coord::flipped(0.0, 10.0);
        assert_eq!(up.map(&0.0, (0, 100)), 0);
        assert_eq!(down.map(&0.0, (0, 100)), 100);
        assert_eq!(down.map(&10.0, (0, 100)), 0);
    }

    #[test]
    fn valid_range_rejects_empty_and_non_finite() {
        assert!(valid_range(0.0, 1.0));
        assert!(!valid_range(1.0, 1.0));
        assert!(!valid_range(f64::NEG_INFINITY, 1.0));
        assert!(!valid_range(0.0, f64::NAN));
    }
}
