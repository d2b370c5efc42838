//! One training step of the lessons' 784-128-10 tanh MLP (forward, cross-entropy,
//! backward, SGD update, zero grad) at batch 32 and 256, twice:
//!
//! - `autograd`: through nn layers, the autograd tape and the optimiser, as a user
//!   writes it;
//! - `raw_kernels`: the same arithmetic as straight calls into the kernels crate on
//!   preallocated buffers — no tensors, no tape, no allocation.
//!
//! The ratio of the two is the tape's overhead. Throughput is in examples per second.
//! The PyTorch peer for the same step is `../shared/peers/torch_bench.py --only mlp`.

// criterion_group!/criterion_main! generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;

use autograd::Var;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kernels::cpu::elementwise::{axpy, tanh, tanh_backward};
use kernels::cpu::gemm::{sgemm, MatMut, MatRef};
use kernels::cpu::reduce::{cross_entropy_rows, cross_entropy_rows_backward, sum_cols};
use nn::init::seeded_rng;
use nn::layers::{Linear, Sequential, Tanh};
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use rand::Rng;
use tensor::{DType, Device, Tensor};

const IN: usize = 784;
const HIDDEN: usize = 128;
const OUT: usize = 10;

fn batch(bs: usize) -> (Vec<f32>, Vec<u32>) {
    let mut rng = seeded_rng(1);
    (
        (0..bs * IN).map(|_| rng.random::<f32>()).collect(),
        (0..bs).map(|_| rng.random_range(0..OUT as u32)).collect(),
    )
}

/// The step written by hand against the kernels: the floor the tape is compared to.
struct RawMlp {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
    z: Vec<f32>,
    h: Vec<f32>,
    logits: Vec<f32>,
    log_probs: Vec<f32>,
    loss: Vec<f32>,
    g_logits: Vec<f32>,
    g_h: Vec<f32>,
    g_z: Vec<f32>,
    g_w1: Vec<f32>,
    g_b1: Vec<f32>,
    g_w2: Vec<f32>,
    g_b2: Vec<f32>,
    g_loss: Vec<f32>,
}

impl RawMlp {
    fn new(bs: usize) -> Self {
        let mut rng = seeded_rng(0);
        let mut init = |n: usize, fan: usize| -> Vec<f32> {
            let b = 1.0 / (fan as f32).sqrt();
            (0..n).map(|_| rng.random_range(-b..b)).collect()
        };
        Self {
            w1: init(HIDDEN * IN, IN),
            b1: init(HIDDEN, IN),
            w2: init(OUT * HIDDEN, HIDDEN),
            b2: init(OUT, HIDDEN),
            z: vec![0.0; bs * HIDDEN],
            h: vec![0.0; bs * HIDDEN],
            logits: vec![0.0; bs * OUT],
            log_probs: vec![0.0; bs * OUT],
            loss: vec![0.0; bs],
            g_logits: vec![0.0; bs * OUT],
            g_h: vec![0.0; bs * HIDDEN],
            g_z: vec![0.0; bs * HIDDEN],
            g_w1: vec![0.0; HIDDEN * IN],
            g_b1: vec![0.0; HIDDEN],
            g_w2: vec![0.0; OUT * HIDDEN],
            g_b2: vec![0.0; OUT],
            g_loss: vec![1.0 / bs as f32; bs],
        }
    }

    fn step(&mut self, x: &[f32], y: &[u32], lr: f32) -> kernels::Result<f32> {
        let bs = y.len();
        // z = x W1^T + b1 (bias broadcast by pre-filling and beta = 1); h = tanh(z)
        for row in self.z.chunks_mut(HIDDEN) {
            row.copy_from_slice(&self.b1);
        }
        sgemm(
            1.0,
            m(x, bs, IN)?,
            m(&self.w1, HIDDEN, IN)?.t(),
            1.0,
            MatMut::row_major(&mut self.z, bs, HIDDEN)?,
        )?;
        tanh(&self.z, &mut self.h)?;
        for row in self.logits.chunks_mut(OUT) {
            row.copy_from_slice(&self.b2);
        }
        sgemm(
            1.0,
            m(&self.h, bs, HIDDEN)?,
            m(&self.w2, OUT, HIDDEN)?.t(),
            1.0,
            MatMut::row_major(&mut self.logits, bs, OUT)?,
        )?;
        cross_entropy_rows(
            &self.logits,
            y,
            bs,
            OUT,
            &mut self.loss,
            &mut self.log_probs,
        )?;
        // backward
        cross_entropy_rows_backward(
            &self.log_probs,
            y,
            &self.g_loss,
            bs,
            OUT,
            &mut self.g_logits,
        )?;
        sgemm(
            1.0,
            m(&self.g_logits, bs, OUT)?.t(),
            m(&self.h, bs, HIDDEN)?,
            0.0,
            MatMut::row_major(&mut self.g_w2, OUT, HIDDEN)?,
        )?;
        sum_cols(&self.g_logits, bs, OUT, &mut self.g_b2)?;
        sgemm(
            1.0,
            m(&self.g_logits, bs, OUT)?,
            m(&self.w2, OUT, HIDDEN)?,
            0.0,
            MatMut::row_major(&mut self.g_h, bs, HIDDEN)?,
        )?;
        tanh_backward(&self.h, &self.g_h, &mut self.g_z)?;
        sgemm(
            1.0,
            m(&self.g_z, bs, HIDDEN)?.t(),
            m(x, bs, IN)?,
            0.0,
            MatMut::row_major(&mut self.g_w1, HIDDEN, IN)?,
        )?;
        sum_cols(&self.g_z, bs, HIDDEN, &mut self.g_b1)?;
        // SGD
        axpy(-lr, &self.g_w1, &mut self.w1)?;
        axpy(-lr, &self.g_b1, &mut self.b1)?;
        axpy(-lr, &self.g_w2, &mut self.w2)?;
        axpy(-lr, &self.g_b2, &mut self.b2)?;
        Ok(self.loss.iter().sum::<f32>() / bs as f32)
    }
}

fn m(data: &[f32], rows: usize, cols: usize) -> kernels::Result<MatRef<'_, f32>> {
    MatRef::row_major(data, rows, cols)
}

fn mlp_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("mlp_step_784_128_10");
    group
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1));
    for bs in [32usize, 256] {
        group.throughput(Throughput::Elements(bs as u64));
        let (xv, yv) = batch(bs);
        let mut raw = RawMlp::new(bs);
        group.bench_with_input(BenchmarkId::new("raw_kernels", bs), &bs, |b, _| {
            b.iter(|| black_box(raw.step(&xv, &yv, 0.1).expect("raw step")))
        });
        let mut rng = seeded_rng(0);
        let model = Sequential::new(vec![
            Box::new(Linear::new(IN, HIDDEN, true, DType::F32, &mut rng).expect("linear")),
            Box::new(Tanh::new()),
            Box::new(Linear::new(HIDDEN, OUT, true, DType::F32, &mut rng).expect("linear")),
        ]);
        let mut opt = Sgd::new(
            model.parameters(),
            HyperParams {
                lr: 0.1,
                ..HyperParams::default()
            },
        )
        .expect("sgd");
        let x = Var::constant(Tensor::from_vec(xv.clone(), [bs, IN], &Device::Cpu).expect("x"));
        let y = Tensor::from_vec(yv.clone(), [bs], &Device::Cpu).expect("y");
        group.bench_with_input(BenchmarkId::new("autograd", bs), &bs, |b, _| {
            b.iter(|| {
                let loss = nn::loss::cross_entropy(&model.forward(&x).expect("forward"), &y)
                    .expect("loss");
                loss.backward().expect("backward");
                opt.step().expect("step");
                opt.zero_grad();
                black_box(loss.tensor().item().expect("item"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mlp_step);
criterion_main!(benches);
