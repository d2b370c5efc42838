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

pub mod cpu;
pub mod error;

pub use error::{KernelError, Result};
