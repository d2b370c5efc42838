//! Random tensors from a caller-supplied generator, so a seed fixes the values.
//!
//! Values are drawn in logical (row-major) order, one draw per element, from
//! distributions of the element type itself (`f32` draws are not rounded `f64` draws),
//! so the same seed gives the same tensor on every run and platform.

use rand::distr::{Distribution, Uniform};
use rand::Rng;
use rand_distr::Normal;

use crate::cpu::alloc_buf;
use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError};
use crate::shape::Shape;
use crate::storage::CpuStorage;
use crate::tensor::{check_device, place};
use crate::{Device, Tensor};

/// `shape.elem_count()` draws from `d`, in order; errors (naming `op`) if the tensor
/// cannot be allocated.
fn sample<T: Element, D: Distribution<T>, R: Rng + ?Sized>(
    d: &D,
    shape: &Shape,
    rng: &mut R,
    op: &'static str,
) -> Result<Vec<T>> {
    // Every element is drawn, so the buffer's old contents do not matter.
    let mut v = alloc_buf::buffer(op, shape)?;
    v.iter_mut().for_each(|x| *x = d.sample(rng));
    Ok(v)
}

impl Tensor {
    /// Uniform samples from `[lo, hi)` (float dtypes). Errors unless `lo < hi`, both
    /// finite.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use tensor::{DType, Device, Tensor};
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let t = Tensor::rand_uniform([2, 3], -1.0, 1.0, DType::F32, &Device::Cpu, &mut rng).unwrap();
    /// assert!(t.to_vec::<f32>().unwrap().iter().all(|v| (-1.0..1.0).contains(v)));
    /// ```
    pub fn rand_uniform<R: Rng + ?Sized>(
        shape: impl Into<Shape>,
        lo: f64,
        hi: f64,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Tensor> {
        const OP: &str = "rand_uniform";
        check_device(device, OP)?;
        let shape = shape.into();
        let bad = |e: rand::distr::uniform::Error| {
            TensorError::invalid(OP, format!("invalid range [{lo}, {hi}): {e}"))
        };
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(sample(
                &Uniform::new(lo as f32, hi as f32).map_err(bad)?,
                &shape,
                rng,
                OP,
            )?),
            DType::F64 => CpuStorage::F64(sample(
                &Uniform::new(lo, hi).map_err(bad)?,
                &shape,
                rng,
                OP,
            )?),
            DType::U32 => return Err(TensorError::UnsupportedDType { op: OP, dtype }),
        };
        place(Tensor::from_cpu_storage(storage, shape), device)
    }

    /// Normal samples with the given mean and standard deviation (float dtypes).
    /// Errors unless `std` is finite and non-negative.
    ///
    /// ```
    /// use rand::SeedableRng;
    /// use tensor::{DType, Device, Tensor};
    /// let a = Tensor::randn([100], 0.0, 1.0, DType::F64, &Device::Cpu, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
    /// let b = Tensor::randn([100], 0.0, 1.0, DType::F64, &Device::Cpu, &mut rand::rngs::StdRng::seed_from_u64(7)).unwrap();
    /// assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
    /// ```
    pub fn randn<R: Rng + ?Sized>(
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        dtype: DType,
        device: &Device,
        rng: &mut R,
    ) -> Result<Tensor> {
        const OP: &str = "randn";
        check_device(device, OP)?;
        let shape = shape.into();
        let bad = |e: rand_distr::NormalError| {
            TensorError::invalid(OP, format!("invalid mean {mean} / std {std}: {e}"))
        };
        if !mean.is_finite() || !std.is_finite() || std < 0.0 {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "mean must be finite and std finite and >= 0, got mean {mean} and std {std}"
                ),
            ));
        }
        let storage = match dtype {
            DType::F32 => CpuStorage::F32(sample(
                &Normal::new(mean as f32, std as f32).map_err(bad)?,
                &shape,
                rng,
                OP,
            )?),
            DType::F64 => CpuStorage::F64(sample(
                &Normal::new(mean, std).map_err(bad)?,
                &shape,
                rng,
                OP,
            )?),
            DType::U32 => return Err(TensorError::UnsupportedDType { op: OP, dtype }),
        };
        place(Tensor::from_cpu_storage(storage, shape), device)
    }
}
