//! Random compositions of view ops agree with the naive reference, and share storage
//! whenever they promise to.

mod common;

use common::Nd;
use proptest::prelude::*;
use tensor::{DType, Tensor};

/// One view op, with raw parameters resolved against the current shape when applied.
#[derive(Clone, Debug)]
enum ViewOp {
    Permute(u64),
    Transpose(usize, usize),
    Narrow(usize, usize, usize),
    Select(usize, usize),
    ExpandNew(usize),
    ExpandOnes(usize),
    Unsqueeze(usize),
    Squeeze,
    ReshapeMerge(usize),
    ReshapeSplit(usize),
    Flatten(usize, usize),
    Contiguous,
}

fn view_op() -> impl Strategy<Value = ViewOp> {
    prop_oneof![
        any::<u64>().prop_map(ViewOp::Permute),
        (0..8usize, 0..8usize).prop_map(|(a, b)| ViewOp::Transpose(a, b)),
        (0..8usize, 0..8usize, 0..8usize).prop_map(|(a, b, c)| ViewOp::Narrow(a, b, c)),
        (0..8usize, 0..8usize).prop_map(|(a, b)| ViewOp::Select(a, b)),
        (1..4usize).prop_map(ViewOp::ExpandNew),
        (2..4usize).prop_map(ViewOp::ExpandOnes),
        (0..8usize).prop_map(ViewOp::Unsqueeze),
        Just(ViewOp::Squeeze),
        (0..8usize).prop_map(ViewOp::ReshapeMerge),
        (0..8usize).prop_map(ViewOp::ReshapeSplit),
        (0..8usize, 0..8usize).prop_map(|(a, b)| ViewOp::Flatten(a, b)),
        Just(ViewOp::Contiguous),
    ]
}

/// Applies `op` to both the tensor and the reference; `None` if it does not apply to
/// the current shape (e.g. a transpose of a scalar). Returns whether the tensor op
/// promised a view (shares storage with its input).
fn apply(op: &ViewOp, t: &Tensor, nd: &Nd) -> Option<(Tensor, Nd, bool)> {
    let r = nd.rank();
    let dims = &nd.dims;
    Some(match *op {
        ViewOp::Permute(seed) => {
            // A permutation from the seed (Fisher-Yates driven by its digits).
            let mut perm: Vec<usize> = (0..r).collect();
            let mut s = seed;
            for i in (1..r).rev() {
                perm.swap(i, (s % (i as u64 + 1)) as usize);
                s /= i as u64 + 1;
            }
            (t.permute(&perm).unwrap(), nd.permute(&perm), true)
        }
        ViewOp::Transpose(a, b) if r > 0 => {
            let (a, b) = (a % r, b % r);
            (t.transpose(a, b).unwrap(), nd.transpose(a, b), true)
        }
        ViewOp::Narrow(d, s, l) if r > 0 => {
            let d = d % r;
            let start = s % (dims[d] + 1);
            let len = l % (dims[d] - start + 1);
            (
                t.narrow(d, start, len).unwrap(),
                nd.narrow(d, start, len),
                true,
            )
        }
        ViewOp::Select(d, i) if r > 0 && dims[d % r] > 0 => {
            let d = d % r;
            let i = i % dims[d];
            (t.select(d, i).unwrap(), nd.select(d, i), true)
        }
        ViewOp::ExpandNew(k) if r < 5 => {
            let mut new = vec![k];
            new.extend_from_slice(dims);
            (t.expand(new.clone()).unwrap(), nd.expand(&new), true)
        }
        ViewOp::ExpandOnes(k) => {
            let new: Vec<usize> = dims.iter().map(|&d| if d == 1 { k } else { d }).collect();
            (t.expand(new.clone()).unwrap(), nd.expand(&new), true)
        }
        ViewOp::Unsqueeze(d) if r < 5 => {
            let d = d % (r + 1);
            let mut new = dims.clone();
            new.insert(d, 1);
            (t.unsqueeze(d).unwrap(), nd.reshape(&new), true)
        }
        ViewOp::Squeeze => {
            let d = dims.iter().position(|&x| x == 1)?;
            let mut new = dims.clone();
            new.remove(d);
            (t.squeeze(d).unwrap(), nd.reshape(&new), true)
        }
        ViewOp::ReshapeMerge(d) if r >= 2 => {
            let d = d % (r - 1);
            let mut new = dims.clone();
            let merged = new[d] * new[d + 1];
            new.splice(d..d + 2, [merged]);
            let out = t.reshape(new.clone()).unwrap();
            let shares = out.same_storage(t);
            (out, nd.reshape(&new), shares)
        }
        ViewOp::ReshapeSplit(d) if r > 0 && r < 5 => {
            let d = d % r;
            let n = dims[d];
            let f = (2..=n).find(|&f| n.is_multiple_of(f))?;
            let mut new = dims.clone();
            new.splice(d..d + 1, [f, n / f]);
            // Splitting one dim is always expressible with strides.
            (t.view(new.clone()).unwrap(), nd.reshape(&new), true)
        }
        ViewOp::Flatten(a, b) if r > 0 => {
            let (a, b) = (a % r, b % r);
            let (s, e) = (a.min(b), a.max(b));
            let mut new: Vec<usize> = dims[..s].to_vec();
            new.push(dims[s..=e].iter().product());
            new.extend_from_slice(&dims[e + 1..]);
            let out = t.flatten(s, e).unwrap();
            let shares = out.same_storage(t);
            (out, nd.reshape(&new), shares)
        }
        ViewOp::Contiguous => {
            let out = t.contiguous().unwrap();
            assert!(out.is_contiguous());
            assert_eq!(out.same_storage(t), t.is_contiguous());
            let shares = out.same_storage(t);
            (out, nd.clone(), shares)
        }
        _ => return None,
    })
}

fn start_dims() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..5usize, 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Views composed at random read the same values as the reference computed by
    /// index arithmetic; while storage is shared, `Layout::blocks` walks exactly those
    /// storage positions.
    #[test]
    fn composed_views_match_reference(dims in start_dims(), ops in prop::collection::vec(view_op(), 1..8)) {
        let nd = Nd::arange(&dims);
        let base = nd.to_tensor(DType::F64);
        let (mut t, mut r) = (base.clone(), nd.clone());
        for op in &ops {
            if let Some((t2, r2, view)) = apply(op, &t, &r) {
                prop_assert_eq!(t2.dims(), r2.dims.as_slice(), "{:?}", op);
                if view {
                    prop_assert!(t2.same_storage(&t), "{:?} should be a view", op);
                }
                t = t2;
                r = r2;
            }
        }
        prop_assert_eq!(t.to_vec::<f64>().unwrap(), r.data.clone());
        if t.same_storage(&base) {
            // Storage holds 0, 1, 2, ...: the block offsets are the values.
            let from_blocks: Vec<f64> = t
                .layout()
                .blocks()
                .flat_map(|(o, l)| (o..o + l).map(|v| v as f64))
                .collect();
            prop_assert_eq!(from_blocks, r.data);
        }
    }

    /// `view` succeeds exactly when `reshape` does not copy, and then they agree.
    #[test]
    fn view_matches_reshape_without_copy(dims in start_dims(), perm_seed in any::<u64>(), narrow in any::<bool>()) {
        let nd = Nd::arange(&dims);
        let mut t = nd.to_tensor(DType::F32);
        if let Some((t2, _, _)) = apply(&ViewOp::Permute(perm_seed), &t, &nd) {
            t = t2;
        }
        if narrow && t.dims()[0] > 1 {
            t = t.narrow(0, 1, t.dims()[0] - 1).unwrap();
        }
        let n = t.elem_count();
        let reshaped = t.reshape([n]).unwrap();
        match t.view([n]) {
            Ok(v) => {
                prop_assert!(reshaped.same_storage(&t));
                prop_assert_eq!(v.to_vec::<f32>().unwrap(), reshaped.to_vec::<f32>().unwrap());
            }
            Err(e) => {
                prop_assert!(!reshaped.same_storage(&t));
                let is_view_error = matches!(e, tensor::TensorError::ViewNotPossible { .. });
                prop_assert!(is_view_error);
            }
        }
    }
}

#[test]
fn contiguous_layouts_are_one_block() {
    let t = Tensor::arange(0.0, 24.0, 1.0, DType::F32, &tensor::Device::Cpu)
        .unwrap()
        .reshape([2, 3, 4])
        .unwrap();
    assert_eq!(t.layout().blocks().collect::<Vec<_>>(), vec![(0, 24)]);
    let n = t.narrow(0, 1, 1).unwrap();
    assert_eq!(n.layout().blocks().collect::<Vec<_>>(), vec![(12, 12)]);
    let cols = t.narrow(2, 1, 2).unwrap();
    assert_eq!(cols.layout().blocks().count(), 6);
    assert!(cols.layout().blocks().all(|(_, l)| l == 2));
}

#[test]
fn select_and_squeeze_remove_dims() {
    let t = Tensor::zeros([2, 1, 3], DType::F32, &tensor::Device::Cpu).unwrap();
    assert_eq!(t.squeeze(1).unwrap().dims(), &[2, 3]);
    assert_eq!(t.select(2, 0).unwrap().dims(), &[2, 1]);
    assert_eq!(t.unsqueeze(3).unwrap().dims(), &[2, 1, 3, 1]);
    assert_eq!(Tensor::scalar(1.0f32).flatten(0, 0).unwrap().dims(), &[1]);
}

#[test]
fn reshape_of_a_batch_minor_column_is_a_view() {
    // [N, 10, 1, 1] stored as [10, 1, 1, N] (a batch-minor 1 x 1 feature map), flattened
    // to [N, 10] for a linear layer.
    for n in [3, 17] {
        let stored = Tensor::arange(0.0, (10 * n) as f64, 1.0, DType::F32, &tensor::Device::Cpu)
            .unwrap()
            .reshape([10, 1, 1, n])
            .unwrap();
        let x = stored.permute(&[3, 0, 1, 2]).unwrap();
        assert_eq!(x.strides(), &[1, n, n, n]);
        let flat = x.reshape([n, 10]).unwrap();
        assert!(flat.same_storage(&stored));
        assert_eq!(flat.strides(), &[1, n]);
        assert_eq!(flat.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        assert!(x.flatten(1, 3).unwrap().same_storage(&stored));
    }
}
