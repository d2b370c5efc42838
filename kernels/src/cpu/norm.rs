//! Batch normalisation and group normalisation forward/backward kernels.
