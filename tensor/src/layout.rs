//! How a tensor's logical elements map onto its storage: shape, strides and offset.
//!
//! Every view op (narrow, permute, expand, ...) is an O(rank) rewrite of a [`Layout`];
//! the storage is shared and untouched. Element `(i0, i1, ..)` lives at
//! `offset + i0 * strides[0] + i1 * strides[1] + ..` in the storage. Expanded
//! (broadcast) dims have stride 0.

use crate::error::{Result, TensorError};
use crate::shape::Shape;
use crate::strided::Runs;

/// Shape, strides (in elements) and storage offset of a tensor view.
///
/// ```
/// use tensor::{Layout, Shape};
/// let l = Layout::contiguous(Shape::from([2, 3]));
/// assert_eq!(l.strides(), &[3, 1]);
/// assert!(l.is_contiguous());
/// // A contiguous layout is one block covering all six elements.
/// assert_eq!(l.blocks().collect::<Vec<_>>(), vec![(0, 6)]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    shape: Shape,
    strides: Vec<usize>,
    offset: usize,
}

impl Layout {
    /// The row-major layout of `shape` starting at storage offset 0.
    pub fn contiguous(shape: Shape) -> Self {
        Self::contiguous_with_offset(shape, 0)
    }

    /// The row-major layout of `shape` starting at `offset`.
    pub fn contiguous_with_offset(shape: Shape, offset: usize) -> Self {
        let strides = shape.contiguous_strides();
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// A layout with explicit strides; errors if the stride count differs from the rank.
    pub fn new(shape: Shape, strides: Vec<usize>, offset: usize) -> Result<Self> {
        if strides.len() != shape.rank() {
            return Err(TensorError::invalid(
                "Layout::new",
                format!(
                    "{} strides given for shape {} of rank {}",
                    strides.len(),
                    shape,
                    shape.rank()
                ),
            ));
        }
        Ok(Layout {
            shape,
            strides,
            offset,
        })
    }

    /// The logical shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The logical dims (same as `shape().dims()`).
    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    /// Storage distance between neighbours along each dim, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Storage index of the first element.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether the elements are densely packed in row-major order, so the view is the
    /// storage range `offset..offset + elem_count`. Strides of size-1 dims are ignored.
    pub fn is_contiguous(&self) -> bool {
        if self.shape.is_empty() {
            return true;
        }
        let mut expected = 1;
        for (&d, &s) in self.shape.dims().iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The dim order in which this layout is *dense*: `Some(perm)` when permuting the
    /// dims by `perm` (new dim `i` is old dim `perm[i]`, as [`Tensor::permute`]) gives a
    /// contiguous layout, `None` when no order does, i.e. the elements leave gaps in
    /// the storage (a narrow) or share slots (an expanded dim, or two dims of size > 1
    /// with the same stride).
    ///
    /// A dense layout is a contiguous one viewed through a permutation, like a tensor
    /// of logical shape `[N, C, H, W]` stored as `[C, H, W, N]` (batch-minor). The
    /// elementwise ops use this to run on the contiguous permuted view, at slice speed,
    /// and to return their result with the input's strides (as PyTorch preserves
    /// memory formats) instead of a row-major copy.
    ///
    /// Dims are ordered by decreasing stride. A size-1 dim may go anywhere; it is put
    /// just inside the dims of size > 1 with its stride (where a contiguous layout
    /// would give it that stride), and size-1 dims of equal stride keep their order.
    /// A contiguous layout (every empty or rank-0 layout included) gets the identity.
    ///
    /// ```
    /// use tensor::{Layout, Shape};
    /// // [N, C, H, W] = [2, 3, 4, 5] stored as [C, H, W, N].
    /// let l = Layout::new(Shape::from([2, 3, 4, 5]), vec![1, 40, 10, 2], 0).unwrap();
    /// assert_eq!(l.dense_permutation(), Some(vec![1, 2, 3, 0]));
    /// assert_eq!(Layout::contiguous(Shape::from([2, 3])).dense_permutation(), Some(vec![0, 1]));
    /// // Every other column of a [2, 4] matrix leaves gaps; an expanded row overlaps.
    /// assert_eq!(Layout::new(Shape::from([2, 2]), vec![4, 2], 0).unwrap().dense_permutation(), None);
    /// assert_eq!(Layout::new(Shape::from([2, 3]), vec![0, 1], 0).unwrap().dense_permutation(), None);
    /// ```
    ///
    /// [`Tensor::permute`]: crate::Tensor::permute
    pub fn dense_permutation(&self) -> Option<Vec<usize>> {
        let rank = self.shape.rank();
        if self.is_contiguous() {
            return Some((0..rank).collect());
        }
        let dims = self.shape.dims();
        let mut perm: Vec<usize> = (0..rank).collect();
        // Larger strides outside; on a tie the size-1 dims inside; then the old order.
        perm.sort_by_key(|&d| (std::cmp::Reverse(self.strides[d]), dims[d] == 1, d));
        // Contiguous after the permutation: each dim of size > 1, innermost first, has
        // the stride that is the product of the sizes inside it.
        let mut expected = 1usize;
        for &d in perm.iter().rev().filter(|&&d| dims[d] != 1) {
            if self.strides[d] != expected {
                return None;
            }
            expected = expected.checked_mul(dims[d])?;
        }
        Some(perm)
    }

    /// Whether some element occupies its storage slot together with another (an
    /// expanded dim of size > 1 with stride 0). Such a view cannot be written in place.
    pub fn has_broadcast_dims(&self) -> bool {
        self.shape
            .dims()
            .iter()
            .zip(&self.strides)
            .any(|(&d, &s)| d > 1 && s == 0)
    }

    /// One past the largest storage index the layout touches (`offset` if it is empty).
    pub fn storage_end(&self) -> usize {
        if self.shape.is_empty() {
            return self.offset;
        }
        self.offset
            + self
                .shape
                .dims()
                .iter()
                .zip(&self.strides)
                .map(|(&d, &s)| (d - 1) * s)
                .sum::<usize>()
            + 1
    }

    /// The contiguous runs of this layout in logical order, as `(storage offset, len)`.
    ///
    /// Trailing dims that are contiguous with each other are merged, so a contiguous
    /// tensor is a single run and a narrow along dim 0 is a single run; when the last
    /// dim is strided (e.g. a transpose) each element is its own run of length 1.
    ///
    /// ```
    /// use tensor::{Layout, Shape};
    /// // Columns 1..3 of a 2 x 4 row-major matrix: two runs of two.
    /// let l = Layout::new(Shape::from([2, 2]), vec![4, 1], 1).unwrap();
    /// assert_eq!(l.blocks().collect::<Vec<_>>(), vec![(1, 2), (5, 2)]);
    /// ```
    pub fn blocks(&self) -> Blocks {
        let runs = Runs::new(self.shape.dims(), [&self.strides], [self.offset]);
        let (dims, [strides]) = runs.parts();
        let n = dims.len() - 1;
        // With a unit inner stride the inner dim is the block; otherwise every
        // coalesced dim is outer and each element is a block of length 1.
        let (block_len, outer_dims, outer_strides) = if strides[n] == 1 {
            (dims[n], dims[..n].to_vec(), strides[..n].to_vec())
        } else {
            (1, dims.to_vec(), strides.to_vec())
        };
        Blocks {
            block_len,
            index: vec![0; outer_dims.len()],
            outer_dims,
            outer_strides,
            next: (!self.shape.is_empty()).then_some(self.offset),
        }
    }

    // ----- view transforms (used by the view ops in `ops::view`) -----

    /// The layout of `narrow(dim, start, len)`.
    pub(crate) fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        const OP: &str = "narrow";
        self.shape.check_dim(dim, OP)?;
        let size = self.shape.dims()[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "range {start}..{} does not fit in dimension {dim} of size {size}",
                    start.saturating_add(len)
                ),
            ));
        }
        let mut dims = self.shape.dims().to_vec();
        dims[dim] = len;
        Ok(Layout {
            shape: dims.into(),
            strides: self.strides.clone(),
            offset: if len == 0 {
                self.offset
            } else {
                self.offset + start * self.strides[dim]
            },
        })
    }

    /// The layout of `select(dim, index)`: `dim` removed, offset advanced.
    pub(crate) fn select(&self, dim: usize, index: usize) -> Result<Layout> {
        const OP: &str = "select";
        self.shape.check_dim(dim, OP)?;
        let size = self.shape.dims()[dim];
        if index >= size {
            return Err(TensorError::IndexOutOfRange {
                op: OP,
                index,
                size,
                dim,
            });
        }
        let mut dims = self.shape.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.remove(dim);
        let stride = strides.remove(dim);
        Ok(Layout {
            shape: dims.into(),
            strides,
            offset: self.offset + index * stride,
        })
    }

    /// The layout with dims reordered: new dim `i` is old dim `perm[i]`.
    pub(crate) fn permute(&self, perm: &[usize]) -> Result<Layout> {
        const OP: &str = "permute";
        let rank = self.shape.rank();
        if perm.len() != rank {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "permutation {perm:?} has {} entries but the tensor of shape {} has rank {rank}",
                    perm.len(),
                    self.shape
                ),
            ));
        }
        let mut seen = vec![false; rank];
        for &p in perm {
            self.shape.check_dim(p, OP)?;
            if std::mem::replace(&mut seen[p], true) {
                return Err(TensorError::invalid(
                    OP,
                    format!("permutation {perm:?} repeats dimension {p}"),
                ));
            }
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.shape.dims()[p]).collect();
        let strides = perm.iter().map(|&p| self.strides[p]).collect();
        Ok(Layout {
            shape: dims.into(),
            strides,
            offset: self.offset,
        })
    }

    /// The layout with dims `d0` and `d1` swapped.
    pub(crate) fn transpose(&self, d0: usize, d1: usize) -> Result<Layout> {
        const OP: &str = "transpose";
        self.shape.check_dim(d0, OP)?;
        self.shape.check_dim(d1, OP)?;
        let mut dims = self.shape.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.swap(d0, d1);
        strides.swap(d0, d1);
        Ok(Layout {
            shape: dims.into(),
            strides,
            offset: self.offset,
        })
    }

    /// The layout broadcast to `target` (NumPy rules, new leading dims allowed):
    /// expanded dims get stride 0.
    pub(crate) fn broadcast_as(&self, target: &Shape, op: &'static str) -> Result<Layout> {
        if &self.shape == target {
            return Ok(self.clone());
        }
        if target.checked_elem_count().is_none() {
            return Err(TensorError::invalid(
                op,
                format!("shape {target} has more elements than usize can count"),
            ));
        }
        let rank = target.rank();
        let src_rank = self.shape.rank();
        let err = || TensorError::Broadcast {
            op,
            lhs: self.shape.clone(),
            rhs: target.clone(),
        };
        if src_rank > rank {
            return Err(err());
        }
        let lead = rank - src_rank;
        let mut strides = vec![0; rank];
        for (i, (&t, s)) in target.dims().iter().zip(strides.iter_mut()).enumerate() {
            if i < lead {
                continue;
            }
            let d = self.shape.dims()[i - lead];
            if d == t {
                *s = self.strides[i - lead];
            } else if d != 1 {
                return Err(err());
            }
        }
        Ok(Layout {
            shape: target.clone(),
            strides,
            offset: self.offset,
        })
    }

    /// The layout with the size-1 dim `dim` removed.
    pub(crate) fn squeeze(&self, dim: usize) -> Result<Layout> {
        const OP: &str = "squeeze";
        self.shape.check_dim(dim, OP)?;
        let size = self.shape.dims()[dim];
        if size != 1 {
            return Err(TensorError::invalid(
                OP,
                format!(
                    "dimension {dim} of shape {} has size {size}, only a size-1 dimension can be squeezed",
                    self.shape
                ),
            ));
        }
        let mut dims = self.shape.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.remove(dim);
        strides.remove(dim);
        Ok(Layout {
            shape: dims.into(),
            strides,
            offset: self.offset,
        })
    }

    /// The layout with a new size-1 dim inserted before `dim` (`dim <= rank`).
    pub(crate) fn unsqueeze(&self, dim: usize) -> Result<Layout> {
        let rank = self.shape.rank();
        if dim > rank {
            return Err(TensorError::DimOutOfRange {
                op: "unsqueeze",
                dim,
                rank: rank + 1,
            });
        }
        let stride = if dim < rank {
            self.strides[dim] * self.shape.dims()[dim]
        } else {
            1
        };
        let mut dims = self.shape.dims().to_vec();
        let mut strides = self.strides.clone();
        dims.insert(dim, 1);
        strides.insert(dim, stride);
        Ok(Layout {
            shape: dims.into(),
            strides,
            offset: self.offset,
        })
    }

    /// The layout of the same elements as `target` without copying, if strides can
    /// express it (PyTorch's `computeStride` algorithm); `None` if a copy is needed.
    /// The caller has checked that the element counts agree.
    pub(crate) fn reshaped(&self, target: &Shape) -> Option<Layout> {
        if self.is_contiguous() || self.shape.is_empty() {
            return Some(Layout::contiguous_with_offset(target.clone(), self.offset));
        }
        let old = self.shape.dims();
        let new = target.dims();
        let mut new_strides = vec![0usize; new.len()];
        let mut view_d = new.len() as isize - 1;
        // Stride of the innermost dim of the current chunk of old dims.
        let mut chunk_base_stride = *self.strides.last()?;
        let mut tensor_numel = 1usize;
        let mut view_numel = 1usize;
        for tensor_d in (0..old.len()).rev() {
            tensor_numel *= old[tensor_d];
            // A chunk ends where the next outer old dim is not contiguous with it.
            let chunk_ends = tensor_d == 0
                || (old[tensor_d - 1] != 1
                    && self.strides[tensor_d - 1] != tensor_numel * chunk_base_stride);
            if chunk_ends {
                while view_d >= 0 && (view_numel < tensor_numel || new[view_d as usize] == 1) {
                    new_strides[view_d as usize] = view_numel * chunk_base_stride;
                    view_numel *= new[view_d as usize];
                    view_d -= 1;
                }
                if view_numel != tensor_numel {
                    return None;
                }
                if tensor_d > 0 {
                    chunk_base_stride = self.strides[tensor_d - 1];
                    tensor_numel = 1;
                    view_numel = 1;
                }
            }
        }
        if view_d != -1 {
            return None;
        }
        Some(Layout {
            shape: target.clone(),
            strides: new_strides,
            offset: self.offset,
        })
    }
}

/// Iterator over the contiguous runs of a [`Layout`]: `(storage offset, len)` pairs in
/// logical order. Created by [`Layout::blocks`].
#[derive(Clone, Debug)]
pub struct Blocks {
    block_len: usize,
    outer_dims: Vec<usize>,
    outer_strides: Vec<usize>,
    index: Vec<usize>,
    next: Option<usize>,
}

impl Blocks {
    /// The length every block has.
    pub fn block_len(&self) -> usize {
        self.block_len
    }
}

impl Iterator for Blocks {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let current = self.next?;
        // Advance the odometer over the outer dims.
        let mut offset = current;
        let mut d = self.outer_dims.len();
        self.next = loop {
            if d == 0 {
                break None;
            }
            d -= 1;
            self.index[d] += 1;
            offset += self.outer_strides[d];
            if self.index[d] < self.outer_dims[d] {
                break Some(offset);
            }
            offset -= self.outer_strides[d] * self.outer_dims[d];
            self.index[d] = 0;
        };
        Some((current, self.block_len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_along_dim0_is_one_block() {
        let l = Layout::contiguous(Shape::from([4, 3]))
            .narrow(0, 1, 2)
            .unwrap();
        assert_eq!(l.blocks().collect::<Vec<_>>(), vec![(3, 6)]);
        assert!(l.is_contiguous());
    }

    #[test]
    fn transposed_blocks_are_single_elements() {
        let l = Layout::contiguous(Shape::from([2, 3]))
            .transpose(0, 1)
            .unwrap();
        let offs: Vec<_> = l.blocks().collect();
        assert_eq!(offs, vec![(0, 1), (3, 1), (1, 1), (4, 1), (2, 1), (5, 1)]);
    }

    #[test]
    fn expanded_row_repeats() {
        let l = Layout::contiguous(Shape::from([3]))
            .broadcast_as(&Shape::from([2, 3]), "t")
            .unwrap();
        assert_eq!(l.strides(), &[0, 1]);
        assert_eq!(l.blocks().collect::<Vec<_>>(), vec![(0, 3), (0, 3)]);
        assert!(l.has_broadcast_dims());
    }

    #[test]
    fn reshape_of_transposed_needs_copy_but_split_does_not() {
        let t = Layout::contiguous(Shape::from([2, 3]))
            .transpose(0, 1)
            .unwrap();
        assert!(t.reshaped(&Shape::from([6])).is_none());
        assert_eq!(
            t.reshaped(&Shape::from([3, 1, 2])).unwrap().strides(),
            &[1, 6, 3]
        );
        let n = Layout::contiguous(Shape::from([4, 6]))
            .narrow(1, 0, 4)
            .unwrap();
        assert_eq!(
            n.reshaped(&Shape::from([4, 2, 2])).unwrap().strides(),
            &[6, 2, 1]
        );
    }

    /// A batch-minor `[N, C, H, W]` layout: `[C, H, W, N]` contiguous, permuted.
    fn batch_minor(n: usize, c: usize, h: usize, w: usize) -> Layout {
        Layout::contiguous(Shape::from([c, h, w, n]))
            .permute(&[3, 0, 1, 2])
            .unwrap()
    }

    #[test]
    fn dense_permutation_of_batch_minor_layouts() {
        for (n, c, h, w) in [(17, 3, 5, 5), (3, 17, 1, 1), (1, 3, 17, 1), (17, 1, 3, 3)] {
            let l = batch_minor(n, c, h, w);
            let perm = l.dense_permutation().unwrap();
            let p = l.permute(&perm).unwrap();
            assert!(p.is_contiguous(), "{l:?} {perm:?}");
            if !l.is_contiguous() {
                // Size-1 dims land where a contiguous layout has their stride.
                assert_eq!(p.strides(), p.shape().contiguous_strides(), "{l:?}");
            }
        }
        assert_eq!(
            batch_minor(17, 3, 5, 5).dense_permutation(),
            Some(vec![1, 2, 3, 0])
        );
        assert_eq!(
            batch_minor(3, 17, 1, 1).dense_permutation(),
            Some(vec![1, 2, 3, 0])
        );
    }

    #[test]
    fn dense_permutation_is_the_identity_when_contiguous() {
        for dims in [vec![], vec![3], vec![1, 17, 1], vec![2, 0, 3]] {
            let rank = dims.len();
            let l = Layout::contiguous(Shape::from(dims));
            assert_eq!(l.dense_permutation(), Some((0..rank).collect()));
        }
        // Size-1 dims with odd strides do not stop a layout being contiguous.
        let l = Layout::new(Shape::from([3, 1, 2]), vec![2, 99, 1], 5).unwrap();
        assert_eq!(l.dense_permutation(), Some(vec![0, 1, 2]));
    }

    #[test]
    fn dense_permutation_rejects_gaps_and_overlaps() {
        let none = |dims: &[usize], strides: Vec<usize>| {
            Layout::new(Shape::from(dims.to_vec()), strides, 0)
                .unwrap()
                .dense_permutation()
        };
        // Gaps: a narrowed inner dim, a stepped dim.
        assert_eq!(none(&[3, 2], vec![1, 4]), None);
        assert_eq!(none(&[2, 3], vec![1, 3]), None);
        // Overlaps: an expanded dim, two dims of size > 1 with one stride.
        assert_eq!(none(&[3, 2], vec![0, 1]), None);
        assert_eq!(none(&[2, 2], vec![1, 1]), None);
        // A transposed matrix is dense; a size-1 dim with stride 0 is harmless.
        assert_eq!(none(&[3, 2], vec![1, 3]), Some(vec![1, 0]));
        assert_eq!(none(&[3, 1, 2], vec![1, 0, 3]), Some(vec![2, 0, 1]));
    }

    #[test]
    fn reshape_drops_trailing_ones_of_batch_minor_as_a_view() {
        // [N, 10, 1, 1] with strides [1, N, N, N] (a batch-minor 1 x 1 feature map).
        for n in [3, 17] {
            let l = batch_minor(n, 10, 1, 1);
            let r = l.reshaped(&Shape::from([n, 10])).unwrap();
            assert_eq!(r.strides(), &[1, n], "n = {n}");
        }
        // With N = 1 the layout is contiguous.
        let one = batch_minor(1, 10, 1, 1).reshaped(&Shape::from([1, 10]));
        assert!(one.unwrap().is_contiguous());
    }

    #[test]
    fn empty_and_scalar_blocks() {
        assert_eq!(Layout::contiguous(Shape::from([0, 3])).blocks().count(), 0);
        assert_eq!(
            Layout::contiguous_with_offset(Shape::from(()), 4)
                .blocks()
                .collect::<Vec<_>>(),
            vec![(4, 1)]
        );
        assert_eq!(Layout::contiguous(Shape::from([2, 0])).storage_end(), 0);
    }
}
