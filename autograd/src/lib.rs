//! Reverse-mode automatic differentiation over [`tensor::Tensor`].
//!
//! A [`Var`] is a tensor plus, when it was computed from values that require a
//! gradient, the node that records how it was computed. Nodes are shared (`Arc`) by
//! every clone of a value and point at their inputs, so the graph lives exactly as long
//! as some value that can reach it: dropping the loss and the activations frees it.
//!
//! ```
//! use autograd::Var;
//! use tensor::{Device, Tensor};
//!
//! # fn main() -> Result<(), autograd::AutogradError> {
//! let x = Var::parameter(Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3], &Device::Cpu)?);
//! let y = x.mul(&x)?.sum_all()?; // y = sum(x^2)
//! y.backward()?;
//! assert_eq!(x.grad().unwrap().to_vec::<f64>()?, vec![2.0, 4.0, 6.0]);
//! # Ok(())
//! # }
//! ```
//!
//! Design (see `docs/DESIGN.md`): one closed [`op::Op`] enum and one backward `match`
//! so the compiler points at a missing gradient; each op saves only the state its
//! backward needs; gradients of intermediate values are freed as soon as they have
//! been propagated; after `backward` the saved state is released unless the graph is
//! kept explicitly.

pub mod engine;
pub mod error;
pub mod grad_mode;
pub mod gradients;
pub mod hooks;
pub mod op;
pub mod ops;
pub mod var;

pub use engine::BackwardOptions;
pub use error::{AutogradError, Result};
pub use grad_mode::{is_grad_enabled, no_grad, NoGradGuard};
pub use gradients::Gradients;
pub use hooks::HookHandle;
pub use ops::loss::Reduction;
pub use var::{Var, VarId};
