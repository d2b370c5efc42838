//! Criterion benchmarks of `sgemm`.
//!
//! Every group sets `Throughput::Elements(2 * m * n * k)`: one "element" is one
//! floating-point operation, so the "elements/s" criterion prints are FLOP/s
//! (e.g. `120 Gelem/s` = 120 GFLOP/s). Each case runs with 1 and 2 threads, in a rayon
//! pool of that size (`ThreadPool::install`), at the default SIMD level unless the id
//! names one.
//!
//! Groups:
//! - `sgemm_square`: row-major `n x n x n` for n = 64 .. 2048;
//! - `sgemm_levels`: 1024^3 at every SIMD level this CPU supports;
//! - `sgemm_conv`: the im2col products of the lesson CNN's five conv layers at batch
//!   1024 (forward `W @ cols`, input gradient `W^T @ dY`, weight gradient
//!   `dY @ cols^T`, with the transposes as strided views, as the conv kernels use them);
//! - `sgemm_mlp`: the 784-128-10 MLP at batch 32, forward and backward products.
//!
//! Run with `cargo bench -p kernels --bench sgemm` (about 3 minutes); add a filter such
//! as `-- sgemm_square/1024` to run a subset.

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::cpu::gemm::{sgemm_at, MatMut, MatRef};
use kernels::cpu::SimdLevel;
use std::hint::black_box;
use std::time::Duration;

/// One product to benchmark: `C (m x n) = A (m x k) * B (k x n)`, with A and B stored
/// transposed when the flags say so.
#[derive(Clone, Copy)]
struct Shape {
    name: &'static str,
    m: usize,
    n: usize,
    k: usize,
    a_transposed: bool,
    b_transposed: bool,
}

impl Shape {
    const fn new(name: &'static str, m: usize, n: usize, k: usize) -> Self {
        Self {
            name,
            m,
            n,
            k,
            a_transposed: false,
            b_transposed: false,
        }
    }

    const fn t_a(self) -> Self {
        Self {
            a_transposed: true,
            ..self
        }
    }

    const fn t_b(self) -> Self {
        Self {
            b_transposed: true,
            ..self
        }
    }

    fn flops(&self) -> u64 {
        2 * (self.m * self.n * self.k) as u64
    }
}

/// A `rows x cols` view of `data`, which is stored transposed (`cols x rows`
/// row-major) when `transposed`.
fn view(data: &[f32], rows: usize, cols: usize, transposed: bool) -> MatRef<'_, f32> {
    if transposed {
        MatRef::row_major(data, cols, rows).unwrap().t()
    } else {
        MatRef::row_major(data, rows, cols).unwrap()
    }
}

/// Benchmarks `shape` at `level` with `threads` threads under `id` in `group`.
fn bench_shape(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    shape: Shape,
    level: SimdLevel,
    threads: usize,
) {
    let Shape { m, n, k, .. } = shape;
    let a: Vec<f32> = (0..m * k).map(|i| (i % 17) as f32 * 0.01 - 0.08).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 * 0.01 - 0.06).collect();
    let mut c = vec![0.0f32; m * n];
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    group.throughput(Throughput::Elements(shape.flops()));
    group.bench_function(id, |bencher| {
        pool.install(|| {
            bencher.iter(|| {
                sgemm_at(
                    level,
                    1.0,
                    black_box(view(&a, m, k, shape.a_transposed)),
                    black_box(view(&b, k, n, shape.b_transposed)),
                    0.0,
                    MatMut::row_major(&mut c, m, n).unwrap(),
                )
                .unwrap();
            })
        })
    });
}

fn square(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_square");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1200));
    for n in [64, 128, 256, 512, 1024, 2048] {
        for threads in [1, 2] {
            let id = BenchmarkId::new(format!("{n}"), format!("{threads}t"));
            let shape = Shape::new("square", n, n, n);
            bench_shape(&mut group, id, shape, SimdLevel::detected(), threads);
        }
    }
    group.finish();
}

fn levels(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_levels");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    for level in SimdLevel::available() {
        for threads in [1, 2] {
            let id = BenchmarkId::new(format!("1024/{level}"), format!("{threads}t"));
            let shape = Shape::new("square", 1024, 1024, 1024);
            bench_shape(&mut group, id, shape, level, threads);
        }
    }
    group.finish();
}

/// The lesson CNN: (name, c_in, c_out, kernel, output side), stride 2, padding k / 2.
const CONVS: [(&str, usize, usize, usize, usize); 5] = [
    ("conv1", 1, 8, 5, 14),
    ("conv2", 8, 16, 3, 7),
    ("conv3", 16, 32, 3, 4),
    ("conv4", 32, 64, 3, 2),
    ("conv5", 64, 10, 3, 1),
];

/// Batch size of the conv shapes.
const BATCH: usize = 1024;

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_conv");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(600));
    for (name, c_in, c_out, ks, side) in CONVS {
        let patch = c_in * ks * ks;
        let cols = BATCH * side * side;
        let shapes = [
            // y [c_out x cols] = W [c_out x patch] @ im2col [patch x cols]
            Shape::new("fwd", c_out, cols, patch),
            // d_im2col [patch x cols] = W^T @ dy [c_out x cols]
            Shape::new("grad_input", patch, cols, c_out).t_a(),
            // dW [c_out x patch] = dy [c_out x cols] @ im2col^T
            Shape::new("grad_weight", c_out, patch, cols).t_b(),
        ];
        for shape in shapes {
            for threads in [1, 2] {
                let id = BenchmarkId::new(
                    format!("{name}/{}/{}x{}x{}", shape.name, shape.m, shape.n, shape.k),
                    format!("{threads}t"),
                );
                bench_shape(&mut group, id, shape, SimdLevel::detected(), threads);
            }
        }
    }
    group.finish();
}

fn mlp(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm_mlp");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(500));
    let shapes = [
        // forward: x [32 x 784] @ W1 [784 x 128], h [32 x 128] @ W2 [128 x 10]
        Shape::new("l1_fwd", 32, 128, 784),
        Shape::new("l2_fwd", 32, 10, 128),
        // backward: dW1 = x^T @ dh, dW2 = h^T @ dy, dh = dy @ W2^T
        Shape::new("l1_grad_weight", 784, 128, 32).t_a(),
        Shape::new("l2_grad_weight", 128, 10, 32).t_a(),
        Shape::new("l2_grad_input", 32, 128, 10).t_b(),
    ];
    for shape in shapes {
        for threads in [1, 2] {
            let id = BenchmarkId::new(
                format!("{}/{}x{}x{}", shape.name, shape.m, shape.n, shape.k),
                format!("{threads}t"),
            );
            bench_shape(&mut group, id, shape, SimdLevel::detected(), threads);
        }
    }
    group.finish();
}

/// `criterion_group!` defines an undocumented `pub fn`; keep it in its own module.
#[allow(missing_docs)]
mod group {
    use super::{conv, levels, mlp, square};
    use criterion::criterion_group;
    criterion_group!(benches, square, levels, conv, mlp);
}
criterion_main!(group::benches);
