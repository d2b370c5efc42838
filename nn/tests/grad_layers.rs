//! Numeric gradient checks (f64 central differences under proptest) of the layers
//! whose backward lives in fused kernels or composites: conv2d, every normalisation in
//! training mode, GeneralRelu, Embedding and pooling. Also checks that evaluation-mode
//! BatchNorm uses the running statistics.

use autograd::Var;
use bench_harness::strategies::{arrange, arrangement, storage_len, values};
use bench_harness::{gradcheck, GradcheckConfig};
use kernels::cpu::conv2d::Conv2dParams;
use nn::init::seeded_rng;
use nn::layers::{
    AdaptiveAvgPool2d, BatchNorm, Embedding, GeneralRelu, GroupNorm, RunningBatchNorm,
};
use nn::{Module, ModuleExt};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

fn tensor(dims: &[usize], pool: &[f64]) -> Tensor {
    Tensor::from_vec(
        pool[..dims.iter().product::<usize>()].to_vec(),
        dims.to_vec(),
        &Device::Cpu,
    )
    .unwrap()
}

/// Runs a layer inside a gradcheck closure (which speaks autograd's error type).
fn run(layer: &dyn Module, x: &Var) -> autograd::Result<Var> {
    layer
        .forward(x)
        .map_err(|e| autograd::AutogradError::InvalidArgument {
            op: "layer",
            detail: e.to_string(),
        })
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn conv2d_gradients(
        n in 1usize..3, cin in 1usize..4, cout in 1usize..4, h in 3usize..7, w in 3usize..7,
        k in 1usize..4, stride in 1usize..3, pad in 0usize..2, dil in 1usize..3, bias in any::<bool>(),
        pool in values(2 * 3 * 7 * 7 + 64, 1.0, 0.0),
    ) {
        let p = Conv2dParams { stride: (stride, stride), padding: (pad, pad), dilation: (dil, dil), groups: 1 };
        let span = dil * (k - 1) + 1;
        prop_assume!(h + 2 * pad >= span && w + 2 * pad >= span);
        let x = tensor(&[n, cin, h, w], &pool);
        let wt = tensor(&[cout, cin, k, k], &pool[7..]);
        let mut inputs = vec![x, wt];
        if bias {
            inputs.push(tensor(&[cout], &pool[3..]));
        }
        gradcheck(|v| v[0].conv2d(&v[1], v.get(2), p), &inputs, GradcheckConfig::default()).unwrap();
    }

    #[test]
    fn grouped_conv2d_gradients(groups in 1usize..3, per in 1usize..3, h in 3usize..6, pool in values(400, 1.0, 0.0)) {
        let c = groups * per;
        let p = Conv2dParams { padding: (1, 1), groups, ..Conv2dParams::default() };
        let inputs = vec![tensor(&[2, c, h, h], &pool), tensor(&[c, per, 3, 3], &pool[11..])];
        gradcheck(|v| v[0].conv2d(&v[1], None, p), &inputs, GradcheckConfig::default()).unwrap();
    }

    #[test]
    fn batch_norm_train_gradients(
        n in 2usize..5, c in 1usize..4, s in 1usize..5, rank4 in any::<bool>(), arr in arrangement(),
        pool in values(400, 2.0, 0.0),
    ) {
        let dims = if rank4 { vec![n, c, s, 2] } else { vec![n, c] };
        let x = arrange(&dims, arr, &pool[..storage_len(&dims)]).unwrap();
        let inputs = vec![x, tensor(&[c], &pool[50..]), tensor(&[c], &pool[60..])];
        gradcheck(
            |v| Ok(v[0].batch_norm_train(Some(&v[1]), Some(&v[2]), 1e-5)?.0),
            &inputs,
            GradcheckConfig::default(),
        )
        .unwrap();
    }

    #[test]
    fn group_layer_and_instance_norm_gradients(
        n in 1usize..4, groups in 1usize..3, per in 1usize..3, s in 1usize..4, arr in arrangement(),
        pool in values(400, 2.0, 0.0),
    ) {
        let c = groups * per;
        let dims = vec![n, c, s, 2];
        let x = arrange(&dims, arr, &pool[..storage_len(&dims)]).unwrap();
        let inputs = vec![x, tensor(&[c], &pool[50..]), tensor(&[c], &pool[60..])];
        for g in [groups, 1, c] {
            gradcheck(|v| v[0].group_norm(g, Some(&v[1]), Some(&v[2]), 1e-5), &inputs, GradcheckConfig::default()).unwrap();
        }
    }

    #[test]
    fn general_relu_gradients(dims in bench_harness::strategies::shape(1, 3, 4), pool in values(64, 3.0, 0.05)) {
        // Keep values away from the kink at 0 and from the clamp at maxv.
        let x = tensor(&dims, &pool);
        let layer = GeneralRelu::new(Some(0.1), 0.4, Some(2.5)).unwrap();
        let x = x.clamp(-2.0, 2.0).unwrap();
        gradcheck(|v| run(&layer, &v[0]), &[x], GradcheckConfig::default()).unwrap();
    }

    #[test]
    fn pooling_gradients(n in 1usize..3, c in 1usize..3, f in 1usize..3, pool in values(400, 1.0, 0.0)) {
        let layer = AdaptiveAvgPool2d::new((2, 1)).unwrap();
        let x = tensor(&[n, c, 2 * f, 3], &pool);
        gradcheck(|v| run(&layer, &v[0]), &[x], GradcheckConfig::default()).unwrap();
    }
}

#[test]
fn embedding_gradient_accumulates_repeated_ids() {
    let emb = Embedding::new(5, 3, DType::F64, &mut seeded_rng(0)).unwrap();
    let ids = Tensor::from_vec(vec![1u32, 4, 1, 1, 0, 4], [2, 3], &Device::Cpu).unwrap();
    let table = emb.table().tensor().clone();
    gradcheck(
        |v| {
            v[0].index_select(0, &ids.reshape([6]).unwrap())?
                .reshape([2, 3, 3])?
                .tanh()
        },
        &[table],
        GradcheckConfig::default(),
    )
    .unwrap();
    let out = emb.forward(&Var::constant(ids)).unwrap();
    assert_eq!(out.dims(), [2, 3, 3]);
    out.sum_all().unwrap().backward().unwrap();
    let g = emb.table().grad().unwrap().to_vec::<f64>().unwrap();
    assert_eq!(&g[3..6], &[3.0, 3.0, 3.0], "id 1 used three times");
    assert_eq!(&g[6..9], &[0.0, 0.0, 0.0], "id 2 unused");
    let bad = Tensor::from_vec(vec![7u32], [1], &Device::Cpu).unwrap();
    let err = emb.forward(&Var::constant(bad)).unwrap_err();
    assert!(err.to_string().contains("id 7"), "{err}");
}

#[test]
fn batch_norm_running_statistics_and_eval_mode() {
    let bn = BatchNorm::new_2d(3, 0.1, 1e-5, DType::F64).unwrap();
    let mut rng = seeded_rng(4);
    let x = Var::constant(
        Tensor::randn([8, 3, 4, 4], 2.0, 3.0, DType::F64, &Device::Cpu, &mut rng).unwrap(),
    );
    let y = bn.forward(&x).unwrap();
    // training output: per-channel mean 0, std 1
    let m = y
        .tensor()
        .mean(&[0, 2, 3], false)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(m.iter().all(|v| v.abs() < 1e-10));
    // running stats moved 10% of the way to the batch statistics (unbiased variance)
    let batch_mean = x
        .tensor()
        .mean(&[0, 2, 3], false)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let batch_var = x
        .tensor()
        .permute(&[1, 0, 2, 3])
        .unwrap()
        .reshape([3, 128])
        .unwrap()
        .var(&[1], true, false)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let rm = bn.running_mean().to_vec::<f64>().unwrap();
    let rv = bn.running_var().to_vec::<f64>().unwrap();
    for i in 0..3 {
        assert!((rm[i] - 0.1 * batch_mean[i]).abs() < 1e-9);
        assert!((rv[i] - (0.9 + 0.1 * batch_var[i])).abs() < 1e-9);
    }
    // evaluation uses the running statistics
    bn.set_training(false);
    let e = bn.forward(&x).unwrap().tensor().to_vec::<f64>().unwrap();
    let xs = x.tensor().to_vec::<f64>().unwrap();
    let expected = (xs[0] - rm[0]) / (rv[0] + 1e-5).sqrt();
    assert!((e[0] - expected).abs() < 1e-9);
    assert_eq!(bn.named_buffers().len(), 2);
    // and its gradient is the fixed affine map's
    let inputs = vec![x.tensor().clone()];
    gradcheck(|v| run(&bn, &v[0]), &inputs, GradcheckConfig::default()).unwrap();
}

#[test]
fn running_batch_norm_trains_at_batch_size_two_and_its_gradient_checks() {
    let rbn = RunningBatchNorm::new(2, 0.1, 1e-5, DType::F64).unwrap();
    let mut rng = seeded_rng(8);
    for _ in 0..5 {
        let x = Var::parameter(
            Tensor::randn([2, 2, 3, 3], 1.0, 2.0, DType::F64, &Device::Cpu, &mut rng).unwrap(),
        );
        let y = rbn.forward(&x).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        assert!(x
            .grad()
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .all(|g| g.is_finite()));
    }
    // The gradient through this batch's contribution to the running sums is checked
    // numerically on a fresh layer (each evaluation must start from the same state,
    // so evaluate with a clone of the state: a new layer per call).
    let x = Tensor::randn([3, 2, 2, 2], 0.5, 1.5, DType::F64, &Device::Cpu, &mut rng).unwrap();
    gradcheck(
        |v| {
            run(
                &RunningBatchNorm::new(2, 0.1, 1e-5, DType::F64).expect("valid layer"),
                &v[0],
            )
        },
        std::slice::from_ref(&x),
        GradcheckConfig::default(),
    )
    .unwrap();
    // evaluation works after training, and errors before any training
    rbn.set_training(false);
    rbn.forward(&Var::constant(x.clone())).unwrap();
    let fresh = RunningBatchNorm::new(2, 0.1, 1e-5, DType::F64).unwrap();
    fresh.set_training(false);
    assert!(fresh.forward(&Var::constant(x)).is_err());
}

#[test]
fn bad_layer_configurations_name_the_layer_and_values() {
    let err = GroupNorm::new(3, 8, 1e-5, DType::F32).err().unwrap();
    assert!(
        err.to_string().contains("GroupNorm")
            && err.to_string().contains("(3)")
            && err.to_string().contains("(8)"),
        "{err}"
    );
    assert!(BatchNorm::new_2d(4, 1.5, 1e-5, DType::F32).is_err());
    assert!(GroupNorm::layer_norm(4, 0.0, DType::F32).is_err());
    let bn = BatchNorm::new_2d(4, 0.1, 1e-5, DType::F32).unwrap();
    let wrong = Var::constant(Tensor::zeros([2, 3, 4, 4], DType::F32, &Device::Cpu).unwrap());
    let err = bn.forward(&wrong).unwrap_err();
    assert!(
        err.to_string().contains("BatchNorm2d") && err.to_string().contains("[2, 3, 4, 4]"),
        "{err}"
    );
    let conv = nn::layers::Conv2d::new(
        1,
        2,
        5,
        nn::layers::Conv2dOptions {
            padding: Some(0),
            ..Default::default()
        },
        DType::F32,
        &mut seeded_rng(0),
    )
    .unwrap();
    let small = Var::constant(Tensor::zeros([1, 1, 3, 3], DType::F32, &Device::Cpu).unwrap());
    let err = conv.forward(&small).unwrap_err();
    assert!(err.to_string().contains("conv2d"), "{err}");
}
