//! Elementwise ops: binary with broadcasting, scalar-parameter ops, unary maps.

use crate::error::Result;
use crate::op::{BinaryKind, Op, ScalarKind, UnaryKind};
use crate::var::Var;

impl Var {
    fn binary(&self, rhs: &Var, kind: BinaryKind) -> Result<Var> {
        let (a, b) = (self.tensor(), rhs.tensor());
        let out = match kind {
            BinaryKind::Add => a.add(b),
            BinaryKind::Sub => a.sub(b),
            BinaryKind::Mul => a.mul(b),
            BinaryKind::Div => a.div(b),
            BinaryKind::Pow => a.pow(b),
            BinaryKind::Maximum => a.maximum(b),
            BinaryKind::Minimum => a.minimum(b),
        }?;
        Ok(Var::from_op(
            out,
            Op::Binary {
                kind,
                lhs: self.clone(),
                rhs: rhs.clone(),
            },
        ))
    }

    /// `self + rhs` with broadcasting.
    pub fn add(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Add)
    }

    /// `self - rhs` with broadcasting.
    pub fn sub(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Sub)
    }

    /// `self * rhs` with broadcasting.
    pub fn mul(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Mul)
    }

    /// `self / rhs` with broadcasting.
    pub fn div(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Div)
    }

    /// `self ^ rhs` with broadcasting.
    pub fn pow(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Pow)
    }

    /// Elementwise maximum with broadcasting (gradient split evenly at ties).
    pub fn maximum(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Maximum)
    }

    /// Elementwise minimum with broadcasting (gradient split evenly at ties).
    pub fn minimum(&self, rhs: &Var) -> Result<Var> {
        self.binary(rhs, BinaryKind::Minimum)
    }

    fn scalar_op(&self, kind: ScalarKind) -> Result<Var> {
        let x = self.tensor();
        let out = match kind {
            ScalarKind::Add(c) => x.add_scalar(c),
            ScalarKind::Mul(c) => x.mul_scalar(c),
            ScalarKind::Affine { mul, add } => x.affine(mul, add),
            ScalarKind::PowF(p) => x.powf(p),
            ScalarKind::Clamp { min, max } => x.clamp(min, max),
        }?;
        Ok(Var::from_op(
            out,
            Op::Scalar {
                kind,
                input: self.clone(),
            },
        ))
    }

    /// `self + c`.
    pub fn add_scalar(&self, c: f64) -> Result<Var> {
        self.scalar_op(ScalarKind::Add(c))
    }

    /// `self * c`.
    pub fn mul_scalar(&self, c: f64) -> Result<Var> {
        self.scalar_op(ScalarKind::Mul(c))
    }

    /// `self * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Var> {
        self.scalar_op(ScalarKind::Affine { mul, add })
    }

    /// `self ^ p`.
    pub fn powf(&self, p: f64) -> Result<Var> {
        self.scalar_op(ScalarKind::PowF(p))
    }

    /// Clamps into `[min, max]`; the gradient is zero outside.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Var> {
        self.scalar_op(ScalarKind::Clamp { min, max })
    }

    /// Applies a unary op.
    pub fn unary(&self, kind: UnaryKind) -> Result<Var> {
        let out = kind.forward(self.tensor())?;
        Ok(Var::from_op(
            out.clone(),
            Op::Unary {
                kind,
                input: self.clone(),
                output: out,
            },
        ))
    }

    /// `-self`.
    pub fn neg(&self) -> Result<Var> {
        self.unary(UnaryKind::Neg)
    }

    /// `e^self`.
    pub fn exp(&self) -> Result<Var> {
        self.unary(UnaryKind::Exp)
    }

    /// Natural logarithm.
    pub fn log(&self) -> Result<Var> {
        self.unary(UnaryKind::Log)
    }

    /// Square root.
    pub fn sqrt(&self) -> Result<Var> {
        self.unary(UnaryKind::Sqrt)
    }

    /// Absolute value (gradient 0 at 0).
    pub fn abs(&self) -> Result<Var> {
        self.unary(UnaryKind::Abs)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Var> {
        self.unary(UnaryKind::Tanh)
    }

    /// Logistic sigmoid.
    pub fn sigmoid(&self) -> Result<Var> {
        self.unary(UnaryKind::Sigmoid)
    }

    /// Rectified linear unit (gradient 0 at 0).
    pub fn relu(&self) -> Result<Var> {
        self.unary(UnaryKind::Relu)
    }

    /// Leaky ReLU with the given negative slope.
    pub fn leaky_relu(&self, slope: f64) -> Result<Var> {
        self.unary(UnaryKind::LeakyRelu(slope))
    }

    /// `leaky_relu(slope) + shift` as one op: one pass over the data forward (instead
    /// of two) and one node on the tape; the values and gradients are those of the
    /// two ops. This is the lesson's GeneralRelu (`shift = -sub`).
    ///
    /// ```
    /// use autograd::Var;
    /// use tensor::{Device, Tensor};
    /// let x = Var::parameter(Tensor::from_vec(vec![-2.0f64, 3.0], [2], &Device::Cpu)?);
    /// let y = x.shifted_leaky_relu(0.1, -0.4)?;
    /// assert_eq!(y.tensor().to_vec::<f64>()?, vec![-0.2 - 0.4, 3.0 - 0.4]);
    /// y.sum_all()?.backward()?;
    /// assert_eq!(x.grad().unwrap().to_vec::<f64>()?, vec![0.1, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shifted_leaky_relu(&self, slope: f64, shift: f64) -> Result<Var> {
        self.unary(UnaryKind::ShiftedLeakyRelu { slope, shift })
    }

    /// `self^2`.
    pub fn square(&self) -> Result<Var> {
        self.unary(UnaryKind::Square)
    }

    /// `1 / self`.
    pub fn recip(&self) -> Result<Var> {
        self.unary(UnaryKind::Recip)
    }

    /// Selects `on_true` where `mask` (a constant tensor) is nonzero, else `on_false`,
    /// with broadcasting.
    pub fn where_cond(mask: &tensor::Tensor, on_true: &Var, on_false: &Var) -> Result<Var> {
        let out = mask.where_cond(on_true.tensor(), on_false.tensor())?;
        Ok(Var::from_op(
            out,
            Op::Where {
                mask: mask.clone(),
                on_true: on_true.clone(),
                on_false: on_false.clone(),
            },
        ))
    }
}
