//! Elementwise unary ops and ops with a scalar operand (float dtypes).

use crate::cpu::map;
use crate::dtype::FloatElement;
use crate::error::{Result, TensorError};
use crate::layout::Layout;
use crate::ops::DenseOrder;
use crate::storage::{CpuStorage, Storage};
use crate::Tensor;

/// A unary map, with any scalar parameters it needs (kept as f64 and converted to the
/// element type once per op, not per element).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    Abs,
    Tanh,
    Sigmoid,
    Relu,
    Square,
    Recip,
    Sign,
    LeakyRelu(f64),
    Affine { mul: f64, add: f64 },
    ShiftedLeakyRelu { slope: f64, shift: f64 },
    Powf(f64),
    Clamp { min: f64, max: f64 },
}

impl UnaryOp {
    /// The same map as a CUDA kernel op, if there is one (`ShiftedLeakyRelu` has none:
    /// [`Tensor::unary`] runs it on a GPU as its two parts).
    #[cfg(feature = "cuda")]
    fn cuda(self) -> Option<kernels::cuda::elementwise::UnaryOp> {
        use kernels::cuda::elementwise::UnaryOp as K;
        Some(match self {
            UnaryOp::Neg => K::Neg,
            UnaryOp::Exp => K::Exp,
            UnaryOp::Log => K::Log,
            UnaryOp::Sqrt => K::Sqrt,
            UnaryOp::Abs => K::Abs,
            UnaryOp::Tanh => K::Tanh,
            UnaryOp::Sigmoid => K::Sigmoid,
            UnaryOp::Relu => K::Relu,
            UnaryOp::Square => K::Square,
            UnaryOp::Recip => K::Recip,
            UnaryOp::Sign => K::Sign,
            UnaryOp::LeakyRelu(s) => K::LeakyRelu(s),
            UnaryOp::Affine { mul, add } => K::Affine { mul, add },
            UnaryOp::Powf(e) => K::Powf(e),
            UnaryOp::Clamp { min, max } => K::Clamp { min, max },
            UnaryOp::ShiftedLeakyRelu { .. } => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Sign => "sign",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::Affine { .. } => "affine",
            UnaryOp::ShiftedLeakyRelu { .. } => "shifted_leaky_relu",
            UnaryOp::Powf(_) => "powf",
            UnaryOp::Clamp { .. } => "clamp",
        }
    }
}

/// `op` over a strided view, generic over the float type. Ops the SIMD kernels
/// provide run there on contiguous runs; the rest (and strided runs) are plain loops
/// with the `match` outside, so each arm is its own tight, vectorisable loop.
pub(crate) fn unary_cpu<T: FloatElement>(op: UnaryOp, a: &[T], la: &Layout) -> Result<Vec<T>> {
    use kernels::cpu::elementwise::UnaryOp as K;
    let zero = T::ZERO;
    let one = T::ONE;
    let name = op.name();
    match op {
        UnaryOp::Neg => map::unary_runs((name, K::Neg), |x: T| -x, a, la),
        UnaryOp::Exp => map::unary_runs((name, K::Exp), T::exp, a, la),
        UnaryOp::Log => map::unary_runs((name, K::Ln), T::ln, a, la),
        UnaryOp::Sqrt => map::unary_runs((name, K::Sqrt), T::sqrt, a, la),
        UnaryOp::Abs => map::unary_runs((name, K::Abs), T::abs, a, la),
        UnaryOp::Tanh => map::unary_runs((name, K::Tanh), T::tanh, a, la),
        UnaryOp::Sigmoid => {
            map::unary_runs((name, K::Sigmoid), |x: T| one / (one + (-x).exp()), a, la)
        }
        UnaryOp::Relu => map::unary_runs(
            (name, K::Relu),
            |x: T| {
                if x > zero || x.is_nan_value() {
                    x
                } else {
                    zero
                }
            },
            a,
            la,
        ),
        UnaryOp::Square => map::unary_runs((name, K::Square), |x: T| x * x, a, la),
        UnaryOp::Recip => map::unary_runs((name, K::Recip), T::recip, a, la),
        UnaryOp::Sign => map::map1(name, a, la, T::signum0),
        UnaryOp::LeakyRelu(slope) => {
            let s = T::from_f64(slope);
            let f = |x: T| {
                if x >= zero || x.is_nan_value() {
                    x
                } else {
                    x * s
                }
            };
            map::unary_runs((name, K::LeakyRelu { slope }), f, a, la)
        }
        UnaryOp::Affine { mul, add } => {
            let (m, b) = (T::from_f64(mul), T::from_f64(add));
            map::unary_runs((name, K::Affine { mul, add }), |x: T| x * m + b, a, la)
        }
        UnaryOp::ShiftedLeakyRelu { slope, shift } => {
            let (s, b) = (T::from_f64(slope), T::from_f64(shift));
            let f = |x: T| {
                if x >= zero || x.is_nan_value() {
                    x + b
                } else {
                    x * s + b
                }
            };
            map::unary_runs((name, K::ShiftedLeakyRelu { slope, shift }), f, a, la)
        }
        UnaryOp::Powf(e) => {
            let e = T::from_f64(e);
            if e == T::from_f64(2.0) {
                map::unary_runs((name, K::Square), |x: T| x * x, a, la)
            } else {
                map::map1(name, a, la, |x: T| x.powf(e))
            }
        }
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (T::from_f64(min), T::from_f64(max));
            // NaN fails both comparisons and passes through.
            let f = |x: T| {
                if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }
            };
            map::unary_runs((name, K::Clamp { min, max }), f, a, la)
        }
    }
}

impl Tensor {
    fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if let (UnaryOp::ShiftedLeakyRelu { slope, shift }, false) = (op, self.device().is_cpu()) {
            // No fused CUDA kernel: the two ops, with the same values.
            return self.leaky_relu(slope)?.add_scalar(shift);
        }
        // A dense permuted view runs as its contiguous permutation and keeps its strides.
        if let Some(order) = DenseOrder::shared(self, &[]) {
            return order.restore(order.apply(self)?.unary(op)?);
        }
        let guard = self.read_storage();
        let out = match &*guard {
            Storage::Cpu(cpu) => match cpu {
                CpuStorage::F32(v) => CpuStorage::F32(unary_cpu(op, v, &self.layout)?),
                CpuStorage::F64(v) => CpuStorage::F64(unary_cpu(op, v, &self.layout)?),
                CpuStorage::U32(_) => {
                    return Err(TensorError::UnsupportedDType {
                        op: op.name(),
                        dtype: self.dtype,
                    })
                }
            },
            #[cfg(not(feature = "cuda"))]
            Storage::Cuda(s) => match *s {},
            #[cfg(feature = "cuda")]
            Storage::Cuda(s) => {
                let Some(kernel) = op.cuda() else {
                    return Err(TensorError::InvalidArgument {
                        op: op.name(),
                        detail: "no CUDA kernel for this op".into(),
                    });
                };
                return crate::cuda::unary(s, &self.layout, kernel, op.name());
            }
        };
        Ok(Tensor::from_cpu_storage(out, self.shape().clone()))
    }

    /// `-x`.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }

    /// `e^x`.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![0.0f64, 1.0], [2], &Device::Cpu).unwrap();
    /// assert_eq!(t.exp().unwrap().to_vec::<f64>().unwrap(), vec![1.0, std::f64::consts::E]);
    /// let idx = Tensor::from_vec(vec![1u32], [1], &Device::Cpu).unwrap();
    /// assert_eq!(idx.exp().unwrap_err().to_string(), "exp: not supported for dtype u32");
    /// ```
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }

    /// Natural logarithm (`-inf` at 0, NaN below).
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }

    /// Square root (NaN below 0).
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }

    /// `|x|`.
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }

    /// Logistic sigmoid `1 / (1 + e^-x)` (saturates cleanly to 0 and 1).
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }

    /// `max(x, 0)`.
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }

    /// `x * x`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }

    /// `1 / x`.
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }

    /// `-1`, `0` or `1` by sign (NaN stays NaN).
    pub fn sign(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sign)
    }

    /// `x` where positive, `slope * x` elsewhere.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![-2.0f32, 3.0], [2], &Device::Cpu).unwrap();
    /// assert_eq!(t.leaky_relu(0.1).unwrap().to_vec::<f32>().unwrap(), vec![-0.2, 3.0]);
    /// ```
    pub fn leaky_relu(&self, slope: f64) -> Result<Tensor> {
        self.unary(UnaryOp::LeakyRelu(slope))
    }

    /// `leaky_relu(x, slope) + shift` in one pass over the data: the lesson's
    /// GeneralRelu (`shift = -sub`). The same values, bit for bit, as
    /// `leaky_relu(slope)` then `add_scalar(shift)`, with one read and one write of
    /// the tensor instead of two. Errors if `slope` is NaN.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![-2.0f32, 3.0], [2], &Device::Cpu).unwrap();
    /// let y = t.shifted_leaky_relu(0.1, -0.4).unwrap();
    /// assert_eq!(y.to_vec::<f32>().unwrap(), t.leaky_relu(0.1).unwrap().add_scalar(-0.4).unwrap().to_vec::<f32>().unwrap());
    /// ```
    pub fn shifted_leaky_relu(&self, slope: f64, shift: f64) -> Result<Tensor> {
        self.unary(UnaryOp::ShiftedLeakyRelu { slope, shift })
    }

    /// `x + v`.
    pub fn add_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul: 1.0, add: v })
    }

    /// `x * v`.
    pub fn mul_scalar(&self, v: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul: v, add: 0.0 })
    }

    /// `x * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul, add })
    }

    /// `x ^ e`.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(e))
    }

    /// `x` limited to `[min, max]` (NaN passes through). Errors if `min > max` or
    /// either bound is NaN.
    ///
    /// ```
    /// use tensor::{Device, Tensor};
    /// let t = Tensor::from_vec(vec![-2.0f32, 0.5, 3.0], [3], &Device::Cpu).unwrap();
    /// assert_eq!(t.clamp(0.0, 1.0).unwrap().to_vec::<f32>().unwrap(), vec![0.0, 0.5, 1.0]);
    /// assert!(t.clamp(1.0, 0.0).is_err());
    /// ```
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(TensorError::invalid(
                "clamp",
                format!("bounds must satisfy min <= max, got min {min} and max {max}"),
            ));
        }
        self.unary(UnaryOp::Clamp { min, max })
    }
}
