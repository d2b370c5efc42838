//! Gradients through the fused activation rules keep a dense permuted layout (e.g. an
//! image batch of logical shape `[N, C, H, W]` stored as `[C, H, W, N]`),
//! with the values of the contiguous computation bit for bit; operands in different
//! orders fall back to row-major results with the same values.

use autograd::Var;
use tensor::{DType, Device, Tensor};

/// Deterministic values in about `[-2, 2]`, with exact zeros, of logical shape `dims`
/// stored densely in the dim order `order` (the storage is the permuted tensor,
/// viewed back).
fn stored_in_order(dims: &[usize], order: &[usize], seed: u64, dtype: DType) -> Tensor {
    let n: usize = dims.iter().product();
    let values: Vec<f64> = (0..n as u64)
        .map(|i| ((i * 7 + seed * 13) % 17) as f64 / 4.0 - 2.0)
        .collect();
    let stored_dims: Vec<usize> = order.iter().map(|&d| dims[d]).collect();
    let mut inverse = vec![0; order.len()];
    for (i, &p) in order.iter().enumerate() {
        inverse[p] = i;
    }
    Tensor::from_vec(values, stored_dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .permute(&inverse)
        .unwrap()
}

type Activation = (&'static str, fn(&Var) -> autograd::Result<Var>);

/// The activations with a fused derivative.
const ACTIVATIONS: [Activation; 5] = [
    ("relu", Var::relu),
    ("leaky_relu", |x: &Var| x.leaky_relu(0.1)),
    ("shifted_leaky_relu", |x: &Var| {
        x.shifted_leaky_relu(0.1, -0.4)
    }),
    ("tanh", Var::tanh),
    ("sigmoid", Var::sigmoid),
];

/// The gradient of `<act(x), g>` with respect to `x`, as the backward pass returns it.
fn input_grad(act: fn(&Var) -> autograd::Result<Var>, x: &Tensor, g: &Tensor) -> Tensor {
    let x = Var::parameter(x.clone());
    let grads = act(&x).unwrap().backward_with_grad(g).unwrap();
    grads.get(&x).unwrap().clone()
}

fn assert_same_values(got: &Tensor, want: &Tensor, what: &str) {
    let (g, w) = (got.to_vec_f64().unwrap(), want.to_vec_f64().unwrap());
    assert_eq!(g.len(), w.len(), "{what}: lengths");
    if let Some(i) = (0..g.len()).find(|&i| g[i].to_bits() != w[i].to_bits()) {
        panic!("{what}: element {i}: got {}, want {}", g[i], w[i]);
    }
}

const BATCH_MINOR: [usize; 4] = [1, 2, 3, 0];

#[test]
fn activation_gradients_keep_a_batch_minor_layout() {
    // Awkward sizes, size-1 dims, and one large enough for the kernels' parallel split.
    for dims in [[17, 3, 5, 5], [3, 17, 1, 1], [17, 1, 3, 3], [64, 16, 8, 8]] {
        for dtype in [DType::F32, DType::F64] {
            let x = stored_in_order(&dims, &BATCH_MINOR, 1, dtype);
            let g = stored_in_order(&dims, &BATCH_MINOR, 2, dtype);
            assert!(!g.is_contiguous());
            for (name, act) in ACTIVATIONS {
                let what = format!("{name} {dtype:?} {dims:?}");
                // The forward keeps the layout too.
                let y = act(&Var::constant(x.clone())).unwrap();
                assert_eq!(y.tensor().strides(), x.strides(), "{what}: forward");
                let got = input_grad(act, &x, &g);
                assert_eq!(got.strides(), g.strides(), "{what}: strides");
                let want = input_grad(act, &x.contiguous().unwrap(), &g.contiguous().unwrap());
                assert_same_values(&got, &want, &what);
            }
        }
    }
}

#[test]
fn activation_gradients_in_mismatched_orders_are_row_major() {
    let dims = [17, 3, 1, 5];
    for dtype in [DType::F32, DType::F64] {
        let batch_minor = |seed| stored_in_order(&dims, &BATCH_MINOR, seed, dtype);
        let channels_last = |seed| stored_in_order(&dims, &[0, 2, 3, 1], seed, dtype);
        let plain = |seed| stored_in_order(&dims, &[0, 1, 2, 3], seed, dtype);
        let pairs = [
            (
                "batch-minor x, channels-last g",
                batch_minor(1),
                channels_last(2),
            ),
            ("batch-minor x, contiguous g", batch_minor(1), plain(2)),
            ("contiguous x, batch-minor g", plain(1), batch_minor(2)),
        ];
        for (case, x, g) in &pairs {
            for (name, act) in ACTIVATIONS {
                let what = format!("{name} {dtype:?} {case}");
                let got = input_grad(act, x, g);
                assert!(got.is_contiguous(), "{what}: strides {:?}", got.strides());
                let want = input_grad(act, &x.contiguous().unwrap(), &g.contiguous().unwrap());
                assert_same_values(&got, &want, &what);
            }
        }
    }
}
