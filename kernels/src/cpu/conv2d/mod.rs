//! 2-d convolution (NCHW) forward and backward kernels, in f32 (fast path) and f64 (the
//! exact path gradient checks use).
//!
//! Layouts are PyTorch's: input `(N, C_in, H, W)`, weight `(C_out, C_in / groups, kH,
//! kW)`, bias `(C_out)`, output `(N, C_out, H_out, W_out)`, all dense row-major. A
//! [`Conv2dShape`] validates every size once (channels divisible by groups, kernel no
//! larger than the padded input, no zero sizes) and computes the output size; each kernel
//! then checks its slice lengths against it.
//!
//! # How the kernels work
//!
//! Two algorithms, chosen per call by [`Conv2dAlgo::Auto`] (the `*_with` entry points
//! force one; both agree to rounding):
//!
//! **Batch in lanes** (f32, small feature maps such as the lesson CNN's 28x28 .. 2x2).
//! A sub-chunk of 16 images is transposed (16 x 16 register transposes) into a
//! zero-padded `[C_in][H + 2pH][W + 2pW][16]` buffer, so the values one kernel tap of one
//! output position reads across the 16 images form one contiguous vector at offset
//! `pos[p] + tap[k]`. The forward pass and the input gradient are then direct
//! register-blocked FMA loops over those offsets (no im2col, no padding branches; any
//! stride, dilation and group count is only a different offset table). The weight
//! gradient is register-blocked over output channels and taps, accumulates per-lane
//! sums across each thread's images, and adds the lanes once at the end.
//!
//! **im2col + gemm** (f64, and f32 on large feature maps or tiny batches), on *chunks of
//! images* so small maps still give the gemm wide matrices. For a chunk of `B` images,
//! group `g`, `K = C_in/groups * kH * kW` and `P = H_out * W_out`:
//!
//! - forward: `cols (K x B*P) = im2col(x)`, `tmp (C_out x B*P) = W (C_out x K) @ cols`,
//!   then `tmp` is scattered to NCHW with the bias added on the way;
//! - input gradient: `dcols (K x B*P) = W^T @ gather(grad_out)`, then col2im scatter-adds
//!   `dcols` into the input gradient;
//! - weight gradient: `dW (C_out x K) += gather(grad_out) @ cols^T`, and the bias
//!   gradient is the row sum of `gather(grad_out)`.
//!
//! Chunks hold at most a few hundred KiB of scratch (so they stay in L2 and a batch of
//! 1024 never materialises a full im2col) and run in parallel with rayon. Scratch
//! buffers are kept per thread and reused across calls. The weight gradient accumulates
//! one partial sum per worker (contiguous runs of images) and adds them in a fixed
//! order, so results are bitwise reproducible for a given rayon thread count.
//!
//! **Convolution + ReLU** ([`conv2d_relu_forward`], [`conv2d_relu_backward`]): on the
//! batch-in-lanes path the ReLU is applied to each sub-chunk of 16 images in scratch,
//! before the transpose back, with one bit per output value recording what passed
//! ([`relu_mask_len`]); the backward pass gates each packed sub-chunk of the output
//! gradient with those bits. Two elementwise passes over the whole activation go away,
//! and the values are those of the convolution followed by the elementwise ReLU.
//!
//! The SIMD level (`*_at` variants) selects the micro-kernels: hand-written AVX-512 and
//! AVX2 for the lanes path (portable Rust otherwise), and the gemm's for im2col.
//!
//! [`reference`](mod@reference) holds plain nested-loop f64 implementations the tests compare against.
//!
//! ```
//! use kernels::cpu::conv2d::{conv2d_forward, Conv2dParams, Conv2dShape};
//! // One 1-channel 3x3 image, one 2x2 kernel of ones, stride 1, no padding.
//! let params = Conv2dParams::default();
//! let shape = Conv2dShape::new([1, 1, 3, 3], [1, 1, 2, 2], params).unwrap();
//! assert_eq!(shape.output_dims(), [1, 1, 2, 2]);
//! let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
//! let w = [1.0f32; 4];
//! let mut y = vec![0.0f32; shape.output_len()];
//! conv2d_forward(&shape, &x, &w, Some(&[0.5]), &mut y).unwrap();
//! assert_eq!(y, [12.5, 16.5, 24.5, 28.5]);
//! ```

mod backward;
mod forward;
mod im2col;
mod lanes;
mod lanes_kernels;
mod params;
pub mod reference;
mod relu;

pub use backward::{
    conv2d_backward, conv2d_backward_at, conv2d_backward_input, conv2d_backward_input_at,
    conv2d_backward_input_with, conv2d_backward_weight, conv2d_backward_weight_at,
    conv2d_backward_weight_with, conv2d_backward_with,
};
pub use forward::{conv2d_forward, conv2d_forward_at, conv2d_forward_with};
pub use params::{Conv2dParams, Conv2dShape};
pub use relu::{
    conv2d_relu_backward, conv2d_relu_backward_at, conv2d_relu_forward, conv2d_relu_forward_at,
    relu_mask_len,
};

use std::cell::Cell;
use std::thread::LocalKey;

use crate::cpu::dispatch::SimdLevel;
use crate::cpu::gemm::{self, GemmScalar, MatMut, MatRef};
use crate::error::Result;

mod sealed {
    use super::*;

    /// Per-type plumbing the conv kernels need; sealed so that only f32 and f64 exist.
    pub trait Sealed: Sized + 'static {
        /// `C = alpha * A * B + beta * C` at `level`.
        fn gemm_at(
            level: SimdLevel,
            alpha: Self,
            a: MatRef<Self>,
            b: MatRef<Self>,
            beta: Self,
            c: MatMut<Self>,
        ) -> Result<()>;

        /// This thread's reusable scratch buffer.
        fn scratch() -> &'static LocalKey<Cell<Vec<Self>>>;

        /// The batch-in-lanes forward pass (followed by a ReLU, whose mask it writes,
        /// when given `relu_mask`), or `false` if this type has none.
        fn lanes_forward(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[Self],
            weight: &[Self],
            bias: Option<&[Self]>,
            relu_mask: Option<&mut [u16]>,
            out: &mut [Self],
        ) -> bool;

        /// The batch-in-lanes input gradient, or `false` if this type has none. With
        /// `relu_mask`, the convolution was followed by a ReLU with that mask and
        /// `grad_out` is the gradient of the ReLU's output.
        fn lanes_backward_input(
            level: SimdLevel,
            s: &Conv2dShape,
            grad_out: &[Self],
            relu_mask: Option<&[u16]>,
            weight: &[Self],
            grad_input: &mut [Self],
        ) -> bool;

        /// The batch-in-lanes weight gradient, or `false` if this type has none
        /// (`relu_mask` as in `lanes_backward_input`).
        fn lanes_backward_weight(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[Self],
            grad_out: &[Self],
            relu_mask: Option<&[u16]>,
            grad_weight: &mut [Self],
            grad_bias: Option<&mut [Self]>,
        ) -> bool;

        /// The batch-in-lanes input, weight and bias gradients in one pass (the output
        /// gradient transposed once), or `false` if this type has none (`relu_mask` as
        /// in `lanes_backward_input`).
        #[allow(clippy::too_many_arguments)]
        fn lanes_backward(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[Self],
            weight: &[Self],
            grad_out: &[Self],
            relu_mask: Option<&[u16]>,
            grad_input: &mut [Self],
            grad_weight: &mut [Self],
            grad_bias: Option<&mut [Self]>,
        ) -> bool;
    }

    thread_local! {
        static SCRATCH_F32: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
        static SCRATCH_F64: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
    }

    impl Sealed for f32 {
        fn gemm_at(
            level: SimdLevel,
            alpha: f32,
            a: MatRef<f32>,
            b: MatRef<f32>,
            beta: f32,
            c: MatMut<f32>,
        ) -> Result<()> {
            gemm::sgemm_at(level, alpha, a, b, beta, c)
        }

        fn scratch() -> &'static LocalKey<Cell<Vec<f32>>> {
            &SCRATCH_F32
        }

        fn lanes_forward(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[f32],
            weight: &[f32],
            bias: Option<&[f32]>,
            relu_mask: Option<&mut [u16]>,
            out: &mut [f32],
        ) -> bool {
            lanes::forward(level, s, input, weight, bias, relu_mask, out);
            true
        }

        fn lanes_backward_input(
            level: SimdLevel,
            s: &Conv2dShape,
            grad_out: &[f32],
            relu_mask: Option<&[u16]>,
            weight: &[f32],
            grad_input: &mut [f32],
        ) -> bool {
            lanes::backward_input(level, s, grad_out, relu_mask, weight, grad_input);
            true
        }

        fn lanes_backward_weight(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[f32],
            grad_out: &[f32],
            relu_mask: Option<&[u16]>,
            grad_weight: &mut [f32],
            grad_bias: Option<&mut [f32]>,
        ) -> bool {
            lanes::backward_weight(level, s, input, grad_out, relu_mask, grad_weight, grad_bias);
            true
        }

        fn lanes_backward(
            level: SimdLevel,
            s: &Conv2dShape,
            input: &[f32],
            weight: &[f32],
            grad_out: &[f32],
            relu_mask: Option<&[u16]>,
            grad_input: &mut [f32],
            grad_weight: &mut [f32],
            grad_bias: Option<&mut [f32]>,
        ) -> bool {
            let input_grad = lanes::InputGrad { weight, grad_input };
            lanes::backward(
                level,
                s,
                input,
                grad_out,
                relu_mask,
                Some(input_grad),
                grad_weight,
                grad_bias,
            );
            true
        }
    }

    impl Sealed for f64 {
        fn gemm_at(
            level: SimdLevel,
            alpha: f64,
            a: MatRef<f64>,
            b: MatRef<f64>,
            beta: f64,
            c: MatMut<f64>,
        ) -> Result<()> {
            gemm::dgemm_at(level, alpha, a, b, beta, c)
        }

        fn scratch() -> &'static LocalKey<Cell<Vec<f64>>> {
            &SCRATCH_F64
        }

        fn lanes_forward(
            _: SimdLevel,
            _: &Conv2dShape,
            _: &[f64],
            _: &[f64],
            _: Option<&[f64]>,
            _: Option<&mut [u16]>,
            _: &mut [f64],
        ) -> bool {
            false
        }

        fn lanes_backward_input(
            _: SimdLevel,
            _: &Conv2dShape,
            _: &[f64],
            _: Option<&[u16]>,
            _: &[f64],
            _: &mut [f64],
        ) -> bool {
            false
        }

        fn lanes_backward_weight(
            _: SimdLevel,
            _: &Conv2dShape,
            _: &[f64],
            _: &[f64],
            _: Option<&[u16]>,
            _: &mut [f64],
            _: Option<&mut [f64]>,
        ) -> bool {
            false
        }

        fn lanes_backward(
            _: SimdLevel,
            _: &Conv2dShape,
            _: &[f64],
            _: &[f64],
            _: &[f64],
            _: Option<&[u16]>,
            _: &mut [f64],
            _: &mut [f64],
            _: Option<&mut [f64]>,
        ) -> bool {
            false
        }
    }
}

/// Which algorithm a convolution kernel runs (see the module docs). Results agree to
/// rounding whichever is used; the choice only affects speed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Conv2dAlgo {
    /// Batch-in-lanes for f32 on AVX2/AVX-512 when [`Conv2dShape`] describes small
    /// feature maps (padded input of at most 4096 values per image, weight of at most
    /// 65536 values, batch of at least 8), otherwise im2col + gemm. What the plain
    /// entry points use.
    #[default]
    Auto,
    /// im2col + gemm on chunks of images (the only algorithm for f64).
    Im2colGemm,
    /// 16 images per SIMD vector with a direct kernel (f32 only; f64 falls back to
    /// im2col + gemm). Any shape works, but large feature maps are faster with im2col.
    BatchLanes,
}

impl Conv2dAlgo {
    /// Whether to run the batch-in-lanes kernels for `shape` at `level` (a clamped level).
    fn lanes(self, shape: &Conv2dShape, level: SimdLevel) -> bool {
        match self {
            Conv2dAlgo::Auto => level >= SimdLevel::Avx2Fma && lanes::preferred(shape),
            Conv2dAlgo::Im2colGemm => false,
            Conv2dAlgo::BatchLanes => true,
        }
    }
}

/// Element types the convolution kernels are implemented for: `f32` (the fast path) and
/// `f64` (the exact path used by gradient checks). Sealed: no other type can implement it.
pub trait ConvScalar: GemmScalar + std::ops::AddAssign + PartialOrd + sealed::Sealed {}

impl ConvScalar for f32 {}
impl ConvScalar for f64 {}

/// Runs `f` on a scratch slice of `len` elements borrowed from this thread's cache.
///
/// The buffer is taken out of the thread-local slot for the duration of `f`, so a rayon
/// task that work-steals another conv task on the same thread (e.g. while the gemm waits
/// in a `join`) simply allocates its own buffer instead of aliasing this one. The
/// contents on entry are unspecified (left over from earlier calls); callers overwrite
/// what they read.
fn with_scratch<T: ConvScalar, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    let mut buf = T::scratch().with(Cell::take);
    if buf.len() < len {
        buf.resize(len, T::ZERO);
    }
    let result = f(&mut buf[..len]);
    T::scratch().with(|slot| {
        let cached = slot.take();
        // Keep the larger of the two buffers for the next call.
        slot.set(if cached.capacity() > buf.capacity() {
            cached
        } else {
            buf
        });
    });
    result
}

/// Number of images processed together, from a budget on the per-chunk scratch size
/// (`per_image` elements per image) and the number of chunks wanted for load balance.
fn images_per_chunk(batch: usize, per_image: usize, min_chunks: usize) -> usize {
    /// Scratch elements per chunk: ~512 KiB of f32, well inside a 2 MiB L2 together
    /// with the chunk's input and output.
    const CHUNK_BUDGET: usize = 128 * 1024;
    let by_memory = (CHUNK_BUDGET / per_image.max(1)).max(1);
    let by_balance = batch.div_ceil(min_chunks.max(1)).max(1);
    by_memory.min(by_balance)
}
