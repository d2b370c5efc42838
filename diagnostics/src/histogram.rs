//! [`HistogramSpec`]: the bins an activation histogram is counted in, with the two
//! choices the lessons make (magnitudes over `[0, 10)` for ReLU nets, signed values
//! over `[-1, 1)` for tanh nets).

use crate::error::{DiagError, Result};

/// How many bins, over which range, of `x` or of `|x|`.
///
/// Bins are equal and cover `[lo, hi)`. Values outside are not lost: the recorders
/// count them in `below` / `above` beside the bins, and the figures draw them in the
/// edge bins (see [`fold_outliers`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramSpec {
    /// Number of bins (1 to [`kernels::cpu::stats::MAX_BINS`]).
    pub bins: usize,
    /// Lower edge (inclusive, finite).
    pub lo: f64,
    /// Upper edge (exclusive, finite, greater than `lo`).
    pub hi: f64,
    /// Count `|x|` instead of `x`.
    pub abs: bool,
}

impl HistogramSpec {
    /// The fastai lesson's choice for ReLU nets: 40 bins of `|x|` over `[0, 10)`
    /// (`histc(40, 0, 10)` of the absolute values). Its two lowest bins (`|x| < 0.5`)
    /// are what the lesson's dead chart shows.
    pub const fn magnitudes() -> Self {
        Self {
            bins: 40,
            lo: 0.0,
            hi: 10.0,
            abs: true,
        }
    }

    /// Karpathy's range for tanh units: 40 bins of `x` over `[-1, 1)`. A value of
    /// exactly `1.0` (a fully saturated `f32` tanh) counts as above the range and is
    /// drawn in the top bin.
    pub const fn tanh() -> Self {
        Self {
            bins: 40,
            lo: -1.0,
            hi: 1.0,
            abs: false,
        }
    }

    /// `bins` equal bins of signed values over `[lo, hi)`.
    pub const fn signed(bins: usize, lo: f64, hi: f64) -> Self {
        Self {
            bins,
            lo,
            hi,
            abs: false,
        }
    }

    /// Checks the spec; `config` names the configuration it belongs to in errors.
    pub fn validate(&self, config: &'static str) -> Result<()> {
        if self.bins == 0 || self.bins > kernels::cpu::stats::MAX_BINS {
            return Err(DiagError::config(
                config,
                "histogram.bins",
                self.bins,
                format!("must be in 1..={}", kernels::cpu::stats::MAX_BINS),
            ));
        }
        if !(self.lo.is_finite() && self.hi.is_finite() && self.lo < self.hi) {
            return Err(DiagError::config(
                config,
                "histogram range",
                format!("[{}, {})", self.lo, self.hi),
                "needs finite lo < hi",
            ));
        }
        if self.abs && self.lo < 0.0 {
            return Err(DiagError::config(
                config,
                "histogram.lo",
                self.lo,
                "a histogram of |x| must start at 0 or above",
            ));
        }
        Ok(())
    }

    /// Width of one bin.
    pub fn bin_width(&self) -> f64 {
        (self.hi - self.lo) / self.bins as f64
    }

    /// The `bins + 1` bin edges, `lo` to `hi`.
    pub fn edges(&self) -> Vec<f64> {
        let w = self.bin_width();
        (0..=self.bins)
            .map(|k| {
                if k == self.bins {
                    self.hi
                } else {
                    self.lo + k as f64 * w
                }
            })
            .collect()
    }

    /// A spec of `bins` symmetric bins over `[-m, m)` where `m` is a little more than
    /// `max_abs`, so that the largest value lands in the top bin (used to histogram
    /// gradients and snapshots whose scale is not known in advance). A zero or
    /// non-finite `max_abs` gives `[-1, 1)`.
    pub fn symmetric_around(max_abs: f64, bins: usize) -> Self {
        let m = if max_abs.is_finite() && max_abs > 0.0 {
            // Strictly above max_abs whatever the rounding, and never 0.
            (max_abs * (1.0 + 1e-6)).max(f64::MIN_POSITIVE)
        } else {
            1.0
        };
        Self::signed(bins, -m, m)
    }

    /// Label of the value axis of a figure of this histogram.
    pub fn value_label(&self) -> &'static str {
        if self.abs {
            "|activation|"
        } else {
            "activation"
        }
    }
}

impl Default for HistogramSpec {
    /// [`HistogramSpec::magnitudes`], the fastai lesson's default.
    fn default() -> Self {
        Self::magnitudes()
    }
}

/// The counts with the values below the range added to the first bin and those above
/// added to the last, as a figure draws them (a clamp, so no value goes missing from
/// the picture).
pub fn fold_outliers(counts: &[u64], below: u64, above: u64) -> Vec<u64> {
    let mut out = counts.to_vec();
    if let Some(first) = out.first_mut() {
        *first += below;
    }
    if let Some(last) = out.last_mut() {
        *last += above;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_edges_are_exact() {
        for spec in [HistogramSpec::magnitudes(), HistogramSpec::tanh()] {
            spec.validate("test").unwrap();
            let edges = spec.edges();
            assert_eq!(edges.len(), 41);
            assert_eq!(edges[0], spec.lo);
            assert_eq!(edges[40], spec.hi);
        }
        assert_eq!(HistogramSpec::magnitudes().edges()[1], 0.25);
    }

    #[test]
    fn invalid_specs_name_the_field() {
        let e = HistogramSpec::signed(0, 0.0, 1.0)
            .validate("Cfg")
            .unwrap_err();
        assert!(e.to_string().contains("Cfg.histogram.bins = 0"), "{e}");
        let e = HistogramSpec::signed(4, 1.0, 1.0)
            .validate("Cfg")
            .unwrap_err();
        assert!(e.to_string().contains("lo < hi"), "{e}");
        let e = HistogramSpec {
            abs: true,
            ..HistogramSpec::tanh()
        }
        .validate("Cfg")
        .unwrap_err();
        assert!(e.to_string().contains("|x|"), "{e}");
    }

    #[test]
    fn symmetric_range_holds_its_maximum() {
        let spec = HistogramSpec::symmetric_around(0.25, 10);
        assert!(spec.hi > 0.25 && spec.lo == -spec.hi);
        assert_eq!(HistogramSpec::symmetric_around(0.0, 10).hi, 1.0);
        assert_eq!(HistogramSpec::symmetric_around(f64::NAN, 10).hi, 1.0);
    }

    #[test]
    fn outliers_fold_into_the_edge_bins() {
        assert_eq!(fold_outliers(&[1, 2, 3], 4, 5), vec![5, 2, 8]);
        assert!(fold_outliers(&[], 1, 1).is_empty());
    }
}
