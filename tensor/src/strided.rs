//! Joint iteration over several strided layouts of the same shape, as contiguous-ish
//! "runs": the engine under every elementwise op, copy, reduction and in-place update.
//!
//! The idea is NumPy's `nditer` coalescing (and candle's `StridedBlocks`, generalised
//! to several operands): drop size-1 dims, then merge each dim into the next inner one
//! whenever *every* operand steps through both as through one longer dim. What remains
//! is an outer odometer and one inner dimension whose per-operand strides are usually
//! 1 (contiguous) or 0 (broadcast). Kernels specialise on those inner strides once per
//! op, so a contiguous op is a single slice loop, a bias add is one loop per row, and a
//! column broadcast is a slice-times-scalar loop.

/// Several strided operands over one logical shape, coalesced for iteration.
#[derive(Clone, Debug)]
pub(crate) struct Runs<const N: usize> {
    /// Coalesced dims, outermost first; never empty (a scalar is `[1]`).
    dims: Vec<usize>,
    /// Per operand, the stride of each coalesced dim.
    strides: [Vec<usize>; N],
    /// Per operand, the storage offset of the first element.
    offsets: [usize; N],
    /// Whether the shape holds no elements (then there are no runs).
    empty: bool,
}

impl<const N: usize> Runs<N> {
    /// Coalesces `dims` walked by `N` operands with the given strides and offsets.
    pub(crate) fn new(dims: &[usize], strides: [&[usize]; N], offsets: [usize; N]) -> Self {
        let empty = dims.contains(&0);
        let mut out_dims: Vec<usize> = Vec::with_capacity(dims.len().max(1));
        let mut out_strides: [Vec<usize>; N] =
            std::array::from_fn(|_| Vec::with_capacity(dims.len().max(1)));
        for (d, &size) in dims.iter().enumerate() {
            if size == 1 {
                continue;
            }
            let mergeable = !out_dims.is_empty()
                && (0..N).all(|k| out_strides[k].last() == Some(&(strides[k][d] * size)));
            if mergeable {
                if let Some(last) = out_dims.last_mut() {
                    *last *= size;
                }
                for k in 0..N {
                    if let Some(last) = out_strides[k].last_mut() {
                        *last = strides[k][d];
                    }
                }
            } else {
                out_dims.push(size);
                for k in 0..N {
                    out_strides[k].push(strides[k][d]);
                }
            }
        }
        if out_dims.is_empty() {
            out_dims.push(1);
            for s in out_strides.iter_mut() {
                s.push(0);
            }
        }
        Runs {
            dims: out_dims,
            strides: out_strides,
            offsets,
            empty,
        }
    }

    /// The coalesced dims and, per operand, their strides.
    pub(crate) fn parts(&self) -> (&[usize], [&[usize]; N]) {
        (
            &self.dims,
            std::array::from_fn(|k| self.strides[k].as_slice()),
        )
    }

    /// Length of every run (the coalesced innermost dim).
    pub(crate) fn inner_len(&self) -> usize {
        self.dims.last().copied().unwrap_or(1)
    }

    /// Per operand, the stride between consecutive elements of a run.
    pub(crate) fn inner_strides(&self) -> [usize; N] {
        std::array::from_fn(|k| self.strides[k].last().copied().unwrap_or(0))
    }

    /// Number of runs (the product of the outer coalesced dims; 0 if empty).
    pub(crate) fn run_count(&self) -> usize {
        if self.empty {
            0
        } else {
            self.dims[..self.dims.len() - 1].iter().product()
        }
    }

    /// Calls `f` with each operand's starting offset, for every run in logical
    /// (row-major) order.
    #[inline]
    pub(crate) fn for_each(&self, mut f: impl FnMut([usize; N])) {
        let done: Result<(), std::convert::Infallible> = self.try_for_each(|o| {
            f(o);
            Ok(())
        });
        let Ok(()) = done;
    }

    /// Like [`Runs::for_each`], stopping at the first error `f` returns.
    #[inline]
    pub(crate) fn try_for_each<E>(
        &self,
        mut f: impl FnMut([usize; N]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.empty {
            return Ok(());
        }
        let outer = &self.dims[..self.dims.len() - 1];
        let mut offs = self.offsets;
        if outer.is_empty() {
            return f(offs);
        }
        let mut idx = vec![0usize; outer.len()];
        loop {
            f(offs)?;
            let mut d = outer.len();
            loop {
                if d == 0 {
                    return Ok(());
                }
                d -= 1;
                idx[d] += 1;
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o += s[d];
                }
                if idx[d] < outer[d] {
                    break;
                }
                for (o, s) in offs.iter_mut().zip(&self.strides) {
                    *o -= s[d] * outer[d];
                }
                idx[d] = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect<const N: usize>(r: &Runs<N>) -> Vec<[usize; N]> {
        let mut v = Vec::new();
        r.for_each(|o| v.push(o));
        v
    }

    #[test]
    fn contiguous_is_one_run() {
        let r = Runs::new(&[2, 3, 4], [&[12, 4, 1]], [5]);
        assert_eq!(r.inner_len(), 24);
        assert_eq!(r.inner_strides(), [1]);
        assert_eq!(collect(&r), vec![[5]]);
    }

    #[test]
    fn bias_broadcast_is_one_run_per_row() {
        // [2, 3] contiguous against a row vector expanded to [2, 3] (strides [0, 1]).
        let r = Runs::new(&[2, 3], [&[3, 1], &[0, 1]], [0, 0]);
        assert_eq!(r.inner_len(), 3);
        assert_eq!(collect(&r), vec![[0, 0], [3, 0]]);
    }

    #[test]
    fn transposed_runs_step_by_stride() {
        let r = Runs::new(&[3, 2], [&[1, 3]], [0]);
        assert_eq!(r.inner_len(), 2);
        assert_eq!(r.inner_strides(), [3]);
        assert_eq!(collect(&r), vec![[0], [1], [2]]);
    }

    #[test]
    fn scalar_and_empty() {
        let r = Runs::<1>::new(&[], [&[]], [7]);
        assert_eq!((r.inner_len(), r.run_count()), (1, 1));
        assert_eq!(collect(&r), vec![[7]]);
        let e = Runs::new(&[2, 0], [&[0, 1]], [0]);
        assert_eq!(e.run_count(), 0);
        assert!(collect(&e).is_empty());
    }
}
