//! `Display` and `Debug` for tensors: a header with dtype, shape and device, then the
//! values as nested brackets, summarised like NumPy for big tensors (the first and last
//! three entries of each long dim around `...`).

use std::fmt;

use crate::dtype::{DType, Element};
use crate::storage::{CpuStorage, Storage};
use crate::Tensor;

/// Tensors with more elements than this are summarised.
const SUMMARY_THRESHOLD: usize = 1000;
/// Entries shown at each end of a summarised dim.
const EDGE_ITEMS: usize = 3;

/// Which indices of each dim are shown (`None` marks the `...`).
fn shown_indices(dims: &[usize], summarise: bool) -> Vec<Vec<Option<usize>>> {
    dims.iter()
        .map(|&d| {
            if summarise && d > 2 * EDGE_ITEMS {
                (0..EDGE_ITEMS)
                    .map(Some)
                    .chain(std::iter::once(None))
                    .chain((d - EDGE_ITEMS..d).map(Some))
                    .collect()
            } else {
                (0..d).map(Some).collect()
            }
        })
        .collect()
}

/// Storage offsets of the shown elements, in logical order.
fn shown_offsets(idx: &[Vec<Option<usize>>], strides: &[usize], base: usize, out: &mut Vec<usize>) {
    match idx.split_first() {
        None => out.push(base),
        Some((first, rest)) => {
            for i in first.iter().flatten() {
                shown_offsets(rest, &strides[1..], base + i * strides[0], out);
            }
        }
    }
}

/// Formats the shown values with one common style and width.
fn format_values(values: &[f64], dtype: DType) -> Vec<String> {
    if dtype == DType::U32 {
        return values.iter().map(|v| format!("{v}")).collect();
    }
    let finite = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v != 0.0);
    let (lo, hi) = finite.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v.abs()), hi.max(v.abs()))
    });
    let scientific = hi >= 1e8 || (lo < 1e-4 && lo.is_finite());
    values
        .iter()
        .map(|v| {
            if scientific {
                format!("{v:.4e}")
            } else {
                format!("{v:.4}")
            }
        })
        .collect()
}

/// Writes the nested-bracket body for the shown values.
fn write_nested(
    f: &mut fmt::Formatter<'_>,
    idx: &[Vec<Option<usize>>],
    depth: usize,
    values: &mut std::slice::Iter<'_, String>,
    width: usize,
) -> fmt::Result {
    let Some((first, rest)) = idx.split_first() else {
        return write!(f, "{:>width$}", values.next().map_or("?", |s| s.as_str()));
    };
    f.write_str("[")?;
    for (pos, i) in first.iter().enumerate() {
        if pos > 0 {
            if rest.is_empty() {
                f.write_str(", ")?;
            } else {
                // One newline between rows, an extra blank line per dim beyond 2-D.
                f.write_str(",")?;
                for _ in 0..rest.len() {
                    f.write_str("\n")?;
                }
                write!(f, "{:indent$}", "", indent = depth + 1)?;
            }
        }
        match i {
            Some(_) => write_nested(f, rest, depth + 1, values, width)?,
            None => f.write_str("...")?,
        }
    }
    f.write_str("]")
}

fn offsets_values<T: Element>(data: &[T], offsets: &[usize]) -> Vec<f64> {
    offsets.iter().map(|&o| data[o].to_f64()).collect()
}

impl fmt::Display for Tensor {
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::Cpu).unwrap().reshape([2, 3]).unwrap();
    /// assert_eq!(
    ///     t.to_string(),
    ///     "Tensor[f32; [2, 3]; cpu]\n[[0.0000, 1.0000, 2.0000],\n [3.0000, 4.0000, 5.0000]]"
    /// );
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Tensor[{}; {}; {}]",
            self.dtype,
            self.shape(),
            self.device
        )?;
        let summarise = self.elem_count() > SUMMARY_THRESHOLD;
        let idx = shown_indices(self.dims(), summarise);
        let mut offsets = Vec::new();
        shown_offsets(&idx, self.strides(), self.layout.offset(), &mut offsets);
        let values = {
            let guard = self.read_storage();
            match &*guard {
                Storage::Cpu(cpu) => match cpu {
                    CpuStorage::F32(v) => offsets_values(v, &offsets),
                    CpuStorage::F64(v) => offsets_values(v, &offsets),
                    CpuStorage::U32(v) => offsets_values(v, &offsets),
                },
                #[cfg(not(feature = "cuda"))]
                Storage::Cuda(s) => match *s {},
                #[cfg(feature = "cuda")]
                Storage::Cuda(s) => {
                    // The shown elements, read from a host copy of the whole view.
                    let all = crate::cuda::to_host_f64(s, &self.layout).map_err(|_| fmt::Error)?;
                    let mut dense = Vec::new();
                    shown_offsets(&idx, &self.shape().contiguous_strides(), 0, &mut dense);
                    dense.iter().map(|&o| all[o]).collect()
                }
            }
        };
        let strings = format_values(&values, self.dtype);
        let width = strings.iter().map(String::len).max().unwrap_or(0);
        write_nested(f, &idx, 0, &mut strings.iter(), width)
    }
}

impl fmt::Debug for Tensor {
    /// The same text as `Display`: dtype, shape, device and (summarised) values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
