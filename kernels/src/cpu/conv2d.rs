//! Convolution (NCHW) forward and backward kernels.
