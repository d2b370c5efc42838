//! Fused one-pass statistics: moments, min/max, histogram, near-zero and saturation counts.
