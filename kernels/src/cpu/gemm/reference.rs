//! The plain triple-loop gemm that the fast paths are tested against.

use super::{GemmScalar, MatMut, MatRef};

/// `C = alpha * A * B + beta * C`, one dot product per element, accumulated in `T`.
/// Dimensions must already be checked. When `beta == 0`, C is overwritten without
/// being read.
pub fn gemm<T: GemmScalar>(alpha: T, a: MatRef<T>, b: MatRef<T>, beta: T, mut c: MatMut<T>) {
    let (m, n, k) = (a.rows(), b.cols(), a.cols());
    let (rs, cs) = (c.row_stride(), c.col_stride());
    let out = c.data_mut();
    for i in 0..m {
        for j in 0..n {
            let mut acc = T::ZERO;
            for p in 0..k {
                acc = acc + a.get(i, p) * b.get(p, j);
            }
            let slot = &mut out[i * rs + j * cs];
            *slot = if beta == T::ZERO {
                alpha * acc
            } else {
                alpha * acc + beta * *slot
            };
        }
    }
}
