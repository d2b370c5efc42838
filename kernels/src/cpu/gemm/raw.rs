//! Pointer-based matrix views used inside the gemm driver.
//!
//! The public [`MatRef`](super::MatRef)/[`MatMut`](super::MatMut) own the bounds checks;
//! once a call is validated the driver works on sub-blocks through these `Copy` views so
//! that blocks of C can be handed to different threads. Their invariant: every element
//! `(i, j)` the driver addresses lies inside the slice the public view was built from
//! (for `RawMut`: distinct `(i, j)` are distinct elements, as `MatMut::new` checked).

use super::{MatMut, MatRef};

/// A read-only strided view: element `(i, j)` is `*ptr.add(i * rs + j * cs)`.
#[derive(Debug)]
pub(crate) struct RawRef<T> {
    pub ptr: *const T,
    pub rs: usize,
    pub cs: usize,
}

impl<T> Clone for RawRef<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RawRef<T> {}

// SAFETY: a RawRef is a shared borrow of `T` data in disguise (it is only created from
// a `MatRef` that outlives the gemm call), so sending it is as safe as sending `&[T]`.
unsafe impl<T: Sync> Send for RawRef<T> {}
// SAFETY: as above; it is only ever read through.
unsafe impl<T: Sync> Sync for RawRef<T> {}

impl<T> RawRef<T> {
    /// The view of a validated `MatRef`.
    pub fn from_mat(m: &MatRef<'_, T>) -> Self {
        Self {
            ptr: m.data().as_ptr(),
            rs: m.row_stride(),
            cs: m.col_stride(),
        }
    }

    /// The sub-view starting at `(i, j)` (the caller keeps `(i, j)` in range).
    #[inline]
    pub fn at(self, i: usize, j: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(i * self.rs + j * self.cs),
            ..self
        }
    }

    /// The transposed view.
    #[inline]
    pub fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// A mutable strided view with the same addressing as [`RawRef`].
#[derive(Debug)]
pub(crate) struct RawMut<T> {
    pub ptr: *mut T,
    pub rs: usize,
    pub cs: usize,
}

impl<T> Clone for RawMut<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RawMut<T> {}

// SAFETY: a RawMut stands for an exclusive borrow of C held by the gemm call; the
// driver gives each thread a disjoint block of it, so no element is shared.
unsafe impl<T: Send> Send for RawMut<T> {}
// SAFETY: as above (threads get disjoint blocks).
unsafe impl<T: Send> Sync for RawMut<T> {}

impl<T> RawMut<T> {
    /// The view of a validated `MatMut`.
    pub fn from_mat(m: &mut MatMut<'_, T>) -> Self {
        let (rs, cs) = (m.row_stride(), m.col_stride());
        Self {
            ptr: m.data_mut().as_mut_ptr(),
            rs,
            cs,
        }
    }

    /// The sub-view starting at `(i, j)` (the caller keeps `(i, j)` in range).
    #[inline]
    pub fn at(self, i: usize, j: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_add(i * self.rs + j * self.cs),
            ..self
        }
    }

    /// The transposed view.
    #[inline]
    pub fn t(self) -> Self {
        Self {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }
}
