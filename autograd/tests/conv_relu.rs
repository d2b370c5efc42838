//! `Var::conv2d_relu` against `Var::conv2d` followed by `Var::relu`: the same output and
//! the same gradients of input, weight and bias, bit for bit, in f32 on shapes where the
//! batch-in-lanes kernels fuse the two (a partial sub-chunk of images included) and in
//! f64 where they run separately.

use autograd::Var;
use kernels::cpu::conv2d::Conv2dParams;
use tensor::{DType, Device, Tensor};

fn random(dims: &[usize], dtype: DType, seed: u64) -> Tensor {
    let mut rng = nn_free_rng(seed);
    Tensor::randn(dims.to_vec(), 0.0, 1.0, dtype, &Device::Cpu, &mut rng).unwrap()
}

/// A seeded generator without depending on `nn`.
fn nn_free_rng(seed: u64) -> rand::rngs::StdRng {
    use rand::SeedableRng;
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// Output and the three gradients of `f` for a loss `sum(y * r)`.
fn run(
    f: impl Fn(&Var, &Var, &Var) -> autograd::Result<Var>,
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    r: &Tensor,
) -> Vec<Vec<f64>> {
    let (xv, wv, bv) = (
        Var::parameter(x.clone()),
        Var::parameter(w.clone()),
        Var::parameter(b.clone()),
    );
    let y = f(&xv, &wv, &bv).unwrap();
    y.mul(&Var::constant(r.clone()))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grad = |v: &Var| v.grad().unwrap().to_vec_f64().unwrap();
    vec![
        y.tensor().to_vec_f64().unwrap(),
        grad(&xv),
        grad(&wv),
        grad(&bv),
    ]
}

#[test]
fn conv2d_relu_equals_conv2d_then_relu_bit_for_bit() {
    // The lesson's layers (stride 2, padding k/2), at batches of 33 and 8 images.
    for (i, (n, cin, cout, k, hw)) in [
        (33, 1, 8, 5, 28),
        (33, 8, 16, 3, 14),
        (8, 32, 64, 3, 4),
        (3, 2, 3, 3, 5),
    ]
    .into_iter()
    .enumerate()
    {
        let params = Conv2dParams {
            stride: (2, 2),
            padding: (k / 2, k / 2),
            ..Conv2dParams::default()
        };
        for dtype in [DType::F32, DType::F64] {
            let seed = 10 * i as u64;
            let x = random(&[n, cin, hw, hw], dtype, seed);
            let w = random(&[cout, cin, k, k], dtype, seed + 1);
            let b = random(&[cout], dtype, seed + 2);
            let oh = (hw + 2 * (k / 2) - k) / 2 + 1;
            let r = random(&[n, cout, oh, oh], dtype, seed + 3);
            let fused = run(|x, w, b| x.conv2d_relu(w, Some(b), params), &x, &w, &b, &r);
            let separate = run(
                |x, w, b| x.conv2d(w, Some(b), params)?.relu(),
                &x,
                &w,
                &b,
                &r,
            );
            for (what, (f, s)) in ["output", "grad input", "grad weight", "grad bias"]
                .iter()
                .zip(fused.iter().zip(&separate))
            {
                assert_eq!(f, s, "{what} of {dtype} layer {i}");
            }
            // The ReLU did cut something, so the mask was exercised.
            assert!(fused[0].contains(&0.0), "layer {i}");
        }
    }
}

#[test]
fn conv2d_relu_reports_bad_arguments_under_its_own_name() {
    let x = Var::constant(Tensor::zeros([1, 2, 4, 4], DType::F32, &Device::Cpu).unwrap());
    let w = Var::parameter(Tensor::zeros([3, 1, 3, 3], DType::F32, &Device::Cpu).unwrap());
    let err = x
        .conv2d_relu(&w, None, Conv2dParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv2d"), "{err}");
    let b = Var::parameter(Tensor::zeros([2], DType::F32, &Device::Cpu).unwrap());
    let w = Var::parameter(Tensor::zeros([3, 2, 3, 3], DType::F32, &Device::Cpu).unwrap());
    let err = x
        .conv2d_relu(&w, Some(&b), Conv2dParams::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv2d_relu") && err.contains("bias"), "{err}");
}
