//! Convolution hyper-parameters and the validated shape descriptor.

use crate::error::{KernelError, Result};

/// Stride, padding, dilation and groups of a 2-d convolution, as `(height, width)` pairs.
///
/// The default is PyTorch's: stride 1, no padding, dilation 1, one group.
///
/// ```
/// use kernels::cpu::conv2d::Conv2dParams;
/// // The lesson CNN's 3x3 layers: stride 2, padding 1.
/// let p = Conv2dParams { stride: (2, 2), padding: (1, 1), ..Conv2dParams::default() };
/// assert_eq!((p.dilation, p.groups), ((1, 1), 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Step between output positions in the input, `(sH, sW)`; at least 1.
    pub stride: (usize, usize),
    /// Zeros added on each side of the input, `(pH, pW)`.
    pub padding: (usize, usize),
    /// Spacing between kernel taps, `(dH, dW)`; at least 1 (1 = dense kernel).
    pub dilation: (usize, usize),
    /// Number of channel groups; input and output channels must both be divisible by it.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

/// A validated convolution problem: input, weight and output sizes plus the parameters.
///
/// Built once by [`Conv2dShape::new`], which rejects every inconsistent combination with
/// an error naming the sizes, and then passed to each kernel. A batch of 0 images is
/// valid (the kernels have nothing to compute; the weight gradient is zero).
///
/// ```
/// use kernels::cpu::conv2d::{Conv2dParams, Conv2dShape};
/// let p = Conv2dParams { stride: (2, 2), padding: (2, 2), ..Conv2dParams::default() };
/// // conv1 of the lesson CNN: 1 -> 8 channels, 5x5 kernel, 28x28 input.
/// let s = Conv2dShape::new([64, 1, 28, 28], [8, 1, 5, 5], p).unwrap();
/// assert_eq!(s.output_dims(), [64, 8, 14, 14]);
///
/// // A 5x5 kernel does not fit a 2x2 input padded by 1.
/// let err = Conv2dShape::new([1, 1, 2, 2], [1, 1, 5, 5], Conv2dParams {
///     padding: (1, 1),
///     ..Conv2dParams::default()
/// })
/// .unwrap_err();
/// assert!(err.to_string().contains("larger than the padded input"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dShape {
    batch: usize,
    in_channels: usize,
    in_h: usize,
    in_w: usize,
    out_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    out_h: usize,
    out_w: usize,
    params: Conv2dParams,
}

/// The name validation errors carry.
const OP: &str = "conv2d";

fn invalid(detail: String) -> KernelError {
    KernelError::InvalidArgument { op: OP, detail }
}

impl Conv2dShape {
    /// Validates a convolution of an `input = [N, C_in, H, W]` tensor with a
    /// `weight = [C_out, C_in / groups, kH, kW]` tensor and computes the output size
    /// `H_out = (H + 2 pH - dH (kH - 1) - 1) / sH + 1` (likewise for the width).
    ///
    /// Errors (all [`KernelError::InvalidArgument`] naming the values): a zero channel,
    /// spatial or kernel size, a zero stride, dilation or group count, channels not
    /// divisible by `groups`, a weight whose second dimension is not `C_in / groups`, a
    /// dilated kernel larger than the padded input, or sizes whose element counts
    /// overflow `usize`.
    pub fn new(input: [usize; 4], weight: [usize; 4], params: Conv2dParams) -> Result<Self> {
        let [batch, in_channels, in_h, in_w] = input;
        let [out_channels, w_in_channels, kernel_h, kernel_w] = weight;
        let Conv2dParams {
            stride,
            padding,
            dilation,
            groups,
        } = params;
        if in_channels == 0 || in_h == 0 || in_w == 0 {
            return Err(invalid(format!(
                "input {input:?} (N, C, H, W) has a zero channel or spatial size"
            )));
        }
        if out_channels == 0 || w_in_channels == 0 || kernel_h == 0 || kernel_w == 0 {
            return Err(invalid(format!(
                "weight {weight:?} (C_out, C_in/groups, kH, kW) has a zero size"
            )));
        }
        if stride.0 == 0 || stride.1 == 0 || dilation.0 == 0 || dilation.1 == 0 || groups == 0 {
            return Err(invalid(format!(
                "stride {stride:?}, dilation {dilation:?} and groups {groups} must all be at least 1"
            )));
        }
        if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
            return Err(invalid(format!(
                "groups {groups} must divide both input channels {in_channels} and output channels {out_channels}"
            )));
        }
        if w_in_channels != in_channels / groups {
            return Err(invalid(format!(
                "weight {weight:?} has {w_in_channels} input channels per group, but input {input:?} with groups {groups} needs {}",
                in_channels / groups
            )));
        }
        let out_size = |axis: &str, size: usize, k: usize, s: usize, p: usize, d: usize| {
            let padded = size.checked_add(p.checked_mul(2)?)?;
            let span = d.checked_mul(k - 1)?.checked_add(1)?;
            Some(if span > padded {
                Err(invalid(format!(
                    "kernel {kernel_h}x{kernel_w} with dilation {}x{} spans {span} along {axis}, larger than the padded input {padded} (input {in_h}x{in_w}, padding {}x{})",
                    dilation.0, dilation.1, padding.0, padding.1
                )))
            } else {
                Ok((padded - span) / s + 1)
            })
        };
        let overflow = || {
            invalid(format!(
                "input {input:?}, weight {weight:?} and {params:?} overflow usize"
            ))
        };
        let out_h = out_size(
            "the height",
            in_h,
            kernel_h,
            stride.0,
            padding.0,
            dilation.0,
        )
        .ok_or_else(overflow)??;
        let out_w = out_size("the width", in_w, kernel_w, stride.1, padding.1, dilation.1)
            .ok_or_else(overflow)??;
        let shape = Self {
            batch,
            in_channels,
            in_h,
            in_w,
            out_channels,
            kernel_h,
            kernel_w,
            out_h,
            out_w,
            params,
        };
        // Every element count the kernels compute must fit in usize.
        let counts = [
            shape.input_dims(),
            shape.weight_dims(),
            shape.output_dims(),
            [shape.col_rows(), out_h, out_w, 1],
        ];
        if counts.iter().any(|d| {
            d.iter()
                .try_fold(1usize, |acc, &x| acc.checked_mul(x))
                .is_none()
        }) {
            return Err(overflow());
        }
        Ok(shape)
    }

    /// Number of images `N`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Input channels `C_in`.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels `C_out`.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Input spatial size `(H, W)`.
    pub fn input_hw(&self) -> (usize, usize) {
        (self.in_h, self.in_w)
    }

    /// Kernel size `(kH, kW)`.
    pub fn kernel_hw(&self) -> (usize, usize) {
        (self.kernel_h, self.kernel_w)
    }

    /// Output spatial size `(H_out, W_out)`.
    pub fn output_hw(&self) -> (usize, usize) {
        (self.out_h, self.out_w)
    }

    /// The stride, padding, dilation and groups.
    pub fn params(&self) -> Conv2dParams {
        self.params
    }

    /// `[N, C_in, H, W]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.in_h, self.in_w]
    }

    /// `[C_out, C_in / groups, kH, kW]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.params.groups,
            self.kernel_h,
            self.kernel_w,
        ]
    }

    /// `[N, C_out, H_out, W_out]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_h, self.out_w]
    }

    /// Elements of the input (and of the input gradient).
    pub fn input_len(&self) -> usize {
        self.input_dims().iter().product()
    }

    /// Elements of the weight (and of the weight gradient).
    pub fn weight_len(&self) -> usize {
        self.weight_dims().iter().product()
    }

    /// Elements of the output (and of the output gradient).
    pub fn output_len(&self) -> usize {
        self.output_dims().iter().product()
    }

    /// Nominal floating-point operations of the forward pass, `2 N C_out H_out W_out
    /// (C_in / groups) kH kW` (taps that fall on padding are counted, as PyTorch's
    /// benchmarks do). Each backward kernel costs the same.
    pub fn flops(&self) -> u64 {
        2 * (self.batch as u64)
            * (self.out_channels as u64)
            * (self.out_h as u64)
            * (self.out_w as u64)
            * (self.col_rows() as u64)
    }

    /// Input channels per group.
    pub(crate) fn in_per_group(&self) -> usize {
        self.in_channels / self.params.groups
    }

    /// Output channels per group.
    pub(crate) fn out_per_group(&self) -> usize {
        self.out_channels / self.params.groups
    }

    /// Rows of one group's im2col matrix: `C_in / groups * kH * kW`.
    pub(crate) fn col_rows(&self) -> usize {
        self.in_per_group() * self.kernel_h * self.kernel_w
    }

    /// Output positions per image and channel: `H_out * W_out`.
    pub(crate) fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Input elements per image.
    pub(crate) fn input_image_len(&self) -> usize {
        self.in_channels * self.in_h * self.in_w
    }

    /// Output elements per image.
    pub(crate) fn output_image_len(&self) -> usize {
        self.out_channels * self.out_plane()
    }

    /// Errors unless `got == expected` for the argument `what` of kernel `op`.
    pub(crate) fn check_len(
        &self,
        op: &'static str,
        what: &str,
        dims: &str,
        expected: usize,
        got: usize,
    ) -> Result<()> {
        if expected == got {
            Ok(())
        } else {
            Err(KernelError::SizeMismatch {
                op,
                detail: format!(
                    "{what} has {got} elements but {dims} needs {expected} (conv shape: input {:?}, weight {:?}, output {:?})",
                    self.input_dims(),
                    self.weight_dims(),
                    self.output_dims()
                ),
            })
        }
    }

    /// Checks the input (or input gradient) length.
    pub(crate) fn check_input(&self, op: &'static str, what: &str, got: usize) -> Result<()> {
        self.check_len(op, what, "input (N, C_in, H, W)", self.input_len(), got)
    }

    /// Checks the weight (or weight gradient) length.
    pub(crate) fn check_weight(&self, op: &'static str, what: &str, got: usize) -> Result<()> {
        self.check_len(
            op,
            what,
            "weight (C_out, C_in/groups, kH, kW)",
            self.weight_len(),
            got,
        )
    }

    /// Checks the output (or output gradient) length.
    pub(crate) fn check_output(&self, op: &'static str, what: &str, got: usize) -> Result<()> {
        self.check_len(
            op,
            what,
            "output (N, C_out, H_out, W_out)",
            self.output_len(),
            got,
        )
    }

    /// Checks the bias (or bias gradient) length.
    pub(crate) fn check_bias(&self, op: &'static str, what: &str, got: usize) -> Result<()> {
        self.check_len(op, what, "bias (C_out)", self.out_channels, got)
    }

    /// Checks the lengths of a forward pass's operands: `input`, `weight`, the `bias`
    /// if any, and `output`.
    pub(crate) fn check_forward(
        &self,
        op: &'static str,
        input: usize,
        weight: usize,
        bias: Option<usize>,
        output: usize,
    ) -> Result<()> {
        self.check_input(op, "input", input)?;
        self.check_weight(op, "weight", weight)?;
        if let Some(bias) = bias {
            self.check_bias(op, "bias", bias)?;
        }
        self.check_output(op, "output", output)
    }
}
