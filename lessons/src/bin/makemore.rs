//! `makemore`: Karpathy's makemore part 3 ("activations, gradients, BatchNorm") on any
//! newline-separated word list.
//!
//! A character-level MLP reads the previous `block` (3) characters, embeds each in 10
//! dimensions, and predicts the next one through a hidden layer of 200 tanh units.
//! Initialised naively (every weight N(0, 1)) it starts with a loss far above the
//! -ln(1/vocab) of a uniform guess and most tanh units saturated (|h| > 0.97), so their
//! gradients vanish. The lesson's fixes are flags:
//!
//! - `--scale-output`: the output layer's weights * 0.01 and bias 0, so the initial
//!   logits are near zero and the initial loss near -ln(1/vocab);
//! - `--kaiming`: hidden weights * (5/3) / sqrt(fan_in), tanh's Kaiming gain;
//! - `--batchnorm`: BatchNorm1d between the hidden Linear and the tanh.
//!
//! `--deep` builds Karpathy's deeper net instead (5 hidden Linear-BatchNorm-Tanh
//! layers of 100, Kaiming-scaled) to show the per-layer tanh histograms at one step.
//!
//! It prints the initial loss against the expected one, the saturated share at init,
//! the final train/valid losses and sampled words, and writes into `--out` the
//! saturation map, the tanh histograms, the update:data ratios, the loss curve and a
//! health report.
//!
//! Ctrl-C or `SIGTERM` stops training after the current step: the program evaluates
//! and writes its figures for the steps that finished, says where it stopped, and
//! exits with status 130. One run at a time may write into an output folder.

use std::path::PathBuf;

use autograd::{no_grad, Var};
use clap::Parser;
use data::words::{ContextWindows, Vocab, WordList};
use diagnostics::activations::{ActivationConfig, ActivationStats};
use diagnostics::gradients::{GradientConfig, GradientStats};
use diagnostics::health::HealthConfig;
use diagnostics::losses::LossLog;
use diagnostics::TrainingLog;
use lessons::cli::{self, interrupt, OutputLock, EXIT_INTERRUPTED};
use lessons::Result;
use nn::hooks::ModuleFilter;
use nn::init::{normal_, seeded_rng, zeros_};
use nn::layers::{BatchNorm, Embedding, Flatten, Linear, Sequential, Tanh};
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use plots::BinaryImage;
use rand::rngs::StdRng;
use rand::Rng;
use tensor::{DType, Device, Tensor};

/// Tensors start on a cache line, as PyTorch's do (see `tensor::alloc`).
#[global_allocator]
static ALLOC: tensor::alloc::CacheAligned = tensor::alloc::CacheAligned;

/// Karpathy's makemore part 3: a character MLP, its activation and gradient
/// statistics, and the lesson's initialisation fixes.
#[derive(Parser, Debug)]
#[command(name = "makemore", version, about, long_about = None, allow_negative_numbers = true)]
struct Args {
    /// A newline-separated word list (default: makemore's names.txt, 32,033 names,
    /// built into the binary; MIT licence, see lessons/data/NOTICE).
    #[arg(long)]
    words: Option<PathBuf>,
    /// Optimisation steps.
    #[arg(long, default_value_t = 5000)]
    steps: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Learning rate (divided by 10 for the last quarter of the steps).
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
    /// Seed of the initialisation, the split, the batches and the samples.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads of the compute pool (default: all cores; at most 4 per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Output directory.
    #[arg(long, default_value = "makemore-out")]
    out: PathBuf,
    /// Output layer weights * 0.01 and bias 0.
    #[arg(long)]
    scale_output: bool,
    /// Hidden weights * (5/3) / sqrt(fan_in).
    #[arg(long)]
    kaiming: bool,
    /// BatchNorm1d after the hidden Linear.
    #[arg(long)]
    batchnorm: bool,
    /// Karpathy's deep net: 5 hidden Linear-BatchNorm-Tanh layers of 100 units.
    #[arg(long)]
    deep: bool,
    /// Training step at which the per-layer histograms and the saturation map are
    /// captured (below --steps).
    #[arg(long, default_value_t = 0)]
    snapshot_step: usize,
    /// Names to sample at the end.
    #[arg(long, default_value_t = 10)]
    samples: usize,
}

/// Characters of context.
const BLOCK: usize = 3;
/// Embedding dimension.
const EMBED: usize = 10;
/// Hidden units of the one-layer MLP.
const HIDDEN: usize = 200;
/// Hidden units per layer of the deep MLP.
const DEEP_HIDDEN: usize = 100;
/// Hidden layers of the deep MLP.
const DEEP_LAYERS: usize = 5;
/// Tanh's Kaiming gain.
const TANH_GAIN: f64 = 5.0 / 3.0;

/// The largest `--batch-size` accepted (a batch's activations grow with it).
const MAX_BATCH: usize = 1 << 20;
/// makemore's names.txt (Andrej Karpathy, MIT licence: lessons/data/NOTICE), the
/// default word list.
const NAMES: &str = include_str!("../../data/names.txt");

/// How the built-in list is named in messages.
const NAMES_SOURCE: &str = "the built-in names.txt (makemore's, MIT licence)";

/// The most names `--samples` draws (they are kept and printed).
const MAX_SAMPLES: usize = 10_000;

/// Windows per forward pass of the final evaluation: the whole split in one batch
/// would hold every activation of every window at once (hundreds of MB for names.txt).
const EVAL_BATCH: usize = 4096;

fn main() {
    let code = match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("makemore: error: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// The model and the path of the tanh whose saturation map is drawn.
struct Built {
    model: Sequential,
    tanh_path: String,
}

/// Builds the one-layer MLP (or the deep one) with the lesson's initialisation.
fn build(args: &Args, vocab: usize, rng: &mut StdRng) -> Result<Built> {
    let mut layers: Vec<Box<dyn Module>> = vec![
        Box::new(Embedding::new(vocab, EMBED, DType::F32, rng)?),
        Box::new(Flatten::new()),
    ];
    let (widths, bn, kaiming) = if args.deep {
        (vec![DEEP_HIDDEN; DEEP_LAYERS], true, true)
    } else {
        (vec![HIDDEN], args.batchnorm, args.kaiming)
    };
    let mut fan_in = BLOCK * EMBED;
    let mut tanh_path = String::new();
    for &width in &widths {
        let linear = Linear::new(fan_in, width, !bn, DType::F32, rng)?;
        // Karpathy's naive start: N(0, 1) weights (and biases).
        let scale = if kaiming {
            TANH_GAIN / (fan_in as f64).sqrt()
        } else {
            1.0
        };
        normal_(linear.weight().tensor(), 0.0, scale, rng)?;
        if let Some(b) = linear.bias() {
            normal_(b.tensor(), 0.0, if kaiming { 0.01 } else { 1.0 }, rng)?;
        }
        layers.push(Box::new(linear));
        if bn {
            layers.push(Box::new(BatchNorm::new_1d(width, 0.1, 1e-5, DType::F32)?));
        }
        if tanh_path.is_empty() {
            tanh_path = layers.len().to_string();
        }
        layers.push(Box::new(Tanh::new()));
        fan_in = width;
    }
    let out = Linear::new(fan_in, vocab, true, DType::F32, rng)?;
    let out_scale = if args.scale_output || args.deep {
        0.01
    } else {
        1.0
    };
    normal_(out.weight().tensor(), 0.0, out_scale, rng)?;
    if let Some(b) = out.bias() {
        if args.scale_output || args.deep {
            zeros_(b.tensor())?;
        } else {
            normal_(b.tensor(), 0.0, 1.0, rng)?;
        }
    }
    layers.push(Box::new(out));
    Ok(Built {
        model: Sequential::new(layers),
        tanh_path,
    })
}

/// `n` random rows of the windows: inputs `[n, BLOCK]` and targets `[n]`.
fn batch(w: &ContextWindows, n: usize, rng: &mut StdRng) -> Result<(Tensor, Tensor)> {
    let mut x = Vec::with_capacity(n * BLOCK);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let i = rng.random_range(0..w.len());
        x.extend_from_slice(&w.x()[i * BLOCK..(i + 1) * BLOCK]);
        y.push(w.y()[i]);
    }
    Ok((
        Tensor::from_vec(x, [n, BLOCK], &Device::Cpu)?,
        Tensor::from_vec(y, [n], &Device::Cpu)?,
    ))
}

/// Mean loss over every window, in evaluation mode, [`EVAL_BATCH`] windows at a time
/// (so memory does not grow with the split).
fn evaluate(model: &Sequential, w: &ContextWindows) -> Result<f64> {
    if w.is_empty() {
        return Ok(f64::NAN);
    }
    let _guard = no_grad();
    model.set_training(false);
    let total = (|| -> Result<f64> {
        let mut total = 0.0;
        for start in (0..w.len()).step_by(EVAL_BATCH) {
            let n = EVAL_BATCH.min(w.len() - start);
            let x = w.x()[start * BLOCK..(start + n) * BLOCK].to_vec();
            let y = w.y()[start..start + n].to_vec();
            let x = Tensor::from_vec(x, [n, BLOCK], &Device::Cpu)?;
            let y = Tensor::from_vec(y, [n], &Device::Cpu)?;
            let logits = model.forward(&Var::constant(x))?;
            let mean: f64 = nn::loss::cross_entropy(&logits, &y)?.tensor().item()?;
            total += mean * n as f64;
        }
        Ok(total)
    })();
    model.set_training(true);
    Ok(total? / w.len() as f64)
}

/// Samples one word, character by character, until the boundary symbol.
fn sample(model: &Sequential, vocab: &Vocab, rng: &mut StdRng) -> Result<String> {
    let _guard = no_grad();
    model.set_training(false);
    let mut context = [0u32; BLOCK];
    let mut out = Vec::new();
    while out.len() < 50 {
        let x = Tensor::from_vec(context.to_vec(), [1, BLOCK], &Device::Cpu)?;
        let logits = model.forward(&Var::constant(x))?.tensor().to_vec_f64()?;
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let weights: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut u = rng.random::<f64>() * total;
        let mut ix = weights.len() - 1;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                ix = i;
                break;
            }
            u -= w;
        }
        if ix == 0 {
            break;
        }
        out.push(ix as u32);
        context.rotate_left(1);
        context[BLOCK - 1] = ix as u32;
    }
    model.set_training(true);
    Ok(vocab.decode(&out)?)
}

/// Trains, evaluates and writes the figures; returns the exit status (0, or
/// [`EXIT_INTERRUPTED`] after a Ctrl-C).
fn run(args: Args) -> Result<i32> {
    if args.steps == 0 || args.batch_size == 0 {
        return Err(format!(
            "--steps and --batch-size must be at least 1, got {} and {}",
            args.steps, args.batch_size
        )
        .into());
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        return Err(format!("--lr must be a positive number, got {}", args.lr).into());
    }
    if args.batchnorm && args.batch_size < 2 {
        return Err("--batchnorm needs --batch-size of at least 2".into());
    }
    if args.batch_size > MAX_BATCH || args.samples > MAX_SAMPLES {
        return Err(format!(
            "--batch-size must be at most {MAX_BATCH} and --samples at most {MAX_SAMPLES}, got \
             {} and {}",
            args.batch_size, args.samples
        )
        .into());
    }
    if args.snapshot_step >= args.steps {
        return Err(format!(
            "--snapshot-step must be a training step, 0..={} for --steps {}, got {}",
            args.steps - 1,
            args.steps,
            args.snapshot_step
        )
        .into());
    }
    cli::init_thread_pool(args.threads, "--threads")?;

    let list = match &args.words {
        Some(path) => WordList::read(path)
            .map_err(|e| format!("reading the word list {}: {e}", path.display()))?,
        None => WordList::from_text(NAMES, std::path::Path::new(NAMES_SOURCE))
            .map_err(|e| format!("reading the built-in word list: {e}"))?,
    };
    let vocab = list.vocab();
    let split = list.split(args.seed);
    let train = ContextWindows::build(&split.train, &vocab, BLOCK)?;
    let valid = ContextWindows::build(&split.valid, &vocab, BLOCK)?;
    println!(
        "{} words from {} ({} symbols); {} training and {} validation windows of {BLOCK}",
        list.len(),
        list.source().display(),
        vocab.len(),
        train.len(),
        valid.len()
    );
    if train.is_empty() {
        return Err("the word list gives no training windows".into());
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating the output directory {}: {e}", args.out.display()))?;
    let _lock = OutputLock::acquire(&args.out, "makemore")?;
    interrupt::install("makemore")?;

    let mut rng = seeded_rng(args.seed);
    let Built { model, tanh_path } = build(&args, vocab.len(), &mut rng)?;
    let n_params: usize = model
        .parameters()
        .iter()
        .map(|p| p.tensor().elem_count())
        .sum();
    println!(
        "model: {} ({n_params} parameters){}{}{}{}",
        if args.deep {
            format!("deep, {DEEP_LAYERS} x {DEEP_HIDDEN} Linear-BatchNorm-Tanh")
        } else {
            format!("embedding {EMBED}, block {BLOCK}, hidden {HIDDEN}, tanh")
        },
        if args.batchnorm && !args.deep {
            ", BatchNorm1d"
        } else {
            ""
        },
        if args.kaiming && !args.deep {
            ", Kaiming-scaled hidden"
        } else {
            ""
        },
        if args.scale_output {
            ", scaled output"
        } else {
            ""
        },
        if args.deep {
            " (Kaiming, scaled output)"
        } else {
            ""
        }
    );

    let config = ActivationConfig::tanh()
        .snapshot_at(args.snapshot_step)
        .saturation_map_at(tanh_path.clone(), args.snapshot_step);
    let stats = ActivationStats::watch(&model, &ModuleFilter::kinds(&["Tanh"]), config)?;
    let mut grads = GradientStats::for_model(
        &model,
        GradientConfig {
            every: 1,
            histogram_at: Some(args.snapshot_step),
            ..GradientConfig::default()
        },
    )?;
    let hp = HyperParams {
        lr: args.lr,
        ..HyperParams::default()
    };
    let mut opt = Sgd::new(model.parameters(), hp)?;
    let mut losses = LossLog::new();
    // The snapshot step's loss stays exact however the log folds.
    losses.keep_step(args.snapshot_step);
    let decay_at = args.steps * 3 / 4;
    let report_every = (args.steps / 10).max(1);
    let start = std::time::Instant::now();
    let mut steps_done = 0;
    for step in 0..args.steps {
        if interrupt::requested() {
            break;
        }
        let lr = if step < decay_at {
            args.lr
        } else {
            args.lr / 10.0
        };
        opt.set_lr(lr);
        let (xb, yb) = batch(&train, args.batch_size, &mut rng)?;
        let logits = model.forward(&Var::constant(xb))?;
        let loss = nn::loss::cross_entropy(&logits, &yb)?;
        let value = loss.tensor().item()?;
        losses.push_train(step, value);
        if step == 0 {
            let expected = -(1.0 / vocab.len() as f64).ln();
            println!(
                "initial loss {value:.4} (expected -ln(1/{}) = {expected:.4} for a uniform guess){}",
                vocab.len(),
                if value > 2.0 * expected {
                    ": the network is confidently wrong at init"
                } else {
                    ""
                }
            );
            let saturated = stats.with_log(|log| {
                log.layers
                    .iter()
                    .filter_map(|l| l.records.first().map(|r| (l.label(), r.saturated)))
                    .collect::<Vec<_>>()
            });
            for (label, s) in saturated {
                println!(
                    "saturated tanh units at init (|h| > 0.97) in {label}: {:.1}%",
                    100.0 * s
                );
            }
        }
        if !value.is_finite() {
            return Err(format!("the loss became {value} at step {step}; try a lower --lr").into());
        }
        opt.zero_grad();
        loss.backward()?;
        grads.record_with_lr(step, lr)?;
        opt.step()?;
        steps_done = step + 1;
        if step % report_every == 0 || step + 1 == args.steps {
            eprintln!("step {step:>7}/{}: loss {value:.4}", args.steps);
        }
    }
    let interrupted = steps_done < args.steps;
    if interrupted {
        println!(
            "interrupted after {steps_done} of {} steps; evaluating and writing the figures \
             of the steps that finished",
            args.steps
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    stats.check()?;
    let train_loss = evaluate(&model, &train)?;
    let valid_loss = evaluate(&model, &valid)?;
    losses.push_valid(steps_done, valid_loss);
    println!(
        "after {steps_done} steps ({seconds:.1} s): train loss {train_loss:.4}, valid loss \
         {valid_loss:.4}"
    );
    let mut sample_rng = seeded_rng(args.seed.wrapping_add(1));
    let names = (0..args.samples)
        .map(|_| sample(&model, &vocab, &mut sample_rng))
        .collect::<Result<Vec<_>>>()?;
    println!("samples: {}", names.join(", "));

    let acts = stats.log();
    drop(stats);
    let mut extra = Vec::new();
    if let Some(map) = &acts.saturation_map {
        let path = args.out.join("saturation_map.png");
        BinaryImage::from_flat(
            format!(
                "{} at step {}: white where |h| > {} ({:.1}% of cells)",
                map.layer,
                map.call,
                map.threshold,
                100.0 * map.fraction()
            ),
            "hidden unit",
            "example",
            map.rows,
            map.cols,
            map.cells.clone(),
        )
        .white_means(format!("|h| > {}", map.threshold))
        .save_png(&path, 1000, 360)?;
        let dead = map.always_saturated_units();
        println!(
            "saturation map: {:.1}% of cells white, {} unit(s) saturated for every example{}",
            100.0 * map.fraction(),
            dead.len(),
            if dead.is_empty() {
                ""
            } else {
                " (dead: no gradient flows through them)"
            }
        );
        extra.push(path);
    }
    let log = TrainingLog {
        activations: Some(acts),
        gradients: Some(grads.into_log()),
        losses,
    };
    let mut files = log
        .write_all_plots(&args.out)
        .map_err(|e| format!("writing the figures into {}: {e}", args.out.display()))?;
    files.extend(extra);
    let report = log.health(&HealthConfig::classifier(vocab.len()));
    for v in &report.verdicts {
        println!("verdict: {v}");
    }
    let md = report.write_markdown(&args.out, &files)?;
    println!(
        "wrote {} figure files and {} into {}",
        files.len(),
        md.display(),
        args.out.display()
    );
    Ok(if interrupted {
        eprintln!(
            "makemore: interrupted after {steps_done} of {} steps",
            args.steps
        );
        EXIT_INTERRUPTED
    } else {
        0
    })
}
