//! Elementwise kernels over strided views: unary maps, broadcasting binary ops and
//! comparisons, `where`, dtype casts (and strided copies), fills and in-place updates.
//! Every output is a dense row-major buffer of the logical shape.

use cudarc::driver::{CudaSlice, PushKernelArg};

use super::device::{elems_cfg, kname, source, CudaDevice, CudaElem, CudaFloat, CudaResultExt};
use crate::error::{KernelError, Result};

const SRC: super::device::Source = source!("elementwise", "src/elementwise.cu");

/// A strided view of a device buffer: logical dims, strides in elements (0 for
/// broadcast dims) and the offset of the first element.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// Logical dims, outermost first.
    pub dims: &'a [usize],
    /// Stride of each dim, in elements.
    pub strides: &'a [usize],
    /// Offset of the first element, in elements.
    pub offset: usize,
}

impl View<'_> {
    /// Whether the view is the dense row-major layout of its dims (offset aside).
    pub fn is_dense(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.dims.iter().zip(self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// Number of logical elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether the view has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Errors unless every addressed element lies inside a buffer of `len` elements.
    pub(crate) fn check(&self, op: &'static str, what: &'static str, len: usize) -> Result<()> {
        if self.dims.len() != self.strides.len() {
            return Err(KernelError::SizeMismatch {
                op,
                detail: format!(
                    "{what}: {} dims but {} strides",
                    self.dims.len(),
                    self.strides.len()
                ),
            });
        }
        if self.is_empty() {
            return Ok(());
        }
        let last = self
            .dims
            .iter()
            .zip(self.strides)
            .try_fold(self.offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
        match last {
            Some(l) if l < len => Ok(()),
            _ => Err(KernelError::SliceTooShort {
                op,
                what,
                needed: last.map_or(usize::MAX, |l| l + 1),
                got: len,
            }),
        }
    }
}

/// Unary maps on float views (the same definitions as the CPU kernels: NaN passes
/// through `relu`, `sign`, `leaky_relu` and `clamp`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `e^x`.
    Exp,
    /// `ln x`.
    Log,
    /// `sqrt x`.
    Sqrt,
    /// `|x|`.
    Abs,
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `x * x`.
    Square,
    /// `1 / x`.
    Recip,
    /// `-1`, `0` or `1`.
    Sign,
    /// `x` if `x >= 0`, else `slope * x`.
    LeakyRelu(f64),
    /// `x * mul + add`.
    Affine {
        /// Factor.
        mul: f64,
        /// Offset.
        add: f64,
    },
    /// `x ^ e`.
    Powf(f64),
    /// `x` limited to `[min, max]`.
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

impl UnaryOp {
    /// The kernel's op code and its two parameters.
    fn code(self) -> (u32, f64, f64) {
        match self {
            UnaryOp::Neg => (0, 0.0, 0.0),
            UnaryOp::Exp => (1, 0.0, 0.0),
            UnaryOp::Log => (2, 0.0, 0.0),
            UnaryOp::Sqrt => (3, 0.0, 0.0),
            UnaryOp::Abs => (4, 0.0, 0.0),
            UnaryOp::Tanh => (5, 0.0, 0.0),
            UnaryOp::Sigmoid => (6, 0.0, 0.0),
            UnaryOp::Relu => (7, 0.0, 0.0),
            UnaryOp::Square => (8, 0.0, 0.0),
            UnaryOp::Recip => (9, 0.0, 0.0),
            UnaryOp::Sign => (10, 0.0, 0.0),
            UnaryOp::LeakyRelu(s) => (11, s, 0.0),
            UnaryOp::Affine { mul, add } => (12, mul, add),
            UnaryOp::Powf(e) => (13, e, 0.0),
            UnaryOp::Clamp { min, max } => (14, min, max),
        }
    }
}

/// Arithmetic binary ops on float views (maximum/minimum propagate NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ^ b`.
    Pow,
    /// NaN-propagating maximum.
    Maximum,
    /// NaN-propagating minimum.
    Minimum,
}

/// Comparisons (any element type; 1 for true, 0 for false, in the inputs' type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

/// In-place updates `dst op= src`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Update {
    /// `dst = src`.
    Assign,
    /// `dst += src`.
    Add,
    /// `dst += alpha * src`.
    Axpy(f64),
    /// `dst *= v` (the source is not read).
    Scale(f64),
}

/// The `info` words of a launch over `dims`: dims then each operand's strides, and the
/// rank to pass (0 when every operand is dense, which skips the index arithmetic).
fn layout_info(dims: &[usize], views: &[&View<'_>]) -> (u32, Vec<usize>) {
    if views.iter().all(|v| v.is_dense()) {
        return (0, Vec::new());
    }
    let mut info = dims.to_vec();
    for v in views {
        info.extend_from_slice(v.strides);
    }
    (dims.len() as u32, info)
}

fn check_same_dims(op: &'static str, dims: &[usize], views: &[&View<'_>]) -> Result<()> {
    for v in views {
        if v.dims != dims {
            return Err(KernelError::SizeMismatch {
                op,
                detail: format!("operand dims {:?} differ from {dims:?}", v.dims),
            });
        }
    }
    Ok(())
}

/// `op` applied to every element of the view; a dense result.
pub fn unary<T: CudaFloat>(
    dev: &CudaDevice,
    op: UnaryOp,
    src: &CudaSlice<T>,
    view: View<'_>,
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda unary";
    view.check(OP, "input", src.len())?;
    let n = view.len();
    let mut out = dev.alloc::<T>(n)?;
    if n == 0 {
        return Ok(out);
    }
    let (code, p0, p1) = op.code();
    let (p0, p1) = (T::from_f64(p0), T::from_f64(p1));
    let (rank, info) = layout_info(view.dims, &[&view]);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &kname::<T>("unary"))?;
    let (n64, off) = (n as u64, view.offset as u64);
    let mut b = dev.stream().launch_builder(&f);
    b.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(src)
        .arg(&off)
        .arg(&mut out)
        .arg(&code)
        .arg(&p0)
        .arg(&p1);
    // SAFETY: the view was checked against the input's length, the output holds `n`
    // elements, and the argument list matches the kernel's signature.
    unsafe { b.launch(elems_cfg(n)) }.op(OP)?;
    Ok(out)
}

/// Launches a two-input kernel `name` (binary arithmetic or comparison) over `dims`.
fn two_input<T: CudaElem>(
    dev: &CudaDevice,
    op: &'static str,
    name: &str,
    code: u32,
    dims: &[usize],
    a: (&CudaSlice<T>, View<'_>),
    b: (&CudaSlice<T>, View<'_>),
) -> Result<CudaSlice<T>> {
    check_same_dims(op, dims, &[&a.1, &b.1])?;
    a.1.check(op, "lhs", a.0.len())?;
    b.1.check(op, "rhs", b.0.len())?;
    let n: usize = dims.iter().product();
    let mut out = dev.alloc::<T>(n)?;
    if n == 0 {
        return Ok(out);
    }
    let (rank, info) = layout_info(dims, &[&a.1, &b.1]);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &kname::<T>(name))?;
    let (n64, ao, bo) = (n as u64, a.1.offset as u64, b.1.offset as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(a.0)
        .arg(&ao)
        .arg(b.0)
        .arg(&bo)
        .arg(&mut out)
        .arg(&code);
    // SAFETY: both views were checked against their buffers, the output holds `n`
    // elements, and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(op)?;
    Ok(out)
}

/// `a op b` over `dims` (both views already broadcast to `dims`); a dense result.
pub fn binary<T: CudaFloat>(
    dev: &CudaDevice,
    op: BinaryOp,
    dims: &[usize],
    a: (&CudaSlice<T>, View<'_>),
    b: (&CudaSlice<T>, View<'_>),
) -> Result<CudaSlice<T>> {
    two_input(dev, "cuda binary", "binary", op as u32, dims, a, b)
}

/// `a op b` as 1/0 in `T` over `dims` (both views already broadcast to `dims`).
pub fn compare<T: CudaElem>(
    dev: &CudaDevice,
    op: CmpOp,
    dims: &[usize],
    a: (&CudaSlice<T>, View<'_>),
    b: (&CudaSlice<T>, View<'_>),
) -> Result<CudaSlice<T>> {
    two_input(dev, "cuda compare", "cmp", op as u32, dims, a, b)
}

/// `on_true` where the mask is nonzero, else `on_false`, over `dims` (all three views
/// already broadcast to `dims`).
pub fn where_cond<M: CudaElem, T: CudaElem>(
    dev: &CudaDevice,
    dims: &[usize],
    mask: (&CudaSlice<M>, View<'_>),
    on_true: (&CudaSlice<T>, View<'_>),
    on_false: (&CudaSlice<T>, View<'_>),
) -> Result<CudaSlice<T>> {
    const OP: &str = "cuda where_cond";
    check_same_dims(OP, dims, &[&mask.1, &on_true.1, &on_false.1])?;
    mask.1.check(OP, "mask", mask.0.len())?;
    on_true.1.check(OP, "on_true", on_true.0.len())?;
    on_false.1.check(OP, "on_false", on_false.0.len())?;
    let n: usize = dims.iter().product();
    let mut out = dev.alloc::<T>(n)?;
    if n == 0 {
        return Ok(out);
    }
    let (rank, info) = layout_info(dims, &[&mask.1, &on_true.1, &on_false.1]);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &format!("where_{}_{}", M::SUFFIX, T::SUFFIX))?;
    let n64 = n as u64;
    let offs = [mask.1.offset, on_true.1.offset, on_false.1.offset].map(|o| o as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(mask.0)
        .arg(&offs[0])
        .arg(on_true.0)
        .arg(&offs[1])
        .arg(on_false.0)
        .arg(&offs[2])
        .arg(&mut out);
    // SAFETY: the views were checked against their buffers, the output holds `n`
    // elements, and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(OP)?;
    Ok(out)
}

/// The view's elements converted to `D` (Rust `as` semantics: float to `u32`
/// saturates, NaN becomes 0) in a dense buffer; with `S == D` a strided copy.
pub fn cast<S: CudaElem, D: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<S>,
    view: View<'_>,
) -> Result<CudaSlice<D>> {
    const OP: &str = "cuda cast";
    view.check(OP, "input", src.len())?;
    let n = view.len();
    let mut out = dev.alloc::<D>(n)?;
    if n == 0 {
        return Ok(out);
    }
    let (rank, info) = layout_info(view.dims, &[&view]);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &format!("cast_{}_{}", S::SUFFIX, D::SUFFIX))?;
    let (n64, off) = (n as u64, view.offset as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(src)
        .arg(&off)
        .arg(&mut out);
    // SAFETY: the view was checked against the input, the output holds `n` elements,
    // and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(OP)?;
    Ok(out)
}

/// A dense copy of a strided view.
pub fn copy<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    view: View<'_>,
) -> Result<CudaSlice<T>> {
    cast::<T, T>(dev, src, view)
}

/// Writes `value` into every element of a view of `dst` (the view must not have
/// broadcast dims, or several threads write one slot with the same value).
pub fn fill<T: CudaElem>(
    dev: &CudaDevice,
    dst: &mut CudaSlice<T>,
    view: View<'_>,
    value: T,
) -> Result<()> {
    const OP: &str = "cuda fill";
    view.check(OP, "destination", dst.len())?;
    let n = view.len();
    if n == 0 {
        return Ok(());
    }
    let (rank, info) = layout_info(view.dims, &[&view]);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &kname::<T>("fill"))?;
    let (n64, off) = (n as u64, view.offset as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(dst)
        .arg(&off)
        .arg(&value);
    // SAFETY: the view was checked against the destination and the argument list
    // matches the kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(OP)?;
    Ok(())
}

/// `dst op= src` in place over the destination view's dims; `src` is broadcast to
/// them already and must not alias `dst` (copy it first). For `u32` only
/// [`Update::Assign`] is meaningful; `Scale` ignores `src`.
pub fn update<T: CudaElem>(
    dev: &CudaDevice,
    op: Update,
    alpha: T,
    dst: (&mut CudaSlice<T>, View<'_>),
    src: (&CudaSlice<T>, View<'_>),
) -> Result<()> {
    const OP: &str = "cuda update";
    let (dst, dv) = dst;
    check_same_dims(OP, dv.dims, &[&src.1])?;
    dv.check(OP, "destination", dst.len())?;
    let code: u32 = match op {
        Update::Assign => 0,
        Update::Add => 1,
        Update::Axpy(_) => 2,
        Update::Scale(_) => 3,
    };
    if code != 3 {
        src.1.check(OP, "source", src.0.len())?;
    }
    let n = dv.len();
    if n == 0 {
        return Ok(());
    }
    // Scaling never reads the source, so a dense destination alone allows the fast path.
    let (rank, info) = if code == 3 && dv.is_dense() {
        (0, Vec::new())
    } else {
        layout_info(dv.dims, &[&dv, &src.1])
    };
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &kname::<T>("update"))?;
    let (n64, doff, soff) = (n as u64, dv.offset as u64, src.1.offset as u64);
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(dst)
        .arg(&doff)
        .arg(src.0)
        .arg(&soff)
        .arg(&code)
        .arg(&alpha);
    // SAFETY: both views were checked (the source only when read), the buffers are
    // distinct (`&mut` and `&`), and the argument list matches the kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(OP)?;
    Ok(())
}

/// The geometry of an [`index_copy`]: for each element `i` of `dims`, with `j` the
/// index at `i` (read through `idx_strides`), `dst[dst_offset + dst(i) + j *
/// dst_dim_stride]` is set to (or, with `accumulate`, atomically increased by)
/// `src[src_offset + src(i) + j * src_dim_stride]`.
#[derive(Clone, Copy, Debug)]
pub struct IndexCopy<'a> {
    /// The iteration dims.
    pub dims: &'a [usize],
    /// Source strides over `dims`.
    pub src_strides: &'a [usize],
    /// Source offset.
    pub src_offset: usize,
    /// Source stride of the index (0 when the destination is indexed).
    pub src_dim_stride: usize,
    /// Destination strides over `dims`.
    pub dst_strides: &'a [usize],
    /// Destination offset.
    pub dst_offset: usize,
    /// Destination stride of the index (0 when the source is indexed).
    pub dst_dim_stride: usize,
    /// Strides of the index buffer over `dims`.
    pub idx_strides: &'a [usize],
    /// Every index is below this bound (the caller validated them).
    pub index_bound: usize,
    /// Add (with atomics, so repeated indices accumulate) instead of assigning.
    pub accumulate: bool,
}

/// The extent check of one side of an [`index_copy`]: its view plus the index as one
/// more dim of `bound` entries.
fn check_indexed(
    op: &'static str,
    what: &'static str,
    (dims, strides, offset): (&[usize], &[usize], usize),
    (bound, stride): (usize, usize),
    len: usize,
) -> Result<()> {
    let mut d = dims.to_vec();
    let mut s = strides.to_vec();
    d.push(bound);
    s.push(stride);
    View {
        dims: &d,
        strides: &s,
        offset,
    }
    .check(op, what, len)
}

/// The indexed copy behind `index_select`, `gather` (indexed source) and `index_add`,
/// `scatter_add` (indexed destination, `accumulate`); see [`IndexCopy`].
pub fn index_copy<T: CudaElem>(
    dev: &CudaDevice,
    src: &CudaSlice<T>,
    dst: &mut CudaSlice<T>,
    idx: &CudaSlice<u32>,
    g: IndexCopy<'_>,
) -> Result<()> {
    const OP: &str = "cuda index_copy";
    let n: usize = g.dims.iter().product();
    if n == 0 {
        return Ok(());
    }
    if g.index_bound == 0 {
        return Err(KernelError::InvalidArgument {
            op: OP,
            detail: "indices into an empty dimension".into(),
        });
    }
    let src_side = (g.dims, g.src_strides, g.src_offset);
    check_indexed(
        OP,
        "source",
        src_side,
        (g.index_bound, g.src_dim_stride),
        src.len(),
    )?;
    let dst_side = (g.dims, g.dst_strides, g.dst_offset);
    check_indexed(
        OP,
        "destination",
        dst_side,
        (g.index_bound, g.dst_dim_stride),
        dst.len(),
    )?;
    View {
        dims: g.dims,
        strides: g.idx_strides,
        offset: 0,
    }
    .check(OP, "indices", idx.len())?;
    let mut info = g.dims.to_vec();
    info.extend_from_slice(g.src_strides);
    info.extend_from_slice(g.dst_strides);
    info.extend_from_slice(g.idx_strides);
    let info = dev.info(&info)?;
    let f = dev.function(SRC, &kname::<T>("index_copy"))?;
    let rank = g.dims.len() as u32;
    let (n64, so, sds) = (n as u64, g.src_offset as u64, g.src_dim_stride as u64);
    let (doff, dds, acc) = (
        g.dst_offset as u64,
        g.dst_dim_stride as u64,
        u32::from(g.accumulate),
    );
    let mut l = dev.stream().launch_builder(&f);
    l.arg(&n64)
        .arg(&rank)
        .arg(info.slice())
        .arg(src)
        .arg(&so)
        .arg(&sds)
        .arg(dst)
        .arg(&doff)
        .arg(&dds)
        .arg(idx)
        .arg(&acc);
    // SAFETY: both sides were checked for every index below the bound (which the caller
    // guarantees), the index view against its buffer, and the argument list matches the
    // kernel's signature.
    unsafe { l.launch(elems_cfg(n)) }.op(OP)?;
    Ok(())
}

/// `dst *= v` in place over a view of `dst` (without broadcast dims).
pub fn scale<T: CudaFloat>(
    dev: &CudaDevice,
    dst: &mut CudaSlice<T>,
    view: View<'_>,
    v: f64,
) -> Result<()> {
    let dummy = dev.zeros::<T>(1)?;
    let zeros = vec![0; view.dims.len()];
    let src = View {
        dims: view.dims,
        strides: &zeros,
        offset: 0,
    };
    update(
        dev,
        Update::Scale(v),
        T::from_f64(v),
        (dst, view),
        (&dummy, src),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_views_are_recognised() {
        let v = |dims: &'static [usize], strides: &'static [usize]| View {
            dims,
            strides,
            offset: 3,
        };
        assert!(v(&[2, 3], &[3, 1]).is_dense());
        assert!(v(&[2, 1, 3], &[3, 99, 1]).is_dense());
        assert!(v(&[], &[]).is_dense());
        assert!(!v(&[2, 3], &[1, 2]).is_dense());
        assert!(!v(&[2, 3], &[0, 1]).is_dense());
        assert_eq!(layout_info(&[2, 3], &[&v(&[2, 3], &[3, 1])]), (0, vec![]));
        let (rank, info) = layout_info(&[2, 3], &[&v(&[2, 3], &[3, 1]), &v(&[2, 3], &[0, 1])]);
        assert_eq!((rank, info), (2, vec![2, 3, 3, 1, 0, 1]));
    }

    #[test]
    fn views_must_stay_inside_their_buffer() {
        let v = View {
            dims: &[2, 3],
            strides: &[1, 2],
            offset: 4,
        };
        // Last element at 4 + 1 + 4 = 9.
        assert!(v.check("t", "x", 10).is_ok());
        let e = v.check("t", "x", 9).unwrap_err();
        assert_eq!(
            e,
            KernelError::SliceTooShort {
                op: "t",
                what: "x",
                needed: 10,
                got: 9
            }
        );
        let empty = View {
            dims: &[0, 3],
            strides: &[3, 1],
            offset: 100,
        };
        assert!(empty.check("t", "x", 0).is_ok());
        let bad = View {
            dims: &[2],
            strides: &[1, 1],
            offset: 0,
        };
        assert!(matches!(
            bad.check("t", "x", 10),
            Err(KernelError::SizeMismatch { .. })
        ));
        let huge = View {
            dims: &[usize::MAX],
            strides: &[2],
            offset: 0,
        };
        assert!(huge.check("t", "x", 10).is_err());
    }
}
