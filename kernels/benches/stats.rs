//! Throughput of the statistics, activation and softmax kernels.
//!
//! - `stats`: the fused statistics kernel (40-bin histogram) on the activations of the
//!   lesson's CNN at batch 1024: conv1 after ReLU (1024x8x14x14, about half zeros) and
//!   conv4 (1024x64x2x2, signed), with 1 and 2 threads, and per SIMD level on 1 thread;
//!   `signed` is the default configuration (`x` over `[-10, 10)`), `magnitudes` the one
//!   `ActivationConfig::relu()` hooks use (`|x|` over `[0, 10)`), and `nan` is the ReLU
//!   activation with one NaN per 4096 values (the path for blocks holding a non-finite
//!   value). Throughput is bytes of input read. PyTorch's `histc` alone runs at ~0.9 GB/s on a
//!   project machine (`../shared/peers/README.md`).
//! - `unary`: f32 exp and tanh on 2^20 elements (bytes read + written).
//! - `softmax`: f32 softmax rows 1024x10 (the classifier head).
//!
//! `cargo bench -p kernels --bench stats` takes about a minute.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::cpu::elementwise::{self, UnaryOp};
use kernels::cpu::stats::{stats_at, StatsConfig};
use kernels::cpu::{dispatch, reduce, SimdLevel};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Standard normal samples (Box-Muller), seeded.
fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn bench_stats(c: &mut Criterion) {
    let conv1: Vec<f32> = normal(1024 * 8 * 14 * 14, 1)
        .into_iter()
        .map(|v| v.max(0.0))
        .collect();
    let conv4 = normal(1024 * 64 * 2 * 2, 2);
    let mut with_nan = conv1.clone();
    with_nan
        .iter_mut()
        .step_by(4096)
        .for_each(|v| *v = f32::NAN);
    let signed = StatsConfig::default();
    let magnitudes = StatsConfig {
        lo: 0.0,
        hi: 10.0,
        abs: true,
        ..StatsConfig::default()
    };
    let mut g = c.benchmark_group("stats");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    let level = dispatch::active();
    for (name, x, cfg_name, cfg) in [
        ("1024x8x14x14_relu", &conv1, "magnitudes", &magnitudes),
        ("1024x8x14x14_relu", &conv1, "signed", &signed),
        ("1024x64x2x2", &conv4, "magnitudes", &magnitudes),
        ("1024x64x2x2", &conv4, "signed", &signed),
        (
            "1024x8x14x14_relu_nan",
            &with_nan,
            "magnitudes",
            &magnitudes,
        ),
    ] {
        g.throughput(Throughput::Bytes((x.len() * 4) as u64));
        for threads in [1, 2] {
            let p = pool(threads);
            g.bench_with_input(
                BenchmarkId::new(format!("{name}/{cfg_name}/{level}"), format!("{threads}t")),
                x,
                |b, x| p.install(|| b.iter(|| stats_at(level, black_box(x), cfg).expect("stats"))),
            );
        }
    }
    // Every level, one thread, on the large activation.
    let p = pool(1);
    g.throughput(Throughput::Bytes((conv1.len() * 4) as u64));
    for level in SimdLevel::available() {
        for (cfg_name, cfg) in [("magnitudes", &magnitudes), ("signed", &signed)] {
            g.bench_with_input(
                BenchmarkId::new(
                    format!("1024x8x14x14_relu/{cfg_name}/levels"),
                    format!("{level}/1t"),
                ),
                &conv1,
                |b, x| p.install(|| b.iter(|| stats_at(level, black_box(x), cfg).expect("stats"))),
            );
        }
    }
    g.finish();
}

fn bench_unary(c: &mut Criterion) {
    let x: Vec<f32> = normal(1 << 20, 3).into_iter().map(|v| v * 3.0).collect();
    let mut out = vec![0.0f32; x.len()];
    let mut g = c.benchmark_group("unary");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    g.throughput(Throughput::Bytes((x.len() * 8) as u64));
    for op in [UnaryOp::Exp, UnaryOp::Tanh] {
        for threads in [1, 2] {
            let p = pool(threads);
            let id = BenchmarkId::new(
                format!("{}_2^20/{}", op.name(), dispatch::active()),
                format!("{threads}t"),
            );
            g.bench_function(id, |b| {
                p.install(|| {
                    b.iter(|| elementwise::unary(op, black_box(&x), &mut out).expect("unary"))
                })
            });
        }
        let p = pool(1);
        for level in SimdLevel::available() {
            let id = BenchmarkId::new(format!("{}_2^20/levels", op.name()), format!("{level}/1t"));
            g.bench_function(id, |b| {
                p.install(|| {
                    b.iter(|| {
                        elementwise::unary_at(level, op, black_box(&x), &mut out).expect("unary")
                    })
                })
            });
        }
    }
    g.finish();
}

fn bench_softmax(c: &mut Criterion) {
    let (rows, cols) = (1024, 10);
    let x: Vec<f32> = normal(rows * cols, 4)
        .into_iter()
        .map(|v| v * 4.0)
        .collect();
    let mut out = vec![0.0f32; x.len()];
    let mut g = c.benchmark_group("softmax");
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    g.throughput(Throughput::Bytes((x.len() * 8) as u64));
    for threads in [1, 2] {
        let p = pool(threads);
        let id = BenchmarkId::new(
            format!("rows_1024x10/{}", dispatch::active()),
            format!("{threads}t"),
        );
        g.bench_function(id, |b| {
            p.install(|| {
                b.iter(|| {
                    reduce::softmax_rows(black_box(&x), rows, cols, &mut out).expect("softmax")
                })
            })
        });
    }
    g.finish();
}

/// `criterion_group!` defines an undocumented `pub fn`; keep it in its own module.
#[allow(missing_docs)]
mod group {
    use super::{bench_softmax, bench_stats, bench_unary};
    use criterion::criterion_group;
    criterion_group!(benches, bench_stats, bench_unary, bench_softmax);
}
criterion_main!(group::benches);
