//! Loops that write into an existing strided view: in-place updates, and scattering a
//! source into part of a freshly allocated output (cat, index_add).

use crate::layout::Layout;
use crate::strided::Runs;

/// `f(&mut dst[i], src[i])` for every element of two views of the same shape. The
/// destination view must not have stride-0 dims of size > 1 (the caller checks).
#[inline]
pub(crate) fn zip_into<D, S: Copy>(
    dst: &mut [D],
    ld: &Layout,
    src: &[S],
    ls: &Layout,
    f: impl Fn(&mut D, S),
) {
    debug_assert_eq!(ld.dims(), ls.dims());
    let runs = Runs::new(
        ld.dims(),
        [ld.strides(), ls.strides()],
        [ld.offset(), ls.offset()],
    );
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1, 1] => runs.for_each(|[od, os]| {
            for (d, &s) in dst[od..od + len].iter_mut().zip(&src[os..os + len]) {
                f(d, s);
            }
        }),
        [1, 0] => runs.for_each(|[od, os]| {
            let s = src[os];
            for d in &mut dst[od..od + len] {
                f(d, s);
            }
        }),
        [sd, ss] => runs.for_each(|[od, os]| {
            for i in 0..len {
                f(&mut dst[od + i * sd], src[os + i * ss]);
            }
        }),
    }
}

/// Like [`zip_into`], but runs where both views are contiguous go through the slice
/// kernel `run` (which must agree with `f`).
#[inline]
pub(crate) fn zip_runs<D, S: Copy>(
    dst: &mut [D],
    ld: &Layout,
    src: &[S],
    ls: &Layout,
    f: impl Fn(&mut D, S),
    run: impl Fn(&mut [D], &[S]) -> kernels::Result<()>,
) -> kernels::Result<()> {
    let runs = Runs::new(
        ld.dims(),
        [ld.strides(), ls.strides()],
        [ld.offset(), ls.offset()],
    );
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1, 1] => runs.try_for_each(|[od, os]| run(&mut dst[od..od + len], &src[os..os + len])),
        _ => {
            zip_into(dst, ld, src, ls, f);
            Ok(())
        }
    }
}

/// Like [`update`], but contiguous runs go through the slice kernel `run`.
#[inline]
pub(crate) fn update_runs<D>(
    dst: &mut [D],
    ld: &Layout,
    f: impl Fn(&mut D),
    run: impl Fn(&mut [D]),
) {
    let runs = Runs::new(ld.dims(), [ld.strides()], [ld.offset()]);
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1] => runs.for_each(|[o]| run(&mut dst[o..o + len])),
        _ => update(dst, ld, f),
    }
}

/// `f(&mut dst[i])` for every element of a view (no stride-0 dims of size > 1).
#[inline]
pub(crate) fn update<D>(dst: &mut [D], ld: &Layout, f: impl Fn(&mut D)) {
    let runs = Runs::new(ld.dims(), [ld.strides()], [ld.offset()]);
    let len = runs.inner_len();
    match runs.inner_strides() {
        [1] => runs.for_each(|[o]| dst[o..o + len].iter_mut().for_each(&f)),
        [s] => runs.for_each(|[o]| (0..len).for_each(|i| f(&mut dst[o + i * s]))),
    }
}
