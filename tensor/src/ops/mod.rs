//! Tensor ops, one concept per module. Each op validates its arguments (returning a
//! [`TensorError`](crate::TensorError) that names it), matches once on device and
//! dtype, and runs a generic loop from [`crate::cpu`].

pub mod binary;
pub mod index;
pub mod inplace;
pub mod join;
pub mod matmul;
pub mod reduce;
pub mod softmax;
pub mod unary;
pub mod view;
