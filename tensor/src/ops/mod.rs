//! Tensor ops, one concept per module. Each op validates its arguments (returning a
//! [`TensorError`](crate::TensorError) that names it), matches once on device and
//! dtype, and runs a generic loop from the crate-private `cpu` module.

pub mod binary;
pub mod index;
pub mod inplace;
pub mod join;
pub mod matmul;
pub mod reduce;
pub mod softmax;
pub mod unary;
pub mod view;

use crate::error::Result;
use crate::Tensor;

/// A dense, non-contiguous memory order shared by the operands of an elementwise op
/// (e.g. a transposed matrix, or an image batch of logical shape `[N, C, H, W]` stored as
/// `[C, H, W, N]`). The op runs on the operands permuted to contiguous views, as one
/// slice loop (through the SIMD kernels where the op has one), and the result is
/// permuted back, so it keeps the operands' strides instead of becoming a row-major
/// copy. Every element is computed exactly as on contiguous operands.
pub(crate) struct DenseOrder {
    /// The permutation making every operand contiguous.
    perm: Vec<usize>,
    /// Its inverse, which turns a result computed in the permuted order back.
    inverse: Vec<usize>,
}

impl DenseOrder {
    /// The order for an elementwise op on `lead` and `others`, or `None` (the op then
    /// runs on the layouts as they are): all on the CPU with the same dims (no
    /// broadcasting), `lead` dense but not contiguous, and every operand contiguous
    /// once permuted by `lead`'s [`dense_permutation`](Tensor::dense_permutation).
    ///
    /// The CUDA kernels take any strides and return row-major results; they are left
    /// as they are.
    pub(crate) fn shared(lead: &Tensor, others: &[&Tensor]) -> Option<DenseOrder> {
        if !lead.device.is_cpu() || lead.is_contiguous() {
            return None;
        }
        if others
            .iter()
            .any(|t| !t.device.is_cpu() || t.dims() != lead.dims())
        {
            return None;
        }
        let perm = lead.dense_permutation()?;
        // Checked for `lead` too: an op re-entered on the permuted operands must see
        // contiguous ones and take its plain path.
        let all_contiguous = std::iter::once(lead)
            .chain(others.iter().copied())
            .all(|t| t.layout.permute(&perm).is_ok_and(|l| l.is_contiguous()));
        if !all_contiguous {
            return None;
        }
        let mut inverse = vec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Some(DenseOrder { perm, inverse })
    }

    /// `t` permuted to the contiguous order.
    pub(crate) fn apply(&self, t: &Tensor) -> Result<Tensor> {
        t.permute(&self.perm)
    }

    /// A result computed on the permuted operands, viewed in the operands' dim order.
    pub(crate) fn restore(&self, t: Tensor) -> Result<Tensor> {
        t.permute(&self.inverse)
    }
}
