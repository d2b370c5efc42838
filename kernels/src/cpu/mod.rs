//! CPU kernels: SIMD with run-time dispatch, parallel with rayon.

pub mod dispatch;
pub mod gemm;

pub use dispatch::SimdLevel;
