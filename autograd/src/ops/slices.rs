//! Reading tensors as slices for the fused kernels of the kernels crate.
//!
//! The tensor crate hands out the storage of a contiguous tensor inside a closure;
//! these helpers make dense copies only where needed and flatten the nested results.

use tensor::{Element, Tensor};

use crate::error::Result;

/// Runs `f` on the dense contents of `a` (copied only if not contiguous).
pub(crate) fn read1<T: Element, R>(a: &Tensor, f: impl FnOnce(&[T]) -> Result<R>) -> Result<R> {
    let a = a.contiguous()?;
    a.with_slice::<T, _>(f)?
}

/// Runs `f` on the dense contents of `a` and `b`.
pub(crate) fn read2<T: Element, R>(
    a: &Tensor,
    b: &Tensor,
    f: impl FnOnce(&[T], &[T]) -> Result<R>,
) -> Result<R> {
    read1::<T, R>(a, |a| read1::<T, R>(b, |b| f(a, b)))
}

/// Runs `f` on the dense contents of `a`, `b` and optionally `c`.
pub(crate) fn read3<T: Element, R>(
    a: &Tensor,
    b: &Tensor,
    c: Option<&Tensor>,
    f: impl FnOnce(&[T], &[T], Option<&[T]>) -> Result<R>,
) -> Result<R> {
    match c {
        Some(c) => read2::<T, R>(a, b, |a, b| read1::<T, R>(c, |c| f(a, b, Some(c)))),
        None => read2::<T, R>(a, b, |a, b| f(a, b, None)),
    }
}
