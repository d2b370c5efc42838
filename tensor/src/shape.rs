//! Tensor shapes and NumPy broadcasting.

use std::fmt;

use crate::error::{Result, TensorError};

/// The sizes of a tensor's dimensions, outermost first. Rank 0 (no dims) is a scalar.
///
/// Built from anything dimension-like through `From`, which is how every constructor
/// takes its shape (`impl Into<Shape>`):
///
/// ```
/// use tensor::Shape;
/// let s = Shape::from([2, 3]);
/// assert_eq!(s.dims(), &[2, 3]);
/// assert_eq!(s.elem_count(), 6);
/// assert_eq!(s.to_string(), "[2, 3]");
/// assert_eq!(Shape::from(()).rank(), 0);
/// assert_eq!(Shape::from(vec![4, 1]), Shape::from(&[4usize, 1][..]));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// The dimension sizes, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (the product of the dims; 1 for a scalar). Saturates at
    /// `usize::MAX` instead of overflowing; see [`Shape::checked_elem_count`].
    pub fn elem_count(&self) -> usize {
        self.checked_elem_count().unwrap_or(usize::MAX)
    }

    /// Number of elements, or `None` if the product of the dims overflows `usize`.
    pub fn checked_elem_count(&self) -> Option<usize> {
        if self.is_empty() {
            return Some(0);
        }
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Whether the shape holds no elements (some dim is 0).
    pub fn is_empty(&self) -> bool {
        self.0.contains(&0)
    }

    /// The row-major ("C-contiguous") strides of this shape, in elements: the last dim
    /// has stride 1 and each dim's stride is the product of the sizes after it (a size-0
    /// dim counts as 1).
    ///
    /// ```
    /// use tensor::Shape;
    /// assert_eq!(Shape::from([2, 3, 4]).contiguous_strides(), vec![12, 4, 1]);
    /// ```
    pub fn contiguous_strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.0.len()];
        let mut acc = 1;
        for (s, &d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            // Like PyTorch, an empty dim counts as 1 here so no stride becomes 0 (which
            // would read as a broadcast dim).
            acc *= d.max(1);
        }
        strides
    }

    /// The shape two shapes broadcast to under NumPy rules: align the dims on the
    /// right; each pair must be equal or contain a 1, and the result takes the larger.
    /// Missing leading dims count as 1. `op` names the caller in the error.
    ///
    /// ```
    /// use tensor::Shape;
    /// let s = Shape::broadcast(&Shape::from([2, 1, 3]), &Shape::from([4, 1]), "add").unwrap();
    /// assert_eq!(s.dims(), &[2, 4, 3]);
    /// let err = Shape::broadcast(&Shape::from([2, 3]), &Shape::from([4]), "add").unwrap_err();
    /// assert_eq!(err.to_string(), "add: shapes [2, 3] and [4] cannot be broadcast together");
    /// ```
    pub fn broadcast(lhs: &Shape, rhs: &Shape, op: &'static str) -> Result<Shape> {
        if lhs == rhs {
            return Ok(lhs.clone());
        }
        let rank = lhs.rank().max(rhs.rank());
        let mut out = vec![0; rank];
        for (i, o) in out.iter_mut().enumerate() {
            let a = dim_from_right(lhs, rank - 1 - i);
            let b = dim_from_right(rhs, rank - 1 - i);
            *o = if a == b || b == 1 {
                a
            } else if a == 1 {
                b
            } else {
                return Err(TensorError::Broadcast {
                    op,
                    lhs: lhs.clone(),
                    rhs: rhs.clone(),
                });
            };
        }
        Ok(Shape(out))
    }

    /// Whether `self` broadcasts to `target` (every dim of `self`, aligned on the right,
    /// equals the target's or is 1, and `self` has no more dims than `target`).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        self.rank() <= target.rank()
            && self
                .0
                .iter()
                .rev()
                .zip(target.0.iter().rev())
                .all(|(&s, &t)| s == t || s == 1)
    }

    /// Checks `dim < rank`, naming `op` in the error.
    pub(crate) fn check_dim(&self, dim: usize, op: &'static str) -> Result<()> {
        if dim < self.rank() {
            Ok(())
        } else {
            Err(TensorError::DimOutOfRange {
                op,
                dim,
                rank: self.rank(),
            })
        }
    }

    /// Consumes the shape, returning its dims.
    pub fn into_dims(self) -> Vec<usize> {
        self.0
    }
}

/// Size of the `i`-th dim counted from the right (0 = last), 1 past the front.
fn dim_from_right(s: &Shape, i: usize) -> usize {
    if i < s.rank() {
        s.0[s.rank() - 1 - i]
    } else {
        1
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&Vec<usize>> for Shape {
    fn from(v: &Vec<usize>) -> Self {
        Shape(v.clone())
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(v: &[usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape(Vec::new())
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules() {
        let b = |a: &[usize], c: &[usize]| Shape::broadcast(&a.into(), &c.into(), "t");
        assert_eq!(b(&[3], &[]).unwrap().dims(), &[3]);
        assert_eq!(b(&[1], &[0]).unwrap().dims(), &[0]);
        assert_eq!(b(&[5, 1, 2], &[3, 1]).unwrap().dims(), &[5, 3, 2]);
        assert!(b(&[2], &[3]).is_err());
        assert!(Shape::from([3, 1]).broadcasts_to(&Shape::from([2, 3, 4])));
        assert!(!Shape::from([2, 3, 4]).broadcasts_to(&Shape::from([3, 4])));
    }

    #[test]
    fn strides_of_scalar_and_empty() {
        assert!(Shape::from(()).contiguous_strides().is_empty());
        assert_eq!(Shape::from(()).elem_count(), 1);
        assert_eq!(Shape::from([2, 0, 3]).contiguous_strides(), vec![3, 3, 1]);
        assert!(Shape::from([2, 0]).is_empty());
    }
}
