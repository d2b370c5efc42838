//! Per-batch transforms: the hook a [`DataLoader`](super::DataLoader) runs on every
//! batch, and the two the lessons use, [`Normalize`] and [`Flatten`].

use tensor::{DType, Tensor};

use crate::error::{DataError, Result};

/// A function of a batch `(x, y)` to a new batch, run by the loader on every batch
/// after it is assembled. Implemented for closures, so an ad-hoc transform is a line:
///
/// ```
/// use data::loader::Transform;
/// use tensor::{Device, Tensor};
///
/// let double = |x: Tensor, y: Tensor| Ok((x.mul_scalar(2.0)?, y));
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2, 1], &Device::Cpu)?;
/// let y = Tensor::from_vec(vec![0u32, 1], [2], &Device::Cpu)?;
/// let (x2, _) = double.apply(x, y)?;
/// assert_eq!(x2.to_vec::<f32>()?, vec![2.0, 4.0]);
/// # Ok::<(), data::DataError>(())
/// ```
pub trait Transform: Send + Sync {
    /// Transforms one batch; the result replaces it.
    fn apply(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)>;

    /// Like [`apply`](Transform::apply), for a batch the loader has just assembled:
    /// `x` and `y` share their storage with no other tensor, so an implementation may
    /// overwrite them in place instead of allocating (what [`Normalize`] does, saving
    /// a pass over memory per batch). The loader calls this for its first transform
    /// and [`apply`](Transform::apply) for the rest. The default calls `apply`.
    fn apply_to_fresh(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)> {
        self.apply(x, y)
    }
}

impl<F> Transform for F
where
    F: Fn(Tensor, Tensor) -> Result<(Tensor, Tensor)> + Send + Sync,
{
    fn apply(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)> {
        self(x, y)
    }
}

/// Input normalisation: `x -> (x - mean) / std`, with one mean and standard deviation
/// for the whole input (the lesson's `(x - xmean) / xstd`, computed on the training
/// set and applied to every split so they share one scale).
///
/// Without it the inputs of Fashion-MNIST sit in `[0, 1]` with mean about 0.29 and
/// std about 0.35, so the first layer's pre-activations start off-centre and every
/// initialisation scheme derived for unit-variance inputs is off by that factor.
///
/// ```
/// use data::loader::Normalize;
/// use tensor::{Device, Tensor};
///
/// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [4, 1], &Device::Cpu)?;
/// let norm = Normalize::fit(&x)?;
/// assert_eq!(norm.mean, 2.5);
/// let z = norm.normalize(&x)?.to_vec::<f32>()?;
/// let mean: f32 = z.iter().sum::<f32>() / 4.0;
/// assert!(mean.abs() < 1e-6);
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    /// Subtracted from every input element.
    pub mean: f32,
    /// Every centred element is divided by this; positive and finite.
    pub std: f32,
}

impl Normalize {
    /// A normalisation with the given statistics; `std` must be positive and finite
    /// and `mean` finite.
    pub fn new(mean: f32, std: f32) -> Result<Self> {
        if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
            return Err(DataError::invalid(
                "Normalize::new",
                format!("need a finite mean and a positive finite std, got mean {mean}, std {std}"),
            ));
        }
        Ok(Normalize { mean, std })
    }

    /// The mean and standard deviation of every element of `x` (a float tensor: the
    /// training inputs). Accumulated in `f64` with two passes (mean, then squared
    /// deviations), never as `E[x^2] - E[x]^2`; the std is the sample one (divides by
    /// `n - 1`), as PyTorch's `x.std()`.
    ///
    /// Errors if `x` is not `f32`/`f64`, has fewer than two elements, or is constant
    /// (a zero std cannot normalise).
    pub fn fit(x: &Tensor) -> Result<Self> {
        const OP: &str = "Normalize::fit";
        if x.elem_count() < 2 {
            return Err(DataError::invalid(
                OP,
                format!(
                    "need at least 2 elements for a std, got shape {}",
                    x.shape()
                ),
            ));
        }
        let x = x.contiguous()?;
        let (mean, std) = match x.dtype() {
            DType::F32 => x.with_slice(|v: &[f32]| mean_std(v.iter().map(|&e| f64::from(e))))?,
            DType::F64 => x.with_slice(|v: &[f64]| mean_std(v.iter().copied()))?,
            DType::U32 => {
                return Err(DataError::invalid(
                    OP,
                    "inputs must be f32 or f64, got a u32 tensor",
                ))
            }
        };
        Normalize::new(mean as f32, std as f32).map_err(|_| {
            DataError::invalid(
                OP,
                format!(
                    "the inputs (shape {}) have mean {mean} and std {std}, which cannot \
                     normalise (constant or non-finite data?)",
                    x.shape()
                ),
            )
        })
    }

    /// `(x - mean) / std`, elementwise, as a new tensor on `x`'s device.
    pub fn normalize(&self, x: &Tensor) -> Result<Tensor> {
        let (mul, add) = self.affine_coefficients();
        Ok(x.affine(mul, add)?)
    }

    /// `(1 / std, -mean / std)`: normalising is the affine map `x * mul + add`.
    fn affine_coefficients(&self) -> (f64, f64) {
        let inv = 1.0 / f64::from(self.std);
        (inv, -f64::from(self.mean) * inv)
    }
}

impl Transform for Normalize {
    fn apply(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)> {
        Ok((self.normalize(&x)?, y))
    }

    /// Normalises a contiguous `f32` CPU batch in place (one pass, no allocation);
    /// anything else goes through [`Normalize::normalize`].
    fn apply_to_fresh(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)> {
        if x.dtype() != DType::F32 || !x.device().is_cpu() || !x.is_contiguous() {
            return self.apply(x, y);
        }
        let (mul, add) = self.affine_coefficients();
        let (mul, add) = (mul as f32, add as f32);
        x.with_slice_mut(|v: &mut [f32]| v.iter_mut().for_each(|e| *e = *e * mul + add))?;
        Ok((x, y))
    }
}

/// Mean and sample standard deviation of `values`, in f64, in two passes.
fn mean_std<I: Iterator<Item = f64> + Clone>(values: I) -> (f64, f64) {
    let (n, sum) = values
        .clone()
        .fold((0usize, 0.0f64), |(n, s), v| (n + 1, s + v));
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = sum / n as f64;
    let ss: f64 = values.map(|v| (v - mean) * (v - mean)).sum();
    let std = if n > 1 {
        (ss / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, std)
}

/// Flattens every input to one row per example: `[B, d1, d2, ..] -> [B, d1*d2*..]`,
/// the view an MLP wants (`[B, 1, 28, 28] -> [B, 784]`). Targets pass through.
///
/// ```
/// use data::loader::{Flatten, Transform};
/// use tensor::{DType, Device, Tensor};
///
/// let x = Tensor::zeros([8, 1, 28, 28], DType::F32, &Device::Cpu)?;
/// let y = Tensor::zeros([8], DType::U32, &Device::Cpu)?;
/// let (x, _) = Flatten.apply(x, y)?;
/// assert_eq!(x.dims(), &[8, 784]);
/// # Ok::<(), data::DataError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

impl Transform for Flatten {
    fn apply(&self, x: Tensor, y: Tensor) -> Result<(Tensor, Tensor)> {
        let batch = x.dims().first().copied().ok_or_else(|| {
            DataError::invalid("Flatten", "cannot flatten a scalar (rank-0) input")
        })?;
        let row: usize = x.dims()[1..].iter().product();
        Ok((x.reshape([batch, row])?, y))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_is_exact_on_a_small_example() {
        let (m, s) = mean_std([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0].into_iter());
        assert_eq!(m, 5.0);
        // Sum of squared deviations is 32, so the sample variance is 32 / 7.
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn mean_std_keeps_precision_far_from_zero() {
        // A naive f32 E[x^2] - E[x]^2 loses every digit here.
        let values = (0..1000).map(|i| 1.0e4 + if i % 2 == 0 { 1e-2 } else { -1e-2 });
        let (m, s) = mean_std(values);
        assert!((m - 1.0e4).abs() < 1e-9);
        assert!((s - 1e-2 * (1000.0f64 / 999.0).sqrt()).abs() < 1e-9, "{s}");
    }

    #[test]
    fn new_rejects_zero_and_non_finite_std() {
        assert!(Normalize::new(0.0, 0.0).is_err());
        assert!(Normalize::new(0.0, -1.0).is_err());
        assert!(Normalize::new(f32::NAN, 1.0).is_err());
        assert!(Normalize::new(0.0, f32::INFINITY).is_err());
        assert!(Normalize::new(0.5, 2.0).is_ok());
    }
}
