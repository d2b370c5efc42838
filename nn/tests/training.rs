//! End-to-end: small networks built from these layers learn on synthetic data.

use autograd::Var;
use nn::init::seeded_rng;
use nn::layers::{
    AdaptiveAvgPool2d, Conv2d, Conv2dOptions, Embedding, Flatten, GeneralRelu, Linear, Sequential,
    Tanh,
};
use nn::optim::{Adam, HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use rand::Rng;
use tensor::{DType, Device, Tensor};

/// Images of 4 classes: a bright horizontal bar, vertical bar, diagonal, or a blob,
/// plus noise. A tiny CNN separates them easily.
fn shapes_dataset(n: usize, seed: u64) -> (Tensor, Tensor) {
    let mut rng = seeded_rng(seed);
    let (h, w) = (12, 12);
    let mut pixels = vec![0f32; n * h * w];
    let mut labels = vec![0u32; n];
    for i in 0..n {
        let class = (i % 4) as u32;
        labels[i] = class;
        let off = rng.random_range(2..10);
        for y in 0..h {
            for x in 0..w {
                let on = match class {
                    0 => y == off,
                    1 => x == off,
                    2 => x == y,
                    _ => (x as i32 - 6).pow(2) + (y as i32 - 6).pow(2) < 6,
                };
                pixels[i * h * w + y * w + x] =
                    if on { 1.0 } else { 0.0 } + rng.random_range(-0.2..0.2);
            }
        }
    }
    (
        Tensor::from_vec(pixels, [n, 1, h, w], &Device::Cpu).unwrap(),
        Tensor::from_vec(labels, [n], &Device::Cpu).unwrap(),
    )
}

#[test]
fn a_small_cnn_reduces_its_loss() {
    let mut rng = seeded_rng(0);
    let opts = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    let model = Sequential::new(vec![
        Box::new(Conv2d::new(1, 8, 3, opts, DType::F32, &mut rng).unwrap()),
        Box::new(GeneralRelu::new(Some(0.1), 0.4, None).unwrap()),
        Box::new(Conv2d::new(8, 16, 3, opts, DType::F32, &mut rng).unwrap()),
        Box::new(GeneralRelu::new(Some(0.1), 0.4, None).unwrap()),
        Box::new(Conv2d::new(16, 4, 3, opts, DType::F32, &mut rng).unwrap()),
        Box::new(AdaptiveAvgPool2d::new((1, 1)).unwrap()),
        Box::new(Flatten::new()),
    ]);
    let (x, y) = shapes_dataset(64, 1);
    let x = Var::constant(x);
    let mut opt = Sgd::new(
        model.parameters(),
        HyperParams {
            lr: 0.3,
            momentum: 0.9,
            ..HyperParams::default()
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..200 {
        let loss = nn::loss::cross_entropy(&model.forward(&x).unwrap(), &y).unwrap();
        losses.push(loss.tensor().item().unwrap());
        loss.backward().unwrap();
        opt.step().unwrap();
        opt.zero_grad();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.3 * first, "loss {first} -> {last}");
}

#[test]
fn a_makemore_style_mlp_reduces_its_loss() {
    // Context windows of 3 ids over a 27-symbol vocabulary predicting the next id; the
    // data follow a fixed rule (next = (a + 2b + 3c) mod 27) so the loss can fall far.
    let mut rng = seeded_rng(2);
    let n = 256;
    let ids: Vec<u32> = (0..n * 3).map(|_| rng.random_range(0..27)).collect();
    let targets: Vec<u32> = ids
        .chunks(3)
        .map(|c| (c[0] + 2 * c[1] + 3 * c[2]) % 27)
        .collect();
    let x = Var::constant(Tensor::from_vec(ids, [n, 3], &Device::Cpu).unwrap());
    let y = Tensor::from_vec(targets, [n], &Device::Cpu).unwrap();
    let emb = Embedding::new(27, 10, DType::F32, &mut rng).unwrap();
    let model = Sequential::new(vec![
        Box::new(Flatten::new()),
        Box::new(Linear::new(30, 200, true, DType::F32, &mut rng).unwrap()),
        Box::new(Tanh::new()),
        Box::new(Linear::new(200, 27, true, DType::F32, &mut rng).unwrap()),
    ]);
    let mut params = emb.parameters();
    params.extend(model.parameters());
    let mut opt = Adam::new(
        params,
        HyperParams {
            lr: 1e-2,
            ..HyperParams::default()
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..300 {
        let logits = model.forward(&emb.forward(&x).unwrap()).unwrap();
        let loss = nn::loss::cross_entropy(&logits, &y).unwrap();
        losses.push(loss.tensor().item().unwrap());
        loss.backward().unwrap();
        opt.step().unwrap();
        opt.zero_grad();
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        first > 2.5,
        "initial loss near ln 27 = 3.3 or above, got {first}"
    );
    assert!(last < 0.5 * first, "loss {first} -> {last}");
}
