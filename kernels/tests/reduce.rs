//! Reductions, row-wise softmax/log-softmax (and their backward passes) and fused
//! cross-entropy against naive f64 references at awkward sizes and every SIMD level,
//! with NaN/inf rows, large logits, finite-difference checks and error paths.

use kernels::cpu::reduce;
use kernels::cpu::SimdLevel;
use kernels::KernelError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 8] = [0, 1, 3, 17, 33, 1000, (1 << 16) + 3, 300_007];

/// (rows, cols): empty, single, shorter/longer than a vector, many short rows (the
/// classifier head), and blocks above the parallel threshold.
const SHAPES: [(usize, usize); 10] = [
    (0, 0),
    (0, 5),
    (1, 1),
    (3, 17),
    (17, 3),
    (33, 33),
    (5, 1000),
    (1024, 10),
    (300, 1003),
    (4096, 16),
];

fn data(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ (n as u64).wrapping_mul(0x9e37_79b9));
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

fn up(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// `|a - b| <= rel * scale + abs`, NaN matching NaN.
fn close(a: f64, b: f64, rel: f64, scale: f64, abs: f64) -> bool {
    same(a, b) || (a - b).abs() <= rel * scale + abs
}

#[test]
fn sums_match_f64_reference_at_every_level_and_size() {
    for level in SimdLevel::available() {
        for &n in &SIZES {
            let x = to_f32(&data(n, -10.0, 10.0, 1));
            let xd = up(&x);
            let want: f64 = xd.iter().sum();
            let want_sq: f64 = xd.iter().map(|v| v * v).sum();
            let abs_sum: f64 = xd.iter().map(|v| v.abs()).sum();
            // Both sums are in f64 and differ only in order: each is within
            // n * eps * sum|x| of the exact sum (the recursive-summation bound).
            let rel = (n as f64 + 4.0) * f64::EPSILON;
            let got = reduce::sum_at(level, &x);
            assert!(
                close(got, want, rel, abs_sum, 0.0),
                "sum at {level}, n = {n}: {got} vs {want}"
            );
            let got = reduce::sum_sq_at(level, &x);
            assert!(
                close(got, want_sq, rel, want_sq, 0.0),
                "sum_sq at {level}, n = {n}: {got} vs {want_sq}"
            );
            let x64 = data(n, -10.0, 10.0, 2);
            let want64: f64 = x64.iter().sum();
            let abs64: f64 = x64.iter().map(|v| v.abs()).sum();
            assert!(
                close(reduce::sum_at(level, &x64), want64, rel, abs64, 0.0),
                "f64 sum at {level}"
            );
        }
    }
}

#[test]
fn f32_sums_are_accumulated_beyond_f32_precision() {
    // 2^24 + many ones: an f32 accumulator would stop growing at 2^24.
    let mut x = vec![1.0f32; 1 << 20];
    x[0] = 16_777_216.0;
    for level in SimdLevel::available() {
        assert_eq!(
            reduce::sum_at(level, &x),
            16_777_216.0 + f64::from((1u32 << 20) - 1),
            "at {level}"
        );
    }
}

#[test]
fn max_min_argmax_match_reference_with_nan_and_ties() {
    for level in SimdLevel::available() {
        for &n in &SIZES[1..] {
            let mut x = to_f32(&data(n, -100.0, 100.0, 3));
            let xd = up(&x);
            let mx = xd.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mn = xd.iter().copied().fold(f64::INFINITY, f64::min);
            let first = xd.iter().position(|&v| v == mx).unwrap();
            assert_eq!(
                f64::from(reduce::max_at(level, &x).unwrap()),
                mx,
                "max at {level}, n = {n}"
            );
            assert_eq!(
                f64::from(reduce::min_at(level, &x).unwrap()),
                mn,
                "min at {level}, n = {n}"
            );
            assert_eq!(
                reduce::argmax_at(level, &x).unwrap(),
                first,
                "argmax at {level}, n = {n}"
            );
            // A later tie does not move argmax; an earlier one does.
            x.push(mx as f32);
            assert_eq!(
                reduce::argmax_at(level, &x).unwrap(),
                first,
                "tie at {level}"
            );
            x.insert(0, mx as f32);
            assert_eq!(
                reduce::argmax_at(level, &x).unwrap(),
                0,
                "first tie at {level}"
            );
            // NaN wins, at the position of the first NaN, wherever it sits.
            let pos = x.len() * 2 / 3;
            x[pos] = f32::NAN;
            let last = x.len() - 1;
            x[last] = f32::NAN;
            assert!(
                reduce::max_at(level, &x).unwrap().is_nan(),
                "max NaN at {level}, n = {n}"
            );
            assert!(
                reduce::min_at(level, &x).unwrap().is_nan(),
                "min NaN at {level}, n = {n}"
            );
            assert_eq!(
                reduce::argmax_at(level, &x).unwrap(),
                pos,
                "argmax NaN at {level}, n = {n}"
            );
        }
        let inf = [f32::NEG_INFINITY, f32::NEG_INFINITY];
        assert_eq!(reduce::argmax_at(level, &inf).unwrap(), 0);
        assert_eq!(reduce::max_at(level, &inf).unwrap(), f32::NEG_INFINITY);
    }
}

#[test]
fn empty_slices_have_no_max() {
    let e: [f32; 0] = [];
    for (err, op) in [
        (reduce::max(&e).unwrap_err(), "max"),
        (reduce::min(&e).unwrap_err(), "min"),
        (reduce::argmax(&e).map(|_| 0.0).unwrap_err(), "argmax"),
    ] {
        assert_eq!(
            err.to_string(),
            format!("{op}: invalid argument: the slice is empty")
        );
    }
    assert_eq!(reduce::sum(&e), 0.0);
}

#[test]
fn row_and_column_reductions_match_reference() {
    for level in SimdLevel::available() {
        for &(rows, cols) in &SHAPES {
            let x = to_f32(&data(rows * cols, -5.0, 5.0, 4));
            let xd = up(&x);
            let ctx = format!("at {level}, {rows}x{cols}");

            let mut out = vec![f32::NAN; rows];
            reduce::sum_rows_at(level, &x, rows, cols, &mut out).unwrap();
            for r in 0..rows {
                let want: f64 = xd[r * cols..(r + 1) * cols].iter().sum();
                assert!(
                    close(f64::from(out[r]), want, 1e-6, want.abs(), 1e-6),
                    "sum_rows {ctx}"
                );
            }

            let mut cs = vec![f32::NAN; cols];
            reduce::sum_cols_at(level, &x, rows, cols, &mut cs).unwrap();
            for c in 0..cols {
                let want: f64 = (0..rows).map(|r| xd[r * cols + c]).sum();
                // Accumulated in f64, rounded once to f32.
                assert_eq!(cs[c], want as f32, "sum_cols {ctx}, col {c}");
            }

            if cols == 0 {
                continue;
            }
            let mut mx = vec![f32::NAN; rows];
            let mut am = vec![u32::MAX; rows];
            reduce::max_rows_at(level, &x, rows, cols, &mut mx).unwrap();
            reduce::argmax_rows_at(level, &x, rows, cols, &mut am).unwrap();
            for r in 0..rows {
                let row = &x[r * cols..(r + 1) * cols];
                let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert_eq!(mx[r], m, "max_rows {ctx}");
                assert_eq!(
                    am[r] as usize,
                    row.iter().position(|&v| v == m).unwrap(),
                    "argmax_rows {ctx}"
                );
            }
        }
    }
}

#[test]
fn f64_column_sums_are_exactly_the_ordered_f64_sum_for_small_blocks() {
    // One row chunk: each column is summed top to bottom in f64.
    let (rows, cols) = (37, 21);
    let x = data(rows * cols, -1.0, 1.0, 5);
    for level in SimdLevel::available() {
        let mut out = vec![0.0f64; cols];
        reduce::sum_cols_at(level, &x, rows, cols, &mut out).unwrap();
        for c in 0..cols {
            let want = (0..rows).fold(0.0, |a, r| a + x[r * cols + c]);
            assert_eq!(out[c], want, "at {level}");
        }
    }
}

/// Row softmax and log-softmax in f64 by the textbook stable formula.
fn softmax_ref(row: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, |a, b| {
        if a.is_nan() || b.is_nan() {
            f64::NAN
        } else {
            a.max(b)
        }
    });
    let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
    let p = row.iter().map(|v| (v - m).exp() / s).collect();
    let lp = row.iter().map(|v| (v - m) - s.ln()).collect();
    (p, lp)
}

/// Logits with large offsets (1e4), -inf entries and, in some rows, extreme values.
fn logits(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut x = to_f32(&data(rows * cols, -8.0, 8.0, seed));
    for r in 0..rows {
        let row = &mut x[r * cols..(r + 1) * cols];
        match r % 5 {
            1 => row.iter_mut().for_each(|v| *v += 1e4),
            2 if cols > 1 => row[cols / 2] = f32::NEG_INFINITY,
            3 => row.iter_mut().for_each(|v| *v *= 50.0),
            _ => {}
        }
    }
    x
}

#[test]
fn softmax_and_log_softmax_match_reference() {
    for level in SimdLevel::available() {
        for &(rows, cols) in &SHAPES {
            let x = logits(rows, cols, 6);
            let xd = up(&x);
            let mut p = vec![f32::NAN; x.len()];
            let mut lp = vec![f32::NAN; x.len()];
            reduce::softmax_rows_at(level, &x, rows, cols, &mut p).unwrap();
            reduce::log_softmax_rows_at(level, &x, rows, cols, &mut lp).unwrap();
            let ctx = format!("at {level}, {rows}x{cols}");
            for r in 0..rows {
                let (wp, wlp) = softmax_ref(&xd[r * cols..(r + 1) * cols]);
                let total: f64 = p[r * cols..(r + 1) * cols]
                    .iter()
                    .map(|&v| f64::from(v))
                    .sum();
                assert!(
                    (total - 1.0).abs() < 1e-5,
                    "softmax row sums to {total} {ctx}"
                );
                for c in 0..cols {
                    let i = r * cols + c;
                    // exp within 1 ulp and a scaling, after an f32 subtraction x - m that
                    // rounds by up to |x - m| * 2^-24 (a relative error of p of that size).
                    let rel = 4e-7 + wlp[c].abs() * 6e-8;
                    assert!(
                        close(f64::from(p[i]), wp[c], rel, wp[c], 1e-30),
                        "softmax {ctx}: {} vs {}",
                        p[i],
                        wp[c]
                    );
                    // (x - m) is exact; ln(sum) is rounded once.
                    assert!(
                        close(f64::from(lp[i]), wlp[c], 2e-7, wlp[c].abs() + 1.0, 0.0),
                        "log_softmax {ctx}: {} vs {}",
                        lp[i],
                        wlp[c]
                    );
                }
            }
        }
    }
}

#[test]
fn degenerate_softmax_rows_are_nan_like_pytorch() {
    for level in SimdLevel::available() {
        let x = [
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY, // all -inf
            1.0,
            f32::NAN,
            2.0, // a NaN
            1.0,
            f32::INFINITY,
            2.0, // +inf
            0.0,
            f32::NEG_INFINITY,
            0.0, // one -inf: probability 0
        ];
        let mut p = [0.0f32; 12];
        reduce::softmax_rows_at(level, &x, 4, 3, &mut p).unwrap();
        assert!(p[..9].iter().all(|v| v.is_nan()), "at {level}: {p:?}");
        assert_eq!(&p[9..], &[0.5, 0.0, 0.5], "at {level}");
        let mut lp = [0.0f32; 12];
        reduce::log_softmax_rows_at(level, &x, 4, 3, &mut lp).unwrap();
        assert!(lp[..9].iter().all(|v| v.is_nan()), "at {level}: {lp:?}");
        assert_eq!(lp[10], f32::NEG_INFINITY);
        assert!((lp[9] + std::f32::consts::LN_2).abs() < 1e-7);
    }
}

#[test]
fn backward_passes_match_reference_formulas() {
    for level in SimdLevel::available() {
        for &(rows, cols) in &SHAPES {
            let x = logits(rows, cols, 7);
            let g = to_f32(&data(rows * cols, -1.0, 1.0, 8));
            let (mut p, mut lp) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
            reduce::softmax_rows_at(level, &x, rows, cols, &mut p).unwrap();
            reduce::log_softmax_rows_at(level, &x, rows, cols, &mut lp).unwrap();
            let mut gi = vec![f32::NAN; x.len()];
            let ctx = format!("at {level}, {rows}x{cols}");

            reduce::softmax_rows_backward_at(level, &p, &g, rows, cols, &mut gi).unwrap();
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                let (y, gg) = (up(&p[s.clone()]), up(&g[s]));
                let dot: f64 = y.iter().zip(&gg).map(|(a, b)| a * b).sum();
                for c in 0..cols {
                    let want = y[c] * (gg[c] - dot);
                    let scale = y[c] * (gg[c].abs() + dot.abs());
                    assert!(
                        close(f64::from(gi[r * cols + c]), want, 4e-7, scale, 1e-37),
                        "softmax_backward {ctx}"
                    );
                }
            }

            reduce::log_softmax_rows_backward_at(level, &lp, &g, rows, cols, &mut gi).unwrap();
            for r in 0..rows {
                let s = r * cols..(r + 1) * cols;
                let (y, gg) = (up(&lp[s.clone()]), up(&g[s]));
                let sum: f64 = gg.iter().sum();
                for c in 0..cols {
                    let want = gg[c] - y[c].exp() * sum;
                    let scale = gg[c].abs() + y[c].exp() * sum.abs();
                    assert!(
                        close(f64::from(gi[r * cols + c]), want, 4e-7, scale, 0.0),
                        "log_softmax_backward {ctx}"
                    );
                }
            }
        }
    }
}

/// Central-difference directional derivative of `f` at `x` along `v`.
fn directional(f: &dyn Fn(&[f64]) -> f64, x: &[f64], v: &[f64]) -> f64 {
    let h = 1e-6;
    let plus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a + h * b).collect();
    let minus: Vec<f64> = x.iter().zip(v).map(|(a, b)| a - h * b).collect();
    (f(&plus) - f(&minus)) / (2.0 * h)
}

#[test]
fn backward_passes_match_finite_differences_in_f64() {
    let (rows, cols) = (4, 7);
    let x = data(rows * cols, -3.0, 3.0, 9);
    let g = data(rows * cols, -1.0, 1.0, 10);
    let v = data(rows * cols, -1.0, 1.0, 11);
    let targets = [0u32, 6, 3, 3];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();

    // L(x) = <g, softmax(x)>: dL/dx = softmax_backward(y, g).
    let loss_sm = |x: &[f64]| {
        let mut p = vec![0.0; x.len()];
        reduce::softmax_rows(x, rows, cols, &mut p).unwrap();
        dot(&g, &p)
    };
    let loss_lsm = |x: &[f64]| {
        let mut p = vec![0.0; x.len()];
        reduce::log_softmax_rows(x, rows, cols, &mut p).unwrap();
        dot(&g, &p)
    };
    let loss_ce = |x: &[f64]| {
        let (mut l, mut lp) = (vec![0.0; rows], vec![0.0; x.len()]);
        reduce::cross_entropy_rows(x, &targets, rows, cols, &mut l, &mut lp).unwrap();
        l.iter().sum::<f64>() / rows as f64
    };

    let mut y = vec![0.0; x.len()];
    let mut gi = vec![0.0; x.len()];
    reduce::softmax_rows(&x, rows, cols, &mut y).unwrap();
    reduce::softmax_rows_backward(&y, &g, rows, cols, &mut gi).unwrap();
    assert!((dot(&gi, &v) - directional(&loss_sm, &x, &v)).abs() < 1e-8);

    reduce::log_softmax_rows(&x, rows, cols, &mut y).unwrap();
    reduce::log_softmax_rows_backward(&y, &g, rows, cols, &mut gi).unwrap();
    assert!((dot(&gi, &v) - directional(&loss_lsm, &x, &v)).abs() < 1e-8);

    let (mut l, mut lp) = (vec![0.0; rows], vec![0.0; x.len()]);
    reduce::cross_entropy_rows(&x, &targets, rows, cols, &mut l, &mut lp).unwrap();
    let grad_loss = vec![1.0 / rows as f64; rows];
    reduce::cross_entropy_rows_backward(&lp, &targets, &grad_loss, rows, cols, &mut gi).unwrap();
    assert!((dot(&gi, &v) - directional(&loss_ce, &x, &v)).abs() < 1e-8);
}

#[test]
fn cross_entropy_matches_reference_at_every_level() {
    for level in SimdLevel::available() {
        for &(rows, cols) in &SHAPES {
            if cols == 0 {
                continue;
            }
            let x = logits(rows, cols, 12);
            let targets: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % cols) as u32).collect();
            let (mut loss, mut lp) = (vec![f32::NAN; rows], vec![f32::NAN; x.len()]);
            reduce::cross_entropy_rows_at(level, &x, &targets, rows, cols, &mut loss, &mut lp)
                .unwrap();
            let mut want_lp = vec![0.0f32; x.len()];
            reduce::log_softmax_rows_at(level, &x, rows, cols, &mut want_lp).unwrap();
            assert_eq!(lp, want_lp, "log_probs at {level}");
            let xd = up(&x);
            for r in 0..rows {
                let (_, wlp) = softmax_ref(&xd[r * cols..(r + 1) * cols]);
                let want = -wlp[targets[r] as usize];
                assert!(
                    close(f64::from(loss[r]), want, 2e-7, want.abs() + 1.0, 0.0),
                    "loss at {level}: {} vs {want}",
                    loss[r]
                );
            }
            let grad_loss = vec![0.5f32; rows];
            let mut gl = vec![f32::NAN; x.len()];
            reduce::cross_entropy_rows_backward_at(
                level, &lp, &targets, &grad_loss, rows, cols, &mut gl,
            )
            .unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    let p = f64::from(lp[r * cols + c]).exp();
                    let want = 0.5 * (p - if c == targets[r] as usize { 1.0 } else { 0.0 });
                    assert!(
                        close(f64::from(gl[r * cols + c]), want, 4e-7, 0.5, 0.0),
                        "ce backward at {level}"
                    );
                }
            }
        }
    }
}

#[test]
fn out_of_range_targets_are_errors_and_nothing_is_written() {
    let x = [0.0f32; 6];
    let (mut loss, mut lp) = ([7.0f32; 2], [7.0f32; 6]);
    let err = reduce::cross_entropy_rows(&x, &[1, 3], 2, 3, &mut loss, &mut lp).unwrap_err();
    assert!(matches!(
        err,
        KernelError::InvalidArgument {
            op: "cross_entropy_rows",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "cross_entropy_rows: invalid argument: target 3 at row 1 is out of range for 3 classes"
    );
    assert_eq!((loss, lp), ([7.0; 2], [7.0; 6]));
    let mut g = [0.0f32; 6];
    let err =
        reduce::cross_entropy_rows_backward(&x, &[5, 0], &[1.0, 1.0], 2, 3, &mut g).unwrap_err();
    assert!(err.to_string().contains("target 5 at row 0"));
    let err = reduce::cross_entropy_rows(&x, &[1], 2, 3, &mut loss, &mut lp).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cross_entropy_rows: size mismatch: targets has 1 elements, expected one per row (2)"
    );
}

#[test]
fn block_size_mismatches_are_errors_naming_the_sizes() {
    let x = [0.0f32; 6];
    let mut out = [0.0f32; 6];
    let err = reduce::softmax_rows(&x, 2, 4, &mut out).unwrap_err();
    assert_eq!(
        err.to_string(),
        "softmax_rows: size mismatch: x has 6 elements, expected rows x cols = 2 x 4 = 8"
    );
    let err = reduce::softmax_rows_backward(&x, &x[..5], 2, 3, &mut out).unwrap_err();
    assert!(err.to_string().contains("grad_out has 5 elements"));
    let mut r = [0.0f32; 3];
    let err = reduce::sum_rows(&x, 2, 3, &mut r).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sum_rows: size mismatch: out has 3 elements, expected one per row (2)"
    );
    let mut c = [0.0f32; 2];
    let err = reduce::sum_cols(&x, 2, 3, &mut c).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sum_cols: size mismatch: out has 2 elements, expected one per column (3)"
    );
    let mut idx = [0u32; 2];
    let err = reduce::argmax_rows(&[] as &[f32], 2, 0, &mut idx).unwrap_err();
    assert_eq!(
        err.to_string(),
        "argmax_rows: invalid argument: rows have no elements (2 x 0)"
    );
    let err = reduce::max_rows(&x, usize::MAX, 2, &mut r).unwrap_err();
    assert!(err.to_string().contains("overflows usize"));
}
