//! Criterion benchmarks of the f32 conv2d kernels on the lesson CNN's five layers.
//!
//! Layers (stride 2, padding k/2, as in `../shared/peers/torch_bench.py`): conv1 1->8 k5
//! 28x28, conv2 8->16 k3 14x14, conv3 16->32 k3 7x7, conv4 32->64 k3 4x4, conv5 64->10
//! k3 2x2; at batch 64 and 1024; forward (with bias), input gradient, and weight + bias
//! gradient, each on its own, with 1 and 2 threads (a rayon pool of that size, entered
//! with `ThreadPool::install`), at the default SIMD level.
//!
//! Throughput is `Throughput::Elements(flops)` with `flops = 2 * N * C_out * H_out *
//! W_out * C_in * kH * kW` ([`Conv2dShape::flops`], padded taps counted, as the PyTorch
//! script counts them; each of the three kernels costs the same): one "element" is one
//! floating-point operation, so criterion's `Gelem/s` reads as GFLOP/s.
//!
//! Ids: `conv2d/<layer>/bs<N>/<fwd|bwd_input|bwd_weight_bias>/<threads>t`. Run with
//! `cargo bench -p kernels --bench conv2d` (about 1.5 minutes); a filter such as
//! `-- conv1` runs a subset.

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::cpu::conv2d::{
    conv2d_backward, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, Conv2dParams,
    Conv2dShape,
};
use std::hint::black_box;

/// `(name, C_in, C_out, k, H = W)` of the lesson CNN's convolutions.
const LAYERS: [(&str, usize, usize, usize, usize); 5] = [
    ("conv1_1to8_k5_28", 1, 8, 5, 28),
    ("conv2_8to16_k3_14", 8, 16, 3, 14),
    ("conv3_16to32_k3_7", 16, 32, 3, 7),
    ("conv4_32to64_k3_4", 32, 64, 3, 4),
    ("conv5_64to10_k3_2", 64, 10, 3, 2),
];

/// Deterministic values in [-1, 1) (a linear congruential sequence; the values do not
/// matter for speed, only that they are ordinary finite numbers).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn bench_layers(c: &mut Criterion) {
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a rayon pool");
        for (name, cin, cout, k, hw) in LAYERS {
            for batch in [64, 1024] {
                let params = Conv2dParams {
                    stride: (2, 2),
                    padding: (k / 2, k / 2),
                    ..Conv2dParams::default()
                };
                let shape = Conv2dShape::new([batch, cin, hw, hw], [cout, cin, k, k], params)
                    .expect("a valid lesson layer");
                let x = values(shape.input_len(), 1);
                let w = values(shape.weight_len(), 2);
                let bias = values(cout, 3);
                let gy = values(shape.output_len(), 4);
                let mut y = vec![0.0f32; shape.output_len()];
                let mut gx = vec![0.0f32; shape.input_len()];
                let mut gw = vec![0.0f32; shape.weight_len()];
                let mut gb = vec![0.0f32; cout];

                let mut group = c.benchmark_group(format!("conv2d/{name}/bs{batch}"));
                group.throughput(Throughput::Elements(shape.flops()));
                let t = format!("{threads}t");
                group.bench_function(BenchmarkId::new("fwd", &t), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            conv2d_forward(&shape, black_box(&x), &w, Some(&bias), &mut y)
                                .expect("forward")
                        })
                    })
                });
                group.bench_function(BenchmarkId::new("bwd_input", &t), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            conv2d_backward_input(&shape, black_box(&gy), &w, &mut gx)
                                .expect("input gradient")
                        })
                    })
                });
                group.bench_function(BenchmarkId::new("bwd_weight_bias", &t), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            conv2d_backward_weight(
                                &shape,
                                &x,
                                black_box(&gy),
                                &mut gw,
                                Some(&mut gb),
                            )
                            .expect("weight gradient")
                        })
                    })
                });
                group.bench_function(BenchmarkId::new("bwd_all", &t), |b| {
                    pool.install(|| {
                        b.iter(|| {
                            let gb = Some(&mut gb[..]);
                            conv2d_backward(&shape, &x, &w, black_box(&gy), &mut gx, &mut gw, gb)
                                .expect("all gradients")
                        })
                    })
                });
                group.finish();
            }
        }
    }
}

/// `criterion_group!` defines an undocumented `pub fn`; keep it in its own module.
#[allow(missing_docs)]
mod group {
    use super::bench_layers;
    use criterion::{criterion_group, Criterion};
    use std::time::Duration;

    criterion_group! {
        name = benches;
        config = Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(700));
        targets = bench_layers
    }
}
criterion_main!(group::benches);
