//! The LR finder sweeps, stops on divergence, suggests a learning rate and puts the
//! model, the optimiser and the callbacks back as they were.

mod common;

use autograd::Var;
use common::{blob_learner, weights};
use data::loader::DataLoader;
use nn::hooks::Hooks;
use nn::layers::Sequential;
use nn::optim::Sgd;
use nn::Module;
use tensor::{DType, Device, Tensor};
use train::callbacks::Recorder;
use train::{lr_find, Learner, LrFinderConfig, TrainError};

#[test]
fn the_finder_stops_on_divergence_and_restores_everything() {
    let mut learn = blob_learner(256, 64, 16, 0.05, 9).with_callback(Recorder::new());
    let weights_before = weights(&learn);
    let hp_before: Vec<_> = learn.optimizer.groups().iter().map(|g| g.hp).collect();
    let names_before = learn.callback_names();

    let config = LrFinderConfig {
        start_lr: 1e-5,
        end_lr: 1e4,
        max_iters: 100,
        ..LrFinderConfig::default()
    };
    let found = lr_find(&mut learn, config).unwrap();

    // It stopped early, because the loss blew up at a large learning rate.
    assert!(found.diverged);
    assert!(found.lrs.len() < 100, "ran {} batches", found.lrs.len());
    assert!(found.lrs.len() > 16, "the sweep crossed an epoch boundary");
    let last = found.smoothed.len() - 1;
    let best = found.smoothed.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(found.smoothed[last] > config.stop_factor * best);
    assert!(*found.lrs.last().unwrap() > 1e-2);
    // The sweep is geometric.
    for (i, lr) in found.lrs.iter().enumerate() {
        assert!((lr / config.lr_at(i) - 1.0).abs() < 1e-12);
    }
    assert_eq!(found.losses.len(), found.lrs.len());
    // The suggestion is the documented rule, and a sensible value here.
    assert_eq!(found.suggested_lr, found.lr_at_min / 10.0);
    assert!(
        found.suggested_lr > 1e-4 && found.suggested_lr < 10.0,
        "{}",
        found.suggested_lr
    );
    assert!(found.lr_steepest.unwrap() < found.lr_at_min);

    // Everything is back.
    assert_eq!(weights(&learn), weights_before);
    let hp_after: Vec<_> = learn.optimizer.groups().iter().map(|g| g.hp).collect();
    assert_eq!(hp_after, hp_before);
    assert_eq!(learn.callback_names(), names_before);
    assert!(learn.callback::<Recorder>().unwrap().batches.is_empty());
    assert!(learn.report.rows.is_empty());
}

#[test]
fn training_after_the_finder_is_the_same_as_training_without_it() {
    // Momentum buffers of the real optimiser are untouched by the sweep, so the run
    // that follows is bit for bit the one without a sweep.
    let run = |sweep_first: bool| {
        let mut learn = blob_learner(128, 32, 16, 0.05, 4).with_callback(Recorder::new());
        learn.fit(1).unwrap(); // builds momentum state
        if sweep_first {
            lr_find(
                &mut learn,
                LrFinderConfig {
                    end_lr: 1e3,
                    ..LrFinderConfig::default()
                },
            )
            .unwrap();
        }
        learn.fit(2).unwrap();
        (
            learn.callback::<Recorder>().unwrap().losses(),
            weights(&learn),
        )
    };
    let plain = run(false);
    let swept = run(true);
    assert_eq!(plain.0.len(), 8 * 3);
    assert_eq!(plain, swept);
}

/// A layer with a buffer that counts its training-mode calls, to check that buffers
/// are restored too.
struct CountingScale {
    weight: Var,
    calls: Tensor,
    hooks: Hooks,
}

impl Module for CountingScale {
    fn kind(&self) -> &'static str {
        "CountingScale"
    }
    fn forward_raw(&self, input: &Var) -> nn::Result<Var> {
        if autograd::is_grad_enabled() {
            self.calls.add_(&Tensor::scalar(1.0f32))?;
        }
        Ok(input.mul(&self.weight)?)
    }
    fn hooks(&self) -> &Hooks {
        &self.hooks
    }
    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        vec![("weight", self.weight.clone())]
    }
    fn own_buffers(&self) -> Vec<(&'static str, Tensor)> {
        vec![("calls", self.calls.clone())]
    }
}

#[test]
fn buffers_are_restored_and_a_hopeless_model_is_an_error() {
    let (x, y) = common::blobs(64, 8, 4, 0);
    let model = Sequential::new(vec![
        Box::new(CountingScale {
            weight: Var::parameter(Tensor::ones([8], DType::F32, &Device::Cpu).unwrap()),
            calls: Tensor::zeros([], DType::F32, &Device::Cpu).unwrap(),
            hooks: Hooks::new(),
        }),
        Box::new(common::mlp(8, 16, 4, 0)),
    ]);
    let mut learn = common::quiet(
        Learner::new(
            Box::new(model),
            |p| Sgd::new(p, common::sgd(0.1, 0.0)),
            nn::loss::cross_entropy,
            DataLoader::new(&x, &y, 8).unwrap(),
            DataLoader::new(&x, &y, 64).unwrap(),
        )
        .unwrap(),
    );
    learn.fit(1).unwrap();
    let buffer = |l: &Learner| nn::module::named_buffers_of(&*l.model)[0].1.item().unwrap();
    assert_eq!(buffer(&learn), 8.0);
    let found = lr_find(
        &mut learn,
        LrFinderConfig {
            max_iters: 20,
            end_lr: 1.0,
            ..LrFinderConfig::default()
        },
    )
    .unwrap();
    assert_eq!(found.lrs.len(), 20);
    assert!(!found.diverged);
    assert_eq!(buffer(&learn), 8.0, "the sweep's 20 calls were rolled back");

    // A model whose very first loss is NaN gives a clear error, and is still restored.
    let before = weights(&learn);
    learn.loss_fn = Box::new(|p: &Var, _t: &Tensor| Ok(p.mean_all()?.mul_scalar(f64::NAN)?));
    let err = lr_find(&mut learn, LrFinderConfig::default()).unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::Config {
                what: "lr_find",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no finite loss"), "{err}");
    assert_eq!(weights(&learn), before);

    let bad = lr_find(
        &mut learn,
        LrFinderConfig {
            end_lr: 1e-9,
            ..LrFinderConfig::default()
        },
    );
    assert!(bad
        .unwrap_err()
        .to_string()
        .contains("end_lr must be finite and > start_lr"));
}

#[test]
fn the_finder_plots_loss_against_lr_with_the_suggestion() {
    let mut learn = blob_learner(256, 64, 16, 0.05, 9);
    let found = lr_find(
        &mut learn,
        LrFinderConfig {
            start_lr: 1e-5,
            end_lr: 1e4,
            ..LrFinderConfig::default()
        },
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("train-lr-find-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lr_finder.png");
    found.save_png(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1000, 600));
    if std::env::var_os("KEEP_PLOTS").is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // A missing directory is an error naming the file, not a panic.
    let err = found
        .save_png(dir.join("missing").join("x.png"))
        .unwrap_err();
    assert!(matches!(err, TrainError::Plot(_)), "{err}");
}
