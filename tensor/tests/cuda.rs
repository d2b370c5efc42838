//! Every CUDA tensor op against the CPU result on random inputs with awkward sizes
//! (1, 3, 17, 33, 1000) and non-contiguous views.
//!
//! Each test first asks [`gpu`] for a device; without a CUDA driver or GPU it prints
//! `skipped: <reason>` (stdout and stderr) and returns, so a run on a machine without
//! a GPU shows the skips rather than passing silently. The one test that does not skip,
//! `unusable_devices_are_errors_naming_op_and_device`, checks the error path that such
//! a machine exercises.

#![cfg(feature = "cuda")]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::{DType, Device, Tensor, TensorError};

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

const SIZES: [usize; 5] = [1, 3, 17, 33, 1000];

fn rand_vec(n: usize, lo: f64, hi: f64, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// A CPU tensor of `dims` with values uniform in `[lo, hi)`.
fn cpu(dims: &[usize], dtype: DType, lo: f64, hi: f64, seed: u64) -> Tensor {
    let n = dims.iter().product();
    Tensor::from_vec(rand_vec(n, lo, hi, seed), dims.to_vec(), &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// Asserts that `gpu_result` (on the GPU) equals `cpu_result` up to `tol` relative to
/// the magnitude, with NaN matching NaN, and that shapes and dtypes agree.
fn assert_close(what: &str, gpu_result: &Tensor, cpu_result: &Tensor, tol: f64) {
    assert!(gpu_result.device().is_cuda(), "{what}: result left the GPU");
    assert_eq!(gpu_result.dims(), cpu_result.dims(), "{what}: shape");
    assert_eq!(gpu_result.dtype(), cpu_result.dtype(), "{what}: dtype");
    let (g, c) = (
        gpu_result.to_vec_f64().unwrap(),
        cpu_result.to_vec_f64().unwrap(),
    );
    for (i, (a, b)) in g.iter().zip(&c).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + b.abs());
        assert!(ok, "{what}: element {i}: cuda {a} vs cpu {b}");
    }
}

fn tol(dtype: DType) -> f64 {
    if dtype == DType::F32 {
        1e-5
    } else {
        1e-12
    }
}

/// `t` and several non-contiguous views of the same values' shape family: itself, its
/// transpose (rank >= 2), a narrowed slice and an expanded row.
fn views(t: &Tensor) -> Vec<(String, Tensor)> {
    let mut v = vec![("dense".to_string(), t.clone())];
    if t.rank() >= 2 {
        v.push(("transposed".into(), t.t().unwrap()));
    }
    if t.dims()[0] > 2 {
        v.push(("narrowed".into(), t.narrow(0, 1, t.dims()[0] - 2).unwrap()));
    }
    if t.rank() == 1 {
        v.push((
            "expanded".into(),
            t.unsqueeze(0).unwrap().expand([3, t.dims()[0]]).unwrap(),
        ));
    }
    v
}

#[test]
fn unusable_devices_are_errors_naming_op_and_device() {
    let bad = Device::Cuda(4096);
    let e = Tensor::zeros([2], DType::F32, &bad).unwrap_err();
    assert!(
        matches!(e, TensorError::Cuda { op: "zeros", device, .. } if device == bad),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.starts_with("zeros on cuda:4096: "), "{msg}");
    let e = Tensor::ones([3], DType::F64, &Device::Cpu)
        .unwrap()
        .to_device(&bad)
        .unwrap_err();
    assert!(e.to_string().starts_with("to_device on cuda:4096: "), "{e}");
    if kernels::cuda::cuda_available().is_err() {
        // No GPU at all: device 0 is unusable too, and says why.
        let e = Tensor::from_vec(vec![1.0f32], [1], &Device::Cuda(0)).unwrap_err();
        let why = kernels::cuda::cuda_available().unwrap_err();
        assert!(e.to_string().contains(&why), "{e} should contain {why}");
    } else {
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}

#[test]
fn transfers_round_trip_every_dtype_and_view() {
    let Some(dev) = gpu("transfers_round_trip_every_dtype_and_view") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64, DType::U32] {
            let t = cpu(&[n, 3], dtype, 0.0, 100.0, i as u64);
            let g = t.to_device(&dev).unwrap();
            assert_eq!(g.device(), dev);
            assert_close("round trip", &g, &t, 0.0);
            assert_eq!(
                g.to_device(&Device::Cpu).unwrap().to_vec_f64().unwrap(),
                t.to_vec_f64().unwrap()
            );
            for (name, v) in views(&t) {
                let gv = views(&g).into_iter().find(|(m, _)| *m == name).unwrap().1;
                assert_close(&format!("{name} view of {n}x3 {dtype}"), &gv, &v, 0.0);
                assert_close(
                    "contiguous",
                    &gv.contiguous().unwrap(),
                    &v.contiguous().unwrap(),
                    0.0,
                );
                assert_close("copy", &gv.copy().unwrap(), &v.copy().unwrap(), 0.0);
            }
            for to in [DType::F32, DType::F64, DType::U32] {
                let tv = t.t().unwrap();
                let gv = g.t().unwrap();
                assert_close(
                    "to_dtype",
                    &gv.to_dtype(to).unwrap(),
                    &tv.to_dtype(to).unwrap(),
                    0.0,
                );
            }
        }
    }
    let s = Tensor::full([2, 2], 2.5, DType::F64, &dev).unwrap();
    assert_eq!(s.to_vec::<f64>().unwrap(), vec![2.5; 4]);
    assert!(s.to_vec::<f32>().is_err());
    let e = Tensor::eye(3, DType::U32, &dev).unwrap();
    assert_eq!(e.to_vec::<u32>().unwrap(), vec![1, 0, 0, 0, 1, 0, 0, 0, 1]);
    let a = Tensor::arange(0.0, 5.0, 1.0, DType::F32, &dev).unwrap();
    assert_eq!(a.narrow(0, 2, 1).unwrap().to_scalar::<f32>().unwrap(), 2.0);
    assert_eq!(a.sum_all().unwrap().item().unwrap(), 10.0);
    assert!(a.to_string().starts_with("Tensor[f32; [5]; cuda:0]"), "{a}");
    assert!(a.with_slice(|x: &[f32]| x.len()).is_err());
}

#[test]
fn unary_ops_match_the_cpu() {
    let Some(dev) = gpu("unary_ops_match_the_cpu") else {
        return;
    };
    type Op = fn(&Tensor) -> tensor::Result<Tensor>;
    let ops: [(&str, Op, f64, f64); 20] = [
        ("neg", |t| t.neg(), -3.0, 3.0),
        ("exp", |t| t.exp(), -3.0, 3.0),
        ("log", |t| t.log(), 0.01, 5.0),
        ("sqrt", |t| t.sqrt(), 0.0, 5.0),
        ("abs", |t| t.abs(), -3.0, 3.0),
        ("tanh", |t| t.tanh(), -3.0, 3.0),
        ("sigmoid", |t| t.sigmoid(), -30.0, 30.0),
        ("relu", |t| t.relu(), -3.0, 3.0),
        ("square", |t| t.square(), -3.0, 3.0),
        ("recip", |t| t.recip(), 0.1, 3.0),
        ("sign", |t| t.sign(), -3.0, 3.0),
        ("leaky_relu", |t| t.leaky_relu(0.1), -3.0, 3.0),
        (
            "shifted_leaky_relu",
            |t| t.shifted_leaky_relu(0.1, -0.4),
            -3.0,
            3.0,
        ),
        ("add_scalar", |t| t.add_scalar(1.5), -3.0, 3.0),
        ("mul_scalar", |t| t.mul_scalar(-2.0), -3.0, 3.0),
        ("affine", |t| t.affine(0.5, -1.0), -3.0, 3.0),
        ("powf", |t| t.powf(1.7), 0.0, 3.0),
        ("powf2", |t| t.powf(2.0), -3.0, 3.0),
        ("clamp", |t| t.clamp(-1.0, 0.5), -3.0, 3.0),
        ("log_nan", |t| t.log(), -1.0, 1.0),
    ];
    for (i, &n) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            for (name, f, lo, hi) in ops {
                let t = cpu(&[n, 2], dtype, lo, hi, 10 + i as u64);
                let g = t.to_device(&dev).unwrap();
                for ((vn, tv), (_, gv)) in views(&t).into_iter().zip(views(&g)) {
                    let what = format!("{name} on {vn} {n}x2 {dtype}");
                    assert_close(&what, &f(&gv).unwrap(), &f(&tv).unwrap(), 4.0 * tol(dtype));
                }
            }
        }
    }
    let idx = Tensor::from_vec(vec![1u32], [1], &dev).unwrap();
    assert_eq!(
        idx.exp().unwrap_err().to_string(),
        "exp: not supported for dtype u32"
    );
}

#[test]
fn binary_ops_broadcast_like_the_cpu() {
    let Some(dev) = gpu("binary_ops_broadcast_like_the_cpu") else {
        return;
    };
    type Op = fn(&Tensor, &Tensor) -> tensor::Result<Tensor>;
    let ops: [(&str, Op); 13] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
        ("pow", |a, b| a.abs()?.pow(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
    ];
    let pairs: [(&[usize], &[usize]); 6] = [
        (&[17, 33], &[33]),
        (&[3, 1, 5], &[1, 4, 1]),
        (&[1000], &[1]),
        (&[1], &[1]),
        (&[33, 17], &[33, 1]),
        (&[2, 3], &[]),
    ];
    for (p, (da, db)) in pairs.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let (a, b) = (
                cpu(da, dtype, -3.0, 3.0, 100 + p as u64),
                cpu(db, dtype, 0.5, 3.0, 200 + p as u64),
            );
            // Round some values so that comparisons see equal pairs too.
            let (a, b) = (a.mul_scalar(2.0).unwrap().clamp(-3.0, 3.0).unwrap(), b);
            let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
            for (name, f) in ops {
                let what = format!("{name} {da:?} {db:?} {dtype}");
                assert_close(
                    &what,
                    &f(&ga, &gb).unwrap(),
                    &f(&a, &b).unwrap(),
                    4.0 * tol(dtype),
                );
                if a.rank() == 2 {
                    let (at, gat) = (a.t().unwrap(), ga.t().unwrap());
                    if let (Ok(c), Ok(g)) = (f(&at, &b), f(&gat, &gb)) {
                        assert_close(&format!("{what} transposed"), &g, &c, 4.0 * tol(dtype));
                    }
                }
            }
        }
    }
    // Comparisons and where_cond on u32, with mixed mask dtypes.
    let a = cpu(&[17, 3], DType::U32, 0.0, 4.0, 7);
    let b = cpu(&[3], DType::U32, 0.0, 4.0, 8);
    let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
    assert_close("u32 ge", &ga.ge(&gb).unwrap(), &a.ge(&b).unwrap(), 0.0);
    assert!(ga.add(&gb).is_err());
    for mask_dtype in [DType::F32, DType::F64, DType::U32] {
        let m = a.lt(&b).unwrap().to_dtype(mask_dtype).unwrap();
        let gm = m.to_device(&dev).unwrap();
        let (x, y) = (
            cpu(&[17, 1], DType::F64, -1.0, 1.0, 9),
            cpu(&[3], DType::F64, -1.0, 1.0, 10),
        );
        let (gx, gy) = (x.to_device(&dev).unwrap(), y.to_device(&dev).unwrap());
        assert_close(
            "where_cond",
            &gm.where_cond(&gx, &gy).unwrap(),
            &m.where_cond(&x, &y).unwrap(),
            0.0,
        );
    }
}

#[test]
fn mixing_devices_is_an_error_naming_both() {
    let Some(dev) = gpu("mixing_devices_is_an_error_naming_both") else {
        return;
    };
    let c = Tensor::ones([3], DType::F32, &Device::Cpu).unwrap();
    let g = c.to_device(&dev).unwrap();
    for e in [
        c.add(&g).unwrap_err(),
        g.matmul(&c.unsqueeze(1).unwrap()).unwrap_err(),
        Tensor::cat(&[c.clone(), g.clone()], 0).unwrap_err(),
        g.assign(&c).unwrap_err(),
        g.where_cond(&g, &c).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(msg.contains("cpu") && msg.contains("cuda:0"), "{msg}");
    }
    let idx = Tensor::from_vec(vec![0u32], [1], &dev).unwrap();
    let cpu_idx = Tensor::from_vec(vec![0u32], [1], &Device::Cpu).unwrap();
    for e in [
        c.index_add(0, &idx, &g.narrow(0, 0, 1).unwrap())
            .unwrap_err(),
        g.index_select(0, &cpu_idx).unwrap_err(),
        g.gather(0, &cpu_idx).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(msg.contains("cpu") && msg.contains("cuda:0"), "{msg}");
    }
}

#[test]
fn indexing_matches_the_cpu() {
    let Some(dev) = gpu("indexing_matches_the_cpu") else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(3);
    for (i, &n) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64, DType::U32] {
            let t = cpu(&[n, 5], dtype, 0.0, 9.0, 1100 + i as u64);
            let g = t.to_device(&dev).unwrap();
            for (view_name, tv, gv) in [
                ("dense", t.clone(), g.clone()),
                ("transposed", t.t().unwrap(), g.t().unwrap()),
            ] {
                for dim in 0..2 {
                    let size = tv.dims()[dim];
                    // Repeated indices, in any order.
                    let ids: Vec<u32> = (0..7).map(|_| rng.random_range(0..size as u32)).collect();
                    let (ci, gi) = (
                        Tensor::from_vec(ids.clone(), [7], &Device::Cpu).unwrap(),
                        Tensor::from_vec(ids, [7], &dev).unwrap(),
                    );
                    let what = format!("{n}x5 {dtype} {view_name} dim {dim}");
                    let (cs, gs) = (
                        tv.index_select(dim, &ci).unwrap(),
                        gv.index_select(dim, &gi).unwrap(),
                    );
                    assert_close(&format!("index_select {what}"), &gs, &cs, 0.0);
                    // gather with an index no larger than the tensor in the other dim.
                    let mut idims = tv.dims().to_vec();
                    idims[dim] = 3;
                    let other = 1 - dim;
                    idims[other] = idims[other].min(4);
                    let m: usize = idims.iter().product();
                    let vals: Vec<u32> = (0..m).map(|_| rng.random_range(0..size as u32)).collect();
                    let (cx, gx) = (
                        Tensor::from_vec(vals.clone(), idims.clone(), &Device::Cpu).unwrap(),
                        Tensor::from_vec(vals, idims.clone(), &dev).unwrap(),
                    );
                    assert_close(
                        &format!("gather {what}"),
                        &gv.gather(dim, &gx).unwrap(),
                        &tv.gather(dim, &cx).unwrap(),
                        0.0,
                    );
                    if dtype == DType::U32 {
                        assert!(gv.index_add(dim, &gi, &gs).is_err());
                        continue;
                    }
                    let tl = 100.0 * tol(dtype);
                    assert_close(
                        &format!("index_add {what}"),
                        &gv.index_add(dim, &gi, &gs).unwrap(),
                        &tv.index_add(dim, &ci, &cs).unwrap(),
                        tl,
                    );
                    let src = cpu(&idims, dtype, -1.0, 1.0, 1200 + i as u64);
                    let gsrc = src.to_device(&dev).unwrap();
                    assert_close(
                        &format!("scatter_add {what}"),
                        &gv.scatter_add(dim, &gx, &gsrc).unwrap(),
                        &tv.scatter_add(dim, &cx, &src).unwrap(),
                        tl,
                    );
                }
            }
        }
    }
    let g = Tensor::zeros([3, 2], DType::F32, &dev).unwrap();
    let bad = Tensor::from_vec(vec![3u32], [1], &dev).unwrap();
    assert_eq!(
        g.index_select(0, &bad).unwrap_err().to_string(),
        "index_select: index 3 is out of range for dimension 0 of size 3"
    );
}

#[test]
fn reductions_match_the_cpu() {
    let Some(dev) = gpu("reductions_match_the_cpu") else {
        return;
    };
    let shapes: [&[usize]; 4] = [&[1000], &[17, 33], &[3, 17, 1], &[1, 33, 3]];
    for (s, dims) in shapes.iter().enumerate() {
        for dtype in [DType::F32, DType::F64, DType::U32] {
            let t = cpu(dims, dtype, -10.0, 10.0, 300 + s as u64);
            let t = if dtype == DType::U32 {
                cpu(dims, dtype, 0.0, 50.0, 300 + s as u64)
            } else {
                t
            };
            let g = t.to_device(&dev).unwrap();
            let mut dim_sets: Vec<Vec<usize>> = (0..dims.len()).map(|d| vec![d]).collect();
            dim_sets.push((0..dims.len()).collect());
            if dims.len() == 3 {
                dim_sets.push(vec![0, 2]);
            }
            for ds in &dim_sets {
                for keep in [false, true] {
                    let what = format!("{dims:?} {dtype} over {ds:?} keepdim {keep}");
                    assert_close(
                        &format!("max {what}"),
                        &g.max(ds, keep).unwrap(),
                        &t.max(ds, keep).unwrap(),
                        0.0,
                    );
                    assert_close(
                        &format!("min {what}"),
                        &g.min(ds, keep).unwrap(),
                        &t.min(ds, keep).unwrap(),
                        0.0,
                    );
                    if dtype == DType::U32 {
                        assert!(g.sum(ds, keep).is_err());
                        continue;
                    }
                    let tl = 1e3 * tol(dtype);
                    assert_close(
                        &format!("sum {what}"),
                        &g.sum(ds, keep).unwrap(),
                        &t.sum(ds, keep).unwrap(),
                        tl,
                    );
                    assert_close(
                        &format!("mean {what}"),
                        &g.mean(ds, keep).unwrap(),
                        &t.mean(ds, keep).unwrap(),
                        tl,
                    );
                    for unbiased in [false, true] {
                        if unbiased && ds.iter().map(|&d| dims[d]).product::<usize>() < 2 {
                            continue;
                        }
                        assert_close(
                            &format!("var {what}"),
                            &g.var(ds, unbiased, keep).unwrap(),
                            &t.var(ds, unbiased, keep).unwrap(),
                            tl,
                        );
                    }
                }
            }
            for d in 0..dims.len() {
                for keep in [false, true] {
                    assert_close(
                        "argmax",
                        &g.argmax(d, keep).unwrap(),
                        &t.argmax(d, keep).unwrap(),
                        0.0,
                    );
                    assert_close(
                        "argmin",
                        &g.argmin(d, keep).unwrap(),
                        &t.argmin(d, keep).unwrap(),
                        0.0,
                    );
                }
            }
            if dims.len() == 2 {
                let (tt, gt) = (t.t().unwrap(), g.t().unwrap());
                assert_close(
                    "max of transpose",
                    &gt.max(&[1], false).unwrap(),
                    &tt.max(&[1], false).unwrap(),
                    0.0,
                );
                assert_close(
                    "argmax of transpose",
                    &gt.argmax(1, false).unwrap(),
                    &tt.argmax(1, false).unwrap(),
                    0.0,
                );
            }
        }
    }
    // NaN wins max and argmax, as on the CPU.
    let t = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0, 2.0], [2, 2], &Device::Cpu).unwrap();
    let g = t.to_device(&dev).unwrap();
    assert_close(
        "max nan",
        &g.max(&[1], false).unwrap(),
        &t.max(&[1], false).unwrap(),
        0.0,
    );
    assert_close(
        "argmax nan",
        &g.argmax(1, false).unwrap(),
        &t.argmax(1, false).unwrap(),
        0.0,
    );
    let b = cpu(&[4, 2, 3], DType::F64, -1.0, 1.0, 5);
    let gb = b.to_device(&dev).unwrap();
    assert_close(
        "sum_to",
        &gb.sum_to([2, 1]).unwrap(),
        &b.sum_to([2, 1]).unwrap(),
        1e-12,
    );
}

#[test]
fn softmax_matches_the_cpu() {
    let Some(dev) = gpu("softmax_matches_the_cpu") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let t = cpu(&[n, 17], dtype, -20.0, 20.0, 400 + i as u64);
            let g = t.to_device(&dev).unwrap();
            for dim in [0, 1] {
                let what = format!("{n}x17 {dtype} dim {dim}");
                assert_close(
                    &format!("softmax {what}"),
                    &g.softmax(dim).unwrap(),
                    &t.softmax(dim).unwrap(),
                    10.0 * tol(dtype),
                );
                assert_close(
                    &format!("log_softmax {what}"),
                    &g.log_softmax(dim).unwrap(),
                    &t.log_softmax(dim).unwrap(),
                    10.0 * tol(dtype),
                );
            }
            let (tt, gt) = (t.t().unwrap(), g.t().unwrap());
            assert_close(
                "softmax of transpose",
                &gt.softmax(1).unwrap(),
                &tt.softmax(1).unwrap(),
                10.0 * tol(dtype),
            );
        }
    }
}

#[test]
fn matmul_matches_the_cpu() {
    let Some(dev) = gpu("matmul_matches_the_cpu") else {
        return;
    };
    let cases: [(&[usize], &[usize]); 7] = [
        (&[17, 33], &[33, 3]),
        (&[1, 1], &[1, 1]),
        (&[1000, 17], &[17, 33]),
        (&[2, 3, 17, 5], &[5, 4]),
        (&[3, 1, 4, 5], &[2, 5, 7]),
        (&[33], &[33, 3]),
        (&[17, 33], &[33]),
    ];
    for (i, (da, db)) in cases.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let (a, b) = (
                cpu(da, dtype, -1.0, 1.0, 500 + i as u64),
                cpu(db, dtype, -1.0, 1.0, 600 + i as u64),
            );
            let (ga, gb) = (a.to_device(&dev).unwrap(), b.to_device(&dev).unwrap());
            let what = format!("{da:?} x {db:?} {dtype}");
            let t = if dtype == DType::F32 { 1e-4 } else { 1e-11 };
            assert_close(&what, &ga.matmul(&gb).unwrap(), &a.matmul(&b).unwrap(), t);
            if a.rank() == 2 && b.rank() == 2 {
                // Transposed operands (strided views).
                let (at, bt) = (
                    a.t().unwrap().contiguous().unwrap(),
                    b.t().unwrap().contiguous().unwrap(),
                );
                let (gat, gbt) = (at.to_device(&dev).unwrap(), bt.to_device(&dev).unwrap());
                assert_close(
                    &format!("{what} via transposes"),
                    &gat.t().unwrap().matmul(&gbt.t().unwrap()).unwrap(),
                    &at.t().unwrap().matmul(&bt.t().unwrap()).unwrap(),
                    t,
                );
            }
        }
    }
    let empty = Tensor::zeros([3, 0], DType::F32, &dev).unwrap();
    let other = Tensor::zeros([0, 2], DType::F32, &dev).unwrap();
    assert_eq!(
        empty.matmul(&other).unwrap().to_vec::<f32>().unwrap(),
        vec![0.0; 6]
    );
}

#[test]
fn in_place_updates_match_the_cpu() {
    let Some(dev) = gpu("in_place_updates_match_the_cpu") else {
        return;
    };
    for (i, &n) in SIZES.iter().enumerate() {
        for dtype in [DType::F32, DType::F64] {
            let base = cpu(&[n, 4], dtype, -1.0, 1.0, 700 + i as u64);
            let src = cpu(&[4], dtype, -1.0, 1.0, 800 + i as u64);
            let (c, g) = (base.copy().unwrap(), base.to_device(&dev).unwrap());
            let gs = src.to_device(&dev).unwrap();
            type Step = fn(&Tensor, &Tensor) -> tensor::Result<()>;
            let steps: [(&str, Step); 6] = [
                ("add_", |d, s| d.add_(s)),
                ("axpy_", |d, s| d.axpy_(-0.5, s)),
                ("mul_scalar_", |d, _| d.mul_scalar_(3.0)),
                ("assign row", |d, s| d.narrow(0, 0, 1)?.assign(s)),
                ("fill_ column", |d, _| d.narrow(1, 1, 2)?.fill_(7.5)),
                ("add_ transposed", |d, s| d.t()?.add_(&s.unsqueeze(1)?)),
            ];
            for (name, f) in steps {
                f(&c, &src).unwrap();
                f(&g, &gs).unwrap();
                assert_close(&format!("{name} {n}x4 {dtype}"), &g, &c, 4.0 * tol(dtype));
            }
            // A source aliasing the destination.
            c.narrow(0, 0, 1)
                .unwrap()
                .assign(&c.narrow(0, n - 1, 1).unwrap())
                .unwrap();
            g.narrow(0, 0, 1)
                .unwrap()
                .assign(&g.narrow(0, n - 1, 1).unwrap())
                .unwrap();
            assert_close("aliased assign", &g, &c, 0.0);
            g.zero_().unwrap();
            assert_eq!(g.to_vec_f64().unwrap(), vec![0.0; n * 4]);
        }
    }
    let u = Tensor::zeros([3], DType::U32, &dev).unwrap();
    u.assign(&Tensor::from_vec(vec![4u32, 5, 6], [3], &dev).unwrap())
        .unwrap();
    assert_eq!(u.to_vec::<u32>().unwrap(), vec![4, 5, 6]);
    assert!(u.mul_scalar_(2.0).is_err());
}

#[test]
fn cat_and_stack_match_the_cpu() {
    let Some(dev) = gpu("cat_and_stack_match_the_cpu") else {
        return;
    };
    let parts: Vec<Tensor> = [1usize, 3, 17]
        .iter()
        .enumerate()
        .map(|(i, &n)| cpu(&[n, 5], DType::F64, -1.0, 1.0, 900 + i as u64))
        .collect();
    let gparts: Vec<Tensor> = parts.iter().map(|p| p.to_device(&dev).unwrap()).collect();
    assert_close(
        "cat 0",
        &Tensor::cat(&gparts, 0).unwrap(),
        &Tensor::cat(&parts, 0).unwrap(),
        0.0,
    );
    let tparts: Vec<Tensor> = parts.iter().map(|p| p.t().unwrap()).collect();
    let gtparts: Vec<Tensor> = gparts.iter().map(|p| p.t().unwrap()).collect();
    assert_close(
        "cat 1 of views",
        &Tensor::cat(&gtparts, 1).unwrap(),
        &Tensor::cat(&tparts, 1).unwrap(),
        0.0,
    );
    let same: Vec<Tensor> = (0..3)
        .map(|i| cpu(&[4, 3], DType::U32, 0.0, 9.0, i))
        .collect();
    let gsame: Vec<Tensor> = same.iter().map(|p| p.to_device(&dev).unwrap()).collect();
    assert_close(
        "stack 1",
        &Tensor::stack(&gsame, 1).unwrap(),
        &Tensor::stack(&same, 1).unwrap(),
        0.0,
    );
}

#[test]
fn stats_match_the_cpu_kernel() {
    let Some(dev) = gpu("stats_match_the_cpu_kernel") else {
        return;
    };
    use kernels::cpu::stats::{stats, StatsConfig};
    let configs = [
        StatsConfig::default(),
        StatsConfig {
            bins: 7,
            lo: 0.0,
            hi: 3.0,
            abs: true,
            ..StatsConfig::default()
        },
        StatsConfig {
            bins: 5000,
            lo: -2.0,
            hi: 2.0,
            ..StatsConfig::default()
        },
    ];
    for (i, &n) in SIZES.iter().chain(&[1 << 20]).enumerate() {
        let mut v = rand_vec(n, -12.0, 12.0, 1000 + i as u64);
        if n > 3 {
            // Exact zeros, bin edges, saturated values, a constant offset and non-finite
            // values, as activations have.
            v[0] = 0.0;
            v[1] = 0.5;
            v[2] = f64::NAN;
            v[3] = f64::INFINITY;
        }
        for dtype in [DType::F32, DType::F64] {
            let t = Tensor::from_vec(v.clone(), [n], &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            let g = t.to_device(&dev).unwrap();
            for cfg in &configs {
                let want = match dtype {
                    DType::F32 => t.with_slice(|x: &[f32]| stats(x, cfg)).unwrap().unwrap(),
                    _ => t.with_slice(|x: &[f64]| stats(x, cfg)).unwrap().unwrap(),
                };
                let got = tensor::cuda::stats(&g, cfg).unwrap();
                let what = format!("{n} {dtype} {cfg:?}");
                assert_eq!(got.count(), want.count(), "{what}");
                assert_eq!(got.histogram(), want.histogram(), "{what}");
                assert_eq!(
                    (
                        got.below(),
                        got.above(),
                        got.near_zero(),
                        got.saturated(),
                        got.non_finite()
                    ),
                    (
                        want.below(),
                        want.above(),
                        want.near_zero(),
                        want.saturated(),
                        want.non_finite()
                    ),
                    "{what}"
                );
                assert_eq!((got.min(), got.max()), (want.min(), want.max()), "{what}");
                assert!(
                    (got.mean() - want.mean()).abs() <= 1e-9 * (1.0 + want.mean().abs()),
                    "{what}"
                );
                assert!(
                    (got.var() - want.var()).abs() <= 1e-9 * want.var(),
                    "{what}"
                );
            }
            // A strided view goes through a dense copy on the GPU.
            let tv = g.unsqueeze(1).unwrap().expand([n, 2]).unwrap();
            assert_eq!(
                tensor::cuda::stats(&tv, &configs[0]).unwrap().count(),
                2 * got_count(&t)
            );
        }
    }
    // Variance of a large constant plus small noise (no E[x^2] - E[x]^2 cancellation).
    let noisy: Vec<f64> = rand_vec(100_000, -1e-3, 1e-3, 1)
        .iter()
        .map(|x| 1e4 + x)
        .collect();
    let t = Tensor::from_vec(noisy.clone(), [noisy.len()], &Device::Cpu).unwrap();
    let want = t
        .with_slice(|x: &[f64]| stats(x, &configs[0]))
        .unwrap()
        .unwrap();
    let got = tensor::cuda::stats(&t.to_device(&dev).unwrap(), &configs[0]).unwrap();
    assert!(
        (got.var() - want.var()).abs() <= 1e-6 * want.var(),
        "{} vs {}",
        got.var(),
        want.var()
    );
}

/// The number of finite values of a CPU tensor.
fn got_count(t: &Tensor) -> u64 {
    t.to_vec_f64()
        .unwrap()
        .iter()
        .filter(|x| x.is_finite())
        .count() as u64
}
