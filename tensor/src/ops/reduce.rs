//! Reductions over any set of dims (`sum`, `mean`, `var`, `max`, `min`), over all
//! elements (`*_all`), index reductions (`argmax`, `argmin`) and `sum_to`, the
//! reduction that undoes broadcasting.
//!
//! Sums, means and variances accumulate in f64 whatever the element type (variance in
//! two passes, never as `E[x^2] - E[x]^2`), then round once to the element type.

use crate::cpu::alloc_buf;
use crate::cpu::reduce::{arg_extreme, fold_into, max_nan, min_nan};
use crate::dtype::{DType, Element, FloatElement};
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::shape::Shape;
use crate::storage::{CpuStorage, Storage};
use crate::strided::Runs;
use crate::Tensor;

/// Which reduction to run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reduction {
    Sum,
    Mean,
    /// Variance with `ddof` (1 for Bessel's correction) subtracted from the count.
    Var {
        ddof: usize,
    },
    Max,
    Min,
}

/// Where each input element accumulates and what the output looks like.
#[derive(Clone, Debug)]
struct ReducePlan {
    /// Output shape (with or without the reduced dims, per `keepdim`).
    out_shape: Shape,
    /// Per input dim, its stride in the dense output (0 on the reduced dims).
    acc_strides: Vec<usize>,
    /// Number of input elements folded into each output element.
    count: usize,
}

impl Tensor {
    fn reduce_plan(&self, dims: &[usize], keepdim: bool, op: &'static str) -> Result<ReducePlan> {
        if dims.is_empty() {
            return Err(TensorError::invalid(
                op,
                format!(
                    "no dimensions given to reduce over for shape {} (use the `_all` form to reduce every element)",
                    self.shape()
                ),
            ));
        }
        let rank = self.rank();
        let mut reduced = vec![false; rank];
        for &d in dims {
            self.shape().check_dim(d, op)?;
            if std::mem::replace(&mut reduced[d], true) {
                return Err(TensorError::invalid(
                    op,
                    format!("dimension {d} appears more than once in {dims:?}"),
                ));
            }
        }
        Ok(self.plan_for(&reduced, keepdim))
    }

    fn plan_for(&self, reduced: &[bool], keepdim: bool) -> ReducePlan {
        let keep: Vec<usize> = self
            .dims()
            .iter()
            .zip(reduced)
            .map(|(&d, &r)| if r { 1 } else { d })
            .collect();
        let keep = Shape::from(keep);
        let mut acc_strides = keep.contiguous_strides();
        for (s, &r) in acc_strides.iter_mut().zip(reduced) {
            if r {
                *s = 0;
            }
        }
        let count = self
            .dims()
            .iter()
            .zip(reduced)
            .filter(|(_, &r)| r)
            .map(|(&d, _)| d)
            .product();
        let out_shape = if keepdim {
            keep
        } else {
            self.dims()
                .iter()
                .zip(reduced)
                .filter(|(_, &r)| !r)
                .map(|(&d, _)| d)
                .collect::<Vec<_>>()
                .into()
        };
        ReducePlan {
            out_shape,
            acc_strides,
            count,
        }
    }

    fn reduce(&self, plan: ReducePlan, red: Reduction, op: &'static str) -> Result<Tensor> {
        if plan.count == 0 && red != Reduction::Sum {
            return Err(TensorError::invalid(
                op,
                format!(
                    "cannot reduce over an empty dimension (tensor of shape {})",
                    self.shape()
                ),
            ));
        }
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => {
                    CpuStorage::F32(reduce_float(op, v, &self.layout, &plan, red)?)
                }
                CpuStorage::F64(v) => {
                    CpuStorage::F64(reduce_float(op, v, &self.layout, &plan, red)?)
                }
                CpuStorage::U32(v) if matches!(red, Reduction::Max | Reduction::Min) => {
                    let max = red == Reduction::Max;
                    let row = fold_row(max);
                    CpuStorage::U32(reduce_extreme(op, v, &self.layout, &plan, max, row)?)
                }
                CpuStorage::U32(_) => {
                    return Err(TensorError::UnsupportedDType {
                        op,
                        dtype: self.dtype,
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                use kernels::cuda::reduce::Reduction as K;
                let k = match red {
                    Reduction::Sum => K::Sum,
                    Reduction::Mean => K::Mean,
                    Reduction::Var { ddof } => K::Var { ddof },
                    Reduction::Max => K::Max,
                    Reduction::Min => K::Min,
                };
                if plan.out_shape.is_empty() {
                    return Tensor::zeros(plan.out_shape, self.dtype, &self.device);
                }
                // A dim is reduced exactly when its output stride is 0 (kept dims have
                // nonzero strides since the output is not empty).
                let reduced: Vec<bool> = plan.acc_strides.iter().map(|&s| s == 0).collect();
                return crate::cuda::reduce(s, &self.layout, &reduced, k, plan.out_shape, op);
            }
        };
        Ok(Tensor::from_cpu_storage(out, plan.out_shape))
    }

    fn plan_all(&self) -> ReducePlan {
        self.plan_for(&vec![true; self.rank()], false)
    }

    /// Sum over `dims` (float dtypes), keeping them as size 1 if `keepdim`. Summing an
    /// empty dim gives 0.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let t = Tensor::arange(0.0, 6.0, 1.0, DType::F32, &Device::Cpu).unwrap().reshape([2, 3]).unwrap();
    /// assert_eq!(t.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(), vec![3.0, 12.0]);
    /// assert_eq!(t.sum(&[0], true).unwrap().dims(), &[1, 3]);
    /// assert_eq!(
    ///     t.sum(&[2], false).unwrap_err().to_string(),
    ///     "sum: dimension 2 is out of range for a tensor of rank 2"
    /// );
    /// ```
    pub fn sum(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce(
            self.reduce_plan(dims, keepdim, "sum")?,
            Reduction::Sum,
            "sum",
        )
    }

    /// Mean over `dims` (float dtypes). Errors on an empty dim.
    pub fn mean(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce(
            self.reduce_plan(dims, keepdim, "mean")?,
            Reduction::Mean,
            "mean",
        )
    }

    /// Variance over `dims` (float dtypes), divided by `n - 1` if `unbiased` (Bessel's
    /// correction) else by `n`. Computed in f64 in two passes. With `unbiased` and a
    /// single element the result is NaN (0 / 0), as in PyTorch.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], [4], &Device::Cpu).unwrap();
    /// assert_eq!(t.var(&[0], false, false).unwrap().item().unwrap(), 1.25);
    /// assert_eq!(t.var(&[0], true, false).unwrap().item().unwrap(), 5.0 / 3.0);
    /// ```
    pub fn var(&self, dims: &[usize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        let ddof = usize::from(unbiased);
        self.reduce(
            self.reduce_plan(dims, keepdim, "var")?,
            Reduction::Var { ddof },
            "var",
        )
    }

    /// Maximum over `dims` (any dtype; NaN propagates). Errors on an empty dim.
    pub fn max(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce(
            self.reduce_plan(dims, keepdim, "max")?,
            Reduction::Max,
            "max",
        )
    }

    /// Minimum over `dims` (any dtype; NaN propagates). Errors on an empty dim.
    pub fn min(&self, dims: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce(
            self.reduce_plan(dims, keepdim, "min")?,
            Reduction::Min,
            "min",
        )
    }

    /// Sum of every element, as a rank-0 tensor (0 for an empty tensor).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce(self.plan_all(), Reduction::Sum, "sum_all")
    }

    /// Mean of every element, as a rank-0 tensor. Errors on an empty tensor.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.reduce(self.plan_all(), Reduction::Mean, "mean_all")
    }

    /// Maximum of every element, as a rank-0 tensor. Errors on an empty tensor.
    pub fn max_all(&self) -> Result<Tensor> {
        self.reduce(self.plan_all(), Reduction::Max, "max_all")
    }

    /// Minimum of every element, as a rank-0 tensor. Errors on an empty tensor.
    pub fn min_all(&self) -> Result<Tensor> {
        self.reduce(self.plan_all(), Reduction::Min, "min_all")
    }

    /// Index (`u32`) of the first maximum along `dim` (any dtype; a NaN counts as the
    /// maximum). Errors on an empty dim.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![1.0f32, 5.0, 2.0, 7.0, 0.0, 7.0], [2, 3], &Device::Cpu).unwrap();
    /// assert_eq!(t.argmax(1, false).unwrap().to_vec::<u32>().unwrap(), vec![1, 0]);
    /// assert_eq!(t.argmin(0, true).unwrap().dims(), &[1, 3]);
    /// ```
    pub fn argmax(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(dim, keepdim, true, "argmax")
    }

    /// Index (`u32`) of the first minimum along `dim` (a NaN counts as the minimum).
    pub fn argmin(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.arg_reduce(dim, keepdim, false, "argmin")
    }

    fn arg_reduce(&self, dim: usize, keepdim: bool, max: bool, op: &'static str) -> Result<Tensor> {
        self.shape().check_dim(dim, op)?;
        let size = self.dims()[dim];
        if size == 0 {
            return Err(TensorError::invalid(
                op,
                format!(
                    "cannot reduce over empty dimension {dim} of shape {}",
                    self.shape()
                ),
            ));
        }
        if size > u32::MAX as usize {
            return Err(TensorError::invalid(
                op,
                format!("dimension {dim} of size {size} does not fit u32 indices"),
            ));
        }
        let mut reduced = vec![false; self.rank()];
        reduced[dim] = true;
        let plan = self.plan_for(&reduced, keepdim);
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => arg_cpu(op, v, &self.layout, dim, max, &plan)?,
                CpuStorage::F64(v) => arg_cpu(op, v, &self.layout, dim, max, &plan)?,
                CpuStorage::U32(v) => arg_cpu(op, v, &self.layout, dim, max, &plan)?,
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                if plan.out_shape.is_empty() {
                    return Tensor::zeros(plan.out_shape, crate::DType::U32, &self.device);
                }
                return crate::cuda::arg_reduce(s, &self.layout, dim, max, plan.out_shape, op);
            }
        };
        Ok(Tensor::from_typed_vec(out, plan.out_shape))
    }

    /// Sums a tensor of a broadcast shape back down to `shape`: the gradient of
    /// broadcasting `shape` up to `self.shape()`. Errors unless `shape` broadcasts to
    /// `self.shape()`. When nothing needs summing the result is a view of `self`
    /// (sharing storage), like other view-returning ops.
    ///
    /// ```
    /// use tensor::{DType, Device, Tensor};
    /// let g = Tensor::ones([4, 2, 3], DType::F32, &Device::Cpu).unwrap();
    /// let b = g.sum_to([2, 1]).unwrap();
    /// assert_eq!(b.dims(), &[2, 1]);
    /// assert_eq!(b.to_vec::<f32>().unwrap(), vec![12.0, 12.0]);
    /// ```
    pub fn sum_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        const OP: &str = "sum_to";
        let target = shape.into();
        if !target.broadcasts_to(self.shape()) {
            return Err(TensorError::Broadcast {
                op: OP,
                lhs: self.shape().clone(),
                rhs: target,
            });
        }
        let lead = self.rank() - target.rank();
        let dims: Vec<usize> = (0..self.rank())
            .filter(|&i| {
                let size = self.dims()[i];
                size != 1 && (i < lead || target.dims()[i - lead] == 1)
            })
            .collect();
        if dims.is_empty() {
            return self.reshape(target);
        }
        let plan = self.reduce_plan(&dims, true, OP)?;
        self.reduce(plan, Reduction::Sum, OP)?.reshape(target)
    }
}

/// The output of `op` for `plan`: `f` of each f64 accumulator, converted to `T`.
fn finish<T: Element>(
    op: &'static str,
    plan: &ReducePlan,
    acc: impl IntoIterator<Item = f64>,
    f: impl Fn(f64) -> f64,
) -> Result<Vec<T>> {
    let mut out = alloc_buf::with_capacity(op, &plan.out_shape)?;
    out.extend(acc.into_iter().map(|a| T::from_f64(f(a))));
    Ok(out)
}

/// Sum, mean, variance, max or min of a float view, accumulated as the plan says. The
/// output and the f64 accumulators are allocated for `op`.
fn reduce_float<T: FloatElement>(
    op: &'static str,
    v: &[T],
    l: &Layout,
    plan: &ReducePlan,
    red: Reduction,
) -> Result<Vec<T>> {
    let sums = |plan: &ReducePlan| -> Result<Vec<f64>> {
        let mut acc = alloc_buf::zeros::<f64>(op, &plan.out_shape)?;
        // Contiguous runs are summed by the SIMD kernel (also accumulating in f64).
        let add = |a: f64, x: T| a + x.to_f64();
        fold_into(&mut acc, &plan.acc_strides, v, l, add, |a, xs| {
            a + T::k_sum(xs)
        });
        Ok(acc)
    };
    match red {
        Reduction::Sum => finish(op, plan, sums(plan)?, |s| s),
        Reduction::Mean => {
            let n = plan.count as f64;
            finish(op, plan, sums(plan)?, |s| s / n)
        }
        Reduction::Var { ddof } => {
            let n = plan.count as f64;
            // Pass 1: means. Pass 2: sum of squared deviations from them.
            let means = sums(plan)?;
            let mut acc: Vec<(f64, f64)> =
                alloc_buf::scratch(op, &plan.out_shape, DType::F64, means.len())?;
            acc.extend(means.into_iter().map(|s| (s / n, 0.0)));
            let step = |(m, ss): (f64, f64), x: T| {
                let d = x.to_f64() - m;
                (m, ss + d * d)
            };
            fold_into(&mut acc, &plan.acc_strides, v, l, step, |a, xs| {
                xs.iter().fold(a, |a, &x| step(a, x))
            });
            let denom = n - ddof as f64;
            finish(op, plan, acc.into_iter().map(|(_, ss)| ss), |ss| ss / denom)
        }
        // Runs are never empty, so the kernels' empty-slice error cannot occur; the
        // fallback keeps the accumulator unchanged regardless.
        Reduction::Max => reduce_extreme(op, v, l, plan, true, |a, xs| {
            max_nan(a, T::k_max(xs).unwrap_or(a))
        }),
        Reduction::Min => reduce_extreme(op, v, l, plan, false, |a, xs| {
            min_nan(a, T::k_min(xs).unwrap_or(a))
        }),
    }
}

/// Max (or min) of a view of any dtype, NaN-propagating; `row` folds a contiguous
/// run into an accumulator (a SIMD kernel for floats). The output is allocated for
/// `op`.
fn reduce_extreme<T: Element>(
    op: &'static str,
    v: &[T],
    l: &Layout,
    plan: &ReducePlan,
    max: bool,
    row: impl Fn(T, &[T]) -> T,
) -> Result<Vec<T>> {
    let (init, f): (T, fn(T, T) -> T) = if max {
        (T::LOWEST, max_nan)
    } else {
        (T::HIGHEST, min_nan)
    };
    let mut acc = alloc_buf::filled(op, &plan.out_shape, init)?;
    fold_into(&mut acc, &plan.acc_strides, v, l, f, row);
    Ok(acc)
}

/// The plain (non-SIMD) row fold of [`reduce_extreme`], for integer dtypes.
fn fold_row<T: Element>(max: bool) -> impl Fn(T, &[T]) -> T {
    move |a, xs| {
        if max {
            xs.iter().fold(a, |a, &x| max_nan(a, x))
        } else {
            xs.iter().fold(a, |a, &x| min_nan(a, x))
        }
    }
}

/// Arg-max (or arg-min) along `dim` for every position of the other dims, in logical
/// order, into the output of `plan` allocated for `op`.
fn arg_cpu<T: Element>(
    op: &'static str,
    v: &[T],
    l: &Layout,
    dim: usize,
    max: bool,
    plan: &ReducePlan,
) -> Result<Vec<u32>> {
    let size = l.dims()[dim];
    let stride = l.strides()[dim];
    let outer_dims: Vec<usize> = (0..l.dims().len())
        .filter(|&d| d != dim)
        .map(|d| l.dims()[d])
        .collect();
    let outer_strides: Vec<usize> = (0..l.dims().len())
        .filter(|&d| d != dim)
        .map(|d| l.strides()[d])
        .collect();
    let runs = Runs::new(&outer_dims, [&outer_strides], [l.offset()]);
    let len = runs.inner_len();
    let [s] = runs.inner_strides();
    let mut out = alloc_buf::with_capacity(op, &plan.out_shape)?;
    runs.for_each(|[o]| {
        for i in 0..len {
            out.push(arg_extreme(v, o + i * s, stride, size, max));
        }
    });
    Ok(out)
}
