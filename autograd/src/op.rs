//! The closed set of differentiable operations and their backward rules.
//!
//! Every recorded value holds one [`Op`]: the inputs as [`Var`]s plus the minimal
//! state its backward needs. [`Op::backward`] is the single `match` that turns the
//! gradient of an op's output into gradients of its inputs, so adding an op without a
//! gradient is a compile error, not a silent zero.

use std::sync::Arc;

use tensor::{Shape, Tensor};

use crate::error::Result;
use crate::ops::loss::Reduction;
use crate::var::Var;

/// Elementwise binary ops (NumPy broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a ^ b`
    Pow,
    /// `max(a, b)`; at ties the gradient is split evenly.
    Maximum,
    /// `min(a, b)`; at ties the gradient is split evenly.
    Minimum,
}

/// Elementwise ops with a scalar parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScalarKind {
    /// `x + c`
    Add(f64),
    /// `x * c`
    Mul(f64),
    /// `x * mul + add`
    Affine {
        /// Factor.
        mul: f64,
        /// Offset.
        add: f64,
    },
    /// `x ^ p`
    PowF(f64),
    /// `min(max(x, min), max)`; zero gradient outside `[min, max]`.
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

/// Elementwise unary ops. Each is defined once: its forward, and its derivative from
/// the input `x`, the output `y` (cheaper for exp, tanh, sigmoid, sqrt) and the
/// incoming gradient `g`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryKind {
    /// `-x`
    Neg,
    /// `e^x`; derivative `y`.
    Exp,
    /// `ln x`; derivative `1/x`.
    Log,
    /// `sqrt x`; derivative `1/(2y)`.
    Sqrt,
    /// `|x|`; derivative `sign(x)` (0 at 0).
    Abs,
    /// `tanh x`; derivative `1 - y^2`.
    Tanh,
    /// `1/(1+e^-x)`; derivative `y(1-y)`.
    Sigmoid,
    /// `max(x, 0)`; derivative 1 where `x > 0`, else 0.
    Relu,
    /// `x` where `x > 0`, else `slope * x`.
    LeakyRelu(f64),
    /// `leaky_relu(x, slope) + shift` (the lesson's GeneralRelu with `shift = -sub`);
    /// derivative as `LeakyRelu`'s.
    ShiftedLeakyRelu {
        /// Multiplier of negative inputs.
        slope: f64,
        /// Added to every output.
        shift: f64,
    },
    /// `x^2`; derivative `2x`.
    Square,
    /// `1/x`; derivative `-y^2`.
    Recip,
}

impl UnaryKind {
    /// The op's name in errors and graph dumps.
    pub fn name(self) -> &'static str {
        match self {
            UnaryKind::Neg => "neg",
            UnaryKind::Exp => "exp",
            UnaryKind::Log => "log",
            UnaryKind::Sqrt => "sqrt",
            UnaryKind::Abs => "abs",
            UnaryKind::Tanh => "tanh",
            UnaryKind::Sigmoid => "sigmoid",
            UnaryKind::Relu => "relu",
            UnaryKind::LeakyRelu(_) => "leaky_relu",
            UnaryKind::ShiftedLeakyRelu { .. } => "shifted_leaky_relu",
            UnaryKind::Square => "square",
            UnaryKind::Recip => "recip",
        }
    }

    /// Computes the op on a tensor.
    pub fn forward(self, x: &Tensor) -> tensor::Result<Tensor> {
        match self {
            UnaryKind::Neg => x.neg(),
            UnaryKind::Exp => x.exp(),
            UnaryKind::Log => x.log(),
            UnaryKind::Sqrt => x.sqrt(),
            UnaryKind::Abs => x.abs(),
            UnaryKind::Tanh => x.tanh(),
            UnaryKind::Sigmoid => x.sigmoid(),
            UnaryKind::Relu => x.relu(),
            UnaryKind::LeakyRelu(slope) => x.leaky_relu(slope),
            UnaryKind::ShiftedLeakyRelu { slope, shift } => x.shifted_leaky_relu(slope, shift),
            UnaryKind::Square => x.square(),
            UnaryKind::Recip => x.recip(),
        }
    }

    /// The gradient with respect to `x`, given `y = f(x)` and the output gradient `g`.
    pub fn backward(self, x: &Tensor, y: &Tensor, g: &Tensor) -> tensor::Result<Tensor> {
        match self {
            UnaryKind::Neg => g.neg(),
            UnaryKind::Exp => g.mul(y),
            UnaryKind::Log => g.div(x),
            UnaryKind::Sqrt => g.div(y)?.mul_scalar(0.5),
            UnaryKind::Abs => g.mul(&x.sign()?),
            UnaryKind::Tanh => g.mul(&y.square()?.affine(-1.0, 1.0)?),
            UnaryKind::Sigmoid => g.mul(&y.mul(&y.affine(-1.0, 1.0)?)?),
            // sign(x).relu() is 1 where x > 0 and 0 elsewhere (including x = 0).
            UnaryKind::Relu => g.mul(&x.sign()?.relu()?),
            UnaryKind::LeakyRelu(slope) | UnaryKind::ShiftedLeakyRelu { slope, .. } => {
                g.mul(&x.sign()?.relu()?.affine(1.0 - slope, slope)?)
            }
            UnaryKind::Square => g.mul(x)?.mul_scalar(2.0),
            UnaryKind::Recip => g.mul(&y.square()?)?.neg(),
        }
    }
}

/// A user-defined differentiable op: the extension point for fused kernels that live
/// outside this crate. `backward` receives the op's inputs, its output and the output
/// gradient, and returns one gradient (or `None`) per input, in order.
pub trait CustomBackward: Send + Sync {
    /// The op's name in errors and graph dumps.
    fn name(&self) -> &'static str;
    /// Gradients of the inputs; each must have its input's shape.
    fn backward(
        &self,
        inputs: &[Var],
        output: &Tensor,
        grad: &Tensor,
    ) -> Result<Vec<Option<Tensor>>>;
}

/// One recorded operation: inputs plus the saved state of its backward.
#[derive(Clone)]
pub enum Op {
    /// Elementwise binary op with broadcasting.
    Binary {
        /// Which op.
        kind: BinaryKind,
        /// Left operand.
        lhs: Var,
        /// Right operand.
        rhs: Var,
    },
    /// Elementwise op with a scalar parameter.
    Scalar {
        /// Which op.
        kind: ScalarKind,
        /// Operand.
        input: Var,
    },
    /// Elementwise unary op.
    Unary {
        /// Which op.
        kind: UnaryKind,
        /// Operand.
        input: Var,
        /// Saved output (several derivatives are cheapest from it).
        output: Tensor,
    },
    /// `mask ? on_true : on_false` with broadcasting; the mask gets no gradient.
    Where {
        /// Nonzero selects `on_true`.
        mask: Tensor,
        /// Values where the mask is nonzero.
        on_true: Var,
        /// Values where the mask is zero.
        on_false: Var,
    },
    /// Sum over `dims`.
    Sum {
        /// Operand.
        input: Var,
        /// Reduced dims (of the input).
        dims: Vec<usize>,
        /// Whether reduced dims were kept with size 1.
        keepdim: bool,
    },
    /// Mean over `dims`.
    Mean {
        /// Operand.
        input: Var,
        /// Reduced dims.
        dims: Vec<usize>,
        /// Whether reduced dims were kept.
        keepdim: bool,
    },
    /// Variance over `dims`.
    Variance {
        /// Operand.
        input: Var,
        /// Reduced dims.
        dims: Vec<usize>,
        /// Bessel's correction (divide by n - 1).
        unbiased: bool,
        /// Whether reduced dims were kept.
        keepdim: bool,
    },
    /// Max or min over `dims`; the gradient is shared evenly among ties.
    Extremum {
        /// Operand.
        input: Var,
        /// Reduced dims.
        dims: Vec<usize>,
        /// Whether reduced dims were kept.
        keepdim: bool,
        /// The result with reduced dims kept (size 1), to find the arg positions.
        output_keepdim: Tensor,
    },
    /// Sum of all elements.
    SumAll {
        /// Operand.
        input: Var,
    },
    /// Mean of all elements.
    MeanAll {
        /// Operand.
        input: Var,
    },
    /// Any shape change that keeps element order (reshape, view, flatten, squeeze,
    /// unsqueeze, contiguous): the gradient is reshaped back.
    Reshape {
        /// Operand.
        input: Var,
    },
    /// Permutation of dims (also transpose).
    Permute {
        /// Operand.
        input: Var,
        /// The permutation applied.
        dims: Vec<usize>,
    },
    /// `narrow(dim, start, len)`.
    Narrow {
        /// Operand.
        input: Var,
        /// Narrowed dim.
        dim: usize,
        /// First kept index.
        start: usize,
    },
    /// `select(dim, index)`.
    Select {
        /// Operand.
        input: Var,
        /// Removed dim.
        dim: usize,
        /// Selected index.
        index: usize,
    },
    /// Broadcast to a larger shape; the gradient is summed back.
    Expand {
        /// Operand.
        input: Var,
    },
    /// Matrix product of operands of rank >= 2 (batched, broadcast batch dims).
    Matmul {
        /// Left operand.
        lhs: Var,
        /// Right operand.
        rhs: Var,
    },
    /// Softmax along `dim`.
    Softmax {
        /// Operand.
        input: Var,
        /// Normalised dim.
        dim: usize,
        /// Saved output.
        output: Tensor,
    },
    /// Log-softmax along `dim`.
    LogSoftmax {
        /// Operand.
        input: Var,
        /// Normalised dim.
        dim: usize,
        /// Saved output.
        output: Tensor,
    },
    /// Concatenation along `dim`.
    Cat {
        /// Operands.
        inputs: Vec<Var>,
        /// Joined dim.
        dim: usize,
    },
    /// Stacking along a new `dim`.
    Stack {
        /// Operands.
        inputs: Vec<Var>,
        /// New dim.
        dim: usize,
    },
    /// `index_select(dim, indices)` (also embedding lookup).
    IndexSelect {
        /// Operand.
        input: Var,
        /// Indexed dim.
        dim: usize,
        /// U32 indices.
        indices: Tensor,
    },
    /// `gather(dim, index)`.
    Gather {
        /// Operand.
        input: Var,
        /// Gathered dim.
        dim: usize,
        /// U32 index, same rank as the input.
        index: Tensor,
    },
    /// Fused log-softmax + negative log-likelihood over class indices.
    CrossEntropy {
        /// Logits, shape `[N, C]`.
        logits: Var,
        /// Class indices, U32 `[N]`.
        targets: Tensor,
        /// How per-row losses were combined.
        reduction: Reduction,
        /// Saved log-softmax of the logits.
        log_probs: Tensor,
    },
    /// Binary cross-entropy on logits (a sigmoid per element).
    BceWithLogits {
        /// Logits.
        logits: Var,
        /// Targets in [0, 1], same shape.
        targets: Var,
        /// How per-element losses were combined.
        reduction: Reduction,
    },
    /// Mean squared error.
    Mse {
        /// Predictions.
        pred: Var,
        /// Targets, same shape.
        target: Var,
        /// How per-element losses were combined.
        reduction: Reduction,
    },
    /// 2-d convolution through the kernels crate.
    Conv2d {
        /// Input `[N, C_in, H, W]`.
        input: Var,
        /// Weight `[C_out, C_in / groups, kH, kW]`.
        weight: Var,
        /// Optional bias `[C_out]`.
        bias: Option<Var>,
        /// The validated geometry.
        shape: kernels::cpu::conv2d::Conv2dShape,
        /// For `relu(conv2d(..))` fused into this op ([`Var::conv2d_relu`]): the
        /// ReLU's mask (one bit per output value that passed, see
        /// [`kernels::cpu::conv2d::relu_mask_len`]), which gates the gradient.
        relu_mask: Option<std::sync::Arc<[u16]>>,
    },
    /// Batch or group normalisation through the kernels crate.
    Norm {
        /// Which normalisation, with its geometry.
        kind: crate::ops::norm::NormKind,
        /// Input `[N, C, ...]`.
        input: Var,
        /// Optional per-channel scale `[C]`.
        gamma: Option<Var>,
        /// Optional per-channel shift `[C]`.
        beta: Option<Var>,
        /// Saved per-group mean (running mean in evaluation mode).
        mean: Tensor,
        /// Saved per-group `1 / sqrt(var + eps)`.
        invstd: Tensor,
    },
    /// A user-defined op.
    Custom {
        /// Operands.
        inputs: Vec<Var>,
        /// Its backward rule.
        rule: Arc<dyn CustomBackward>,
    },
}

impl Op {
    /// The op's name in errors and graph dumps.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Binary { kind, .. } => match kind {
                BinaryKind::Add => "add",
                BinaryKind::Sub => "sub",
                BinaryKind::Mul => "mul",
                BinaryKind::Div => "div",
                BinaryKind::Pow => "pow",
                BinaryKind::Maximum => "maximum",
                BinaryKind::Minimum => "minimum",
            },
            Op::Scalar { kind, .. } => match kind {
                ScalarKind::Add(_) => "add_scalar",
                ScalarKind::Mul(_) => "mul_scalar",
                ScalarKind::Affine { .. } => "affine",
                ScalarKind::PowF(_) => "powf",
                ScalarKind::Clamp { .. } => "clamp",
            },
            Op::Unary { kind, .. } => kind.name(),
            Op::Where { .. } => "where_cond",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::Variance { .. } => "var",
            Op::Extremum { .. } => "max/min",
            Op::SumAll { .. } => "sum_all",
            Op::MeanAll { .. } => "mean_all",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Narrow { .. } => "narrow",
            Op::Select { .. } => "select",
            Op::Expand { .. } => "expand",
            Op::Matmul { .. } => "matmul",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::Cat { .. } => "cat",
            Op::Stack { .. } => "stack",
            Op::IndexSelect { .. } => "index_select",
            Op::Gather { .. } => "gather",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::BceWithLogits { .. } => "binary_cross_entropy_with_logits",
            Op::Mse { .. } => "mse",
            Op::Conv2d {
                relu_mask: None, ..
            } => "conv2d",
            Op::Conv2d {
                relu_mask: Some(_), ..
            } => "conv2d_relu",
            Op::Norm { kind, .. } => match kind {
                crate::ops::norm::NormKind::BatchTrain(_) => "batch_norm",
                crate::ops::norm::NormKind::BatchEval(_) => "batch_norm_eval",
                crate::ops::norm::NormKind::Group(_) => "group_norm",
            },
            Op::Custom { rule, .. } => rule.name(),
        }
    }

    /// The op's inputs, in order.
    pub fn inputs(&self) -> Vec<&Var> {
        match self {
            Op::Norm {
                input, gamma, beta, ..
            } => {
                let mut v = vec![input];
                v.extend(gamma.as_ref());
                v.extend(beta.as_ref());
                v
            }
            Op::Conv2d {
                input,
                weight,
                bias,
                ..
            } => {
                let mut v = vec![input, weight];
                v.extend(bias.as_ref());
                v
            }
            Op::Binary { lhs, rhs, .. } | Op::Matmul { lhs, rhs } => vec![lhs, rhs],
            Op::Where {
                on_true, on_false, ..
            } => vec![on_true, on_false],
            Op::BceWithLogits {
                logits: a,
                targets: b,
                ..
            }
            | Op::Mse {
                pred: a, target: b, ..
            } => {
                vec![a, b]
            }
            Op::Cat { inputs, .. } | Op::Stack { inputs, .. } | Op::Custom { inputs, .. } => {
                inputs.iter().collect()
            }
            Op::Scalar { input, .. }
            | Op::Unary { input, .. }
            | Op::Sum { input, .. }
            | Op::Mean { input, .. }
            | Op::Variance { input, .. }
            | Op::Extremum { input, .. }
            | Op::SumAll { input }
            | Op::MeanAll { input }
            | Op::Reshape { input }
            | Op::Permute { input, .. }
            | Op::Narrow { input, .. }
            | Op::Select { input, .. }
            | Op::Expand { input }
            | Op::Softmax { input, .. }
            | Op::LogSoftmax { input, .. }
            | Op::IndexSelect { input, .. }
            | Op::Gather { input, .. }
            | Op::CrossEntropy { logits: input, .. } => vec![input],
        }
    }

    /// Consumes the op, returning its inputs (used to free long chains iteratively).
    pub(crate) fn into_inputs(self) -> Vec<Var> {
        match self {
            Op::Norm {
                input, gamma, beta, ..
            } => {
                let mut v = vec![input];
                v.extend(gamma);
                v.extend(beta);
                v
            }
            Op::Conv2d {
                input,
                weight,
                bias,
                ..
            } => {
                let mut v = vec![input, weight];
                v.extend(bias);
                v
            }
            Op::Binary { lhs, rhs, .. } | Op::Matmul { lhs, rhs } => vec![lhs, rhs],
            Op::Where {
                on_true, on_false, ..
            } => vec![on_true, on_false],
            Op::BceWithLogits {
                logits: a,
                targets: b,
                ..
            }
            | Op::Mse {
                pred: a, target: b, ..
            } => {
                vec![a, b]
            }
            Op::Cat { inputs, .. } | Op::Stack { inputs, .. } | Op::Custom { inputs, .. } => inputs,
            Op::Scalar { input, .. }
            | Op::Unary { input, .. }
            | Op::Sum { input, .. }
            | Op::Mean { input, .. }
            | Op::Variance { input, .. }
            | Op::Extremum { input, .. }
            | Op::SumAll { input }
            | Op::MeanAll { input }
            | Op::Reshape { input }
            | Op::Permute { input, .. }
            | Op::Narrow { input, .. }
            | Op::Select { input, .. }
            | Op::Expand { input }
            | Op::Softmax { input, .. }
            | Op::LogSoftmax { input, .. }
            | Op::IndexSelect { input, .. }
            | Op::Gather { input, .. }
            | Op::CrossEntropy { logits: input, .. } => vec![input],
        }
    }

    /// Gradients of the inputs that require one, given the op's output and the
    /// gradient of the output. Each returned gradient has its input's shape.
    pub fn backward(&self, output: &Tensor, g: &Tensor) -> Result<Vec<(&Var, Tensor)>> {
        let mut out: Vec<(&Var, Tensor)> = Vec::with_capacity(2);
        // Computes a gradient only for inputs that need one.
        macro_rules! grad_for {
            ($var:expr, $value:expr) => {
                if $var.requires_grad() {
                    out.push(($var, $value));
                }
            };
        }
        match self {
            Op::Binary { kind, lhs, rhs } => {
                let (a, b) = (lhs.tensor(), rhs.tensor());
                match kind {
                    BinaryKind::Add => {
                        grad_for!(lhs, g.sum_to(a.shape().clone())?);
                        grad_for!(rhs, g.sum_to(b.shape().clone())?);
                    }
                    BinaryKind::Sub => {
                        grad_for!(lhs, g.sum_to(a.shape().clone())?);
                        grad_for!(rhs, g.neg()?.sum_to(b.shape().clone())?);
                    }
                    BinaryKind::Mul => {
                        grad_for!(lhs, g.mul(b)?.sum_to(a.shape().clone())?);
                        grad_for!(rhs, g.mul(a)?.sum_to(b.shape().clone())?);
                    }
                    BinaryKind::Div => {
                        grad_for!(lhs, g.div(b)?.sum_to(a.shape().clone())?);
                        grad_for!(
                            rhs,
                            g.mul(output)?.div(b)?.neg()?.sum_to(b.shape().clone())?
                        );
                    }
                    BinaryKind::Pow => {
                        // d/da a^b = b a^(b-1) = b * out / a; written with pow to stay
                        // finite at a = 0 for b >= 1.
                        grad_for!(
                            lhs,
                            g.mul(&b.mul(&a.pow(&b.add_scalar(-1.0)?)?)?)?
                                .sum_to(a.shape().clone())?
                        );
                        // d/db a^b = a^b ln a, taken as 0 where a <= 0 (as the limit for
                        // a -> 0+ with b > 0; undefined for a < 0).
                        if rhs.requires_grad() {
                            let positive = a.gt(&zeros_scalar(a)?)?;
                            let safe_a = positive.where_cond(a, &ones_scalar(a)?)?;
                            let grad = g.mul(output)?.mul(&safe_a.log()?)?.mul(&positive)?;
                            out.push((rhs, grad.sum_to(b.shape().clone())?));
                        }
                    }
                    BinaryKind::Maximum | BinaryKind::Minimum => {
                        // share: 1 where lhs wins, 0.5 at ties, 0 where rhs wins.
                        let wins = if *kind == BinaryKind::Maximum {
                            a.gt(b)?
                        } else {
                            a.lt(b)?
                        };
                        let share = wins.add(&a.eq(b)?.mul_scalar(0.5)?)?;
                        grad_for!(lhs, g.mul(&share)?.sum_to(a.shape().clone())?);
                        grad_for!(
                            rhs,
                            g.mul(&share.affine(-1.0, 1.0)?)?
                                .sum_to(b.shape().clone())?
                        );
                    }
                }
            }
            Op::Scalar { kind, input } => {
                let x = input.tensor();
                let grad = match *kind {
                    ScalarKind::Add(_) => g.clone(),
                    ScalarKind::Mul(c) => g.mul_scalar(c)?,
                    ScalarKind::Affine { mul, .. } => g.mul_scalar(mul)?,
                    ScalarKind::PowF(p) => g.mul(&x.powf(p - 1.0)?)?.mul_scalar(p)?,
                    ScalarKind::Clamp { min, max } => {
                        let inside = x
                            .ge(&full_scalar(x, min)?)?
                            .mul(&x.le(&full_scalar(x, max)?)?)?;
                        g.mul(&inside)?
                    }
                };
                grad_for!(input, grad);
            }
            Op::Unary {
                kind,
                input,
                output,
            } => {
                if input.requires_grad() {
                    let fused =
                        crate::ops::fused::activation_backward(*kind, input.tensor(), output, g)?;
                    let grad = match fused {
                        Some(grad) => grad,
                        None => kind.backward(input.tensor(), output, g)?,
                    };
                    out.push((input, grad));
                }
            }
            Op::Where {
                mask,
                on_true,
                on_false,
            } => {
                let zero = zeros_scalar(g)?;
                grad_for!(
                    on_true,
                    mask.where_cond(g, &zero)?.sum_to(on_true.shape().clone())?
                );
                grad_for!(
                    on_false,
                    mask.where_cond(&zero, g)?
                        .sum_to(on_false.shape().clone())?
                );
            }
            Op::Sum {
                input,
                dims,
                keepdim,
            } => {
                grad_for!(input, expand_reduced(g, input.shape(), dims, *keepdim)?);
            }
            Op::Mean {
                input,
                dims,
                keepdim,
            } => {
                let count: usize = dims.iter().map(|&d| input.dims()[d]).product();
                let grad = expand_reduced(g, input.shape(), dims, *keepdim)?;
                grad_for!(input, grad.mul_scalar(1.0 / count as f64)?);
            }
            Op::Variance {
                input,
                dims,
                unbiased,
                keepdim,
            } => {
                let x = input.tensor();
                let count: usize = dims.iter().map(|&d| input.dims()[d]).product();
                let denom = if *unbiased {
                    count as f64 - 1.0
                } else {
                    count as f64
                };
                let mean = x.mean(dims, true)?;
                let grad = expand_reduced(g, input.shape(), dims, *keepdim)?;
                grad_for!(input, grad.mul(&x.sub(&mean)?)?.mul_scalar(2.0 / denom)?);
            }
            Op::Extremum {
                input,
                dims,
                keepdim,
                output_keepdim,
            } => {
                let x = input.tensor();
                let hit = x.eq(output_keepdim)?;
                let ties = hit.sum(dims, true)?;
                let grad = expand_reduced(g, input.shape(), dims, *keepdim)?;
                grad_for!(input, grad.mul(&hit)?.div(&ties)?);
            }
            Op::SumAll { input } => {
                grad_for!(input, g.expand(input.shape().clone())?);
            }
            Op::MeanAll { input } => {
                let n = input.tensor().elem_count().max(1) as f64;
                grad_for!(input, g.mul_scalar(1.0 / n)?.expand(input.shape().clone())?);
            }
            Op::Reshape { input } => {
                grad_for!(input, g.reshape(input.shape().clone())?);
            }
            Op::Permute { input, dims } => {
                let mut inverse = vec![0; dims.len()];
                for (i, &d) in dims.iter().enumerate() {
                    inverse[d] = i;
                }
                grad_for!(input, g.permute(&inverse)?);
            }
            Op::Narrow { input, dim, start } => {
                let full = input.tensor().zeros_like()?;
                full.narrow(*dim, *start, g.dims()[*dim])?.assign(g)?;
                grad_for!(input, full);
            }
            Op::Select { input, dim, index } => {
                let full = input.tensor().zeros_like()?;
                full.select(*dim, *index)?.assign(g)?;
                grad_for!(input, full);
            }
            Op::Expand { input } => {
                grad_for!(input, g.sum_to(input.shape().clone())?);
            }
            Op::Matmul { lhs, rhs } => {
                let (a, b) = (lhs.tensor(), rhs.tensor());
                let (ra, rb) = (a.rank(), b.rank());
                grad_for!(
                    lhs,
                    g.matmul(&b.transpose(rb - 2, rb - 1)?)?
                        .sum_to(a.shape().clone())?
                );
                grad_for!(
                    rhs,
                    a.transpose(ra - 2, ra - 1)?
                        .matmul(g)?
                        .sum_to(b.shape().clone())?
                );
            }
            Op::Softmax { input, dim, output } => {
                let dot = g.mul(output)?.sum(&[*dim], true)?;
                grad_for!(input, output.mul(&g.sub(&dot)?)?);
            }
            Op::LogSoftmax { input, dim, output } => {
                let total = g.sum(&[*dim], true)?;
                grad_for!(input, g.sub(&output.exp()?.mul(&total)?)?);
            }
            Op::Cat { inputs, dim } => {
                let mut offset = 0;
                for input in inputs {
                    let len = input.dims()[*dim];
                    grad_for!(input, g.narrow(*dim, offset, len)?);
                    offset += len;
                }
            }
            Op::Stack { inputs, dim } => {
                for (i, input) in inputs.iter().enumerate() {
                    grad_for!(input, g.select(*dim, i)?);
                }
            }
            Op::IndexSelect {
                input,
                dim,
                indices,
            } => {
                grad_for!(
                    input,
                    input.tensor().zeros_like()?.index_add(*dim, indices, g)?
                );
            }
            Op::Gather { input, dim, index } => {
                grad_for!(
                    input,
                    input.tensor().zeros_like()?.scatter_add(*dim, index, g)?
                );
            }
            Op::CrossEntropy {
                logits,
                targets,
                reduction,
                log_probs,
            } => {
                if logits.requires_grad() {
                    // d loss_i / d logits_i = g_i * (softmax_i - onehot(target_i)), in
                    // one fused pass given the per-row loss gradients g_i.
                    let n = log_probs.dims()[0];
                    let per_row = match reduction {
                        Reduction::Mean => g.mul_scalar(1.0 / n.max(1) as f64)?.expand([n])?,
                        Reduction::Sum => g.expand([n])?,
                        Reduction::None => g.clone(),
                    };
                    let grad =
                        crate::ops::fused::cross_entropy_backward(log_probs, targets, &per_row)?;
                    out.push((logits, grad));
                }
            }
            Op::BceWithLogits {
                logits,
                targets,
                reduction,
            } => {
                let (x, y) = (logits.tensor(), targets.tensor());
                let scale = reduction_scale(g, *reduction, x.elem_count())?;
                grad_for!(logits, x.sigmoid()?.sub(y)?.mul(&scale)?);
                grad_for!(targets, x.neg()?.mul(&scale)?);
            }
            Op::Mse {
                pred,
                target,
                reduction,
            } => {
                let diff = pred.tensor().sub(target.tensor())?;
                let scale = reduction_scale(g, *reduction, diff.elem_count())?;
                let grad = diff.mul(&scale)?.mul_scalar(2.0)?;
                if target.requires_grad() {
                    out.push((target, grad.neg()?));
                }
                grad_for!(pred, grad);
            }
            Op::Conv2d {
                input,
                weight,
                bias,
                shape,
                relu_mask,
            } => {
                let (gx, gw, gb) = crate::ops::conv::conv2d_backward(
                    shape,
                    input,
                    weight,
                    bias.as_ref(),
                    relu_mask.as_deref(),
                    g,
                )?;
                out.extend(gx.map(|gx| (input, gx)));
                out.extend(gw.map(|gw| (weight, gw)));
                if let (Some(b), Some(gb)) = (bias, gb) {
                    out.push((b, gb));
                }
            }
            Op::Norm {
                kind,
                input,
                gamma,
                beta,
                mean,
                invstd,
            } => {
                let (gx, gg, gb) = crate::ops::norm::norm_backward(
                    *kind,
                    input,
                    gamma.as_ref(),
                    beta.as_ref(),
                    mean,
                    invstd,
                    g,
                )?;
                out.extend(gx.map(|gx| (input, gx)));
                if let (Some(p), Some(gp)) = (gamma, gg) {
                    out.push((p, gp));
                }
                if let (Some(p), Some(gp)) = (beta, gb) {
                    out.push((p, gp));
                }
            }
            Op::Custom { inputs, rule } => {
                let grads = rule.backward(inputs, output, g)?;
                for (input, grad) in inputs.iter().zip(grads) {
                    if let Some(grad) = grad {
                        grad_for!(input, grad);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The gradient of an elementwise loss: `g` broadcast over the elements, divided by
/// their count for a mean.
fn reduction_scale(g: &Tensor, reduction: Reduction, count: usize) -> tensor::Result<Tensor> {
    match reduction {
        Reduction::Mean => g.mul_scalar(1.0 / count.max(1) as f64),
        Reduction::Sum | Reduction::None => Ok(g.clone()),
    }
}

/// Undoes a reduction's shape change: re-inserts the reduced dims (if they were not
/// kept) and broadcasts back to the input's shape (a view; no copy).
fn expand_reduced(
    g: &Tensor,
    input: &Shape,
    dims: &[usize],
    keepdim: bool,
) -> tensor::Result<Tensor> {
    let mut g = g.clone();
    if !keepdim {
        let mut sorted = dims.to_vec();
        sorted.sort_unstable();
        for d in sorted {
            g = g.unsqueeze(d)?;
        }
    }
    g.expand(input.clone())
}

fn full_scalar(like: &Tensor, value: f64) -> tensor::Result<Tensor> {
    Tensor::full((), value, like.dtype(), &like.device())
}

fn zeros_scalar(like: &Tensor) -> tensor::Result<Tensor> {
    full_scalar(like, 0.0)
}

fn ones_scalar(like: &Tensor) -> tensor::Result<Tensor> {
    full_scalar(like, 1.0)
}
