//! Batch norm and group norm kernels against the f64 reference at every SIMD level, in
//! f32 and f64; the backward passes against finite differences of the reference
//! forward; numerics on badly centred data; running statistics; error paths.
//!
//! Tolerances (`|fast - reference| <= tol * scale`):
//! - f64 kernels: `1e-11`, scale = the largest magnitude in the tensor compared (plus
//!   the natural size of the inputs for gradients, which can cancel to ~0);
//! - f32 kernels: `2e-5` for outputs, saved statistics and `grad_x`; `1e-4` for
//!   `grad_gamma` / `grad_beta`, which sum `N * S` products;
//! - finite differences (f64, step `1e-6`): PyTorch gradcheck's defaults, `atol 1e-5`
//!   plus `rtol 1e-3`.

use kernels::cpu::dispatch::SimdLevel;
use kernels::cpu::norm::{self, reference, Affine, BatchNormShape, GroupNormShape, NormGrads};
use kernels::cpu::norm::{NormStats, NormStatsMut, RunningStats, RunningStatsMut};
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

    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// `n` values `offset + scale * uniform`, rounded to f32 so both paths see the same data.
    fn vec(&mut self, n: usize, offset: f64, scale: f64) -> Vec<f64> {
        (0..n)
            .map(|_| (offset + scale * self.uniform()) as f32 as f64)
            .collect()
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Asserts `|got - want| <= tol * scale` element-wise.
fn assert_close(what: &str, got: &[f64], want: &[f64], scale: f64, tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= tol * scale,
            "{what}: element {i}: got {g}, want {w}, error {err:e} > {tol:e} * {scale:e}"
        );
    }
}

/// Operands of one batch-norm case.
struct BnCase {
    shape: BatchNormShape,
    x: Vec<f64>,
    gy: Vec<f64>,
    gamma: Option<Vec<f64>>,
    beta: Option<Vec<f64>>,
    eps: f64,
}

impl BnCase {
    fn new(n: usize, c: usize, s: usize, affine: bool, rng: &mut Rng) -> Self {
        let shape = BatchNormShape::new(n, c, s).unwrap();
        Self {
            x: rng.vec(shape.len(), 3.0, 2.0),
            gy: rng.vec(shape.len(), 0.0, 1.0),
            gamma: affine.then(|| rng.vec(c, 1.0, 0.5)),
            beta: affine.then(|| rng.vec(c, 0.0, 1.0)),
            eps: 1e-5,
            shape,
        }
    }

    fn affine(&self) -> Affine<'_, f64> {
        Affine {
            gamma: self.gamma.as_deref(),
            beta: self.beta.as_deref(),
        }
    }

    fn gamma32(&self) -> Option<Vec<f32>> {
        self.gamma.as_deref().map(to_f32)
    }

    fn beta32(&self) -> Option<Vec<f32>> {
        self.beta.as_deref().map(to_f32)
    }

    /// Reference forward: (y, mean, invstd).
    fn reference_forward(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let c = self.shape.c();
        let (mut y, mut m, mut is) = (vec![0.0; self.shape.len()], vec![0.0; c], vec![0.0; c]);
        let save = NormStatsMut {
            mean: &mut m,
            invstd: &mut is,
        };
        reference::batch_norm_forward_train(
            &self.shape,
            &self.x,
            self.affine(),
            self.eps,
            &mut y,
            save,
        )
        .unwrap();
        (y, m, is)
    }

    /// Reference backward: (grad_x, grad_gamma, grad_beta).
    fn reference_backward(&self, mean: &[f64], invstd: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let c = self.shape.c();
        let (mut gx, mut gg, mut gb) = (vec![0.0; self.shape.len()], vec![0.0; c], vec![0.0; c]);
        reference::batch_norm_backward(
            &self.shape,
            &self.x,
            &self.gy,
            self.gamma.as_deref(),
            NormStats { mean, invstd },
            NormGrads {
                x: Some(&mut gx),
                gamma: Some(&mut gg),
                beta: Some(&mut gb),
            },
        )
        .unwrap();
        (gx, gg, gb)
    }

    /// Scale for comparing grad_x: its natural size `max|g| * max|gamma| * max invstd`.
    fn gx_scale(&self, gx: &[f64], invstd: &[f64]) -> f64 {
        let gmax = self.gamma.as_deref().map_or(1.0, max_abs);
        max_abs(gx) + max_abs(&self.gy) * gmax * max_abs(invstd)
    }

    /// Scale for grad_gamma / grad_beta: the largest per-channel sum of |g| * max(1, |xhat|).
    fn sums_scale(&self, mean: &[f64], invstd: &[f64]) -> f64 {
        let (n, c, s) = (self.shape.n(), self.shape.c(), self.shape.s());
        let mut per_channel = vec![0.0f64; c];
        for i in 0..n {
            for k in 0..c {
                for j in 0..s {
                    let idx = (i * c + k) * s + j;
                    let xhat = ((self.x[idx] - mean[k]) * invstd[k]).abs();
                    per_channel[k] += self.gy[idx].abs() * xhat.max(1.0);
                }
            }
        }
        max_abs(&per_channel)
    }

    fn check(&self, level: SimdLevel) {
        let ctx = format!(
            "{:?} affine {} at {level}",
            self.shape,
            self.gamma.is_some()
        );
        let (len, c) = (self.shape.len(), self.shape.c());
        let (y, mean, invstd) = self.reference_forward();
        let (gx, gg, gb) = self.reference_backward(&mean, &invstd);
        let y_scale = max_abs(&y) + 1.0;
        let gx_scale = self.gx_scale(&gx, &invstd);
        let sums_scale = self.sums_scale(&mean, &invstd);

        // f64.
        let (mut out, mut m, mut is) = (vec![f64::NAN; len], vec![f64::NAN; c], vec![f64::NAN; c]);
        let save = NormStatsMut {
            mean: &mut m,
            invstd: &mut is,
        };
        norm::batch_norm_forward_train_at(
            level,
            &self.shape,
            &self.x,
            self.affine(),
            self.eps,
            &mut out,
            save,
        )
        .unwrap();
        assert_close(&format!("f64 y {ctx}"), &out, &y, y_scale, 1e-11);
        assert_close(
            &format!("f64 mean {ctx}"),
            &m,
            &mean,
            max_abs(&mean) + 1.0,
            1e-11,
        );
        assert_close(
            &format!("f64 invstd {ctx}"),
            &is,
            &invstd,
            max_abs(&invstd),
            1e-11,
        );
        let (mut ogx, mut ogg, mut ogb) =
            (vec![f64::NAN; len], vec![f64::NAN; c], vec![f64::NAN; c]);
        norm::batch_norm_backward_at(
            level,
            &self.shape,
            &self.x,
            &self.gy,
            self.gamma.as_deref(),
            NormStats {
                mean: &m,
                invstd: &is,
            },
            NormGrads {
                x: Some(&mut ogx),
                gamma: Some(&mut ogg),
                beta: Some(&mut ogb),
            },
        )
        .unwrap();
        assert_close(&format!("f64 grad_x {ctx}"), &ogx, &gx, gx_scale, 1e-11);
        assert_close(
            &format!("f64 grad_gamma {ctx}"),
            &ogg,
            &gg,
            sums_scale,
            1e-11,
        );
        assert_close(
            &format!("f64 grad_beta {ctx}"),
            &ogb,
            &gb,
            sums_scale,
            1e-11,
        );

        // f32.
        let (x, gy, gamma, beta) = (
            to_f32(&self.x),
            to_f32(&self.gy),
            self.gamma32(),
            self.beta32(),
        );
        let affine = Affine {
            gamma: gamma.as_deref(),
            beta: beta.as_deref(),
        };
        let (mut out, mut m, mut is) = (vec![f32::NAN; len], vec![f32::NAN; c], vec![f32::NAN; c]);
        let save = NormStatsMut {
            mean: &mut m,
            invstd: &mut is,
        };
        norm::batch_norm_forward_train_at(level, &self.shape, &x, affine, self.eps, &mut out, save)
            .unwrap();
        assert_close(&format!("f32 y {ctx}"), &to_f64(&out), &y, y_scale, 2e-5);
        assert_close(
            &format!("f32 mean {ctx}"),
            &to_f64(&m),
            &mean,
            max_abs(&mean) + 1.0,
            2e-5,
        );
        assert_close(
            &format!("f32 invstd {ctx}"),
            &to_f64(&is),
            &invstd,
            max_abs(&invstd),
            2e-5,
        );
        let (mut ogx, mut ogg, mut ogb) =
            (vec![f32::NAN; len], vec![f32::NAN; c], vec![f32::NAN; c]);
        norm::batch_norm_backward_at(
            level,
            &self.shape,
            &x,
            &gy,
            gamma.as_deref(),
            NormStats {
                mean: &m,
                invstd: &is,
            },
            NormGrads {
                x: Some(&mut ogx),
                gamma: Some(&mut ogg),
                beta: Some(&mut ogb),
            },
        )
        .unwrap();
        assert_close(
            &format!("f32 grad_x {ctx}"),
            &to_f64(&ogx),
            &gx,
            gx_scale,
            2e-5,
        );
        assert_close(
            &format!("f32 grad_gamma {ctx}"),
            &to_f64(&ogg),
            &gg,
            sums_scale,
            1e-4,
        );
        assert_close(
            &format!("f32 grad_beta {ctx}"),
            &to_f64(&ogb),
            &gb,
            sums_scale,
            1e-4,
        );

        // Only the parameter gradients: the same sums without the grad_x pass.
        let (mut ogg2, mut ogb2) = (vec![f32::NAN; c], vec![f32::NAN; c]);
        norm::batch_norm_backward_at(
            level,
            &self.shape,
            &x,
            &gy,
            gamma.as_deref(),
            NormStats {
                mean: &m,
                invstd: &is,
            },
            NormGrads {
                x: None,
                gamma: Some(&mut ogg2),
                beta: Some(&mut ogb2),
            },
        )
        .unwrap();
        assert_eq!((&ogg2, &ogb2), (&ogg, &ogb), "{ctx}: sums without grad_x");
    }
}

#[test]
fn batch_norm_matches_reference_at_every_level() {
    let mut rng = Rng(1);
    let mut cases = 0;
    // S covers the per-position path (< 256) and the run path (>= 256), with ragged tails.
    for &n in &[1, 2, 3, 5, 17] {
        for &c in &[1, 3, 17, 33] {
            for &s in &[1, 2, 4, 7, 16, 31, 49, 67, 256, 301] {
                if n * c * s > 40_000 {
                    continue;
                }
                let case = BnCase::new(n, c, s, (n + c + s) % 2 == 0, &mut rng);
                for level in SimdLevel::available() {
                    case.check(level);
                }
                cases += 1;
            }
        }
    }
    assert!(cases > 150, "{cases}");
}

/// Large tensors, split into many parallel units (each at least 2^16 values, walked in
/// memory order): the same results as the reference at every level, train and eval,
/// and bitwise the same for any thread count.
#[test]
fn batch_norm_large_tensors_match_reference_for_any_thread_count() {
    let mut rng = Rng(31);
    // Runs of S >= 64: units that start mid-sample (505 runs of 7 channels), a ragged
    // last unit, two samples of one long run per channel. Positions (S < 64): a single
    // channel, and many short channels with 13 samples per unit.
    for &(n, c, s) in &[
        (300, 7, 130),
        (1100, 3, 81),
        (2, 3, 70_001),
        (270_000, 1, 1),
        (64, 1024, 5),
    ] {
        let case = BnCase::new(n, c, s, (n + c) % 2 == 0, &mut rng);
        for level in SimdLevel::available() {
            case.check(level);
        }
        let rm = rng.vec(c, 3.0, 1.0);
        let rv = rng.vec(c, 2.0, 1.0);
        let running = RunningStats {
            mean: &rm,
            var: &rv,
        };
        let mut want = vec![0.0; case.x.len()];
        reference::batch_norm_forward_eval(
            &case.shape,
            &case.x,
            running,
            case.affine(),
            case.eps,
            &mut want,
        )
        .unwrap();
        let mut got = vec![f64::NAN; case.x.len()];
        norm::batch_norm_forward_eval(
            &case.shape,
            &case.x,
            running,
            case.affine(),
            case.eps,
            &mut got,
        )
        .unwrap();
        assert_close(
            "eval forward, sample split",
            &got,
            &want,
            max_abs(&want) + 1.0,
            1e-11,
        );

        let x32 = to_f32(&case.x);
        let g32 = to_f32(&case.gy);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let (mut y, mut m, mut is) = (vec![0f32; x32.len()], vec![0f32; c], vec![0f32; c]);
                let save = NormStatsMut {
                    mean: &mut m,
                    invstd: &mut is,
                };
                norm::batch_norm_forward_train(
                    &case.shape,
                    &x32,
                    Affine {
                        gamma: None,
                        beta: None,
                    },
                    case.eps,
                    &mut y,
                    save,
                )
                .unwrap();
                let (mut gx, mut gg, mut gb) =
                    (vec![0f32; x32.len()], vec![0f32; c], vec![0f32; c]);
                let saved = NormStats {
                    mean: &m,
                    invstd: &is,
                };
                let grads = NormGrads {
                    x: Some(&mut gx),
                    gamma: Some(&mut gg),
                    beta: Some(&mut gb),
                };
                norm::batch_norm_backward(&case.shape, &x32, &g32, None, saved, grads).unwrap();
                (y, m, is, gx, gg, gb)
            })
        };
        assert!(
            run(1) == run(3),
            "{:?}: results differ between 1 and 3 threads",
            case.shape
        );
    }
}

#[test]
fn batch_norm_with_one_value_per_channel_outputs_beta() {
    // N * S = 1: the variance is 0, eps alone sets invstd, and x - mean is exactly 0.
    for level in SimdLevel::available() {
        let shape = BatchNormShape::new(1, 3, 1).unwrap();
        let (gamma, beta) = ([2.0f32, -1.0, 0.5], [0.25f32, 0.5, -3.0]);
        let (mut y, mut m, mut is) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
        let save = NormStatsMut {
            mean: &mut m,
            invstd: &mut is,
        };
        norm::batch_norm_forward_train_at(
            level,
            &shape,
            &[4.0, -7.0, 1e6],
            Affine::new(&gamma, &beta),
            0.01,
            &mut y,
            save,
        )
        .unwrap();
        assert_eq!(y, beta, "{level}");
        assert_eq!(m, [4.0, -7.0, 1e6], "{level}");
        assert_eq!(is, [10.0; 3], "{level}: 1 / sqrt(0 + 0.01)");
        let mut gx = [f32::NAN; 3];
        let (mut gg, mut gb) = ([f32::NAN; 3], [f32::NAN; 3]);
        norm::batch_norm_backward_at(
            level,
            &shape,
            &[4.0, -7.0, 1e6],
            &[1.0, 2.0, 3.0],
            Some(&gamma),
            NormStats {
                mean: &m,
                invstd: &is,
            },
            NormGrads {
                x: Some(&mut gx),
                gamma: Some(&mut gg),
                beta: Some(&mut gb),
            },
        )
        .unwrap();
        assert_eq!(gx, [0.0; 3], "{level}: the output does not depend on x");
        assert_eq!((gg, gb), ([0.0; 3], [1.0, 2.0, 3.0]), "{level}");
    }
}

#[test]
fn batch_norm_statistics_survive_a_large_offset() {
    // Values 1e4 + U(-1, 1) in f32: a naive f32 E[x^2] - E[x]^2 would lose every digit
    // of the variance (1e8 * 2^-24 ~ 6 > var ~ 1/3). Shifted f64 sums keep it.
    let mut rng = Rng(3);
    let shape = BatchNormShape::new(64, 2, 100).unwrap();
    let x = rng.vec(shape.len(), 1e4, 1.0);
    let case = BnCase {
        shape,
        gy: vec![0.0; shape.len()],
        x,
        gamma: None,
        beta: None,
        eps: 0.0,
    };
    let (_, mean, invstd) = case.reference_forward();
    for level in SimdLevel::available() {
        let (mut y, mut m, mut is) = (vec![0.0f32; shape.len()], [0.0f32; 2], [0.0f32; 2]);
        let save = NormStatsMut {
            mean: &mut m,
            invstd: &mut is,
        };
        norm::batch_norm_forward_train_at(
            level,
            &shape,
            &to_f32(&case.x),
            Affine::identity(),
            0.0,
            &mut y,
            save,
        )
        .unwrap();
        for k in 0..2 {
            assert!(
                (is[k] as f64 / invstd[k] - 1.0).abs() < 1e-6,
                "{level}: invstd {} vs {}",
                is[k],
                invstd[k]
            );
            assert!(
                (m[k] as f64 - mean[k]).abs() < 1e-3,
                "{level}: mean {} vs {}",
                m[k],
                mean[k]
            );
        }
        let y_std = (y.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
        assert!(
            (y_std - 1.0).abs() < 1e-3,
            "{level}: normalised std {y_std}"
        );
    }
}

/// Central-difference gradient of `x -> sum(f(x) * r)`.
fn numeric_grad(v: &[f64], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let h = 1e-6;
    (0..v.len())
        .map(|i| {
            let mut p = v.to_vec();
            p[i] += h;
            let up = f(&p);
            p[i] -= 2.0 * h;
            (up - f(&p)) / (2.0 * h)
        })
        .collect()
}

fn assert_gradcheck(what: &str, analytic: &[f64], numeric: &[f64]) {
    for (i, (a, n)) in analytic.iter().zip(numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-5 + 1e-3 * n.abs(),
            "{what}: element {i}: analytic {a}, numeric {n}"
        );
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let mut rng = Rng(5);
    for &(n, c, s) in &[
        (1, 1, 1),
        (2, 3, 1),
        (3, 2, 4),
        (1, 2, 33),
        (1, 2, 260),
        (2, 1, 257),
    ] {
        let case = BnCase::new(n, c, s, true, &mut rng);
        let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let c = case.shape.c();
            let (mut y, mut m, mut is) = (vec![0.0; x.len()], vec![0.0; c], vec![0.0; c]);
            let save = NormStatsMut {
                mean: &mut m,
                invstd: &mut is,
            };
            reference::batch_norm_forward_train(
                &case.shape,
                x,
                Affine::new(gamma, beta),
                case.eps,
                &mut y,
                save,
            )
            .unwrap();
            y.iter().zip(&case.gy).map(|(a, b)| a * b).sum::<f64>()
        };
        let (gamma, beta) = (case.gamma.clone().unwrap(), case.beta.clone().unwrap());
        let num_x = numeric_grad(&case.x, |x| loss(x, &gamma, &beta));
        let num_g = numeric_grad(&gamma, |g| loss(&case.x, g, &beta));
        let num_b = numeric_grad(&beta, |b| loss(&case.x, &gamma, b));
        let (_, mean, invstd) = case.reference_forward();
        for level in SimdLevel::available() {
            let (mut gx, mut gg, mut gb) = (vec![0.0; case.x.len()], vec![0.0; c], vec![0.0; c]);
            norm::batch_norm_backward_at(
                level,
                &case.shape,
                &case.x,
                &case.gy,
                Some(&gamma),
                NormStats {
                    mean: &mean,
                    invstd: &invstd,
                },
                NormGrads {
                    x: Some(&mut gx),
                    gamma: Some(&mut gg),
                    beta: Some(&mut gb),
                },
            )
            .unwrap();
            let ctx = format!("{:?} at {level}", case.shape);
            assert_gradcheck(&format!("grad_x {ctx}"), &gx, &num_x);
            assert_gradcheck(&format!("grad_gamma {ctx}"), &gg, &num_g);
            assert_gradcheck(&format!("grad_beta {ctx}"), &gb, &num_b);
        }
        // The reference backward is checked the same way.
        let (gx, gg, gb) = case.reference_backward(&mean, &invstd);
        assert_gradcheck("reference grad_x", &gx, &num_x);
        assert_gradcheck("reference grad_gamma", &gg, &num_g);
        assert_gradcheck("reference grad_beta", &gb, &num_b);
    }
}

#[test]
fn batch_norm_eval_matches_reference_and_finite_differences() {
    let mut rng = Rng(9);
    for &(n, c, s) in &[(2, 3, 1), (3, 17, 4), (2, 5, 49), (5, 1, 7), (2, 2, 300)] {
        let case = BnCase::new(n, c, s, true, &mut rng);
        let rm = rng.vec(c, 3.0, 1.0);
        let rv = rng.vec(c, 2.0, 1.0);
        let running = RunningStats {
            mean: &rm,
            var: &rv,
        };
        let mut want = vec![0.0; case.x.len()];
        reference::batch_norm_forward_eval(
            &case.shape,
            &case.x,
            running,
            case.affine(),
            case.eps,
            &mut want,
        )
        .unwrap();
        let loss = |x: &[f64], gamma: &[f64]| {
            let mut y = vec![0.0; x.len()];
            let affine = Affine {
                gamma: Some(gamma),
                beta: case.beta.as_deref(),
            };
            reference::batch_norm_forward_eval(&case.shape, x, running, affine, case.eps, &mut y)
                .unwrap();
            y.iter().zip(&case.gy).map(|(a, b)| a * b).sum::<f64>()
        };
        let gamma = case.gamma.clone().unwrap();
        let num_x = numeric_grad(&case.x, |x| loss(x, &gamma));
        let num_g = numeric_grad(&gamma, |g| loss(&case.x, g));
        let mut invstd = vec![0.0; c];
        norm::batch_norm_eval_invstd(&rv, case.eps, &mut invstd).unwrap();
        for level in SimdLevel::available() {
            let ctx = format!("{:?} at {level}", case.shape);
            let mut out = vec![f64::NAN; case.x.len()];
            norm::batch_norm_forward_eval_at(
                level,
                &case.shape,
                &case.x,
                running,
                case.affine(),
                case.eps,
                &mut out,
            )
            .unwrap();
            assert_close(
                &format!("f64 eval {ctx}"),
                &out,
                &want,
                max_abs(&want),
                1e-12,
            );
            let (x32, rm32, rv32) = (to_f32(&case.x), to_f32(&rm), to_f32(&rv));
            let (g32, b32) = (case.gamma32().unwrap(), case.beta32().unwrap());
            let mut out32 = vec![f32::NAN; case.x.len()];
            let running32 = RunningStats {
                mean: &rm32,
                var: &rv32,
            };
            norm::batch_norm_forward_eval_at(
                level,
                &case.shape,
                &x32,
                running32,
                Affine::new(&g32, &b32),
                case.eps,
                &mut out32,
            )
            .unwrap();
            assert_close(
                &format!("f32 eval {ctx}"),
                &to_f64(&out32),
                &want,
                max_abs(&want),
                2e-6,
            );

            let (mut gx, mut gg) = (vec![0.0; case.x.len()], vec![0.0; c]);
            norm::batch_norm_backward_eval_at(
                level,
                &case.shape,
                &case.x,
                &case.gy,
                Some(&gamma),
                NormStats {
                    mean: &rm,
                    invstd: &invstd,
                },
                NormGrads {
                    x: Some(&mut gx),
                    gamma: Some(&mut gg),
                    beta: None,
                },
            )
            .unwrap();
            assert_gradcheck(&format!("eval grad_x {ctx}"), &gx, &num_x);
            assert_gradcheck(&format!("eval grad_gamma {ctx}"), &gg, &num_g);
        }
    }
}

#[test]
fn running_stats_follow_pytorch() {
    // PyTorch: running = (1 - momentum) * running + momentum * batch, with the unbiased
    // batch variance. The expected values are computed here from the data in f64.
    let mut rng = Rng(13);
    let shape = BatchNormShape::new(6, 2, 5).unwrap();
    let x = rng.vec(shape.len(), 1.0, 3.0);
    let (mut y, mut m, mut is) = (vec![0.0f32; shape.len()], [0.0f32; 2], [0.0f32; 2]);
    let eps = 1e-5;
    let save = NormStatsMut {
        mean: &mut m,
        invstd: &mut is,
    };
    norm::batch_norm_forward_train(&shape, &to_f32(&x), Affine::identity(), eps, &mut y, save)
        .unwrap();
    let (mut rm, mut rv) = ([0.5f32, -1.0], [2.0f32, 0.5]);
    let running = RunningStatsMut {
        mean: &mut rm,
        var: &mut rv,
    };
    norm::batch_norm_update_running_stats(
        &shape,
        NormStats {
            mean: &m,
            invstd: &is,
        },
        eps,
        0.1,
        running,
    )
    .unwrap();
    for k in 0..2 {
        let vals: Vec<f64> = (0..6)
            .flat_map(|i| x[(i * 2 + k) * 5..][..5].to_vec())
            .collect();
        let mean = vals.iter().sum::<f64>() / 30.0;
        let unbiased = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 29.0;
        let want_m = 0.9 * [0.5, -1.0][k] + 0.1 * mean;
        let want_v = 0.9 * [2.0, 0.5][k] + 0.1 * unbiased;
        assert!(
            (rm[k] as f64 - want_m).abs() < 1e-6,
            "mean {k}: {} vs {want_m}",
            rm[k]
        );
        assert!(
            (rv[k] as f64 - want_v).abs() < 1e-5 * want_v,
            "var {k}: {} vs {want_v}",
            rv[k]
        );
    }
}

/// Operands of one group-norm case.
fn group_case(n: usize, c: usize, s: usize, groups: usize, affine: bool, rng: &mut Rng) {
    let shape = GroupNormShape::new(n, c, s, groups).unwrap();
    let (len, rows) = (shape.len(), shape.rows());
    let x = rng.vec(len, -2.0, 3.0);
    let gy = rng.vec(len, 0.0, 1.0);
    let gamma = affine.then(|| rng.vec(c, 1.0, 0.5));
    let beta = affine.then(|| rng.vec(c, 0.0, 1.0));
    let aff = Affine {
        gamma: gamma.as_deref(),
        beta: beta.as_deref(),
    };
    let eps = 1e-5;
    let (mut y, mut mean, mut invstd) = (vec![0.0; len], vec![0.0; rows], vec![0.0; rows]);
    let save = NormStatsMut {
        mean: &mut mean,
        invstd: &mut invstd,
    };
    reference::group_norm_forward(&shape, &x, aff, eps, &mut y, save).unwrap();
    let (mut gx, mut gg, mut gb) = (vec![0.0; len], vec![0.0; c], vec![0.0; c]);
    reference::group_norm_backward(
        &shape,
        &x,
        &gy,
        gamma.as_deref(),
        NormStats {
            mean: &mean,
            invstd: &invstd,
        },
        NormGrads {
            x: Some(&mut gx),
            gamma: Some(&mut gg),
            beta: Some(&mut gb),
        },
    )
    .unwrap();
    let gmax = gamma.as_deref().map_or(1.0, max_abs);
    let y_scale = max_abs(&y) + 1.0;
    let gx_scale = max_abs(&gx) + max_abs(&gy) * gmax * max_abs(&invstd);
    let sums_scale = (n * s) as f64 * max_abs(&gy) * 4.0;
    for level in SimdLevel::available() {
        let ctx = format!("{shape:?} affine {affine} at {level}");
        for f32_path in [false, true] {
            let (tol, sum_tol) = if f32_path {
                (2e-5, 1e-4)
            } else {
                (1e-11, 1e-11)
            };
            let round = |v: &[f64]| {
                if f32_path {
                    to_f64(&to_f32(v))
                } else {
                    v.to_vec()
                }
            };
            let (mut o, mut m, mut is) = (vec![0.0; len], vec![0.0; rows], vec![0.0; rows]);
            let (mut ogx, mut ogg, mut ogb) = (vec![0.0; len], vec![0.0; c], vec![0.0; c]);
            if f32_path {
                let (x, gy) = (to_f32(&x), to_f32(&gy));
                let (g32, b32) = (gamma.as_deref().map(to_f32), beta.as_deref().map(to_f32));
                let a32 = Affine {
                    gamma: g32.as_deref(),
                    beta: b32.as_deref(),
                };
                let (mut o32, mut m32, mut is32) =
                    (vec![0.0f32; len], vec![0.0f32; rows], vec![0.0f32; rows]);
                let save = NormStatsMut {
                    mean: &mut m32,
                    invstd: &mut is32,
                };
                norm::group_norm_forward_at(level, &shape, &x, a32, eps, &mut o32, save).unwrap();
                let (mut gx32, mut gg32, mut gb32) =
                    (vec![0.0f32; len], vec![0.0f32; c], vec![0.0f32; c]);
                norm::group_norm_backward_at(
                    level,
                    &shape,
                    &x,
                    &gy,
                    g32.as_deref(),
                    NormStats {
                        mean: &m32,
                        invstd: &is32,
                    },
                    NormGrads {
                        x: Some(&mut gx32),
                        gamma: Some(&mut gg32),
                        beta: Some(&mut gb32),
                    },
                )
                .unwrap();
                (o, m, is) = (to_f64(&o32), to_f64(&m32), to_f64(&is32));
                (ogx, ogg, ogb) = (to_f64(&gx32), to_f64(&gg32), to_f64(&gb32));
            } else {
                let save = NormStatsMut {
                    mean: &mut m,
                    invstd: &mut is,
                };
                norm::group_norm_forward_at(level, &shape, &x, aff, eps, &mut o, save).unwrap();
                norm::group_norm_backward_at(
                    level,
                    &shape,
                    &x,
                    &gy,
                    gamma.as_deref(),
                    NormStats {
                        mean: &m,
                        invstd: &is,
                    },
                    NormGrads {
                        x: Some(&mut ogx),
                        gamma: Some(&mut ogg),
                        beta: Some(&mut ogb),
                    },
                )
                .unwrap();
            }
            let p = if f32_path { "f32" } else { "f64" };
            assert_close(&format!("{p} y {ctx}"), &o, &round(&y), y_scale, tol);
            assert_close(
                &format!("{p} mean {ctx}"),
                &m,
                &mean,
                max_abs(&mean) + 1.0,
                tol,
            );
            assert_close(
                &format!("{p} invstd {ctx}"),
                &is,
                &invstd,
                max_abs(&invstd),
                tol,
            );
            assert_close(&format!("{p} grad_x {ctx}"), &ogx, &gx, gx_scale, tol);
            assert_close(
                &format!("{p} grad_gamma {ctx}"),
                &ogg,
                &gg,
                sums_scale,
                sum_tol,
            );
            assert_close(
                &format!("{p} grad_beta {ctx}"),
                &ogb,
                &gb,
                sums_scale,
                sum_tol,
            );
        }
    }
}

#[test]
fn group_norm_matches_reference_at_every_level() {
    let mut rng = Rng(21);
    let mut cases = 0;
    for &n in &[1, 2, 3, 5] {
        for &(c, groups) in &[(1, 1), (3, 1), (3, 3), (4, 2), (6, 3), (17, 17), (33, 11)] {
            for &s in &[1, 3, 15, 16, 17, 49] {
                group_case(n, c, s, groups, (n + c + s) % 2 == 1, &mut rng);
                cases += 1;
            }
        }
    }
    // LayerNorm as the lesson writes it: (N, 1, C*H*W) with a scalar affine.
    group_case(3, 1, 8 * 7 * 7, 1, true, &mut rng);
    assert!(cases > 150, "{cases}");
}

#[test]
fn group_norm_backward_matches_finite_differences() {
    let mut rng = Rng(17);
    for &(n, c, s, groups) in &[(1, 1, 1, 1), (2, 4, 3, 2), (1, 3, 17, 3), (2, 2, 20, 1)] {
        let shape = GroupNormShape::new(n, c, s, groups).unwrap();
        let x = rng.vec(shape.len(), 1.0, 2.0);
        let gy = rng.vec(shape.len(), 0.0, 1.0);
        let gamma = rng.vec(c, 1.0, 0.5);
        let beta = rng.vec(c, 0.0, 1.0);
        let eps = 1e-5;
        let rows = shape.rows();
        let forward = |x: &[f64], gamma: &[f64], y: &mut [f64], m: &mut [f64], is: &mut [f64]| {
            let save = NormStatsMut {
                mean: m,
                invstd: is,
            };
            reference::group_norm_forward(&shape, x, Affine::new(gamma, &beta), eps, y, save)
                .unwrap();
        };
        let loss = |x: &[f64], gamma: &[f64]| {
            let (mut y, mut m, mut is) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
            forward(x, gamma, &mut y, &mut m, &mut is);
            y.iter().zip(&gy).map(|(a, b)| a * b).sum::<f64>()
        };
        let num_x = numeric_grad(&x, |x| loss(x, &gamma));
        let num_g = numeric_grad(&gamma, |g| loss(&x, g));
        let (mut y, mut m, mut is) = (vec![0.0; x.len()], vec![0.0; rows], vec![0.0; rows]);
        forward(&x, &gamma, &mut y, &mut m, &mut is);
        for level in SimdLevel::available() {
            let (mut gx, mut gg) = (vec![0.0; x.len()], vec![0.0; c]);
            norm::group_norm_backward_at(
                level,
                &shape,
                &x,
                &gy,
                Some(&gamma),
                NormStats {
                    mean: &m,
                    invstd: &is,
                },
                NormGrads {
                    x: Some(&mut gx),
                    gamma: Some(&mut gg),
                    beta: None,
                },
            )
            .unwrap();
            assert_gradcheck(&format!("grad_x {shape:?} at {level}"), &gx, &num_x);
            assert_gradcheck(&format!("grad_gamma {shape:?} at {level}"), &gg, &num_g);
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng(23);
    let case = BnCase::new(17, 33, 4, true, &mut rng);
    let case2 = BnCase::new(5, 3, 300, false, &mut rng);
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            case.check(SimdLevel::detected());
            case2.check(SimdLevel::detected());
        });
    }
}

fn invalid(err: KernelError, op: &str) -> String {
    assert!(
        matches!(&err, KernelError::InvalidArgument { op: o, .. } if *o == op),
        "{err:?}"
    );
    err.to_string()
}

fn mismatch(err: KernelError, op: &str) -> String {
    assert!(
        matches!(&err, KernelError::SizeMismatch { op: o, .. } if *o == op),
        "{err:?}"
    );
    err.to_string()
}

#[test]
fn errors_name_the_op_and_the_values() {
    let msg = invalid(BatchNormShape::new(0, 3, 4).unwrap_err(), "batch_norm");
    assert!(msg.contains("(0, 3, 4) has a zero size"), "{msg}");
    let msg = invalid(
        BatchNormShape::new(usize::MAX, 3, 4).unwrap_err(),
        "batch_norm",
    );
    assert!(msg.contains("overflows"), "{msg}");
    let msg = invalid(GroupNormShape::new(2, 6, 4, 4).unwrap_err(), "group_norm");
    assert!(msg.contains("groups 4 must divide the 6 channels"), "{msg}");
    let msg = invalid(GroupNormShape::new(2, 6, 4, 0).unwrap_err(), "group_norm");
    assert!(msg.contains("with 0 groups has a zero size"), "{msg}");

    let shape = BatchNormShape::new(2, 3, 4).unwrap();
    let x = vec![0.0f32; 24];
    let mut y = vec![0.0f32; 24];
    let (mut m, mut is) = ([0.0f32; 3], [0.0f32; 3]);
    let op = "batch_norm_forward_train";
    let save = NormStatsMut {
        mean: &mut m,
        invstd: &mut is,
    };
    let msg = mismatch(
        norm::batch_norm_forward_train(&shape, &x[1..], Affine::identity(), 1e-5, &mut y, save)
            .unwrap_err(),
        op,
    );
    assert!(
        msg.contains("x has 23 elements but BatchNormShape { n: 2, c: 3, s: 4 } needs 24"),
        "{msg}"
    );
    let save = NormStatsMut {
        mean: &mut m,
        invstd: &mut is,
    };
    let affine = Affine {
        gamma: Some(&[1.0f32, 1.0][..]),
        beta: None,
    };
    let msg = mismatch(
        norm::batch_norm_forward_train(&shape, &x, affine, 1e-5, &mut y, save).unwrap_err(),
        op,
    );
    assert!(msg.contains("gamma has 2 elements"), "{msg}");
    let save = NormStatsMut {
        mean: &mut m[..2],
        invstd: &mut is,
    };
    let msg = mismatch(
        norm::batch_norm_forward_train(&shape, &x, Affine::identity(), 1e-5, &mut y, save)
            .unwrap_err(),
        op,
    );
    assert!(msg.contains("save.mean has 2 elements"), "{msg}");
    let save = NormStatsMut {
        mean: &mut m,
        invstd: &mut is,
    };
    let msg = invalid(
        norm::batch_norm_forward_train(&shape, &x, Affine::identity(), -1.0, &mut y, save)
            .unwrap_err(),
        op,
    );
    assert!(msg.contains("eps must be finite and >= 0, got -1"), "{msg}");

    let op = "batch_norm_update_running_stats";
    let (mut rm, mut rv) = ([0.0f32; 3], [1.0f32; 3]);
    let saved = NormStats {
        mean: &m,
        invstd: &is,
    };
    let running = RunningStatsMut {
        mean: &mut rm,
        var: &mut rv,
    };
    let msg = invalid(
        norm::batch_norm_update_running_stats(&shape, saved, 1e-5, 1.5, running).unwrap_err(),
        op,
    );
    assert!(msg.contains("momentum must be in [0, 1], got 1.5"), "{msg}");
    let one = BatchNormShape::new(1, 3, 1).unwrap();
    let running = RunningStatsMut {
        mean: &mut rm,
        var: &mut rv,
    };
    let msg = invalid(
        norm::batch_norm_update_running_stats(&one, saved, 1e-5, 0.1, running).unwrap_err(),
        op,
    );
    assert!(
        msg.contains("at least 2 values per channel, got N * S = 1"),
        "{msg}"
    );

    let op = "batch_norm_forward_eval";
    let running = RunningStats {
        mean: &rm,
        var: &[1.0f32, -1.0, 1.0][..],
    };
    let msg = invalid(
        norm::batch_norm_forward_eval(&shape, &x, running, Affine::identity(), 1e-5, &mut y)
            .unwrap_err(),
        op,
    );
    assert!(
        msg.contains("var[1] + eps = -1 + 0.00001 is not positive"),
        "{msg}"
    );

    let op = "batch_norm_backward";
    let mut gx = [0.0f32; 23];
    let grads = NormGrads {
        x: Some(&mut gx[..]),
        gamma: None,
        beta: None,
    };
    let msg = mismatch(
        norm::batch_norm_backward(&shape, &x, &x, None, saved, grads).unwrap_err(),
        op,
    );
    assert!(msg.contains("grads.x has 23 elements"), "{msg}");
    let mut gb = [0.0f32; 4];
    let grads = NormGrads {
        x: None,
        gamma: None,
        beta: Some(&mut gb[..]),
    };
    let msg = mismatch(
        norm::batch_norm_backward(&shape, &x, &x, None, saved, grads).unwrap_err(),
        op,
    );
    assert!(msg.contains("grads.beta has 4 elements"), "{msg}");

    let op = "group_norm_forward";
    let gshape = GroupNormShape::new(2, 6, 2, 3).unwrap();
    let (mut gm, mut gis) = ([0.0f32; 5], [0.0f32; 6]);
    let save = NormStatsMut {
        mean: &mut gm,
        invstd: &mut gis,
    };
    let msg = mismatch(
        norm::group_norm_forward(&gshape, &x, Affine::identity(), 1e-5, &mut y, save).unwrap_err(),
        op,
    );
    assert!(
        msg.contains("save.mean has 5 elements") && msg.contains("needs 6"),
        "{msg}"
    );
    let op = "group_norm_backward";
    let saved = NormStats {
        mean: &gis,
        invstd: &gis,
    };
    let msg = mismatch(
        norm::group_norm_backward(&gshape, &x, &x[..20], None, saved, NormGrads::default())
            .unwrap_err(),
        op,
    );
    assert!(msg.contains("grad_out has 20 elements"), "{msg}");
}
