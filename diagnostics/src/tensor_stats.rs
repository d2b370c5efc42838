//! The fused statistics kernel applied to a [`Tensor`] in one pass over its storage.
//!
//! This is the whole cost of watching a layer: [`tensor_stats`] hands the tensor's
//! contiguous storage ([`Tensor::with_slice`]) to [`kernels::cpu::stats::stats`], which
//! reads every element once (SIMD, in parallel on large tensors) and returns count,
//! mean, variance, min, max, a histogram and the near-zero / saturated / non-finite
//! counts. No tensor op runs and nothing is copied for the contiguous CPU tensors that
//! layers produce. A strided view (a transpose, an expanded tensor) is first copied
//! into a contiguous tensor, which the docs of the recorders mention as the one slow
//! path. With the `cuda` feature a tensor on a GPU is measured there by the CUDA
//! version of the kernel (only the totals and the histogram cross the bus); without
//! it, a tensor on another device is first copied to the CPU.

use kernels::cpu::stats::{stats, Stats, StatsConfig};
use tensor::{DType, Device, Tensor};

use crate::error::{DiagError, Result};

/// Statistics of every element of `t` under `config`, in one pass.
///
/// `during` names what is being measured, for error messages (e.g.
/// `"activation of layer 3"`).
///
/// # Errors
/// [`DiagError::Kernel`] for an invalid `config`; [`DiagError::Tensor`] for an
/// integer tensor (`U32` has no meaningful activation statistics) or one that cannot
/// be read.
///
/// ```
/// use diagnostics::tensor_stats::tensor_stats;
/// use kernels::cpu::stats::StatsConfig;
/// use tensor::{Device, Tensor};
///
/// let t = Tensor::from_vec(vec![-1.0f32, 0.0, 0.5, 2.0], [2, 2], &Device::Cpu)?;
/// let s = tensor_stats(&t, &StatsConfig::default(), "example")?;
/// assert_eq!(s.count(), 4);
/// assert_eq!(s.max(), Some(2.0));
/// assert_eq!(s.near_zero(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tensor_stats(t: &Tensor, config: &StatsConfig, during: &str) -> Result<Stats> {
    tensor_stats_named(t, config, &|| during.to_string())
}

/// [`tensor_stats`] with the description built only if an error needs it (a hook that
/// runs every batch then allocates nothing for it).
pub(crate) fn tensor_stats_named(
    t: &Tensor,
    config: &StatsConfig,
    during: &dyn Fn() -> String,
) -> Result<Stats> {
    let tensor_err = |source| DiagError::Tensor {
        during: during(),
        source,
    };
    #[cfg(feature = "cuda")]
    if t.device().is_cuda() {
        return tensor::cuda::stats(t, config).map_err(|source| match source {
            tensor::TensorError::Kernel(source) => DiagError::Kernel {
                during: during(),
                source,
            },
            other => tensor_err(other),
        });
    }
    // The slow paths: bring the values to the CPU and into one contiguous run.
    let on_cpu;
    let mut t = t;
    if !t.device().is_cpu() {
        on_cpu = t.to_device(&Device::Cpu).map_err(tensor_err)?;
        t = &on_cpu;
    }
    let packed;
    if !t.is_contiguous() {
        packed = t.contiguous().map_err(tensor_err)?;
        t = &packed;
    }
    let result = match t.dtype() {
        DType::F32 => t.with_slice::<f32, _>(|x| stats(x, config)),
        DType::F64 => t.with_slice::<f64, _>(|x| stats(x, config)),
        other => {
            return Err(tensor_err(tensor::TensorError::UnsupportedDType {
                op: "tensor_stats",
                dtype: other,
            }))
        }
    };
    result
        .map_err(tensor_err)?
        .map_err(|source| DiagError::Kernel {
            during: during(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_give_the_same_statistics() {
        let t = Tensor::from_vec(
            (0..12).map(|i| i as f32 - 5.5).collect::<Vec<_>>(),
            [3, 4],
            &Device::Cpu,
        )
        .unwrap();
        let cfg = StatsConfig::default();
        let a = tensor_stats(&t, &cfg, "t").unwrap();
        let b = tensor_stats(&t.transpose(0, 1).unwrap(), &cfg, "t^T").unwrap();
        assert_eq!(a.count(), b.count());
        assert_eq!(a.histogram(), b.histogram());
        assert!((a.var() - b.var()).abs() < 1e-12);
    }

    #[test]
    fn integer_tensors_are_an_error_naming_the_caller() {
        let t = Tensor::from_vec(vec![1u32, 2], [2], &Device::Cpu).unwrap();
        let e = tensor_stats(&t, &StatsConfig::default(), "labels").unwrap_err();
        assert!(e.to_string().starts_with("labels:"), "{e}");
    }
}
