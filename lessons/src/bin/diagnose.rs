//! `diagnose`: replays fastai's "looking inside the model" lesson on Fashion-MNIST.
//!
//! The lesson trains one small CNN (five stride-2 convs, 8-16-32-64-10 channels) again
//! and again, each time fixing what the previous run's activation statistics showed
//! was wrong:
//!
//! 1. `baseline`: default init, raw pixels, SGD at lr 0.6: the activations' std
//!    spikes and collapses in the first batches and most ReLU units end up dead.
//! 2. `kaiming`: Kaiming init and normalised inputs keep the std near 1 at every depth
//!    (lr 0.2).
//! 3. `general-relu`: GeneralRelu (leak 0.1, sub 0.4) with Kaiming a=0.1: mean near 0
//!    (lr 0.2).
//! 4. `lsuv`: LSUV rescales each conv on one real batch until its activation has
//!    mean 0, std 1 (lr 0.2).
//! 5. `batchnorm`: BatchNorm after each conv makes the init nearly irrelevant (lr 0.4).
//! 6. `one-cycle`: BatchNorm trained with a one-cycle schedule peaking at lr 1.0.
//! 7. `norms`: BatchNorm, LayerNorm, InstanceNorm, GroupNorm and RunningBatchNorm on
//!    the same net: which train, which blow up, and why InstanceNorm cannot classify
//!    (lr 0.4).
//! 8. `lr-find`: the LR finder's curve for the BatchNorm net (a sweep, no fixed lr).
//! 9. `small-batch`: BatchNorm, BatchNorm with eps 0.1, and RunningBatchNorm at batch
//!    size 2 in the lesson's setup (`07_batchnorm`): a GeneralRelu net with an
//!    average-pool head, SGD lr 0.4, one epoch over the first 12,000 training images.
//!
//! Each stage has its own default learning rate, the lesson's for that net (see
//! `default_lr`): the nets without normalisation diverge at the baseline's 0.6 on the
//! full data set. `--lr` sets one rate for every stage instead (the one-cycle stage's
//! peak included); the summary table has an `lr` column either way.
//!
//! Every stage watches the output of every conv and activation layer with
//! `ActivationStats` and writes, into `<out>/<stage>/`, the mean/std curves, the
//! `color_dim` heat map, the dead chart, the loss curve and a health report with
//! verdicts; `<out>/summary.md` holds one row per run. The same `--seed` and
//! `--threads` give the same numbers on every run (only the time column varies).
//!
//! The summary is rewritten (atomically) after every stage, so a run that is stopped
//! leaves a true record of what finished. Ctrl-C or `SIGTERM` stops training at the
//! next batch boundary: the interrupted stage writes its figures, the summary marks
//! it `interrupted` and the stages after it `not run`, and the program exits with
//! status 130. A stage that could not produce its outputs (an unwritable folder, a
//! failing layer) is `FAILED` and makes the exit status 1; a stage whose loss became
//! NaN is `diverged`, a result of the experiment, and leaves the status at 0. One run
//! at a time may write into an output folder (see [`lessons::cli::OutputLock`]).

use std::path::PathBuf;

use autograd::Var;
use clap::Parser;
use data::fashion_mnist::FashionMnist;
use data::loader::{DataLoader, Normalize};
use diagnostics::activations::{ActivationConfig, DeadRule};
use diagnostics::format::Num;
use diagnostics::health::Finding;
use lessons::cli::{self, interrupt, OutputLock, EXIT_INTERRUPTED};
use lessons::models::{lesson_cnn, Activation, CnnConfig, Init, Norm};
use lessons::summary::{summary_markdown, Header, Progress, Row, Status};
use lessons::watch::{fit_watched, write_run, WatchOptions, Watched};
use lessons::Result;
use nn::init::{lsuv, seeded_rng, LsuvConfig, LsuvTarget};
use nn::layers::Sequential;
use nn::optim::{HyperParams, Sgd};
use plots::{LinePlot, Scale, Series};
use train::callbacks::ParamScheduler;
use train::{lr_find, Learner, LrFinderConfig};

/// Tensors start on a cache line, as PyTorch's do (see `tensor::alloc`).
#[global_allocator]
static ALLOC: tensor::alloc::CacheAligned = tensor::alloc::CacheAligned;

/// Replays fastai's "looking inside the model" lesson on Fashion-MNIST and writes the
/// figures, health reports and a summary table.
#[derive(Parser, Debug)]
#[command(name = "diagnose", version, about, long_about = None, allow_negative_numbers = true, after_help = EXIT_STATUS_HELP)]
struct Args {
    /// Stages to run: `all`, or a comma-separated list of names or numbers
    /// (1 baseline, 2 kaiming, 3 general-relu, 4 lsuv, 5 batchnorm, 6 one-cycle,
    /// 7 norms, 8 lr-find, 9 small-batch).
    #[arg(long, default_value = "all")]
    stages: String,
    /// Epochs per stage (default: 1 on the full data set, as in the lesson; 8 on the
    /// embedded subset).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training batch size (default: 1024 on the full data set, as in the lesson; 256
    /// on the embedded subset; the small-batch stage always uses 2).
    #[arg(long)]
    batch_size: Option<usize>,
    /// SGD learning rate for every stage (the one-cycle stage's peak included),
    /// replacing the per-stage defaults: baseline 0.6; kaiming, general-relu and lsuv
    /// 0.2; batchnorm, norms and small-batch 0.4; one-cycle peaking at 1.0.
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the initialisation and the shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Threads of the compute pool (default: all cores; at most 4 per core). Results
    /// are reproducible for a given seed and thread count.
    #[arg(long)]
    threads: Option<usize>,
    /// Directory holding the four Fashion-MNIST IDX files (otherwise: FASHION_MNIST_DIR,
    /// /usr/share/datasets/fashion-mnist, the user cache, then the embedded subset).
    #[arg(long, conflicts_with = "subset")]
    data: Option<PathBuf>,
    /// Use the subset embedded in the binary (5000 train, 1000 test) even when the
    /// full set is installed: a run in seconds.
    #[arg(long)]
    subset: bool,
    /// Output directory.
    #[arg(long, default_value = "diagnose-out")]
    out: PathBuf,
    /// Stop every training and validation phase after this many batches (quick runs).
    #[arg(long)]
    max_batches: Option<usize>,
    /// At most this many batches of the small-batch stage (batch size 2; one epoch
    /// over the first 12,000 training images is 6,000, the lesson's protocol).
    #[arg(long, default_value_t = 6000)]
    small_batches: usize,
}

/// The stages, in the lesson's order.
const STAGES: [&str; 9] = [
    "baseline",
    "kaiming",
    "general-relu",
    "lsuv",
    "batchnorm",
    "one-cycle",
    "norms",
    "lr-find",
    "small-batch",
];

/// The lesson's GeneralRelu.
const GENERAL_RELU: Activation = Activation::GeneralRelu {
    leak: 0.1,
    sub: 0.4,
};

/// The default learning rate of each stage (the one-cycle stage's peak), used unless
/// `--lr` is given: the lesson's rate for each net, checked to train for one epoch on
/// the full Fashion-MNIST at batch size 1024 (and 2 for `small-batch`). The nets
/// without normalisation diverge at the baseline's 0.6 once they have Kaiming init
/// (their activations are no longer squashed towards zero), so they get 0.2;
/// BatchNorm tolerates 0.4, and a one-cycle warm-up lets it peak at 1.0 (a 2.0 peak
/// also trains but makes activations explode mid-epoch and ends below plain BatchNorm
/// in a single epoch). `lr-find` sweeps its own range and ignores it.
fn default_lr(stage: &str) -> f64 {
    match stage {
        "baseline" => 0.6,
        "kaiming" | "general-relu" | "lsuv" => 0.2,
        "one-cycle" => 1.0,
        // batchnorm, norms, lr-find, small-batch
        _ => 0.4,
    }
}

/// The lesson's protocol on the full data set: batch 1024, one epoch (58 steps).
const FULL_SET_DEFAULTS: (usize, usize) = (1024, 1);

/// On the embedded 5,000 images one epoch at batch 1024 is 4 steps, too few to see
/// anything: batch 256 for 8 epochs gives 152 steps per stage, in which the
/// baseline's deep layers die and each fix trains to a lower loss (a few seconds per
/// stage on 2 cores).
const SUBSET_DEFAULTS: (usize, usize) = (256, 8);

/// The small-batch stage trains on the first this-many training images, as the
/// lesson does.
const SMALL_BATCH_IMAGES: usize = 12_000;

/// Validation batch size (validation needs no gradients: large batches are cheap).
const VALID_BS: usize = 1024;

/// What `--help` says about the exit status, after the flags.
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    every stage produced its figures, report and summary row (a stage whose loss
       became NaN is a result, `diverged` in the summary, and still counts)
  1    a bad command line, unreadable data, or a stage that could not produce its
       outputs (`FAILED` in the summary; the other stages still run)
  130  interrupted by Ctrl-C or SIGTERM: the interrupted stage wrote what it had,
       the summary marks it `interrupted` and the stages after it `not run`";

fn main() {
    let code = match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("diagnose: error: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// The stage names and numbers, for error messages.
fn stage_list() -> String {
    STAGES
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} {s}", i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses `--stages` into stage names, in the lesson's order.
fn parse_stages(spec: &str) -> Result<Vec<&'static str>> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("all") {
        return Ok(STAGES.to_vec());
    }
    let mut chosen = [false; STAGES.len()];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let index = match part.parse::<usize>() {
            Ok(n) if (1..=STAGES.len()).contains(&n) => n - 1,
            _ => STAGES
                .iter()
                .position(|s| s.eq_ignore_ascii_case(part))
                .ok_or_else(|| {
                    format!(
                        "unknown stage `{part}` in --stages; use `all` or names/numbers from: {}",
                        stage_list()
                    )
                })?,
        };
        chosen[index] = true;
    }
    if !chosen.contains(&true) {
        return Err(format!(
            "--stages names no stage (got `{spec}`); use `all` or names/numbers from: {}",
            stage_list()
        )
        .into());
    }
    Ok(STAGES
        .iter()
        .zip(chosen)
        .filter_map(|(s, c)| c.then_some(*s))
        .collect())
}

/// The data every stage shares.
struct Ctx {
    args: Args,
    /// The batch size and epochs used (the flags, or the data set's defaults).
    batch_size: usize,
    epochs: usize,
    ds: FashionMnist,
    norm: Normalize,
    /// The stages asked for, in order.
    stages: Vec<&'static str>,
    rows: Vec<Row>,
}

/// Runs the stages; returns the exit status (see [`EXIT_STATUS_HELP`]).
fn run(args: Args) -> Result<i32> {
    if args.batch_size == Some(0) || args.epochs == Some(0) {
        return Err(format!(
            "--batch-size and --epochs must be at least 1, got {} and {}",
            args.batch_size.unwrap_or(1),
            args.epochs.unwrap_or(1)
        )
        .into());
    }
    if let Some(lr) = args.lr {
        if !(lr.is_finite() && lr > 0.0) {
            return Err(format!("--lr must be a positive number, got {lr}").into());
        }
    }
    if args.max_batches == Some(0) || args.small_batches == 0 {
        return Err("--max-batches and --small-batches must be at least 1".into());
    }
    let stages = parse_stages(&args.stages)?;
    let threads = cli::init_thread_pool(args.threads, "--threads")?;
    // The folder is ours before anything is read or written.
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating the output directory {}: {e}", args.out.display()))?;
    let _lock = OutputLock::acquire(&args.out, "diagnose")?;
    interrupt::install("diagnose")?;
    let loaded = if args.subset {
        FashionMnist::load_embedded()
    } else {
        FashionMnist::load(args.data.as_deref())
    };
    let ds = loaded.map_err(|e| format!("loading Fashion-MNIST: {e}"))?;
    println!("{}", ds.description());
    let defaults = if ds.source == data::fashion_mnist::Source::Embedded {
        SUBSET_DEFAULTS
    } else {
        FULL_SET_DEFAULTS
    };
    let batch_size = args.batch_size.unwrap_or(defaults.0);
    let epochs = args.epochs.unwrap_or(defaults.1);
    let norm = Normalize::fit(&ds.train.images)?;
    let mut ctx = Ctx {
        batch_size,
        epochs,
        args,
        ds,
        norm,
        stages: stages.clone(),
        rows: Vec::new(),
    };
    println!(
        "stages: {}; {}; {threads} thread(s)",
        ctx.stages.join(", "),
        ctx.protocol()
    );
    let mut summary_error = None;
    for (done, stage) in stages.into_iter().enumerate() {
        if interrupt::requested() {
            ctx.rows.push(Row::with_status(stage, Status::NotRun));
            continue;
        }
        println!("\n=== stage {stage} ===");
        let result = match stage {
            "baseline" => ctx.plain(stage, CnnConfig::default(), false, false, false),
            "kaiming" => ctx.plain(
                stage,
                kaiming(Activation::Relu, Norm::None),
                true,
                false,
                false,
            ),
            "general-relu" => {
                ctx.plain(stage, kaiming(GENERAL_RELU, Norm::None), true, false, false)
            }
            "lsuv" => ctx.plain(stage, kaiming(GENERAL_RELU, Norm::None), true, true, false),
            "batchnorm" => ctx.plain(
                stage,
                kaiming(Activation::Relu, Norm::Batch),
                true,
                false,
                false,
            ),
            "one-cycle" => ctx.plain(
                stage,
                kaiming(Activation::Relu, Norm::Batch),
                true,
                false,
                true,
            ),
            "norms" => ctx.norms(),
            "lr-find" => ctx.lr_finder(),
            "small-batch" => ctx.small_batch(),
            other => Err(format!("no stage named {other}").into()),
        };
        if let Err(e) = result {
            // A stage that cannot even start (e.g. an unwritable folder) is reported
            // and the others still run.
            eprintln!("stage {stage} failed: {e}");
            ctx.rows
                .push(Row::with_status(stage, Status::Failed(e.to_string())));
        }
        // A true record of what finished, should the run be stopped from here on.
        if let Err(e) = ctx.write_summary(Some(done + 1)) {
            eprintln!("{e}");
            summary_error = Some(e.to_string());
        }
    }
    let summary = ctx.summary(None);
    println!("\n{summary}");
    let written = ctx.write_summary(None);
    let failed: Vec<&str> = ctx
        .rows
        .iter()
        .filter(|r| matches!(r.status, Status::Failed(_)))
        .map(|r| r.stage.as_str())
        .collect();
    match &written {
        Ok(path) => println!(
            "wrote {} and the figures under {}",
            path.display(),
            ctx.args.out.display()
        ),
        Err(e) => eprintln!("diagnose: error: {e}"),
    }
    if !failed.is_empty() {
        eprintln!(
            "diagnose: {} of {} runs failed to produce their outputs: {}",
            failed.len(),
            ctx.rows.len(),
            failed.join(", ")
        );
    }
    Ok(if interrupt::requested() {
        eprintln!("diagnose: interrupted; the summary records what finished");
        EXIT_INTERRUPTED
    } else if written.is_err() || summary_error.is_some() || !failed.is_empty() {
        1
    } else {
        0
    })
}

/// How the learning rates are chosen, for the header lines.
fn lr_description(lr: Option<f64>) -> String {
    match lr {
        Some(lr) => format!("{lr} for every stage (--lr)"),
        None => "per stage (the lesson's defaults; see the lr column)".to_string(),
    }
}

/// Kaiming init with the given activation and normalisation.
fn kaiming(activation: Activation, norm: Norm) -> CnnConfig {
    CnnConfig {
        activation,
        norm,
        init: Init::Kaiming,
        ..CnnConfig::default()
    }
}

impl Ctx {
    /// The learning rate of `stage`: `--lr` if given, else the stage's default.
    fn lr(&self, stage: &str) -> f64 {
        self.args.lr.unwrap_or_else(|| default_lr(stage))
    }

    fn loaders(&self, bs: usize, normalise: bool) -> Result<(DataLoader, DataLoader)> {
        let mut train = DataLoader::new(&self.ds.train.images, &self.ds.train.labels, bs)?
            .shuffle(self.args.seed)
            .drop_last(bs > 1);
        let mut valid = DataLoader::new(&self.ds.test.images, &self.ds.test.labels, VALID_BS)?;
        if normalise {
            train = train.transform(self.norm);
            valid = valid.transform(self.norm);
        }
        Ok((train, valid))
    }

    fn learner(&self, model: Sequential, lr: f64, bs: usize, normalise: bool) -> Result<Learner> {
        let (train_dl, valid_dl) = self.loaders(bs, normalise)?;
        let hp = HyperParams {
            lr,
            ..HyperParams::default()
        };
        Ok(Learner::new(
            Box::new(model),
            move |params| Sgd::new(params, hp),
            nn::loss::cross_entropy,
            train_dl,
            valid_dl,
        )?)
    }

    fn watch_options(&self, max_batches: Option<usize>) -> WatchOptions {
        WatchOptions {
            epochs: self.epochs,
            max_batches,
            kinds: vec![
                "Conv2d",
                "ReLU",
                "GeneralRelu",
                "BatchNorm2d",
                "LayerNorm",
                "InstanceNorm2d",
                "GroupNorm",
                "RunningBatchNorm",
            ],
            activations: ActivationConfig::relu(),
        }
    }

    /// Stages 1-6: one net, one run.
    fn plain(
        &mut self,
        stage: &str,
        cfg: CnnConfig,
        normalise: bool,
        with_lsuv: bool,
        one_cycle: bool,
    ) -> Result<()> {
        let model = lesson_cnn(cfg, &mut seeded_rng(self.args.seed))?;
        if with_lsuv {
            self.apply_lsuv(&model)?;
        }
        let lr = self.lr(stage);
        let mut learn = self.learner(model, lr, self.batch_size, normalise)?;
        let mut lr_cell = Num(lr).to_string();
        if one_cycle {
            let (lr_schedule, _momentum) = train::schedule::one_cycle(lr, 0.3);
            learn.add_callback(ParamScheduler::new(lr_schedule));
            lr_cell = format!("{} (peak)", Num(lr));
        }
        let watched = fit_watched(&mut learn, &self.watch_options(self.args.max_batches))?;
        self.finish(stage, &lr_cell, watched)
    }

    /// LSUV on the first normalised training batch, reported layer by layer.
    fn apply_lsuv(&self, model: &Sequential) -> Result<()> {
        let (train_dl, _) = self.loaders(self.batch_size, true)?;
        let (xb, _) = train_dl
            .epoch(0)
            .next()
            .ok_or("LSUV needs one training batch, but the training set is empty")??;
        let targets = LsuvTarget::pairs(model, &["Conv2d"], &["GeneralRelu", "ReLU"]);
        let reports = lsuv(model, &Var::constant(xb), &targets, LsuvConfig::default())?;
        for r in reports {
            println!(
                "LSUV {} (observing {}): mean/std {:.3}/{:.3} -> {:.3}/{:.3} in {} step(s){}",
                r.layer,
                r.observe,
                r.initial.0,
                r.initial.1,
                r.last.0,
                r.last.1,
                r.iterations,
                if r.converged { "" } else { " (not converged)" }
            );
        }
        Ok(())
    }

    /// Writes a run's figures and report and adds its row.
    fn finish(&mut self, stage: &str, lr: &str, watched: Watched) -> Result<()> {
        let dir = self.args.out.join(stage);
        let (report, files) = write_run(&watched.log, &dir, 10)?;
        let status = match &watched.outcome {
            _ if watched.interrupted() => Status::Interrupted,
            Ok(_) => Status::Ok(None),
            Err(e) => {
                println!("training stopped: {e}");
                if watched.diverged() {
                    Status::Diverged(e.to_string())
                } else {
                    Status::Failed(format!("training stopped: {e}"))
                }
            }
        };
        for v in &report.verdicts {
            println!("  verdict: {v}");
        }
        println!("  {} files in {}", files.len(), dir.display());
        let activations: Vec<(String, f64)> = watched
            .dead_fractions()
            .into_iter()
            .filter(|(label, _)| label.contains("ReLU") || label.contains("GeneralRelu"))
            .collect();
        let deepest_flagged_dead = activations.last().is_some_and(|(label, _)| {
            report
                .verdicts
                .iter()
                .any(|v| v.subject == *label && v.finding == Finding::DeadUnits)
        });
        let dead = activations.into_iter().map(|(_, d)| d).collect();
        let (valid_loss, valid_acc) = match watched.valid() {
            Some((l, a)) => (Some(l), a),
            None => (None, None),
        };
        self.rows.push(Row {
            stage: stage.to_string(),
            lr: lr.to_string(),
            train_loss: watched.train_loss(),
            valid_loss,
            valid_acc,
            dead,
            deepest_flagged_dead,
            verdicts: report.verdicts.len(),
            status,
            seconds: watched.seconds,
        });
        Ok(())
    }

    /// Stage 7: every normalisation on the same net, init and data.
    fn norms(&mut self) -> Result<()> {
        for norm in [
            Norm::Batch,
            Norm::Layer,
            Norm::Instance,
            Norm::Group(4),
            Norm::RunningBatch,
        ] {
            let name = format!("norms-{}", norm.name());
            if interrupt::requested() {
                self.rows.push(Row::with_status(&name, Status::NotRun));
                continue;
            }
            let lr = self.lr("norms");
            println!("--- {name} (lr {lr}) ---");
            let run = (|| -> Result<()> {
                let model = lesson_cnn(
                    kaiming(Activation::Relu, norm),
                    &mut seeded_rng(self.args.seed),
                )?;
                let mut learn = self.learner(model, lr, self.batch_size, true)?;
                let watched = fit_watched(&mut learn, &self.watch_options(self.args.max_batches))?;
                self.finish(&name, &Num(lr).to_string(), watched)
            })();
            if let Err(e) = run {
                eprintln!("{name} failed: {e}");
                self.rows
                    .push(Row::with_status(&name, Status::Failed(e.to_string())));
            }
        }
        Ok(())
    }

    /// Stage 8: the LR finder on the BatchNorm net (the model is restored afterwards).
    fn lr_finder(&mut self) -> Result<()> {
        let model = lesson_cnn(
            kaiming(Activation::Relu, Norm::Batch),
            &mut seeded_rng(self.args.seed),
        )?;
        // The finder sets every learning rate itself; this one is never used.
        let mut learn = self.learner(model, self.lr("lr-find"), self.batch_size, true)?;
        let max_iters = self.args.max_batches.map_or(100, |m| m.clamp(2, 100));
        let config = LrFinderConfig {
            max_iters,
            skip_start: (max_iters / 10).min(10),
            ..LrFinderConfig::default()
        };
        let start = std::time::Instant::now();
        let found = lr_find(&mut learn, config)?;
        let seconds = start.elapsed().as_secs_f64();
        let dir = self.args.out.join("lr-find");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join("lr_find.png");
        let mut plot = LinePlot::new("LR finder: BatchNorm CNN", "learning rate", "training loss")
            .x_scale(Scale::Log10)
            .series(Series::from_xy(
                "loss",
                found.lrs.clone(),
                found.losses.clone(),
            ))
            .series(Series::from_xy(
                "smoothed",
                found.lrs.clone(),
                found.smoothed.clone(),
            ));
        plot = plot.marker(
            found.suggested_lr,
            found.smoothed_at(found.suggested_lr),
            format!("suggested {:.3}", found.suggested_lr),
        );
        plot.save_png(&path, 1000, 600)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!(
            "LR finder: {} points, minimum at lr {:.4}, suggested lr {:.4}{}; wrote {}",
            found.lrs.len(),
            found.lr_at_min,
            found.suggested_lr,
            if found.diverged {
                " (diverged at the end of the sweep, as it should)"
            } else {
                ""
            },
            path.display()
        );
        let mut row = Row::with_status(
            "lr-find",
            Status::Ok(Some(format!(
                "suggested lr {} (min at {})",
                Num(found.suggested_lr),
                Num(found.lr_at_min)
            ))),
        );
        row.seconds = seconds;
        row.lr = format!("sweep {}..{}", Num(config.start_lr), Num(config.end_lr));
        self.rows.push(row);
        Ok(())
    }

    /// Stage 9, in the lesson's setup (course-v3 `07_batchnorm`): BatchNorm (eps
    /// 1e-5), BatchNorm with eps 0.1 and RunningBatchNorm on
    /// [`lessons::models::small_batch_cnn`], plain SGD at lr 0.4, batch size 2,
    /// normalised inputs, one epoch over the first 12,000 training images (6,000
    /// steps; the embedded subset has 5,000 images, so 2,500 steps), capped by
    /// `--small-batches` and `--max-batches`.
    fn small_batch(&mut self) -> Result<()> {
        let cap = self
            .args
            .max_batches
            .map_or(self.args.small_batches, |m| m.min(self.args.small_batches));
        let variants: [(&str, Norm, f64); 3] = [
            (
                "small-batch-batchnorm",
                Norm::Batch,
                lessons::models::DEFAULT_EPS,
            ),
            ("small-batch-batchnorm-eps0.1", Norm::Batch, 0.1),
            (
                "small-batch-runningbatchnorm",
                Norm::RunningBatch,
                lessons::models::DEFAULT_EPS,
            ),
        ];
        let lr = self.lr("small-batch");
        let n = self
            .ds
            .train
            .labels
            .dims()
            .first()
            .copied()
            .unwrap_or(0)
            .min(SMALL_BATCH_IMAGES);
        let images = self.ds.train.images.narrow(0, 0, n)?;
        let labels = self.ds.train.labels.narrow(0, 0, n)?;
        let steps = cap.min(n / 2);
        for (name, norm, eps) in variants {
            if interrupt::requested() {
                self.rows.push(Row::with_status(name, Status::NotRun));
                continue;
            }
            println!(
                "--- {name} (batch size 2, first {n} training images, {steps} steps, lr {lr}) ---"
            );
            let run = (|| -> Result<()> {
                let model =
                    lessons::models::small_batch_cnn(norm, eps, &mut seeded_rng(self.args.seed))?;
                let train_dl = DataLoader::new(&images, &labels, 2)?
                    .shuffle(self.args.seed)
                    .drop_last(true)
                    .transform(self.norm);
                let valid_dl =
                    DataLoader::new(&self.ds.test.images, &self.ds.test.labels, VALID_BS)?
                        .transform(self.norm);
                let hp = HyperParams {
                    lr,
                    ..HyperParams::default()
                };
                let mut learn = Learner::new(
                    Box::new(model),
                    move |params| Sgd::new(params, hp),
                    nn::loss::cross_entropy,
                    train_dl,
                    valid_dl,
                )?;
                let mut opts = self.watch_options(Some(cap));
                opts.epochs = 1;
                let watched = fit_watched(&mut learn, &opts)?;
                self.finish(name, &Num(lr).to_string(), watched)
            })();
            if let Err(e) = run {
                eprintln!("{name} failed: {e}");
                self.rows
                    .push(Row::with_status(name, Status::Failed(e.to_string())));
            }
        }
        Ok(())
    }

    /// Writes `summary.md` atomically (see [`Ctx::summary`] for `stages_done`);
    /// returns its path.
    fn write_summary(&self, stages_done: Option<usize>) -> Result<PathBuf> {
        let path = self.args.out.join("summary.md");
        cli::write_atomic(&path, self.summary(stages_done).as_bytes())?;
        Ok(path)
    }

    /// What was run, for the header lines: batch size, epochs and steps per stage,
    /// learning rates, seed, and why these defaults.
    fn protocol(&self) -> String {
        let n = self.ds.train.labels.dims().first().copied().unwrap_or(0);
        let steps = if self.batch_size > 1 {
            n / self.batch_size
        } else {
            n
        };
        let per_stage = self.args.max_batches.map_or(steps, |m| m.min(steps)) * self.epochs;
        let why = match (self.args.batch_size, self.args.epochs) {
            (None, None) if self.ds.source == data::fashion_mnist::Source::Embedded => {
                " (the embedded subset's defaults: at the lesson's batch 1024 one epoch \
                 would be 4 steps; `--batch-size` and `--epochs` change them)"
            }
            (None, None) => " (the lesson's protocol)",
            _ => "",
        };
        let small = if self.stages.contains(&"small-batch") {
            let images = n.min(SMALL_BATCH_IMAGES);
            let cap = self
                .args
                .max_batches
                .map_or(self.args.small_batches, |m| m.min(self.args.small_batches));
            format!(
                "; the small-batch stage: batch size 2, {} steps over the first {images} training images",
                cap.min(images / 2)
            )
        } else {
            String::new()
        };
        format!(
            "batch size {}, {} epoch(s): {per_stage} training steps per stage{why}; lr {}; seed {}{}{small}",
            self.batch_size,
            self.epochs,
            lr_description(self.args.lr),
            self.args.seed,
            self.args.max_batches.map_or(String::new(), |m| format!(
                ", at most {m} batches per phase"
            ))
        )
    }

    /// The summary as markdown (see [`lessons::summary`]). With `stages_done =
    /// Some(n)` the run is still going: the summary says which of the stages asked
    /// for are still to run.
    fn summary(&self, stages_done: Option<usize>) -> String {
        let cfg = ActivationConfig::relu();
        let header = Header {
            data: self.ds.description(),
            stages: self.stages.iter().map(|s| s.to_string()).collect(),
            protocol: self.protocol(),
            dead_rule: format!(
                "ReLU {}, GeneralRelu(0.1, 0.4) {}",
                DeadRule::for_layer(Some(0.0), &cfg),
                DeadRule::for_layer(Some(-0.4), &cfg)
            ),
        };
        let progress = match stages_done {
            _ if interrupt::requested() => Progress::Interrupted,
            Some(done) => Progress::Running(done),
            None => Progress::Done,
        };
        summary_markdown(&header, &self.rows, progress)
    }
}
