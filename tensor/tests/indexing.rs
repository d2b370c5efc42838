//! `cat`, `stack`, `index_select`, `gather`, `index_add` and `scatter_add` against
//! naive references, on non-contiguous inputs.

mod common;

use common::{assert_close, indices, strided_tensor, Nd};
use proptest::prelude::*;
use tensor::{DType, Device, Tensor};

fn values(dims: &[usize], seed: u64) -> Nd {
    Nd::from_fn(dims, |i| {
        let h = i.iter().fold(seed | 1, |h, &x| {
            h.wrapping_mul(0x9E3779B97F4A7C15)
                .wrapping_add(x as u64 + 3)
        });
        ((h >> 35) % 100) as f64 - 50.0
    })
}

/// A `u32` tensor of the given dims with values below `bound`.
fn index_nd(dims: &[usize], bound: usize, seed: u64) -> Nd {
    values(dims, seed).map(|v| (v + 50.0) % bound as f64)
}

fn dims_and_dim() -> impl Strategy<Value = (Vec<usize>, usize)> {
    prop::collection::vec(1..5usize, 1..4).prop_flat_map(|d| {
        let r = d.len();
        (Just(d), 0..r)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cat_and_stack_match_naive((dims, dim) in dims_and_dim(), lens in prop::collection::vec(0..4usize, 1..4), mode in 0..3u8, seed in any::<u64>()) {
        let parts: Vec<Nd> = lens.iter().enumerate().map(|(i, &l)| {
            let mut d = dims.clone();
            d[dim] = l;
            values(&d, seed + i as u64)
        }).collect();
        let ts: Vec<Tensor> = parts.iter().map(|p| strided_tensor(p, DType::F64, mode)).collect();
        let got = Tensor::cat(&ts, dim).unwrap();
        let mut out_dims = dims.clone();
        out_dims[dim] = lens.iter().sum();
        let want = Nd::from_fn(&out_dims, |i| {
            let mut j = i[dim];
            for p in &parts {
                if j < p.dims[dim] {
                    let mut k = i.to_vec();
                    k[dim] = j;
                    return p.get(&k);
                }
                j -= p.dims[dim];
            }
            unreachable!()
        });
        prop_assert_eq!(got.dims(), want.dims.as_slice());
        prop_assert_eq!(got.to_vec::<f64>().unwrap(), want.data);

        // stack: equal shapes, new dim anywhere in 0..=rank.
        let same: Vec<Nd> = (0..lens.len()).map(|i| values(&dims, seed + 10 + i as u64)).collect();
        let ts: Vec<Tensor> = same.iter().map(|p| strided_tensor(p, DType::F32, mode)).collect();
        let sdim = dim + usize::from(seed % 2 == 0);
        let got = Tensor::stack(&ts, sdim).unwrap();
        let mut sdims = dims.clone();
        sdims.insert(sdim, same.len());
        let want = Nd::from_fn(&sdims, |i| {
            let mut k = i.to_vec();
            let which = k.remove(sdim);
            same[which].get(&k)
        });
        prop_assert_eq!(got.to_vec_f64().unwrap(), want.data);
    }

    #[test]
    fn index_select_and_index_add_match_naive((dims, dim) in dims_and_dim(), n_idx in 0..6usize, mode in 0..3u8, seed in any::<u64>()) {
        let a = values(&dims, seed);
        let idx = index_nd(&[n_idx], dims[dim], seed ^ 1);
        let ti = strided_tensor(&idx, DType::U32, mode);
        let t = strided_tensor(&a, DType::F64, mode);
        let got = t.index_select(dim, &ti).unwrap();
        let mut out_dims = dims.clone();
        out_dims[dim] = n_idx;
        let want = Nd::from_fn(&out_dims, |i| {
            let mut k = i.to_vec();
            k[dim] = idx.data[i[dim]] as usize;
            a.get(&k)
        });
        prop_assert_eq!(got.to_vec::<f64>().unwrap(), want.data);

        // index_add: the backward of index_select; repeated indices accumulate.
        let src = values(&out_dims, seed ^ 2);
        let got = t.index_add(dim, &ti, &strided_tensor(&src, DType::F64, mode)).unwrap();
        let mut want = a.clone();
        for i in indices(&out_dims) {
            let mut k = i.clone();
            k[dim] = idx.data[i[dim]] as usize;
            let f = common::flat_index(&dims, &k);
            want.data[f] += src.get(&i);
        }
        prop_assert_eq!(got.to_vec::<f64>().unwrap(), want.data);
        // Out of place: the input is unchanged.
        prop_assert_eq!(t.to_vec::<f64>().unwrap(), a.data);
    }

    #[test]
    fn gather_and_scatter_add_match_naive((dims, dim) in dims_and_dim(), shrink in prop::collection::vec(0..3usize, 3), extra in 1..4usize, mode in 0..3u8, seed in any::<u64>()) {
        let a = values(&dims, seed);
        // Index dims: at most `dims` outside `dim`, anything (>= 1) along it.
        let idx_dims: Vec<usize> = dims.iter().enumerate().map(|(d, &n)| {
            if d == dim { extra } else { n.saturating_sub(shrink[d]).max(1) }
        }).collect();
        let idx = index_nd(&idx_dims, dims[dim], seed ^ 5);
        let ti = strided_tensor(&idx, DType::U32, mode);
        let t = strided_tensor(&a, DType::F32, mode);
        let got = t.gather(dim, &ti).unwrap();
        let want = Nd::from_fn(&idx_dims, |i| {
            let mut k = i.to_vec();
            k[dim] = idx.get(i) as usize;
            a.get(&k)
        });
        prop_assert_eq!(got.dims(), idx_dims.as_slice());
        prop_assert_eq!(got.to_vec_f64().unwrap(), want.data);

        // scatter_add: the backward of gather, with a source larger than the index.
        let src_dims: Vec<usize> = idx_dims.iter().map(|d| d + 1).collect();
        let src = values(&src_dims, seed ^ 6);
        let got = t.scatter_add(dim, &ti, &strided_tensor(&src, DType::F32, mode)).unwrap();
        let mut want = a.clone();
        for i in indices(&idx_dims) {
            let mut k = i.clone();
            k[dim] = idx.get(&i) as usize;
            let f = common::flat_index(&dims, &k);
            want.data[f] += src.get(&i);
        }
        assert_close(&got.to_vec_f64().unwrap(), &want.data, 1e-6, "scatter_add");
    }
}

#[test]
fn index_errors_name_the_offending_index() {
    let dev = Device::Cpu;
    let t = Tensor::zeros([2, 3], DType::F32, &dev).unwrap();
    let idx = Tensor::from_vec(vec![0u32, 3], [1, 2], &dev).unwrap();
    assert_eq!(
        t.gather(1, &idx).unwrap_err().to_string(),
        "gather: index 3 is out of range for dimension 1 of size 3"
    );
    let src = Tensor::ones([1, 2], DType::F32, &dev).unwrap();
    assert_eq!(
        t.scatter_add(1, &idx, &src).unwrap_err().to_string(),
        "scatter_add: index 3 is out of range for dimension 1 of size 3"
    );
    let rows = Tensor::from_vec(vec![2u32], [1], &dev).unwrap();
    assert_eq!(
        t.index_add(0, &rows, &Tensor::ones([1, 3], DType::F32, &dev).unwrap())
            .unwrap_err()
            .to_string(),
        "index_add: index 2 is out of range for dimension 0 of size 2"
    );
    let float_idx = Tensor::zeros([1], DType::F32, &dev).unwrap();
    assert_eq!(
        t.index_select(0, &float_idx).unwrap_err().to_string(),
        "index_select: dtype mismatch: f32 vs u32"
    );
    assert_eq!(
        t.index_add(0, &Tensor::from_vec(vec![0u32], [1], &dev).unwrap(), &t)
            .unwrap_err()
            .to_string(),
        "index_add: shape mismatch between [1, 3] and [2, 3]"
    );
}

/// A batch gathered from a data set: whole contiguous rows, large enough to be copied on
/// all threads, from a view that starts inside its storage, with repeated indices.
#[test]
fn index_select_of_large_row_blocks_copies_each_chosen_row() {
    let (n, row) = (700usize, 784usize);
    let data: Vec<f32> = (0..n * row).map(|i| i as f32).collect();
    let all = Tensor::from_vec(data, [n, 28, 28], &Device::Cpu).unwrap();
    let view = all.narrow(0, 3, n - 3).unwrap();
    let picks: Vec<u32> = (0..400u32)
        .map(|i| (i * 37 + i / 7) % (n as u32 - 3))
        .collect();
    let idx = Tensor::from_vec(picks.clone(), [picks.len()], &Device::Cpu).unwrap();
    let got = view.index_select(0, &idx).unwrap();
    assert_eq!(got.dims(), &[400, 28, 28]);
    let got = got.to_vec::<f32>().unwrap();
    for (i, &j) in picks.iter().enumerate() {
        let first = ((j as usize + 3) * row) as f32;
        let expect: Vec<f32> = (0..row).map(|k| first + k as f32).collect();
        assert_eq!(
            &got[i * row..][..row],
            expect.as_slice(),
            "row {i} (index {j})"
        );
    }
}
