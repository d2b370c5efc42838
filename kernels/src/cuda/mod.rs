//! The CUDA backend: hand-written CUDA C kernels compiled at run time with NVRTC, and
//! cuBLAS for matrix products, all reached through `cudarc` with dynamic loading, so
//! building needs neither a GPU nor a CUDA toolkit.
//!
//! [`cuda_available`] says why CUDA cannot be used (it never panics, also without the
//! driver library); [`CudaDevice::get`] opens a GPU. Kernels take `cudarc` device
//! buffers ([`CudaSlice`](cudarc::driver::CudaSlice)) plus sizes and strides, check
//! that every addressed element lies inside its buffer, and return
//! [`KernelError::Cuda`](crate::KernelError) when a CUDA call fails. All work of one
//! device runs on one stream, so ops are ordered without events.
//!
//! Families, each a `.cu` source under `src/cuda/src/` with `f32` and `f64` (and for
//! copies, comparisons and max/min, `u32`) instances:
//!
//! - [`elementwise`]: unary maps, broadcasting binary ops and comparisons over strided
//!   views, `where`, casts and strided copies, fills, in-place updates, and the indexed
//!   copy behind `index_select`, `gather`, `index_add` and `scatter_add`;
//! - [`reduce`]: row reductions (sum, mean, variance, max, min, arg-max, arg-min),
//!   softmax / log-softmax, cross-entropy forward and backward;
//! - [`matmul`]: strided-batched `sgemm`/`dgemm` on row-major operands;
//! - [`conv2d`]: im2col + gemm forward, gemm + col2im input gradient, weight and bias
//!   gradients;
//! - [`norm`]: batch norm forward (batch or running statistics) and backward, group
//!   norm forward and backward;
//! - [`stats`]: the fused activation statistics, histogram in shared memory.
//!
//! None of this has been run on a GPU in this project so far (the development
//! machines have none); the tests compare every op with the CPU kernels and skip with
//! a printed reason when no device is found.

pub mod conv2d;
pub mod device;
pub mod elementwise;
pub mod matmul;
pub mod norm;
pub mod reduce;
pub mod stats;

pub use cudarc;
pub use device::{cuda_available, CudaDevice, CudaElem, CudaFloat};
