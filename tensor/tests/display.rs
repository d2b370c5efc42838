//! `Display`/`Debug` output: header, nested brackets, alignment, summarising.

use tensor::{DType, Device, Tensor};

fn arange(n: usize, dims: &[usize], dtype: DType) -> Tensor {
    Tensor::arange(0.0, n as f64, 1.0, dtype, &Device::Cpu)
        .unwrap()
        .reshape(dims.to_vec())
        .unwrap()
}

#[test]
fn matrix_and_scalar() {
    let t = arange(6, &[2, 3], DType::F32).affine(1.5, -2.0).unwrap();
    assert_eq!(
        t.to_string(),
        "Tensor[f32; [2, 3]; cpu]\n[[-2.0000, -0.5000,  1.0000],\n [ 2.5000,  4.0000,  5.5000]]"
    );
    assert_eq!(format!("{t:?}"), t.to_string());
    assert_eq!(
        Tensor::scalar(3.25f64).to_string(),
        "Tensor[f64; []; cpu]\n3.2500"
    );
}

#[test]
fn u32_and_three_dims_of_a_view() {
    let t = arange(8, &[2, 2, 2], DType::U32)
        .permute(&[2, 1, 0])
        .unwrap();
    assert_eq!(
        t.to_string(),
        "Tensor[u32; [2, 2, 2]; cpu]\n[[[0, 4],\n  [2, 6]],\n\n [[1, 5],\n  [3, 7]]]"
    );
}

#[test]
fn large_tensors_are_summarised() {
    let t = arange(2000, &[2, 1000], DType::F64);
    let s = t.to_string();
    assert!(s.starts_with("Tensor[f64; [2, 1000]; cpu]\n"), "{s}");
    assert!(
        s.contains("[[   0.0000,    1.0000,    2.0000, ...,  997.0000,  998.0000,  999.0000],"),
        "{s}"
    );
    assert!(
        s.ends_with("[1000.0000, 1001.0000, 1002.0000, ..., 1997.0000, 1998.0000, 1999.0000]]"),
        "{s}"
    );
    let big = arange(20 * 20 * 20, &[20, 20, 20], DType::F32);
    let s = big.to_string();
    // One `...` row inside each of the 6 matrices shown, and one between matrices.
    assert_eq!(s.lines().filter(|l| l.trim() == "...,").count(), 7, "{s}");
    assert_eq!(s.lines().count(), 1 + 6 * 8 - 1 + 2, "{s}");
}

#[test]
fn extreme_magnitudes_use_scientific_notation_and_empty_prints_brackets() {
    let t = Tensor::from_vec(vec![1e-7f64, 2.5e9], [2], &Device::Cpu).unwrap();
    assert_eq!(
        t.to_string(),
        "Tensor[f64; [2]; cpu]\n[1.0000e-7,  2.5000e9]"
    );
    let e = Tensor::zeros([0, 3], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(e.to_string(), "Tensor[f32; [0, 3]; cpu]\n[]");
}
