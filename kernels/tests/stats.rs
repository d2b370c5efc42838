//! The fused statistics kernel against a naive f64 reference, at every SIMD level, at
//! sizes from empty to above the parallel threshold, with NaN/inf, values on bin edges,
//! large means, merging, thread-count independence and configuration errors.

use kernels::cpu::stats::{accumulate_at, stats, stats_at, Float, Stats, StatsConfig};
use kernels::cpu::SimdLevel;
use kernels::KernelError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Empty, shorter than a vector, straddling vectors, several chunks on one thread
/// (100_003 < 2 * 65536), and the parallel path (>= 131072).
const SIZES: [usize; 8] = [0, 1, 3, 17, 33, 1000, 100_003, 262_147];

/// What the naive reference computes: everything in f64, two-pass variance.
#[derive(Debug)]
struct Reference {
    count: u64,
    mean: f64,
    var: f64,
    min: Option<f64>,
    max: Option<f64>,
    histogram: Vec<u64>,
    below: u64,
    above: u64,
    near_zero: u64,
    saturated: u64,
    non_finite: u64,
}

/// The documented bin rule, evaluated in `T` like the kernel: `floor((h - lo) *
/// scale)` with `scale = bins / (hi - lo)` rounded to `T`, clamped into the bins.
fn reference<T: Float>(x: &[T], cfg: &StatsConfig) -> Reference {
    let finite: Vec<T> = x
        .iter()
        .copied()
        .filter(|v| v.to_f64().is_finite())
        .collect();
    let n = finite.len();
    let vals: Vec<f64> = finite.iter().map(|v| v.to_f64()).collect();
    let mean = vals.iter().sum::<f64>() / n as f64;
    let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let lo = T::from_f64(cfg.lo);
    let hi = T::from_f64(cfg.hi);
    let scale = T::from_f64(cfg.bins as f64 / (hi.to_f64() - lo.to_f64()));
    let mut r = Reference {
        count: n as u64,
        mean,
        var,
        min: vals.iter().copied().reduce(f64::min),
        max: vals.iter().copied().reduce(f64::max),
        histogram: vec![0; cfg.bins],
        below: 0,
        above: 0,
        near_zero: 0,
        saturated: 0,
        non_finite: (x.len() - n) as u64,
    };
    for (&v, &vf) in finite.iter().zip(&vals) {
        let h = if cfg.abs { T::from_f64(vf.abs()) } else { v };
        if h < lo {
            r.below += 1;
        } else if h >= hi {
            r.above += 1;
        } else {
            let t = ((h - lo) * scale).to_f64().floor();
            let bin = (t.max(0.0) as usize).min(cfg.bins - 1);
            r.histogram[bin] += 1;
        }
        r.near_zero += u64::from(T::from_f64(vf.abs()) < T::from_f64(cfg.near_zero));
        r.saturated += u64::from(T::from_f64(vf.abs()) > T::from_f64(cfg.saturation));
    }
    r
}

/// Compares a kernel result with the reference: counts exactly, moments to `rel`
/// (sequential f64 sums over 65536-element chunks: ~1e-12 relative in practice; a
/// naive f32 `E[x^2] - E[x]^2` would be off by 1e-4 or worse).
fn check(s: &Stats, r: &Reference, rel: f64, ctx: &str) {
    assert_eq!(s.count(), r.count, "count {ctx}");
    assert_eq!(s.non_finite(), r.non_finite, "non_finite {ctx}");
    assert_eq!(s.histogram(), &r.histogram[..], "histogram {ctx}");
    assert_eq!(
        (s.below(), s.above()),
        (r.below, r.above),
        "below/above {ctx}"
    );
    assert_eq!(s.near_zero(), r.near_zero, "near_zero {ctx}");
    assert_eq!(s.saturated(), r.saturated, "saturated {ctx}");
    assert_eq!(s.min(), r.min, "min {ctx}");
    assert_eq!(s.max(), r.max, "max {ctx}");
    if r.count == 0 {
        assert!(
            s.mean().is_nan() && s.var().is_nan(),
            "empty moments are NaN {ctx}"
        );
        return;
    }
    let mean_tol = rel * (r.mean.abs() + r.var.sqrt()).max(f64::MIN_POSITIVE);
    assert!(
        (s.mean() - r.mean).abs() <= mean_tol,
        "mean {} vs {} {ctx}",
        s.mean(),
        r.mean
    );
    assert!(
        (s.var() - r.var).abs() <= rel * r.var.max(f64::MIN_POSITIVE),
        "var {} vs {} {ctx}",
        s.var(),
        r.var
    );
    let sum = r.mean * r.count as f64;
    assert!(
        (s.sum() - sum).abs() <= rel * (sum.abs() + r.count as f64 * r.var.sqrt()).max(1e-300),
        "sum {ctx}"
    );
}

/// Activation-like data: normal(0, 4) values (some beyond [-10, 10)), a run of ReLU
/// zeros, values exactly on bin edges and at `hi`, and NaN/inf sprinkled in.
fn activations(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed ^ n as u64);
    let mut x: Vec<f32> = (0..n)
        .map(|_| {
            // Box-Muller from two uniforms.
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            (4.0 * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect();
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -10.0, // lo: first bin
        10.0,  // hi: above
        0.5,   // an inner edge: bin 21
        -0.5,  // an inner edge: bin 19
        9.5,   // last edge
        0.0,
        -0.0,
        0.97, // the saturation threshold itself is not saturated
        -0.98,
        1e-3, // the near-zero threshold itself is not near zero
        -1e-4,
    ];
    for (i, s) in specials.iter().enumerate() {
        if i * 13 < n {
            x[i * 13] = *s;
        }
    }
    // A run of zeros, as after a ReLU.
    for v in x.iter_mut().skip(n / 3).take(n / 10) {
        *v = 0.0;
    }
    x
}

#[test]
fn f32_stats_match_reference_at_every_level_and_size() {
    let cfg = StatsConfig::default();
    for level in SimdLevel::available() {
        for &n in &SIZES {
            let x = activations(n, 1);
            let s = stats_at(level, &x, &cfg).unwrap();
            check(
                &s,
                &reference(&x, &cfg),
                1e-10,
                &format!("at {level}, n = {n}"),
            );
            assert_eq!(s.len(), n as u64);
        }
    }
}

#[test]
fn f64_stats_match_reference_at_every_level_and_size() {
    let cfg = StatsConfig {
        bins: 7,
        lo: -3.0,
        hi: 5.0,
        near_zero: 0.1,
        saturation: 2.0,
        abs: false,
    };
    for level in SimdLevel::available() {
        for &n in &SIZES {
            let x: Vec<f64> = activations(n, 2)
                .iter()
                .map(|&v| f64::from(v) * 0.7 + 0.3)
                .collect();
            let s = stats_at(level, &x, &cfg).unwrap();
            check(
                &s,
                &reference(&x, &cfg),
                1e-10,
                &format!("f64 at {level}, n = {n}"),
            );
        }
    }
}

#[test]
fn bin_edges_and_out_of_range_values_are_placed_exactly() {
    let cfg = StatsConfig {
        bins: 4,
        lo: -2.0,
        hi: 2.0,
        near_zero: 0.0,
        saturation: f64::INFINITY,
        abs: false,
    };
    let x = [
        -2.0f32, -1.0, 0.0, 1.0, 2.0, -2.0000002, 1.9999999, -0.0, 1e30, -1e30,
    ];
    for level in SimdLevel::available() {
        // Repeat so the values go through full vectors as well as the tail.
        let xs: Vec<f32> = x.iter().cycle().take(x.len() * 7).copied().collect();
        let s = stats_at(level, &xs, &cfg).unwrap();
        assert_eq!(s.histogram(), &[7, 7, 14, 14], "edges at {level}");
        assert_eq!(s.below(), 14, "below at {level}");
        assert_eq!(s.above(), 14, "above (hi counts as above) at {level}");
        assert_eq!(s.near_zero(), 0, "near_zero 0 disables the count");
        assert_eq!(s.saturated(), 0, "saturation inf disables the count");
    }
}

#[test]
fn abs_option_histograms_magnitudes() {
    let cfg = StatsConfig {
        bins: 10,
        lo: 0.0,
        hi: 10.0,
        abs: true,
        ..StatsConfig::default()
    };
    for level in SimdLevel::available() {
        for &n in &[17usize, 1000, 262_147] {
            let x = activations(n, 3);
            let s = stats_at(level, &x, &cfg).unwrap();
            check(
                &s,
                &reference(&x, &cfg),
                1e-10,
                &format!("abs at {level}, n = {n}"),
            );
            assert_eq!(s.below(), 0, "no magnitude is below 0");
            // Min/max are of x, not |x|.
            assert!(s.min().unwrap() < 0.0);
        }
    }
}

#[test]
fn variance_is_right_with_a_large_mean() {
    // 1e4 plus noise of order 1e-3: a naive f32 E[x^2] - E[x]^2 returns garbage (even
    // negative numbers); the shifted f64 accumulation keeps ~all digits.
    for level in SimdLevel::available() {
        for &n in &[33usize, 100_003, 262_147] {
            let mut rng = StdRng::seed_from_u64(n as u64);
            let x32: Vec<f32> = (0..n)
                .map(|_| 1e4 + rng.random_range(-2e-3f32..2e-3))
                .collect();
            let x64: Vec<f64> = (0..n)
                .map(|_| 1e4 + rng.random_range(-2e-3..2e-3))
                .collect();
            let cfg = StatsConfig::default();
            let r32 = reference(&x32, &cfg);
            let r64 = reference(&x64, &cfg);
            assert!(r32.var > 1e-8 && r64.var > 1e-8, "the data has a spread");
            let s32 = stats_at(level, &x32, &cfg).unwrap();
            let s64 = stats_at(level, &x64, &cfg).unwrap();
            check(
                &s32,
                &r32,
                1e-9,
                &format!("large mean f32 at {level}, n = {n}"),
            );
            check(
                &s64,
                &r64,
                1e-9,
                &format!("large mean f64 at {level}, n = {n}"),
            );
            assert_eq!(s32.above(), n as u64);
        }
    }
}

#[test]
fn constant_input_has_zero_variance() {
    for level in SimdLevel::available() {
        let x = vec![1234.5f32; 100_003];
        let s = stats_at(level, &x, &StatsConfig::default()).unwrap();
        assert_eq!(s.var(), 0.0, "at {level}");
        assert_eq!(s.mean(), 1234.5);
        assert_eq!((s.min(), s.max()), (Some(1234.5), Some(1234.5)));
    }
}

#[test]
fn merge_equals_stats_of_the_concatenation() {
    let cfg = StatsConfig::default();
    for level in SimdLevel::available() {
        for &(na, nb) in &[
            (0usize, 5usize),
            (5, 0),
            (1, 1),
            (17, 1000),
            (100_003, 33),
            (262_147, 1001),
        ] {
            let a = activations(na, 4);
            // A different distribution, shifted, so the merge has work to do.
            let b: Vec<f32> = activations(nb, 5).iter().map(|v| v * 0.5 + 3.0).collect();
            let mut merged = stats_at(level, &a, &cfg).unwrap();
            merged.merge(&stats_at(level, &b, &cfg).unwrap()).unwrap();
            let ab: Vec<f32> = a.iter().chain(&b).copied().collect();
            let ctx = format!("merge at {level}, {na} + {nb}");
            check(&merged, &reference(&ab, &cfg), 1e-10, &ctx);
            let whole = stats_at(level, &ab, &cfg).unwrap();
            assert_eq!(merged.histogram(), whole.histogram(), "{ctx}");

            // Accumulating run by run gives the same as merging.
            let mut acc = Stats::empty(&cfg).unwrap();
            accumulate_at(level, &mut acc, &a).unwrap();
            accumulate_at(level, &mut acc, &b).unwrap();
            check(
                &acc,
                &reference(&ab, &cfg),
                1e-10,
                &format!("accumulate, {ctx}"),
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let x = activations(1_000_003, 6);
    let cfg = StatsConfig::default();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| stats(&x, &cfg).unwrap())
    };
    let one = run(1);
    let three = run(3);
    // Bit-for-bit: same chunks, merged in the same order.
    assert_eq!(one, three);
    assert_eq!(one.mean().to_bits(), three.mean().to_bits());
}

#[test]
fn levels_agree_on_every_count() {
    // The bin of a value is computed with the same IEEE operations at every level.
    let x = activations(262_147, 7);
    let cfg = StatsConfig {
        bins: 40,
        lo: -7.3,
        hi: 6.1,
        ..StatsConfig::default()
    };
    let all: Vec<Stats> = SimdLevel::available()
        .into_iter()
        .map(|l| stats_at(l, &x, &cfg).unwrap())
        .collect();
    for s in &all[1..] {
        assert_eq!(s.histogram(), all[0].histogram());
        assert_eq!(
            (s.below(), s.above(), s.near_zero(), s.saturated()),
            (
                all[0].below(),
                all[0].above(),
                all[0].near_zero(),
                all[0].saturated()
            )
        );
        assert_eq!((s.min(), s.max()), (all[0].min(), all[0].max()));
    }
    check(&all[0], &reference(&x, &cfg), 1e-10, "odd range");
}

#[test]
fn many_bins_use_the_heap_scratch() {
    let cfg = StatsConfig {
        bins: 1000,
        lo: -12.0,
        hi: 12.0,
        ..StatsConfig::default()
    };
    for level in SimdLevel::available() {
        let x = activations(100_003, 8);
        check(
            &stats_at(level, &x, &cfg).unwrap(),
            &reference(&x, &cfg),
            1e-10,
            &format!("1000 bins at {level}"),
        );
    }
}

#[test]
fn accessors_derive_from_the_moments() {
    let s = stats(&[1.0f64, 2.0, 3.0, 4.0, f64::NAN], &StatsConfig::default()).unwrap();
    assert_eq!(s.count(), 4);
    assert_eq!(s.len(), 5);
    assert!((s.sum() - 10.0).abs() < 1e-12);
    assert!((s.sum_sq() - 30.0).abs() < 1e-12);
    assert!((s.var() - 1.25).abs() < 1e-12);
    assert!((s.sample_var() - 5.0 / 3.0).abs() < 1e-12);
    assert!((s.std() - 1.25f64.sqrt()).abs() < 1e-12);
    assert_eq!(s.saturated_fraction(), 1.0);
    assert_eq!(s.near_zero_fraction(), 0.0);
    let mut c = s.clone();
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.min(), None);
    assert_eq!(c.histogram().len(), 40);
    assert_eq!(c.histogram().iter().sum::<u64>(), 0);
    assert_eq!(StatsConfig::default().bin_edges().len(), 41);
    assert_eq!(StatsConfig::default().bin_edges()[40], 10.0);
    assert_eq!(StatsConfig::default().bin_width(), 0.5);
}

#[test]
fn invalid_configurations_are_errors_naming_the_values() {
    let base = StatsConfig::default();
    let cases = [
        (
            StatsConfig { bins: 0, ..base },
            "bins must be in 1..=1048576, got 0",
        ),
        (
            StatsConfig {
                lo: 2.0,
                hi: 1.0,
                ..base
            },
            "histogram range needs finite lo < hi, got lo = 2, hi = 1",
        ),
        (
            StatsConfig {
                hi: f64::INFINITY,
                ..base
            },
            "needs finite lo < hi",
        ),
        (
            StatsConfig {
                lo: f64::NAN,
                ..base
            },
            "needs finite lo < hi",
        ),
        (
            StatsConfig {
                near_zero: f64::NAN,
                ..base
            },
            "near_zero must be >= 0, got NaN",
        ),
        (
            StatsConfig {
                saturation: -1.0,
                ..base
            },
            "saturation must be >= 0, got -1",
        ),
    ];
    for (cfg, msg) in cases {
        let err = stats(&[1.0f32], &cfg).unwrap_err();
        assert!(matches!(
            err,
            KernelError::InvalidArgument { op: "stats", .. }
        ));
        assert!(
            err.to_string().contains(msg),
            "{err} should contain {msg:?}"
        );
        assert!(Stats::empty(&cfg).is_err());
    }
    // Valid in f64, collapsed in f32.
    let tiny = StatsConfig {
        lo: 1.0,
        hi: 1.0 + 1e-12,
        ..base
    };
    assert!(stats(&[1.0f64], &tiny).is_ok());
    let err = stats(&[1.0f32], &tiny).unwrap_err();
    assert!(
        err.to_string().contains("not representable in f32"),
        "{err}"
    );
}

#[test]
fn merging_different_configurations_is_an_error() {
    let mut a = stats(&[1.0f32], &StatsConfig::default()).unwrap();
    let b = stats(
        &[1.0f32],
        &StatsConfig {
            bins: 20,
            ..StatsConfig::default()
        },
    )
    .unwrap();
    let err = a.merge(&b).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("Stats::merge: invalid argument: configurations differ"));
    assert_eq!(
        a.count(),
        1,
        "a failed merge leaves the accumulator unchanged"
    );
}

// ---------------------------------------------------------------------------------
// The paths of the x86 `f32` kernel (a moments pass and a histogram pass per block of
// 1024 (AVX2) or 2048 (AVX-512) values; a fast histogram when a block is finite and
// inside the range, with or without the subtraction of `lo` and the clamp to the last
// bin; the full rule when a block reaches outside the range; vector-by-vector with the
// scalar rule when a block holds a NaN or an infinity; an 8-slot register window that
// follows the data) against the naive reference, at every level, on sizes around the
// block and chunk boundaries.

/// Around the vector (8, 16), block (1024, 2048) and chunk (65536) boundaries, and the
/// parallel threshold (131072).
const PATH_SIZES: [usize; 20] = [
    0, 1, 3, 7, 8, 15, 16, 17, 33, 1000, 1023, 1025, 2047, 2048, 2049, 4097, 65535, 65536, 65537,
    131_073,
];

/// The configurations the paths depend on: signed and magnitude histograms, `lo = 0`
/// (no subtraction) and `lo != 0`, a magnitude histogram that starts above 0, fewer
/// slots than the window, and more slots than the window search and the stack scratch.
fn path_configs() -> Vec<(&'static str, StatsConfig)> {
    let d = StatsConfig::default();
    vec![
        ("signed", d),
        (
            "magnitudes",
            StatsConfig {
                lo: 0.0,
                hi: 10.0,
                abs: true,
                ..d
            },
        ),
        (
            "tanh",
            StatsConfig {
                lo: -1.0,
                hi: 1.0,
                ..d
            },
        ),
        (
            "odd",
            StatsConfig {
                bins: 37,
                lo: -7.3,
                hi: 6.1,
                near_zero: 0.05,
                saturation: 2.5,
                abs: false,
            },
        ),
        (
            "abs_from_0.5",
            StatsConfig {
                bins: 10,
                lo: 0.5,
                hi: 3.0,
                abs: true,
                ..d
            },
        ),
        (
            "one_bin",
            StatsConfig {
                bins: 1,
                lo: 0.0,
                hi: 1.0,
                ..d
            },
        ),
        (
            "five_bins",
            StatsConfig {
                bins: 5,
                lo: -1.0,
                hi: 4.0,
                ..d
            },
        ),
        (
            "300_bins",
            StatsConfig {
                bins: 300,
                lo: -6.0,
                hi: 6.0,
                ..d
            },
        ),
    ]
}

/// Deterministic normal samples.
fn normal(rng: &mut StdRng) -> f32 {
    let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
    ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
}

/// Data that drives each path: `(name, values)` for `n` values.
fn path_data(n: usize) -> Vec<(&'static str, Vec<f32>)> {
    let mut rng = StdRng::seed_from_u64(0x5eed ^ n as u64);
    let relu: Vec<f32> = (0..n).map(|_| normal(&mut rng).max(0.0)).collect();
    let narrow: Vec<f32> = (0..n).map(|_| 0.3 * normal(&mut rng)).collect();
    let wide: Vec<f32> = (0..n).map(|_| 8.0 * normal(&mut rng)).collect();
    // Just below hi: (h - lo) * scale can round up to `bins`, which the clamp fixes.
    let near_hi: Vec<f32> = (0..n)
        .map(|i| {
            let top = [
                9.999_999f32,
                0.999_999_9,
                6.099_999_6,
                2.999_999_8,
                3.999_999_8,
            ];
            top[i % top.len()] - (i % 3) as f32 * 1e-6
        })
        .collect();
    // Runs of one value: zeros (ReLU), -0.0, a bin edge, `hi` itself, a subnormal.
    let runs: Vec<f32> = (0..n)
        .map(|i| match (i / 300) % 6 {
            0 => 0.0,
            1 => -0.0,
            2 => 0.5,
            3 => 10.0,
            4 => 1e-40,
            _ => -2.5,
        })
        .collect();
    // The window has to move: the distribution changes every 2500 values, some blocks
    // are spread over every bin.
    let moving: Vec<f32> = (0..n)
        .map(|i| match (i / 2500) % 4 {
            0 => 0.1 * normal(&mut rng) - 8.0,
            1 => 0.1 * normal(&mut rng) + 7.0,
            2 => rng.random_range(-12.0f32..12.0),
            _ => 0.2 * normal(&mut rng),
        })
        .collect();
    // Non-finite values: one in some blocks, whole vectors of them, an infinity in an
    // otherwise in-range block, NaN with every sign and payload.
    let mut specials = narrow.clone();
    for (i, v) in specials.iter_mut().enumerate() {
        if i % 997 == 5 {
            *v = f32::NAN;
        } else if i % 1499 == 7 {
            *v = f32::INFINITY;
        } else if i % 2003 == 11 {
            *v = f32::NEG_INFINITY;
        } else if i % 3001 == 13 {
            *v = -f32::from_bits(0x7fc0_0001);
        } else if (4096..4096 + 40).contains(&i) {
            *v = f32::NAN;
        }
    }
    let all_nan = vec![f32::NAN; n];
    // Extremes: the largest finite values and the smallest subnormals.
    let extremes: Vec<f32> = (0..n)
        .map(|i| match i % 5 {
            0 => f32::MAX,
            1 => -f32::MAX,
            2 => f32::from_bits(1),
            3 => -f32::MIN_POSITIVE,
            _ => narrow[i],
        })
        .collect();
    vec![
        ("relu", relu),
        ("narrow", narrow),
        ("wide", wide),
        ("near_hi", near_hi),
        ("runs", runs),
        ("moving", moving),
        ("specials", specials),
        ("all_nan", all_nan),
        ("extremes", extremes),
    ]
}

#[test]
fn every_kernel_path_matches_the_reference() {
    for &n in &PATH_SIZES {
        for (data_name, x) in path_data(n) {
            for (cfg_name, cfg) in path_configs() {
                let r = reference(&x, &cfg);
                for level in SimdLevel::available() {
                    let s = stats_at(level, &x, &cfg).unwrap();
                    check(
                        &s,
                        &r,
                        1e-10,
                        &format!("{data_name} / {cfg_name} at {level}, n = {n}"),
                    );
                    assert_eq!(s.len(), n as u64);
                }
            }
        }
    }
}

#[test]
fn every_kernel_path_is_independent_of_the_thread_count() {
    let n = 400_003;
    let pools: Vec<rayon::ThreadPool> = [1, 2, 3]
        .iter()
        .map(|&t| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap()
        })
        .collect();
    for (data_name, x) in path_data(n) {
        for (cfg_name, cfg) in path_configs() {
            for level in SimdLevel::available() {
                let runs: Vec<Stats> = pools
                    .iter()
                    .map(|p| p.install(|| stats_at(level, &x, &cfg).unwrap()))
                    .collect();
                for s in &runs[1..] {
                    // Bit for bit: the same chunks, merged in the same order.
                    assert_eq!(
                        s, &runs[0],
                        "{data_name} / {cfg_name} at {level}: threads change the result"
                    );
                    assert_eq!(s.mean().to_bits(), runs[0].mean().to_bits());
                    assert_eq!(s.var().to_bits(), runs[0].var().to_bits());
                }
                check(
                    &runs[0],
                    &reference(&x, &cfg),
                    1e-10,
                    &format!("{data_name} / {cfg_name} at {level}, n = {n}"),
                );
            }
        }
    }
}

#[test]
fn accumulating_runs_equals_one_pass_on_every_path() {
    // A strided tensor feeds the kernel one contiguous run at a time; each call starts
    // a fresh window and fresh blocks, and the counts must not notice.
    let cfg = StatsConfig {
        lo: 0.0,
        hi: 10.0,
        abs: true,
        ..StatsConfig::default()
    };
    for (data_name, x) in path_data(70_001) {
        for level in SimdLevel::available() {
            let mut acc = Stats::empty(&cfg).unwrap();
            for run in x.chunks(4099) {
                accumulate_at(level, &mut acc, run).unwrap();
            }
            check(
                &acc,
                &reference(&x, &cfg),
                1e-10,
                &format!("{data_name} in runs of 4099 at {level}"),
            );
        }
    }
}
