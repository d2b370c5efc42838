//! Batched gemm: many independent products in one call, parallel across the batch when
//! each product is too small to be worth splitting itself.

use rayon::prelude::*;

use super::driver::{self, MIN_WORK_PER_THREAD};
use super::element::Element;
use super::{check_dims, MatMut, MatRef};
use crate::cpu::dispatch::{self, SimdLevel};
use crate::error::{KernelError, Result};

/// `C[i] = alpha * A[i] * B[i] + beta * C[i]` in f32 for every `i`, at the default SIMD
/// level. See [`sgemm_batched_at`].
///
/// ```
/// use kernels::cpu::gemm::{sgemm_batched, MatMut, MatRef};
/// // Two 2x2 products; the outputs are consecutive 2x2 blocks of one buffer.
/// let a = [1.0f32, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0, 2.0]; // I, 2I
/// let b = [1.0f32, 2.0, 3.0, 4.0];
/// let mut out = [0.0f32; 8];
/// let (c0, c1) = out.split_at_mut(4);
/// let a_views = [
///     MatRef::row_major(&a[..4], 2, 2).unwrap(),
///     MatRef::row_major(&a[4..], 2, 2).unwrap(),
/// ];
/// let b_view = MatRef::row_major(&b, 2, 2).unwrap();
/// let mut c_views = [
///     MatMut::row_major(c0, 2, 2).unwrap(),
///     MatMut::row_major(c1, 2, 2).unwrap(),
/// ];
/// sgemm_batched(1.0, &a_views, &[b_view, b_view], 0.0, &mut c_views).unwrap();
/// assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 2.0, 4.0, 6.0, 8.0]);
/// ```
pub fn sgemm_batched(
    alpha: f32,
    a: &[MatRef<'_, f32>],
    b: &[MatRef<'_, f32>],
    beta: f32,
    c: &mut [MatMut<'_, f32>],
) -> Result<()> {
    batched("sgemm_batched", dispatch::active(), alpha, a, b, beta, c)
}

/// [`sgemm_batched`] at an explicit SIMD level (clamped to what the CPU supports).
///
/// The three slices must have the same length and each triple must satisfy the shape
/// rules of [`sgemm`](super::sgemm). When the products are small, whole products are
/// dealt out to rayon's threads (each one computed on a single thread); large products
/// run one after another, each split across threads. Either way the result of each
/// product is the same as a separate [`sgemm_at`](super::sgemm_at) call with one thread.
pub fn sgemm_batched_at(
    level: SimdLevel,
    alpha: f32,
    a: &[MatRef<'_, f32>],
    b: &[MatRef<'_, f32>],
    beta: f32,
    c: &mut [MatMut<'_, f32>],
) -> Result<()> {
    batched("sgemm_batched", level, alpha, a, b, beta, c)
}

/// `C[i] = alpha * A[i] * B[i] + beta * C[i]` in f64 for every `i`, at the default SIMD
/// level. See [`sgemm_batched_at`] for the rules.
pub fn dgemm_batched(
    alpha: f64,
    a: &[MatRef<'_, f64>],
    b: &[MatRef<'_, f64>],
    beta: f64,
    c: &mut [MatMut<'_, f64>],
) -> Result<()> {
    batched("dgemm_batched", dispatch::active(), alpha, a, b, beta, c)
}

/// [`dgemm_batched`] at an explicit SIMD level (clamped to what the CPU supports).
pub fn dgemm_batched_at(
    level: SimdLevel,
    alpha: f64,
    a: &[MatRef<'_, f64>],
    b: &[MatRef<'_, f64>],
    beta: f64,
    c: &mut [MatMut<'_, f64>],
) -> Result<()> {
    batched("dgemm_batched", level, alpha, a, b, beta, c)
}

/// Validates the whole batch first (so nothing is written on error), then runs it.
fn batched<T: Element>(
    op: &'static str,
    level: SimdLevel,
    alpha: T,
    a: &[MatRef<'_, T>],
    b: &[MatRef<'_, T>],
    beta: T,
    c: &mut [MatMut<'_, T>],
) -> Result<()> {
    if a.len() != b.len() || a.len() != c.len() {
        return Err(KernelError::SizeMismatch {
            op,
            detail: format!(
                "batch lengths differ: {} A matrices, {} B matrices, {} C matrices",
                a.len(),
                b.len(),
                c.len()
            ),
        });
    }
    for (i, ((a, b), c)) in a.iter().zip(b).zip(c.iter()).enumerate() {
        check_dims(op, a, b, c).map_err(|e| match e {
            KernelError::SizeMismatch { op, detail } => KernelError::SizeMismatch {
                op,
                detail: format!("batch item {i}: {detail}"),
            },
            other => other,
        })?;
    }

    let threads = rayon::current_num_threads();
    let works: Vec<usize> = a
        .iter()
        .zip(b)
        .map(|(a, b)| a.rows().saturating_mul(a.cols()).saturating_mul(b.cols()))
        .collect();
    let total = works.iter().fold(0usize, |s, &w| s.saturating_add(w));
    let largest = works.iter().copied().max().unwrap_or(0);
    let across_batch = threads > 1
        && c.len() > 1
        && total >= 2 * MIN_WORK_PER_THREAD
        && largest < threads * MIN_WORK_PER_THREAD;
    if across_batch {
        // Enough products per rayon task to amortise the task itself.
        let per_task = (MIN_WORK_PER_THREAD / (total / c.len()).max(1)).max(1);
        c.par_iter_mut()
            .zip(a.par_iter().zip(b.par_iter()))
            .with_min_len(per_task)
            .for_each(|(c, (a, b))| driver::gemm(level, alpha, *a, *b, beta, c.rb_mut(), 1));
    } else {
        for ((a, b), c) in a.iter().zip(b).zip(c.iter_mut()) {
            driver::gemm(level, alpha, *a, *b, beta, c.rb_mut(), threads);
        }
    }
    Ok(())
}
