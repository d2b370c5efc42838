//! The LR finder's figure: loss against learning rate on a log axis, with the
//! suggested learning rate marked.

use std::path::Path;

use plots::{LinePlot, Scale, Series};

use super::LrFinderResult;
use crate::error::{Result, TrainError};

impl LrFinderResult {
    /// The figure: the smoothed loss (solid) and the raw loss (dashed) against the
    /// learning rate on a log10 axis, with a marker at the suggested learning rate.
    /// Raw losses above the highest smoothed value (the last batches of a diverging
    /// sweep) are left out so they do not squash the interesting part of the curve.
    /// Save it with `save_png`/`save_svg`, or add to it first.
    pub fn plot(&self) -> LinePlot {
        let ceiling = self
            .smoothed
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        let raw: Vec<f64> = self
            .losses
            .iter()
            .map(|&l| if l <= ceiling { l } else { f64::NAN })
            .collect();
        let suggested = self.suggested_lr;
        LinePlot::new("LR finder", "learning rate (log scale)", "loss")
            .x_scale(Scale::Log10)
            .series(Series::from_xy(
                "smoothed loss",
                self.lrs.clone(),
                self.smoothed.clone(),
            ))
            .series(Series::from_xy("raw loss", self.lrs.clone(), raw).dashed())
            .marker(
                suggested,
                self.smoothed_at(suggested),
                format!("suggested lr {suggested:.1e} (minimum / 10)"),
            )
    }

    /// Writes [`plot`](LrFinderResult::plot) as a 1000 x 600 PNG at `path` (the
    /// directory must exist).
    ///
    /// # Errors
    /// [`TrainError::Plot`] if the file cannot be written or the result has no
    /// drawable point.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<()> {
        self.plot()
            .save_png(path, 1000, 600)
            .map_err(|e| TrainError::Plot(Box::new(e)))
    }
}
