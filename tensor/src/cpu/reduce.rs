//! Reductions of a strided source into a dense accumulator, and row folds.

use crate::dtype::Element;
use crate::layout::Layout;
use crate::strided::Runs;

/// Folds every element of the view `ls` of `src` into the dense accumulator `acc`:
/// `acc[o] = f(acc[o], x)`, where `o` is the element's index under `acc_strides`
/// (the accumulator's strides per source dim, 0 on the reduced dims).
///
/// `row` folds a contiguous run into one accumulator and must agree with `f`; it exists
/// so sums can use several independent lanes (which the compiler vectorises) where a
/// plain fold would be one long dependency chain.
///
/// Dims are visited in order of decreasing source stride, so a reduction over a
/// transposed view still streams through memory.
#[inline]
pub(crate) fn fold_into<A: Copy, X: Copy>(
    acc: &mut [A],
    acc_strides: &[usize],
    src: &[X],
    ls: &Layout,
    f: impl Fn(A, X) -> A,
    row: impl Fn(A, &[X]) -> A,
) {
    let rank = ls.dims().len();
    let mut order: Vec<usize> = (0..rank).collect();
    order.sort_by(|&i, &j| ls.strides()[j].cmp(&ls.strides()[i]));
    let dims: Vec<usize> = order.iter().map(|&i| ls.dims()[i]).collect();
    let astr: Vec<usize> = order.iter().map(|&i| acc_strides[i]).collect();
    let sstr: Vec<usize> = order.iter().map(|&i| ls.strides()[i]).collect();
    let runs = Runs::new(&dims, [&astr, &sstr], [0, ls.offset()]);
    let len = runs.inner_len();
    match runs.inner_strides() {
        [0, 1] => runs.for_each(|[oa, os]| acc[oa] = row(acc[oa], &src[os..os + len])),
        [0, ss] => runs.for_each(|[oa, os]| {
            let mut a = acc[oa];
            for i in 0..len {
                a = f(a, src[os + i * ss]);
            }
            acc[oa] = a;
        }),
        [1, 1] => runs.for_each(|[oa, os]| {
            for (a, &x) in acc[oa..oa + len].iter_mut().zip(&src[os..os + len]) {
                *a = f(*a, x);
            }
        }),
        [sa, ss] => runs.for_each(|[oa, os]| {
            for i in 0..len {
                acc[oa + i * sa] = f(acc[oa + i * sa], src[os + i * ss]);
            }
        }),
    }
}

/// NaN-propagating maximum (PyTorch semantics: a NaN anywhere makes the result NaN).
#[inline]
pub(crate) fn max_nan<T: Element>(a: T, b: T) -> T {
    if a > b || a.is_nan_value() {
        a
    } else {
        b
    }
}

/// NaN-propagating minimum.
#[inline]
pub(crate) fn min_nan<T: Element>(a: T, b: T) -> T {
    if a < b || a.is_nan_value() {
        a
    } else {
        b
    }
}

/// Index of the first extreme element of `len` elements at `src[base + i * stride]`:
/// the first maximum if `want_max`, else the first minimum; a NaN wins at once.
#[inline]
pub(crate) fn arg_extreme<T: Element>(
    src: &[T],
    base: usize,
    stride: usize,
    len: usize,
    want_max: bool,
) -> u32 {
    let mut best = src[base];
    let mut best_i = 0;
    if best.is_nan_value() {
        return 0;
    }
    for i in 1..len {
        let x = src[base + i * stride];
        if x.is_nan_value() {
            return i as u32;
        }
        if (want_max && x > best) || (!want_max && x < best) {
            best = x;
            best_i = i;
        }
    }
    best_i as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    fn row_sum(a: f64, xs: &[f32]) -> f64 {
        xs.iter().fold(a, |a, &v| a + v as f64)
    }

    #[test]
    fn column_and_row_sums() {
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let l = Layout::contiguous(Shape::from([2, 3]));
        let mut cols = vec![0.0f64; 3];
        fold_into(&mut cols, &[0, 1], &x, &l, |a, v| a + v as f64, row_sum);
        assert_eq!(cols, vec![5.0, 7.0, 9.0]);
        let mut rows = vec![0.0f64; 2];
        fold_into(&mut rows, &[1, 0], &x, &l, |a, v| a + v as f64, row_sum);
        assert_eq!(rows, vec![6.0, 15.0]);
    }

    #[test]
    fn nan_propagates() {
        assert!(max_nan(1.0, f64::NAN).is_nan());
        assert!(max_nan(f64::NAN, 1.0).is_nan());
        assert!(min_nan(1.0f32, f32::NAN).is_nan());
        assert_eq!(arg_extreme(&[1.0, f64::NAN, 3.0], 0, 1, 3, true), 1);
        assert_eq!(arg_extreme(&[3, 1, 3, 0], 0, 1, 4, true), 0);
        assert_eq!(arg_extreme(&[3, 1, 3, 0], 0, 1, 4, false), 3);
    }
}
