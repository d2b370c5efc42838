//! A strided n-dimensional tensor over shared storage.
//!
//! [`Tensor`] = an `Arc` to storage plus a [`Layout`] (shape, strides, offset). Views
//! (`reshape`/`view`, `permute`, `transpose`, `narrow`, `select`, `expand`, `squeeze`,
//! `unsqueeze`, `flatten`) rewrite the layout and share the storage; `contiguous()`
//! copies only when needed. Elementwise ops broadcast like NumPy; reductions work over
//! any set of dims; `matmul` calls the strided gemm kernels of the `kernels` crate
//! without copying transposed operands.
//!
//! Element types are `f32`, `f64` (for tight gradient checks) and `u32` (indices). The
//! storage is an enum over devices: with the `cuda` feature, tensors live on and move
//! between the CPU and CUDA GPUs (`Device::Cuda`), ops on CUDA tensors run the kernels
//! of `kernels::cuda`, and mixing devices in one op is a
//! [`TensorError::DeviceMismatch`]. Without the feature, asking for `Device::Cuda`
//! returns [`TensorError::CudaUnavailable`].
//!
//! Every op on bad input returns a [`TensorError`] naming the op and the shapes, dims or
//! values involved; nothing panics on user input. Host memory is allocated fallibly: a
//! tensor too large for memory is a [`TensorError::AllocationFailed`] naming the op,
//! the shape, the dtype and the bytes, and the process goes on.
//!
//! ```
//! use tensor::{DType, Device, Tensor};
//! # fn main() -> tensor::Result<()> {
//! let dev = Device::Cpu;
//! let x = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &dev)?.reshape([2, 3])?;
//! let col_means = x.mean(&[0], false)?;
//! assert_eq!(col_means.to_vec::<f32>()?, vec![1.5, 2.5, 3.5]);
//! let centred = x.sub(&col_means)?; // broadcasts [3] against [2, 3]
//! assert_eq!(centred.to_vec::<f32>()?, vec![-1.5, -1.5, -1.5, 1.5, 1.5, 1.5]);
//! # Ok(())
//! # }
//! ```

pub mod alloc;
pub(crate) mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
mod display;
pub mod dtype;
pub mod error;
pub mod layout;
pub mod ops;
pub mod pool;
mod random;
pub mod shape;
pub(crate) mod storage;
pub(crate) mod strided;
pub mod tensor;

pub use device::Device;
pub use dtype::{DType, Element, FloatElement};
pub use error::{Result, TensorError};
pub use layout::{Blocks, Layout};
pub use shape::Shape;
pub use tensor::Tensor;
