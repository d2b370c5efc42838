//! Elementwise binary ops with NumPy broadcasting: arithmetic (float dtypes),
//! comparisons (any dtype) and `where_cond`.

use crate::cpu::map;
use crate::cpu::reduce::{max_nan, min_nan};
use crate::dtype::{Element, FloatElement};
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::ops::DenseOrder;
use crate::shape::Shape;
use crate::storage::{CpuStorage, ReadSet, Storage};
use crate::Tensor;

/// Arithmetic binary ops (float dtypes only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

impl BinaryOp {
    /// The same op as a CUDA kernel op.
    #[cfg(feature = "cuda")]
    fn cuda(self) -> kernels::cuda::elementwise::BinaryOp {
        use kernels::cuda::elementwise::BinaryOp as K;
        match self {
            BinaryOp::Add => K::Add,
            BinaryOp::Sub => K::Sub,
            BinaryOp::Mul => K::Mul,
            BinaryOp::Div => K::Div,
            BinaryOp::Pow => K::Pow,
            BinaryOp::Maximum => K::Maximum,
            BinaryOp::Minimum => K::Minimum,
        }
    }

    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Comparisons (any dtype; the result has the inputs' dtype, 1 for true, 0 for false).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The same comparison as a CUDA kernel op.
    #[cfg(feature = "cuda")]
    fn cuda(self) -> kernels::cuda::elementwise::CmpOp {
        use kernels::cuda::elementwise::CmpOp as K;
        match self {
            CmpOp::Eq => K::Eq,
            CmpOp::Ne => K::Ne,
            CmpOp::Lt => K::Lt,
            CmpOp::Le => K::Le,
            CmpOp::Gt => K::Gt,
            CmpOp::Ge => K::Ge,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// `op` on two broadcast views, generic over the float type: SIMD kernels on
/// contiguous runs, the same arithmetic element by element on strided ones.
fn binary_cpu<T: FloatElement>(
    op: BinaryOp,
    a: &[T],
    la: &Layout,
    b: &[T],
    lb: &Layout,
) -> Result<Vec<T>> {
    use kernels::cpu::elementwise::BinaryOp as K;
    let (name, a, b) = (op.name(), (a, la), (b, lb));
    match op {
        BinaryOp::Add => map::binary_runs((name, K::Add), |x, y| x + y, a, b),
        BinaryOp::Sub => map::binary_runs((name, K::Sub), |x, y| x - y, a, b),
        BinaryOp::Mul => map::binary_runs((name, K::Mul), |x, y| x * y, a, b),
        BinaryOp::Div => map::binary_runs((name, K::Div), |x, y| x / y, a, b),
        BinaryOp::Pow => map::binary_runs((name, K::Pow), T::powf, a, b),
        BinaryOp::Maximum => map::binary_runs((name, K::Maximum), max_nan, a, b),
        BinaryOp::Minimum => map::binary_runs((name, K::Minimum), min_nan, a, b),
    }
}

/// `op` on two broadcast views, generic over any element type.
fn cmp_cpu<T: Element>(op: CmpOp, a: &[T], la: &Layout, b: &[T], lb: &Layout) -> Result<Vec<T>> {
    let b2t = |c: bool| if c { T::ONE } else { T::ZERO };
    let (name, a, b) = (op.name(), (a, la), (b, lb));
    match op {
        CmpOp::Eq => map::map2(name, a, b, |x, y| b2t(x == y)),
        CmpOp::Ne => map::map2(name, a, b, |x, y| b2t(x != y)),
        CmpOp::Lt => map::map2(name, a, b, |x, y| b2t(x < y)),
        CmpOp::Le => map::map2(name, a, b, |x, y| b2t(x <= y)),
        CmpOp::Gt => map::map2(name, a, b, |x, y| b2t(x > y)),
        CmpOp::Ge => map::map2(name, a, b, |x, y| b2t(x >= y)),
    }
}

impl Tensor {
    /// Checks device and dtype agreement, then broadcasts both layouts to the common
    /// shape.
    pub(crate) fn broadcast_pair(
        &self,
        rhs: &Tensor,
        op: &'static str,
    ) -> Result<(Shape, Layout, Layout)> {
        if self.device != rhs.device {
            return Err(TensorError::DeviceMismatch {
                op,
                lhs: self.device,
                rhs: rhs.device,
            });
        }
        if self.dtype != rhs.dtype {
            return Err(TensorError::DTypeMismatch {
                op,
                lhs: self.dtype,
                rhs: rhs.dtype,
            });
        }
        let shape = Shape::broadcast(self.shape(), rhs.shape(), op)?;
        let la = self.layout.broadcast_as(&shape, op)?;
        let lb = rhs.layout.broadcast_as(&shape, op)?;
        Ok((shape, la, lb))
    }

    fn binary(&self, rhs: &Tensor, op: BinaryOp) -> Result<Tensor> {
        // Operands sharing a dense permuted layout run as their contiguous
        // permutations, and the result keeps their strides.
        if let Some(order) = DenseOrder::shared(self, &[rhs]) {
            return order.restore(order.apply(self)?.binary(&order.apply(rhs)?, op)?);
        }
        let name = op.name();
        let (shape, la, lb) = self.broadcast_pair(rhs, name)?;
        let reads = ReadSet::new(&[self, rhs]);
        let out = match (reads.get(0), reads.get(1)) {
            (Storage::Cpu(a), Storage::Cpu(b)) => match (a, b) {
                (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                    CpuStorage::F32(binary_cpu(op, a, &la, b, &lb)?)
                }
                (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                    CpuStorage::F64(binary_cpu(op, a, &la, b, &lb)?)
                }
                _ => {
                    return Err(TensorError::UnsupportedDType {
                        op: name,
                        dtype: self.dtype,
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            (Storage::Cuda(s), _) | (_, Storage::Cuda(s)) => match *s {},
            #[cfg(feature = "cuda")]
            (Storage::Cuda(a), Storage::Cuda(b)) => {
                return crate::cuda::binary((a, &la), (b, &lb), &shape, Ok(op.cuda()), name)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(_), _) | (_, Storage::Cuda(_)) => {
                return Err(TensorError::DeviceMismatch {
                    op: name,
                    lhs: self.device,
                    rhs: rhs.device,
                })
            }
        };
        Ok(Tensor::from_cpu_storage(out, shape))
    }

    fn compare(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        // As in `binary`: a shared dense permuted layout is kept.
        if let Some(order) = DenseOrder::shared(self, &[rhs]) {
            return order.restore(order.apply(self)?.compare(&order.apply(rhs)?, op)?);
        }
        let name = op.name();
        let (shape, la, lb) = self.broadcast_pair(rhs, name)?;
        let reads = ReadSet::new(&[self, rhs]);
        let out = match (reads.get(0), reads.get(1)) {
            (Storage::Cpu(a), Storage::Cpu(b)) => match (a, b) {
                (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                    CpuStorage::F32(cmp_cpu(op, a, &la, b, &lb)?)
                }
                (CpuStorage::F64(a), CpuStorage::F64(b)) => {
                    CpuStorage::F64(cmp_cpu(op, a, &la, b, &lb)?)
                }
                (CpuStorage::U32(a), CpuStorage::U32(b)) => {
                    CpuStorage::U32(cmp_cpu(op, a, &la, b, &lb)?)
                }
                (a, b) => {
                    return Err(TensorError::DTypeMismatch {
                        op: name,
                        lhs: a.dtype(),
                        rhs: b.dtype(),
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            (Storage::Cuda(s), _) | (_, Storage::Cuda(s)) => match *s {},
            #[cfg(feature = "cuda")]
            (Storage::Cuda(a), Storage::Cuda(b)) => {
                return crate::cuda::binary((a, &la), (b, &lb), &shape, Err(op.cuda()), name)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(_), _) | (_, Storage::Cuda(_)) => {
                return Err(TensorError::DeviceMismatch {
                    op: name,
                    lhs: self.device,
                    rhs: rhs.device,
                })
            }
        };
        Ok(Tensor::from_cpu_storage(out, shape))
    }

    /// `self + rhs`, broadcasting (float dtypes).
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &Device::Cpu).unwrap();
    /// let b = Tensor::from_vec(vec![10.0f32, 20.0], [2], &Device::Cpu).unwrap();
    /// assert_eq!(x.add(&b).unwrap().to_vec::<f32>().unwrap(), vec![11.0, 22.0, 13.0, 24.0]);
    /// let bad = Tensor::from_vec(vec![1.0f32; 3], [3], &Device::Cpu).unwrap();
    /// assert_eq!(
    ///     x.add(&bad).unwrap_err().to_string(),
    ///     "add: shapes [2, 2] and [3] cannot be broadcast together"
    /// );
    /// ```
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Add)
    }

    /// `self - rhs`, broadcasting (float dtypes).
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Sub)
    }

    /// `self * rhs` elementwise, broadcasting (float dtypes).
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Mul)
    }

    /// `self / rhs` elementwise, broadcasting (float dtypes).
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Div)
    }

    /// `self ^ rhs` elementwise (`powf`), broadcasting (float dtypes).
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Pow)
    }

    /// Elementwise maximum, broadcasting (float dtypes). NaN in either input gives NaN.
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Maximum)
    }

    /// Elementwise minimum, broadcasting (float dtypes). NaN in either input gives NaN.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, BinaryOp::Minimum)
    }

    /// `self == rhs` elementwise: 1 where true, 0 where false, in the inputs' dtype.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let a = Tensor::from_vec(vec![1u32, 2, 3], [3], &Device::Cpu).unwrap();
    /// let b = Tensor::scalar(2u32);
    /// assert_eq!(a.eq(&b).unwrap().to_vec::<u32>().unwrap(), vec![0, 1, 0]);
    /// assert_eq!(a.ge(&b).unwrap().to_vec::<u32>().unwrap(), vec![0, 1, 1]);
    /// ```
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Eq)
    }

    /// `self != rhs` elementwise (1/0 in the inputs' dtype).
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ne)
    }

    /// `self < rhs` elementwise (1/0 in the inputs' dtype).
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Lt)
    }

    /// `self <= rhs` elementwise (1/0 in the inputs' dtype).
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Le)
    }

    /// `self > rhs` elementwise (1/0 in the inputs' dtype).
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Gt)
    }

    /// `self >= rhs` elementwise (1/0 in the inputs' dtype).
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ge)
    }

    /// Picks `on_true` where `self` (the mask, any dtype) is nonzero and `on_false`
    /// elsewhere; all three broadcast together. `on_true` and `on_false` must share a
    /// dtype, which the result has.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let mask = Tensor::from_vec(vec![1u32, 0, 1], [3], &Device::Cpu).unwrap();
    /// let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3], &Device::Cpu).unwrap();
    /// let out = mask.where_cond(&a, &Tensor::scalar(0.0f32)).unwrap();
    /// assert_eq!(out.to_vec::<f32>().unwrap(), vec![1.0, 0.0, 3.0]);
    /// ```
    pub fn where_cond(&self, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        const OP: &str = "where_cond";
        // As in `binary`: a dense permuted layout shared by all three is kept.
        if let Some(order) = DenseOrder::shared(self, &[on_true, on_false]) {
            return order.restore(
                order
                    .apply(self)?
                    .where_cond(&order.apply(on_true)?, &order.apply(on_false)?)?,
            );
        }
        let (value_shape, lt, lf) = on_true.broadcast_pair(on_false, OP)?;
        if self.device != on_true.device {
            return Err(TensorError::DeviceMismatch {
                op: OP,
                lhs: self.device,
                rhs: on_true.device,
            });
        }
        let shape = Shape::broadcast(self.shape(), &value_shape, OP)?;
        let lm = self.layout.broadcast_as(&shape, OP)?;
        let lt = lt.broadcast_as(&shape, OP)?;
        let lf = lf.broadcast_as(&shape, OP)?;
        let reads = ReadSet::new(&[self, on_true, on_false]);
        let out = match (reads.get(0), reads.get(1), reads.get(2)) {
            (Storage::Cpu(m), Storage::Cpu(t), Storage::Cpu(f)) => {
                let mask: Vec<u32> = match m {
                    CpuStorage::F32(v) => map::map1(OP, v, &lm, |x| u32::from(x != 0.0))?,
                    CpuStorage::F64(v) => map::map1(OP, v, &lm, |x| u32::from(x != 0.0))?,
                    CpuStorage::U32(v) => map::map1(OP, v, &lm, |x| u32::from(x != 0))?,
                };
                let dense = Layout::contiguous(shape.clone());
                fn pick<T: Element>(
                    mask: (&[u32], &Layout),
                    t: (&[T], &Layout),
                    f: (&[T], &Layout),
                ) -> Result<Vec<T>> {
                    map::map3(OP, mask, t, f, |m, x, y| if m != 0 { x } else { y })
                }
                let mk = (mask.as_slice(), &dense);
                match (t, f) {
                    (CpuStorage::F32(t), CpuStorage::F32(f)) => {
                        CpuStorage::F32(pick(mk, (t, &lt), (f, &lf))?)
                    }
                    (CpuStorage::F64(t), CpuStorage::F64(f)) => {
                        CpuStorage::F64(pick(mk, (t, &lt), (f, &lf))?)
                    }
                    (CpuStorage::U32(t), CpuStorage::U32(f)) => {
                        CpuStorage::U32(pick(mk, (t, &lt), (f, &lf))?)
                    }
                    (t, f) => {
                        return Err(TensorError::DTypeMismatch {
                            op: OP,
                            lhs: t.dtype(),
                            rhs: f.dtype(),
                        })
                    }
                }
            }
            #[cfg(not(feature = "cuda"))]
            (Storage::Cuda(s), _, _) | (_, Storage::Cuda(s), _) | (_, _, Storage::Cuda(s)) => {
                match *s {}
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(m), Storage::Cuda(t), Storage::Cuda(f)) => {
                return crate::cuda::where_cond((m, &lm), (t, &lt), (f, &lf), &shape)
            }
            #[cfg(feature = "cuda")]
            (Storage::Cuda(_), _, _) | (_, Storage::Cuda(_), _) | (_, _, Storage::Cuda(_)) => {
                return Err(TensorError::DeviceMismatch {
                    op: OP,
                    lhs: self.device,
                    rhs: if self.device == on_true.device {
                        on_false.device
                    } else {
                        on_true.device
                    },
                })
            }
        };
        Ok(Tensor::from_cpu_storage(out, shape))
    }
}
