//! Merging neighbouring cells when a grid has more cells than the picture has pixels.
//!
//! A heat map of 5000 recorded batches drawn 400 pixels wide cannot show every batch;
//! drawing 5000 overlapping rectangles would let the last one win each pixel. Instead
//! the figures group neighbours into at most one cell per pixel and show an average.

/// Splits `0..n` into at most `max_groups` contiguous, non-empty, nearly equal ranges
/// (half-open), covering every index exactly once.
pub(crate) fn groups(n: usize, max_groups: usize) -> Vec<(usize, usize)> {
    let count = n.min(max_groups.max(1));
    (0..count)
        .map(|g| (g * n / count, (g + 1) * n / count))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cover_everything_once() {
        assert_eq!(groups(5, 10), vec![(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]);
        let g = groups(1000, 7);
        assert_eq!(g.len(), 7);
        assert_eq!(g.first().map(|r| r.0), Some(0));
        assert_eq!(g.last().map(|r| r.1), Some(1000));
        assert!(g.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
    }
}
