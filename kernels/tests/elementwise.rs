//! Elementwise kernels against scalar std references, at every SIMD level the CPU has,
//! at sizes that exercise empty input, tails shorter than a vector, several vectors,
//! and the parallel path; plus the accuracy of the f32 exp/ln/tanh/sigmoid
//! approximations over sweeps of the whole f32 range.

use kernels::cpu::elementwise::{self as ew, BinaryOp, UnaryOp};
use kernels::cpu::SimdLevel;
use kernels::KernelError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Sizes: empty, shorter than every vector width, straddling 16-lane vectors, many
/// vectors, and above the 32768-element parallel threshold.
const SIZES: [usize; 7] = [0, 1, 3, 17, 33, 1000, (1 << 16) + 3];

fn levels() -> Vec<SimdLevel> {
    SimdLevel::available()
}

/// Uniform values in `[lo, hi)`, seeded by the size so every case is reproducible.
fn data(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9e37_79b9));
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

/// Distance in units in the last place between two f32 values (0 when both are NaN
/// or equal, including +0/-0; `u32::MAX` when only one is NaN).
fn ulps(a: f32, b: f32) -> u32 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u32::MAX
        };
    }
    if a == b {
        return 0;
    }
    // Map the bit patterns to a monotonic integer line.
    let key = |x: f32| {
        let b = x.to_bits() as i64;
        if b & 0x8000_0000 != 0 {
            -(b & 0x7fff_ffff)
        } else {
            b
        }
    };
    (key(a) - key(b)).unsigned_abs().min(u64::from(u32::MAX)) as u32
}

/// Whether two f64 values are the same value (NaN equals NaN).
fn same64(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The f64 reference of a unary op, rounded from exact math.
fn unary_ref(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Ln => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid64(x),
        UnaryOp::Relu => {
            if x.is_nan() {
                x
            } else {
                x.max(0.0)
            }
        }
        UnaryOp::LeakyRelu { slope } => {
            if x < 0.0 {
                x * slope
            } else {
                x
            }
        }
        UnaryOp::Square => x * x,
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Clamp { min, max } => {
            if x.is_nan() {
                x
            } else {
                x.clamp(min, max)
            }
        }
        UnaryOp::Affine { mul, add } => x * mul + add,
        UnaryOp::ShiftedLeakyRelu { slope, shift } => {
            unary_ref(UnaryOp::LeakyRelu { slope }, x) + shift
        }
    }
}

/// Every unary op; the affine parameters are exact in f32 and the multiply by a power
/// of two is exact, so the f32 result is the correctly rounded f64 one.
const UNARY_OPS: [UnaryOp; 14] = [
    UnaryOp::Neg,
    UnaryOp::Exp,
    UnaryOp::Ln,
    UnaryOp::Sqrt,
    UnaryOp::Abs,
    UnaryOp::Tanh,
    UnaryOp::Sigmoid,
    UnaryOp::Relu,
    UnaryOp::LeakyRelu { slope: 0.125 },
    UnaryOp::Square,
    UnaryOp::Recip,
    UnaryOp::Clamp {
        min: -0.5,
        max: 2.0,
    },
    UnaryOp::Affine {
        mul: 0.5,
        add: -0.375,
    },
    UnaryOp::ShiftedLeakyRelu {
        slope: 0.125,
        shift: -0.375,
    },
];

/// Allowed f32 error in ulp: 0 for the exact IEEE ops (an f32 op and the f64 op
/// rounded to f32 agree exactly for these), a few for the approximations.
fn ulp_bound(op: UnaryOp) -> u32 {
    match op {
        UnaryOp::Exp | UnaryOp::Ln => 1,
        UnaryOp::Tanh | UnaryOp::Sigmoid => 2,
        _ => 0,
    }
}

/// Inputs in the op's interesting range, with some special values mixed in.
fn unary_input(op: UnaryOp, n: usize) -> Vec<f64> {
    let (lo, hi) = match op {
        UnaryOp::Exp => (-110.0, 95.0),
        UnaryOp::Ln | UnaryOp::Sqrt => (0.0, 1e6),
        UnaryOp::Tanh | UnaryOp::Sigmoid => (-30.0, 30.0),
        _ => (-100.0, 100.0),
    };
    let mut x = data(n, lo, hi, 7);
    let specials = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0,
        -1.0,
        1e-3,
    ];
    for (i, s) in specials.iter().enumerate() {
        if i * 37 < n {
            x[i * 37] = *s;
        }
    }
    x
}

#[test]
fn unary_f32_matches_std_at_every_level_and_size() {
    for level in levels() {
        for &n in &SIZES {
            for op in UNARY_OPS {
                let x64 = unary_input(op, n);
                let x = to_f32(&x64);
                let mut out = vec![f32::NAN; n];
                ew::unary_at(level, op, &x, &mut out).unwrap();
                let mut inplace = x.clone();
                ew::unary_inplace_at(level, op, &mut inplace).unwrap();
                for i in 0..n {
                    let want = unary_ref(op, f64::from(x[i])) as f32;
                    let err = ulps(out[i], want);
                    assert!(
                        err <= ulp_bound(op),
                        "{op:?} at {level}, n = {n}: x = {:e}: got {:e}, want {:e} ({err} ulp)",
                        x[i],
                        out[i],
                        want
                    );
                    assert_eq!(
                        out[i].to_bits(),
                        inplace[i].to_bits(),
                        "{op:?} in place at {level}"
                    );
                }
            }
        }
    }
}

#[test]
fn unary_f64_is_std_exactly_at_every_level() {
    for level in levels() {
        for &n in &SIZES {
            for op in UNARY_OPS {
                let x = unary_input(op, n);
                let mut out = vec![f64::NAN; n];
                ew::unary_at(level, op, &x, &mut out).unwrap();
                for i in 0..n {
                    let want = unary_ref(op, x[i]);
                    let ok = if op == UnaryOp::Sigmoid {
                        // The kernel uses the overflow-free form e/(1+e) for x < 0.
                        same64(out[i], want)
                            || (out[i] - want).abs() <= 4.0 * f64::EPSILON * want.abs()
                    } else {
                        same64(out[i], want)
                    };
                    assert!(
                        ok,
                        "{op:?} f64 at {level}: x = {:e}: got {:e}, want {:e}",
                        x[i], out[i], want
                    );
                }
            }
        }
    }
}

#[test]
fn unary_results_agree_with_op_apply() {
    // `UnaryOp::apply` is documented to be the portable kernel, bit for bit.
    let x = to_f32(&unary_input(UnaryOp::Exp, 1000));
    for op in UNARY_OPS {
        let mut out = vec![0.0f32; x.len()];
        ew::unary_at(SimdLevel::Portable, op, &x, &mut out).unwrap();
        for (a, b) in x.iter().zip(&out) {
            assert_eq!(op.apply(*a).to_bits(), b.to_bits(), "{op:?}({a})");
        }
    }
}

/// Maximum ulp error of an f32 kernel against f64 std over a sweep of bit patterns
/// covering every exponent (both signs unless `positive_only`), at `level`.
fn sweep_max_ulps(
    level: SimdLevel,
    op: UnaryOp,
    f64_ref: fn(f64) -> f64,
    positive_only: bool,
) -> (u32, f32) {
    let mut x: Vec<f32> = Vec::new();
    // Stride through the positive bit patterns (subnormals to f32::MAX), prime stride.
    let mut bits = 1u32;
    while bits < 0x7f80_0000 {
        x.push(f32::from_bits(bits));
        bits += 1009;
    }
    if !positive_only {
        let neg: Vec<f32> = x.iter().map(|v| -v).collect();
        x.extend(neg);
    }
    let mut out = vec![0.0f32; x.len()];
    ew::unary_at(level, op, &x, &mut out).unwrap();
    let mut worst = (0u32, 0.0f32);
    for (xi, yi) in x.iter().zip(&out) {
        let want = f64_ref(f64::from(*xi)) as f32;
        let e = ulps(*yi, want);
        if e > worst.0 {
            worst = (e, *xi);
        }
    }
    worst
}

#[test]
fn approximation_error_exp_ln_tanh_sigmoid_over_the_f32_range() {
    // Bounds documented in the elementwise module docs (measured: 1, 1, 1 and 2 ulp at
    // every level, the portable path included).
    // (op, f64 reference, positive inputs only, ulp bound)
    type Case = (UnaryOp, fn(f64) -> f64, bool, u32);
    let cases: [Case; 4] = [
        (UnaryOp::Exp, f64::exp, false, 1),
        (UnaryOp::Ln, f64::ln, true, 1),
        (UnaryOp::Tanh, f64::tanh, false, 2),
        (UnaryOp::Sigmoid, sigmoid64, false, 2),
    ];
    for level in levels() {
        for (op, reference, positive_only, bound) in cases {
            let (worst, at) = sweep_max_ulps(level, op, reference, positive_only);
            println!("{op:?} at {level}: max {worst} ulp (at x = {at:e})");
            assert!(
                worst <= bound,
                "{op:?} at {level}: {worst} ulp at x = {at:e} (bound {bound})"
            );
        }
    }
}

#[test]
fn special_values_follow_std() {
    let cases: [(UnaryOp, f32, f32); 18] = [
        (UnaryOp::Exp, f32::INFINITY, f32::INFINITY),
        (UnaryOp::Exp, f32::NEG_INFINITY, 0.0),
        (UnaryOp::Exp, 88.8, f32::INFINITY),
        (UnaryOp::Exp, -104.0, 0.0),
        (UnaryOp::Exp, -1000.0, 0.0),
        (UnaryOp::Exp, 0.0, 1.0),
        (UnaryOp::Ln, 0.0, f32::NEG_INFINITY),
        (UnaryOp::Ln, -0.0, f32::NEG_INFINITY),
        (UnaryOp::Ln, f32::INFINITY, f32::INFINITY),
        (UnaryOp::Ln, 1.0, 0.0),
        (UnaryOp::Tanh, f32::INFINITY, 1.0),
        (UnaryOp::Tanh, f32::NEG_INFINITY, -1.0),
        (UnaryOp::Tanh, 20.0, 1.0),
        (UnaryOp::Tanh, -20.0, -1.0),
        (UnaryOp::Sigmoid, f32::INFINITY, 1.0),
        (UnaryOp::Sigmoid, f32::NEG_INFINITY, 0.0),
        (UnaryOp::Sigmoid, 0.0, 0.5),
        (UnaryOp::Relu, -0.0, 0.0),
    ];
    let nan_cases = [
        (UnaryOp::Ln, -1.0f32),
        (UnaryOp::Ln, f32::NEG_INFINITY),
        (UnaryOp::Sqrt, -1.0),
    ];
    let nan_ops = [
        UnaryOp::Exp,
        UnaryOp::Ln,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Clamp { min: 0.0, max: 1.0 },
    ];
    for level in levels() {
        // Put each value in the middle of a full vector and in a tail.
        let run = |op: UnaryOp, x: f32| {
            let input = vec![x; 19];
            let mut out = vec![0.0f32; 19];
            ew::unary_at(level, op, &input, &mut out).unwrap();
            assert_eq!(
                out[3].to_bits(),
                out[18].to_bits(),
                "{op:?}({x}) vector vs tail at {level}"
            );
            out[3]
        };
        for (op, x, want) in cases {
            assert_eq!(run(op, x), want, "{op:?}({x}) at {level}");
        }
        for (op, x) in nan_cases {
            assert!(run(op, x).is_nan(), "{op:?}({x}) at {level} should be NaN");
        }
        for op in nan_ops {
            assert!(
                run(op, f32::NAN).is_nan(),
                "{op:?}(NaN) at {level} should be NaN"
            );
        }
        let t = run(UnaryOp::Tanh, -0.0);
        assert!(t == 0.0 && t.is_sign_negative(), "tanh(-0) = -0 at {level}");
        // Subnormal results of exp and sigmoid are kept, not flushed.
        let e = run(UnaryOp::Exp, -100.0);
        assert!(
            e > 0.0 && ulps(e, (-100f64).exp() as f32) <= 1,
            "exp(-100) = {e:e} at {level}"
        );
        let s = run(UnaryOp::Sigmoid, -100.0);
        assert!(
            s > 0.0 && ulps(s, sigmoid64(-100.0) as f32) <= 2,
            "sigmoid(-100) = {s:e} at {level}"
        );
    }
}

const BINARY_OPS: [BinaryOp; 7] = [
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Maximum,
    BinaryOp::Minimum,
    BinaryOp::Pow,
];

fn binary_ref(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.max(b)
            }
        }
        BinaryOp::Minimum => {
            if a.is_nan() || b.is_nan() {
                f64::NAN
            } else {
                a.min(b)
            }
        }
        BinaryOp::Pow => a.powf(b),
    }
}

/// Checks one f32 binary result: exact for the IEEE ops (f64 then rounding to f32
/// is exact for + - * / of f32 operands), std's f32 powf for pow.
fn check_binary(op: BinaryOp, a: f32, b: f32, got: f32, ctx: &str) {
    let want = if op == BinaryOp::Pow {
        a.powf(b)
    } else {
        binary_ref(op, f64::from(a), f64::from(b)) as f32
    };
    assert_eq!(
        ulps(got, want),
        0,
        "{op:?}({a}, {b}) {ctx}: got {got}, want {want}"
    );
}

fn binary_inputs(n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut a = to_f32(&data(n, -50.0, 50.0, 1));
    let mut b = to_f32(&data(n, -50.0, 50.0, 2));
    // NaN on either side, equal values, zeros of both signs.
    let specials = [
        (f32::NAN, 1.0),
        (1.0, f32::NAN),
        (3.0, 3.0),
        (0.0, -0.0),
        (2.0, 0.0),
    ];
    for (i, (x, y)) in specials.iter().enumerate() {
        if i * 11 < n {
            a[i * 11] = *x;
            b[i * 11] = *y;
        }
    }
    (a, b)
}

#[test]
fn binary_f32_matches_reference_at_every_level_and_size() {
    for level in levels() {
        for &n in &SIZES {
            let (a, b) = binary_inputs(n);
            for op in BINARY_OPS {
                let ctx = format!("at {level}, n = {n}");
                let mut out = vec![0.0f32; n];
                ew::binary_at(level, op, &a, &b, &mut out).unwrap();
                let mut inplace = a.clone();
                ew::binary_inplace_at(level, op, &mut inplace, &b).unwrap();
                for i in 0..n {
                    check_binary(op, a[i], b[i], out[i], &ctx);
                    assert_eq!(
                        out[i].to_bits(),
                        inplace[i].to_bits(),
                        "{op:?} in place {ctx}"
                    );
                }
                let s = 1.75f32;
                ew::binary_scalar_at(level, op, &a, s, &mut out).unwrap();
                let mut inplace = a.clone();
                ew::binary_scalar_inplace_at(level, op, &mut inplace, s);
                for i in 0..n {
                    check_binary(op, a[i], s, out[i], &ctx);
                    assert_eq!(
                        out[i].to_bits(),
                        inplace[i].to_bits(),
                        "{op:?} scalar in place {ctx}"
                    );
                }
                ew::scalar_binary_at(level, op, s, &b, &mut out).unwrap();
                for i in 0..n {
                    check_binary(op, s, b[i], out[i], &ctx);
                }
            }
        }
    }
}

#[test]
fn binary_f64_matches_reference_exactly() {
    for level in levels() {
        for &n in &SIZES {
            let a = data(n, -50.0, 50.0, 3);
            let b = data(n, -50.0, 50.0, 4);
            for op in BINARY_OPS {
                let mut out = vec![0.0f64; n];
                ew::binary_at(level, op, &a, &b, &mut out).unwrap();
                for i in 0..n {
                    assert!(
                        same64(out[i], binary_ref(op, a[i], b[i])),
                        "{op:?} f64 at {level}"
                    );
                }
            }
        }
    }
}

#[test]
fn named_shorthands_match_the_op_forms() {
    let (a, b) = binary_inputs(100);
    let mut x = vec![0.0f32; 100];
    let mut y = vec![0.0f32; 100];
    type Bin = fn(&[f32], &[f32], &mut [f32]) -> kernels::Result<()>;
    let bins: [(Bin, BinaryOp); 6] = [
        (ew::add, BinaryOp::Add),
        (ew::sub, BinaryOp::Sub),
        (ew::mul, BinaryOp::Mul),
        (ew::div, BinaryOp::Div),
        (ew::maximum, BinaryOp::Maximum),
        (ew::minimum, BinaryOp::Minimum),
    ];
    for (f, op) in bins {
        f(&a, &b, &mut x).unwrap();
        ew::binary(op, &a, &b, &mut y).unwrap();
        assert_eq!(to_bits(&x), to_bits(&y), "{op:?}");
    }
    type Un = fn(&[f32], &mut [f32]) -> kernels::Result<()>;
    let uns: [(Un, UnaryOp); 10] = [
        (ew::neg, UnaryOp::Neg),
        (ew::exp, UnaryOp::Exp),
        (ew::ln, UnaryOp::Ln),
        (ew::sqrt, UnaryOp::Sqrt),
        (ew::abs, UnaryOp::Abs),
        (ew::tanh, UnaryOp::Tanh),
        (ew::sigmoid, UnaryOp::Sigmoid),
        (ew::relu, UnaryOp::Relu),
        (ew::square, UnaryOp::Square),
        (ew::recip, UnaryOp::Recip),
    ];
    for (f, op) in uns {
        f(&a, &mut x).unwrap();
        ew::unary(op, &a, &mut y).unwrap();
        assert_eq!(to_bits(&x), to_bits(&y), "{op:?}");
    }
    ew::leaky_relu(&a, 0.01, &mut x).unwrap();
    ew::unary(UnaryOp::LeakyRelu { slope: 0.01 }, &a, &mut y).unwrap();
    assert_eq!(to_bits(&x), to_bits(&y));
}

fn to_bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// `|got - want| <= tol * (scale)` for fused formulas whose rounding differs by level.
fn close(got: f64, want: f64, scale: f64, tol: f64) -> bool {
    same64(got, want) || (got - want).abs() <= tol * scale.max(f64::MIN_POSITIVE)
}

#[test]
fn axpy_and_scale_at_every_level() {
    for level in levels() {
        for &n in &SIZES {
            let x = to_f32(&data(n, -10.0, 10.0, 5));
            let y0 = to_f32(&data(n, -10.0, 10.0, 6));
            let alpha = -0.37f32;
            let mut y = y0.clone();
            ew::axpy_at(level, alpha, &x, &mut y).unwrap();
            for i in 0..n {
                let (a, xi, yi) = (f64::from(alpha), f64::from(x[i]), f64::from(y0[i]));
                let want = a * xi + yi;
                let scale = (a * xi).abs() + yi.abs();
                assert!(
                    close(f64::from(y[i]), want, scale, 1.0 / (1u64 << 23) as f64),
                    "axpy at {level}, n = {n}"
                );
            }
            let mut z = x.clone();
            ew::scale_at(level, 3.0f32, &mut z);
            for i in 0..n {
                assert_eq!(z[i], x[i] * 3.0, "scale at {level}");
            }
            // f64 axpy is exact arithmetic with two roundings at every level.
            let x64 = data(n, -10.0, 10.0, 5);
            let mut y64 = data(n, -10.0, 10.0, 6);
            let y64_0 = y64.clone();
            ew::axpy_at(level, 0.5, &x64, &mut y64).unwrap();
            for i in 0..n {
                assert_eq!(y64[i], 0.5 * x64[i] + y64_0[i]);
            }
        }
    }
}

#[test]
fn activation_backward_at_every_level() {
    for level in levels() {
        for &n in &SIZES {
            let x = to_f32(&data(n, -3.0, 3.0, 8));
            let g = to_f32(&data(n, -2.0, 2.0, 9));
            let y_tanh: Vec<f32> = x.iter().map(|v| v.tanh()).collect();
            let y_sig: Vec<f32> = x.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect();
            let mut gi = vec![0.0f32; n];
            let tol = 4.0 / (1u64 << 24) as f64;

            ew::relu_backward_at(level, &x, &g, &mut gi).unwrap();
            for i in 0..n {
                assert_eq!(
                    gi[i],
                    if x[i] > 0.0 { g[i] } else { 0.0 },
                    "relu_backward at {level}"
                );
            }
            ew::leaky_relu_backward_at(level, &x, &g, 0.1, &mut gi).unwrap();
            for i in 0..n {
                assert_eq!(
                    gi[i],
                    if x[i] > 0.0 { g[i] } else { g[i] * 0.1 },
                    "leaky_relu_backward at {level}"
                );
            }
            ew::tanh_backward_at(level, &y_tanh, &g, &mut gi).unwrap();
            for i in 0..n {
                let (y, gg) = (f64::from(y_tanh[i]), f64::from(g[i]));
                let want = gg * (1.0 - y * y);
                assert!(
                    close(f64::from(gi[i]), want, gg.abs(), tol),
                    "tanh_backward at {level}: {} vs {want}",
                    gi[i]
                );
            }
            ew::sigmoid_backward_at(level, &y_sig, &g, &mut gi).unwrap();
            for i in 0..n {
                let (y, gg) = (f64::from(y_sig[i]), f64::from(g[i]));
                let want = gg * y * (1.0 - y);
                assert!(
                    close(f64::from(gi[i]), want, want.abs(), tol),
                    "sigmoid_backward at {level}"
                );
            }
        }
    }
}

#[test]
fn backward_passes_match_finite_differences_in_f64() {
    // d/dx f(x) from the forward ops, checked by central differences (f64).
    let x = data(257, -3.0, 3.0, 10);
    let ones = vec![1.0f64; x.len()];
    let h = 1e-6;
    let fwd = |op: UnaryOp, v: &[f64]| {
        let mut out = vec![0.0; v.len()];
        ew::unary(op, v, &mut out).unwrap();
        out
    };
    let numeric = |op: UnaryOp| {
        let plus: Vec<f64> = x.iter().map(|v| v + h).collect();
        let minus: Vec<f64> = x.iter().map(|v| v - h).collect();
        let (fp, fm) = (fwd(op, &plus), fwd(op, &minus));
        fp.iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect::<Vec<_>>()
    };
    let mut gi = vec![0.0f64; x.len()];
    ew::tanh_backward(&fwd(UnaryOp::Tanh, &x), &ones, &mut gi).unwrap();
    for (a, b) in gi.iter().zip(numeric(UnaryOp::Tanh)) {
        assert!((a - b).abs() < 1e-8, "tanh' {a} vs {b}");
    }
    ew::sigmoid_backward(&fwd(UnaryOp::Sigmoid, &x), &ones, &mut gi).unwrap();
    for (a, b) in gi.iter().zip(numeric(UnaryOp::Sigmoid)) {
        assert!((a - b).abs() < 1e-8, "sigmoid' {a} vs {b}");
    }
    ew::leaky_relu_backward(&x, &ones, 0.2, &mut gi).unwrap();
    for (a, b) in gi.iter().zip(numeric(UnaryOp::LeakyRelu { slope: 0.2 })) {
        assert!((a - b).abs() < 1e-8, "leaky_relu' {a} vs {b}");
    }
}

#[test]
fn length_mismatches_are_errors_naming_the_op_and_lengths() {
    let a = [1.0f32; 3];
    let b = [1.0f32; 4];
    let mut out = [0.0f32; 3];
    let err = ew::add(&a, &b, &mut out).unwrap_err();
    assert!(matches!(err, KernelError::SizeMismatch { op: "add", .. }));
    assert_eq!(
        err.to_string(),
        "add: size mismatch: a has 3 elements, b has 4, out has 3"
    );

    let mut short = [0.0f32; 2];
    let err = ew::exp(&a, &mut short).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exp: size mismatch: x has 3 elements, out has 2"
    );

    let err = ew::axpy(1.0, &b, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "axpy: size mismatch: x has 4 elements, y has 3"
    );

    let err = ew::tanh_backward(&a, &b, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tanh_backward: size mismatch: y has 3 elements, grad_out has 4, grad_in has 3"
    );

    let err = ew::scalar_binary(BinaryOp::Sub, 1.0, &b, &mut out).unwrap_err();
    assert!(err.to_string().starts_with("sub: size mismatch"));
    // Nothing was written on error.
    assert_eq!(out, [0.0; 3]);
}

#[test]
fn invalid_op_parameters_are_errors() {
    let x = [1.0f32; 4];
    let mut out = [0.0f32; 4];
    let err = ew::unary(UnaryOp::Clamp { min: 2.0, max: 1.0 }, &x, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "clamp: invalid argument: need min <= max, got min = 2, max = 1"
    );
    let err = ew::leaky_relu(&x, f64::NAN, &mut out).unwrap_err();
    assert!(err.to_string().contains("slope is NaN"));
    let shifted = UnaryOp::ShiftedLeakyRelu {
        slope: f64::NAN,
        shift: -0.4,
    };
    let err = ew::unary(shifted, &x, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "shifted_leaky_relu: invalid argument: slope is NaN"
    );
    let mut y = x;
    assert!(ew::unary_inplace(
        UnaryOp::Clamp {
            min: f64::NAN,
            max: 1.0
        },
        &mut y
    )
    .is_err());
}
