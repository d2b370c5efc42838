//! conv2d kernels against the nested-loop f64 reference, at every SIMD level, in f32 and
//! f64; the reference backward against finite differences of the reference forward; and
//! the error paths.
//!
//! Tolerances are relative to a per-element magnitude bound: the same reference run on
//! absolute values (`sum |x| |w|` over the taps of each output), so a tolerance of `t`
//! means `|fast - reference| <= t * sum |terms|`.
//! - f64: `1e-12` (rounding of a dot product of at most a few thousand terms);
//! - f32: `2e-5` for the forward pass and the input gradient (dot products of at most
//!   `C_in * kH * kW` or `C_out * kH * kW` terms), `1e-4` for the weight and bias
//!   gradients, whose sums run over `N * H_out * W_out` terms.

use kernels::cpu::conv2d::{self, reference, Conv2dAlgo, Conv2dParams, Conv2dShape};
use kernels::cpu::dispatch::SimdLevel;
use kernels::KernelError;

/// A small deterministic generator (SplitMix64) so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

fn abs(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| x.abs()).collect()
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Asserts `|got - want| <= tol * bound` element-wise (plus a tiny absolute floor).
fn assert_close<T: Into<f64> + Copy>(what: &str, got: &[T], want: &[f64], bound: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &b)) in got.iter().zip(want).zip(bound).enumerate() {
        let g: f64 = g.into();
        let err = (g - w).abs();
        assert!(
            err <= tol * b + 1e-30,
            "{what}: element {i}: got {g}, want {w}, error {err:e} > {tol:e} * bound {b:e}"
        );
    }
}

/// Every algorithm: each must agree with the reference on every shape.
const ALGOS: [Conv2dAlgo; 3] = [
    Conv2dAlgo::Auto,
    Conv2dAlgo::Im2colGemm,
    Conv2dAlgo::BatchLanes,
];

/// Everything one case needs: the shape, random operands and reference results.
struct Case {
    shape: Conv2dShape,
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
    gy: Vec<f64>,
}

impl Case {
    fn new(shape: Conv2dShape, rng: &mut Rng) -> Self {
        Self {
            x: rng.vec(shape.input_len()),
            w: rng.vec(shape.weight_len()),
            b: rng.vec(shape.out_channels()),
            gy: rng.vec(shape.output_len()),
            shape,
        }
    }

    /// Runs the fast kernels with every algorithm at `level`.
    fn check(&self, level: SimdLevel) {
        for algo in ALGOS {
            self.check_with(level, algo);
        }
    }

    /// Runs the fast kernels in f64 and f32 at `level` with `algo` and compares with the
    /// reference.
    fn check_with(&self, level: SimdLevel, algo: Conv2dAlgo) {
        let s = &self.shape;
        let ctx = format!("{s:?} at {level} with {algo:?}");
        let mut y = vec![0.0; s.output_len()];
        let mut y_bound = y.clone();
        reference::conv2d_forward(s, &self.x, &self.w, Some(&self.b), &mut y).unwrap();
        reference::conv2d_forward(
            s,
            &abs(&self.x),
            &abs(&self.w),
            Some(&abs(&self.b)),
            &mut y_bound,
        )
        .unwrap();
        let mut gx = vec![0.0; s.input_len()];
        let mut gx_bound = gx.clone();
        reference::conv2d_backward_input(s, &self.gy, &self.w, &mut gx).unwrap();
        reference::conv2d_backward_input(s, &abs(&self.gy), &abs(&self.w), &mut gx_bound).unwrap();
        let (mut gw, mut gb) = (vec![0.0; s.weight_len()], vec![0.0; s.out_channels()]);
        let (mut gw_bound, mut gb_bound) = (gw.clone(), gb.clone());
        reference::conv2d_backward_weight(s, &self.x, &self.gy, &mut gw, Some(&mut gb)).unwrap();
        reference::conv2d_backward_weight(
            s,
            &abs(&self.x),
            &abs(&self.gy),
            &mut gw_bound,
            Some(&mut gb_bound),
        )
        .unwrap();

        // f64: the exact path.
        let mut out = vec![f64::NAN; s.output_len()];
        conv2d::conv2d_forward_with(level, algo, s, &self.x, &self.w, Some(&self.b), &mut out)
            .unwrap();
        assert_close(&format!("f64 forward {ctx}"), &out, &y, &y_bound, 1e-12);
        let mut out = vec![f64::NAN; s.input_len()];
        conv2d::conv2d_backward_input_with(level, algo, s, &self.gy, &self.w, &mut out).unwrap();
        assert_close(
            &format!("f64 grad input {ctx}"),
            &out,
            &gx,
            &gx_bound,
            1e-12,
        );
        let (mut ow, mut ob) = (
            vec![f64::NAN; s.weight_len()],
            vec![f64::NAN; s.out_channels()],
        );
        conv2d::conv2d_backward_weight_with(
            level,
            algo,
            s,
            &self.x,
            &self.gy,
            &mut ow,
            Some(&mut ob),
        )
        .unwrap();
        assert_close(
            &format!("f64 grad weight {ctx}"),
            &ow,
            &gw,
            &gw_bound,
            1e-12,
        );
        assert_close(&format!("f64 grad bias {ctx}"), &ob, &gb, &gb_bound, 1e-12);

        // f32: the fast path.
        let (x, w, b, gy) = (
            to_f32(&self.x),
            to_f32(&self.w),
            to_f32(&self.b),
            to_f32(&self.gy),
        );
        let mut out = vec![f32::NAN; s.output_len()];
        conv2d::conv2d_forward_with(level, algo, s, &x, &w, Some(&b), &mut out).unwrap();
        assert_close(&format!("f32 forward {ctx}"), &out, &y, &y_bound, 2e-5);
        let mut out = vec![f32::NAN; s.input_len()];
        conv2d::conv2d_backward_input_with(level, algo, s, &gy, &w, &mut out).unwrap();
        assert_close(&format!("f32 grad input {ctx}"), &out, &gx, &gx_bound, 2e-5);
        let (mut ow, mut ob) = (
            vec![f32::NAN; s.weight_len()],
            vec![f32::NAN; s.out_channels()],
        );
        conv2d::conv2d_backward_weight_with(level, algo, s, &x, &gy, &mut ow, Some(&mut ob))
            .unwrap();
        assert_close(&format!("f32 grad weight {ctx}"), &ow, &gw, &gw_bound, 1e-4);
        assert_close(&format!("f32 grad bias {ctx}"), &ob, &gb, &gb_bound, 1e-4);

        // Without bias: the forward adds nothing and grad_weight is unchanged.
        let mut y_nb = vec![0.0; s.output_len()];
        reference::conv2d_forward(s, &self.x, &self.w, None, &mut y_nb).unwrap();
        let mut out = vec![f32::NAN; s.output_len()];
        conv2d::conv2d_forward_with(level, algo, s, &x, &w, None, &mut out).unwrap();
        assert_close(
            &format!("f32 forward without bias {ctx}"),
            &out,
            &y_nb,
            &y_bound,
            2e-5,
        );
        let mut ow = vec![f32::NAN; s.weight_len()];
        conv2d::conv2d_backward_weight_with(level, algo, s, &x, &gy, &mut ow, None).unwrap();
        assert_close(
            &format!("f32 grad weight without bias {ctx}"),
            &ow,
            &gw,
            &gw_bound,
            1e-4,
        );

        // All gradients in one call: the same bits as the separate kernels.
        check_fused_backward(level, algo, s, &self.x, &self.w, &self.gy, f64::NAN, &ctx);
        check_fused_backward(level, algo, s, &x, &w, &gy, f32::NAN, &ctx);
    }
}

/// `conv2d_backward_with` (input, weight and bias gradients in one call, with and
/// without bias) gives exactly the bits of `conv2d_backward_input_with` and
/// `conv2d_backward_weight_with`.
#[allow(clippy::too_many_arguments)]
fn check_fused_backward<T: conv2d::ConvScalar + PartialEq + std::fmt::Debug>(
    level: SimdLevel,
    algo: Conv2dAlgo,
    s: &Conv2dShape,
    x: &[T],
    w: &[T],
    gy: &[T],
    nan: T,
    ctx: &str,
) {
    let mut gx = vec![nan; s.input_len()];
    conv2d::conv2d_backward_input_with(level, algo, s, gy, w, &mut gx).unwrap();
    let (mut gw, mut gb) = (vec![nan; s.weight_len()], vec![nan; s.out_channels()]);
    conv2d::conv2d_backward_weight_with(level, algo, s, x, gy, &mut gw, Some(&mut gb)).unwrap();
    for with_bias in [true, false] {
        let (mut fx, mut fw, mut fb) = (
            vec![nan; s.input_len()],
            vec![nan; s.weight_len()],
            vec![nan; s.out_channels()],
        );
        let bias = with_bias.then_some(&mut fb[..]);
        conv2d::conv2d_backward_with(level, algo, s, x, w, gy, &mut fx, &mut fw, bias).unwrap();
        let what = format!("fused backward (bias {with_bias}) {ctx}");
        assert_eq!(fx, gx, "grad input of {what}");
        assert_eq!(fw, gw, "grad weight of {what}");
        if with_bias {
            assert_eq!(fb, gb, "grad bias of {what}");
        }
    }
}

/// Up to `count` random valid shapes drawn from the awkward sizes, capped in work so the
/// nested-loop reference stays quick.
fn random_shapes(seed: u64, count: usize) -> Vec<Conv2dShape> {
    const SIZES: [usize; 5] = [1, 2, 3, 5, 17];
    let mut rng = Rng(seed);
    let mut shapes = Vec::new();
    let mut tries = 0;
    while shapes.len() < count {
        tries += 1;
        assert!(tries < 100_000, "could not draw {count} valid shapes");
        let groups = rng.pick(&[1, 1, 2]);
        let cin = rng.pick(&SIZES) * groups;
        let cout = rng.pick(&[1, 2, 3, 5]) * groups;
        let k = (rng.pick(&[1, 2, 3, 5]), rng.pick(&[1, 2, 3, 5]));
        let params = Conv2dParams {
            stride: (1 + rng.below(3), 1 + rng.below(3)),
            padding: (rng.below(3), rng.below(3)),
            dilation: (1 + rng.below(2), 1 + rng.below(2)),
            groups,
        };
        let input = [rng.pick(&SIZES), cin, rng.pick(&SIZES), rng.pick(&SIZES)];
        let weight = [cout, cin / groups, k.0, k.1];
        let Ok(shape) = Conv2dShape::new(input, weight, params) else {
            continue;
        };
        if shape.flops() > 400_000 || shape.input_len() > 20_000 {
            continue;
        }
        shapes.push(shape);
    }
    shapes
}

#[test]
fn random_awkward_shapes_match_reference_at_every_level() {
    let mut rng = Rng(7);
    for shape in random_shapes(1, 60) {
        let case = Case::new(shape, &mut rng);
        for level in SimdLevel::available() {
            case.check(level);
        }
    }
}

#[test]
fn lesson_cnn_layers_match_reference() {
    // The five convs of the lesson CNN (stride 2, padding k/2) at a small batch.
    let layers = [
        (1, 8, 5, 28),
        (8, 16, 3, 14),
        (16, 32, 3, 7),
        (32, 64, 3, 4),
        (64, 10, 3, 2),
    ];
    let mut rng = Rng(11);
    for (cin, cout, k, hw) in layers {
        let params = Conv2dParams {
            stride: (2, 2),
            padding: (k / 2, k / 2),
            ..Conv2dParams::default()
        };
        // 3 images: a partly filled vector; 20: one full vector of 16 and a tail.
        for batch in [3, 20] {
            let shape = Conv2dShape::new([batch, cin, hw, hw], [cout, cin, k, k], params).unwrap();
            let case = Case::new(shape, &mut rng);
            for level in SimdLevel::available() {
                case.check(level);
            }
        }
    }
}

/// Batches of many sub-chunks (149 images: nine full vectors of 16 and a tail of 5), so
/// that a forward task packs several sub-chunks into one scratch buffer and the
/// backward refills its packed slots over several rounds, zeroing each buffer's
/// padding once: the results still match the reference, with 1 and 2 threads.
#[test]
fn large_batches_reuse_packed_buffers_across_sub_chunks() {
    let mut rng = Rng(13);
    for (cin, cout, k, hw) in [(1, 8, 5, 28), (32, 64, 3, 4), (3, 5, 3, 9)] {
        let params = Conv2dParams {
            stride: (2, 2),
            padding: (k / 2, k / 2),
            ..Conv2dParams::default()
        };
        let shape = Conv2dShape::new([149, cin, hw, hw], [cout, cin, k, k], params).unwrap();
        let case = Case::new(shape, &mut rng);
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for level in SimdLevel::available() {
                    case.check(level);
                }
            });
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Many small images so that chunking and the weight-gradient lanes both kick in.
    let params = Conv2dParams {
        stride: (2, 1),
        padding: (1, 2),
        ..Conv2dParams::default()
    };
    let shape = Conv2dShape::new([37, 3, 6, 5], [4, 3, 3, 3], params).unwrap();
    let case = Case::new(shape, &mut Rng(3));
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| case.check(SimdLevel::detected()));
    }
}

/// Central differences of the reference forward, `d/dv sum(y * r)`, for every element
/// of `v` (x, w or b as chosen by `set`).
fn numeric_grad(shape: &Conv2dShape, case: &Case, which: usize, len: usize) -> Vec<f64> {
    let h = 1e-6;
    let loss = |x: &[f64], w: &[f64], b: &[f64]| {
        let mut y = vec![0.0; shape.output_len()];
        reference::conv2d_forward(shape, x, w, Some(b), &mut y).unwrap();
        y.iter().zip(&case.gy).map(|(a, r)| a * r).sum::<f64>()
    };
    (0..len)
        .map(|i| {
            let mut vals = [case.x.clone(), case.w.clone(), case.b.clone()];
            vals[which][i] += h;
            let up = loss(&vals[0], &vals[1], &vals[2]);
            vals[which][i] -= 2.0 * h;
            let down = loss(&vals[0], &vals[1], &vals[2]);
            (up - down) / (2.0 * h)
        })
        .collect()
}

#[test]
fn backward_matches_finite_differences_of_reference_forward() {
    let mut rng = Rng(5);
    let mut checked = 0;
    for shape in random_shapes(9, 30) {
        if shape.input_len() > 400 || shape.weight_len() > 200 {
            continue;
        }
        checked += 1;
        let case = Case::new(shape, &mut rng);
        let num_x = numeric_grad(&shape, &case, 0, shape.input_len());
        let num_w = numeric_grad(&shape, &case, 1, shape.weight_len());
        let num_b = numeric_grad(&shape, &case, 2, shape.out_channels());
        for level in SimdLevel::available() {
            let mut gx = vec![0.0; shape.input_len()];
            conv2d::conv2d_backward_input_at(level, &shape, &case.gy, &case.w, &mut gx).unwrap();
            let (mut gw, mut gb) = (
                vec![0.0; shape.weight_len()],
                vec![0.0; shape.out_channels()],
            );
            conv2d::conv2d_backward_weight_at(
                level,
                &shape,
                &case.x,
                &case.gy,
                &mut gw,
                Some(&mut gb),
            )
            .unwrap();
            for (what, got, want) in [("x", &gx, &num_x), ("w", &gw, &num_w), ("b", &gb, &num_b)] {
                for (g, n) in got.iter().zip(want.iter()) {
                    assert!(
                        (g - n).abs() <= 1e-6 * (1.0 + n.abs()),
                        "d loss / d {what} for {shape:?} at {level}: analytic {g}, numeric {n}"
                    );
                }
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} shapes were small enough to difference"
    );
}

#[test]
fn empty_batch_is_a_no_op_with_zero_weight_gradient() {
    let shape = Conv2dShape::new([0, 2, 4, 4], [3, 2, 3, 3], Conv2dParams::default()).unwrap();
    assert_eq!(shape.output_dims(), [0, 3, 2, 2]);
    let w = vec![1.0f32; shape.weight_len()];
    conv2d::conv2d_forward(&shape, &[], &w, None, &mut []).unwrap();
    conv2d::conv2d_backward_input(&shape, &[], &w, &mut []).unwrap();
    let (mut gw, mut gb) = (vec![f32::NAN; shape.weight_len()], vec![f32::NAN; 3]);
    conv2d::conv2d_backward_weight(&shape, &[], &[], &mut gw, Some(&mut gb)).unwrap();
    assert!(gw.iter().chain(&gb).all(|&v| v == 0.0));
}

fn shape_err(input: [usize; 4], weight: [usize; 4], params: Conv2dParams) -> String {
    let err = Conv2dShape::new(input, weight, params).unwrap_err();
    assert!(
        matches!(err, KernelError::InvalidArgument { op: "conv2d", .. }),
        "{err:?}"
    );
    err.to_string()
}

#[test]
fn invalid_shapes_are_rejected_with_the_values() {
    let p = Conv2dParams::default();
    let msg = shape_err(
        [1, 1, 2, 2],
        [1, 1, 5, 5],
        Conv2dParams {
            padding: (1, 1),
            ..p
        },
    );
    assert!(msg.contains("larger than the padded input 4"), "{msg}");
    assert!(msg.contains("5x5"), "{msg}");

    let msg = shape_err(
        [1, 1, 5, 5],
        [1, 1, 3, 3],
        Conv2dParams {
            dilation: (3, 1),
            ..p
        },
    );
    assert!(msg.contains("spans 7 along the height"), "{msg}");

    let msg = shape_err([1, 6, 5, 5], [4, 2, 3, 3], Conv2dParams { groups: 4, ..p });
    assert!(
        msg.contains("groups 4 must divide both input channels 6 and output channels 4"),
        "{msg}"
    );

    let msg = shape_err([1, 6, 5, 5], [4, 6, 3, 3], Conv2dParams { groups: 2, ..p });
    assert!(
        msg.contains("6 input channels per group") && msg.contains("needs 3"),
        "{msg}"
    );

    let msg = shape_err([1, 0, 5, 5], [4, 0, 3, 3], p);
    assert!(msg.contains("zero channel or spatial size"), "{msg}");
    let msg = shape_err([1, 1, 5, 5], [4, 1, 0, 3], p);
    assert!(msg.contains("has a zero size"), "{msg}");
    let msg = shape_err(
        [1, 1, 5, 5],
        [4, 1, 3, 3],
        Conv2dParams {
            stride: (0, 1),
            ..p
        },
    );
    assert!(msg.contains("stride (0, 1)"), "{msg}");
    let msg = shape_err([1, 1, 5, 5], [4, 1, 3, 3], Conv2dParams { groups: 0, ..p });
    assert!(msg.contains("groups 0"), "{msg}");
    let msg = shape_err([usize::MAX, 1, 5, 5], [4, 1, 3, 3], p);
    assert!(msg.contains("overflow"), "{msg}");
}

#[test]
fn wrong_slice_lengths_are_rejected() {
    let shape = Conv2dShape::new([2, 3, 5, 5], [4, 3, 3, 3], Conv2dParams::default()).unwrap();
    let (x, w, b) = (
        vec![0.0f32; shape.input_len()],
        vec![0.0f32; shape.weight_len()],
        [0.0f32; 4],
    );
    let mut y = vec![0.0f32; shape.output_len()];

    let err = conv2d::conv2d_forward(&shape, &x[1..], &w, None, &mut y).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        KernelError::SizeMismatch {
            op: "conv2d_forward",
            ..
        }
    ));
    assert!(
        msg.contains("input has 149 elements but input (N, C_in, H, W) needs 150"),
        "{msg}"
    );

    let msg = conv2d::conv2d_forward(&shape, &x, &w, Some(&b[..3]), &mut y)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("bias has 3 elements but bias (C_out) needs 4"),
        "{msg}"
    );
    let msg = conv2d::conv2d_forward(&shape, &x, &w[..5], None, &mut y)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("weight has 5 elements"), "{msg}");
    let msg = conv2d::conv2d_forward(&shape, &x, &w, None, &mut y[..1])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("output has 1 elements but output (N, C_out, H_out, W_out) needs 72"),
        "{msg}"
    );

    let mut gx = vec![0.0f32; shape.input_len() + 1];
    let msg = conv2d::conv2d_backward_input(&shape, &y, &w, &mut gx)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("conv2d_backward_input: size mismatch: grad_input has 151"),
        "{msg}"
    );

    let (mut gw, mut gb) = (vec![0.0f32; shape.weight_len()], [0.0f32; 5]);
    let msg = conv2d::conv2d_backward_weight(&shape, &x, &y, &mut gw, Some(&mut gb))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("conv2d_backward_weight: size mismatch: grad_bias has 5"),
        "{msg}"
    );
    let msg = conv2d::conv2d_backward_weight(&shape, &x, &y[2..], &mut gw, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("grad_out has 70 elements"), "{msg}");

    let mut gx = vec![0.0f32; shape.input_len()];
    let msg = conv2d::conv2d_backward(&shape, &x, &w, &y, &mut gx[1..], &mut gw, None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("conv2d_backward: size mismatch: grad_input has 149"),
        "{msg}"
    );
    let msg = conv2d::conv2d_backward(&shape, &x, &w, &y, &mut gx, &mut gw, Some(&mut gb))
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("conv2d_backward: size mismatch: grad_bias has 5"),
        "{msg}"
    );

    let msg = reference::conv2d_forward(&shape, &[0.0; 3], &[0.0; 108], None, &mut [0.0; 72])
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("reference::conv2d_forward"), "{msg}");
}

/// `conv2d_relu_*` give exactly the bits of the convolution followed by the elementwise
/// `relu` (forward) and `relu_backward` then the convolution's backward, for every
/// subset of gradients.
fn check_relu_fusion<T>(
    level: SimdLevel,
    s: &Conv2dShape,
    x: &[T],
    w: &[T],
    b: &[T],
    gy: &[T],
    nan: T,
) where
    T: conv2d::ConvScalar + kernels::cpu::elementwise::Float + std::fmt::Debug,
{
    use kernels::cpu::elementwise::{relu_backward_at, unary_at, UnaryOp};
    let ctx = format!("{s:?} at {level}");
    let mut z = vec![nan; s.output_len()];
    conv2d::conv2d_forward_at(level, s, x, w, Some(b), &mut z).unwrap();
    let mut y = vec![nan; s.output_len()];
    unary_at(level, UnaryOp::Relu, &z, &mut y).unwrap();
    let mut fused = vec![nan; s.output_len()];
    let mut mask = vec![0xA5A5u16; conv2d::relu_mask_len(s)];
    conv2d::conv2d_relu_forward_at(level, s, x, w, Some(b), &mut fused, &mut mask).unwrap();
    assert_eq!(fused, y, "forward {ctx}");
    // The mask: bit n % 16 of word (n / 16) * E + e says whether y[n][e] > 0; the
    // bits past the last image are zero.
    let e_len = s.output_len() / s.batch();
    for (i, &word) in mask.iter().enumerate() {
        let (group, e) = (i / e_len, i % e_len);
        for l in 0..16 {
            let n = group * 16 + l;
            let want =
                n < s.batch() && y[n * e_len + e] > <T as kernels::cpu::elementwise::Float>::ZERO;
            assert_eq!(word >> l & 1 == 1, want, "mask bit {l} of word {i} {ctx}");
        }
    }
    let mut gz = vec![nan; s.output_len()];
    relu_backward_at(level, &z, gy, &mut gz).unwrap();
    let mut gx = vec![nan; s.input_len()];
    let (mut gw, mut gb) = (vec![nan; s.weight_len()], vec![nan; s.out_channels()]);
    conv2d::conv2d_backward_at(level, s, x, w, &gz, &mut gx, &mut gw, Some(&mut gb)).unwrap();
    for (want_x, want_w, want_b) in [
        (true, true, true),
        (true, false, false),
        (false, true, true),
        (false, true, false),
        (false, false, true),
        (true, true, false),
    ] {
        let mut ox = want_x.then(|| vec![nan; s.input_len()]);
        let mut ow = want_w.then(|| vec![nan; s.weight_len()]);
        let mut ob = want_b.then(|| vec![nan; s.out_channels()]);
        conv2d::conv2d_relu_backward_at(
            level,
            s,
            x,
            w,
            &mask,
            gy,
            ox.as_deref_mut(),
            ow.as_deref_mut(),
            ob.as_deref_mut(),
        )
        .unwrap();
        let what = format!("({want_x}, {want_w}, {want_b}) {ctx}");
        if let Some(ox) = ox {
            assert_eq!(ox, gx, "grad input {what}");
        }
        if let Some(ow) = ow {
            assert_eq!(ow, gw, "grad weight {what}");
        }
        if let Some(ob) = ob {
            assert_eq!(ob, gb, "grad bias {what}");
        }
    }
}

#[test]
fn conv_relu_fusion_matches_the_separate_ops_bit_for_bit() {
    let mut rng = Rng(23);
    let mut shapes = random_shapes(31, 25);
    // The lesson's layers at batches that use the lanes kernels, with a partial
    // sub-chunk.
    for (batch, cin, cout, k, hw) in [(149, 1, 8, 5, 28), (33, 32, 64, 3, 4), (17, 8, 16, 3, 14)] {
        let params = Conv2dParams {
            stride: (2, 2),
            padding: (k / 2, k / 2),
            ..Conv2dParams::default()
        };
        shapes.push(Conv2dShape::new([batch, cin, hw, hw], [cout, cin, k, k], params).unwrap());
    }
    for s in shapes {
        let case = Case::new(s, &mut rng);
        let (x, w, b, gy) = (
            to_f32(&case.x),
            to_f32(&case.w),
            to_f32(&case.b),
            to_f32(&case.gy),
        );
        for level in SimdLevel::available() {
            check_relu_fusion(level, &s, &x, &w, &b, &gy, f32::NAN);
            check_relu_fusion(level, &s, &case.x, &case.w, &case.b, &case.gy, f64::NAN);
        }
    }
}

#[test]
fn conv_relu_entry_points_reject_wrong_lengths() {
    let shape = Conv2dShape::new([2, 1, 3, 3], [1, 1, 3, 3], Conv2dParams::default()).unwrap();
    let (x, w) = (vec![0.0f32; 18], vec![0.0f32; 9]);
    let mut y = vec![0.0f32; 3];
    let mut mask = vec![0u16; conv2d::relu_mask_len(&shape)];
    assert_eq!(mask.len(), 1);
    let err = conv2d::conv2d_relu_forward(&shape, &x, &w, None, &mut y, &mut mask)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv2d_relu_forward") && err.contains("output"),
        "{err}"
    );
    let mut y = vec![0.0f32; 2];
    let err = conv2d::conv2d_relu_forward(&shape, &x, &w, None, &mut y, &mut [0u16; 2])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("relu mask has 2 words, the shape needs 1"),
        "{err}"
    );
    let gy = vec![0.0f32; 2];
    let mut gx = vec![0.0f32; 18];
    let err = conv2d::conv2d_relu_backward(&shape, &x, &w, &[], &gy, Some(&mut gx), None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("conv2d_relu_backward") && err.contains("relu mask"),
        "{err}"
    );
}
