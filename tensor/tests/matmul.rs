//! `matmul` against a naive triple loop: 1-D and 2-D operands, batches with broadcast
//! batch dims, transposed and narrowed operands (used in place by gemm), and operands
//! with no unit stride (copied first).

mod common;

use common::{assert_close, strided_tensor, Nd};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

fn values(dims: &[usize], seed: u64) -> Nd {
    Nd::from_fn(dims, |i| {
        let h = i.iter().fold(seed | 1, |h, &x| {
            h.wrapping_mul(0x9E3779B97F4A7C15)
                .wrapping_add(x as u64 + 7)
        });
        ((h >> 40) % 200) as f64 / 50.0 - 2.0
    })
}

/// torch.matmul by definition, on the naive arrays.
fn naive_matmul(a: &Nd, b: &Nd) -> Nd {
    let a2 = if a.rank() == 1 {
        a.reshape(&[1, a.dims[0]])
    } else {
        a.clone()
    };
    let b2 = if b.rank() == 1 {
        b.reshape(&[b.dims[0], 1])
    } else {
        b.clone()
    };
    let (ra, rb) = (a2.rank(), b2.rank());
    let (m, k, n) = (a2.dims[ra - 2], a2.dims[ra - 1], b2.dims[rb - 1]);
    let batch = common::broadcast_dims(&a2.dims[..ra - 2], &b2.dims[..rb - 2]).unwrap();
    let mut full_a = batch.clone();
    full_a.extend([m, k]);
    let mut full_b = batch.clone();
    full_b.extend([k, n]);
    let (ea, eb) = (a2.expand(&full_a), b2.expand(&full_b));
    let mut out_dims = batch.clone();
    out_dims.extend([m, n]);
    let nb = batch.len();
    let c = Nd::from_fn(&out_dims, |i| {
        let mut ia = i[..nb].to_vec();
        ia.extend([i[nb], 0]);
        let mut ib = i[..nb].to_vec();
        ib.extend([0, i[nb + 1]]);
        (0..k)
            .map(|p| {
                ia[nb + 1] = p;
                ib[nb] = p;
                ea.get(&ia) * eb.get(&ib)
            })
            .sum()
    });
    let mut final_dims = batch;
    if a.rank() > 1 {
        final_dims.push(m);
    }
    if b.rank() > 1 {
        final_dims.push(n);
    }
    c.reshape(&final_dims)
}

/// Shapes for `a @ b`: batch dims (each side may drop some or use 1), then m, k, n;
/// either side may be 1-D.
fn shapes() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    (
        prop::collection::vec(1..4usize, 0..3),
        1..9usize,
        0..9usize,
        1..9usize,
        0..3usize,
        0..3usize,
        prop::collection::vec(any::<bool>(), 3),
        0..6u8,
    )
        .prop_map(|(batch, m, k, n, drop_a, drop_b, ones, one_d)| {
            let side = |drop: usize, flip: bool| -> Vec<usize> {
                batch
                    .iter()
                    .zip(&ones)
                    .skip(drop.min(batch.len()))
                    .map(|(&d, &o)| if o && flip { 1 } else { d })
                    .collect()
            };
            let mut a = side(drop_a, true);
            a.extend([m, k]);
            let mut b = side(drop_b, false);
            b.extend([k, n]);
            match one_d {
                0 => (vec![k], b),
                1 => (a, vec![k]),
                2 => (vec![k], vec![k]),
                _ => (a, b),
            }
        })
}

/// A tensor with `nd`'s values whose last two dims are stored transposed (so gemm
/// reads it with a unit row stride, in place).
fn transposed_storage(nd: &Nd, dtype: DType) -> Tensor {
    let r = nd.rank();
    if r < 2 {
        return nd.to_tensor(dtype);
    }
    nd.transpose(r - 2, r - 1)
        .to_tensor(dtype)
        .transpose(r - 2, r - 1)
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn matmul_matches_naive((da, db) in shapes(), seed in any::<u64>(), la in 0..4u8, lb in 0..4u8) {
        let (a, b) = (values(&da, seed), values(&db, seed ^ 99));
        let want = naive_matmul(&a, &b);
        for dtype in [DType::F64, DType::F32] {
            // Layout 3: last two dims transposed in storage; 0..3: see strided_tensor
            // (1 reverses every dim, so no unit stride on either matrix axis for rank 3+).
            let make = |nd: &Nd, l: u8| if l == 3 { transposed_storage(nd, dtype) } else { strided_tensor(nd, dtype, l) };
            let (ta, tb) = (make(&a, la), make(&b, lb));
            let got = ta.matmul(&tb).unwrap();
            prop_assert_eq!(got.dims(), want.dims.as_slice());
            let rtol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            assert_close(&got.to_vec_f64().unwrap(), &want.data, rtol, "matmul");
        }
    }
}

#[test]
fn linear_layer_batch_folds_into_one_gemm() {
    // [B, T, C] @ [C, N] with a contiguous left operand takes the single tall gemm path;
    // the permuted left operand cannot fold and loops over the batch.
    let a = values(&[3, 5, 7], 1);
    let w = values(&[7, 4], 2);
    let want = naive_matmul(&a, &w);
    let got = a
        .to_tensor(DType::F32)
        .matmul(&w.to_tensor(DType::F32))
        .unwrap();
    assert_close(&got.to_vec_f64().unwrap(), &want.data, 1e-5, "folded");
    let ap = a
        .permute(&[1, 0, 2])
        .to_tensor(DType::F32)
        .permute(&[1, 0, 2])
        .unwrap();
    let got = ap
        .matmul(
            &w.to_tensor(DType::F32)
                .t()
                .unwrap()
                .contiguous()
                .unwrap()
                .t()
                .unwrap(),
        )
        .unwrap();
    assert_close(&got.to_vec_f64().unwrap(), &want.data, 1e-5, "looped");
}

#[test]
fn large_batched_and_narrowed_operands() {
    // Big enough for the packed kernel, with a narrowed (non-contiguous) left operand.
    let a = values(&[2, 70, 90], 3);
    let b = values(&[90, 65], 4);
    let want = naive_matmul(&a.narrow(2, 5, 80), &b.narrow(0, 10, 80));
    let ta = a.to_tensor(DType::F64).narrow(2, 5, 80).unwrap();
    let tb = b.to_tensor(DType::F64).narrow(0, 10, 80).unwrap();
    let got = ta.matmul(&tb).unwrap();
    assert_close(&got.to_vec::<f64>().unwrap(), &want.data, 1e-12, "narrowed");
}

#[test]
fn dot_product_is_rank_zero_and_k_zero_gives_zeros() {
    let dev = Device::Cpu;
    let v = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], &dev).unwrap();
    let d = v.matmul(&v).unwrap();
    assert_eq!(d.rank(), 0);
    assert_eq!(d.item().unwrap(), 14.0);
    let a = Tensor::zeros([2, 0], DType::F32, &dev).unwrap();
    let b = Tensor::zeros([0, 3], DType::F32, &dev).unwrap();
    assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), vec![0.0; 6]);
}
