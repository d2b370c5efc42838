//! What watching every layer costs: a training step of the fastai lesson's CNN at
//! batch 1024, with and without [`ActivationStats`] hooks on every layer.
//!
//! The CNN: five stride-2 convolutions 1-8-16-32-64-10 (first kernel 5, then 3), ReLU
//! after all but the last, then a flatten; input the first 1024 images of the
//! embedded Fashion-MNIST subset, normalised. A step is forward, cross-entropy,
//! backward, SGD step and zero_grad.
//!
//! Four variants are timed in rounds, interleaved so that machine noise hits all of
//! them alike: no hooks; hooks on the six top-level layers (the five blocks and the
//! flatten, as the lesson's `Hooks(model, append_stats)` and the PyTorch peer in
//! `../shared/peers/torch_bench.py`); hooks on every leaf module (10: convs, ReLUs and
//! the flatten); the six hooks reading only the first 256 examples of each batch
//! (`ActivationConfig::sample_examples`). Each hook records mean, std, a 40-bin
//! histogram of |x| over [0, 10), near-zero, saturated and non-finite counts every
//! step. The figure reported is the
//! ratio of medians; the stats kernel's own time on the block outputs is also shown.
//!
//! ```text
//! cargo run --release -p diagnostics --example hook_overhead -- [--threads 2] [--rounds 15] [--batch 1024]
//! ```

use std::time::Instant;

use autograd::Var;
use data::fashion_mnist::FashionMnist;
use data::loader::Normalize;
use diagnostics::activations::{ActivationConfig, ActivationStats};
use nn::hooks::ModuleFilter;
use nn::layers::{Conv2d, Conv2dOptions, Flatten, Relu, Sequential};
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use tensor::{DType, Tensor};

type AnyResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn lesson_cnn() -> AnyResult<Sequential> {
    let mut rng = nn::init::seeded_rng(0);
    let opts = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    // As in the lesson (and the PyTorch peer): five blocks `conv [+ relu]`, then a flatten.
    let mut blocks: Vec<Box<dyn Module>> = Vec::new();
    let channels = [1, 8, 16, 32, 64, 10];
    for i in 0..5 {
        let kernel = if i == 0 { 5 } else { 3 };
        let mut block: Vec<Box<dyn Module>> = vec![Box::new(Conv2d::new(
            channels[i],
            channels[i + 1],
            kernel,
            opts,
            DType::F32,
            &mut rng,
        )?)];
        if i < 4 {
            block.push(Box::new(Relu::new()));
        }
        blocks.push(Box::new(Sequential::new(block)));
    }
    blocks.push(Box::new(Flatten::new()));
    Ok(Sequential::new(blocks))
}

/// The top-level children of the model (the lesson's `Hooks(model, f)`).
fn top_level() -> ModuleFilter {
    ModuleFilter::predicate(|path, _| !path.is_empty() && !path.contains('.'))
}

fn step(model: &Sequential, opt: &mut Sgd, x: &Var, y: &Tensor) -> AnyResult<f64> {
    let start = Instant::now();
    let loss = nn::loss::cross_entropy(&model.forward(x)?, y)?;
    loss.backward()?;
    opt.step()?;
    opt.zero_grad();
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(args: &[String], name: &str, default: usize) -> AnyResult<usize> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or_else(|| format!("{name} needs a value"))?
            .parse()
            .map_err(|e| format!("{name}: {e}"))?),
    }
}

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let threads = arg(&args, "--threads", 2)?;
    let rounds = arg(&args, "--rounds", 15)?;
    let batch = arg(&args, "--batch", 1024)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| run(threads, rounds, batch))
}

fn run(threads: usize, rounds: usize, batch: usize) -> AnyResult<()> {
    let ds = FashionMnist::load_embedded()?;
    let n = batch.min(ds.train.len());
    let images = ds.train.images.narrow(0, 0, n)?.contiguous()?;
    let x = Var::constant(Normalize::fit(&images)?.normalize(&images)?);
    let y = ds.train.labels.narrow(0, 0, n)?.contiguous()?;
    let model = lesson_cnn()?;
    let mut opt = Sgd::new(
        model.parameters(),
        HyperParams {
            lr: 0.1,
            ..HyperParams::default()
        },
    )?;

    for _ in 0..3 {
        step(&model, &mut opt, &x, &y)?;
    }
    let variants: [(&str, Option<(ModuleFilter, ActivationConfig)>); 4] = [
        ("no hooks", None),
        (
            "6 hooks (blocks + flatten)",
            Some((top_level(), ActivationConfig::relu())),
        ),
        (
            "10 hooks (every leaf)",
            Some((ModuleFilter::Leaves, ActivationConfig::relu())),
        ),
        (
            "6 hooks, 256 of 1024 examples",
            Some((top_level(), ActivationConfig::relu().sample_examples(256))),
        ),
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut records = 0;
    for _ in 0..rounds {
        for (i, (_, watch)) in variants.iter().enumerate() {
            let stats = match watch {
                Some((filter, config)) => {
                    Some(ActivationStats::watch(&model, filter, config.clone())?)
                }
                None => None,
            };
            // Three steps per variant and round; the first after attaching warms up.
            step(&model, &mut opt, &x, &y)?;
            for _ in 0..2 {
                times[i].push(step(&model, &mut opt, &x, &y)?);
            }
            if let Some(stats) = stats {
                stats.check()?;
                records += stats.log().record_count();
            }
        }
    }
    println!("lesson CNN train step, batch {n}, {threads} threads, {rounds} rounds (median ms)");
    let base = median(&mut times[0].clone());
    for (i, (name, _)) in variants.iter().enumerate() {
        let m = median(&mut times[i]);
        println!(
            "  {name:<24} {m:8.2} ms   overhead {:+6.1}%",
            100.0 * (m / base - 1.0)
        );
    }
    println!("  ({records} records taken)");

    // The same cost measured in isolation (less exposed to noise): the kernel on the
    // outputs of every leaf module of one forward pass.
    let outputs: std::sync::Arc<std::sync::Mutex<Vec<Tensor>>> = Default::default();
    let grab = outputs.clone();
    let hooks = nn::hooks::HookCollection::forward(&model, &top_level(), |_, _| {
        let grab = grab.clone();
        move |_: &nn::hooks::HookContext<'_>, _: &Tensor, out: &Tensor| {
            grab.lock().map(|mut v| v.push(out.clone())).unwrap_or(());
        }
    });
    model.forward(&x)?;
    drop(hooks);
    let outputs = outputs.lock().map_err(|_| "poisoned")?.clone();
    let elements: usize = outputs.iter().map(Tensor::elem_count).sum();
    let cfg = ActivationConfig::relu().stats_config();
    let mut kernel = Vec::new();
    for _ in 0..rounds.max(5) {
        let start = Instant::now();
        for t in &outputs {
            std::hint::black_box(diagnostics::tensor_stats::tensor_stats(t, &cfg, "bench")?);
        }
        kernel.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let k = median(&mut kernel);
    println!(
        "  stats kernel alone on the {} block outputs ({:.1} M values, {:.1} MB): {k:.2} ms = {:.1}% of the unhooked step ({:.1} GB/s)",
        outputs.len(),
        elements as f64 / 1e6,
        elements as f64 * 4.0 / 1e6,
        100.0 * k / base,
        elements as f64 * 4.0 / (k * 1e6)
    );
    Ok(())
}
