//! Initialisation schemes: the statistics they promise, gains, errors, and LSUV.

use autograd::Var;
use nn::init::{
    calculate_gain, fans, kaiming_normal_, kaiming_uniform_, lsuv, seeded_rng, xavier_normal_,
    xavier_uniform_, FanMode, LsuvConfig, LsuvTarget, Nonlinearity,
};
use nn::layers::{Conv2d, Conv2dOptions, GeneralRelu, Linear, Sequential};
use tensor::{DType, Device, Tensor};

fn std_of(t: &Tensor) -> f64 {
    let all: Vec<usize> = (0..t.rank()).collect();
    t.var(&all, false, false).unwrap().item().unwrap().sqrt()
}

#[test]
fn gains_match_the_usual_table() {
    assert_eq!(calculate_gain(Nonlinearity::Linear, 0.0), 1.0);
    assert!((calculate_gain(Nonlinearity::Tanh, 0.0) - 5.0 / 3.0).abs() < 1e-15);
    assert!((calculate_gain(Nonlinearity::Relu, 0.0) - 2f64.sqrt()).abs() < 1e-15);
    assert!((calculate_gain(Nonlinearity::LeakyRelu, 0.1) - (2.0 / 1.01f64).sqrt()).abs() < 1e-15);
}

#[test]
fn schemes_give_the_promised_spread() {
    let mut rng = seeded_rng(7);
    let w = Tensor::zeros([256, 64, 3, 3], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(fans(&w).unwrap(), (576, 2304));
    kaiming_normal_(&w, 0.0, FanMode::FanIn, Nonlinearity::Relu, &mut rng).unwrap();
    assert!((std_of(&w) / (2.0f64 / 576.0).sqrt() - 1.0).abs() < 0.02);
    kaiming_uniform_(&w, 0.0, FanMode::FanOut, Nonlinearity::Relu, &mut rng).unwrap();
    assert!((std_of(&w) / (2.0f64 / 2304.0).sqrt() - 1.0).abs() < 0.02);
    xavier_uniform_(&w, 1.0, &mut rng).unwrap();
    assert!((std_of(&w) / (2.0f64 / (576.0 + 2304.0)).sqrt() - 1.0).abs() < 0.02);
    xavier_normal_(&w, 2.0, &mut rng).unwrap();
    assert!((std_of(&w) / (2.0 * (2.0f64 / (576.0 + 2304.0)).sqrt()) - 1.0).abs() < 0.02);
}

#[test]
fn bad_init_arguments_are_errors() {
    let mut rng = seeded_rng(0);
    let v = Tensor::zeros([5], DType::F32, &Device::Cpu).unwrap();
    let err = kaiming_normal_(&v, 0.0, FanMode::FanIn, Nonlinearity::Relu, &mut rng).unwrap_err();
    assert!(err.to_string().contains("[5]"), "{err}");
    assert!(nn::init::uniform_(&v, 1.0, 0.0, &mut rng).is_err());
    assert!(nn::init::normal_(&v, 0.0, -1.0, &mut rng).is_err());
}

#[test]
fn lsuv_brings_each_activation_to_zero_mean_unit_std() {
    let mut rng = seeded_rng(11);
    let opts = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    let model = Sequential::new(vec![
        Box::new(Conv2d::new(1, 8, 3, opts, DType::F32, &mut rng).unwrap()),
        Box::new(GeneralRelu::new(Some(0.1), 0.4, None).unwrap()),
        Box::new(Conv2d::new(8, 16, 3, opts, DType::F32, &mut rng).unwrap()),
        Box::new(GeneralRelu::new(Some(0.1), 0.4, None).unwrap()),
        Box::new(nn::layers::Flatten::new()),
        Box::new(Linear::new(16 * 4 * 4, 10, true, DType::F32, &mut rng).unwrap()),
    ]);
    let x = Var::constant(
        Tensor::randn(
            [64, 1, 16, 16],
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
            &mut rng,
        )
        .unwrap(),
    );
    let targets = LsuvTarget::pairs(&model, &["Conv2d", "Linear"], &["GeneralRelu"]);
    assert_eq!(
        targets
            .iter()
            .map(|t| (t.layer.as_str(), t.observe.as_str()))
            .collect::<Vec<_>>(),
        vec![("0", "1"), ("2", "3"), ("5", "5")]
    );
    let reports = lsuv(
        &model,
        &x,
        &targets,
        LsuvConfig {
            tol: 1e-3,
            max_iters: 50,
        },
    )
    .unwrap();
    for r in &reports {
        assert!(r.converged, "{r:?}");
        assert!(
            r.last.0.abs() <= 1e-3 && (r.last.1 - 1.0).abs() <= 1e-3,
            "{r:?}"
        );
    }
    // The hooks LSUV used are gone.
    for m in nn::module::named_modules_of(&model) {
        assert!(m.module.hooks().is_empty());
    }
}
