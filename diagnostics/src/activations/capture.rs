//! One-off captures at a chosen call: per-layer histograms ([`Snapshot`], Karpathy's
//! activation-distribution figure) and one layer's [`SaturationMap`] (Karpathy's
//! `h.abs() > 0.99` image).

use tensor::{DType, Device, Tensor};

use crate::error::{DiagError, Result};
use crate::format::Num;
use crate::histogram::HistogramSpec;

use super::log::{layer_label, ActivationRecord};

/// One layer's histogram at the snapshot call, with its statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotLayer {
    /// Dotted path of the module.
    pub path: String,
    /// The module's kind.
    pub kind: String,
    /// Mean, std, saturation and the rest, under the recorder's configuration.
    pub record: ActivationRecord,
    /// The bins of `counts`.
    pub spec: HistogramSpec,
    /// Bin counts.
    pub counts: Vec<u64>,
    /// Finite values below `spec.lo`.
    pub below: u64,
    /// Finite values at or above `spec.hi`.
    pub above: u64,
}

impl SnapshotLayer {
    /// `path (Kind)`.
    pub fn label(&self) -> String {
        layer_label(&self.path, &self.kind)
    }

    /// Karpathy's legend line: `mean +0.01, std 0.63, saturated 4.2%`.
    pub fn stat_line(&self) -> String {
        format!(
            "mean {:+.2}, std {:.2}, saturated {:.1}%",
            Num(self.record.mean),
            Num(self.record.std),
            100.0 * self.record.saturated
        )
    }
}

/// Per-layer histograms of every watched module at one training call.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The training call captured.
    pub call: usize,
    /// The layers, in forward order.
    pub layers: Vec<SnapshotLayer>,
}

/// Which units of one layer were saturated for which examples at one call.
///
/// Rows are examples (the first `rows` of the batch), columns are the units of one
/// example (every element of its output, flattened: features of a Linear, channels x
/// height x width of a Conv2d).
#[derive(Clone, Debug, PartialEq)]
pub struct SaturationMap {
    /// Dotted path of the module.
    pub layer: String,
    /// The training call captured.
    pub call: usize,
    /// `|h| > threshold` is saturated.
    pub threshold: f64,
    /// Number of examples.
    pub rows: usize,
    /// Number of units per example.
    pub cols: usize,
    /// Row-major cells, `true` where saturated (NaN counts as not saturated).
    pub cells: Vec<bool>,
}

impl SaturationMap {
    /// Captures `output` (shape `[batch, ...]`) of `layer`.
    ///
    /// # Errors
    /// [`DiagError::Tensor`] for a tensor of rank 0 or an integer dtype.
    pub fn capture(
        layer: &str,
        call: usize,
        output: &Tensor,
        threshold: f64,
        max_rows: usize,
    ) -> Result<Self> {
        let during = || format!("saturation map of layer {layer:?}");
        let dims = output.dims();
        let Some((&batch, rest)) = dims.split_first() else {
            return Err(DiagError::Tensor {
                during: during(),
                source: tensor::TensorError::InvalidArgument {
                    op: "SaturationMap::capture",
                    detail: "needs an output of shape [batch, ...], got a scalar".to_string(),
                },
            });
        };
        let cols: usize = rest.iter().product();
        let rows = batch.min(max_rows);
        // Only the first rows are needed: narrow (a view) and read them once.
        let head = output
            .narrow(0, 0, rows)
            .and_then(|t| t.to_device(&Device::Cpu))
            .and_then(|t| t.contiguous())
            .map_err(|source| DiagError::Tensor {
                during: during(),
                source,
            })?;
        let cells = match head.dtype() {
            DType::F32 => {
                let th = threshold as f32;
                head.with_slice::<f32, _>(|x| x.iter().map(|v| v.abs() > th).collect())
            }
            DType::F64 => {
                head.with_slice::<f64, _>(|x| x.iter().map(|v| v.abs() > threshold).collect())
            }
            other => Err(tensor::TensorError::UnsupportedDType {
                op: "SaturationMap::capture",
                dtype: other,
            }),
        }
        .map_err(|source| DiagError::Tensor {
            during: during(),
            source,
        })?;
        Ok(Self {
            layer: layer.to_string(),
            call,
            threshold,
            rows,
            cols,
            cells,
        })
    }

    /// Whether unit `col` of example `row` is saturated (`false` outside the map).
    pub fn get(&self, row: usize, col: usize) -> bool {
        row < self.rows && col < self.cols && self.cells[row * self.cols + col]
    }

    /// Fraction of saturated cells.
    pub fn fraction(&self) -> f64 {
        let n = self.cells.len();
        if n == 0 {
            return 0.0;
        }
        self.cells.iter().filter(|&&c| c).count() as f64 / n as f64
    }

    /// Units saturated for every captured example: Karpathy's "dead" tanh neurons,
    /// whose gradient is zero whatever the input (the white columns of the image).
    pub fn always_saturated_units(&self) -> Vec<usize> {
        if self.rows == 0 {
            return Vec::new();
        }
        (0..self.cols)
            .filter(|&c| (0..self.rows).all(|r| self.cells[r * self.cols + c]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_rows_and_units() {
        let x = Tensor::from_vec(
            vec![0.995f32, 0.1, -1.0, 0.2, 0.999, -0.999, 0.0, 0.5, 1.0],
            [3, 3],
            &Device::Cpu,
        )
        .unwrap();
        let map = SaturationMap::capture("h", 0, &x, 0.99, 2).unwrap();
        assert_eq!((map.rows, map.cols), (2, 3));
        assert_eq!(map.cells, vec![true, false, true, false, true, true]);
        assert!(map.get(1, 2) && !map.get(0, 1) && !map.get(5, 0));
        assert_eq!(map.always_saturated_units(), vec![2]);
        assert!((map.fraction() - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn conv_outputs_flatten_per_example() {
        let x = Tensor::ones([4, 2, 3, 3], DType::F64, &Device::Cpu).unwrap();
        let map = SaturationMap::capture("c", 1, &x, 0.99, 32).unwrap();
        assert_eq!((map.rows, map.cols), (4, 18));
        assert_eq!(map.always_saturated_units().len(), 18);
    }

    #[test]
    fn scalars_are_refused() {
        let x = Tensor::scalar(1.0f32);
        let e = SaturationMap::capture("s", 0, &x, 0.99, 2).unwrap_err();
        assert!(
            e.to_string().contains("saturation map of layer \"s\""),
            "{e}"
        );
    }
}
