//! Throughput of the CUDA kernels (feature `cuda`), timed with `iter_custom` around a
//! stream synchronise so that queued work is counted.
//!
//! - `cuda_sgemm`: 512³ and 1024³ (FLOPs: `2 m n k`).
//! - `cuda_conv2d`: forward of the lesson CNN's conv2 shape at batch 256, 8 -> 16
//!   channels, 14x14, 3x3, stride 2, pad 1 (FLOPs).
//! - `cuda_elementwise`: f32 exp and a broadcast add on 2^22 elements (bytes read +
//!   written).
//! - `cuda_stats`: the fused statistics kernel on 2^22 f32 values (bytes read).
//! - `cuda_softmax`: f32 softmax rows 4096x1000 (bytes read + written).
//!
//! With no CUDA driver or GPU the bench prints why and measures nothing (it never
//! reports numbers it did not measure). Never run on a GPU in this project so far.
//!
//! `cargo bench -p kernels --features cuda --bench cuda`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Criterion, Throughput};
use kernels::cpu::conv2d::{Conv2dParams, Conv2dShape};
use kernels::cpu::stats::StatsConfig;
use kernels::cuda::elementwise::{self, BinaryOp, UnaryOp, View};
use kernels::cuda::matmul::{gemm, Operand, Output};
use kernels::cuda::{conv2d, cuda_available, reduce, stats, CudaDevice};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

/// Times `iters` runs of `f` followed by one synchronise.
fn timed(dev: &CudaDevice, iters: u64, mut f: impl FnMut()) -> Duration {
    f();
    dev.synchronize().expect("synchronize");
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    dev.synchronize().expect("synchronize");
    start.elapsed()
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20);
    g
}

fn bench_sgemm(c: &mut Criterion, dev: &Arc<CudaDevice>) {
    let mut g = group(c, "cuda_sgemm");
    for n in [512usize, 1024] {
        let a = dev.htod(&random(n * n, 1)).expect("upload");
        let b = dev.htod(&random(n * n, 2)).expect("upload");
        let mut out = dev.zeros::<f32>(n * n).expect("alloc");
        g.throughput(Throughput::Elements((2 * n * n * n) as u64));
        g.bench_function(format!("{n}x{n}x{n}"), |bch| {
            bch.iter_custom(|iters| {
                timed(dev, iters, || {
                    let op = |buf| Operand {
                        buf,
                        offset: 0,
                        transposed: false,
                        batch_stride: 0,
                    };
                    let o = Output {
                        buf: &mut out,
                        offset: 0,
                        batch_stride: n * n,
                    };
                    gemm(dev, 1, (n, n, n), op(&a), op(&b), 0.0, o).expect("gemm");
                })
            })
        });
    }
    g.finish();
}

fn bench_conv(c: &mut Criterion, dev: &Arc<CudaDevice>) {
    let mut g = group(c, "cuda_conv2d");
    let params = Conv2dParams {
        stride: (2, 2),
        padding: (1, 1),
        ..Conv2dParams::default()
    };
    let shape = Conv2dShape::new([256, 8, 14, 14], [16, 8, 3, 3], params).expect("shape");
    let x = dev.htod(&random(shape.input_len(), 3)).expect("upload");
    let w = dev.htod(&random(shape.weight_len(), 4)).expect("upload");
    g.throughput(Throughput::Elements(shape.flops()));
    g.bench_function("forward_256x8x14x14_k3s2", |b| {
        b.iter_custom(|iters| {
            timed(dev, iters, || {
                black_box(conv2d::conv2d_forward(dev, &shape, &x, &w, None).expect("conv"));
            })
        })
    });
    g.finish();
}

fn bench_elementwise(c: &mut Criterion, dev: &Arc<CudaDevice>) {
    let mut g = group(c, "cuda_elementwise");
    let (rows, cols) = (1usize << 12, 1usize << 10);
    let n = rows * cols;
    let x = dev.htod(&random(n, 5)).expect("upload");
    let bias = dev.htod(&random(cols, 6)).expect("upload");
    let dims = [rows, cols];
    let dense = View {
        dims: &dims,
        strides: &[cols, 1],
        offset: 0,
    };
    let row = View {
        dims: &dims,
        strides: &[0, 1],
        offset: 0,
    };
    g.throughput(Throughput::Bytes((n * 8) as u64));
    g.bench_function("exp_f32_4M", |b| {
        b.iter_custom(|iters| {
            timed(dev, iters, || {
                black_box(elementwise::unary(dev, UnaryOp::Exp, &x, dense).expect("exp"));
            })
        })
    });
    g.bench_function("add_row_broadcast_f32_4M", |b| {
        b.iter_custom(|iters| {
            timed(dev, iters, || {
                let out = elementwise::binary(dev, BinaryOp::Add, &dims, (&x, dense), (&bias, row));
                black_box(out.expect("add"));
            })
        })
    });
    g.finish();
}

fn bench_stats_softmax(c: &mut Criterion, dev: &Arc<CudaDevice>) {
    let n = 1usize << 22;
    let x = dev.htod(&random(n, 7)).expect("upload");
    let cfg = StatsConfig::default();
    let mut g = group(c, "cuda_stats");
    g.throughput(Throughput::Bytes((n * 4) as u64));
    g.bench_function("f32_4M", |b| {
        b.iter_custom(|iters| {
            timed(dev, iters, || {
                black_box(stats::stats(dev, &x, n, &cfg).expect("stats"));
            })
        })
    });
    g.finish();
    let mut g = group(c, "cuda_softmax");
    let (rows, k) = (4096, 1000);
    let y = dev.htod(&random(rows * k, 8)).expect("upload");
    g.throughput(Throughput::Bytes((rows * k * 8) as u64));
    g.bench_function("rows_4096x1000_f32", |b| {
        b.iter_custom(|iters| {
            timed(dev, iters, || {
                black_box(reduce::softmax_rows(dev, &y, rows, k, false).expect("softmax"));
            })
        })
    });
    g.finish();
}

fn main() {
    let dev = match cuda_available().and_then(|()| CudaDevice::get(0).map_err(|e| e.to_string())) {
        Ok(dev) => dev,
        Err(why) => {
            println!("cuda bench skipped: {why}");
            eprintln!("cuda bench skipped: {why}");
            return;
        }
    };
    let mut c = Criterion::default().configure_from_args();
    bench_sgemm(&mut c, &dev);
    bench_conv(&mut c, &dev);
    bench_elementwise(&mut c, &dev);
    bench_stats_softmax(&mut c, &dev);
    c.final_summary();
}
