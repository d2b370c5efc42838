//! A global allocator that starts every large allocation on a cache line.
//!
//! `Vec<f32>` only asks for 4-byte alignment, and glibc returns large blocks 16 bytes
//! past a page boundary, so a tensor's 64-byte SIMD loads and stores straddle two cache
//! lines: every vector touches two lines and, in the convolution's transposes, the line
//! shared with the next vector is often fetched twice. PyTorch's CPU allocator aligns
//! every tensor to 64 bytes for the same reason.
//!
//! A library cannot choose the allocator of the program that embeds it, so this is
//! opt-in: a binary declares
//!
//! ```
//! #[global_allocator]
//! static ALLOC: tensor::alloc::CacheAligned = tensor::alloc::CacheAligned;
//! # fn main() {
//! let v: Vec<f32> = vec![0.0; 4096];
//! assert_eq!(v.as_ptr() as usize % 64, 0);
//! # }
//! ```
//!
//! Allocations of at least [`CacheAligned::MIN_SIZE`] bytes get an alignment of at
//! least [`CacheAligned::ALIGN`]; smaller ones are passed to the system allocator as they
//! are, so small objects cost nothing extra.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator with large allocations aligned to a cache line (see the
/// [module docs](self)).
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheAligned;

impl CacheAligned {
    /// The alignment, in bytes, of large allocations: one cache line on x86-64 and
    /// most ARM cores, and the width of an AVX-512 vector.
    pub const ALIGN: usize = 64;
    /// The size, in bytes, from which allocations are aligned.
    pub const MIN_SIZE: usize = 4096;

    /// The layout actually requested from the system for `layout`. `alloc`, `dealloc`
    /// and `realloc` all go through it, so a block is always freed with the layout it
    /// was allocated with.
    fn system_layout(layout: Layout) -> Layout {
        if layout.size() >= Self::MIN_SIZE && layout.align() < Self::ALIGN {
            // A power of two no smaller than the current alignment always works.
            layout.align_to(Self::ALIGN).unwrap_or(layout)
        } else {
            layout
        }
    }
}

// SAFETY: every method forwards to `System` with `system_layout(layout)`, a layout of the
// same size and an alignment at least the requested one, and frees each block with the
// same adjusted layout it was allocated with (the adjustment depends only on the size and
// alignment of the caller's layout, which the caller passes back unchanged).
unsafe impl GlobalAlloc for CacheAligned {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract (non-zero size) holds for the adjusted layout.
        unsafe { System.alloc(Self::system_layout(layout)) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(Self::system_layout(layout)) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout, hence from `System` with the
        // adjusted one.
        unsafe { System.dealloc(ptr, Self::system_layout(layout)) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = Self::system_layout(layout);
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, does not
        // overflow `isize`, which is what `Layout` requires.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let new = Self::system_layout(new_layout);
        if old.align() == new.align() {
            // SAFETY: `ptr` was allocated by `System` with `old`; the alignment stays.
            return unsafe { System.realloc(ptr, old, new_size) };
        }
        // The block crosses `MIN_SIZE` and changes alignment: move it by hand.
        // SAFETY: `new` has the caller's `new_size`, which `realloc` requires to be
        // non-zero.
        let moved = unsafe { System.alloc(new) };
        if !moved.is_null() {
            // SAFETY: both blocks are valid for the smaller of the two sizes and distinct.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                System.dealloc(ptr, old);
            }
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_large_allocations_with_small_alignment_are_raised() {
        let small = Layout::from_size_align(100, 4).unwrap();
        assert_eq!(CacheAligned::system_layout(small), small);
        let large = Layout::from_size_align(8192, 4).unwrap();
        assert_eq!(CacheAligned::system_layout(large).align(), 64);
        assert_eq!(CacheAligned::system_layout(large).size(), 8192);
        let page = Layout::from_size_align(8192, 4096).unwrap();
        assert_eq!(CacheAligned::system_layout(page), page);
    }

    #[test]
    fn blocks_keep_their_contents_and_alignment_across_reallocations() {
        let a = CacheAligned;
        let layout = Layout::from_size_align(64, 4).unwrap();
        // SAFETY: non-zero sizes; every block is freed with the layout it has now.
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..64 {
                *p.add(i) = i as u8;
            }
            // Small to large: moved, aligned.
            let q = a.realloc(p, layout, 10_000);
            assert!(!q.is_null());
            assert_eq!(q as usize % 64, 0);
            assert!((0..64).all(|i| *q.add(i) == i as u8));
            // Large to larger: still aligned.
            let big = Layout::from_size_align(10_000, 4).unwrap();
            let r = a.realloc(q, big, 100_000);
            assert_eq!(r as usize % 64, 0);
            assert!((0..64).all(|i| *r.add(i) == i as u8));
            // Large to small: back to the system's alignment rules.
            let bigger = Layout::from_size_align(100_000, 4).unwrap();
            let s = a.realloc(r, bigger, 32);
            assert!((0..32).all(|i| *s.add(i) == i as u8));
            a.dealloc(s, Layout::from_size_align(32, 4).unwrap());
        }
    }
}
