//! Gradient checks of every elementwise op of `autograd::Var`: the broadcasting binary
//! ops (add, sub, mul, div, pow, maximum, minimum), the scalar-parameter ops
//! (add_scalar, mul_scalar, affine, powf, clamp), the unary maps (neg, exp, log, sqrt,
//! abs, tanh, sigmoid, relu, leaky_relu, shifted_leaky_relu, square, recip) and
//! `where_cond`.
//!
//! Why: each backward rule is a hand-written formula, and the broadcasting ones must
//! also sum the gradient back to each operand's shape. Shapes are random (rank 0-4,
//! size-1 dims, NumPy broadcast pairs where the right operand may have lower rank or
//! size-1 dims on either side) and inputs come permuted, narrowed or expanded (stride
//! 0), so the rules are exercised on views. Values stay away from the kinks of
//! non-smooth ops (0 for relu/abs/leaky_relu, the clamp bounds, ties of
//! maximum/minimum) and from the singularities of log/sqrt/recip/div/pow, where a
//! central difference would straddle a kink and disagree with any subgradient.

use autograd::Var;
use bench_harness::prop_gradcheck;
use bench_harness::strategies::{
    arrangement, away_from, broadcast_pair, cases, lattice_values, positive_tensor, shape,
    tensor_of, tensor_with, values,
};
use proptest::prelude::*;
use tensor::{Device, Tensor};

const CASES: u32 = 48;

/// A tensor of rank 0-4 (dims up to 4) with magnitudes in `[margin, range]`.
fn signed(range: f64, margin: f64) -> impl Strategy<Value = Tensor> {
    shape(0, 4, 4).prop_flat_map(move |dims| tensor_of(dims, range, margin))
}

/// A tensor of rank 0-4 with values in `[lo, hi]`.
fn positive(lo: f64, hi: f64) -> impl Strategy<Value = Tensor> {
    shape(0, 4, 4).prop_flat_map(move |dims| positive_tensor(dims, lo, hi))
}

/// Two tensors of broadcast-compatible shapes; the left has magnitudes in
/// `[0, 2]`, the right magnitudes in `[rhs_margin, 2]`.
fn signed_pair(rhs_margin: f64) -> impl Strategy<Value = (Tensor, Tensor)> {
    broadcast_pair(4, 4)
        .prop_flat_map(move |(a, b)| (tensor_of(a, 2.0, 0.0), tensor_of(b, 2.0, rhs_margin)))
}

/// A broadcast pair for maximum/minimum: values from two interleaved lattices, so no
/// left element comes within 0.05 of any right element (expanded layouts are fine:
/// only ties between the operands matter).
fn untied_pair() -> impl Strategy<Value = (Tensor, Tensor)> {
    broadcast_pair(4, 4).prop_flat_map(|(a, b)| {
        (
            tensor_with(a, |n| lattice_values(n, 0.2, 0.0), arrangement()),
            tensor_with(b, |n| lattice_values(n, 0.2, 0.1), arrangement()),
        )
    })
}

fn unary_case(f: fn(&Var) -> autograd::Result<Var>, x: Tensor) -> Result<(), TestCaseError> {
    prop_gradcheck(|v| f(&v[0]), &[x])
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn add((a, b) in signed_pair(0.0)) {
        prop_gradcheck(|v| v[0].add(&v[1]), &[a.clone(), b.clone()])?;
        // The broadcast the other way round (lower-rank operand on the left).
        prop_gradcheck(|v| v[1].add(&v[0]), &[a, b])?;
    }

    #[test]
    fn sub((a, b) in signed_pair(0.0)) {
        prop_gradcheck(|v| v[0].sub(&v[1]), &[a.clone(), b.clone()])?;
        prop_gradcheck(|v| v[1].sub(&v[0]), &[a, b])?;
    }

    #[test]
    fn mul((a, b) in signed_pair(0.0)) {
        prop_gradcheck(|v| v[0].mul(&v[1]), &[a.clone(), b.clone()])?;
        prop_gradcheck(|v| v[1].mul(&v[0]), &[a, b])?;
    }

    /// Divisors have magnitude at least 0.5.
    #[test]
    fn div((a, b) in signed_pair(0.5)) {
        prop_gradcheck(|v| v[0].div(&v[1]), &[a, b])?;
    }

    /// Positive bases in [0.3, 2] (the exponent's gradient needs ln a), exponents in
    /// [-2, 2].
    #[test]
    fn pow((a, b) in broadcast_pair(4, 4).prop_flat_map(|(a, b)| {
        (positive_tensor(a, 0.3, 2.0), tensor_of(b, 2.0, 0.0))
    })) {
        prop_gradcheck(|v| v[0].pow(&v[1]), &[a.clone(), b.clone()])?;
        // Base and exponent swapped roles: the lower-rank operand is the base.
        let base = b.abs().unwrap().add_scalar(0.3).unwrap();
        prop_gradcheck(|v| v[1].pow(&v[0]), &[a, base])?;
    }

    #[test]
    fn maximum((a, b) in untied_pair()) {
        prop_gradcheck(|v| v[0].maximum(&v[1]), &[a.clone(), b.clone()])?;
        prop_gradcheck(|v| v[1].maximum(&v[0]), &[a, b])?;
    }

    #[test]
    fn minimum((a, b) in untied_pair()) {
        prop_gradcheck(|v| v[0].minimum(&v[1]), &[a.clone(), b.clone()])?;
        prop_gradcheck(|v| v[1].minimum(&v[0]), &[a, b])?;
    }

    #[test]
    fn add_scalar(x in signed(2.0, 0.0), c in -3.0f64..3.0) {
        prop_gradcheck(|v| v[0].add_scalar(c), &[x])?;
    }

    #[test]
    fn mul_scalar(x in signed(2.0, 0.0), c in -3.0f64..3.0) {
        prop_gradcheck(|v| v[0].mul_scalar(c), &[x])?;
    }

    #[test]
    fn affine(x in signed(2.0, 0.0), m in -3.0f64..3.0, c in -3.0f64..3.0) {
        prop_gradcheck(|v| v[0].affine(m, c), &[x])?;
    }

    /// Real exponents on positive bases.
    #[test]
    fn powf_real(x in positive(0.3, 2.0), p in -2.5f64..2.5) {
        prop_gradcheck(|v| v[0].powf(p), &[x])?;
    }

    /// Integer exponents (0 to 3) are defined for negative bases too.
    #[test]
    fn powf_integer(x in signed(2.0, 0.2), p in 0u8..=3) {
        let p = f64::from(p);
        prop_gradcheck(|v| v[0].powf(p), &[x])?;
    }

    /// Random bounds; inputs kept 0.05 away from both bounds (inside and outside).
    #[test]
    fn clamp(
        (x, lo, hi) in (shape(0, 4, 4), -1.0f64..0.0, 0.1f64..1.0).prop_flat_map(|(dims, lo, hi)| {
            let x = tensor_with(
                dims,
                move |n| values(n, 1.5, 0.0).prop_map(move |v| away_from(v, &[lo, hi], 0.05)),
                arrangement(),
            );
            (x, Just(lo), Just(hi))
        })
    ) {
        prop_gradcheck(|v| v[0].clamp(lo, hi), &[x])?;
    }

    #[test]
    fn neg(x in signed(2.0, 0.0)) {
        unary_case(Var::neg, x)?;
    }

    #[test]
    fn exp(x in signed(2.0, 0.0)) {
        unary_case(Var::exp, x)?;
    }

    #[test]
    fn log(x in positive(0.2, 3.0)) {
        unary_case(Var::log, x)?;
    }

    #[test]
    fn sqrt(x in positive(0.2, 3.0)) {
        unary_case(Var::sqrt, x)?;
    }

    #[test]
    fn abs(x in signed(2.0, 0.05)) {
        unary_case(Var::abs, x)?;
    }

    #[test]
    fn tanh(x in signed(3.0, 0.0)) {
        unary_case(Var::tanh, x)?;
    }

    #[test]
    fn sigmoid(x in signed(4.0, 0.0)) {
        unary_case(Var::sigmoid, x)?;
    }

    #[test]
    fn relu(x in signed(2.0, 0.05)) {
        unary_case(Var::relu, x)?;
    }

    #[test]
    fn leaky_relu(x in signed(2.0, 0.05), slope in 0.0f64..0.5) {
        prop_gradcheck(|v| v[0].leaky_relu(slope), &[x])?;
    }

    /// GeneralRelu's fused form; the shift moves the output, not the kink.
    #[test]
    fn shifted_leaky_relu(x in signed(2.0, 0.05), slope in 0.0f64..0.5, shift in -1.0f64..1.0) {
        prop_gradcheck(|v| v[0].shifted_leaky_relu(slope, shift), &[x])?;
    }

    #[test]
    fn square(x in signed(2.0, 0.0)) {
        unary_case(Var::square, x)?;
    }

    /// Magnitudes at least 0.3 (the derivative is -1/x^2).
    #[test]
    fn recip(x in signed(2.0, 0.3)) {
        unary_case(Var::recip, x)?;
    }

    /// `where_cond(mask, on_true, on_false)` with the mask broadcasting against both
    /// branches: a dim of the branches' broadcast shape may be 1 in the mask, and the
    /// mask may add a leading dim of its own (then the output is larger than either
    /// branch and both gradients are summed over it). The mask is u32 or f64 0/1 and
    /// gets no gradient.
    #[test]
    fn where_cond(
        (a, b, mask) in broadcast_pair(3, 4).prop_flat_map(|(a, b)| {
            let out = broadcast_dims(&a, &b);
            let rank = out.len();
            (
                tensor_of(a, 2.0, 0.0),
                tensor_of(b, 2.0, 0.0),
                (proptest::collection::vec(any::<bool>(), rank), any::<bool>(), 0usize..=2)
                    .prop_flat_map(move |(ones, as_f64, lead)| {
                        let mut dims: Vec<usize> = if lead > 0 { vec![lead + 1] } else { vec![] };
                        dims.extend(out.iter().zip(&ones).map(|(&d, &one)| if one { 1 } else { d }));
                        let n = dims.iter().product::<usize>();
                        proptest::collection::vec(any::<bool>(), n)
                            .prop_map(move |bits| mask_tensor(&bits, &dims, as_f64))
                    }),
            )
        })
    ) {
        prop_gradcheck(|v| Var::where_cond(&mask, &v[0], &v[1]), &[a.clone(), b.clone()])?;
        prop_gradcheck(|v| Var::where_cond(&mask, &v[1], &v[0]), &[a, b])?;
    }

    /// Every binary op with one operand a constant (a data tensor, a fixed mask): the
    /// rule must produce the other operand's gradient alone, on either side.
    #[test]
    fn binary_with_constant_operand((a, b) in untied_pair(), op in 0usize..7) {
        // Positive operands for div and pow: shift the lattices up.
        let shift = |t: &Tensor| t.abs().unwrap().add_scalar(0.5).unwrap();
        let (a, b) = if (3..=4).contains(&op) { (shift(&a), shift(&b)) } else { (a, b) };
        let f = move |x: &Var, y: &Var| match op {
            0 => x.add(y),
            1 => x.sub(y),
            2 => x.mul(y),
            3 => x.div(y),
            4 => x.pow(y),
            5 => x.maximum(y),
            _ => x.minimum(y),
        };
        let (ca, cb) = (Var::constant(a.clone()), Var::constant(b.clone()));
        prop_gradcheck(|v| f(&v[0], &cb), std::slice::from_ref(&a))?;
        prop_gradcheck(|v| f(&ca, &v[0]), std::slice::from_ref(&b))?;
    }

    /// `pow` with a negative base and a constant integer exponent tensor (0-3): the
    /// base's gradient `b a^(b-1)` is defined there (the exponent's is not, so the
    /// exponent is a constant).
    #[test]
    fn pow_negative_base(
        (a, b) in broadcast_pair(4, 4).prop_flat_map(|(a, b)| {
            let n = b.iter().product::<usize>();
            (
                tensor_of(a, 2.0, 0.2),
                proptest::collection::vec(0u8..=3, n).prop_map(move |e| {
                    let e = e.into_iter().map(f64::from).collect();
                    Tensor::from_vec::<f64>(e, b.clone(), &Device::Cpu).expect("sized by b")
                }),
            )
        })
    ) {
        let exponent = Var::constant(b);
        prop_gradcheck(|v| v[0].pow(&exponent), &[a])?;
    }
}

/// The NumPy broadcast of two shapes (assumed compatible).
fn broadcast_dims(a: &[usize], b: &[usize]) -> Vec<usize> {
    let rank = a.len().max(b.len());
    (0..rank)
        .map(|i| {
            let da = (i + a.len()).checked_sub(rank).map_or(1, |j| a[j]);
            let db = (i + b.len()).checked_sub(rank).map_or(1, |j| b[j]);
            da.max(db)
        })
        .collect()
}

fn mask_tensor(bits: &[bool], dims: &[usize], as_f64: bool) -> Tensor {
    let cpu = Device::Cpu;
    if as_f64 {
        let v = bits.iter().map(|&b| f64::from(u8::from(b))).collect();
        Tensor::from_vec::<f64>(v, dims.to_vec(), &cpu)
    } else {
        let v = bits.iter().map(|&b| u32::from(b)).collect();
        Tensor::from_vec::<u32>(v, dims.to_vec(), &cpu)
    }
    .expect("mask sized by its dims")
}
