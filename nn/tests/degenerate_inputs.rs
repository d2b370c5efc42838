//! Every layer, loss, init and optimiser driven with degenerate inputs: zero-size
//! dims, batch 1, every rank from 0 to 5, the wrong dtype, NaN and infinite values,
//! in training and in evaluation. Each call runs under `catch_unwind` and must return
//! `Ok` or an `Err` with a message; a panic fails the property. Where a forward pass
//! succeeds, the backward pass from the sum of its output is driven too.
//!
//! The shapes and values come from proptest, so a failure is shrunk to the smallest
//! input that panics and printed with the layer that was driven.

use std::panic::{catch_unwind, AssertUnwindSafe};

use autograd::Var;
use nn::init::{
    fans, kaiming_normal_, kaiming_uniform_, lsuv, normal_, seeded_rng, uniform_, xavier_normal_,
    xavier_uniform_, FanMode, LsuvConfig, LsuvTarget, Nonlinearity,
};
use nn::layers::{
    AdaptiveAvgPool2d, BatchNorm, Conv2d, Conv2dOptions, Dropout, Embedding, Flatten, GeneralRelu,
    GroupNorm, LeakyRelu, Linear, Relu, RunningBatchNorm, Sequential, Sigmoid, Tanh,
};
use nn::module::{named_parameters_of, set_training_of};
use nn::optim::{clip_grad_norm, clip_grad_value, Adam, HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

/// How the elements of a generated tensor are filled.
#[derive(Clone, Copy, Debug)]
enum Fill {
    /// Small varied finite values.
    Normal,
    /// All zeros (a zero variance for every norm).
    Zeros,
    /// NaN at one position.
    OneNan,
    /// +inf and -inf at the first two positions.
    Infinite,
    /// Huge finite values whose squares overflow f32.
    Huge,
}

fn fill_strategy() -> impl Strategy<Value = Fill> {
    prop_oneof![
        Just(Fill::Normal),
        Just(Fill::Zeros),
        Just(Fill::OneNan),
        Just(Fill::Infinite),
        Just(Fill::Huge),
    ]
}

/// Ranks 0 to 5, each dim 0 to 4: most shapes hold 0, 1 or a handful of values.
fn shape_strategy() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0usize..5, 0..=5)
}

fn dtype_strategy() -> impl Strategy<Value = DType> {
    prop_oneof![Just(DType::F32), Just(DType::F64), Just(DType::U32)]
}

/// A tensor of `shape` and `dtype` filled as `fill` says.
fn tensor(shape: &[usize], dtype: DType, fill: Fill) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f64> = (0..n)
        .map(|i| match fill {
            Fill::Zeros => 0.0,
            Fill::Huge => 3e38 * if i % 2 == 0 { 1.0 } else { -1.0 },
            _ => ((i * 7919) % 13) as f64 / 6.0 - 1.0,
        })
        .collect();
    match fill {
        Fill::OneNan if n > 0 => v[n / 2] = f64::NAN,
        Fill::Infinite => {
            if let Some(x) = v.get_mut(0) {
                *x = f64::INFINITY;
            }
            if let Some(x) = v.get_mut(1) {
                *x = f64::NEG_INFINITY;
            }
        }
        _ => {}
    }
    let t = Tensor::from_vec(v, shape.to_vec(), &Device::Cpu).expect("a valid f64 tensor");
    match dtype {
        DType::F64 => t,
        DType::F32 => t.to_dtype(DType::F32).expect("f64 -> f32"),
        // Class indices for u32: small non-negative integers.
        _ => {
            let u: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
            Tensor::from_vec(u, shape.to_vec(), &Device::Cpu).expect("a valid u32 tensor")
        }
    }
}

/// Runs `f` and fails (with `what`) if it panics; returns its result otherwise.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what} panicked: {msg}");
        }
    }
}

/// An `Err` must say something: its message is not empty.
fn check_error<T, E: std::fmt::Display>(what: &str, r: &Result<T, E>) {
    if let Err(e) = r {
        assert!(!e.to_string().trim().is_empty(), "{what}: empty error");
    }
}

/// A constructor of an optimiser over given parameters.
type BuildOptimizer = fn(Vec<Var>, HyperParams) -> nn::Result<Box<dyn Optimizer>>;

/// The number of layer kinds [`layer`] builds.
const LAYER_KINDS: usize = 19;

/// Layer number `kind`, sized by `c` (channels or features, at least 1) where it
/// needs a size; `None` when the constructor itself rejects the size (that is checked
/// not to panic too).
fn layer(kind: usize, c: usize, dtype: DType) -> Option<(String, Box<dyn Module>)> {
    let mut rng = seeded_rng(kind as u64);
    let built: Result<Box<dyn Module>, nn::NnError> = match kind {
        0 => Linear::new(c, 3, true, dtype, &mut rng).map(|l| Box::new(l) as _),
        1 => Conv2d::new(c, 2, 3, Conv2dOptions::default(), dtype, &mut rng)
            .map(|l| Box::new(l) as _),
        2 => Conv2d::new(
            c,
            c,
            1,
            Conv2dOptions {
                stride: 2,
                groups: c,
                bias: false,
                ..Conv2dOptions::default()
            },
            dtype,
            &mut rng,
        )
        .map(|l| Box::new(l) as _),
        3 => BatchNorm::new_1d(c, 0.1, 1e-5, dtype).map(|l| Box::new(l) as _),
        4 => BatchNorm::new_2d(c, 0.1, 1e-5, dtype).map(|l| Box::new(l) as _),
        5 => GroupNorm::layer_norm(c, 1e-5, dtype).map(|l| Box::new(l) as _),
        6 => GroupNorm::instance_norm(c, 1e-5, dtype).map(|l| Box::new(l) as _),
        7 => GroupNorm::new(1, c, 1e-5, dtype).map(|l| Box::new(l) as _),
        8 => RunningBatchNorm::new(c, 0.1, 1e-5, dtype).map(|l| Box::new(l) as _),
        9 => Ok(Box::new(Relu::new())),
        10 => LeakyRelu::new(0.1).map(|l| Box::new(l) as _),
        11 => GeneralRelu::new(Some(0.1), 0.4, Some(6.0)).map(|l| Box::new(l) as _),
        12 => Ok(Box::new(Tanh::new())),
        13 => Ok(Box::new(Sigmoid::new())),
        14 => Embedding::new(c.max(3), 2, dtype, &mut rng).map(|l| Box::new(l) as _),
        15 => AdaptiveAvgPool2d::new((1, 1)).map(|l| Box::new(l) as _),
        16 => Dropout::new(0.5, 7).map(|l| Box::new(l) as _),
        17 => Ok(Box::new(Flatten::new())),
        // A conv followed by a ReLU: the pair `Sequential` runs fused.
        _ => Conv2d::new(c, 2, 1, Conv2dOptions::default(), dtype, &mut rng).map(|conv| {
            Box::new(Sequential::new(vec![Box::new(conv), Box::new(Relu::new())])) as _
        }),
    };
    check_error("layer constructor", &built);
    let layer = built.ok()?;
    Some((format!("{} ({})", layer.kind(), layer.describe()), layer))
}

/// Drives one layer: forward in the given mode, then backward from the output's sum.
fn drive_layer(kind: usize, c: usize, layer_dtype: DType, input: Tensor, training: bool) {
    let Some((name, layer)) = no_panic("a layer constructor", || layer(kind, c, layer_dtype))
    else {
        return;
    };
    let what = format!(
        "{name} on {} {} ({})",
        input.dtype(),
        input.shape(),
        if training { "training" } else { "eval" }
    );
    no_panic(&what, || {
        set_training_of(&*layer, training);
        let x = if input.dtype() == DType::U32 {
            Var::constant(input.clone())
        } else {
            Var::parameter(input.clone())
        };
        let y = layer.forward(&x);
        check_error(&what, &y);
        if let Ok(y) = y {
            let loss = y.sum_all();
            check_error(&what, &loss);
            if let Ok(loss) = loss {
                check_error(&what, &loss.backward());
            }
        }
        // Evaluation after the training call (running statistics, if any, now set).
        set_training_of(&*layer, false);
        check_error(&what, &layer.forward(&x));
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn layers_never_panic_on_degenerate_inputs(
        kind in 0..LAYER_KINDS,
        shape in shape_strategy(),
        dtype in dtype_strategy(),
        fill in fill_strategy(),
        training in any::<bool>(),
        // Sized to the input's dim 1 (so the call gets past the channel check), or 0
        // or another size.
        size_choice in 0usize..3,
        layer_f64 in any::<bool>(),
    ) {
        let c = match size_choice {
            0 => shape.get(1).copied().unwrap_or(1),
            1 => shape.last().copied().unwrap_or(1),
            _ => 2,
        };
        let layer_dtype = if layer_f64 { DType::F64 } else { DType::F32 };
        drive_layer(kind, c, layer_dtype, tensor(&shape, dtype, fill), training);
    }

    #[test]
    fn losses_never_panic_on_degenerate_inputs(
        logits_shape in shape_strategy(),
        target_shape in shape_strategy(),
        logits_dtype in dtype_strategy(),
        target_dtype in dtype_strategy(),
        fill in fill_strategy(),
        same_shape in any::<bool>(),
    ) {
        let target_shape = if same_shape { logits_shape.clone() } else { target_shape };
        let logits = tensor(&logits_shape, logits_dtype, fill);
        let targets = tensor(&target_shape, target_dtype, Fill::Normal);
        let what = format!("losses on {} {} and {} {}", logits.dtype(), logits.shape(), targets.dtype(), targets.shape());
        no_panic(&what, || {
            let x = Var::parameter(logits.clone());
            for (name, loss) in [
                ("cross_entropy", nn::loss::cross_entropy(&x, &targets)),
                ("nll_loss", nn::loss::nll_loss(&x, &targets)),
                ("bce_with_logits", nn::loss::bce_with_logits(&x, &targets)),
                ("mse", nn::loss::mse(&x, &targets)),
            ] {
                check_error(name, &loss);
                if let Ok(loss) = loss {
                    check_error(name, &loss.backward());
                }
            }
        });
    }

    #[test]
    fn inits_never_panic_on_degenerate_tensors(
        shape in shape_strategy(),
        dtype in dtype_strategy(),
        gain in prop_oneof![Just(1.0), Just(0.0), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY)],
        fill in fill_strategy(),
    ) {
        let t = tensor(&shape, dtype, fill);
        let what = format!("inits on {} {} (gain {gain})", t.dtype(), t.shape());
        no_panic(&what, || {
            let mut rng = seeded_rng(1);
            check_error("fans", &fans(&t));
            check_error("uniform_", &uniform_(&t, -gain, gain, &mut rng));
            check_error("normal_", &normal_(&t, 0.0, gain, &mut rng));
            check_error("xavier_uniform_", &xavier_uniform_(&t, gain, &mut rng));
            check_error("xavier_normal_", &xavier_normal_(&t, gain, &mut rng));
            for mode in [FanMode::FanIn, FanMode::FanOut] {
                check_error("kaiming_uniform_", &kaiming_uniform_(&t, gain, mode, Nonlinearity::Relu, &mut rng));
                check_error("kaiming_normal_", &kaiming_normal_(&t, gain, mode, Nonlinearity::LeakyRelu, &mut rng));
            }
        });
    }

    #[test]
    fn lsuv_never_panics_on_degenerate_batches(
        shape in shape_strategy(),
        dtype in dtype_strategy(),
        fill in fill_strategy(),
        channels in 1usize..4,
    ) {
        let batch = tensor(&shape, dtype, fill);
        let what = format!("lsuv on {} {}", batch.dtype(), batch.shape());
        no_panic(&what, || {
            let mut rng = seeded_rng(2);
            let Ok(conv) = Conv2d::new(channels, 2, 1, Conv2dOptions::default(), DType::F32, &mut rng) else {
                return;
            };
            let model = Sequential::new(vec![Box::new(conv), Box::new(Relu::new())]);
            let targets = LsuvTarget::pairs(&model, &["Conv2d"], &["ReLU"]);
            check_error(&what, &lsuv(&model, &Var::constant(batch.clone()), &targets, LsuvConfig::default()));
        });
    }

    #[test]
    fn optimisers_never_panic_on_degenerate_parameters(
        shape in shape_strategy(),
        dtype in prop_oneof![Just(DType::F32), Just(DType::F64)],
        grad_fill in fill_strategy(),
        grad_shape in shape_strategy(),
        grad_same_shape in any::<bool>(),
        lr in prop_oneof![Just(0.1), Just(0.0), Just(-1.0), Just(f64::NAN), Just(1e300)],
        momentum in prop_oneof![Just(0.0), Just(0.9), Just(1.0), Just(f64::NAN)],
        weight_decay in prop_oneof![Just(0.0), Just(0.01), Just(-1.0)],
        clip in prop_oneof![Just(1.0), Just(0.0), Just(-1.0), Just(f64::NAN)],
    ) {
        let grad_shape = if grad_same_shape { shape.clone() } else { grad_shape };
        let what = format!("optimisers on {dtype} {shape:?} with gradient {grad_shape:?} (lr {lr}, momentum {momentum}, wd {weight_decay}, clip {clip})");
        no_panic(&what, || {
            let hp = HyperParams { lr, momentum, weight_decay, ..HyperParams::default() };
            let builders: [(&str, BuildOptimizer); 3] = [
                ("Sgd", |p, hp| Sgd::new(p, hp).map(|o| Box::new(o) as _)),
                ("Adam", |p, hp| Adam::new(p, hp).map(|o| Box::new(o) as _)),
                ("AdamW", |p, hp| Adam::adamw(p, hp).map(|o| Box::new(o) as _)),
            ];
            for (name, build) in builders {
                let p = Var::parameter(tensor(&shape, dtype, Fill::Normal));
                p.set_grad(Some(tensor(&grad_shape, dtype, grad_fill)));
                check_error(name, &clip_grad_norm(std::slice::from_ref(&p), clip));
                check_error(name, &clip_grad_value(std::slice::from_ref(&p), clip));
                let opt = build(vec![p.clone()], hp);
                check_error(name, &opt);
                if let Ok(mut opt) = opt {
                    check_error(name, &opt.step());
                    check_error(name, &opt.step());
                    opt.zero_grad();
                    check_error(name, &opt.step());
                }
            }
        });
    }
}

/// The case the reliability review found: RunningBatchNorm on an empty batch divided
/// by zero. Now: an error in training (it needs two samples), an empty output in
/// evaluation once it has running statistics.
#[test]
fn running_batch_norm_on_an_empty_batch_is_an_error_or_empty() {
    for dims in [vec![0, 3], vec![0, 3, 2, 2]] {
        let bn = RunningBatchNorm::new(3, 0.1, 1e-5, DType::F32).unwrap();
        let empty = Var::constant(Tensor::zeros(dims.clone(), DType::F32, &Device::Cpu).unwrap());
        let err = bn.forward(&empty).unwrap_err().to_string();
        assert!(
            err.contains("RunningBatchNorm") && err.contains("at least 2"),
            "{err}"
        );
        let mut real = dims.clone();
        real[0] = 2;
        bn.forward(&Var::constant(
            Tensor::ones(real, DType::F32, &Device::Cpu).unwrap(),
        ))
        .unwrap();
        bn.set_training(false);
        let out = bn.forward(&empty).unwrap();
        assert_eq!(out.dims(), &dims[..]);
    }
    // Empty spatial dims leave nothing to count.
    let bn = RunningBatchNorm::new(3, 0.1, 1e-5, DType::F32).unwrap();
    let x = Var::constant(Tensor::zeros([2, 3, 0, 2], DType::F32, &Device::Cpu).unwrap());
    let err = bn.forward(&x).unwrap_err().to_string();
    assert!(err.contains("at least one value per channel"), "{err}");
}

/// Parameters of degenerate layers can be listed and counted (the summary code does).
#[test]
fn degenerate_layers_list_their_parameters() {
    for kind in 0..LAYER_KINDS {
        for c in [1, 2] {
            if let Some((name, layer)) = layer(kind, c, DType::F32) {
                let n: usize = named_parameters_of(&*layer)
                    .iter()
                    .map(|(_, p)| p.tensor().elem_count())
                    .sum();
                assert!(n < 1000, "{name}: {n} parameters");
            }
        }
    }
}
