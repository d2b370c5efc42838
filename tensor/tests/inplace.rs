//! In-place ops write through shared storage: every clone and view sees the change;
//! aliasing sources are read before being overwritten; expanded views are refused.

use tensor::{DType, Device, Tensor};

fn arange(n: usize, dims: &[usize]) -> Tensor {
    Tensor::arange(0.0, n as f64, 1.0, DType::F32, &Device::Cpu)
        .unwrap()
        .reshape(dims.to_vec())
        .unwrap()
}

#[test]
fn assign_into_a_transposed_narrow_is_visible_in_the_base() {
    let base = arange(12, &[3, 4]);
    let alias = base.clone();
    // Column 1..3 of every row, seen transposed: shape [2, 3].
    let view = base.narrow(1, 1, 2).unwrap().t().unwrap();
    let src = Tensor::from_vec(vec![-1.0f32, -2.0, -3.0], [3], &Device::Cpu).unwrap();
    view.assign(&src.unsqueeze(0).unwrap()).unwrap(); // broadcast [1, 3] -> [2, 3]
    assert_eq!(
        alias.to_vec::<f32>().unwrap(),
        vec![0.0, -1.0, -1.0, 3.0, 4.0, -2.0, -2.0, 7.0, 8.0, -3.0, -3.0, 11.0]
    );
}

#[test]
fn add_axpy_mul_fill_and_zero_through_views() {
    let p = arange(6, &[2, 3]);
    let row = p.select(0, 1).unwrap();
    row.add_(&Tensor::scalar(10.0f32)).unwrap();
    assert_eq!(
        p.to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 2.0, 13.0, 14.0, 15.0]
    );
    let g = Tensor::ones([2, 3], DType::F32, &Device::Cpu).unwrap();
    p.axpy_(-0.5, &g).unwrap();
    assert_eq!(
        p.to_vec::<f32>().unwrap(),
        vec![-0.5, 0.5, 1.5, 12.5, 13.5, 14.5]
    );
    let col = p.narrow(1, 2, 1).unwrap();
    col.mul_scalar_(2.0).unwrap();
    assert_eq!(
        p.to_vec::<f32>().unwrap(),
        vec![-0.5, 0.5, 3.0, 12.5, 13.5, 29.0]
    );
    p.t().unwrap().narrow(0, 0, 1).unwrap().fill_(7.0).unwrap();
    assert_eq!(
        p.to_vec::<f32>().unwrap(),
        vec![7.0, 0.5, 3.0, 7.0, 13.5, 29.0]
    );
    p.zero_().unwrap();
    assert_eq!(p.to_vec::<f32>().unwrap(), vec![0.0; 6]);
}

#[test]
fn aliasing_sources_are_copied_first() {
    // Shift a row vector left by one using overlapping views of the same storage.
    let t = arange(5, &[5]);
    t.narrow(0, 0, 4)
        .unwrap()
        .assign(&t.narrow(0, 1, 4).unwrap())
        .unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 4.0]);
    // x += x.T on a square matrix reads the original values.
    let m = arange(4, &[2, 2]);
    m.add_(&m.t().unwrap()).unwrap();
    assert_eq!(m.to_vec::<f32>().unwrap(), vec![0.0, 3.0, 3.0, 6.0]);
    // Self-update does not deadlock.
    m.axpy_(1.0, &m).unwrap();
    assert_eq!(m.to_vec::<f32>().unwrap(), vec![0.0, 6.0, 6.0, 12.0]);
}

#[test]
fn writing_into_an_expanded_view_is_an_error() {
    let t = arange(3, &[3]);
    let e = t.expand([2, 3]).unwrap();
    let msg = e.fill_(1.0).unwrap_err().to_string();
    assert_eq!(
        msg,
        "fill_: cannot write in place into an expanded view (shape [2, 3], strides [0, 1]): \
         several elements share one storage slot"
    );
    assert!(e.add_(&t).is_err());
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![0.0, 1.0, 2.0]);
}

#[test]
fn in_place_type_and_shape_errors() {
    let t = arange(6, &[2, 3]);
    let f64s = Tensor::zeros([2, 3], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(
        t.assign(&f64s).unwrap_err().to_string(),
        "assign: dtype mismatch: f32 vs f64"
    );
    assert_eq!(
        t.add_(&arange(2, &[2])).unwrap_err().to_string(),
        "add_: shapes [2] and [2, 3] cannot be broadcast together"
    );
    let idx = Tensor::zeros([2], DType::U32, &Device::Cpu).unwrap();
    assert_eq!(
        idx.mul_scalar_(2.0).unwrap_err().to_string(),
        "mul_scalar_: not supported for dtype u32"
    );
    idx.fill_(3.0).unwrap();
    assert_eq!(idx.to_vec::<u32>().unwrap(), vec![3, 3]);
}

#[test]
fn with_slice_mut_writes_through_and_checks_layout() {
    let t = arange(6, &[2, 3]);
    t.narrow(0, 1, 1)
        .unwrap()
        .with_slice_mut(|s: &mut [f32]| s.iter_mut().for_each(|x| *x = -*x))
        .unwrap();
    assert_eq!(
        t.to_vec::<f32>().unwrap(),
        vec![0.0, 1.0, 2.0, -3.0, -4.0, -5.0]
    );
    let err = t.t().unwrap().with_slice(|s: &[f32]| s.len()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "with_slice: needs a contiguous tensor, got shape [3, 2] with strides [1, 3] (call contiguous() first)"
    );
    assert_eq!(
        t.with_slice(|s: &[f64]| s.len()).unwrap_err().to_string(),
        "with_slice: dtype mismatch: f32 vs f64"
    );
}

#[test]
fn concurrent_crossed_updates_do_not_deadlock() {
    let a = arange(1000, &[1000]);
    let b = arange(1000, &[1000]);
    std::thread::scope(|s| {
        s.spawn(|| (0..200).for_each(|_| a.add_(&b).unwrap()));
        s.spawn(|| (0..200).for_each(|_| b.axpy_(0.0, &a).unwrap()));
    });
    assert_eq!(a.to_vec::<f32>().unwrap()[1], 201.0);
}
