//! Where a tensor's storage lives.

use std::fmt;

/// The device a tensor lives on.
///
/// `Cuda(ordinal)` exists in every build so callers need no `cfg`s: in a build without
/// a CUDA backend, any op that would create storage there returns
/// [`TensorError::CudaUnavailable`](crate::TensorError::CudaUnavailable).
///
/// ```
/// use tensor::Device;
/// assert_eq!(Device::Cpu.to_string(), "cpu");
/// assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
/// assert!(Device::Cuda(0).is_cuda());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// Host memory; ops run on CPU kernels (SIMD + rayon).
    #[default]
    Cpu,
    /// A CUDA GPU, by ordinal.
    Cuda(usize),
}

impl Device {
    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// Whether this is a CUDA device.
    pub fn is_cuda(&self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}
