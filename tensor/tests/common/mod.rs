//! A deliberately naive dense n-d array used as the reference in the integration
//! tests: every op is written with plain index arithmetic over `Vec<f64>`, sharing no
//! code with the tensor crate (no strides, no layouts).

#![allow(dead_code)]

use tensor::{DType, Device, Tensor};

/// A row-major dense array of f64.
#[derive(Clone, Debug, PartialEq)]
pub struct Nd {
    pub dims: Vec<usize>,
    pub data: Vec<f64>,
}

/// Every multi-index of `dims` in row-major order.
pub fn indices(dims: &[usize]) -> Vec<Vec<usize>> {
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    for mut flat in 0..n {
        let mut idx = vec![0; dims.len()];
        for d in (0..dims.len()).rev() {
            idx[d] = flat % dims[d];
            flat /= dims[d];
        }
        out.push(idx);
    }
    out
}

/// Row-major flat position of `idx` in `dims`.
pub fn flat_index(dims: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

impl Nd {
    pub fn new(dims: &[usize], data: Vec<f64>) -> Nd {
        assert_eq!(dims.iter().product::<usize>(), data.len());
        Nd {
            dims: dims.to_vec(),
            data,
        }
    }

    /// `0, 1, 2, ...` in row-major order.
    pub fn arange(dims: &[usize]) -> Nd {
        let n = dims.iter().product::<usize>();
        Nd::new(dims, (0..n).map(|v| v as f64).collect())
    }

    pub fn from_fn(dims: &[usize], f: impl Fn(&[usize]) -> f64) -> Nd {
        Nd::new(dims, indices(dims).iter().map(|i| f(i)).collect())
    }

    pub fn get(&self, idx: &[usize]) -> f64 {
        self.data[flat_index(&self.dims, idx)]
    }

    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    pub fn permute(&self, perm: &[usize]) -> Nd {
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims[p]).collect();
        Nd::from_fn(&dims, |i| {
            let mut old = vec![0; self.rank()];
            for (k, &p) in perm.iter().enumerate() {
                old[p] = i[k];
            }
            self.get(&old)
        })
    }

    pub fn transpose(&self, a: usize, b: usize) -> Nd {
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Nd {
        let mut dims = self.dims.clone();
        dims[dim] = len;
        Nd::from_fn(&dims, |i| {
            let mut old = i.to_vec();
            old[dim] += start;
            self.get(&old)
        })
    }

    pub fn select(&self, dim: usize, index: usize) -> Nd {
        let mut dims = self.dims.clone();
        dims.remove(dim);
        Nd::from_fn(&dims, |i| {
            let mut old = i.to_vec();
            old.insert(dim, index);
            self.get(&old)
        })
    }

    /// NumPy broadcast of this array to `dims`.
    pub fn expand(&self, dims: &[usize]) -> Nd {
        let lead = dims.len() - self.rank();
        Nd::from_fn(dims, |i| {
            let old: Vec<usize> = (0..self.rank())
                .map(|d| if self.dims[d] == 1 { 0 } else { i[d + lead] })
                .collect();
            self.get(&old)
        })
    }

    pub fn reshape(&self, dims: &[usize]) -> Nd {
        Nd::new(dims, self.data.clone())
    }

    pub fn map(&self, f: impl Fn(f64) -> f64) -> Nd {
        Nd::new(&self.dims, self.data.iter().map(|&v| f(v)).collect())
    }

    /// A tensor with these values and dims.
    pub fn to_tensor(&self, dtype: DType) -> Tensor {
        let t = Tensor::from_vec(self.data.clone(), self.dims.clone(), &Device::Cpu).unwrap();
        t.to_dtype(dtype).unwrap()
    }
}

/// The NumPy broadcast of two shapes, or `None`.
pub fn broadcast_dims(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| {
        if i < r - s.len() {
            1
        } else {
            s[i - (r - s.len())]
        }
    };
    (0..r)
        .map(|i| {
            let (x, y) = (get(a, i), get(b, i));
            if x == y || y == 1 {
                Some(x)
            } else if x == 1 {
                Some(y)
            } else {
                None
            }
        })
        .collect()
}

/// Makes a tensor with the values of `nd` but a non-contiguous layout: the values
/// are stored transposed (`mode` 1), inside a larger buffer (`mode` 2), or plainly
/// (`mode` 0).
pub fn strided_tensor(nd: &Nd, dtype: DType, mode: u8) -> Tensor {
    match mode % 3 {
        0 => nd.to_tensor(dtype),
        1 => {
            // Store the reversed-dims permutation densely, then permute back.
            let r = nd.rank();
            let rev: Vec<usize> = (0..r).rev().collect();
            nd.permute(&rev).to_tensor(dtype).permute(&rev).unwrap()
        }
        _ => {
            // Embed in a buffer one larger in every dim, then narrow back.
            let big_dims: Vec<usize> = nd.dims.iter().map(|d| d + 1).collect();
            let big = Nd::from_fn(&big_dims, |i| {
                if i.iter().zip(&nd.dims).all(|(a, b)| a >= &1 && a - 1 < *b) {
                    nd.get(&i.iter().map(|a| a - 1).collect::<Vec<_>>())
                } else {
                    f64::NAN
                }
            });
            let mut t = big.to_tensor(dtype);
            for (d, &n) in nd.dims.iter().enumerate() {
                t = t.narrow(d, 1, n).unwrap();
            }
            t
        }
    }
}

/// Asserts two float sequences agree to a relative tolerance (NaN matches NaN).
pub fn assert_close(got: &[f64], want: &[f64], rtol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan())
            || g == w
            || (g - w).abs() <= rtol * (1.0 + w.abs().max(g.abs()));
        assert!(ok, "{what}: element {i}: got {g}, want {w}");
    }
}
