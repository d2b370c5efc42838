//! CPU kernels: SIMD with run-time dispatch, parallel with rayon.

pub mod conv2d;
pub mod denormals;
pub mod dispatch;
pub mod elementwise;
pub mod gemm;
pub mod norm;
pub mod reduce;
mod simd;
pub mod stats;

pub use dispatch::SimdLevel;
