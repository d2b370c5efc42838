//! Elementwise maps from strided inputs to a new dense (row-major) output.

use kernels::cpu::elementwise::{BinaryOp, UnaryOp};

use crate::cpu::alloc_buf;
use crate::dtype::{Element, FloatElement};
use crate::error::Result;
use crate::layout::Layout;
use crate::strided::Runs;

/// `f` applied to every element of `a` (viewed through `la`), in logical order. The
/// output is allocated for `op` (which a failure names).
#[inline]
pub(crate) fn map1<A: Copy, O: Element>(
    op: &'static str,
    a: &[A],
    la: &Layout,
    f: impl Fn(A) -> O,
) -> Result<Vec<O>> {
    let mut out = alloc_buf::with_capacity(op, la.shape())?;
    if la.is_contiguous() {
        let (off, n) = (la.offset(), la.shape().elem_count());
        out.extend(a[off..off + n].iter().map(|&x| f(x)));
        return Ok(out);
    }
    let runs = Runs::new(la.dims(), [la.strides()], [la.offset()]);
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1] => runs.for_each(|[o]| out.extend(a[o..o + len].iter().map(|&x| f(x)))),
        [s] => runs.for_each(|[o]| out.extend((0..len).map(|i| f(a[o + i * s])))),
    }
    Ok(out)
}

/// A dense copy of the view `la` of `a`, in logical order, allocated for `op`.
///
/// A transposed view (the two innermost coalesced dims have strides `(1, s)`) is
/// copied in square tiles, so both the reads and the writes of a tile stay in cache
/// instead of striding through memory for every element.
#[inline]
pub(crate) fn gather<A: Element>(op: &'static str, a: &[A], la: &Layout) -> Result<Vec<A>> {
    if la.is_contiguous() {
        let off = la.offset();
        return alloc_buf::copy_of(op, la.shape(), &a[off..off + la.shape().elem_count()]);
    }
    let runs = Runs::new(la.dims(), [la.strides()], [la.offset()]);
    let (dims, [strides]) = runs.parts();
    let k = dims.len();
    if k >= 2 && strides[k - 2] == 1 && dims[k - 1] * dims[k - 2] >= TILE * TILE {
        let (rows, cols, col_stride) = (dims[k - 2], dims[k - 1], strides[k - 1]);
        let outer = Runs::new(&dims[..k - 2], [&strides[..k - 2]], [la.offset()]);
        let mut out = alloc_buf::with_capacity(op, la.shape())?;
        let (len, [s]) = (outer.inner_len(), outer.inner_strides());
        outer.for_each(|[o]| {
            for i in 0..len {
                transpose_tiles(a, o + i * s, rows, cols, col_stride, &mut out);
            }
        });
        return Ok(out);
    }
    map1(op, a, la, |x| x)
}

/// Side of the square tiles of [`transpose_tiles`].
const TILE: usize = 32;

/// Appends the row-major `rows x cols` matrix whose element `(r, c)` is
/// `a[base + r + c * col_stride]` to `out`, tile by tile.
fn transpose_tiles<A: Copy>(
    a: &[A],
    base: usize,
    rows: usize,
    cols: usize,
    col_stride: usize,
    out: &mut Vec<A>,
) {
    let start = out.len();
    // Fill with the first element so the tiles can be written in any order.
    out.resize(start + rows * cols, a[base]);
    let dst = &mut out[start..];
    for r0 in (0..rows).step_by(TILE) {
        let r1 = (r0 + TILE).min(rows);
        for c0 in (0..cols).step_by(TILE) {
            let c1 = (c0 + TILE).min(cols);
            for c in c0..c1 {
                let src = &a[base + c * col_stride + r0..base + c * col_stride + r1];
                for (r, &v) in (r0..r1).zip(src) {
                    dst[r * cols + c] = v;
                }
            }
        }
    }
}

/// `f(a, b)` for every element of two views of the same shape (the caller broadcasts
/// both layouts to the output shape first), in logical order, allocated for `op`.
#[inline]
pub(crate) fn map2<A: Copy, B: Copy, O: Element>(
    op: &'static str,
    (a, la): (&[A], &Layout),
    (b, lb): (&[B], &Layout),
    f: impl Fn(A, B) -> O,
) -> Result<Vec<O>> {
    debug_assert_eq!(la.dims(), lb.dims());
    let mut out = alloc_buf::with_capacity(op, la.shape())?;
    let runs = Runs::new(
        la.dims(),
        [la.strides(), lb.strides()],
        [la.offset(), lb.offset()],
    );
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1, 1] => runs.for_each(|[oa, ob]| {
            out.extend(
                a[oa..oa + len]
                    .iter()
                    .zip(&b[ob..ob + len])
                    .map(|(&x, &y)| f(x, y)),
            )
        }),
        [1, 0] => runs.for_each(|[oa, ob]| {
            let y = b[ob];
            out.extend(a[oa..oa + len].iter().map(|&x| f(x, y)))
        }),
        [0, 1] => runs.for_each(|[oa, ob]| {
            let x = a[oa];
            out.extend(b[ob..ob + len].iter().map(|&y| f(x, y)))
        }),
        [sa, sb] => runs
            .for_each(|[oa, ob]| out.extend((0..len).map(|i| f(a[oa + i * sa], b[ob + i * sb])))),
    }
    Ok(out)
}

/// `f(a, b, c)` for every element of three views of the same shape, in logical order,
/// allocated for `op`.
#[inline]
pub(crate) fn map3<A: Copy, B: Copy, C: Copy, O: Element>(
    op: &'static str,
    (a, la): (&[A], &Layout),
    (b, lb): (&[B], &Layout),
    (c, lc): (&[C], &Layout),
    f: impl Fn(A, B, C) -> O,
) -> Result<Vec<O>> {
    let mut out = alloc_buf::with_capacity(op, la.shape())?;
    let runs = Runs::new(
        la.dims(),
        [la.strides(), lb.strides(), lc.strides()],
        [la.offset(), lb.offset(), lc.offset()],
    );
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1, 1, 1] => runs.for_each(|[oa, ob, oc]| {
            out.extend(
                a[oa..oa + len]
                    .iter()
                    .zip(&b[ob..ob + len])
                    .zip(&c[oc..oc + len])
                    .map(|((&x, &y), &z)| f(x, y, z)),
            )
        }),
        [sa, sb, sc] => runs.for_each(|[oa, ob, oc]| {
            out.extend((0..len).map(|i| f(a[oa + i * sa], b[ob + i * sb], c[oc + i * sc])))
        }),
    }
    Ok(out)
}

/// A float unary map where contiguous runs go through the SIMD slice kernel for `op`
/// and strided runs through `f` (which must agree with the kernel) one element at a
/// time. The output is allocated for `name`.
pub(crate) fn unary_runs<T: FloatElement>(
    (name, op): (&'static str, UnaryOp),
    f: impl Fn(T) -> T,
    a: &[T],
    la: &Layout,
) -> Result<Vec<T>> {
    // The kernels check the parameters; the plain loop for strided runs must too.
    op.validate()?;
    let n = la.shape().elem_count();
    let mut out = alloc_buf::buffer(name, la.shape())?;
    if la.is_contiguous() {
        let off = la.offset();
        T::k_unary(op, &a[off..off + n], &mut out)?;
        return Ok(out);
    }
    let runs = Runs::new(la.dims(), [la.strides()], [la.offset()]);
    let len = runs.inner_len();
    let mut pos = 0;
    match runs.inner_strides() {
        [1] => runs.try_for_each(|[o]| {
            T::k_unary(op, &a[o..o + len], &mut out[pos..pos + len])?;
            pos += len;
            Ok::<(), kernels::KernelError>(())
        })?,
        [s] => runs.for_each(|[o]| {
            for (i, y) in out[pos..pos + len].iter_mut().enumerate() {
                *y = f(a[o + i * s]);
            }
            pos += len;
        }),
    }
    Ok(out)
}

/// A float binary map over two views of the same shape (already broadcast): runs that
/// are contiguous, or contiguous against a broadcast scalar, go through the SIMD slice
/// kernels for `op`; other runs through `f` (which must agree with the kernel). The
/// output is allocated for `name`.
pub(crate) fn binary_runs<T: FloatElement>(
    (name, op): (&'static str, BinaryOp),
    f: impl Fn(T, T) -> T,
    (a, la): (&[T], &Layout),
    (b, lb): (&[T], &Layout),
) -> Result<Vec<T>> {
    debug_assert_eq!(la.dims(), lb.dims());
    let mut out = alloc_buf::buffer(name, la.shape())?;
    let runs = Runs::new(
        la.dims(),
        [la.strides(), lb.strides()],
        [la.offset(), lb.offset()],
    );
    let len = runs.inner_len();
    let mut pos = 0;
    match runs.inner_strides() {
        [1, 1] => runs.try_for_each(|[oa, ob]| {
            T::k_binary(
                op,
                &a[oa..oa + len],
                &b[ob..ob + len],
                &mut out[pos..pos + len],
            )?;
            pos += len;
            Ok::<(), kernels::KernelError>(())
        })?,
        [1, 0] => runs.try_for_each(|[oa, ob]| {
            T::k_binary_scalar(op, &a[oa..oa + len], b[ob], &mut out[pos..pos + len])?;
            pos += len;
            Ok::<(), kernels::KernelError>(())
        })?,
        [0, 1] => runs.try_for_each(|[oa, ob]| {
            T::k_scalar_binary(op, a[oa], &b[ob..ob + len], &mut out[pos..pos + len])?;
            pos += len;
            Ok::<(), kernels::KernelError>(())
        })?,
        [sa, sb] => runs.for_each(|[oa, ob]| {
            for (i, y) in out[pos..pos + len].iter_mut().enumerate() {
                *y = f(a[oa + i * sa], b[ob + i * sb]);
            }
            pos += len;
        }),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    #[test]
    fn map2_broadcasts_column_and_row() {
        let a = [1.0, 2.0]; // column [2, 1] expanded to [2, 3]
        let b = [10.0, 20.0, 30.0]; // row [3] expanded to [2, 3]
        let la = Layout::new(Shape::from([2, 3]), vec![1, 0], 0).unwrap();
        let lb = Layout::new(Shape::from([2, 3]), vec![0, 1], 0).unwrap();
        let out = map2("test", (&a, &la), (&b, &lb), |x, y| x + y).unwrap();
        assert_eq!(out, vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
    }

    #[test]
    fn gather_tiles_large_transposes() {
        // A [2, 40, 50] tensor stored as [2, 50, 40] and transposed back.
        let a: Vec<u32> = (0..4000).collect();
        let l = Layout::new(Shape::from([2, 40, 50]), vec![2000, 1, 40], 0).unwrap();
        let want: Vec<u32> = (0..2)
            .flat_map(|b| (0..40).flat_map(move |r| (0..50).map(move |c| b * 2000 + r + c * 40)))
            .collect();
        assert_eq!(gather("test", &a, &l).unwrap(), want);
    }

    #[test]
    fn gather_transposed() {
        let a = [0, 1, 2, 3, 4, 5];
        let l = Layout::new(Shape::from([3, 2]), vec![1, 3], 0).unwrap();
        assert_eq!(gather("test", &a, &l).unwrap(), vec![0, 3, 1, 4, 2, 5]);
    }
}
