//! Tests of `sgemm` / `dgemm` (and their batched forms) against the plain reference.
//!
//! Every fast result is compared with `reference::gemm` evaluated in f64 on the same
//! inputs (f32 inputs are exact in f64, so the oracle is accurate to ~1e-16). The
//! tolerance is the classical dot-product error bound: for `k` terms computed in a type
//! with unit roundoff `u`, `|computed - exact| <= gamma * (|alpha| sum_p |a_ip| |b_pj| +
//! |beta| |c_ij|)` with `gamma = (2k + 8) u` (`2k` rather than `k` because the portable
//! kernel rounds the product and the sum separately; `+ 8` covers the alpha/beta scaling,
//! the final add and summing partial products across k blocks). The bound is computed
//! per element from the absolute values, so it is tight for every magnitude.
//!
//! Every test runs at every level in `SimdLevel::available()`, through the explicit
//! `*_at` entry points (tests never touch the process-wide level cap).
//!
//! Unused slots of strided operands are filled with NaN: reading one would poison a
//! result, and writing one (for C) is detected, so each test also proves the kernels
//! touch exactly the elements the strides describe.

use kernels::cpu::gemm::{
    dgemm_at, dgemm_batched_at, reference, sgemm, sgemm_at, sgemm_batched_at, MatMut, MatRef,
};
use kernels::cpu::SimdLevel;
use kernels::KernelError;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The sizes the issue calls awkward: around the register-tile and vector widths.
const AWKWARD: [usize; 10] = [1, 2, 3, 7, 17, 31, 33, 64, 65, 127];

/// How a test matrix is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
enum Layout {
    /// Dense, `row_stride = cols`, `col_stride = 1`.
    RowMajor,
    /// Dense transposed storage, `row_stride = 1`, `col_stride = rows`.
    ColMajor,
    /// Row-major inside a wider buffer (a narrowed tensor): `row_stride = cols + 3`.
    RowPadded,
    /// Column-major inside a taller buffer: `col_stride = rows + 2`.
    ColPadded,
    /// Neither stride is 1 (every other column of a wider matrix).
    Strided,
}

const LAYOUTS: [Layout; 5] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::RowPadded,
    Layout::ColPadded,
    Layout::Strided,
];

impl Layout {
    /// `(row_stride, col_stride)` for a `rows x cols` matrix.
    fn strides(self, rows: usize, cols: usize) -> (usize, usize) {
        match self {
            Layout::RowMajor => (cols, 1),
            Layout::ColMajor => (1, rows),
            Layout::RowPadded => (cols + 3, 1),
            Layout::ColPadded => (1, rows + 2),
            Layout::Strided => (2 * cols + 1, 2),
        }
    }
}

/// An owned strided matrix; slots outside the view hold NaN.
#[derive(Clone, Debug)]
struct Mat<T> {
    data: Vec<T>,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// The two element types under test.
trait Scalar: Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    const NAN: Self;
    /// Unit roundoff of the type.
    const UNIT_ROUNDOFF: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Scalar for f32 {
    const NAN: Self = f32::NAN;
    const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Scalar for f64 {
    const NAN: Self = f64::NAN;
    const UNIT_ROUNDOFF: f64 = f64::EPSILON / 2.0;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl<T: Scalar> Mat<T> {
    /// Uniform values in [-1, 1) in the view, NaN elsewhere.
    fn random(rows: usize, cols: usize, layout: Layout, rng: &mut StdRng) -> Self {
        let (rs, cs) = layout.strides(rows, cols);
        let len = if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * rs + (cols - 1) * cs + 1
        };
        let mut m = Mat {
            data: vec![T::NAN; len],
            rows,
            cols,
            rs,
            cs,
        };
        for i in 0..rows {
            for j in 0..cols {
                m.data[i * rs + j * cs] = T::from_f64(rng.random_range(-1.0..1.0));
            }
        }
        m
    }

    /// The same matrix filled with NaN (an output whose old contents must not be read).
    fn nan_like(&self) -> Self {
        Mat {
            data: vec![T::NAN; self.data.len()],
            ..*self
        }
    }

    fn get(&self, i: usize, j: usize) -> T {
        self.data[i * self.rs + j * self.cs]
    }

    fn view(&self) -> MatRef<'_, T> {
        MatRef::new(&self.data, self.rows, self.cols, self.rs, self.cs).unwrap()
    }

    fn view_mut(&mut self) -> MatMut<'_, T> {
        MatMut::new(&mut self.data, self.rows, self.cols, self.rs, self.cs).unwrap()
    }

    /// Elementwise map into f64 (same strides; slots outside the view stay NaN).
    fn map_f64(&self, f: impl Fn(f64) -> f64) -> Mat<f64> {
        Mat {
            data: self.data.iter().map(|&x| f(x.to_f64())).collect(),
            rows: self.rows,
            cols: self.cols,
            rs: self.rs,
            cs: self.cs,
        }
    }

    /// For each slot of `data`, whether it is an element of the view.
    fn view_mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.data.len()];
        for i in 0..self.rows {
            for j in 0..self.cols {
                mask[i * self.rs + j * self.cs] = true;
            }
        }
        mask
    }
}

/// Expected result and per-element error bound for `alpha * A * B + beta * C`.
fn oracle<T: Scalar>(
    alpha: T,
    a: &Mat<T>,
    b: &Mat<T>,
    beta: T,
    c: &Mat<T>,
) -> (Mat<f64>, Mat<f64>) {
    let (alpha, beta) = (alpha.to_f64(), beta.to_f64());
    let (a64, b64) = (a.map_f64(|x| x), b.map_f64(|x| x));
    let mut want = c.map_f64(|x| x);
    reference::gemm(alpha, a64.view(), b64.view(), beta, want.view_mut());
    // Magnitudes: |alpha| |A| |B| + |beta| |C| (NaN slots of a beta = 0 C are not read).
    let (a_abs, b_abs) = (a.map_f64(f64::abs), b.map_f64(f64::abs));
    let mut bound = c.map_f64(f64::abs);
    reference::gemm(
        alpha.abs(),
        a_abs.view(),
        b_abs.view(),
        beta.abs(),
        bound.view_mut(),
    );
    let gamma = (2 * a.cols + 8) as f64 * T::UNIT_ROUNDOFF;
    for x in bound.data.iter_mut() {
        *x = *x * gamma + f64::MIN_POSITIVE;
    }
    (want, bound)
}

/// Checks `got` (the fast result written over a copy of `c_before`) against the oracle,
/// and that slots outside the view were not touched.
fn check<T: Scalar>(
    what: &str,
    got: &Mat<T>,
    c_before: &Mat<T>,
    want: &Mat<f64>,
    bound: &Mat<f64>,
) -> Result<(), String> {
    for i in 0..got.rows {
        for j in 0..got.cols {
            let (g, w, tol) = (got.get(i, j).to_f64(), want.get(i, j), bound.get(i, j));
            // Written so that a NaN result fails the check.
            let within = (g - w).abs() <= tol;
            if !within {
                return Err(format!(
                    "{what}: C[{i}, {j}] = {g}, expected {w} (|diff| {} > tolerance {tol})",
                    (g - w).abs()
                ));
            }
        }
    }
    let mask = got.view_mask();
    for (idx, (g, before)) in got.data.iter().zip(&c_before.data).enumerate() {
        if !mask[idx] && g.to_f64().to_bits() != before.to_f64().to_bits() {
            return Err(format!(
                "{what}: slot {idx} outside the view of C was written"
            ));
        }
    }
    Ok(())
}

/// Runs sgemm at `level` on the given operands and checks it.
fn run_sgemm(
    level: SimdLevel,
    alpha: f32,
    a: &Mat<f32>,
    b: &Mat<f32>,
    beta: f32,
    c: &Mat<f32>,
) -> Result<(), String> {
    let what = format!(
        "sgemm {level} m={} n={} k={} alpha={alpha} beta={beta} strides A {:?} B {:?} C {:?}",
        a.rows,
        b.cols,
        a.cols,
        (a.rs, a.cs),
        (b.rs, b.cs),
        (c.rs, c.cs)
    );
    let (want, bound) = oracle(alpha, a, b, beta, c);
    let mut got = c.clone();
    sgemm_at(level, alpha, a.view(), b.view(), beta, got.view_mut()).map_err(|e| e.to_string())?;
    check(&what, &got, c, &want, &bound)
}

/// Runs dgemm at `level` on the given operands and checks it.
fn run_dgemm(
    level: SimdLevel,
    alpha: f64,
    a: &Mat<f64>,
    b: &Mat<f64>,
    beta: f64,
    c: &Mat<f64>,
) -> Result<(), String> {
    let what = format!(
        "dgemm {level} m={} n={} k={} alpha={alpha} beta={beta}",
        a.rows, b.cols, a.cols
    );
    let (want, bound) = oracle(alpha, a, b, beta, c);
    let mut got = c.clone();
    dgemm_at(level, alpha, a.view(), b.view(), beta, got.view_mut()).map_err(|e| e.to_string())?;
    check(&what, &got, c, &want, &bound)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

#[test]
fn sgemm_matches_reference_on_every_awkward_size_and_level() {
    let mut rng = StdRng::seed_from_u64(1);
    for level in SimdLevel::available() {
        for &m in &AWKWARD {
            for &n in &AWKWARD {
                for &k in &AWKWARD {
                    let a = Mat::random(m, k, Layout::RowMajor, &mut rng);
                    let b = Mat::random(k, n, Layout::RowMajor, &mut rng);
                    let c = Mat::random(m, n, Layout::RowMajor, &mut rng).nan_like();
                    run_sgemm(level, 1.0, &a, &b, 0.0, &c).unwrap();
                }
            }
        }
    }
}

/// Wide outputs (n > 128) make the driver pack A instead of reading it in place, and
/// m > 64 makes it pack B: together with the test above this covers both ways of
/// feeding each operand, for every source layout.
#[test]
fn packed_operand_paths_match_reference() {
    let mut rng = StdRng::seed_from_u64(12);
    let sizes = [1, 7, 17, 33, 65, 127];
    for level in SimdLevel::available() {
        for &m in &sizes {
            for &k in &sizes {
                for n in [129, 300] {
                    for la in [Layout::RowMajor, Layout::ColMajor, Layout::Strided] {
                        for lb in [Layout::RowMajor, Layout::ColMajor] {
                            let a = Mat::random(m, k, la, &mut rng);
                            let b = Mat::random(k, n, lb, &mut rng);
                            let c = Mat::random(m, n, Layout::RowMajor, &mut rng);
                            run_sgemm(level, -1.0, &a, &b, 0.5, &c).unwrap();
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn dgemm_matches_reference_on_awkward_sizes_and_every_level() {
    let mut rng = StdRng::seed_from_u64(2);
    for level in SimdLevel::available() {
        for &m in &AWKWARD {
            for &n in &AWKWARD {
                for &k in &[1, 7, 33, 127] {
                    let a = Mat::random(m, k, Layout::RowMajor, &mut rng);
                    let b = Mat::random(k, n, Layout::ColMajor, &mut rng);
                    let c = Mat::random(m, n, Layout::RowMajor, &mut rng);
                    run_dgemm(level, 1.5, &a, &b, -0.5, &c).unwrap();
                }
            }
        }
    }
}

#[test]
fn every_layout_combination_matches_reference() {
    let mut rng = StdRng::seed_from_u64(3);
    for level in SimdLevel::available() {
        for (la, lb, lc) in LAYOUTS.iter().flat_map(|&la| {
            LAYOUTS
                .iter()
                .flat_map(move |&lb| LAYOUTS.map(|lc| (la, lb, lc)))
        }) {
            let (m, n, k) = (31, 65, 17);
            let a = Mat::random(m, k, la, &mut rng);
            let b = Mat::random(k, n, lb, &mut rng);
            let c = Mat::random(m, n, lc, &mut rng);
            run_sgemm(level, 0.75, &a, &b, 1.25, &c).unwrap();
            let (a, b, c) = (a.map_f64(|x| x), b.map_f64(|x| x), c.map_f64(|x| x));
            run_dgemm(level, 0.75, &a, &b, 1.25, &c).unwrap();
        }
    }
}

#[test]
fn alpha_and_beta_variants() {
    let mut rng = StdRng::seed_from_u64(4);
    for level in SimdLevel::available() {
        for &alpha in &[1.0f32, -1.5, 3.0] {
            for &beta in &[0.0f32, 1.0, 0.5, -2.0] {
                let a = Mat::random(33, 127, Layout::RowMajor, &mut rng);
                let b = Mat::random(127, 65, Layout::RowMajor, &mut rng);
                let c = Mat::random(33, 65, Layout::RowMajor, &mut rng);
                run_sgemm(level, alpha, &a, &b, beta, &c).unwrap();
            }
        }
    }
}

#[test]
fn beta_zero_does_not_read_nan_in_c() {
    let mut rng = StdRng::seed_from_u64(5);
    for level in SimdLevel::available() {
        for (m, n, k) in [(1, 1, 1), (12, 32, 5), (65, 33, 300), (7, 127, 2)] {
            let a = Mat::random(m, k, Layout::RowMajor, &mut rng);
            let b = Mat::random(k, n, Layout::RowMajor, &mut rng);
            for layout in LAYOUTS {
                let c = Mat::<f32>::random(m, n, layout, &mut rng).nan_like();
                let mut got = c.clone();
                sgemm_at(level, 1.0, a.view(), b.view(), 0.0, got.view_mut()).unwrap();
                for i in 0..m {
                    for j in 0..n {
                        assert!(got.get(i, j).is_finite(), "{level} {m}x{n}x{k} C[{i},{j}]");
                    }
                }
                run_sgemm(level, 1.0, &a, &b, 0.0, &c).unwrap();
            }
        }
    }
}

#[test]
fn k_zero_scales_c_by_beta() {
    let mut rng = StdRng::seed_from_u64(6);
    for level in SimdLevel::available() {
        let a = Mat::<f32>::random(5, 0, Layout::RowMajor, &mut rng);
        let b = Mat::<f32>::random(0, 3, Layout::RowMajor, &mut rng);
        let c = Mat::<f32>::random(5, 3, Layout::RowMajor, &mut rng);
        let mut got = c.clone();
        sgemm_at(level, 2.0, a.view(), b.view(), 0.5, got.view_mut()).unwrap();
        for (g, c) in got.data.iter().zip(&c.data) {
            assert_eq!(*g, 0.5 * c);
        }
        let mut got = c.nan_like();
        sgemm_at(level, 2.0, a.view(), b.view(), 0.0, got.view_mut()).unwrap();
        assert!(
            got.data.iter().all(|&x| x == 0.0),
            "{level}: {:?}",
            got.data
        );
    }
}

#[test]
fn alpha_zero_scales_c_without_reading_a_or_b() {
    for level in SimdLevel::available() {
        let a = vec![f32::NAN; 6];
        let b = vec![f32::INFINITY; 6];
        let mut c = vec![1.0f32, 2.0, 3.0, 4.0];
        sgemm_at(
            level,
            0.0,
            MatRef::row_major(&a, 2, 3).unwrap(),
            MatRef::row_major(&b, 3, 2).unwrap(),
            -1.0,
            MatMut::row_major(&mut c, 2, 2).unwrap(),
        )
        .unwrap();
        assert_eq!(c, [-1.0, -2.0, -3.0, -4.0], "{level}");
    }
}

#[test]
fn empty_outputs_are_a_no_op() {
    // An empty output has no elements that could overlap, whatever its strides.
    assert!(MatMut::<f32>::new(&mut [], 0, 5, 1, 0).is_ok());
    assert!(MatMut::<f32>::new(&mut [], 3, 0, 0, 0).is_ok());
    for level in SimdLevel::available() {
        let a = [1.0f32; 4];
        let mut c: [f32; 0] = [];
        sgemm_at(
            level,
            1.0,
            MatRef::row_major(&a, 0, 4).unwrap(),
            MatRef::row_major(&a, 4, 1).unwrap(),
            0.0,
            MatMut::row_major(&mut c, 0, 1).unwrap(),
        )
        .unwrap();
        sgemm_at(
            level,
            1.0,
            MatRef::row_major(&a, 1, 4).unwrap(),
            MatRef::row_major(&a, 4, 0).unwrap(),
            0.0,
            MatMut::row_major(&mut c, 1, 0).unwrap(),
        )
        .unwrap();
    }
}

#[test]
fn a_thousand_sized_product_matches_reference() {
    let mut rng = StdRng::seed_from_u64(7);
    let (m, n, k) = (1000, 1000, 1000);
    let a = Mat::random(m, k, Layout::RowMajor, &mut rng);
    let b = Mat::random(k, n, Layout::ColMajor, &mut rng);
    // Check a sample of rows (every 37th and the last) against the oracle: a view of
    // those rows of A gives exactly those rows of C.
    let rows: Vec<usize> = (0..m).step_by(37).chain([m - 1]).collect();
    let mut a_rows = Mat::random(rows.len(), k, Layout::RowMajor, &mut rng);
    for (r, &i) in rows.iter().enumerate() {
        for p in 0..k {
            a_rows.data[r * k + p] = a.get(i, p);
        }
    }
    let c_rows = Mat::random(rows.len(), n, Layout::RowMajor, &mut rng).nan_like();
    let (want, bound) = oracle(1.0, &a_rows, &b, 0.0, &c_rows);
    for level in SimdLevel::available() {
        for threads in [1, 2] {
            let mut got = Mat::<f32>::random(m, n, Layout::RowMajor, &mut rng).nan_like();
            pool(threads).install(|| {
                sgemm_at(level, 1.0, a.view(), b.view(), 0.0, got.view_mut()).unwrap();
            });
            let mut got_rows = c_rows.clone();
            for (r, &i) in rows.iter().enumerate() {
                for j in 0..n {
                    got_rows.data[r * n + j] = got.get(i, j);
                }
            }
            let what = format!("sgemm 1000^3 {level} threads {threads}");
            check(&what, &got_rows, &c_rows, &want, &bound).unwrap();
        }
    }
}

/// Shapes that take each parallel path with two threads: split along m, along n, and
/// along k (a long reduction into a small C, as in a conv weight gradient).
const PARALLEL_SHAPES: [(usize, usize, usize); 3] =
    [(300, 40, 400), (24, 700, 300), (16, 72, 20000)];

#[test]
fn parallel_paths_match_reference() {
    let mut rng = StdRng::seed_from_u64(8);
    for level in SimdLevel::available() {
        for (m, n, k) in PARALLEL_SHAPES {
            let a = Mat::random(m, k, Layout::RowMajor, &mut rng);
            let b = Mat::random(k, n, Layout::RowMajor, &mut rng);
            let c = Mat::random(m, n, Layout::RowPadded, &mut rng);
            for threads in [2, 3] {
                pool(threads)
                    .install(|| run_sgemm(level, 0.5, &a, &b, 2.0, &c))
                    .unwrap();
            }
        }
    }
}

#[test]
fn results_are_identical_run_to_run_with_fixed_threads() {
    let mut rng = StdRng::seed_from_u64(9);
    for level in SimdLevel::available() {
        for (m, n, k) in PARALLEL_SHAPES {
            let a = Mat::<f32>::random(m, k, Layout::RowMajor, &mut rng);
            let b = Mat::<f32>::random(k, n, Layout::ColMajor, &mut rng);
            let runs: Vec<Vec<u32>> = (0..3)
                .map(|_| {
                    let mut c = Mat::<f32>::random(m, n, Layout::RowMajor, &mut rng);
                    pool(2).install(|| {
                        sgemm_at(level, 1.0, a.view(), b.view(), 0.0, c.view_mut()).unwrap();
                    });
                    c.data.iter().map(|x| x.to_bits()).collect()
                })
                .collect();
            assert!(runs.windows(2).all(|w| w[0] == w[1]), "{level} {m}x{n}x{k}");
        }
    }
}

#[test]
fn batched_matches_separate_products() {
    let mut rng = StdRng::seed_from_u64(10);
    let shapes = [
        (32, 128, 784),
        (7, 3, 1),
        (65, 33, 17),
        (0, 4, 4),
        (12, 32, 0),
    ];
    for level in SimdLevel::available() {
        for threads in [1, 2] {
            let a: Vec<Mat<f32>> = shapes
                .iter()
                .map(|&(m, _, k)| Mat::random(m, k, Layout::RowMajor, &mut rng))
                .collect();
            let b: Vec<Mat<f32>> = shapes
                .iter()
                .map(|&(_, n, k)| Mat::random(k, n, Layout::ColMajor, &mut rng))
                .collect();
            let c: Vec<Mat<f32>> = shapes
                .iter()
                .map(|&(m, n, _)| Mat::random(m, n, Layout::RowMajor, &mut rng))
                .collect();
            let mut got = c.clone();
            let a_views: Vec<_> = a.iter().map(Mat::view).collect();
            let b_views: Vec<_> = b.iter().map(Mat::view).collect();
            let mut c_views: Vec<_> = got.iter_mut().map(Mat::view_mut).collect();
            pool(threads)
                .install(|| sgemm_batched_at(level, 1.5, &a_views, &b_views, 0.5, &mut c_views))
                .unwrap();
            drop(c_views);
            for i in 0..shapes.len() {
                let (want, bound) = oracle(1.5, &a[i], &b[i], 0.5, &c[i]);
                let what = format!("sgemm_batched {level} threads {threads} item {i}");
                check(&what, &got[i], &c[i], &want, &bound).unwrap();
            }
        }
    }
}

#[test]
fn dgemm_batched_matches_reference() {
    let mut rng = StdRng::seed_from_u64(11);
    for level in SimdLevel::available() {
        let a: Vec<Mat<f64>> = (0..6)
            .map(|_| Mat::random(9, 20, Layout::RowMajor, &mut rng))
            .collect();
        let b = Mat::<f64>::random(20, 5, Layout::RowMajor, &mut rng);
        let c: Vec<Mat<f64>> = (0..6)
            .map(|_| Mat::random(9, 5, Layout::ColMajor, &mut rng).nan_like())
            .collect();
        let mut got = c.clone();
        let a_views: Vec<_> = a.iter().map(Mat::view).collect();
        let b_views = vec![b.view(); 6];
        let mut c_views: Vec<_> = got.iter_mut().map(Mat::view_mut).collect();
        dgemm_batched_at(level, 1.0, &a_views, &b_views, 0.0, &mut c_views).unwrap();
        drop(c_views);
        for i in 0..6 {
            let (want, bound) = oracle(1.0, &a[i], &b, 0.0, &c[i]);
            check(
                &format!("dgemm_batched {level} item {i}"),
                &got[i],
                &c[i],
                &want,
                &bound,
            )
            .unwrap();
        }
    }
}

#[test]
fn size_mismatch_is_an_error_naming_the_shapes() {
    let a = [0.0f32; 6];
    let b = [0.0f32; 8];
    let mut c = [0.0f32; 4];
    let err = sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&b, 4, 2).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 2, 2).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, KernelError::SizeMismatch { op: "sgemm", .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("sgemm") && msg.contains("A is 2x3") && msg.contains("B is 4x2"),
        "{msg}"
    );

    let err = sgemm(
        1.0,
        MatRef::row_major(&a, 2, 3).unwrap(),
        MatRef::row_major(&a, 3, 2).unwrap(),
        0.0,
        MatMut::row_major(&mut c, 1, 4).unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("C is 1x4"), "{err}");
}

#[test]
fn short_slices_are_errors_with_the_needed_length() {
    let a = [0.0f32; 5];
    let err = MatRef::row_major(&a, 2, 3).unwrap_err();
    assert_eq!(
        err,
        KernelError::SliceTooShort {
            op: "MatRef::new",
            what: "matrix",
            needed: 6,
            got: 5
        }
    );
    assert!(err
        .to_string()
        .contains("needs at least 6 elements but the slice has 5"));
    let mut c = [0.0f32; 7];
    let err = MatMut::new(&mut c, 2, 4, 1, 2).unwrap_err();
    assert!(
        err.to_string().contains("MatMut::new") && err.to_string().contains("8"),
        "{err}"
    );
}

#[test]
fn overlapping_output_strides_are_rejected() {
    let mut c = [0.0f32; 16];
    for (rows, cols, rs, cs) in [(2, 3, 2, 1), (3, 2, 1, 2), (2, 2, 0, 1), (4, 1, 0, 1)] {
        let err = MatMut::new(&mut c, rows, cols, rs, cs).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("overlapping") && msg.contains(&format!("({rs}, {cs})")),
            "{msg}"
        );
    }
}

#[test]
fn batched_errors_name_the_batch_and_the_item() {
    let a = [0.0f32; 6];
    let mut c0 = [0.0f32; 4];
    let mut c1 = [0.0f32; 4];
    let good = MatRef::row_major(&a, 2, 3).unwrap();
    let bad = MatRef::row_major(&a, 2, 3).unwrap();
    let mut cs = [
        MatMut::row_major(&mut c0, 2, 2).unwrap(),
        MatMut::row_major(&mut c1, 2, 2).unwrap(),
    ];
    let level = SimdLevel::detected();
    let err =
        sgemm_batched_at(level, 1.0, &[good], &[good.t(), good.t()], 0.0, &mut cs).unwrap_err();
    assert!(
        err.to_string()
            .contains("1 A matrices, 2 B matrices, 2 C matrices"),
        "{err}"
    );
    let err =
        sgemm_batched_at(level, 1.0, &[good, good], &[good.t(), bad], 0.0, &mut cs).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("sgemm_batched") && msg.contains("batch item 1") && msg.contains("B is 2x3"),
        "{msg}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random sizes up to 200 with random layouts of A, B and C, random scalars and a
    /// random level (from those available).
    #[test]
    fn random_shapes_and_strides_match_reference(
        m in 0usize..200,
        n in 0usize..200,
        k in 0usize..200,
        layouts in (0usize..5, 0usize..5, 0usize..5),
        scalars in (0usize..4, 0usize..4),
        level_pick in 0usize..3,
        seed in any::<u64>(),
    ) {
        let levels = SimdLevel::available();
        let level = levels[level_pick % levels.len()];
        let alpha = [1.0f32, -0.5, 2.5, 0.125][scalars.0];
        let beta = [0.0f32, 1.0, -1.0, 0.5][scalars.1];
        let mut rng = StdRng::seed_from_u64(seed);
        let a = Mat::random(m, k, LAYOUTS[layouts.0], &mut rng);
        let b = Mat::random(k, n, LAYOUTS[layouts.1], &mut rng);
        let mut c = Mat::random(m, n, LAYOUTS[layouts.2], &mut rng);
        if beta == 0.0 {
            c = c.nan_like();
        }
        let result = run_sgemm(level, alpha, &a, &b, beta, &c);
        prop_assert!(result.is_ok(), "{}", result.unwrap_err());
    }
}
