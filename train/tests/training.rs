//! The learner trains real networks on real (small) data: the lesson's CNN and a
//! 784-128-10 MLP on the embedded Fashion-MNIST subset, and a makemore-style MLP on a
//! word list. Also: NaN/inf losses stop the run with their epoch and batch, and one
//! seed gives one run.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use autograd::{Reduction, Var};
use common::{quiet, sgd, weights};
use data::fashion_mnist::FashionMnist;
use data::loader::{DataLoader, Flatten as FlattenBatch, Normalize};
use data::words::{ContextWindows, WordList};
use nn::layers::{Conv2d, Conv2dOptions, Embedding, Flatten, Linear, Relu, Sequential, Tanh};
use nn::optim::{Adam, HyperParams, Sgd};
use nn::Module;
use tensor::{DType, Device, Tensor};
use train::callbacks::Recorder;
use train::{Learner, Phase, TrainError};

/// Fashion-MNIST subset loaders (normalised), `n_train` training images in batches
/// of `bs`, the 1000 test images in one batch; `flat` flattens images to 784.
fn fashion(n_train: usize, bs: usize, flat: bool, seed: u64) -> (DataLoader, DataLoader) {
    let ds = FashionMnist::load_embedded().unwrap();
    let norm = Normalize::fit(&ds.train.images).unwrap();
    let x = ds.train.images.narrow(0, 0, n_train).unwrap();
    let y = ds.train.labels.narrow(0, 0, n_train).unwrap();
    let mut train = DataLoader::new(&x, &y, bs)
        .unwrap()
        .shuffle(seed)
        .transform(norm);
    let mut valid = DataLoader::new(&ds.test.images, &ds.test.labels, 1000)
        .unwrap()
        .transform(norm);
    if flat {
        train = train.transform(FlattenBatch);
        valid = valid.transform(FlattenBatch);
    }
    (train, valid)
}

/// The lesson's CNN: five stride-2 convolutions, channels 1-8-16-32-64-10, kernel 5
/// then 3, padding k/2, ReLU between, nothing after the last, then flatten
/// (28 -> 14 -> 7 -> 4 -> 2 -> 1).
fn lesson_cnn(seed: u64) -> Sequential {
    let mut rng = nn::init::seeded_rng(seed);
    let opts = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    let channels = [1, 8, 16, 32, 64, 10];
    let mut layers: Vec<Box<dyn Module>> = Vec::new();
    for i in 0..5 {
        let kernel = if i == 0 { 5 } else { 3 };
        layers.push(Box::new(
            Conv2d::new(
                channels[i],
                channels[i + 1],
                kernel,
                opts,
                DType::F32,
                &mut rng,
            )
            .unwrap(),
        ));
        if i < 4 {
            layers.push(Box::new(Relu::new()));
        }
    }
    layers.push(Box::new(Flatten::new()));
    Sequential::new(layers)
}

#[test]
fn the_lessons_cnn_trains_above_chance_on_the_subset_in_one_epoch() {
    let (train_dl, valid_dl) = fashion(5000, 64, false, 0);
    let mut learn = quiet(
        Learner::new(
            Box::new(lesson_cnn(0)),
            |p| Sgd::new(p, sgd(0.1, 0.9)),
            nn::loss::cross_entropy,
            train_dl,
            valid_dl,
        )
        .unwrap(),
    );
    let report = learn.fit(1).unwrap();
    print!("{report}");
    let valid = report.rows[0].valid.unwrap();
    assert_eq!(valid.examples, 1000);
    // Chance is 10% over the 10 balanced classes.
    assert!(valid.accuracy.unwrap() > 0.4, "{report}");
    assert!(valid.loss < 10f64.ln(), "{report}");
}

#[test]
fn a_784_128_10_mlp_reduces_its_loss() {
    let (train_dl, valid_dl) = fashion(5000, 100, true, 1);
    let mut rng = nn::init::seeded_rng(1);
    let model = Sequential::new(vec![
        Box::new(Linear::new(784, 128, true, DType::F32, &mut rng).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(128, 10, true, DType::F32, &mut rng).unwrap()),
    ]);
    let mut learn = quiet(
        Learner::new(
            Box::new(model),
            |p| Sgd::new(p, sgd(0.05, 0.9)),
            nn::loss::cross_entropy,
            train_dl,
            valid_dl,
        )
        .unwrap(),
    )
    .with_callback(Recorder::new());
    let report = learn.fit(2).unwrap();
    let losses = learn.callback::<Recorder>().unwrap().losses();
    assert_eq!(losses.len(), 100);
    let first = losses[0];
    assert!(
        (first - 10f64.ln()).abs() < 0.5,
        "initial loss near ln 10, got {first}"
    );
    let late: f64 = losses[90..].iter().sum::<f64>() / 10.0;
    assert!(late < 0.4 * first, "loss {first} -> {late}");
    let (e0, e1) = (report.rows[0].train.unwrap(), report.rows[1].train.unwrap());
    assert!(e1.loss < e0.loss, "{report}");
    assert!(
        report.rows[1].valid.unwrap().accuracy.unwrap() > 0.75,
        "{report}"
    );
}

const NAMES: &str = "emma olivia ava isabella sophia charlotte mia amelia harper evelyn \
abigail emily elizabeth mila ella avery sofia camila aria scarlett victoria madison luna \
grace chloe penelope layla riley zoey nora lily eleanor hannah lillian addison aubrey \
ellie stella natalie zoe leah hazel violet aurora savannah audrey brooklyn bella claire \
skylar lucy paisley everly anna caroline nova genesis emilia kennedy samantha maya willow \
kinsley naomi aaliyah elena sarah ariana allison gabriella alice madelyn cora ruby eva \
serenity autumn adeline hailey gianna valentina isla eliana quinn nevaeh ivy sadie piper \
lydia alexa josephine emery julia delilah arianna vivian kaylee sophie brielle madeline";

#[test]
fn a_makemore_style_mlp_reduces_its_loss() {
    let text = NAMES.split_whitespace().collect::<Vec<_>>().join("\n");
    let words = WordList::from_text(&text, Path::new("<inline names>")).unwrap();
    let vocab = words.vocab();
    let split = words.split(7);
    let windows = |w: &[String]| {
        ContextWindows::build(w, &vocab, 3)
            .unwrap()
            .to_tensors(&Device::Cpu)
            .unwrap()
    };
    let (x, y) = windows(&split.train);
    let (vx, vy) = windows(&split.valid);
    let mut rng = nn::init::seeded_rng(7);
    let v = vocab.len();
    let model = Sequential::new(vec![
        Box::new(Embedding::new(v, 10, DType::F32, &mut rng).unwrap()),
        Box::new(Flatten::new()),
        Box::new(Linear::new(30, 64, true, DType::F32, &mut rng).unwrap()),
        Box::new(Tanh::new()),
        Box::new(Linear::new(64, v, true, DType::F32, &mut rng).unwrap()),
    ]);
    let mut learn = quiet(
        Learner::new(
            Box::new(model),
            |p| {
                Adam::new(
                    p,
                    HyperParams {
                        lr: 1e-2,
                        ..HyperParams::default()
                    },
                )
            },
            nn::loss::cross_entropy,
            DataLoader::new(&x, &y, 32).unwrap().shuffle(7),
            DataLoader::new(&vx, &vy, 256).unwrap(),
        )
        .unwrap(),
    )
    .with_callback(Recorder::new());
    let report = learn.fit(8).unwrap();
    let first = learn.callback::<Recorder>().unwrap().losses()[0];
    let last = report.last(Phase::Train).unwrap().loss;
    assert!(
        first > 2.5,
        "initial loss near ln {v} or above, got {first}"
    );
    assert!(last < 0.75 * first, "loss {first} -> {last}\n{report}");
}

/// Counts calls and returns NaN (or inf) from call `bad_call` on.
fn poisoned_loss(
    bad_call: usize,
    poison: f64,
) -> impl Fn(&Var, &Tensor) -> nn::Result<Var> + Send + Sync {
    let calls = Arc::new(AtomicUsize::new(0));
    move |preds, targets| {
        let loss = nn::loss::cross_entropy(preds, targets)?;
        if calls.fetch_add(1, Ordering::Relaxed) == bad_call {
            Ok(loss.mul_scalar(poison)?)
        } else {
            Ok(loss)
        }
    }
}

#[test]
fn a_nan_loss_stops_training_with_its_epoch_and_batch() {
    // 5 training batches and 2 validation batches per epoch: call 3 is epoch 0,
    // training batch 3.
    let (x, y) = common::blobs(40, 8, 4, 0);
    let make = |bad_call, poison| {
        quiet(
            Learner::new(
                Box::new(common::mlp(8, 16, 4, 0)),
                |p| Sgd::new(p, sgd(0.1, 0.9)),
                poisoned_loss(bad_call, poison),
                DataLoader::new(&x, &y, 8).unwrap(),
                DataLoader::new(&x, &y, 20).unwrap(),
            )
            .unwrap(),
        )
        .with_callback(Recorder::new())
    };
    let mut learn = make(3, f64::NAN);
    let err = learn.fit(3).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFiniteLoss { epoch: 0, phase: Phase::Train, batch: 3, step: 3, value } if value.is_nan()),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("non-finite loss NaN at epoch 0, train batch 3"),
        "{err}"
    );
    // Three steps were taken, none on the NaN, and the weights are finite.
    assert_eq!(learn.callback::<Recorder>().unwrap().batches.len(), 3);
    assert!(weights(&learn).iter().all(|w| w.is_finite()));

    // Call 7 + 4 = 11 is epoch 1, training batch 4.
    let mut learn = make(11, f64::INFINITY);
    let err = learn.fit(3).unwrap_err();
    assert!(
        matches!(err, TrainError::NonFiniteLoss { epoch: 1, batch: 4, step: 9, value, .. } if value == f64::INFINITY),
        "{err}"
    );
    // A validation loss is checked too: call 5 is epoch 0, validation batch 0.
    let err = make(5, f64::NAN).fit(1).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFiniteLoss {
                epoch: 0,
                phase: Phase::Validate,
                batch: 0,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_loss_that_is_not_one_number_is_an_error() {
    let (x, y) = common::blobs(16, 8, 4, 0);
    let mut learn = quiet(
        Learner::new(
            Box::new(common::mlp(8, 16, 4, 0)),
            |p| Sgd::new(p, sgd(0.1, 0.0)),
            |p: &Var, t: &Tensor| Ok(p.cross_entropy(t, Reduction::None)?),
            DataLoader::new(&x, &y, 8).unwrap(),
            DataLoader::new(&x, &y, 8).unwrap(),
        )
        .unwrap(),
    );
    let err = learn.fit(1).unwrap_err();
    assert!(
        matches!(&err, TrainError::LossNotScalar { shape, batch: 0, .. } if shape == &[8]),
        "{err}"
    );
}

#[test]
fn model_errors_name_the_step_and_the_batch() {
    let (x, y) = common::blobs(16, 8, 4, 0);
    let mut learn = quiet(
        Learner::new(
            Box::new(common::mlp(5, 16, 4, 0)), // expects 5 features, gets 8
            |p| Sgd::new(p, sgd(0.1, 0.0)),
            nn::loss::cross_entropy,
            DataLoader::new(&x, &y, 8).unwrap(),
            DataLoader::new(&x, &y, 8).unwrap(),
        )
        .unwrap(),
    );
    let err = learn.fit(1).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Step {
                during: "forward",
                epoch: 0,
                batch: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("forward failed at epoch 0, train batch 0: "),
        "{err}"
    );

    let bad_lr = Learner::new(
        Box::new(common::mlp(8, 16, 4, 0)),
        |p| Sgd::new(p, sgd(-1.0, 0.0)),
        nn::loss::cross_entropy,
        DataLoader::new(&x, &y, 8).unwrap(),
        DataLoader::new(&x, &y, 8).unwrap(),
    );
    let err = bad_lr.unwrap_err().to_string();
    assert!(err.starts_with("building the optimizer: SGD: lr"), "{err}");
}

/// Per-batch losses, validation metrics and final weights of a short MLP run on the
/// Fashion subset.
fn seeded_run(seed: u64) -> (Vec<f64>, f64, Vec<f32>) {
    let (train_dl, valid_dl) = fashion(1000, 50, true, seed);
    let mut rng = nn::init::seeded_rng(seed);
    let model = Sequential::new(vec![
        Box::new(Linear::new(784, 32, true, DType::F32, &mut rng).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(32, 10, true, DType::F32, &mut rng).unwrap()),
    ]);
    let mut learn = quiet(
        Learner::new(
            Box::new(model),
            |p| Sgd::new(p, sgd(0.05, 0.9)),
            nn::loss::cross_entropy,
            train_dl,
            valid_dl,
        )
        .unwrap(),
    )
    .with_callback(Recorder::new());
    let report = learn.fit(2).unwrap();
    let losses = learn.callback::<Recorder>().unwrap().losses();
    (losses, report.rows[1].valid.unwrap().loss, weights(&learn))
}

#[test]
fn one_seed_gives_identical_runs() {
    let a = seeded_run(11);
    let b = seeded_run(11);
    assert_eq!(a.0.len(), 40);
    assert_eq!(
        a.0, b.0,
        "per-batch losses differ between two runs of one seed"
    );
    assert_eq!(a.1, b.1);
    assert_eq!(a.2, b.2);
    let c = seeded_run(12);
    assert_ne!(a.0, c.0, "another seed must give another run");
}
