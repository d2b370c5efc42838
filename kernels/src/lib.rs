//! Raw compute kernels over slices.
//!
//! This crate knows nothing about tensors, autograd or layers: every kernel takes plain
//! slices (plus the sizes and strides it needs) and writes plain slices. The tensor crate
//! validates user input and calls in here; kernels still check slice lengths so that a
//! bad call returns a [`KernelError`] instead of reading out of bounds.
//!
//! CPU kernels live in [`cpu`]. Each hot kernel has SIMD micro-kernels for AVX-512 and
//! AVX2+FMA and a portable fallback; the level is chosen at run time (see
//! [`cpu::dispatch`]), and tests and benches can force a lower level explicitly.
//!
//! With the `cuda` feature, `cuda` holds the CUDA backend: hand-written kernels
//! compiled at run time with NVRTC and cuBLAS for gemm, loaded dynamically so that
//! building needs neither a GPU nor a CUDA toolkit.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod error;

pub use error::{KernelError, Result};
