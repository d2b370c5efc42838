//! Optimiser updates against their defining formulas, hyper-parameter validation and
//! gradient clipping.

use autograd::Var;
use nn::optim::{clip_grad_norm, clip_grad_value, Adam, HyperParams, Optimizer, ParamGroup, Sgd};
use nn::NnError;
use tensor::{Device, Tensor};

fn param(v: &[f64]) -> Var {
    Var::parameter(Tensor::from_vec(v.to_vec(), [v.len()], &Device::Cpu).unwrap())
}

fn set_grad(p: &Var, g: &[f64]) {
    p.set_grad(Some(
        Tensor::from_vec(g.to_vec(), [g.len()], &Device::Cpu).unwrap(),
    ));
}

fn values(p: &Var) -> Vec<f64> {
    p.tensor().to_vec::<f64>().unwrap()
}

fn close(a: &[f64], b: &[f64]) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_with_momentum_nesterov_and_weight_decay_follows_pytorch() {
    let p = param(&[1.0, -1.0]);
    let hp = HyperParams {
        lr: 0.1,
        momentum: 0.9,
        weight_decay: 0.01,
        nesterov: true,
        ..HyperParams::default()
    };
    let mut opt = Sgd::new(vec![p.clone()], hp).unwrap();
    // Reference, written out: g' = g + wd p; buf = g' (first step) then
    // 0.9 buf + g'; step = g' + 0.9 buf; p -= lr step.
    let (mut x, mut buf) = (vec![1.0, -1.0], vec![0.0, 0.0]);
    for (k, g) in [[0.5, 0.25], [-0.5, 1.0], [0.1, 0.1]].iter().enumerate() {
        set_grad(&p, g);
        opt.step().unwrap();
        for i in 0..2 {
            let gi = g[i] + 0.01 * x[i];
            buf[i] = if k == 0 { gi } else { 0.9 * buf[i] + gi };
            x[i] -= 0.1 * (gi + 0.9 * buf[i]);
        }
        close(&values(&p), &x);
    }
}

#[test]
fn adam_and_adamw_follow_their_definitions() {
    for decoupled in [false, true] {
        let p = param(&[0.5, -2.0]);
        let hp = HyperParams {
            lr: 0.01,
            momentum: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.1,
            ..HyperParams::default()
        };
        let mut opt = if decoupled {
            Adam::adamw(vec![p.clone()], hp).unwrap()
        } else {
            Adam::new(vec![p.clone()], hp).unwrap()
        };
        let (mut x, mut m, mut v) = (vec![0.5, -2.0], vec![0.0; 2], vec![0.0; 2]);
        for (t, g) in [[1.0, -0.5], [0.2, 0.3]].iter().enumerate() {
            set_grad(&p, g);
            opt.step().unwrap();
            let t = t as i32 + 1;
            for i in 0..2 {
                let mut gi = g[i];
                if decoupled {
                    x[i] -= 0.01 * 0.1 * x[i];
                } else {
                    gi += 0.1 * x[i];
                }
                m[i] = 0.9 * m[i] + 0.1 * gi;
                v[i] = 0.99 * v[i] + 0.01 * gi * gi;
                let (mh, vh) = (
                    m[i] / (1.0 - 0.9f64.powi(t)),
                    v[i] / (1.0 - 0.99f64.powi(t)),
                );
                x[i] -= 0.01 * mh / (vh.sqrt() + 1e-8);
            }
            close(&values(&p), &x);
        }
    }
}

#[test]
fn parameter_groups_have_their_own_learning_rates_and_schedulers_can_set_them() {
    let (a, b) = (param(&[1.0]), param(&[1.0]));
    let mut opt = Sgd::with_groups(vec![
        ParamGroup {
            params: vec![a.clone()],
            hp: HyperParams {
                lr: 0.1,
                ..HyperParams::default()
            },
        },
        ParamGroup {
            params: vec![b.clone()],
            hp: HyperParams {
                lr: 0.5,
                ..HyperParams::default()
            },
        },
    ])
    .unwrap();
    set_grad(&a, &[1.0]);
    set_grad(&b, &[1.0]);
    opt.step().unwrap();
    close(&values(&a), &[0.9]);
    close(&values(&b), &[0.5]);
    opt.set_lr(0.0);
    opt.step().unwrap();
    close(&values(&b), &[0.5]);
    opt.zero_grad();
    assert!(a.grad().is_none());
}

#[test]
fn bad_hyper_parameters_are_errors_naming_the_optimizer_and_value() {
    let err = Sgd::new(
        vec![param(&[1.0])],
        HyperParams {
            lr: -0.1,
            ..HyperParams::default()
        },
    )
    .err()
    .unwrap();
    assert!(matches!(err, NnError::Config { .. }));
    let msg = err.to_string();
    assert!(msg.contains("SGD") && msg.contains("-0.1"), "{msg}");
    let err = Adam::new(
        vec![param(&[1.0])],
        HyperParams {
            beta2: 1.0,
            ..HyperParams::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("beta2"), "{err}");
    let err = Sgd::new(
        vec![param(&[1.0])],
        HyperParams {
            nesterov: true,
            ..HyperParams::default()
        },
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("nesterov"), "{err}");
    let constant = Var::constant(Tensor::zeros([1], tensor::DType::F64, &Device::Cpu).unwrap());
    assert!(Sgd::new(vec![constant], HyperParams::default()).is_err());
}

#[test]
fn clipping_by_global_norm_and_by_value() {
    let (a, b) = (param(&[0.0, 0.0]), param(&[0.0]));
    set_grad(&a, &[3.0, 0.0]);
    set_grad(&b, &[4.0]);
    let norm = clip_grad_norm(&[a.clone(), b.clone()], 1.0).unwrap();
    assert!((norm - 5.0).abs() < 1e-12);
    let ga = a.grad().unwrap().to_vec::<f64>().unwrap();
    let gb = b.grad().unwrap().to_vec::<f64>().unwrap();
    assert!(((ga[0] * ga[0] + gb[0] * gb[0]).sqrt() - 1.0).abs() < 1e-5);
    set_grad(&a, &[3.0, -0.5]);
    clip_grad_value(std::slice::from_ref(&a), 1.0).unwrap();
    assert_eq!(a.grad().unwrap().to_vec::<f64>().unwrap(), vec![1.0, -0.5]);
    assert!(clip_grad_norm(&[a], -1.0).is_err());
}
