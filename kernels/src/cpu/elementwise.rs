//! Elementwise maps over contiguous slices (binary, scalar, unary and activation backward), SIMD-dispatched.
