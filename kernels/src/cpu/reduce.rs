//! Reductions over contiguous slices and rows (sum, max, argmax, softmax rows).
