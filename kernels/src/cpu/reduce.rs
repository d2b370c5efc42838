//! Reductions over contiguous slices and over the rows or columns of a row-major
//! `rows x cols` block: sums, max/min/argmax, numerically stable softmax and
//! log-softmax with their backward passes, and fused cross-entropy.
//!
//! # Numerics
//!
//! - Sums ([`sum`], [`sum_sq`], [`sum_rows`], [`sum_cols`], the row sums inside
//!   softmax and its backward) accumulate in `f64`, for `f32` input too, with several
//!   independent accumulators; whole-slice sums return the `f64`. The order of the
//!   additions is fixed for a given level and length: the result does not depend on the
//!   number of threads.
//! - `max`, `min`, `argmax` and their row forms propagate NaN: a NaN anywhere makes
//!   the max NaN, and `argmax` returns the index of the first NaN (as PyTorch does).
//!   Otherwise `argmax` returns the first index of the maximum.
//! - Softmax subtracts the row maximum before `exp`, so large logits do not overflow.
//!   A row whose maximum is `-inf` (all `-inf`), `+inf` or NaN gives a NaN row, as in
//!   PyTorch. `f32` rows use the SIMD `exp` (within 1 ulp, see
//!   [`elementwise`](crate::cpu::elementwise)).
//!
//! Sizes are validated: a block's slice must hold exactly `rows * cols` elements, and
//! the error names the op, the argument and the sizes.
//!
//! ```
//! use kernels::cpu::reduce;
//! let logits = [1.0f32, 2.0, 3.0, 0.0, 0.0, 0.0];
//! let mut p = [0.0f32; 6];
//! reduce::softmax_rows(&logits, 2, 3, &mut p)?;
//! assert!((p[2] - 0.665_240_9).abs() < 1e-6);
//! assert_eq!(reduce::argmax(&logits)?, 2);
//! assert_eq!(reduce::sum(&logits), 6.0);
//! # Ok::<(), kernels::KernelError>(())
//! ```

use rayon::prelude::*;

use crate::cpu::dispatch::{self, SimdLevel};
use crate::cpu::simd::{self, map1, map2, sealed::Sealed, Map1, Map2, Simd, SyncPtr, WithSimd};
use crate::error::{KernelError, Result};

pub use crate::cpu::simd::Float;

/// Whole-slice reductions run on one thread below this many elements.
const PAR_MIN_ELEMS: usize = 1 << 17;
/// Elements per task (and per partial result) of a parallel whole-slice reduction.
/// Fixed, so the summation order does not depend on the thread count.
const PAR_CHUNK_ELEMS: usize = 1 << 16;

/// `acc + widen(v)` (or `acc + widen(v)^2`).
#[inline(always)]
fn sum_step<S: Simd>(s: S, acc: S::W, v: S::V, squares: bool) -> S::W {
    let w = s.w_widen(v);
    if squares {
        s.w_mul_add(w, w, acc)
    } else {
        s.w_add(acc, w)
    }
}

/// `sum_i x[i]` (or `x[i]^2`) in `f64`: four accumulators of `S::W`, then a padded
/// tail.
///
/// The helpers of these kernels are `#[inline(always)]` functions, not closures
/// called from several places: a closure the compiler declines to inline would be
/// compiled without the `#[target_feature]`s of the entry point, and every SIMD
/// operation in it would become a function call.
#[inline(always)]
fn sum_vec<S: Simd>(s: S, x: &[S::E], squares: bool) -> f64 {
    let l = S::LANES;
    let n = x.len();
    let p = x.as_ptr();
    let mut acc = [s.w_zero(); 4];
    let mut i = 0;
    // SAFETY: every load reads `l` elements at an offset `i` with `i + l <= n` (or a
    // tail of `n - i < l` elements), inside `x`.
    unsafe {
        while i + 4 * l <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = sum_step(s, *a, s.load(p.add(i + k * l)), squares);
            }
            i += 4 * l;
        }
        while i + l <= n {
            acc[0] = sum_step(s, acc[0], s.load(p.add(i)), squares);
            i += l;
        }
        if i < n {
            let v = s.load_tail(p.add(i), n - i, S::E::ZERO);
            acc[1] = sum_step(s, acc[1], v, squares);
        }
    }
    let total = s.w_add(s.w_add(acc[0], acc[1]), s.w_add(acc[2], acc[3]));
    s.w_sum(total)
}

/// `max_nan(a, b)` or `min_nan(a, b)`.
#[inline(always)]
fn pick<S: Simd>(s: S, a: S::V, b: S::V, want_max: bool) -> S::V {
    if want_max {
        s.max_nan(a, b)
    } else {
        s.min_nan(a, b)
    }
}

/// Max (or min) of `x`, NaN-propagating; `-inf` (`+inf`) for an empty slice.
#[inline(always)]
fn extreme_vec<S: Simd>(s: S, x: &[S::E], want_max: bool) -> S::E {
    let l = S::LANES;
    let n = x.len();
    let p = x.as_ptr();
    let pad = if want_max {
        S::E::NEG_INFINITY
    } else {
        S::E::INFINITY
    };
    let mut acc = [s.splat(pad); 4];
    let mut i = 0;
    // SAFETY: as in `sum_vec`, every access stays inside `x`.
    unsafe {
        while i + 4 * l <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = pick(s, *a, s.load(p.add(i + k * l)), want_max);
            }
            i += 4 * l;
        }
        while i + l <= n {
            acc[0] = pick(s, acc[0], s.load(p.add(i)), want_max);
            i += l;
        }
        if i < n {
            acc[1] = pick(s, acc[1], s.load_tail(p.add(i), n - i, pad), want_max);
        }
    }
    let v = pick(
        s,
        pick(s, acc[0], acc[1], want_max),
        pick(s, acc[2], acc[3], want_max),
        want_max,
    );
    if s.any(s.is_nan(v)) {
        S::E::NAN
    } else if want_max {
        s.reduce_max(v)
    } else {
        s.reduce_min(v)
    }
}

/// Index of the first element equal to `m` (or of the first NaN when `m` is NaN).
fn position_of<T: Float>(x: &[T], m: T) -> usize {
    let found = if Sealed::is_nan(m) {
        x.iter().position(|v| Sealed::is_nan(*v))
    } else {
        x.iter().position(|v| *v == m)
    };
    // `m` was computed from `x`, so it is always found; 0 is a harmless fallback.
    found.unwrap_or(0)
}

/// A whole-slice reduction.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Whole {
    Sum,
    SumSq,
    Max,
    Min,
}

struct WholeKernel<'a, T> {
    kind: Whole,
    x: &'a [T],
}

impl<T: Float> WithSimd<T> for WholeKernel<'_, T> {
    type Output = f64;
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) -> f64 {
        match self.kind {
            Whole::Sum => sum_vec(s, self.x, false),
            Whole::SumSq => sum_vec(s, self.x, true),
            Whole::Max => extreme_vec(s, self.x, true).to_f64(),
            Whole::Min => extreme_vec(s, self.x, false).to_f64(),
        }
    }
}

/// Runs a whole-slice reduction, in fixed-size parallel chunks for large slices.
fn whole<T: Float>(level: SimdLevel, kind: Whole, x: &[T]) -> f64 {
    if x.len() < PAR_MIN_ELEMS {
        return simd::dispatch(level, WholeKernel { kind, x });
    }
    let parts: Vec<f64> = x
        .par_chunks(PAR_CHUNK_ELEMS)
        .map(|c| simd::dispatch(level, WholeKernel { kind, x: c }))
        .collect();
    match kind {
        Whole::Sum | Whole::SumSq => parts.iter().sum(),
        Whole::Max | Whole::Min => {
            let mut acc = parts[0];
            for &p in &parts[1..] {
                if acc.is_nan() || p.is_nan() {
                    return f64::NAN;
                }
                acc = if kind == Whole::Max {
                    acc.max(p)
                } else {
                    acc.min(p)
                };
            }
            acc
        }
    }
}

/// `sum_i x[i]`, accumulated in `f64`, at the active SIMD level. See [`sum_at`].
pub fn sum<T: Float>(x: &[T]) -> f64 {
    sum_at(dispatch::active(), x)
}

/// `sum_i x[i]`, accumulated in `f64` (also for `f32` input) at an explicit level;
/// `0.0` for an empty slice. Returned as `f64` so partial sums over several runs can
/// be combined without an extra rounding.
pub fn sum_at<T: Float>(level: SimdLevel, x: &[T]) -> f64 {
    whole(level, Whole::Sum, x)
}

/// `sum_i x[i]^2`, accumulated in `f64`, at the active SIMD level.
pub fn sum_sq<T: Float>(x: &[T]) -> f64 {
    sum_sq_at(dispatch::active(), x)
}

/// `sum_i x[i]^2`, accumulated in `f64`, at an explicit SIMD level.
pub fn sum_sq_at<T: Float>(level: SimdLevel, x: &[T]) -> f64 {
    whole(level, Whole::SumSq, x)
}

/// An error for a reduction that needs at least one element.
fn empty_error(op: &'static str) -> KernelError {
    KernelError::InvalidArgument {
        op,
        detail: "the slice is empty".into(),
    }
}

/// Largest element (NaN if any element is NaN) at the active SIMD level.
///
/// ```
/// use kernels::cpu::reduce::max;
/// assert_eq!(max(&[1.0f32, 7.0, -3.0])?, 7.0);
/// assert!(max(&[1.0f64, f64::NAN])?.is_nan());
/// assert!(max::<f32>(&[]).is_err());
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn max<T: Float>(x: &[T]) -> Result<T> {
    max_at(dispatch::active(), x)
}

/// Largest element at an explicit SIMD level; errors on an empty slice.
pub fn max_at<T: Float>(level: SimdLevel, x: &[T]) -> Result<T> {
    if x.is_empty() {
        return Err(empty_error("max"));
    }
    Ok(T::from_f64(whole(level, Whole::Max, x)))
}

/// Smallest element (NaN if any element is NaN) at the active SIMD level.
pub fn min<T: Float>(x: &[T]) -> Result<T> {
    min_at(dispatch::active(), x)
}

/// Smallest element at an explicit SIMD level; errors on an empty slice.
pub fn min_at<T: Float>(level: SimdLevel, x: &[T]) -> Result<T> {
    if x.is_empty() {
        return Err(empty_error("min"));
    }
    Ok(T::from_f64(whole(level, Whole::Min, x)))
}

/// Index of the first maximum (of the first NaN, if any) at the active SIMD level.
///
/// ```
/// use kernels::cpu::reduce::argmax;
/// assert_eq!(argmax(&[1.0f32, 7.0, 7.0])?, 1);
/// assert_eq!(argmax(&[1.0f32, f32::NAN, 9.0])?, 1);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn argmax<T: Float>(x: &[T]) -> Result<usize> {
    argmax_at(dispatch::active(), x)
}

/// Index of the first maximum at an explicit SIMD level; errors on an empty slice.
pub fn argmax_at<T: Float>(level: SimdLevel, x: &[T]) -> Result<usize> {
    if x.is_empty() {
        return Err(empty_error("argmax"));
    }
    let m = T::from_f64(whole(level, Whole::Max, x));
    Ok(position_of(x, m))
}

/// Checks that `len == rows * cols` for a block argument.
fn check_block(op: &'static str, what: &str, len: usize, rows: usize, cols: usize) -> Result<()> {
    let Some(n) = rows.checked_mul(cols) else {
        return Err(KernelError::InvalidArgument {
            op,
            detail: format!("rows x cols = {rows} x {cols} overflows usize"),
        });
    };
    if len != n {
        return Err(KernelError::SizeMismatch {
            op,
            detail: format!(
                "{what} has {len} elements, expected rows x cols = {rows} x {cols} = {n}"
            ),
        });
    }
    Ok(())
}

/// Checks that a per-row argument has `rows` elements.
fn check_per_row(op: &'static str, what: &str, len: usize, rows: usize) -> Result<()> {
    if len != rows {
        return Err(KernelError::SizeMismatch {
            op,
            detail: format!("{what} has {len} elements, expected one per row ({rows})"),
        });
    }
    Ok(())
}

/// Errors if a max-type row reduction is asked for rows with no columns.
fn check_nonempty_rows(op: &'static str, rows: usize, cols: usize) -> Result<()> {
    if rows > 0 && cols == 0 {
        return Err(KernelError::InvalidArgument {
            op,
            detail: format!("rows have no elements ({rows} x 0)"),
        });
    }
    Ok(())
}

/// Checks every target against the number of classes before anything is computed.
fn check_targets(op: &'static str, targets: &[u32], cols: usize) -> Result<()> {
    if let Some((row, &t)) = targets
        .iter()
        .enumerate()
        .find(|(_, &t)| t as usize >= cols)
    {
        return Err(KernelError::InvalidArgument {
            op,
            detail: format!("target {t} at row {row} is out of range for {cols} classes"),
        });
    }
    Ok(())
}

/// The row-wise operations; each reads and writes the row slices described below.
#[derive(Clone, Copy, Debug)]
enum RowOp {
    /// `per_row[r] = sum(x_r)`.
    Sum,
    /// `per_row[r] = max(x_r)`.
    Max,
    /// `index[r] = argmax(x_r)`.
    Argmax,
    /// `out_r = softmax(x_r)`.
    Softmax,
    /// `out_r = log_softmax(x_r)`.
    LogSoftmax,
    /// `out_r = x_r * (y_r - sum(y_r * x_r))` with x = y (forward output), y = grad.
    SoftmaxBackward,
    /// `out_r = y_r - exp(x_r) * sum(y_r)` with x = forward output, y = grad.
    LogSoftmaxBackward,
    /// `out_r = log_softmax(x_r)`, `per_row[r] = -out_r[index[r]]`.
    CrossEntropy,
    /// `out_r = per_row[r] * (exp(x_r) - onehot(index[r]))` (x = log-probabilities).
    CrossEntropyBackward,
}

/// A row-wise kernel over rows `0..rows` of the given pointers (each may be unused,
/// depending on `op`).
struct RowKernel<T> {
    op: RowOp,
    rows: usize,
    cols: usize,
    x: SyncPtr<T>,
    y: SyncPtr<T>,
    out: SyncPtr<T>,
    per_row: SyncPtr<T>,
    index: SyncPtr<u32>,
}

impl<T: Float> Clone for RowKernel<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T: Float> Copy for RowKernel<T> {}

impl<T: Float> RowKernel<T> {
    fn new(op: RowOp, rows: usize, cols: usize) -> Self {
        let null = SyncPtr::new(std::ptr::null_mut());
        Self {
            op,
            rows,
            cols,
            x: null,
            y: null,
            out: null,
            per_row: null,
            index: SyncPtr::new(std::ptr::null_mut()),
        }
    }

    /// The same kernel restricted to rows `start..start + count`.
    ///
    /// # Safety
    /// `start + count <= self.rows`; the pointers the op uses must be valid.
    unsafe fn sub_range(self, start: usize, count: usize) -> Self {
        let c = self.cols;
        // SAFETY: the offsets stay within the blocks (rows * cols elements, or `rows`
        // per-row entries) the caller vouches for; unused pointers are never offset.
        unsafe {
            let off = |p: SyncPtr<T>, k: usize| {
                if p.get().is_null() {
                    p
                } else {
                    SyncPtr::new(p.get().add(k))
                }
            };
            Self {
                rows: count,
                x: off(self.x, start * c),
                y: off(self.y, start * c),
                out: off(self.out, start * c),
                per_row: off(self.per_row, start),
                index: if self.index.get().is_null() {
                    self.index
                } else {
                    SyncPtr::new(self.index.get().add(start))
                },
                ..self
            }
        }
    }

    /// Runs the kernel at `level`, splitting the rows across rayon tasks when the
    /// block is large.
    ///
    /// # Safety
    /// Every pointer `op` uses must be valid for its block (`rows * cols` elements for
    /// `x`, `y`, `out`; `rows` for `per_row`, `index`); `out`/`per_row`/`index`
    /// outputs must not overlap any input.
    unsafe fn launch(self, level: SimdLevel) {
        let cols = self.cols.max(1);
        let min_rows = simd::PAR_MIN_ELEMS.div_ceil(cols);
        let rows_per_task = (simd::PAR_CHUNK_ELEMS / cols).max(1);
        simd::for_each_range(self.rows, min_rows, rows_per_task, |start, count| {
            // SAFETY: `start + count <= rows`; different tasks get disjoint rows.
            let k = unsafe { self.sub_range(start, count) };
            simd::dispatch(level, k);
        });
    }
}

/// The row maximum `m` and `sum_j exp(x_j - m)` in `f64`; with `store`, also writes
/// `exp(x_j - m)` there (softmax then only rescales, computing each `exp` once).
///
/// # Safety
/// `store`, when given, must be writable for `x.len()` elements and not overlap `x`.
#[inline(always)]
unsafe fn max_and_sum_exp<S: Simd>(s: S, x: &[S::E], store: Option<*mut S::E>) -> (S::E, f64) {
    let m = extreme_vec(s, x, true);
    let mv = s.splat(m);
    let l = S::LANES;
    let n = x.len();
    let p = x.as_ptr();
    let mut acc = [s.w_zero(); 2];
    let mut i = 0;
    // SAFETY: every access stays inside `x` and `store` (same length, by the caller):
    // full vectors, then a padded tail.
    unsafe {
        while i + 2 * l <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                let e = s.exp(s.sub(s.load(p.add(i + k * l)), mv));
                if let Some(o) = store {
                    s.store(o.add(i + k * l), e);
                }
                *a = s.w_add(*a, s.w_widen(e));
            }
            i += 2 * l;
        }
        while i + l <= n {
            let e = s.exp(s.sub(s.load(p.add(i)), mv));
            if let Some(o) = store {
                s.store(o.add(i), e);
            }
            acc[0] = s.w_add(acc[0], s.w_widen(e));
            i += l;
        }
        if i < n {
            // Padding lanes hold -inf, whose exp is 0 (for a finite max).
            let v = s.load_tail(p.add(i), n - i, S::E::NEG_INFINITY);
            let e = s.exp(s.sub(v, mv));
            if let Some(o) = store {
                s.store_tail(o.add(i), n - i, e);
            }
            acc[1] = s.w_add(acc[1], s.w_widen(e));
        }
    }
    (m, s.w_sum(s.w_add(acc[0], acc[1])))
}

/// Loads `w <= LANES` elements, zero-padded.
///
/// # Safety
/// `p` must be readable for `w` elements.
#[inline(always)]
unsafe fn load_upto<S: Simd>(s: S, p: *const S::E, w: usize) -> S::V {
    // SAFETY: forwarded from the caller.
    unsafe {
        if w == S::LANES {
            s.load(p)
        } else {
            s.load_tail(p, w, S::E::ZERO)
        }
    }
}

/// `sum_j a_j * b_j` in `f64` (or `sum_j b_j` when `a` is `None`).
#[inline(always)]
fn dot_vec<S: Simd>(s: S, a: Option<&[S::E]>, b: &[S::E]) -> f64 {
    let l = S::LANES;
    let n = b.len();
    let mut acc = s.w_zero();
    let mut i = 0;
    // SAFETY: `a`, when given, has the length of `b` (same row); every access stays
    // inside the rows (full vectors while i + l <= n, then a padded tail).
    unsafe {
        while i < n {
            let w = l.min(n - i);
            let bv = s.w_widen(load_upto(s, b.as_ptr().add(i), w));
            acc = match a {
                Some(a) => s.w_mul_add(s.w_widen(load_upto(s, a.as_ptr().add(i), w)), bv, acc),
                None => s.w_add(acc, bv),
            };
            i += l;
        }
    }
    s.w_sum(acc)
}

/// `exp(x - m) * k` (cross-entropy backward, with `m = 0`).
#[derive(Clone, Copy)]
struct ExpShiftScale<V> {
    m: V,
    k: V,
}

impl<S: Simd> Map1<S> for ExpShiftScale<S::V> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        s.mul(s.exp(s.sub(x, self.m)), self.k)
    }
}

/// `x * k` (softmax normalisation).
#[derive(Clone, Copy)]
struct Scale<V> {
    k: V,
}

impl<S: Simd> Map1<S> for Scale<S::V> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        s.mul(x, self.k)
    }
}

/// `(x - m) - c` (log-softmax with `c = ln sum`).
#[derive(Clone, Copy)]
struct SubSub<V> {
    m: V,
    c: V,
}

impl<S: Simd> Map1<S> for SubSub<S::V> {
    #[inline(always)]
    fn call(self, s: S, x: S::V) -> S::V {
        s.sub(s.sub(x, self.m), self.c)
    }
}

/// `y * (g - dot)` (softmax backward).
#[derive(Clone, Copy)]
struct SoftmaxBack<V> {
    dot: V,
}

impl<S: Simd> Map2<S> for SoftmaxBack<S::V> {
    #[inline(always)]
    fn call(self, s: S, y: S::V, g: S::V) -> S::V {
        s.mul(y, s.sub(g, self.dot))
    }
}

/// `g - exp(y) * sum` as `exp(y) * (-sum) + g` (log-softmax backward).
#[derive(Clone, Copy)]
struct LogSoftmaxBack<V> {
    neg_sum: V,
}

impl<S: Simd> Map2<S> for LogSoftmaxBack<S::V> {
    #[inline(always)]
    fn call(self, s: S, y: S::V, g: S::V) -> S::V {
        s.mul_add(s.exp(y), self.neg_sum, g)
    }
}

impl<T: Float> WithSimd<T> for RowKernel<T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) {
        let c = self.cols;
        for r in 0..self.rows {
            // SAFETY: `launch`'s caller guarantees the pointers the op uses are valid
            // for `rows` rows of `c` elements (per-row pointers for `rows` entries),
            // with outputs disjoint from inputs; row `r` is in range.
            unsafe {
                let row = |p: SyncPtr<T>| std::slice::from_raw_parts(p.get().add(r * c), c);
                let out = self.out.get().add(r * c);
                match self.op {
                    RowOp::Sum => {
                        *self.per_row.get().add(r) = T::from_f64(sum_vec(s, row(self.x), false))
                    }
                    RowOp::Max => *self.per_row.get().add(r) = extreme_vec(s, row(self.x), true),
                    RowOp::Argmax => {
                        let x = row(self.x);
                        let m = extreme_vec(s, x, true);
                        *self.index.get().add(r) = position_of(x, m) as u32;
                    }
                    RowOp::Softmax => {
                        let x = row(self.x);
                        let (_, sum) = max_and_sum_exp(s, x, Some(out));
                        let k = s.splat(T::from_f64(1.0 / sum));
                        map1(s, out, out, c, Scale { k });
                    }
                    RowOp::LogSoftmax | RowOp::CrossEntropy => {
                        let x = row(self.x);
                        let (m, sum) = max_and_sum_exp(s, x, None);
                        let (mv, lse) = (s.splat(m), s.splat(T::from_f64(sum.ln())));
                        map1(s, x.as_ptr(), out, c, SubSub { m: mv, c: lse });
                        if let RowOp::CrossEntropy = self.op {
                            let t = *self.index.get().add(r) as usize;
                            *self.per_row.get().add(r) = -*out.add(t);
                        }
                    }
                    RowOp::SoftmaxBackward => {
                        let (y, g) = (row(self.x), row(self.y));
                        let dot = s.splat(T::from_f64(dot_vec(s, Some(y), g)));
                        map2(s, y.as_ptr(), g.as_ptr(), out, c, SoftmaxBack { dot });
                    }
                    RowOp::LogSoftmaxBackward => {
                        let (y, g) = (row(self.x), row(self.y));
                        let neg_sum = s.splat(T::from_f64(-dot_vec(s, None, g)));
                        map2(
                            s,
                            y.as_ptr(),
                            g.as_ptr(),
                            out,
                            c,
                            LogSoftmaxBack { neg_sum },
                        );
                    }
                    RowOp::CrossEntropyBackward => {
                        let lp = row(self.x);
                        let gl = *self.per_row.get().add(r);
                        let glv = s.splat(gl);
                        map1(
                            s,
                            lp.as_ptr(),
                            out,
                            c,
                            ExpShiftScale {
                                m: s.splat(T::ZERO),
                                k: glv,
                            },
                        );
                        let t = *self.index.get().add(r) as usize;
                        *out.add(t) = *out.add(t) - gl;
                    }
                }
            }
        }
    }
}

/// Per-row sums, accumulated in `f64`, at the active SIMD level: `out[r] = sum_j
/// x[r * cols + j]`. See [`sum_rows_at`].
///
/// ```
/// use kernels::cpu::reduce::sum_rows;
/// let mut out = [0.0f32; 2];
/// sum_rows(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3, &mut out)?;
/// assert_eq!(out, [6.0, 15.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn sum_rows<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    sum_rows_at(dispatch::active(), x, rows, cols, out)
}

/// Per-row sums at an explicit SIMD level; errors unless `x.len() == rows * cols` and
/// `out.len() == rows`.
pub fn sum_rows_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
) -> Result<()> {
    check_block("sum_rows", "x", x.len(), rows, cols)?;
    check_per_row("sum_rows", "out", out.len(), rows)?;
    let mut k = RowKernel::new(RowOp::Sum, rows, cols);
    k.x = SyncPtr::from_const(x.as_ptr());
    k.per_row = SyncPtr::new(out.as_mut_ptr());
    // SAFETY: sizes checked above; `out` is a unique borrow, disjoint from `x`.
    unsafe { k.launch(level) };
    Ok(())
}

/// Per-row maxima (NaN if the row has a NaN) at the active SIMD level.
pub fn max_rows<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    max_rows_at(dispatch::active(), x, rows, cols, out)
}

/// Per-row maxima at an explicit SIMD level; errors on size mismatches and on rows
/// with no columns.
pub fn max_rows_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
) -> Result<()> {
    check_block("max_rows", "x", x.len(), rows, cols)?;
    check_per_row("max_rows", "out", out.len(), rows)?;
    check_nonempty_rows("max_rows", rows, cols)?;
    let mut k = RowKernel::new(RowOp::Max, rows, cols);
    k.x = SyncPtr::from_const(x.as_ptr());
    k.per_row = SyncPtr::new(out.as_mut_ptr());
    // SAFETY: sizes checked above; `out` is a unique borrow, disjoint from `x`.
    unsafe { k.launch(level) };
    Ok(())
}

/// Per-row index of the first maximum (of the first NaN, if any) at the active SIMD
/// level, as `u32` (the index dtype).
///
/// ```
/// use kernels::cpu::reduce::argmax_rows;
/// let mut idx = [0u32; 2];
/// argmax_rows(&[0.1f32, 0.7, 0.2, 0.5, 0.4, 0.1], 2, 3, &mut idx)?;
/// assert_eq!(idx, [1, 0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn argmax_rows<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [u32]) -> Result<()> {
    argmax_rows_at(dispatch::active(), x, rows, cols, out)
}

/// Per-row argmax at an explicit SIMD level; errors on size mismatches, rows with no
/// columns, and more columns than `u32` can index.
pub fn argmax_rows_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [u32],
) -> Result<()> {
    check_block("argmax_rows", "x", x.len(), rows, cols)?;
    check_per_row("argmax_rows", "out", out.len(), rows)?;
    check_nonempty_rows("argmax_rows", rows, cols)?;
    if u32::try_from(cols).is_err() {
        return Err(KernelError::InvalidArgument {
            op: "argmax_rows",
            detail: format!("{cols} columns cannot be indexed by u32"),
        });
    }
    let mut k = RowKernel::new(RowOp::Argmax, rows, cols);
    k.x = SyncPtr::from_const(x.as_ptr());
    k.index = SyncPtr::new(out.as_mut_ptr());
    // SAFETY: sizes checked above; `out` is a unique borrow, disjoint from `x`.
    unsafe { k.launch(level) };
    Ok(())
}

/// Checks an input block and an output block of the same shape.
fn check_in_out(
    op: &'static str,
    ins: &[(&str, usize)],
    out: (&str, usize),
    rows: usize,
    cols: usize,
) -> Result<()> {
    for &(what, len) in ins {
        check_block(op, what, len, rows, cols)?;
    }
    check_block(op, out.0, out.1, rows, cols)
}

/// Row-wise softmax at the active SIMD level: `out[r, j] = exp(x[r, j] - m_r) /
/// sum_k exp(x[r, k] - m_r)` with `m_r` the row maximum. See [`softmax_rows_at`].
pub fn softmax_rows<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    softmax_rows_at(dispatch::active(), x, rows, cols, out)
}

/// Row-wise softmax at an explicit SIMD level; errors unless both slices hold
/// `rows * cols` elements.
pub fn softmax_rows_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
) -> Result<()> {
    check_in_out(
        "softmax_rows",
        &[("x", x.len())],
        ("out", out.len()),
        rows,
        cols,
    )?;
    let mut k = RowKernel::new(RowOp::Softmax, rows, cols);
    k.x = SyncPtr::from_const(x.as_ptr());
    k.out = SyncPtr::new(out.as_mut_ptr());
    // SAFETY: sizes checked above; `out` is a unique borrow, disjoint from `x`.
    unsafe { k.launch(level) };
    Ok(())
}

/// Row-wise log-softmax at the active SIMD level: `out[r, j] = (x[r, j] - m_r) -
/// ln sum_k exp(x[r, k] - m_r)`.
///
/// ```
/// use kernels::cpu::reduce::log_softmax_rows;
/// let mut out = [0.0f64; 2];
/// log_softmax_rows(&[1000.0, 1000.0], 1, 2, &mut out)?; // no overflow
/// assert!((out[0] + std::f64::consts::LN_2).abs() < 1e-15);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn log_softmax_rows<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    log_softmax_rows_at(dispatch::active(), x, rows, cols, out)
}

/// Row-wise log-softmax at an explicit SIMD level.
pub fn log_softmax_rows_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
) -> Result<()> {
    check_in_out(
        "log_softmax_rows",
        &[("x", x.len())],
        ("out", out.len()),
        rows,
        cols,
    )?;
    let mut k = RowKernel::new(RowOp::LogSoftmax, rows, cols);
    k.x = SyncPtr::from_const(x.as_ptr());
    k.out = SyncPtr::new(out.as_mut_ptr());
    // SAFETY: sizes checked above; `out` is a unique borrow, disjoint from `x`.
    unsafe { k.launch(level) };
    Ok(())
}

/// Softmax backward from the forward output `y` at the active SIMD level:
/// `grad_in[r, j] = y[r, j] * (grad_out[r, j] - sum_k grad_out[r, k] * y[r, k])`.
pub fn softmax_rows_backward<T: Float>(
    y: &[T],
    grad_out: &[T],
    rows: usize,
    cols: usize,
    grad_in: &mut [T],
) -> Result<()> {
    softmax_rows_backward_at(dispatch::active(), y, grad_out, rows, cols, grad_in)
}

/// [`softmax_rows_backward`] at an explicit SIMD level.
pub fn softmax_rows_backward_at<T: Float>(
    level: SimdLevel,
    y: &[T],
    grad_out: &[T],
    rows: usize,
    cols: usize,
    grad_in: &mut [T],
) -> Result<()> {
    let op = "softmax_rows_backward";
    check_in_out(
        op,
        &[("y", y.len()), ("grad_out", grad_out.len())],
        ("grad_in", grad_in.len()),
        rows,
        cols,
    )?;
    let mut k = RowKernel::new(RowOp::SoftmaxBackward, rows, cols);
    k.x = SyncPtr::from_const(y.as_ptr());
    k.y = SyncPtr::from_const(grad_out.as_ptr());
    k.out = SyncPtr::new(grad_in.as_mut_ptr());
    // SAFETY: sizes checked above; `grad_in` is a unique borrow, disjoint from inputs.
    unsafe { k.launch(level) };
    Ok(())
}

/// Log-softmax backward from the forward output `y` (log-probabilities) at the active
/// SIMD level: `grad_in[r, j] = grad_out[r, j] - exp(y[r, j]) * sum_k grad_out[r, k]`.
pub fn log_softmax_rows_backward<T: Float>(
    y: &[T],
    grad_out: &[T],
    rows: usize,
    cols: usize,
    grad_in: &mut [T],
) -> Result<()> {
    log_softmax_rows_backward_at(dispatch::active(), y, grad_out, rows, cols, grad_in)
}

/// [`log_softmax_rows_backward`] at an explicit SIMD level.
pub fn log_softmax_rows_backward_at<T: Float>(
    level: SimdLevel,
    y: &[T],
    grad_out: &[T],
    rows: usize,
    cols: usize,
    grad_in: &mut [T],
) -> Result<()> {
    let op = "log_softmax_rows_backward";
    check_in_out(
        op,
        &[("y", y.len()), ("grad_out", grad_out.len())],
        ("grad_in", grad_in.len()),
        rows,
        cols,
    )?;
    let mut k = RowKernel::new(RowOp::LogSoftmaxBackward, rows, cols);
    k.x = SyncPtr::from_const(y.as_ptr());
    k.y = SyncPtr::from_const(grad_out.as_ptr());
    k.out = SyncPtr::new(grad_in.as_mut_ptr());
    // SAFETY: sizes checked above; `grad_in` is a unique borrow, disjoint from inputs.
    unsafe { k.launch(level) };
    Ok(())
}

/// Fused cross-entropy at the active SIMD level: writes the row log-softmax of
/// `logits` into `log_probs` and `loss[r] = -log_probs[r, targets[r]]`.
///
/// Errors (before writing anything) if a target is `>= cols`, naming the row and
/// value, or on size mismatches. The mean loss is the mean of `loss`; the gradient
/// with respect to the logits is [`cross_entropy_rows_backward`].
///
/// ```
/// use kernels::cpu::reduce::cross_entropy_rows;
/// let logits = [0.0f32; 20]; // 2 rows x 10 classes, uniform
/// let (mut loss, mut lp) = ([0.0f32; 2], [0.0f32; 20]);
/// cross_entropy_rows(&logits, &[3, 9], 2, 10, &mut loss, &mut lp)?;
/// assert!((loss[0] - 10f32.ln()).abs() < 1e-6);
/// assert!(cross_entropy_rows(&logits, &[3, 10], 2, 10, &mut loss, &mut lp).is_err());
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn cross_entropy_rows<T: Float>(
    logits: &[T],
    targets: &[u32],
    rows: usize,
    cols: usize,
    loss: &mut [T],
    log_probs: &mut [T],
) -> Result<()> {
    cross_entropy_rows_at(
        dispatch::active(),
        logits,
        targets,
        rows,
        cols,
        loss,
        log_probs,
    )
}

/// [`cross_entropy_rows`] at an explicit SIMD level.
pub fn cross_entropy_rows_at<T: Float>(
    level: SimdLevel,
    logits: &[T],
    targets: &[u32],
    rows: usize,
    cols: usize,
    loss: &mut [T],
    log_probs: &mut [T],
) -> Result<()> {
    let op = "cross_entropy_rows";
    check_in_out(
        op,
        &[("logits", logits.len())],
        ("log_probs", log_probs.len()),
        rows,
        cols,
    )?;
    check_per_row(op, "targets", targets.len(), rows)?;
    check_per_row(op, "loss", loss.len(), rows)?;
    check_targets(op, targets, cols)?;
    let mut k = RowKernel::new(RowOp::CrossEntropy, rows, cols);
    k.x = SyncPtr::from_const(logits.as_ptr());
    k.out = SyncPtr::new(log_probs.as_mut_ptr());
    k.per_row = SyncPtr::new(loss.as_mut_ptr());
    k.index = SyncPtr::from_const(targets.as_ptr());
    // SAFETY: sizes and targets checked above; outputs are unique borrows, disjoint
    // from the inputs.
    unsafe { k.launch(level) };
    Ok(())
}

/// Gradient of per-row cross-entropy losses with respect to the logits, at the active
/// SIMD level: `grad_logits[r, j] = grad_loss[r] * (exp(log_probs[r, j]) - [j ==
/// targets[r]])`, where `log_probs` is the output of [`cross_entropy_rows`]. For the
/// mean loss over `rows` rows, pass `grad_loss[r] = 1 / rows`.
pub fn cross_entropy_rows_backward<T: Float>(
    log_probs: &[T],
    targets: &[u32],
    grad_loss: &[T],
    rows: usize,
    cols: usize,
    grad_logits: &mut [T],
) -> Result<()> {
    cross_entropy_rows_backward_at(
        dispatch::active(),
        log_probs,
        targets,
        grad_loss,
        rows,
        cols,
        grad_logits,
    )
}

/// [`cross_entropy_rows_backward`] at an explicit SIMD level.
pub fn cross_entropy_rows_backward_at<T: Float>(
    level: SimdLevel,
    log_probs: &[T],
    targets: &[u32],
    grad_loss: &[T],
    rows: usize,
    cols: usize,
    grad_logits: &mut [T],
) -> Result<()> {
    let op = "cross_entropy_rows_backward";
    check_in_out(
        op,
        &[("log_probs", log_probs.len())],
        ("grad_logits", grad_logits.len()),
        rows,
        cols,
    )?;
    check_per_row(op, "targets", targets.len(), rows)?;
    check_per_row(op, "grad_loss", grad_loss.len(), rows)?;
    check_targets(op, targets, cols)?;
    let mut k = RowKernel::new(RowOp::CrossEntropyBackward, rows, cols);
    k.x = SyncPtr::from_const(log_probs.as_ptr());
    k.per_row = SyncPtr::from_const(grad_loss.as_ptr());
    k.index = SyncPtr::from_const(targets.as_ptr());
    k.out = SyncPtr::new(grad_logits.as_mut_ptr());
    // SAFETY: sizes and targets checked above; `grad_logits` is a unique borrow,
    // disjoint from the inputs.
    unsafe { k.launch(level) };
    Ok(())
}

/// Column sums of rows `0..rows`, added into `acc` (`cols` entries, `f64`).
struct SumColsKernel<'a, T> {
    x: &'a [T],
    rows: usize,
    cols: usize,
    acc: &'a mut [f64],
}

impl<T: Float> WithSimd<T> for SumColsKernel<'_, T> {
    type Output = ();
    #[inline(always)]
    fn run<S: Simd<E = T>>(self, s: S) {
        let l = S::LANES;
        let (rows, cols) = (self.rows, self.cols);
        let p = self.x.as_ptr();
        let block = 4 * l;
        let mut c0 = 0;
        while c0 < cols {
            // Up to four vectors of columns, the last possibly partial, summed down
            // all rows in registers.
            let width = block.min(cols - c0);
            let nvec = width.div_ceil(l);
            let mut acc = [s.w_zero(); 4];
            for r in 0..rows {
                for (k, a) in acc.iter_mut().enumerate().take(nvec) {
                    let col = c0 + k * l;
                    let w = l.min(cols - col);
                    // SAFETY: `col + w <= cols` and `r < rows`, so the `w` elements
                    // read start inside row r of the rows * cols block.
                    let v = unsafe {
                        let q = p.add(r * cols + col);
                        if w == l {
                            s.load(q)
                        } else {
                            s.load_tail(q, w, T::ZERO)
                        }
                    };
                    *a = s.w_add(*a, s.w_widen(v));
                }
            }
            let mut buf = [0.0f64; simd::MAX_LANES];
            for (k, a) in acc.iter().enumerate().take(nvec) {
                let col = c0 + k * l;
                let w = l.min(cols - col);
                // SAFETY: `buf` holds MAX_LANES >= LANES f64s.
                unsafe { s.w_store(buf.as_mut_ptr(), *a) };
                for (dst, v) in self.acc[col..col + w].iter_mut().zip(&buf[..w]) {
                    *dst += *v;
                }
            }
            c0 += width;
        }
    }
}

/// Column sums (e.g. a bias gradient) accumulated in `f64` at the active SIMD level:
/// `out[j] = sum_r x[r * cols + j]`. See [`sum_cols_at`].
///
/// ```
/// use kernels::cpu::reduce::sum_cols;
/// let mut out = [0.0f32; 3];
/// sum_cols(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3, &mut out)?;
/// assert_eq!(out, [5.0, 7.0, 9.0]);
/// # Ok::<(), kernels::KernelError>(())
/// ```
pub fn sum_cols<T: Float>(x: &[T], rows: usize, cols: usize, out: &mut [T]) -> Result<()> {
    sum_cols_at(dispatch::active(), x, rows, cols, out)
}

/// Column sums at an explicit SIMD level; errors unless `x.len() == rows * cols` and
/// `out.len() == cols`. Allocates one `f64` accumulator of `cols` entries (one per
/// task when large blocks are split across threads, in a fixed number of row chunks,
/// so the result does not depend on the thread count).
pub fn sum_cols_at<T: Float>(
    level: SimdLevel,
    x: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T],
) -> Result<()> {
    check_block("sum_cols", "x", x.len(), rows, cols)?;
    if out.len() != cols {
        return Err(KernelError::SizeMismatch {
            op: "sum_cols",
            detail: format!(
                "out has {} elements, expected one per column ({cols})",
                out.len()
            ),
        });
    }
    if cols == 0 {
        return Ok(());
    }
    let rows_per_task = (simd::PAR_CHUNK_ELEMS / cols).max(1);
    let acc = if x.len() < simd::PAR_MIN_ELEMS || rows <= rows_per_task {
        let mut acc = vec![0.0f64; cols];
        simd::dispatch(
            level,
            SumColsKernel {
                x,
                rows,
                cols,
                acc: &mut acc,
            },
        );
        acc
    } else {
        let parts: Vec<Vec<f64>> = x
            .par_chunks(rows_per_task * cols)
            .map(|chunk| {
                let mut acc = vec![0.0f64; cols];
                simd::dispatch(
                    level,
                    SumColsKernel {
                        x: chunk,
                        rows: chunk.len() / cols,
                        cols,
                        acc: &mut acc,
                    },
                );
                acc
            })
            .collect();
        let mut acc = vec![0.0f64; cols];
        for part in &parts {
            for (a, p) in acc.iter_mut().zip(part) {
                *a += *p;
            }
        }
        acc
    };
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = T::from_f64(*a);
    }
    Ok(())
}
