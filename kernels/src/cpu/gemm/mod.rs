//! General matrix multiply: `C = alpha * A * B + beta * C` for f32 (`sgemm`) and f64
//! (`dgemm`) over strided matrix views.
//!
//! Operands are described by [`MatRef`] / [`MatMut`]: a slice plus rows, columns, a row
//! stride and a column stride (in elements). Row-major, column-major and transposed
//! operands are all just strides, so a transposed or sliced tensor needs no copy.
//!
//! Following BLAS, when `beta == 0` the previous contents of C are not read (NaN or
//! garbage in C does not leak into the result), and when `alpha == 0` (or `k == 0`)
//! A and B are not read: C becomes `beta * C`.
//!
//! # How it is fast
//!
//! The implementation follows GotoBLAS/BLIS (see `driver.rs` for the loop nest):
//!
//! - **Packing** (`pack.rs`): blocks of A and B are copied into contiguous, aligned,
//!   zero-padded slivers in the order the inner kernel reads them. Packing reads any
//!   strides, which is why transposed and strided operands cost the same as dense ones
//!   (the transposing case, a row-major A, uses AVX-512 gathers when available).
//! - **Direct operands for small problems**: when a sliver would be reused only a few
//!   times (n <= 128 for A, m <= 64 for B with contiguous rows) the kernel reads the
//!   operand in place and only a trailing partial sliver is packed, so products such as
//!   the 32 x 784 @ 784 x 128 layer of a small MLP skip most of the copying.
//! - **Cache blocking**: a `KC x NR` sliver of B stays in L1 while `MC x KC` of A sits in
//!   L2; the sizes are set per micro-kernel.
//! - **Micro-kernels** (`kernel.rs`, `x86.rs`): an `MR x NR` tile of C held in
//!   registers; AVX-512 (12 x 32 for f32, 12 x 16 for f64), AVX2+FMA (6 x 16, 6 x 8) and a
//!   portable kernel that compiles everywhere. The kernel is picked from the
//!   [`SimdLevel`] at each call.
//! - **Threads** (rayon's current pool, so a caller's `ThreadPool::install` bounds the
//!   parallelism): with enough rows, the threads pack each block of B together and
//!   share it while each packs and multiplies its own blocks of A rows; a short, wide C
//!   is split by columns; a long reduction into a small C is split along k. Problems
//!   under about 2M multiply-adds per thread run on the calling thread with no rayon
//!   overhead, and packing buffers are thread-local and reused (each thread keeps up to
//!   a few MiB), so steady-state calls do not allocate.
//!
//! For a given thread count every element of C is computed by the same sequence of
//! floating-point operations on every run, so results are reproducible.

mod batched;
mod driver;
mod element;
mod kernel;
mod pack;
mod raw;
pub mod reference;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use batched::{dgemm_batched, dgemm_batched_at, sgemm_batched, sgemm_batched_at};

use crate::cpu::dispatch::{self, SimdLevel};
use crate::error::{KernelError, Result};
use element::Element;

/// Element types gemm is implemented for (f32 and f64).
pub trait GemmScalar:
    Copy
    + Send
    + Sync
    + PartialEq
    + std::fmt::Debug
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
}

impl GemmScalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl GemmScalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// Number of elements a strided `rows x cols` matrix spans (0 for an empty matrix).
fn span(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)?
        .checked_add(1)
}

/// A read-only strided matrix view: element `(i, j)` is `data[i * row_stride + j * col_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A view with explicit strides; errors if the slice is too short for them.
    pub fn new(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        let needed = span(rows, cols, row_stride, col_stride).ok_or_else(|| {
            KernelError::InvalidArgument {
                op: "MatRef::new",
                detail: format!(
                    "{rows}x{cols} matrix with strides ({row_stride}, {col_stride}) overflows usize"
                ),
            }
        })?;
        if data.len() < needed {
            return Err(KernelError::SliceTooShort {
                op: "MatRef::new",
                what: "matrix",
                needed,
                got: data.len(),
            });
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A dense row-major `rows x cols` view (`row_stride = cols`, `col_stride = 1`).
    ///
    /// ```
    /// use kernels::cpu::gemm::MatRef;
    /// let a = MatRef::row_major(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3).unwrap();
    /// assert_eq!((a.rows(), a.cols()), (2, 3));
    /// assert_eq!(a.get(1, 0), 4.0);
    /// ```
    pub fn row_major(data: &'a [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transposed view (swaps rows/cols and the two strides; no copy).
    pub fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// The underlying slice.
    pub fn data(&self) -> &'a [T] {
        self.data
    }

    /// Element `(i, j)`. Panics if out of range (an internal-use accessor: kernels index
    /// only within `rows x cols`, which `new` validated).
    pub fn get(&self, i: usize, j: usize) -> T
    where
        T: Copy,
    {
        assert!(
            i < self.rows && j < self.cols,
            "MatRef::get({i}, {j}) out of {}x{}",
            self.rows,
            self.cols
        );
        self.data[i * self.row_stride + j * self.col_stride]
    }
}

/// A mutable strided matrix view, the output of gemm. Its elements must not alias each
/// other: [`MatMut::new`] rejects strides under which two `(i, j)` share a slot.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A mutable view with explicit strides; errors if the slice is too short or if the
    /// strides make distinct elements overlap.
    pub fn new(
        data: &'a mut [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Result<Self> {
        let needed = span(rows, cols, row_stride, col_stride).ok_or_else(|| {
            KernelError::InvalidArgument {
                op: "MatMut::new",
                detail: format!(
                    "{rows}x{cols} matrix with strides ({row_stride}, {col_stride}) overflows usize"
                ),
            }
        })?;
        if data.len() < needed {
            return Err(KernelError::SliceTooShort {
                op: "MatMut::new",
                what: "output matrix",
                needed,
                got: data.len(),
            });
        }
        // Non-overlap: the faster-moving index must not reach into the next step of the
        // slower one. Empty matrices and degenerate (size-1) dimensions never overlap.
        let overlaps = if rows == 0 || cols == 0 {
            false
        } else if rows <= 1 || cols <= 1 {
            (rows > 1 && row_stride == 0) || (cols > 1 && col_stride == 0)
        } else if col_stride <= row_stride {
            col_stride == 0 || (cols - 1) * col_stride >= row_stride
        } else {
            row_stride == 0 || (rows - 1) * row_stride >= col_stride
        };
        if overlaps {
            return Err(KernelError::InvalidArgument {
                op: "MatMut::new",
                detail: format!(
                    "{rows}x{cols} output with strides ({row_stride}, {col_stride}) has overlapping elements"
                ),
            });
        }
        Ok(Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        })
    }

    /// A dense row-major `rows x cols` mutable view.
    pub fn row_major(data: &'a mut [T], rows: usize, cols: usize) -> Result<Self> {
        Self::new(data, rows, cols, cols, 1)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Distance in elements between `(i, j)` and `(i + 1, j)`.
    pub fn row_stride(&self) -> usize {
        self.row_stride
    }

    /// Distance in elements between `(i, j)` and `(i, j + 1)`.
    pub fn col_stride(&self) -> usize {
        self.col_stride
    }

    /// The underlying slice, mutably.
    pub fn data_mut(&mut self) -> &mut [T] {
        self.data
    }

    /// Reborrows as a shorter-lived mutable view.
    pub fn rb_mut(&mut self) -> MatMut<'_, T> {
        MatMut {
            data: self.data,
            rows: self.rows,
            cols: self.cols,
            row_stride: self.row_stride,
            col_stride: self.col_stride,
        }
    }
}

/// Checks that `A (m x k) * B (k x n)` fits `C (m x n)`.
pub(crate) fn check_dims<T>(
    op: &'static str,
    a: &MatRef<T>,
    b: &MatRef<T>,
    c: &MatMut<T>,
) -> Result<()> {
    if a.cols != b.rows || a.rows != c.rows || b.cols != c.cols {
        return Err(KernelError::SizeMismatch {
            op,
            detail: format!(
                "A is {}x{}, B is {}x{}, C is {}x{}: need A m x k, B k x n, C m x n",
                a.rows, a.cols, b.rows, b.cols, c.rows, c.cols
            ),
        });
    }
    Ok(())
}

/// `C = alpha * A * B + beta * C` in f32 at the default SIMD level ([`dispatch::active`]).
///
/// ```
/// use kernels::cpu::gemm::{sgemm, MatMut, MatRef};
/// let a = [1.0f32, 2.0, 3.0, 4.0]; // [[1, 2], [3, 4]]
/// let b = [5.0f32, 6.0, 7.0, 8.0]; // [[5, 6], [7, 8]]
/// let mut c = [0.0f32; 4];
/// sgemm(
///     1.0,
///     MatRef::row_major(&a, 2, 2).unwrap(),
///     MatRef::row_major(&b, 2, 2).unwrap(),
///     0.0,
///     MatMut::row_major(&mut c, 2, 2).unwrap(),
/// )
/// .unwrap();
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// ```
pub fn sgemm(alpha: f32, a: MatRef<f32>, b: MatRef<f32>, beta: f32, c: MatMut<f32>) -> Result<()> {
    sgemm_at(dispatch::active(), alpha, a, b, beta, c)
}

/// [`sgemm`] at an explicit SIMD level (clamped to what the CPU supports).
///
/// Tests call this for every level in [`SimdLevel::available`]; benches use it to compare
/// the micro-kernels.
///
/// ```
/// use kernels::cpu::gemm::{sgemm_at, MatMut, MatRef};
/// use kernels::cpu::SimdLevel;
/// // C = A^T * B with A stored row-major as 2x3: the transpose is just swapped strides.
/// let a = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let b = [1.0f32, 1.0];
/// let mut c = [f32::NAN; 3];
/// let a_t = MatRef::row_major(&a, 2, 3).unwrap().t(); // 3x2
/// let b = MatRef::row_major(&b, 2, 1).unwrap();
/// let c_view = MatMut::row_major(&mut c, 3, 1).unwrap();
/// sgemm_at(SimdLevel::Portable, 1.0, a_t, b, 0.0, c_view).unwrap();
/// assert_eq!(c, [5.0, 7.0, 9.0]);
/// ```
pub fn sgemm_at(
    level: SimdLevel,
    alpha: f32,
    a: MatRef<f32>,
    b: MatRef<f32>,
    beta: f32,
    c: MatMut<f32>,
) -> Result<()> {
    check_dims("sgemm", &a, &b, &c)?;
    driver::gemm(level, alpha, a, b, beta, c, rayon::current_num_threads());
    Ok(())
}

/// `C = alpha * A * B + beta * C` in f64 at the default SIMD level (same rules as
/// [`sgemm`]; f64 exists so gradients can be checked tightly).
///
/// ```
/// use kernels::cpu::gemm::{dgemm, MatMut, MatRef};
/// let a = [1.0f64, 2.0, 3.0, 4.0];
/// let mut c = [1.0f64; 4];
/// let a = MatRef::row_major(&a, 2, 2).unwrap();
/// dgemm(2.0, a, a, -1.0, MatMut::row_major(&mut c, 2, 2).unwrap()).unwrap();
/// assert_eq!(c, [13.0, 19.0, 29.0, 43.0]); // 2 * A * A - 1
/// ```
pub fn dgemm(alpha: f64, a: MatRef<f64>, b: MatRef<f64>, beta: f64, c: MatMut<f64>) -> Result<()> {
    dgemm_at(dispatch::active(), alpha, a, b, beta, c)
}

/// [`dgemm`] at an explicit SIMD level (clamped to what the CPU supports).
pub fn dgemm_at(
    level: SimdLevel,
    alpha: f64,
    a: MatRef<f64>,
    b: MatRef<f64>,
    beta: f64,
    c: MatMut<f64>,
) -> Result<()> {
    check_dims("dgemm", &a, &b, &c)?;
    driver::gemm(level, alpha, a, b, beta, c, rayon::current_num_threads());
    Ok(())
}
