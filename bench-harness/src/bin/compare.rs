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
//! A ratio below 1 means this engine is faster. Sections: `cnn` (train step and
//! no-grad forward of the lesson CNN, baseline and BatchNorm + GeneralRelu, batch 64,
//! 256, 1024), `convs` (each conv layer at batch 1024: forward, input gradient, weight
//! and bias gradient), `bn` (BatchNorm2d training forward + backward), `mlp`
//! (784-128-10 tanh MLP step, batch 32) and `makemore` (the lecture's MLP with
//! BatchNorm1d, batch 32 and 256).

use std::collections::BTreeMap;
use std::time::Instant;

use autograd::{no_grad, Var};
use kernels::cpu::conv2d::{
    conv2d_backward_input, conv2d_backward_weight, conv2d_forward, Conv2dParams, Conv2dShape,
};
use lessons::models::{lesson_cnn, Activation, CnnConfig, Init, Norm};
use nn::init::seeded_rng;
use nn::layers::{BatchNorm, Embedding, Flatten, Linear, Sequential, Tanh};
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use rand::Rng;
use tensor::{DType, Device, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Median, p10 and p90 of timed calls, in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Timing {
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    n: usize,
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
    ts.sort_by(f64::total_cmp);
    let at = |q: f64| ts[((ts.len() - 1) as f64 * q).round() as usize];
    Ok(Timing {
        median_ms: at(0.5),
        p10_ms: at(0.1),
        p90_ms: at(0.9),
        n: ts.len(),
    })
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
        (
            "bn_grelu",
            CnnConfig {
                activation: Activation::GeneralRelu {
                    leak: 0.1,
                    sub: 0.4,
                },
                norm: Norm::Batch,
                init: Init::Default,
                dtype: DType::F32,
            },
        ),
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

fn sec_bn(r: &mut Runner) -> AnyResult<()> {
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

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let threads: usize = flag("--threads")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1);
    let only = flag("--only").unwrap_or_else(|| "cnn,convs,bn,mlp,makemore".into());
    let torch = flag("--torch");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut runner = Runner {
        results: BTreeMap::new(),
    };
    println!(
        "insight compare: threads={threads}, simd={}",
        kernels::cpu::dispatch::active()
    );
    pool.install(|| -> AnyResult<()> {
        for section in only.split(',') {
            match section {
                "cnn" => sec_cnn(&mut runner)?,
                "convs" => sec_convs(&mut runner)?,
                "bn" => sec_bn(&mut runner)?,
                "mlp" => sec_mlp(&mut runner)?,
                "makemore" => sec_makemore(&mut runner)?,
                other => {
                    return Err(format!(
                        "unknown section `{other}` (cnn, convs, bn, mlp, makemore)"
                    )
                    .into())
                }
            }
        }
        Ok(())
    })?;
    if let Some(path) = torch {
        let peer = torch_medians(&path)?;
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
