//! The correctness and speed harness of the workspace.
//!
//! - [`gradcheck`](mod@gradcheck): compares the gradients autograd computes with central finite
//!   differences in f64, reporting the worst element on failure.
//! - [`strategies`]: proptest strategies for shapes (size-1 dims, broadcast pairs),
//!   values kept away from the kinks of non-smooth ops, and non-contiguous inputs.
//!
//! The property suites live in `tests/`, the criterion benches in `benches/`.

pub mod gradcheck;
pub mod strategies;

pub use gradcheck::{
    check_f32_agrees, gradcheck, prop_f32_agrees, prop_gradcheck, prop_gradcheck_with,
    GradcheckConfig, GradcheckError, Mismatch,
};
