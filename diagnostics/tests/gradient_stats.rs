//! GradientStats against a naive f64 computation, with the learning rate of each
//! parameter taken from its optimiser group, and recorded before the step.

use autograd::Var;
use diagnostics::gradients::{GradientConfig, GradientStats};
use nn::layers::{Linear, Relu, Sequential};
use nn::optim::{HyperParams, Optimizer, ParamGroup, Sgd};
use nn::{Module, ModuleExt};
use tensor::{DType, Device, Tensor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn std_of(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

#[test]
fn ratios_match_a_naive_computation_with_per_group_learning_rates() -> TestResult {
    let mut rng = nn::init::seeded_rng(3);
    let model = Sequential::new(vec![
        Box::new(Linear::new(12, 20, true, DType::F32, &mut rng)?),
        Box::new(Relu::new()),
        Box::new(Linear::new(20, 5, true, DType::F32, &mut rng)?),
    ]);
    let named = model.named_parameters();
    let (first, rest): (Vec<_>, Vec<_>) = named.iter().partition(|(n, _)| n.starts_with("0."));
    let group = |params: Vec<&(String, Var)>, lr: f64| ParamGroup {
        params: params.into_iter().map(|(_, v)| v.clone()).collect(),
        hp: HyperParams {
            lr,
            ..HyperParams::default()
        },
    };
    let mut opt = Sgd::with_groups(vec![group(first, 0.5), group(rest, 0.01)])?;
    let mut grads = GradientStats::for_model(&model, GradientConfig::default())?;
    let names: Vec<&str> = grads.log().params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["0.weight", "2.weight"], "weights only by default");

    let x = Var::constant(Tensor::randn(
        [64, 12],
        0.0,
        1.0,
        DType::F32,
        &Device::Cpu,
        &mut rng,
    )?);
    for step in 0..3 {
        model.forward(&x)?.square()?.mean_all()?.backward()?;
        // Expected values, from the tensors themselves, before the step.
        let expected: Vec<(f64, f64, f64)> = ["0.weight", "2.weight"]
            .iter()
            .map(|name| {
                let (_, v) = named.iter().find(|(n, _)| n == name).ok_or("param")?;
                let g = v.grad().ok_or("no grad")?.to_vec_f64()?;
                let w = v.tensor().to_vec_f64()?;
                Ok::<_, Box<dyn std::error::Error>>((
                    g.iter().sum::<f64>() / g.len() as f64,
                    std_of(&g),
                    std_of(&w),
                ))
            })
            .collect::<Result<_, _>>()?;
        assert_eq!(grads.record_with_optimizer(step, &opt)?, 2);
        opt.step()?;
        opt.zero_grad();
        for ((p, lr), (g_mean, g_std, w_std)) in
            grads.log().params.iter().zip([0.5, 0.01]).zip(expected)
        {
            let r = p.records.last().ok_or("no record")?;
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
            assert_eq!(r.step, step);
            assert_eq!(r.lr, lr, "{}: lr of its group", p.name);
            assert!((r.grad_mean - g_mean).abs() <= 1e-12, "{}", p.name);
            assert!(
                close(r.grad_std, g_std),
                "{}: {} vs {g_std}",
                p.name,
                r.grad_std
            );
            assert!(close(r.data_std, w_std), "{}", p.name);
            assert!(close(r.grad_data, g_std / w_std), "{}", p.name);
            assert!(
                (r.update_data_log10 - (lr * g_std / w_std).log10()).abs() < 1e-9,
                "{}",
                p.name
            );
        }
    }
    // The histogram of step 0 holds every gradient value.
    for p in &grads.log().params {
        let h = p.histogram.as_ref().ok_or("no histogram")?;
        let n: usize = p.shape.iter().product();
        assert_eq!(h.step, 0);
        assert_eq!(h.counts.iter().sum::<u64>(), n as u64, "{}", p.name);
    }
    Ok(())
}

#[test]
fn parameters_outside_the_optimizer_have_no_update_ratio() -> TestResult {
    let mut rng = nn::init::seeded_rng(4);
    let a = Linear::new(4, 4, false, DType::F32, &mut rng)?;
    let b = Linear::new(4, 4, false, DType::F32, &mut rng)?;
    let opt = Sgd::new(vec![a.weight().clone()], HyperParams::default())?;
    let params = vec![
        ("a".to_string(), a.weight().clone()),
        ("b".to_string(), b.weight().clone()),
    ];
    let mut grads = GradientStats::new(params, GradientConfig::default())?;
    let x = Var::constant(Tensor::ones([2, 4], DType::F32, &Device::Cpu)?);
    b.forward(&a.forward(&x)?)?.sum_all()?.backward()?;
    grads.record_with_optimizer(0, &opt)?;
    let log = grads.log();
    assert!(log.params[0].records[0].update_data_log10.is_finite());
    assert!(log.params[1].records[0].lr.is_nan());
    assert!(log.params[1].records[0].update_data_log10.is_nan());
    assert!(log.params[1].records[0].grad_data.is_finite());
    Ok(())
}
