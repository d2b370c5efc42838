//! Criterion benchmarks of the f32 batch-norm kernels in training mode.
//!
//! BatchNorm2d shapes (N, C, H, W), as in `../shared/peers/torch_bench.py`: (1024, 16,
//! 7, 7), (256, 64, 14, 14), (64, 128, 28, 28); and BatchNorm1d (N, C) of the makemore
//! MLP's hidden layer, (32, 200) at its batch and (4096, 200); with 1 and 2 threads (a rayon pool of that
//! size, entered with `ThreadPool::install`), at the default SIMD level. Each shape is
//! measured as
//! - `fwd`: [`batch_norm_forward_train`] + [`batch_norm_update_running_stats`];
//! - `bwd`: [`batch_norm_backward`] with all three gradients;
//! - `fwd_bwd`: both, one after the other (what a training step costs).
//!
//! Throughput is `Throughput::Bytes` under the minimal-traffic model the PyTorch script
//! uses, so the two "effective GB/s" figures compare directly: the forward reads x and
//! writes y (`2 * N*C*H*W * 4` bytes), the backward reads x and grad_out and writes
//! grad_x (`3 * ...`), both together `5 * ...`. Per-channel vectors are not counted.
//!
//! Ids: `batch_norm2d/<N>x<C>x<H>x<W>/<fwd|bwd|fwd_bwd>/<threads>t` and
//! `batch_norm1d/<N>x<C>/...`. Run with
//! `cargo bench -p kernels --bench norm` (about 30 seconds).

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::cpu::norm::{
    batch_norm_backward, batch_norm_forward_train, batch_norm_update_running_stats, Affine,
    BatchNormShape, NormGrads, NormStats, NormStatsMut, RunningStatsMut,
};
use std::hint::black_box;

const SHAPES: [(usize, usize, usize, usize); 5] = [
    (1024, 16, 7, 7),
    (256, 64, 14, 14),
    (64, 128, 28, 28),
    // BatchNorm1d of the makemore MLP's hidden layer, at its batch and at a large one.
    (32, 200, 1, 1),
    (4096, 200, 1, 1),
];

/// Deterministic values in [-1, 1) (a linear congruential sequence).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

/// Buffers of one BatchNorm2d layer.
struct Layer {
    shape: BatchNormShape,
    x: Vec<f32>,
    gy: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    y: Vec<f32>,
    gx: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    grad_gamma: Vec<f32>,
    grad_beta: Vec<f32>,
}

const EPS: f64 = 1e-5;

impl Layer {
    fn new(n: usize, c: usize, s: usize) -> Self {
        let shape = BatchNormShape::new(n, c, s).expect("a valid shape");
        let len = shape.len();
        Self {
            shape,
            x: values(len, 1),
            gy: values(len, 2),
            gamma: vec![1.0; c],
            beta: vec![0.0; c],
            y: vec![0.0; len],
            gx: vec![0.0; len],
            mean: vec![0.0; c],
            invstd: vec![0.0; c],
            running_mean: vec![0.0; c],
            running_var: vec![1.0; c],
            grad_gamma: vec![0.0; c],
            grad_beta: vec![0.0; c],
        }
    }

    fn forward(&mut self) {
        let save = NormStatsMut {
            mean: &mut self.mean,
            invstd: &mut self.invstd,
        };
        let affine = Affine::new(&self.gamma, &self.beta);
        batch_norm_forward_train(
            &self.shape,
            black_box(&self.x),
            affine,
            EPS,
            &mut self.y,
            save,
        )
        .expect("forward");
        let running = RunningStatsMut {
            mean: &mut self.running_mean,
            var: &mut self.running_var,
        };
        let saved = NormStats {
            mean: &self.mean,
            invstd: &self.invstd,
        };
        batch_norm_update_running_stats(&self.shape, saved, EPS, 0.1, running)
            .expect("running stats");
    }

    fn backward(&mut self) {
        let saved = NormStats {
            mean: &self.mean,
            invstd: &self.invstd,
        };
        let grads = NormGrads {
            x: Some(&mut self.gx),
            gamma: Some(&mut self.grad_gamma),
            beta: Some(&mut self.grad_beta),
        };
        batch_norm_backward(
            &self.shape,
            &self.x,
            black_box(&self.gy),
            Some(&self.gamma),
            saved,
            grads,
        )
        .expect("backward");
    }
}

fn bench_batch_norm(c: &mut Criterion) {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        for (n, ch, h, w) in SHAPES {
            let mut layer = Layer::new(n, ch, h * w);
            let bytes = (layer.shape.len() * std::mem::size_of::<f32>()) as u64;
            let name = if h * w == 1 {
                format!("batch_norm1d/{n}x{ch}")
            } else {
                format!("batch_norm2d/{n}x{ch}x{h}x{w}")
            };
            let mut group = c.benchmark_group(name);
            let t = format!("{threads}t");
            group.throughput(Throughput::Bytes(2 * bytes));
            group.bench_function(BenchmarkId::new("fwd", &t), |b| {
                pool.install(|| b.iter(|| layer.forward()))
            });
            group.throughput(Throughput::Bytes(3 * bytes));
            group.bench_function(BenchmarkId::new("bwd", &t), |b| {
                pool.install(|| b.iter(|| layer.backward()))
            });
            group.throughput(Throughput::Bytes(5 * bytes));
            group.bench_function(BenchmarkId::new("fwd_bwd", &t), |b| {
                pool.install(|| {
                    b.iter(|| {
                        layer.forward();
                        layer.backward();
                    })
                })
            });
            group.finish();
        }
    }
}

/// `criterion_group!` defines an undocumented `pub fn`; keep it in its own module.
#[allow(missing_docs)]
mod group {
    use super::bench_batch_norm;
    use criterion::{criterion_group, Criterion};
    use std::time::Duration;

    criterion_group! {
        name = benches;
        config = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700));
        targets = bench_batch_norm
    }
}
criterion_main!(group::benches);
