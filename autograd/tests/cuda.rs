//! Autograd through CUDA ops: forward values and gradients of the fused ops (conv2d,
//! batch norm, cross-entropy) and of composite graphs against the CPU, and
//! finite-difference gradient checks in f64 run entirely on the GPU.
//!
//! Each test first asks [`gpu`] for a device; without a CUDA driver or GPU it prints
//! `skipped: <reason>` (stdout and stderr) and returns.

#![cfg(feature = "cuda")]

use autograd::{Reduction, Var};
use kernels::cpu::conv2d::Conv2dParams;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::{DType, Device, Tensor};

/// The first GPU, or `None` after printing why the calling test is skipped.
fn gpu(test: &str) -> Option<Device> {
    match kernels::cuda::cuda_available() {
        Ok(()) => Some(Device::Cuda(0)),
        Err(why) => {
            println!("skipped: {test}: {why}");
            eprintln!("skipped: {test}: {why}");
            None
        }
    }
}

fn cpu(dims: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, dims.to_vec(), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn assert_close(what: &str, gpu_result: &Tensor, cpu_result: &Tensor, tol: f64) {
    assert!(gpu_result.device().is_cuda(), "{what}: result left the GPU");
    assert_eq!(gpu_result.dims(), cpu_result.dims(), "{what}: shape");
    let (g, c) = (
        gpu_result.to_vec_f64().unwrap(),
        cpu_result.to_vec_f64().unwrap(),
    );
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + b.abs()),
            "{what}: element {i}: cuda {a} vs cpu {b}"
        );
    }
}

/// Runs `f` on parameters made from `inputs` on `device`, back-propagates `weights`
/// (moved there) and returns the output and the gradient of every input, on the host.
fn run(
    f: &dyn Fn(&[Var]) -> autograd::Result<Var>,
    inputs: &[Tensor],
    weights: &Tensor,
    device: &Device,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs
        .iter()
        .map(|t| Var::parameter(t.to_device(device).unwrap()))
        .collect();
    let out = f(&vars).unwrap();
    assert_eq!(out.device(), *device, "the output stays on {device}");
    out.backward_with_grad(&weights.to_device(device).unwrap())
        .unwrap();
    let grads = vars
        .iter()
        .map(|v| {
            let g = v.grad().expect("every input gets a gradient");
            assert_eq!(g.device(), *device, "gradients stay on {device}");
            g.to_device(&Device::Cpu).unwrap()
        })
        .collect();
    (out.tensor().to_device(&Device::Cpu).unwrap(), grads)
}

/// The output and input gradients of `f` on the GPU equal those on the CPU.
fn same_as_cpu(
    what: &str,
    dev: &Device,
    f: &dyn Fn(&[Var]) -> autograd::Result<Var>,
    inputs: &[Tensor],
    tol: f64,
) {
    let probe = f(&inputs
        .iter()
        .map(|t| Var::constant(t.clone()))
        .collect::<Vec<_>>())
    .unwrap();
    let weights = cpu(probe.dims(), probe.dtype(), 77);
    let (co, cg) = run(f, inputs, &weights, &Device::Cpu);
    let (go, gg) = run(f, inputs, &weights, dev);
    let on = |t: &Tensor| t.to_device(dev).unwrap();
    assert_close(&format!("{what}: output"), &on(&go), &co, tol);
    for (i, (g, c)) in gg.iter().zip(&cg).enumerate() {
        assert_close(&format!("{what}: gradient of input {i}"), &on(g), c, tol);
    }
}

/// A finite-difference gradient check on the GPU in f64 (PyTorch's defaults: eps
/// 1e-6, atol 1e-5, rtol 1e-3): the analytic gradient of `sum(f(inputs) * w)` against
/// central differences, every function evaluation on the GPU.
fn gradcheck_on(
    dev: &Device,
    what: &str,
    f: &dyn Fn(&[Var]) -> autograd::Result<Var>,
    inputs: &[Tensor],
) {
    let (eps, atol, rtol) = (1e-6, 1e-5, 1e-3);
    let probe = f(&inputs
        .iter()
        .map(|t| Var::constant(t.to_device(dev).unwrap()))
        .collect::<Vec<_>>())
    .unwrap();
    let weights = cpu(probe.dims(), DType::F64, 99);
    let (_, analytic) = run(f, inputs, &weights, dev);
    let gw = weights.to_device(dev).unwrap();
    let eval = |vals: &[Vec<f64>]| -> f64 {
        let _guard = autograd::no_grad();
        let vars: Vec<Var> = vals
            .iter()
            .zip(inputs)
            .map(|(v, t)| {
                Var::constant(Tensor::from_vec(v.clone(), t.dims().to_vec(), dev).unwrap())
            })
            .collect();
        f(&vars)
            .unwrap()
            .tensor()
            .mul(&gw)
            .unwrap()
            .sum_all()
            .unwrap()
            .item()
            .unwrap()
    };
    let base: Vec<Vec<f64>> = inputs.iter().map(|t| t.to_vec_f64().unwrap()).collect();
    let mut vals = base.clone();
    for (i, a) in analytic.iter().enumerate() {
        let a = a.to_vec_f64().unwrap();
        for j in 0..base[i].len() {
            vals[i][j] = base[i][j] + eps;
            let plus = eval(&vals);
            vals[i][j] = base[i][j] - eps;
            let minus = eval(&vals);
            vals[i][j] = base[i][j];
            let numeric = (plus - minus) / (2.0 * eps);
            let err = (a[j] - numeric).abs();
            assert!(
                err <= atol + rtol * numeric.abs() && a[j].is_finite(),
                "{what}: input {i} element {j}: analytic {} vs numeric {numeric}",
                a[j]
            );
        }
    }
}

fn conv_params() -> Vec<(Conv2dParams, [usize; 4], [usize; 4])> {
    vec![
        (Conv2dParams::default(), [2, 3, 7, 5], [4, 3, 3, 3]),
        (
            Conv2dParams {
                stride: (2, 1),
                padding: (1, 2),
                dilation: (1, 2),
                groups: 1,
            },
            [3, 2, 9, 8],
            [5, 2, 3, 2],
        ),
        (
            Conv2dParams {
                stride: (1, 2),
                padding: (1, 1),
                dilation: (1, 1),
                groups: 2,
            },
            [1, 4, 6, 7],
            [6, 2, 3, 3],
        ),
        (Conv2dParams::default(), [1, 1, 1, 1], [1, 1, 1, 1]),
    ]
}

#[test]
fn conv2d_forward_and_backward_match_the_cpu() {
    let Some(dev) = gpu("conv2d_forward_and_backward_match_the_cpu") else {
        return;
    };
    for (i, (p, xs, ws)) in conv_params().into_iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let tol = if dtype == DType::F32 { 1e-4 } else { 1e-11 };
            let inputs = [
                cpu(&xs, dtype, 10 + i as u64),
                cpu(&ws, dtype, 20 + i as u64),
                cpu(&[ws[0]], dtype, 30 + i as u64),
            ];
            let f = move |v: &[Var]| v[0].conv2d(&v[1], Some(&v[2]), p);
            same_as_cpu(
                &format!("conv2d {xs:?} {ws:?} {dtype}"),
                &dev,
                &f,
                &inputs,
                tol,
            );
            let f = move |v: &[Var]| v[0].conv2d(&v[1], None, p);
            same_as_cpu(
                &format!("conv2d no bias {xs:?} {dtype}"),
                &dev,
                &f,
                &inputs[..2],
                tol,
            );
        }
    }
}

#[test]
fn batch_norm_matches_the_cpu() {
    let Some(dev) = gpu("batch_norm_matches_the_cpu") else {
        return;
    };
    for (i, dims) in [[4usize, 3, 5], [1, 17, 33], [33, 2, 1]].iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let tol = if dtype == DType::F32 { 1e-4 } else { 1e-10 };
            let c = dims[1];
            let inputs = [
                cpu(dims, dtype, 40 + i as u64),
                cpu(&[c], dtype, 50 + i as u64),
                cpu(&[c], dtype, 60 + i as u64),
            ];
            let train = |v: &[Var]| Ok(v[0].batch_norm_train(Some(&v[1]), Some(&v[2]), 1e-5)?.0);
            same_as_cpu(
                &format!("batch_norm_train {dims:?} {dtype}"),
                &dev,
                &train,
                &inputs,
                tol,
            );
            let plain = |v: &[Var]| Ok(v[0].batch_norm_train(None, None, 1e-3)?.0);
            same_as_cpu(
                &format!("batch_norm_train plain {dims:?}"),
                &dev,
                &plain,
                &inputs[..1],
                tol,
            );
            let rm = cpu(&[c], dtype, 70);
            let rv = cpu(&[c], dtype, 71).abs().unwrap().add_scalar(0.5).unwrap();
            for d in [Device::Cpu, dev] {
                // The running statistics live with the input.
                let (rm, rv) = (rm.to_device(&d).unwrap(), rv.to_device(&d).unwrap());
                let eval = move |v: &[Var]| {
                    let (rm, rv) = (rm.to_device(&v[0].device())?, rv.to_device(&v[0].device())?);
                    v[0].batch_norm_eval(&rm, &rv, Some(&v[1]), Some(&v[2]), 1e-5)
                };
                same_as_cpu(
                    &format!("batch_norm_eval {dims:?} {dtype}"),
                    &dev,
                    &eval,
                    &inputs,
                    tol,
                );
            }
        }
    }
}

#[test]
fn group_norm_matches_the_cpu() {
    let Some(dev) = gpu("group_norm_matches_the_cpu") else {
        return;
    };
    for (i, (dims, groups)) in [([4usize, 6, 5], 3usize), ([1, 17, 33], 1), ([3, 4, 1], 4)]
        .into_iter()
        .enumerate()
    {
        for dtype in [DType::F32, DType::F64] {
            let tol = if dtype == DType::F32 { 1e-4 } else { 1e-10 };
            let c = dims[1];
            let inputs = [
                cpu(&dims, dtype, 140 + i as u64),
                cpu(&[c], dtype, 150 + i as u64),
                cpu(&[c], dtype, 160 + i as u64),
            ];
            let f = move |v: &[Var]| v[0].group_norm(groups, Some(&v[1]), Some(&v[2]), 1e-5);
            same_as_cpu(
                &format!("group_norm {dims:?} / {groups} {dtype}"),
                &dev,
                &f,
                &inputs,
                tol,
            );
            let plain = move |v: &[Var]| v[0].group_norm(groups, None, None, 1e-3);
            same_as_cpu(
                &format!("group_norm plain {dims:?}"),
                &dev,
                &plain,
                &inputs[..1],
                tol,
            );
        }
    }
    gradcheck_on(
        &dev,
        "group norm",
        &|v| v[0].group_norm(2, Some(&v[1]), Some(&v[2]), 1e-5),
        &[
            cpu(&[3, 4, 2], DType::F64, 170),
            cpu(&[4], DType::F64, 171),
            cpu(&[4], DType::F64, 172),
        ],
    );
}

#[test]
fn cross_entropy_and_activations_match_the_cpu() {
    let Some(dev) = gpu("cross_entropy_and_activations_match_the_cpu") else {
        return;
    };
    for (i, (n, c)) in [(1usize, 3usize), (17, 10), (1000, 33)]
        .into_iter()
        .enumerate()
    {
        let mut rng = StdRng::seed_from_u64(i as u64);
        let ids: Vec<u32> = (0..n).map(|_| rng.random_range(0..c as u32)).collect();
        let targets = Tensor::from_vec(ids, [n], &Device::Cpu).unwrap();
        for dtype in [DType::F32, DType::F64] {
            let tol = if dtype == DType::F32 { 1e-5 } else { 1e-12 };
            let logits = cpu(&[n, c], dtype, 80 + i as u64).mul_scalar(5.0).unwrap();
            for red in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                let t = targets.clone();
                let f = move |v: &[Var]| v[0].cross_entropy(&t.to_device(&v[0].device())?, red);
                same_as_cpu(
                    &format!("cross_entropy {n}x{c} {dtype} {red:?}"),
                    &dev,
                    &f,
                    std::slice::from_ref(&logits),
                    tol,
                );
            }
            let acts = |v: &[Var]| {
                let h = v[0].relu()?.add(&v[0].tanh()?)?;
                h.add(&v[0].sigmoid()?)?
                    .add(&v[0].leaky_relu(0.2)?)?
                    .softmax(1)
            };
            same_as_cpu(
                &format!("activations {n}x{c} {dtype}"),
                &dev,
                &acts,
                std::slice::from_ref(&logits),
                10.0 * tol,
            );
        }
        let g = Var::parameter(cpu(&[n, c], DType::F32, 1).to_device(&dev).unwrap());
        let e = g
            .cross_entropy(&targets, Reduction::Mean)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu") && e.contains("cuda:0"), "{e}");
    }
}

#[test]
fn gradcheck_through_cuda_ops() {
    let Some(dev) = gpu("gradcheck_through_cuda_ops") else {
        return;
    };
    let f64t = |dims: &[usize], seed| cpu(dims, DType::F64, seed);
    gradcheck_on(
        &dev,
        "matmul + tanh + broadcast div",
        &|v| {
            v[0].matmul(&v[1])?
                .tanh()?
                .div(&v[2].abs()?.add_scalar(0.5)?)
        },
        &[f64t(&[3, 4], 1), f64t(&[4, 5], 2), f64t(&[5], 3)],
    );
    gradcheck_on(
        &dev,
        "reductions of a transpose",
        &|v| {
            let t = v[0].t()?;
            let a = t.mean(&[1], true)?;
            let b = t.var(&[1], true, true)?;
            a.add(&b)?.add(&t.max(&[1], true)?)
        },
        &[f64t(&[5, 3], 4)],
    );
    gradcheck_on(
        &dev,
        "log_softmax and exp",
        &|v| v[0].log_softmax(0)?.mul(&v[0].exp()?),
        &[f64t(&[4, 3], 5)],
    );
    let (p, xs, ws) = conv_params()[2];
    gradcheck_on(
        &dev,
        "conv2d with groups",
        &move |v| v[0].conv2d(&v[1], Some(&v[2]), p),
        &[f64t(&xs, 6), f64t(&ws, 7), f64t(&[ws[0]], 8)],
    );
    gradcheck_on(
        &dev,
        "batch norm (training)",
        &|v| Ok(v[0].batch_norm_train(Some(&v[1]), Some(&v[2]), 1e-5)?.0),
        &[f64t(&[4, 3, 2], 9), f64t(&[3], 10), f64t(&[3], 11)],
    );
    let ids = Tensor::from_vec(vec![2u32, 0, 2, 1], [4], &dev).unwrap();
    gradcheck_on(
        &dev,
        "index_select (embedding) and gather",
        &move |v| {
            let rows = v[0].index_select(0, &ids)?;
            let pick = Tensor::from_vec(vec![1u32, 0, 2, 2], [4, 1], &v[0].device())?;
            rows.gather(1, &pick)
        },
        &[f64t(&[3, 3], 13)],
    );
    let targets = Tensor::from_vec(vec![2u32, 0, 1, 2], [4], &dev).unwrap();
    let t2 = targets.clone();
    gradcheck_on(
        &dev,
        "nll_loss of log_softmax",
        &move |v| v[0].log_softmax(1)?.nll_loss(&t2, Reduction::Mean),
        &[f64t(&[4, 3], 14)],
    );
    gradcheck_on(
        &dev,
        "cross-entropy",
        &move |v| v[0].cross_entropy(&targets, Reduction::Mean),
        &[f64t(&[4, 3], 12)],
    );
}
