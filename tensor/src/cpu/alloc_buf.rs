//! Fallible allocation of host buffers: every tensor's storage and every large working
//! buffer of an op comes from here.
//!
//! A buffer is asked for by the op that needs it and the shape of the tensor it is
//! for. Its size in bytes is checked first (the product of the dims times the element
//! size must fit in a `usize` and not exceed `isize::MAX`, the most a Rust allocation
//! may hold); then an output buffer is taken from the [pool](crate::pool) when one of
//! the same dtype and length is free, and otherwise allocated with `try_reserve_exact`
//! or `alloc_zeroed`. A refusal from the system, or a size that does not fit, is a
//! [`TensorError::AllocationFailed`] naming the op, the shape, the dtype and the bytes,
//! instead of the abort of `vec!` or `Vec::with_capacity`.
//!
//! Output buffers (which become a tensor's storage, and so go back to the pool when
//! it is dropped) come from [`buffer`], [`filled`] and [`with_capacity`]. Working
//! buffers, dropped inside the op, come from [`zeros`] and [`scratch`], which never
//! take from the pool: a pooled buffer freed as a plain `Vec` would leave the pool.

use crate::dtype::{DType, Element};
use crate::error::{Result, TensorError};
use crate::pool;
use crate::shape::Shape;

/// The error for a buffer of `bytes` (`None`: more than `usize` holds) of `dtype`
/// elements for a tensor of `shape`.
#[cold]
fn failed(op: &'static str, shape: &Shape, dtype: DType, bytes: Option<usize>) -> TensorError {
    TensorError::AllocationFailed {
        op,
        shape: shape.clone(),
        dtype,
        bytes,
    }
}

/// `len` elements of `size` bytes, if that many bytes may be allocated at all.
#[inline]
fn byte_len(len: usize, size: usize) -> Option<usize> {
    len.checked_mul(size).filter(|&b| b <= isize::MAX as usize)
}

/// The element count of a `T` buffer for `shape`, or the error if its size in bytes
/// overflows `usize` or exceeds `isize::MAX`.
#[inline]
pub(crate) fn elem_count<T: Element>(op: &'static str, shape: &Shape) -> Result<usize> {
    checked_len(op, shape, T::DTYPE, std::mem::size_of::<T>())
}

/// The element count of `shape` for elements of `size` bytes reported as `dtype`, or
/// the error if the buffer's size in bytes does not fit.
#[inline]
pub(crate) fn checked_len(
    op: &'static str,
    shape: &Shape,
    dtype: DType,
    size: usize,
) -> Result<usize> {
    let Some(n) = shape.checked_elem_count() else {
        return Err(failed(op, shape, dtype, None));
    };
    match n.checked_mul(size) {
        Some(b) if b <= isize::MAX as usize => Ok(n),
        bytes => Err(failed(op, shape, dtype, bytes)),
    }
}

/// An empty vector with room for exactly `len` elements of `W`, freshly allocated;
/// a refusal is reported for a `dtype` tensor of `shape`.
#[inline]
fn reserve<W>(op: &'static str, shape: &Shape, dtype: DType, len: usize) -> Result<Vec<W>> {
    let size = std::mem::size_of::<W>();
    let Some(bytes) = byte_len(len, size) else {
        return Err(failed(op, shape, dtype, len.checked_mul(size)));
    };
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| failed(op, shape, dtype, Some(bytes)))?;
    Ok(v)
}

/// `len` zeros, freshly allocated with `alloc_zeroed`: the pages of a large buffer come
/// zeroed from the system and are not written here.
#[inline]
fn fresh_zeros<T: Element>(op: &'static str, shape: &Shape, len: usize) -> Result<Vec<T>> {
    let layout = std::alloc::Layout::array::<T>(len).map_err(|_| {
        failed(
            op,
            shape,
            T::DTYPE,
            len.checked_mul(std::mem::size_of::<T>()),
        )
    })?;
    if layout.size() == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return Err(failed(op, shape, T::DTYPE, Some(layout.size())));
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `[T; len]` (the
    // alignment of `T` and `len * size_of::<T>()` bytes), which is the allocation of a
    // `Vec<T>` of capacity `len`. All `len` elements are initialised: `Element` is
    // sealed to `f32`, `f64` and `u32`, for which all-zero bytes are the value zero.
    Ok(unsafe { Vec::from_raw_parts(ptr, len, len) })
}

/// A buffer of `shape`'s element count whose values are unspecified: a free pool
/// buffer (holding the values of the tensor it came from) or, if none, fresh zeros.
/// For outputs that the caller overwrites completely.
#[inline]
pub(crate) fn buffer<T: Element>(op: &'static str, shape: &Shape) -> Result<Vec<T>> {
    let len = elem_count::<T>(op, shape)?;
    match pool::take(len) {
        Some(v) => Ok(v),
        None => fresh_zeros(op, shape, len),
    }
}

/// `value` in every element of a buffer of `shape`'s element count, in a free pool
/// buffer when there is one. Fresh zeros come from `alloc_zeroed`, unwritten.
#[inline]
pub(crate) fn filled<T: Element>(op: &'static str, shape: &Shape, value: T) -> Result<Vec<T>> {
    let len = elem_count::<T>(op, shape)?;
    if let Some(mut v) = pool::take(len) {
        v.fill(value);
        return Ok(v);
    }
    // +0 (the only value whose bytes are all zero; -0.0 is not).
    if value.to_f64().to_bits() == 0 {
        return fresh_zeros(op, shape, len);
    }
    let mut v = reserve(op, shape, T::DTYPE, len)?;
    v.resize(len, value);
    Ok(v)
}

/// An empty vector with room for `shape`'s element count, in a free pool buffer when
/// there is one: for outputs built with `push`/`extend`, which then never reallocate.
#[inline]
pub(crate) fn with_capacity<T: Element>(op: &'static str, shape: &Shape) -> Result<Vec<T>> {
    let len = elem_count::<T>(op, shape)?;
    match pool::take(len) {
        Some(mut v) => {
            v.clear();
            Ok(v)
        }
        None => reserve(op, shape, T::DTYPE, len),
    }
}

/// Fresh zeros for `shape` (never from the pool): accumulators and other working
/// buffers that must start at zero.
#[inline]
pub(crate) fn zeros<T: Element>(op: &'static str, shape: &Shape) -> Result<Vec<T>> {
    let len = elem_count::<T>(op, shape)?;
    fresh_zeros(op, shape, len)
}

/// An empty, freshly allocated vector with room for `len` values of any type `W`: a
/// working buffer of an op on a `dtype` tensor of `shape`, which a failure names (with
/// the bytes of this buffer).
#[inline]
pub(crate) fn scratch<W>(
    op: &'static str,
    shape: &Shape,
    dtype: DType,
    len: usize,
) -> Result<Vec<W>> {
    reserve(op, shape, dtype, len)
}

/// A fresh copy of `data` for a tensor of `shape`, in a free pool buffer when there is
/// one.
#[inline]
pub(crate) fn copy_of<T: Element>(op: &'static str, shape: &Shape, data: &[T]) -> Result<Vec<T>> {
    let mut v = with_capacity(op, shape)?;
    v.extend_from_slice(data);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2^62 bytes of f32: a real request (below `isize::MAX`) that no machine can map.
    fn unmappable() -> Shape {
        Shape::from([1 << 30, 1 << 30])
    }

    #[test]
    fn every_kind_of_buffer_reports_a_refused_allocation() {
        let shape = unmappable();
        let want = TensorError::AllocationFailed {
            op: "test",
            shape: shape.clone(),
            dtype: DType::F32,
            bytes: Some(1 << 62),
        };
        assert_eq!(buffer::<f32>("test", &shape).unwrap_err(), want);
        assert_eq!(filled::<f32>("test", &shape, 0.0).unwrap_err(), want);
        assert_eq!(filled::<f32>("test", &shape, 2.0).unwrap_err(), want);
        assert_eq!(with_capacity::<f32>("test", &shape).unwrap_err(), want);
        assert_eq!(zeros::<f32>("test", &shape).unwrap_err(), want);
        assert_eq!(
            scratch::<f32>("test", &shape, DType::F32, 1 << 60).unwrap_err(),
            want
        );
    }

    #[test]
    fn sizes_beyond_isize_or_usize_are_refused_before_allocating() {
        // 2^63 bytes: fits a `usize`, exceeds `isize::MAX`.
        let over_isize = Shape::from([1 << 61]);
        assert_eq!(
            buffer::<f32>("test", &over_isize).unwrap_err(),
            TensorError::AllocationFailed {
                op: "test",
                shape: over_isize.clone(),
                dtype: DType::F32,
                bytes: Some(1 << 63),
            }
        );
        let over_usize = Shape::from([usize::MAX, 2]);
        let err = zeros::<u32>("test", &over_usize).unwrap_err();
        assert!(matches!(
            err,
            TensorError::AllocationFailed { bytes: None, .. }
        ));
        assert!(matches!(
            scratch::<(f64, f64)>("test", &over_usize, DType::F64, usize::MAX / 8).unwrap_err(),
            TensorError::AllocationFailed { bytes: None, .. }
        ));
    }

    #[test]
    fn small_buffers_have_the_asked_length_and_values() {
        let shape = Shape::from([3, 2]);
        assert_eq!(zeros::<u32>("test", &shape).unwrap(), vec![0; 6]);
        assert_eq!(filled("test", &shape, -0.0f32).unwrap(), vec![-0.0; 6]);
        assert!(filled("test", &shape, -0.0f32).unwrap()[0].is_sign_negative());
        assert_eq!(filled("test", &shape, 1.5f64).unwrap(), vec![1.5; 6]);
        assert_eq!(buffer::<f64>("test", &shape).unwrap().len(), 6);
        let v = with_capacity::<f32>("test", &shape).unwrap();
        assert!(v.is_empty() && v.capacity() >= 6);
        assert_eq!(
            copy_of("test", &shape, &[1u32, 2, 3, 4, 5, 6]).unwrap(),
            [1, 2, 3, 4, 5, 6]
        );
        assert!(zeros::<f32>("test", &Shape::from([0, 5]))
            .unwrap()
            .is_empty());
    }
}
