//! Models and training runs shared by the integration tests: the fastai lesson's CNN
//! and Karpathy's deep tanh MLP, each in a healthy and a broken version, trained on
//! the Fashion-MNIST subset embedded in the `data` crate (5,000 training images).
#![allow(dead_code)] // each test file uses a different part

use data::fashion_mnist::FashionMnist;
use data::loader::{DataLoader, Flatten as FlattenImages, Normalize};
use diagnostics::activations::ActivationConfig;
use diagnostics::callbacks::Diagnostics;
use diagnostics::gradients::GradientConfig;
use diagnostics::TrainingLog;
use nn::hooks::ModuleFilter;
use nn::init::{FanMode, Nonlinearity};
use nn::layers::{Conv2d, Conv2dOptions, Flatten, Linear, Relu, Sequential, Tanh};
use nn::optim::{HyperParams, Sgd};
use nn::Module;
use tensor::DType;
use train::{Callback, Learner};

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// How the weights are initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// PyTorch's default (uniform in ±1/sqrt(fan_in)): too small for deep ReLU nets.
    Default,
    /// Kaiming normal for the ReLU layers, gain 1 for the output layer, zero biases.
    Kaiming,
}

/// The lesson's CNN: five stride-2 conv blocks 1-8-16-32-64-10 (first kernel 5, ReLU
/// after all but the last), then a flatten. Paths: "0".."4" (blocks), "5" (flatten).
pub fn lesson_cnn(init: Init, seed: u64) -> TestResult<Sequential> {
    let mut rng = nn::init::seeded_rng(seed);
    let opts = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    let channels = [1, 8, 16, 32, 64, 10];
    let mut blocks: Vec<Box<dyn Module>> = Vec::new();
    for i in 0..5 {
        let kernel = if i == 0 { 5 } else { 3 };
        let conv = Conv2d::new(
            channels[i],
            channels[i + 1],
            kernel,
            opts,
            DType::F32,
            &mut rng,
        )?;
        if init == Init::Kaiming {
            let gain = if i == 4 {
                Nonlinearity::Linear
            } else {
                Nonlinearity::Relu
            };
            nn::init::kaiming_normal_(conv.weight().tensor(), 0.0, FanMode::FanIn, gain, &mut rng)?;
            if let Some(b) = conv.bias() {
                nn::init::zeros_(b.tensor())?;
            }
        }
        let mut block: Vec<Box<dyn Module>> = vec![Box::new(conv)];
        if i < 4 {
            block.push(Box::new(Relu::new()));
        }
        blocks.push(Box::new(Sequential::new(block)));
    }
    blocks.push(Box::new(Flatten::new()));
    Ok(Sequential::new(blocks))
}

/// The lesson's blocks: the top-level children of the model.
pub fn top_level() -> ModuleFilter {
    ModuleFilter::predicate(|path, _| !path.is_empty() && !path.contains('.'))
}

/// Karpathy's deep tanh MLP on flattened images: 784 -> 100 (x5, tanh) -> 10.
/// `hidden_std(fan_in)` gives the std of the normal init of the hidden layers after
/// the first; the first and the output layer get `first_std(fan_in)`.
pub fn tanh_mlp(
    first_std: impl Fn(usize) -> f64,
    hidden_std: impl Fn(usize) -> f64,
    seed: u64,
) -> TestResult<Sequential> {
    let mut rng = nn::init::seeded_rng(seed);
    let dims = [784, 100, 100, 100, 100, 100, 10];
    let mut layers: Vec<Box<dyn Module>> = Vec::new();
    for i in 0..6 {
        let linear = Linear::new(dims[i], dims[i + 1], true, DType::F32, &mut rng)?;
        let std = if i == 0 || i == 5 {
            first_std(dims[i])
        } else {
            hidden_std(dims[i])
        };
        nn::init::normal_(linear.weight().tensor(), 0.0, std, &mut rng)?;
        if let Some(b) = linear.bias() {
            nn::init::zeros_(b.tensor())?;
        }
        layers.push(Box::new(linear));
        if i < 5 {
            layers.push(Box::new(Tanh::new()));
        }
    }
    Ok(Sequential::new(layers))
}

/// The broken tanh MLP: every weight N(0, 1), unscaled.
pub fn broken_tanh_mlp(seed: u64) -> TestResult<Sequential> {
    tanh_mlp(|_| 1.0, |_| 1.0, seed)
}

/// The healthy tanh MLP: gain 1 / sqrt(fan_in) where the input is data or the output
/// is logits, the tanh gain 5/3 / sqrt(fan_in) after a tanh.
pub fn healthy_tanh_mlp(seed: u64) -> TestResult<Sequential> {
    tanh_mlp(
        |fan_in| 1.0 / (fan_in as f64).sqrt(),
        |fan_in| 5.0 / 3.0 / (fan_in as f64).sqrt(),
        seed,
    )
}

/// A learner on the embedded subset (normalised; flattened for an MLP), plain SGD,
/// batch 250 (20 training batches per epoch), no printing.
pub fn learner(model: Sequential, flat: bool, lr: f64) -> TestResult<Learner> {
    let ds = FashionMnist::load_embedded()?;
    let norm = Normalize::fit(&ds.train.images)?;
    let mut train_dl = DataLoader::new(&ds.train.images, &ds.train.labels, 250)?
        .shuffle(1)
        .transform(norm);
    let mut valid_dl = DataLoader::new(&ds.test.images, &ds.test.labels, 500)?.transform(norm);
    if flat {
        train_dl = train_dl.transform(FlattenImages);
        valid_dl = valid_dl.transform(FlattenImages);
    }
    let mut learn = Learner::new(
        Box::new(model),
        move |p| {
            Sgd::new(
                p,
                HyperParams {
                    lr,
                    ..HyperParams::default()
                },
            )
        },
        nn::loss::cross_entropy,
        train_dl,
        valid_dl,
    )?;
    learn.take_callbacks(); // no progress bar, no table
    Ok(learn)
}

/// Trains `model` for `epochs` with a [`Diagnostics`] callback (activations of the
/// modules `filter` chooses, gradients, losses) and any extra callbacks; returns the
/// log and the learner.
pub fn train_with_diagnostics(
    model: Sequential,
    flat: bool,
    lr: f64,
    epochs: usize,
    filter: ModuleFilter,
    config: ActivationConfig,
    extra: Vec<Box<dyn Callback>>,
) -> TestResult<(TrainingLog, Learner)> {
    let diagnostics = Diagnostics::new(filter, config)?.with_gradients(GradientConfig::default())?;
    let mut learn = learner(model, flat, lr)?.with_callback(diagnostics);
    learn.add_callbacks(extra);
    learn.fit(epochs)?;
    let log = learn
        .callback::<Diagnostics>()
        .ok_or("the Diagnostics callback went missing")?
        .log();
    Ok((log, learn))
}
