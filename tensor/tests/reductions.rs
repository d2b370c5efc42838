//! Reductions over random dim sets, arg-reductions, softmax and `sum_to` against a
//! naive f64 reference, on non-contiguous inputs.

mod common;

use common::{assert_close, indices, strided_tensor, Nd};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

/// Groups the elements of `a` by their index with `reduced` dims zeroed; returns the
/// output dims (keepdim form) and, per output element, its inputs in logical order.
fn groups(a: &Nd, reduced: &[bool]) -> (Vec<usize>, Vec<Vec<f64>>) {
    let keep: Vec<usize> = a
        .dims
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let mut out = vec![Vec::new(); keep.iter().product()];
    for idx in indices(&a.dims) {
        let k: Vec<usize> = idx
            .iter()
            .zip(reduced)
            .map(|(&i, &r)| if r { 0 } else { i })
            .collect();
        out[common::flat_index(&keep, &k)].push(a.get(&idx));
    }
    (keep, out)
}

fn naive_var(xs: &[f64], ddof: usize) -> f64 {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - ddof as f64)
}

fn case() -> impl Strategy<Value = (Vec<usize>, Vec<bool>, bool, u8, u64)> {
    prop::collection::vec(1..6usize, 1..5).prop_flat_map(|dims| {
        let r = dims.len();
        (
            Just(dims),
            prop::collection::vec(any::<bool>(), r).prop_filter("some dim", |v| v.contains(&true)),
            any::<bool>(),
            0..3u8,
            any::<u64>(),
        )
    })
}

fn values(dims: &[usize], seed: u64) -> Nd {
    Nd::from_fn(dims, |i| {
        let h = i.iter().fold(seed | 1, |h, &x| {
            h.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(x as u64)
        });
        ((h >> 33) % 1000) as f64 / 100.0 - 5.0
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn reductions_match_naive((dims, reduced, keepdim, mode, seed) in case()) {
        let a = values(&dims, seed);
        let red_dims: Vec<usize> = (0..dims.len()).filter(|&d| reduced[d]).collect();
        let (keep, groups) = groups(&a, &reduced);
        let out_dims: Vec<usize> = if keepdim {
            keep
        } else {
            dims.iter().zip(&reduced).filter(|(_, &r)| !r).map(|(&d, _)| d).collect()
        };
        type Naive = fn(&[f64]) -> f64;
        let naive: [(&str, Naive); 6] = [
            ("sum", |xs| xs.iter().sum()),
            ("mean", |xs| xs.iter().sum::<f64>() / xs.len() as f64),
            ("var", |xs| naive_var(xs, 0)),
            ("var_unbiased", |xs| naive_var(xs, 1)),
            ("max", |xs| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            ("min", |xs| xs.iter().copied().fold(f64::INFINITY, f64::min)),
        ];
        for dtype in [DType::F64, DType::F32] {
            let t = strided_tensor(&a, dtype, mode);
            for (name, f) in naive {
                let got = match name {
                    "sum" => t.sum(&red_dims, keepdim),
                    "mean" => t.mean(&red_dims, keepdim),
                    "var" => t.var(&red_dims, false, keepdim),
                    "var_unbiased" => t.var(&red_dims, true, keepdim),
                    "max" => t.max(&red_dims, keepdim),
                    _ => t.min(&red_dims, keepdim),
                }
                .unwrap();
                prop_assert_eq!(got.dims(), out_dims.as_slice(), "{}", name);
                let want: Vec<f64> = groups.iter().map(|g| f(g)).collect();
                // f32 rounds every input (~6e-8 each) before a sum that may cancel to
                // near zero: its error scales with the terms, not the result.
                let rtol = if dtype == DType::F64 { 1e-12 } else { 1e-4 };
                assert_close(&got.to_vec_f64().unwrap(), &want, rtol, name);
            }
        }
    }

    #[test]
    fn all_reductions_match_naive(dims in prop::collection::vec(1..6usize, 0..4), mode in 0..3u8, seed in any::<u64>()) {
        let a = values(&dims, seed);
        let t = strided_tensor(&a, DType::F64, mode);
        let n = a.data.len() as f64;
        let sum: f64 = a.data.iter().sum();
        assert_close(&[t.sum_all().unwrap().item().unwrap()], &[sum], 1e-12, "sum_all");
        assert_close(&[t.mean_all().unwrap().item().unwrap()], &[sum / n], 1e-12, "mean_all");
        let max = a.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = a.data.iter().copied().fold(f64::INFINITY, f64::min);
        prop_assert_eq!(t.max_all().unwrap().item().unwrap(), max);
        prop_assert_eq!(t.min_all().unwrap().item().unwrap(), min);
        prop_assert_eq!(t.sum_all().unwrap().rank(), 0);
    }

    #[test]
    fn argmax_returns_first_extreme(dims in prop::collection::vec(1..6usize, 1..4), dim_seed in any::<usize>(), keepdim in any::<bool>(), mode in 0..3u8, seed in any::<u64>()) {
        // Few distinct values, so ties are common and "first" matters.
        let a = values(&dims, seed).map(|v| (v / 3.0).round());
        let dim = dim_seed % dims.len();
        for dtype in [DType::F32, DType::F64] {
            let t = strided_tensor(&a, dtype, mode);
            for want_max in [true, false] {
                let got = if want_max { t.argmax(dim, keepdim) } else { t.argmin(dim, keepdim) }.unwrap();
                prop_assert_eq!(got.dtype(), DType::U32);
                let mut reduced = vec![false; dims.len()];
                reduced[dim] = true;
                let (keep, gs) = groups(&a, &reduced);
                let want: Vec<u32> = gs.iter().map(|g| {
                    let best = g.iter().copied().fold(g[0], |b, x| if want_max { b.max(x) } else { b.min(x) });
                    g.iter().position(|&x| x == best).unwrap() as u32
                }).collect();
                let want_dims: Vec<usize> = if keepdim { keep } else {
                    dims.iter().enumerate().filter(|&(d, _)| d != dim).map(|(_, &x)| x).collect()
                };
                prop_assert_eq!(got.dims(), want_dims.as_slice());
                prop_assert_eq!(got.to_vec::<u32>().unwrap(), want);
            }
        }
    }

    #[test]
    fn softmax_rows_sum_to_one(dims in prop::collection::vec(1..6usize, 1..4), dim_seed in any::<usize>(), mode in 0..3u8, seed in any::<u64>()) {
        let a = values(&dims, seed).map(|v| v * 50.0); // large logits: needs max subtraction
        let dim = dim_seed % dims.len();
        let t = strided_tensor(&a, DType::F64, mode);
        let sm = t.softmax(dim).unwrap();
        let lsm = t.log_softmax(dim).unwrap();
        // Reference: per slice along `dim`, exp(x - max) / sum.
        let mut reduced = vec![false; dims.len()];
        reduced[dim] = true;
        let want = Nd::from_fn(&dims, |i| {
            let slice: Vec<f64> = (0..dims[dim]).map(|j| { let mut k = i.to_vec(); k[dim] = j; a.get(&k) }).collect();
            let m = slice.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = slice.iter().map(|x| (x - m).exp()).sum();
            (a.get(i) - m).exp() / s
        });
        assert_close(&sm.to_vec::<f64>().unwrap(), &want.data, 1e-12, "softmax");
        let log_want: Vec<f64> = want.data.iter().map(|p| p.ln()).collect();
        let got_log = lsm.to_vec::<f64>().unwrap();
        prop_assert!(got_log.iter().all(|v| v.is_finite()));
        for (g, w) in got_log.iter().zip(&log_want) {
            if w.is_finite() {
                prop_assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "log_softmax {} vs {}", g, w);
            }
        }
        let sums = sm.sum(&[dim], false).unwrap().to_vec::<f64>().unwrap();
        prop_assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
    }

    #[test]
    fn sum_to_undoes_broadcasting(dims in prop::collection::vec(1..5usize, 1..4), ones in prop::collection::vec(any::<bool>(), 4), drop in 0..3usize, seed in any::<u64>()) {
        let target: Vec<usize> = dims.iter().zip(&ones).skip(drop.min(dims.len())).map(|(&d, &o)| if o { 1 } else { d }).collect();
        let g = values(&dims, seed);
        let got = g.to_tensor(DType::F64).sum_to(target.clone()).unwrap();
        prop_assert_eq!(got.dims(), target.as_slice());
        // Reference: each target element sums the grads of every position broadcasting from it.
        let lead = dims.len() - target.len();
        let mut want = vec![0.0; target.iter().product()];
        for idx in indices(&dims) {
            let t: Vec<usize> = target.iter().enumerate().map(|(k, &s)| if s == 1 { 0 } else { idx[k + lead] }).collect();
            want[common::flat_index(&target, &t)] += g.get(&idx);
        }
        assert_close(&got.to_vec::<f64>().unwrap(), &want, 1e-12, "sum_to");
    }
}

#[test]
fn empty_reductions() {
    let dev = Device::Cpu;
    let e = Tensor::zeros([3, 0], DType::F32, &dev).unwrap();
    assert_eq!(
        e.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(),
        vec![0.0; 3]
    );
    assert_eq!(e.sum_all().unwrap().item().unwrap(), 0.0);
    assert_eq!(e.max(&[0], false).unwrap().dims(), &[0]);
    for (name, err) in [
        ("mean", e.mean(&[1], false).unwrap_err()),
        ("var", e.var(&[1], true, false).unwrap_err()),
        ("max", e.max(&[1], false).unwrap_err()),
        ("min_all", e.min_all().unwrap_err()),
        ("argmax", e.argmax(1, false).unwrap_err()),
    ] {
        let msg = err.to_string();
        assert!(msg.starts_with(name), "{msg}");
        assert!(msg.contains("[3, 0]") && msg.contains("empty"), "{msg}");
    }
}

#[test]
fn f32_sums_accumulate_in_f64() {
    // 1 + (2^20 - 1) * 2^-24: a running f32 sum stays at 1.0 (each tiny term is lost
    // to rounding); accumulated in f64 it is 1 + 2^-4 - 2^-24, which rounds to 1.0625.
    let mut v = vec![2f32.powi(-24); 1 << 20];
    v[0] = 1.0;
    let t = Tensor::from_vec(v, [1 << 20], &Device::Cpu).unwrap();
    assert_eq!(t.sum_all().unwrap().item().unwrap(), 1.0625);
    let x = Tensor::from_vec(vec![1e4f32 + 1.0, 1e4 + 2.0, 1e4 + 3.0], [3], &Device::Cpu).unwrap();
    assert_eq!(x.var(&[0], true, false).unwrap().item().unwrap(), 1.0);
}

#[test]
fn max_and_argmax_work_on_u32() {
    let t = Tensor::from_vec(vec![3u32, 9, 2, 9], [2, 2], &Device::Cpu).unwrap();
    assert_eq!(
        t.max(&[1], false).unwrap().to_vec::<u32>().unwrap(),
        vec![9, 9]
    );
    assert_eq!(
        t.argmax(0, false).unwrap().to_vec::<u32>().unwrap(),
        vec![0, 0]
    );
    assert!(t.sum(&[0], false).is_err());
}
