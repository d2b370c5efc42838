//! Generic CPU loops over strided views, shared by every op.
//!
//! Functions here take storage slices plus [`Layout`](crate::Layout)s (already
//! validated and broadcast by the op) and are generic over the element type, so each op
//! is written once for f32 and f64 (and u32 where it makes sense). They walk the
//! operands with [`Runs`](crate::strided::Runs) and specialise the inner loop on the
//! inner strides (1 = contiguous, 0 = broadcast), which is what lets the compiler
//! vectorise them.
//!
//! Every host buffer they produce comes from [`alloc_buf`], which allocates fallibly
//! and reports a failure as [`TensorError::AllocationFailed`](crate::TensorError::AllocationFailed).

pub(crate) mod alloc_buf;
pub(crate) mod map;
pub(crate) mod reduce;
pub(crate) mod write;
