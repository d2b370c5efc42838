//! Optimiser state through checkpoints: training N steps straight gives bit for bit the
//! same model as training k steps, saving model and optimiser, loading both into fresh
//! ones and training the remaining N - k; and clear errors for files that do not fit.

use autograd::Var;
use nn::checkpoint::{load, load_optimizer, save, save_optimizer};
use nn::init::seeded_rng;
use nn::layers::{Linear, Relu, Sequential};
use nn::optim::{Adam, HyperParams, Optimizer, ParamGroup, Sgd};
use nn::{Module, ModuleExt, NnError};
use tensor::{DType, Device, Tensor};

const STEPS: usize = 8;
const SAVE_AT: usize = 3;

fn model(seed: u64, hidden: usize) -> Sequential {
    let mut rng = seeded_rng(seed);
    Sequential::new(vec![
        Box::new(Linear::new(5, hidden, true, DType::F32, &mut rng).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(hidden, 3, true, DType::F32, &mut rng).unwrap()),
    ])
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nn-resume-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The batch of step `step`: the same inputs and targets in every run.
fn batch(step: usize) -> (Var, Var) {
    let mut rng = seeded_rng(1000 + step as u64);
    let x = Tensor::randn([16, 5], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng).unwrap();
    let y = Tensor::randn([16, 3], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng).unwrap();
    (Var::constant(x), Var::constant(y))
}

/// Steps `from..to` of a regression, with a scheduler that changes the learning rate
/// and momentum of every group each step (so the saved hyper-parameters matter).
fn train(model: &Sequential, opt: &mut dyn Optimizer, from: usize, to: usize) {
    for step in from..to {
        let (x, y) = batch(step);
        let loss = model
            .forward(&x)
            .unwrap()
            .sub(&y)
            .unwrap()
            .square()
            .unwrap();
        loss.mean_all().unwrap().backward().unwrap();
        opt.step().unwrap();
        opt.zero_grad();
        for g in opt.groups_mut() {
            g.hp.lr *= 0.9;
            g.hp.momentum = 0.8 + 0.01 * step as f64;
        }
    }
}

/// Every parameter's values as bits.
fn bits(model: &Sequential) -> Vec<(String, Vec<u32>)> {
    model
        .named_parameters()
        .into_iter()
        .map(|(n, v)| {
            let values = v.tensor().to_vec::<f32>().unwrap();
            (n, values.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// Two groups (weights and biases) with their own hyper-parameters.
fn groups(model: &Sequential, hp: HyperParams) -> Vec<ParamGroup> {
    let (weights, biases): (Vec<_>, Vec<_>) = model
        .named_parameters()
        .into_iter()
        .partition(|(n, _)| n.ends_with("weight"));
    vec![
        ParamGroup {
            params: weights.into_iter().map(|(_, v)| v).collect(),
            hp,
        },
        ParamGroup {
            params: biases.into_iter().map(|(_, v)| v).collect(),
            hp: HyperParams {
                lr: hp.lr * 0.5,
                weight_decay: 0.0,
                ..hp
            },
        },
    ]
}

/// Trains `STEPS` straight, and `SAVE_AT` + save + load into fresh objects + the rest,
/// and checks that both end with the same bits (and the same optimiser state).
fn resumes_bit_for_bit(make: impl Fn(&Sequential) -> Box<dyn Optimizer>) {
    let straight = model(1, 8);
    let mut opt = make(&straight);
    train(&straight, opt.as_mut(), 0, STEPS);

    let dir = dir();
    let (model_path, opt_path) = (dir.join("model.safetensors"), dir.join("optim.safetensors"));
    let first = model(1, 8);
    let mut first_opt = make(&first);
    train(&first, first_opt.as_mut(), 0, SAVE_AT);
    save(&first, &model_path).unwrap();
    save_optimizer(first_opt.as_ref(), &opt_path).unwrap();
    assert!(!opt_path.with_extension("safetensors.tmp").exists());

    // Another initialisation and the constructor's hyper-parameters: everything that
    // matters must come from the files.
    let resumed = model(2, 8);
    let mut resumed_opt = make(&resumed);
    assert_ne!(bits(&resumed), bits(&first));
    load(&resumed, &model_path).unwrap();
    load_optimizer(resumed_opt.as_mut(), &opt_path).unwrap();
    assert_eq!(resumed_opt.state(), first_opt.state());
    train(&resumed, resumed_opt.as_mut(), SAVE_AT, STEPS);

    assert_eq!(bits(&resumed), bits(&straight));
    assert_eq!(resumed_opt.state(), opt.state());

    // Without the optimiser's state the same run ends elsewhere: the test can fail.
    let restarted = model(2, 8);
    let mut restarted_opt = make(&restarted);
    load(&restarted, &model_path).unwrap();
    train(&restarted, restarted_opt.as_mut(), SAVE_AT, STEPS);
    assert_ne!(bits(&restarted), bits(&straight));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sgd_with_momentum_resumes_bit_for_bit() {
    resumes_bit_for_bit(|m| {
        let hp = HyperParams {
            lr: 0.05,
            momentum: 0.9,
            weight_decay: 1e-3,
            ..HyperParams::default()
        };
        Box::new(Sgd::with_groups(groups(m, hp)).unwrap())
    });
}

#[test]
fn sgd_with_nesterov_momentum_resumes_bit_for_bit() {
    resumes_bit_for_bit(|m| {
        let hp = HyperParams {
            lr: 0.05,
            momentum: 0.9,
            nesterov: true,
            ..HyperParams::default()
        };
        Box::new(Sgd::new(m.parameters(), hp).unwrap())
    });
}

#[test]
fn adam_resumes_bit_for_bit() {
    resumes_bit_for_bit(|m| {
        let hp = HyperParams {
            lr: 0.01,
            weight_decay: 1e-3,
            ..HyperParams::default()
        };
        let hp = HyperParams {
            momentum: 0.9,
            ..hp
        };
        Box::new(Adam::with_groups(groups(m, hp), false).unwrap())
    });
}

#[test]
fn adamw_resumes_bit_for_bit() {
    resumes_bit_for_bit(|m| {
        let hp = HyperParams {
            lr: 0.01,
            weight_decay: 1e-2,
            ..HyperParams::default()
        };
        Box::new(Adam::adamw(m.parameters(), hp).unwrap())
    });
}

/// Adam over `model` after one step, saved to a new file.
fn saved_adam(model: &Sequential) -> (std::path::PathBuf, Box<dyn Optimizer>) {
    let mut opt: Box<dyn Optimizer> =
        Box::new(Adam::new(model.parameters(), HyperParams::default()).unwrap());
    train(model, opt.as_mut(), 0, 1);
    let path = dir().join("adam.safetensors");
    save_optimizer(opt.as_ref(), &path).unwrap();
    (path, opt)
}

#[test]
fn a_mis_shaped_state_names_the_tensor_and_both_shapes_and_changes_nothing() {
    let (path, _) = saved_adam(&model(1, 8));
    let wider = model(1, 9);
    let mut opt = Adam::new(wider.parameters(), HyperParams::default()).unwrap();
    train(&wider, &mut opt, 0, 1);
    let before = opt.state();
    let err = load_optimizer(&mut opt, &path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NnError::TensorMismatch { .. }), "{text}");
    assert!(text.contains("group.0.param.0.exp_avg"), "{text}");
    assert!(text.contains("[8, 5]") && text.contains("[9, 5]"), "{text}");
    assert_eq!(opt.state(), before, "a failed load changes nothing");
}

#[test]
fn a_missing_tensor_is_named_with_its_expected_shape() {
    // Rewrite a saved file without one of its buffers (the metadata still lists it).
    let (path, _) = saved_adam(&model(1, 8));
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "group.0.param.2.exp_avg_sq")
        .collect();
    let truncated = safetensors::serialize(kept, header.metadata().clone()).unwrap();
    std::fs::write(&path, truncated).unwrap();

    let target = model(3, 8);
    let mut opt = Adam::new(target.parameters(), HyperParams::default()).unwrap();
    let err = load_optimizer(&mut opt, &path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, NnError::MissingTensor { .. }), "{text}");
    assert!(text.contains("group.0.param.2.exp_avg_sq"), "{text}");
    assert!(text.contains("[3, 8]"), "{text}");
    assert!(opt.state().groups[0].params.iter().all(Option::is_none));
}

#[test]
fn another_optimizer_or_layout_is_refused() {
    let m = model(1, 8);
    let (path, _) = saved_adam(&m);
    let mut sgd = Sgd::new(m.parameters(), HyperParams::default()).unwrap();
    let err = load_optimizer(&mut sgd, &path).unwrap_err().to_string();
    assert!(err.contains("SGD") && err.contains("Adam"), "{err}");

    let mut adamw = Adam::adamw(m.parameters(), HyperParams::default()).unwrap();
    let err = load_optimizer(&mut adamw, &path).unwrap_err().to_string();
    assert!(
        err.contains("AdamW") && err.contains("Adam optimizer"),
        "{err}"
    );

    let mut two_groups = Adam::with_groups(groups(&m, HyperParams::default()), false).unwrap();
    let err = load_optimizer(&mut two_groups, &path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 parameter group(s)") && err.contains("has 2"),
        "{err}"
    );

    let model_file = dir().join("model.safetensors");
    save(&m, &model_file).unwrap();
    let mut adam = Adam::new(m.parameters(), HyperParams::default()).unwrap();
    let err = load_optimizer(&mut adam, &model_file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an optimizer checkpoint"), "{err}");
}

#[test]
fn a_parameter_never_updated_has_no_state_and_round_trips() {
    let m = model(1, 4);
    let hp = HyperParams {
        lr: 0.1,
        momentum: 0.5,
        ..HyperParams::default()
    };
    let params = m.parameters();
    let mut opt = Sgd::new(params.clone(), hp).unwrap();
    // Only the first parameter gets a gradient.
    params[0]
        .square()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    opt.step().unwrap();
    let state = opt.state();
    assert!(state.groups[0].params[0].is_some());
    assert!(state.groups[0].params[1..].iter().all(Option::is_none));
    let path = dir().join("sgd.safetensors");
    save_optimizer(&opt, &path).unwrap();
    let mut fresh = Sgd::new(model(2, 4).parameters(), HyperParams::default()).unwrap();
    load_optimizer(&mut fresh, &path).unwrap();
    assert_eq!(fresh.state(), state);
}
