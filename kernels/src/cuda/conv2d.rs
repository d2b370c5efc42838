//! Conv2d (NCHW, groups, stride, padding, dilation) through im2col + cuBLAS gemm: the
//! forward pass, the input gradient (gemm + col2im) and the weight and bias gradients.
//! Shapes are the CPU kernels' [`Conv2dShape`], validated on construction.

use cudarc::driver::{CudaSlice, DeviceRepr, PushKernelArg};

use super::device::{elems_cfg, kname, source, CudaDevice, CudaFloat, CudaResultExt};
use super::matmul::{gemm, Operand, Output};
use super::norm::channel_sum;
use crate::cpu::conv2d::Conv2dShape;
use crate::error::{KernelError, Result};

const SRC: super::device::Source = source!("conv", "src/conv.cu");

/// The `ConvGeom` struct of `conv.cu`, passed by value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvGeom {
    n: u64,
    c: u64,
    h: u64,
    w: u64,
    kh: u64,
    kw: u64,
    oh: u64,
    ow: u64,
    sh: u64,
    sw: u64,
    ph: u64,
    pw: u64,
    dh: u64,
    dw: u64,
}

// SAFETY: a `repr(C)` struct of `u64`s, laid out as the C struct it mirrors.
unsafe impl DeviceRepr for ConvGeom {}

/// Sizes the gemms need: groups, channels per group, kernel taps, output positions.
struct Dims {
    n: usize,
    c: usize,
    cout: usize,
    groups: usize,
    cg: usize,
    og: usize,
    taps: usize,
    p: usize,
}

fn geometry(s: &Conv2dShape) -> (ConvGeom, Dims) {
    let (h, w) = s.input_hw();
    let (kh, kw) = s.kernel_hw();
    let (oh, ow) = s.output_hw();
    let p = s.params();
    let g = ConvGeom {
        n: s.batch() as u64,
        c: s.in_channels() as u64,
        h: h as u64,
        w: w as u64,
        kh: kh as u64,
        kw: kw as u64,
        oh: oh as u64,
        ow: ow as u64,
        sh: p.stride.0 as u64,
        sw: p.stride.1 as u64,
        ph: p.padding.0 as u64,
        pw: p.padding.1 as u64,
        dh: p.dilation.0 as u64,
        dw: p.dilation.1 as u64,
    };
    let d = Dims {
        n: s.batch(),
        c: s.in_channels(),
        cout: s.out_channels(),
        groups: p.groups,
        cg: s.in_channels() / p.groups,
        og: s.out_channels() / p.groups,
        taps: kh * kw,
        p: oh * ow,
    };
    (g, d)
}

fn check(op: &'static str, what: &'static str, len: usize, needed: usize) -> Result<()> {
    if len < needed {
        return Err(KernelError::SliceTooShort {
            op,
            what,
            needed,
            got: len,
        });
    }
    Ok(())
}

/// The column matrix `[N, C * kh * kw, OH * OW]` of the input.
fn im2col<T: CudaFloat>(
    dev: &CudaDevice,
    g: ConvGeom,
    d: &Dims,
    x: &CudaSlice<T>,
) -> Result<CudaSlice<T>> {
    let len = d.n * d.c * d.taps * d.p;
    let mut col = dev.alloc::<T>(len)?;
    if len == 0 {
        return Ok(col);
    }
    let f = dev.function(SRC, &kname::<T>("im2col"))?;
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&g).arg(x).arg(&mut col);
    // SAFETY: the caller checked the input's length against the geometry, `col` holds
    // every column entry, and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(len)) }.op("cuda im2col")?;
    Ok(col)
}

/// Conv2d forward: output `[N, C_out, OH, OW]` of input `x`, weight `w` and an
/// optional bias, all dense.
pub fn conv2d_forward<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &Conv2dShape,
    x: &CudaSlice<T>,
    w: &CudaSlice<T>,
    bias: Option<&CudaSlice<T>>,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda conv2d_forward";
    check(OP, "input", x.len(), shape.input_len())?;
    check(OP, "weight", w.len(), shape.weight_len())?;
    if let Some(b) = bias {
        check(OP, "bias", b.len(), shape.out_channels())?;
    }
    let (g, d) = geometry(shape);
    let mut out = dev.zeros::<T>(shape.output_len())?;
    if shape.output_len() == 0 {
        return Ok(out);
    }
    let col = im2col(dev, g, &d, x)?;
    let ck = d.cg * d.taps;
    for gi in 0..d.groups {
        // out[n, g] (og x P) = W[g] (og x cg*K) · col[n, g] (cg*K x P)
        gemm(
            dev,
            d.n,
            (d.og, d.p, ck),
            Operand {
                buf: w,
                offset: gi * d.og * ck,
                transposed: false,
                batch_stride: 0,
            },
            Operand {
                buf: &col,
                offset: gi * ck * d.p,
                transposed: false,
                batch_stride: d.c * d.taps * d.p,
            },
            0.0,
            Output {
                buf: &mut out,
                offset: gi * d.og * d.p,
                batch_stride: d.cout * d.p,
            },
        )?;
    }
    if let Some(b) = bias {
        let total = shape.output_len();
        let f = dev.function(SRC, &kname::<T>("add_channel_bias"))?;
        let (t64, c64, p64) = (total as u64, d.cout as u64, d.p as u64);
        let mut l = dev.stream().launch_builder(&f);
        l.arg(&t64).arg(&c64).arg(&p64).arg(&mut out).arg(b);
        // SAFETY: `out` holds N * C_out * P elements, the bias C_out, and the argument
        // list matches the kernel's signature.
        unsafe { l.launch(elems_cfg(total)) }.op(OP)?;
    }
    Ok(out)
}

/// Gradient of the input `[N, C_in, H, W]` given the output gradient `g` and weight.
pub fn conv2d_backward_input<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &Conv2dShape,
    g: &CudaSlice<T>,
    w: &CudaSlice<T>,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda conv2d_backward_input";
    check(OP, "grad_out", g.len(), shape.output_len())?;
    check(OP, "weight", w.len(), shape.weight_len())?;
    let (geo, d) = geometry(shape);
    let len = shape.input_len();
    let mut gx = dev.zeros::<T>(len)?;
    if len == 0 || shape.output_len() == 0 {
        return Ok(gx);
    }
    let ck = d.cg * d.taps;
    let mut gcol = dev.zeros::<T>(d.n * d.c * d.taps * d.p)?;
    for gi in 0..d.groups {
        // gcol[n, g] (cg*K x P) = W[g]ᵀ (cg*K x og) · g[n, g] (og x P)
        gemm(
            dev,
            d.n,
            (ck, d.p, d.og),
            Operand {
                buf: w,
                offset: gi * d.og * ck,
                transposed: true,
                batch_stride: 0,
            },
            Operand {
                buf: g,
                offset: gi * d.og * d.p,
                transposed: false,
                batch_stride: d.cout * d.p,
            },
            0.0,
            Output {
                buf: &mut gcol,
                offset: gi * ck * d.p,
                batch_stride: d.c * d.taps * d.p,
            },
        )?;
    }
    let f = dev.function(SRC, &kname::<T>("col2im"))?;
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&geo).arg(&gcol).arg(&mut gx);
    // SAFETY: `gcol` holds the full column matrix, `gx` the input, and the argument
    // list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(len)) }.op(OP)?;
    Ok(gx)
}

/// Gradients of the weight `[C_out, C_in / groups, kH, kW]` and, with `with_bias`, of
/// the bias `[C_out]`, given the input and the output gradient.
pub fn conv2d_backward_weight<T: CudaFloat>(
    dev: &CudaDevice,
    shape: &Conv2dShape,
    x: &CudaSlice<T>,
    g: &CudaSlice<T>,
    with_bias: bool,
) -> Result<(CudaSlice<T>, Option<CudaSlice<T>>)> {
    const OP: &str = "cuda conv2d_backward_weight";
    check(OP, "input", x.len(), shape.input_len())?;
    check(OP, "grad_out", g.len(), shape.output_len())?;
    let (geo, d) = geometry(shape);
    let mut gw = dev.zeros::<T>(shape.weight_len())?;
    let ck = d.cg * d.taps;
    if shape.output_len() > 0 {
        let col = im2col(dev, geo, &d, x)?;
        for n in 0..d.n {
            for gi in 0..d.groups {
                // gW[g] (og x cg*K) += g[n, g] (og x P) · col[n, g]ᵀ (P x cg*K)
                gemm(
                    dev,
                    1,
                    (d.og, ck, d.p),
                    Operand {
                        buf: g,
                        offset: (n * d.cout + gi * d.og) * d.p,
                        transposed: false,
                        batch_stride: 0,
                    },
                    Operand {
                        buf: &col,
                        offset: (n * d.c * d.taps + gi * ck) * d.p,
                        transposed: true,
                        batch_stride: 0,
                    },
                    if n == 0 { 0.0 } else { 1.0 },
                    Output {
                        buf: &mut gw,
                        offset: gi * d.og * ck,
                        batch_stride: d.og * ck,
                    },
                )?;
            }
        }
    }
    let gb = if with_bias {
        Some(channel_sum(dev, g, (d.n, d.cout, d.p))?)
    } else {
        None
    };
    Ok((gw, gb))
}
