//! Times this engine on the workloads of `../shared/peers/torch_bench.py`, with the
//! same keys and the same timing method (warm-up calls, then timed calls until both a
//! minimum count and a minimum wall time are reached; median, p10, p90), and prints
//! the ratio to PyTorch's figures when given the peer's JSON from the same session:
//!
//! ```sh
//! GLIBC_TUNABLES=... ~/torch-venv/bin/python ../shared/peers/torch_bench.py \
//!     --threads 2 --only cnn,convs,bn,mlp,makemore --json /tmp/torch.json
//! cargo run --release -p bench-harness --bin compare -- --threads 2 --torch /tmp/torch.json
//! ```
//!
//! A ratio below 1 means this engine is faster. Subnormal floats are flushed to zero
//! while timing, as `train::Learner::fit` does by default; `--keep-denormals` times
//! without that (PyTorch's default; its equivalent is `torch.set_flush_denormal`). Sections: `cnn` (train step and
//! no-grad forward of the lesson CNN, baseline and BatchNorm + GeneralRelu, batch 64,
//! 256, 1024), `convs` (each conv layer at batch 1024: forward, input gradient, weight
//! and bias gradient), `bn` (BatchNorm2d training forward + backward), `mlp`
//! (784-128-10 tanh MLP step, batch 32) `makemore` (the lecture's MLP with
//! BatchNorm1d, batch 32 and 256), `epoch` (one epoch of the full training set at
//! batch 1024, both CNNs) and `hooks` (the train step with and without activation
//! statistics on the six block outputs the peer watches, and the statistics alone timed
//! inside the hooks, per step). Default: all but `epoch` and `hooks`.

use std::collections::BTreeMap;
use std::time::Instant;

use autograd::{no_grad, Var};
use kernels::cpu::conv2d::{
    conv2d_backward, conv2d_backward_input, conv2d_backward_weight, conv2d_forward, Conv2dParams,
    Conv2dShape,
};
use lessons::models::{block_outputs, lesson_cnn, Activation, CnnConfig, Init, Norm};
use nn::init::seeded_rng;
use nn::layers::{BatchNorm, Embedding, Flatten, Linear, Sequential, Tanh};
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use rand::Rng;
use tensor::{DType, Device, Tensor};

/// Tensors start on a cache line, as PyTorch's do (see `tensor::alloc`).
#[global_allocator]
static ALLOC: tensor::alloc::CacheAligned = tensor::alloc::CacheAligned;

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Median, p10 and p90 of timed calls, in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Timing {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    n: usize,
}

impl Timing {
    /// Median, p10 and p90 of samples in milliseconds (at least one).
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        Timing {
            median_ms: median(&ms),
            p10_ms: at(0.1),
            p90_ms: at(0.9),
            n: ms.len(),
        }
    }
}

/// The median of sorted values, as Python's `statistics.median` (the peer's): the mean
/// of the two middle values when their count is even.
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn bench(
    mut f: impl FnMut() -> AnyResult<()>,
    warmup: usize,
    min_iters: usize,
    min_time: f64,
) -> AnyResult<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ts = Vec::new();
    let start = Instant::now();
    while ts.len() < 2000 && (ts.len() < min_iters || start.elapsed().as_secs_f64() < min_time) {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing::of(ts))
}

struct Runner {
    results: BTreeMap<String, Timing>,
}

impl Runner {
    fn record(&mut self, key: String, t: Timing) {
        println!(
            "{key:58} median {:9.3} ms  (p10 {:.3}, p90 {:.3}, n={})",
            t.median_ms, t.p10_ms, t.p90_ms, t.n
        );
        self.results.insert(key, t);
    }
}

fn fashion_batch(bs: usize) -> AnyResult<(Var, Tensor)> {
    let ds = data::fashion_mnist::FashionMnist::load(None)?;
    let idx = Tensor::from_vec(
        (0..bs as u32)
            .map(|i| i % ds.train.labels.elem_count() as u32)
            .collect(),
        [bs],
        &Device::Cpu,
    )?;
    Ok((
        Var::constant(ds.train.images.index_select(0, &idx)?),
        ds.train.labels.index_select(0, &idx)?,
    ))
}

fn sec_cnn(r: &mut Runner) -> AnyResult<()> {
    let variants = [
        ("relu", CnnConfig::default()),
        ("bn_grelu", bn_grelu_config()),
    ];
    for (name, cfg) in variants {
        for bs in [64usize, 256, 1024] {
            let model = lesson_cnn(cfg, &mut seeded_rng(0))?;
            let (x, y) = fashion_batch(bs)?;
            let t = bench(
                || {
                    let _g = no_grad();
                    model.forward(&x)?;
                    Ok(())
                },
                5,
                20,
                1.0,
            )?;
            r.record(format!("cnn/{name}/bs{bs}/fwd_nograd"), t);
            let mut opt = Sgd::new(
                model.parameters(),
                HyperParams {
                    lr: 0.01,
                    ..HyperParams::default()
                },
            )?;
            let t = bench(
                || {
                    let loss = nn::loss::cross_entropy(&model.forward(&x)?, &y)?;
                    loss.backward()?;
                    opt.step()?;
                    opt.zero_grad();
                    Ok(())
                },
                5,
                20,
                1.0,
            )?;
            r.record(format!("cnn/{name}/bs{bs}/train_step"), t);
        }
    }
    Ok(())
}

const CONV_LAYERS: [(&str, usize, usize, usize, usize); 5] = [
    ("conv1_1to8_k5_28", 1, 8, 5, 28),
    ("conv2_8to16_k3_14", 8, 16, 3, 14),
    ("conv3_16to32_k3_7", 16, 32, 3, 7),
    ("conv4_32to64_k3_4", 32, 64, 3, 4),
    ("conv5_64to10_k3_2", 64, 10, 3, 2),
];

fn sec_convs(r: &mut Runner) -> AnyResult<()> {
    let bs = 1024;
    let mut rng = seeded_rng(0);
    for (name, ci, co, k, h) in CONV_LAYERS {
        let p = Conv2dParams {
            stride: (2, 2),
            padding: (k / 2, k / 2),
            ..Conv2dParams::default()
        };
        let shape = Conv2dShape::new([bs, ci, h, h], [co, ci, k, k], p)?;
        let x: Vec<f32> = (0..shape.input_len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let w: Vec<f32> = (0..shape.weight_len())
            .map(|_| rng.random_range(-0.3..0.3))
            .collect();
        let b = vec![0f32; co];
        let gy: Vec<f32> = (0..shape.output_len())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let (mut y, mut gx, mut gw, mut gb) = (
            vec![0f32; shape.output_len()],
            vec![0f32; shape.input_len()],
            vec![0f32; shape.weight_len()],
            vec![0f32; co],
        );
        r.record(
            format!("convs/{name}/fwd"),
            bench(
                || Ok(conv2d_forward(&shape, &x, &w, Some(&b), &mut y)?),
                5,
                30,
                1.0,
            )?,
        );
        r.record(
            format!("convs/{name}/bwd_input"),
            bench(
                || Ok(conv2d_backward_input(&shape, &gy, &w, &mut gx)?),
                5,
                30,
                1.0,
            )?,
        );
        r.record(
            format!("convs/{name}/bwd_weight_bias"),
            bench(
                || {
                    Ok(conv2d_backward_weight(
                        &shape,
                        &x,
                        &gy,
                        &mut gw,
                        Some(&mut gb),
                    )?)
                },
                5,
                30,
                1.0,
            )?,
        );
        // all three gradients in one call (the peer's `bwd_all`)
        r.record(
            format!("convs/{name}/bwd_all"),
            bench(
                || {
                    let gb = Some(&mut gb[..]);
                    Ok(conv2d_backward(&shape, &x, &w, &gy, &mut gx, &mut gw, gb)?)
                },
                5,
                30,
                1.0,
            )?,
        );
        // through autograd, as in training (conv1's input needs no gradient)
        let xv = Var::new(
            Tensor::from_vec(x.clone(), [bs, ci, h, h], &Device::Cpu)?,
            ci != 1,
        );
        let wv = Var::parameter(Tensor::from_vec(w.clone(), [co, ci, k, k], &Device::Cpu)?);
        let bv = Var::parameter(Tensor::zeros([co], DType::F32, &Device::Cpu)?);
        let gyt = Tensor::from_vec(gy.clone(), shape.output_dims().to_vec(), &Device::Cpu)?;
        let t = bench(
            || {
                xv.conv2d(&wv, Some(&bv), p)?.backward_with_grad(&gyt)?;
                for v in [&xv, &wv, &bv] {
                    v.zero_grad();
                }
                Ok(())
            },
            5,
            30,
            1.0,
        )?;
        r.record(format!("convs/{name}/autograd_fwd_bwd"), t);
    }
    Ok(())
}

/// The machine's memory bandwidth now, in GB/s: the STREAM triad `a = b + 3 c` over
/// three 128 MiB f32 arrays (well beyond the last-level cache) on the rayon pool, best of
/// five, counting 12 bytes per element as STREAM does. The machines are shared, and
/// what the neighbours leave of the bandwidth varies from run to run, so BatchNorm's
/// bandwidth is reported against this figure from the same run.
fn triad_bandwidth_gbs() -> f64 {
    use rayon::prelude::*;
    let n = 32 << 20;
    let (mut a, b, c) = (vec![0.0f32; n], vec![1.0f32; n], vec![2.0f32; n]);
    let chunk = 1 << 16;
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let t = Instant::now();
        a.par_chunks_mut(chunk)
            .zip(b.par_chunks(chunk).zip(c.par_chunks(chunk)))
            .for_each(|(a, (b, c))| {
                for ((a, &b), &c) in a.iter_mut().zip(b).zip(c) {
                    *a = b + 3.0 * c;
                }
            });
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(&a);
    12.0 * n as f64 / best / 1e9
}

fn sec_bn(r: &mut Runner) -> AnyResult<()> {
    let triad = triad_bandwidth_gbs();
    println!("  bn: STREAM triad now {triad:.1} GB/s");
    for shp in [[1024usize, 16, 7, 7], [256, 64, 14, 14], [64, 128, 28, 28]] {
        let bn = BatchNorm::new_2d(shp[1], 0.1, 1e-5, DType::F32)?;
        let mut rng = seeded_rng(0);
        let x = Var::parameter(Tensor::randn(
            shp,
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
            &mut rng,
        )?);
        let gy = Tensor::randn(shp, 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?;
        let tag = shp.map(|d| d.to_string()).join("x");
        let t = bench(
            || {
                bn.forward(&x)?.backward_with_grad(&gy)?;
                x.zero_grad();
                bn.zero_grad();
                Ok(())
            },
            5,
            50,
            1.0,
        )?;
        // The peer's measure: five passes over the tensor (read x and write y forward;
        // read dy and x, write dx backward), in GB/s.
        let bytes = 5.0 * 4.0 * shp.iter().product::<usize>() as f64;
        let gbs = bytes / (t.median_ms * 1e6);
        println!(
            "  bn/{tag}: effective {gbs:.1} GB/s (five passes of {:.1} MB), {:.0}% of the triad",
            bytes / 5e6,
            100.0 * gbs / triad
        );
        r.record(format!("bn/{tag}/fwd_bwd"), t);
    }
    Ok(())
}

fn sec_mlp(r: &mut Runner) -> AnyResult<()> {
    let ds = data::fashion_mnist::FashionMnist::load(None)?;
    let n = ds.train.labels.elem_count();
    let images = ds.train.images.reshape([n, 784])?;
    let bs = 32;
    let mut rng = seeded_rng(0);
    let model = Sequential::new(vec![
        Box::new(Linear::new(784, 128, true, DType::F32, &mut rng)?),
        Box::new(Tanh::new()),
        Box::new(Linear::new(128, 10, true, DType::F32, &mut rng)?),
    ]);
    let mut opt = Sgd::new(
        model.parameters(),
        HyperParams {
            lr: 0.1,
            ..HyperParams::default()
        },
    )?;
    let mut i = 0;
    let t = bench(
        || {
            let xb = Var::constant(images.narrow(0, i, bs)?);
            let yb = ds.train.labels.narrow(0, i, bs)?;
            i = (i + bs) % (n - bs);
            let loss = nn::loss::cross_entropy(&model.forward(&xb)?, &yb)?;
            loss.backward()?;
            opt.step()?;
            opt.zero_grad();
            Ok(())
        },
        50,
        500,
        2.0,
    )?;
    r.record(format!("mlp/784-128-10_tanh/bs{bs}/train_step"), t);
    Ok(())
}

fn sec_makemore(r: &mut Runner) -> AnyResult<()> {
    // The lecture's model with nn modules: Embedding(27, 10), Flatten, Linear(30, 200,
    // no bias), BatchNorm1d(200), Tanh, Linear(200, 27); random contexts.
    let (vocab, emb, block, hidden) = (27usize, 10usize, 3usize, 200usize);
    let mut rng = seeded_rng(0);
    let n = 200_000;
    let xs = Tensor::from_vec(
        (0..n * block)
            .map(|_| rng.random_range(0..vocab as u32))
            .collect(),
        [n, block],
        &Device::Cpu,
    )?;
    let ys = Tensor::from_vec(
        (0..n).map(|_| rng.random_range(0..vocab as u32)).collect(),
        [n],
        &Device::Cpu,
    )?;
    for bs in [32usize, 256] {
        let embedding = Embedding::new(vocab, emb, DType::F32, &mut rng)?;
        let model = Sequential::new(vec![
            Box::new(Flatten::new()),
            Box::new(Linear::new(
                emb * block,
                hidden,
                false,
                DType::F32,
                &mut rng,
            )?),
            Box::new(BatchNorm::new_1d(hidden, 0.1, 1e-5, DType::F32)?),
            Box::new(Tanh::new()),
            Box::new(Linear::new(hidden, vocab, true, DType::F32, &mut rng)?),
        ]);
        let mut params = embedding.parameters();
        params.extend(model.parameters());
        let mut opt = Sgd::new(
            params,
            HyperParams {
                lr: 0.1,
                ..HyperParams::default()
            },
        )?;
        let t = bench(
            || {
                let ix = Tensor::from_vec(
                    (0..bs).map(|_| rng.random_range(0..n as u32)).collect(),
                    [bs],
                    &Device::Cpu,
                )?;
                let xb = Var::constant(xs.index_select(0, &ix)?);
                let yb = ys.index_select(0, &ix)?;
                let loss = nn::loss::cross_entropy(&model.forward(&embedding.forward(&xb)?)?, &yb)?;
                loss.backward()?;
                opt.step()?;
                opt.zero_grad();
                Ok(())
            },
            50,
            500,
            2.0,
        )?;
        r.record(format!("makemore/part3_nn_modules/bs{bs}/train_step"), t);
    }
    Ok(())
}

/// One epoch of the lesson CNN on the full training set at batch 1024, as the peer's
/// `sec_epoch`: a seeded permutation, a gather per batch, forward, cross-entropy,
/// backward, SGD step, zero_grad and the loss read back; SGD lr 0.6 (baseline) or 0.4
/// (BatchNorm + GeneralRelu). Three epochs; the median of epochs 2 and 3 is recorded
/// (the first includes warm-up), and the test accuracy after them is printed as a
/// check that the run trained.
fn sec_epoch(r: &mut Runner) -> AnyResult<()> {
    let ds = data::fashion_mnist::FashionMnist::load(None)?;
    let n = ds.train.labels.elem_count();
    let bs = 1024;
    for (name, cfg, lr) in [
        ("relu", CnnConfig::default(), 0.6),
        ("bn_grelu", bn_grelu_config(), 0.4),
    ] {
        let model = lesson_cnn(cfg, &mut seeded_rng(0))?;
        let mut opt = Sgd::new(
            model.parameters(),
            HyperParams {
                lr,
                ..HyperParams::default()
            },
        )?;
        let mut rng = seeded_rng(1);
        let mut times = Vec::new();
        let mut last_loss = 0.0;
        for epoch in 0..3 {
            let start = Instant::now();
            let mut perm: Vec<u32> = (0..n as u32).collect();
            for i in (1..n).rev() {
                perm.swap(i, rng.random_range(0..=i));
            }
            let (mut total, mut seen) = (0.0, 0usize);
            for chunk in perm.chunks(bs) {
                let idx = Tensor::from_vec(chunk.to_vec(), [chunk.len()], &Device::Cpu)?;
                let xb = Var::constant(ds.train.images.index_select(0, &idx)?);
                let yb = ds.train.labels.index_select(0, &idx)?;
                let loss = nn::loss::cross_entropy(&model.forward(&xb)?, &yb)?;
                loss.backward()?;
                opt.step()?;
                opt.zero_grad();
                total += loss.tensor().to_scalar::<f32>()? as f64 * chunk.len() as f64;
                seen += chunk.len();
            }
            times.push(start.elapsed().as_secs_f64() * 1e3);
            last_loss = total / seen as f64;
            println!(
                "  epoch {epoch} ({name}) {:.3} s  train loss {last_loss:.4}",
                times[epoch] / 1e3
            );
        }
        let accuracy = {
            let _g = no_grad();
            model.set_training(false);
            let logits = model.forward(&Var::constant(ds.test.images.clone()))?;
            model.set_training(true);
            let pred = logits.tensor().argmax(1, false)?;
            let labels = &ds.test.labels;
            let hits = pred.eq(labels)?.to_dtype(DType::F64)?.sum_all()?;
            hits.to_scalar::<f64>()? / labels.elem_count() as f64
        };
        println!("  ({name}: last train loss {last_loss:.4}, test accuracy {accuracy:.4})");
        let mut later = times[1..].to_vec();
        later.sort_by(f64::total_cmp);
        r.record(
            format!("epoch/{name}/bs1024/train_epoch_60k"),
            Timing {
                median_ms: median(&later),
                p10_ms: later[0],
                p90_ms: later[later.len() - 1],
                n: later.len(),
            },
        );
    }
    Ok(())
}

/// What watching every layer costs, as the peer's `sec_hooks`: the train step of the
/// lesson CNN (lr 0.01) with and without `ActivationStats` on its six block outputs
/// (`lessons::models::block_outputs`: the peer's five nested blocks and the flatten;
/// mean, std, a 40-bin histogram of |x| over [0, 10), near-zero and saturated counts,
/// every step), in five interleaved rounds; the medians of the round medians are
/// recorded and the overhead printed.
fn sec_hooks(r: &mut Runner) -> AnyResult<()> {
    use diagnostics::activations::{ActivationConfig, ActivationStats};
    use nn::hooks::ModuleFilter;
    for (name, cfg) in [
        ("relu", CnnConfig::default()),
        ("bn_grelu", bn_grelu_config()),
    ] {
        for bs in [256usize, 1024] {
            let model = lesson_cnn(cfg, &mut seeded_rng(0))?;
            let (x, y) = fashion_batch(bs)?;
            let mut opt = Sgd::new(
                model.parameters(),
                HyperParams {
                    lr: 0.01,
                    ..HyperParams::default()
                },
            )?;
            let mut step = || -> AnyResult<()> {
                let loss = nn::loss::cross_entropy(&model.forward(&x)?, &y)?;
                loss.backward()?;
                opt.step()?;
                opt.zero_grad();
                Ok(())
            };
            // The peer's six top-level modules (five nested blocks and the flatten) are
            // our block outputs: our CNN is flat.
            let blocks = block_outputs(&model);
            let top_level = || {
                let blocks = blocks.clone();
                ModuleFilter::predicate(move |path, _| blocks.iter().any(|b| b == path))
            };
            let (mut plain, mut hooked) = (Vec::new(), Vec::new());
            for _ in 0..5 {
                plain.push(bench(&mut step, 2, 10, 0.3)?);
                let stats = ActivationStats::watch(&model, &top_level(), ActivationConfig::relu())?;
                hooked.push(bench(&mut step, 2, 10, 0.3)?);
                stats.check()?;
            }
            let summary = |ts: &[Timing]| {
                let mut m: Vec<f64> = ts.iter().map(|t| t.median_ms).collect();
                m.sort_by(f64::total_cmp);
                Timing {
                    median_ms: median(&m),
                    p10_ms: m[0],
                    p90_ms: m[m.len() - 1],
                    n: ts.iter().map(|t| t.n).sum(),
                }
            };
            let (p, h) = (summary(&plain), summary(&hooked));
            r.record(format!("hooks/{name}/bs{bs}/hooks/step_plain"), p);
            r.record(format!("hooks/{name}/bs{bs}/hooks/step_hooked"), h);
            // The statistics alone, timed inside the hooks: the same kernel calls as
            // `ActivationStats` makes, summed per step. Much less noisy than the
            // difference of two step medians on a shared machine.
            let s = stats_time_per_step(&model, &top_level(), &mut step)?;
            r.record(format!("hooks/{name}/bs{bs}/hooks/stats_per_step"), s);
            println!(
                "  hooks/{name}/bs{bs}: overhead {:+.1}%; statistics alone {:.2} ms per step, {:.1}% of the plain step",
                100.0 * (h.median_ms / p.median_ms - 1.0),
                s.median_ms,
                100.0 * s.median_ms / p.median_ms
            );
        }
    }
    Ok(())
}

/// Runs `step` with a forward hook on each module `filter` chooses that computes the
/// statistics `ActivationStats` records (`tensor_stats` under `ActivationConfig::relu()`)
/// and times only that; returns the per-step sums over timed steps.
fn stats_time_per_step(
    model: &dyn Module,
    filter: &nn::hooks::ModuleFilter,
    step: &mut dyn FnMut() -> AnyResult<()>,
) -> AnyResult<Timing> {
    use std::sync::{Arc, Mutex};
    let cfg = diagnostics::activations::ActivationConfig::relu().stats_config();
    let total: Arc<Mutex<(f64, Option<String>)>> = Arc::default();
    let shared = total.clone();
    let _hooks = nn::hooks::HookCollection::forward(model, filter, move |_, _| {
        let shared = shared.clone();
        move |_: &nn::hooks::HookContext<'_>, _: &Tensor, out: &Tensor| {
            let t = Instant::now();
            let result = diagnostics::tensor_stats::tensor_stats(out, &cfg, "timed hook");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let mut total = shared.lock().unwrap_or_else(|e| e.into_inner());
            total.0 += ms;
            if let Err(e) = result {
                total.1.get_or_insert(e.to_string());
            }
        }
    });
    let mut per_step = Vec::new();
    for i in 0..12 {
        step()?;
        let mut total = total.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = total.1.take() {
            return Err(e.into());
        }
        if i >= 2 {
            per_step.push(total.0);
        }
        total.0 = 0.0;
    }
    Ok(Timing::of(per_step))
}

/// The lesson's BatchNorm + GeneralRelu(leak 0.1, sub 0.4) CNN, as the peer's
/// `bn_grelu` variant.
fn bn_grelu_config() -> CnnConfig {
    CnnConfig {
        activation: Activation::GeneralRelu {
            leak: 0.1,
            sub: 0.4,
        },
        norm: Norm::Batch,
        init: Init::Default,
        dtype: DType::F32,
    }
}

/// Reads each workload's `median_ms` from the peer's JSON: `{"meta": .., "results":
/// {"key": {"median_ms": .., ..}, ..}}` (entries without a number `median_ms` are
/// skipped).
fn torch_medians(path: &str) -> AnyResult<BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let entries = json
        .get("results")
        .and_then(|r| r.as_object())
        .ok_or_else(|| format!("{path}: expected an object `results` at the top"))?;
    Ok(entries
        .iter()
        .filter_map(|(key, v)| Some((key.clone(), v.get("median_ms")?.as_f64()?)))
        .collect())
}

/// The sections, in the order `--only` runs them when it names several.
const SECTIONS: [&str; 7] = ["cnn", "convs", "bn", "mlp", "makemore", "epoch", "hooks"];

/// What `--help` prints.
const USAGE: &str = "\
compare: times this engine on the peer script's workloads

usage: compare [--threads N] [--only SECTIONS] [--torch FILE] [--keep-denormals]

  --threads N        compute threads (default 1; at most 4 per logical core)
  --only SECTIONS    comma-separated: cnn, convs, bn, mlp, makemore, epoch, hooks
                     (default cnn,convs,bn,mlp,makemore)
  --torch FILE       the peer's JSON from the same session: print ratios
  --keep-denormals   time without flushing subnormal floats to zero";

/// Checks that every argument is a known flag (with its value where it takes one),
/// so a mistyped flag is an error instead of a silently different run.
fn check_arguments(args: &[String]) -> AnyResult<()> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--threads" | "--only" | "--torch" => {
                if rest.next().is_none() {
                    return Err(format!("{arg} needs a value\n\n{USAGE}").into());
                }
            }
            "--keep-denormals" => {}
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}").into()),
        }
    }
    Ok(())
}

fn main() {
    if std::env::args().skip(1).any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return;
    }
    if let Err(e) = run() {
        eprintln!("compare: error: {e}");
        std::process::exit(1);
    }
}

/// Parses the flags, runs the sections and prints the tables.
fn run() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    check_arguments(&args)?;
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads = flag("--threads")
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("--threads expects a whole number, got `{s}`"))
        })
        .transpose()?;
    // One thread unless asked, bounded like the lesson programs' --threads.
    let threads = lessons::cli::thread_count(Some(threads.unwrap_or(1)), "--threads")?;
    let only = flag("--only").unwrap_or_else(|| "cnn,convs,bn,mlp,makemore".into());
    let sections: Vec<&str> = only.split(',').map(str::trim).collect();
    if let Some(bad) = sections.iter().find(|s| !SECTIONS.contains(s)) {
        return Err(format!(
            "unknown section `{bad}` in --only (sections: {})",
            SECTIONS.join(", ")
        )
        .into());
    }
    // Read before timing anything: a bad file is known in a second, not after the runs.
    let peer = flag("--torch")
        .map(|path| torch_medians(&path))
        .transpose()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut runner = Runner {
        results: BTreeMap::new(),
    };
    println!(
        "insight compare: threads={threads}, simd={}, subnormals {}",
        kernels::cpu::dispatch::active(),
        if args.iter().any(|a| a == "--keep-denormals") {
            "kept (--keep-denormals)"
        } else {
            "flushed to zero, as Learner::fit does"
        }
    );
    // As `Learner::fit` does, unless asked not to.
    let keep_denormals = args.iter().any(|a| a == "--keep-denormals");
    pool.install(|| -> AnyResult<()> {
        let _flush = (!keep_denormals).then(kernels::cpu::denormals::FlushDenormals::enable);
        for section in sections {
            match section {
                "cnn" => sec_cnn(&mut runner)?,
                "convs" => sec_convs(&mut runner)?,
                "bn" => sec_bn(&mut runner)?,
                "mlp" => sec_mlp(&mut runner)?,
                "makemore" => sec_makemore(&mut runner)?,
                "epoch" => sec_epoch(&mut runner)?,
                "hooks" => sec_hooks(&mut runner)?,
                other => unreachable!("section `{other}` was checked against SECTIONS"),
            }
        }
        Ok(())
    })?;
    if let Some(peer) = peer {
        println!("\n| workload | ours (ms) | PyTorch (ms) | ratio |\n|---|---|---|---|");
        for (key, t) in &runner.results {
            if let Some(p) = peer.get(key) {
                println!(
                    "| {key} | {:.3} | {:.3} | {:.2} |",
                    t.median_ms,
                    p,
                    t.median_ms / p
                );
            }
        }
    }
    Ok(())
}
