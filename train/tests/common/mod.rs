//! Helpers shared by the integration tests: small synthetic data sets, small models
//! and a learner without the printing callbacks.

#![allow(dead_code)]

use data::loader::DataLoader;
use nn::layers::{Linear, Relu, Sequential};
use nn::optim::{HyperParams, Sgd};
use rand::Rng;
use tensor::{DType, Device, Tensor};
use train::callbacks::{PrintMetrics, Progress};
use train::Learner;

/// `n` points in `dims` dimensions from `classes` Gaussian blobs (std 1) whose
/// centres sit 3 apart on the first coordinates; labels cycle through the classes.
pub fn blobs(n: usize, dims: usize, classes: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = nn::init::seeded_rng(seed);
    let mut x = Vec::with_capacity(n * dims);
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % classes;
        for d in 0..dims {
            let centre = if d == class % dims { 3.0 } else { 0.0 };
            x.push(centre + rng.random_range(-1.0f32..1.0) * 1.7);
        }
        y.push(class as u32);
    }
    (
        Tensor::from_vec(x, [n, dims], &Device::Cpu).unwrap(),
        Tensor::from_vec(y, [n], &Device::Cpu).unwrap(),
    )
}

/// `in -> hidden -> ReLU -> out`, initialised from `seed`.
pub fn mlp(inputs: usize, hidden: usize, outputs: usize, seed: u64) -> Sequential {
    let mut rng = nn::init::seeded_rng(seed);
    Sequential::new(vec![
        Box::new(Linear::new(inputs, hidden, true, DType::F32, &mut rng).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(hidden, outputs, true, DType::F32, &mut rng).unwrap()),
    ])
}

/// SGD with learning rate `lr` and momentum `momentum`.
pub fn sgd(lr: f64, momentum: f64) -> HyperParams {
    HyperParams {
        lr,
        momentum,
        ..HyperParams::default()
    }
}

/// Removes the progress bar and the printed table.
pub fn quiet(mut learn: Learner) -> Learner {
    learn.remove_callback::<Progress>().unwrap();
    learn.remove_callback::<PrintMetrics>().unwrap();
    learn
}

/// A quiet learner for an 8-16-4 MLP on blobs: `n_train` training examples in batches
/// of `bs` (shuffled with `seed`), `n_valid` validation examples in batches of `bs`.
pub fn blob_learner(n_train: usize, n_valid: usize, bs: usize, lr: f64, seed: u64) -> Learner {
    let (x, y) = blobs(n_train, 8, 4, seed);
    let (vx, vy) = blobs(n_valid, 8, 4, seed + 1000);
    quiet(
        Learner::new(
            Box::new(mlp(8, 16, 4, seed)),
            move |p| Sgd::new(p, sgd(lr, 0.9)),
            nn::loss::cross_entropy,
            DataLoader::new(&x, &y, bs).unwrap().shuffle(seed),
            DataLoader::new(&vx, &vy, bs).unwrap(),
        )
        .unwrap(),
    )
}

/// Every parameter value of the learner's model, flattened, in order.
pub fn weights(learn: &Learner) -> Vec<f32> {
    nn::module::named_parameters_of(&*learn.model)
        .into_iter()
        .flat_map(|(_, p)| p.tensor().to_vec::<f32>().unwrap())
        .collect()
}
