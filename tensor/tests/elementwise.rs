//! Broadcasting binary ops, comparisons, `where_cond` and unary ops against the naive
//! reference, on non-contiguous inputs.

mod common;

use common::{assert_close, broadcast_dims, strided_tensor, Nd};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

/// An output shape and two operand shapes that broadcast to it: each operand drops
/// some leading dims and turns some dims into 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1..5usize, 0..5).prop_flat_map(|out| {
        let r = out.len();
        let operand = |out: Vec<usize>| {
            (0..=r, prop::collection::vec(any::<bool>(), r)).prop_map(move |(drop, ones)| {
                out.iter()
                    .zip(&ones)
                    .skip(drop)
                    .map(|(&d, &one)| if one { 1 } else { d })
                    .collect::<Vec<usize>>()
            })
        };
        (operand(out.clone()), operand(out))
    })
}

fn values(dims: &[usize], seed: u64) -> Nd {
    // Deterministic values in [0.5, 2.5), distinct enough for comparisons to differ.
    Nd::from_fn(dims, |i| {
        let h = i
            .iter()
            .fold(seed.wrapping_mul(6364136223846793005), |h, &x| {
                h.wrapping_mul(31).wrapping_add(x as u64 + 1)
            });
        0.5 + (h % 8) as f64 / 4.0
    })
}

/// The reference result of `f` under NumPy broadcasting.
fn naive_binary(a: &Nd, b: &Nd, f: impl Fn(f64, f64) -> f64) -> Nd {
    let dims = broadcast_dims(&a.dims, &b.dims).unwrap();
    let (ea, eb) = (a.expand(&dims), b.expand(&dims));
    Nd::new(
        &dims,
        ea.data
            .iter()
            .zip(&eb.data)
            .map(|(&x, &y)| f(x, y))
            .collect(),
    )
}

type BinOp = (
    &'static str,
    fn(&Tensor, &Tensor) -> tensor::Result<Tensor>,
    fn(f64, f64) -> f64,
);

const BINARY: [BinOp; 13] = [
    ("add", Tensor::add, |x, y| x + y),
    ("sub", Tensor::sub, |x, y| x - y),
    ("mul", Tensor::mul, |x, y| x * y),
    ("div", Tensor::div, |x, y| x / y),
    ("pow", Tensor::pow, f64::powf),
    ("maximum", Tensor::maximum, f64::max),
    ("minimum", Tensor::minimum, f64::min),
    ("eq", Tensor::eq, |x, y| (x == y) as u8 as f64),
    ("ne", Tensor::ne, |x, y| (x != y) as u8 as f64),
    ("lt", Tensor::lt, |x, y| (x < y) as u8 as f64),
    ("le", Tensor::le, |x, y| (x <= y) as u8 as f64),
    ("gt", Tensor::gt, |x, y| (x > y) as u8 as f64),
    ("ge", Tensor::ge, |x, y| (x >= y) as u8 as f64),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn binary_ops_broadcast_like_numpy(
        (da, db) in broadcast_pair(),
        seed in any::<u64>(),
        mode_a in 0..3u8,
        mode_b in 0..3u8,
        swap in any::<bool>(),
    ) {
        let (da, db) = if swap { (db, da) } else { (da, db) };
        let (a, b) = (values(&da, seed), values(&db, seed ^ 0x5555));
        for dtype in [DType::F64, DType::F32] {
            let ta = strided_tensor(&a, dtype, mode_a);
            let tb = strided_tensor(&b, dtype, mode_b);
            for (name, op, f) in BINARY {
                let got = op(&ta, &tb).unwrap();
                let want = naive_binary(&a, &b, f);
                prop_assert_eq!(got.dims(), want.dims.as_slice());
                prop_assert_eq!(got.dtype(), dtype);
                let rtol = if dtype == DType::F64 { 0.0 } else { 1e-6 };
                assert_close(&got.to_vec_f64().unwrap(), &want.data, rtol, name);
            }
        }
    }

    #[test]
    fn comparisons_on_u32(
        (da, db) in broadcast_pair(),
        seed in any::<u64>(),
        mode in 0..3u8,
    ) {
        let (a, b) = (values(&da, seed), values(&db, seed ^ 7));
        let ta = strided_tensor(&a, DType::U32, mode);
        let tb = strided_tensor(&b, DType::U32, mode);
        let trunc = |n: &Nd| n.map(|v| v.trunc());
        for (name, op, f) in &BINARY[7..] {
            let got = op(&ta, &tb).unwrap();
            let want = naive_binary(&trunc(&a), &trunc(&b), f);
            prop_assert_eq!(got.dtype(), DType::U32);
            prop_assert_eq!(got.to_vec_f64().unwrap(), want.data, "{}", name);
        }
    }

    #[test]
    fn where_cond_broadcasts_three_ways(
        (dm, dt) in broadcast_pair(),
        seed in any::<u64>(),
        mode in 0..3u8,
    ) {
        let mask = values(&dm, seed).map(|v| if v > 1.4 { 1.0 } else { 0.0 });
        let on_true = values(&dt, seed ^ 3);
        let on_false = Nd::new(&[], vec![-1.0]);
        let got = strided_tensor(&mask, DType::U32, mode)
            .where_cond(&strided_tensor(&on_true, DType::F32, mode), &on_false.to_tensor(DType::F32))
            .unwrap();
        let picked = naive_binary(&mask, &on_true, |m, t| if m != 0.0 { t } else { -1.0 });
        prop_assert_eq!(got.to_vec_f64().unwrap(), picked.data);
    }

    #[test]
    fn unary_ops_on_views(dims in prop::collection::vec(1..5usize, 0..4), seed in any::<u64>(), mode in 0..3u8) {
        let a = values(&dims, seed).map(|v| v - 1.3);
        let t = strided_tensor(&a, DType::F64, mode);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        let cases: Vec<(&str, Tensor, Nd)> = vec![
            ("neg", t.neg().unwrap(), a.map(|x| -x)),
            ("exp", t.exp().unwrap(), a.map(f64::exp)),
            ("log", t.abs().unwrap().log().unwrap(), a.map(|x| x.abs().ln())),
            ("sqrt", t.abs().unwrap().sqrt().unwrap(), a.map(|x| x.abs().sqrt())),
            ("tanh", t.tanh().unwrap(), a.map(f64::tanh)),
            ("sigmoid", t.sigmoid().unwrap(), a.map(sigmoid)),
            ("relu", t.relu().unwrap(), a.map(|x| x.max(0.0))),
            ("square", t.square().unwrap(), a.map(|x| x * x)),
            ("recip", t.recip().unwrap(), a.map(f64::recip)),
            ("sign", t.sign().unwrap(), a.map(|x| if x > 0.0 { 1.0 } else if x < 0.0 { -1.0 } else { 0.0 })),
            ("leaky_relu", t.leaky_relu(0.01).unwrap(), a.map(|x| if x > 0.0 { x } else { 0.01 * x })),
            ("shifted_leaky_relu", t.shifted_leaky_relu(0.1, -0.4).unwrap(), a.map(|x| if x > 0.0 { x - 0.4 } else { 0.1 * x - 0.4 })),
            ("affine", t.affine(2.0, -1.0).unwrap(), a.map(|x| 2.0 * x - 1.0)),
            ("add_scalar", t.add_scalar(0.5).unwrap(), a.map(|x| x + 0.5)),
            ("mul_scalar", t.mul_scalar(-3.0).unwrap(), a.map(|x| -3.0 * x)),
            ("powf", t.abs().unwrap().powf(1.5).unwrap(), a.map(|x| x.abs().powf(1.5))),
            ("clamp", t.clamp(-0.5, 0.5).unwrap(), a.map(|x| x.clamp(-0.5, 0.5))),
        ];
        for (name, got, want) in cases {
            prop_assert_eq!(got.dims(), want.dims.as_slice());
            assert_close(&got.to_vec::<f64>().unwrap(), &want.data, 1e-15, name);
        }
    }
}

proptest! {
    /// The fused GeneralRelu map is the two ops it replaces, bit for bit, in f32 on
    /// every layout (contiguous, strided, broadcast views).
    #[test]
    fn shifted_leaky_relu_is_leaky_relu_then_add_scalar(dims in prop::collection::vec(1..40usize, 0..4), seed in any::<u64>(), mode in 0..3u8) {
        let a = values(&dims, seed).map(|v| (v - 1.3) * 3.0);
        let t = strided_tensor(&a, DType::F32, mode);
        let fused = t.shifted_leaky_relu(0.1, -0.4).unwrap().to_vec::<f32>().unwrap();
        let parts = t.leaky_relu(0.1).unwrap().add_scalar(-0.4).unwrap().to_vec::<f32>().unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        prop_assert_eq!(bits(&fused), bits(&parts));
    }
}

#[test]
fn shifted_leaky_relu_rejects_a_nan_slope_on_every_layout() {
    let t = Tensor::from_vec(vec![1.0f32, -2.0, 3.0, -4.0], [2, 2], &Device::Cpu).unwrap();
    for view in [t.clone(), t.transpose(0, 1).unwrap()] {
        let err = view.shifted_leaky_relu(f64::NAN, -0.4).unwrap_err();
        assert!(
            err.to_string().contains("shifted_leaky_relu")
                && err.to_string().contains("slope is NaN"),
            "{err}"
        );
    }
}

#[test]
fn nan_propagates_through_maximum_and_clamp() {
    let dev = Device::Cpu;
    let a = Tensor::from_vec(vec![1.0f32, f32::NAN], [2], &dev).unwrap();
    let b = Tensor::from_vec(vec![f32::NAN, 0.0], [2], &dev).unwrap();
    let m = a.maximum(&b).unwrap().to_vec::<f32>().unwrap();
    assert!(m[0].is_nan() && m[1].is_nan());
    assert!(a.clamp(0.0, 0.5).unwrap().to_vec::<f32>().unwrap()[1].is_nan());
}

#[test]
fn sigmoid_saturates_without_nan() {
    let t = Tensor::from_vec(vec![-1000.0f32, 1000.0], [2], &Device::Cpu).unwrap();
    assert_eq!(
        t.sigmoid().unwrap().to_vec::<f32>().unwrap(),
        vec![0.0, 1.0]
    );
}

// ----- dense permuted layouts (e.g. transposes, batch-minor image batches) -----

/// A tensor with the values of `nd`, stored densely in the dim order `order` (the
/// storage is `nd.permute(order)`, viewed back): dense, and not contiguous unless
/// `order` moves only size-1 dims. `[1, 2, 3, 0]` on `[N, C, H, W]` is batch-minor.
fn stored_in_order(nd: &Nd, order: &[usize], dtype: DType) -> Tensor {
    let mut inverse = vec![0; order.len()];
    for (i, &p) in order.iter().enumerate() {
        inverse[p] = i;
    }
    nd.permute(order)
        .to_tensor(dtype)
        .permute(&inverse)
        .unwrap()
}

/// Asserts that `got` (computed on `input`) has the values of `want` (the same op on
/// contiguous operands) bit for bit, and keeps `input`'s layout: its exact strides
/// when `input` is not contiguous, a contiguous layout when it is.
fn assert_same_in_layout(got: &Tensor, want: &Tensor, input: &Tensor, what: &str) {
    assert_eq!(got.dims(), want.dims(), "{what}: dims");
    if input.is_contiguous() {
        assert!(got.is_contiguous(), "{what}: strides {:?}", got.strides());
    } else {
        assert_eq!(got.strides(), input.strides(), "{what}: strides");
    }
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    if let Some(i) = (0..g.len()).find(|&i| g[i].to_bits() != w[i].to_bits()) {
        panic!("{what}: element {i}: got {}, want {}", g[i], w[i]);
    }
}

type UnOp = (&'static str, fn(&Tensor) -> tensor::Result<Tensor>);

/// Every unary op, on inputs around 0 (log, sqrt and powf take `|x|`).
const UNARY: [UnOp; 17] = [
    ("neg", Tensor::neg),
    ("exp", Tensor::exp),
    ("log", |t: &Tensor| t.abs()?.log()),
    ("sqrt", |t: &Tensor| t.abs()?.sqrt()),
    ("abs", Tensor::abs),
    ("tanh", Tensor::tanh),
    ("sigmoid", Tensor::sigmoid),
    ("relu", Tensor::relu),
    ("square", Tensor::square),
    ("recip", Tensor::recip),
    ("sign", Tensor::sign),
    ("leaky_relu", |t: &Tensor| t.leaky_relu(0.01)),
    ("shifted_leaky_relu", |t: &Tensor| {
        t.shifted_leaky_relu(0.1, -0.4)
    }),
    ("affine", |t: &Tensor| t.affine(2.0, -1.0)),
    ("powf", |t: &Tensor| t.abs()?.powf(1.5)),
    ("powf2", |t: &Tensor| t.powf(2.0)),
    ("clamp", |t: &Tensor| t.clamp(-0.5, 0.5)),
];

/// Runs every unary, binary, comparison and `where_cond` op on `a` and `b` stored in
/// `order`, against the same ops on contiguous tensors.
fn check_ops_in_order(a: &Nd, b: &Nd, order: &[usize]) {
    let mask = a.map(|v| if v > 0.0 { 1.0 } else { 0.0 });
    for dtype in [DType::F32, DType::F64] {
        let (ta, tb) = (
            stored_in_order(a, order, dtype),
            stored_in_order(b, order, dtype),
        );
        let (ca, cb) = (a.to_tensor(dtype), b.to_tensor(dtype));
        for (name, op) in UNARY {
            let what = format!("{name} {dtype:?} {:?} {order:?}", a.dims);
            assert_same_in_layout(&op(&ta).unwrap(), &op(&ca).unwrap(), &ta, &what);
        }
        for (name, op, _) in BINARY {
            let what = format!("{name} {dtype:?} {:?} {order:?}", a.dims);
            assert_same_in_layout(&op(&ta, &tb).unwrap(), &op(&ca, &cb).unwrap(), &ta, &what);
        }
        let tm = stored_in_order(&mask, order, DType::U32);
        let got = tm.where_cond(&ta, &tb).unwrap();
        let want = mask.to_tensor(DType::U32).where_cond(&ca, &cb).unwrap();
        assert_same_in_layout(&got, &want, &ta, "where_cond");
    }
    let (ta, tb) = (
        stored_in_order(a, order, DType::U32),
        stored_in_order(b, order, DType::U32),
    );
    let (ca, cb) = (a.to_tensor(DType::U32), b.to_tensor(DType::U32));
    for (name, op, _) in &BINARY[7..] {
        assert_same_in_layout(&op(&ta, &tb).unwrap(), &op(&ca, &cb).unwrap(), &ta, name);
    }
}

/// Dims and a permutation of them.
fn dims_and_order() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1..6usize, 1..5).prop_flat_map(|dims| {
        let order: Vec<usize> = (0..dims.len()).collect();
        (Just(dims), Just(order).prop_shuffle())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On operands stored densely in one permuted order, every elementwise op gives
    /// the contiguous result bit for bit, stored in that order.
    #[test]
    fn elementwise_ops_keep_a_shared_dense_order((dims, order) in dims_and_order(), seed in any::<u64>()) {
        let a = values(&dims, seed).map(|v| v - 1.3);
        let b = values(&dims, seed ^ 0x5555);
        check_ops_in_order(&a, &b, &order);
    }
}

#[test]
fn batch_minor_tensors_stay_batch_minor_through_elementwise_ops() {
    // [N, C, H, W] stored as [C, H, W, N]; awkward sizes, size-1 dims, and one large
    // enough for the kernels' parallel split.
    for dims in [
        [17, 3, 5, 5],
        [3, 17, 1, 1],
        [1, 3, 17, 1],
        [17, 1, 3, 3],
        [64, 16, 8, 8],
    ] {
        let a = values(&dims, 11).map(|v| v - 1.3);
        let b = values(&dims, 12);
        check_ops_in_order(&a, &b, &[1, 2, 3, 0]);
    }
    let x = stored_in_order(&values(&[17, 3, 5, 5], 1), &[1, 2, 3, 0], DType::F32);
    assert_eq!(x.relu().unwrap().strides(), &[1, 5 * 5 * 17, 5 * 17, 17]);
    // Some channels of it are still dense (at an offset), and keep their strides.
    let channel = x.narrow(1, 1, 2).unwrap();
    let y = channel.exp().unwrap();
    assert_eq!(y.strides(), channel.strides());
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        channel
            .contiguous()
            .unwrap()
            .exp()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    );
}

/// Asserts `got` is a contiguous tensor close to `want`.
fn assert_contiguous_close(got: &Tensor, want: &Nd, what: &str) {
    assert!(got.is_contiguous(), "{what}: strides {:?}", got.strides());
    assert_eq!(got.dims(), want.dims.as_slice(), "{what}: dims");
    assert_close(&got.to_vec_f64().unwrap(), &want.data, 1e-6, what);
}

#[test]
fn elementwise_ops_without_a_shared_dense_order_return_row_major() {
    let dims = [17, 3, 1, 5];
    let (a, b) = (values(&dims, 5).map(|v| v - 1.3), values(&dims, 6));
    let batch_minor = [1, 2, 3, 0];
    for dtype in [DType::F32, DType::F64] {
        let ta = stored_in_order(&a, &batch_minor, dtype);
        // Operands in different dense orders (batch-minor and channels-last), and a
        // contiguous one against a batch-minor one.
        let pairs = [
            (ta.clone(), stored_in_order(&b, &[0, 2, 3, 1], dtype)),
            (a.to_tensor(dtype), stored_in_order(&b, &batch_minor, dtype)),
            (ta.clone(), b.to_tensor(dtype)),
        ];
        for (x, y) in &pairs {
            for (name, op, f) in BINARY {
                assert_contiguous_close(&op(x, y).unwrap(), &naive_binary(&a, &b, f), name);
            }
        }
        // A broadcast bias [C, 1, 1] against a batch-minor [N, C, H, W].
        let bias = values(&[3, 1, 1], 7);
        let got = ta.add(&bias.to_tensor(dtype)).unwrap();
        assert_contiguous_close(&got, &naive_binary(&a, &bias, |x, y| x + y), "bias add");
        // A view with gaps: some images of the batch-minor tensor.
        let gappy = ta.narrow(0, 1, 5).unwrap();
        assert!(gappy.dense_permutation().is_none());
        let want = a.narrow(0, 1, 5).map(|x| x.max(0.0));
        assert_contiguous_close(&gappy.relu().unwrap(), &want, "relu of a narrow");
    }
}
