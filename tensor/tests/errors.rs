//! Every error kind is produced by a real misuse and its message reads well on its own
//! (names the op and the shapes, dims, dtypes or values involved).

use tensor::{DType, Device, Shape, Tensor, TensorError};

fn t(dims: &[usize]) -> Tensor {
    Tensor::zeros(dims.to_vec(), DType::F32, &Device::Cpu).unwrap()
}

fn msg<T: std::fmt::Debug>(r: tensor::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn shape_mismatch() {
    assert_eq!(
        msg(t(&[2, 3]).matmul(&t(&[4, 5]))),
        "matmul: shape mismatch between [2, 3] and [4, 5]"
    );
    assert_eq!(
        msg(Tensor::cat(&[t(&[2, 3]), t(&[2, 4])], 0)),
        "cat: shape mismatch between [2, 3] and [2, 4]"
    );
    assert_eq!(
        msg(Tensor::stack(&[t(&[2]), t(&[3])], 0)),
        "stack: shape mismatch between [2] and [3]"
    );
}

#[test]
fn broadcast() {
    assert_eq!(
        msg(t(&[2, 3]).add(&t(&[4]))),
        "add: shapes [2, 3] and [4] cannot be broadcast together"
    );
    assert_eq!(
        msg(t(&[2, 3]).expand([3, 3])),
        "expand: shapes [2, 3] and [3, 3] cannot be broadcast together"
    );
    assert_eq!(
        msg(t(&[2, 3]).sum_to([3, 3])),
        "sum_to: shapes [2, 3] and [3, 3] cannot be broadcast together"
    );
    assert_eq!(
        msg(t(&[2, 2, 3]).matmul(&t(&[3, 3, 1]))),
        "matmul: shapes [2, 2, 3] and [3, 3, 1] cannot be broadcast together"
    );
}

#[test]
fn dim_out_of_range() {
    assert_eq!(
        msg(t(&[2, 3]).sum(&[2], false)),
        "sum: dimension 2 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        msg(t(&[2, 3]).transpose(0, 5)),
        "transpose: dimension 5 is out of range for a tensor of rank 2"
    );
    assert_eq!(
        msg(t(&[2]).softmax(1)),
        "softmax: dimension 1 is out of range for a tensor of rank 1"
    );
    assert_eq!(
        msg(t(&[2]).unsqueeze(3)),
        "unsqueeze: dimension 3 is out of range for a tensor of rank 2"
    );
}

#[test]
fn index_out_of_range() {
    assert_eq!(
        msg(t(&[2, 3]).select(1, 3)),
        "select: index 3 is out of range for dimension 1 of size 3"
    );
    let idx = Tensor::from_vec(vec![0u32, 7], [2], &Device::Cpu).unwrap();
    assert_eq!(
        msg(t(&[4, 3]).index_select(0, &idx)),
        "index_select: index 7 is out of range for dimension 0 of size 4"
    );
}

#[test]
fn empty_reductions_and_bad_arguments() {
    assert_eq!(
        msg(t(&[0]).mean_all()),
        "mean_all: cannot reduce over an empty dimension (tensor of shape [0])"
    );
    assert_eq!(
        msg(t(&[2, 3]).sum(&[], false)),
        "sum: no dimensions given to reduce over for shape [2, 3] (use the `_all` form to reduce every element)"
    );
    assert_eq!(
        msg(t(&[2, 3]).sum(&[1, 1], false)),
        "sum: dimension 1 appears more than once in [1, 1]"
    );
    assert_eq!(
        msg(t(&[2, 3]).narrow(1, 2, 2)),
        "narrow: range 2..4 does not fit in dimension 1 of size 3"
    );
    assert_eq!(
        msg(t(&[2, 3]).squeeze(0)),
        "squeeze: dimension 0 of shape [2, 3] has size 2, only a size-1 dimension can be squeezed"
    );
    assert_eq!(
        msg(t(&[2, 3]).permute(&[0])),
        "permute: permutation [0] has 1 entries but the tensor of shape [2, 3] has rank 2"
    );
    assert_eq!(
        msg(t(&[2, 3, 4]).t()),
        "t: expects a rank-2 tensor, got shape [2, 3, 4]"
    );
    assert_eq!(
        msg(t(&[2, 3]).to_scalar::<f32>()),
        "to_scalar: expected a tensor with exactly one element, got shape [2, 3]"
    );
    assert_eq!(
        msg(Tensor::arange(0.0, 1.0, 0.0, DType::F32, &Device::Cpu)),
        "arange: start 0, end 1 and step 0 must be finite with a nonzero step"
    );
    assert_eq!(msg(Tensor::cat(&[], 0)), "cat: needs at least one tensor");
    let mut rng = rand::rng();
    assert_eq!(
        msg(Tensor::randn(
            [2],
            0.0,
            -1.0,
            DType::F32,
            &Device::Cpu,
            &mut rng
        )),
        "randn: mean must be finite and std finite and >= 0, got mean 0 and std -1"
    );
    assert!(msg(Tensor::rand_uniform(
        [2],
        1.0,
        1.0,
        DType::F32,
        &Device::Cpu,
        &mut rng
    ))
    .starts_with("rand_uniform: invalid range [1, 1)"));
}

#[test]
fn dtype_errors() {
    let f64s = Tensor::zeros([2], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(msg(t(&[2]).add(&f64s)), "add: dtype mismatch: f32 vs f64");
    assert_eq!(
        msg(t(&[2]).to_vec::<f64>()),
        "to_vec: dtype mismatch: f32 vs f64"
    );
    let idx = Tensor::zeros([2], DType::U32, &Device::Cpu).unwrap();
    assert_eq!(msg(idx.add(&idx)), "add: not supported for dtype u32");
    assert_eq!(msg(idx.mean_all()), "mean_all: not supported for dtype u32");
    assert_eq!(msg(idx.matmul(&idx)), "matmul: not supported for dtype u32");
    assert_eq!(msg(idx.softmax(0)), "softmax: not supported for dtype u32");
}

#[test]
fn element_count() {
    assert_eq!(
        msg(Tensor::from_vec(vec![1.0f32; 5], [2, 3], &Device::Cpu)),
        "from_vec: shape [2, 3] holds 6 elements but 5 were given"
    );
    assert_eq!(
        msg(t(&[2, 3]).reshape([4])),
        "reshape: shape [4] holds 4 elements but 6 were given"
    );
}

#[test]
fn oversized_shapes_are_errors_not_aborts() {
    assert_eq!(
        msg(Tensor::zeros([usize::MAX, 2], DType::F32, &Device::Cpu)),
        "zeros: cannot allocate more than 18446744073709551615 bytes for a f32 tensor of \
         shape [18446744073709551615, 2]"
    );
    assert_eq!(
        msg(Tensor::ones([1 << 62], DType::F64, &Device::Cpu)),
        "ones: cannot allocate more than 18446744073709551615 bytes for a f64 tensor of \
         shape [4611686018427387904]"
    );
    assert_eq!(
        msg(t(&[1]).expand([usize::MAX, 3])),
        "expand: shape [18446744073709551615, 3] has more elements than usize can count"
    );
    assert_eq!(
        msg(Tensor::from_vec(vec![0.0f32; 2], [usize::MAX, 2], &Device::Cpu)),
        "from_vec: shape [18446744073709551615, 2] holds 18446744073709551615 elements but 2 were given"
    );
}

#[test]
fn view_not_possible() {
    assert_eq!(
        msg(t(&[2, 3]).t().unwrap().view([6])),
        "view: cannot view a tensor of shape [3, 2] with strides [1, 3] as [6] without copying \
         (use reshape or contiguous first)"
    );
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_unavailable() {
    let cuda = Device::Cuda(0);
    assert_eq!(
        msg(Tensor::zeros([2], DType::F32, &cuda)),
        "zeros: cannot use device cuda:0: built without CUDA support"
    );
    assert_eq!(
        msg(t(&[2]).to_device(&cuda)),
        "to_device: cannot use device cuda:0: built without CUDA support"
    );
    assert_eq!(
        msg(Tensor::from_vec(vec![1.0f32], [1], &Device::Cuda(1))),
        "from_vec: cannot use device cuda:1: built without CUDA support"
    );
    assert_eq!(t(&[2]).to_device(&Device::Cpu).unwrap().dims(), &[2]);
}

/// Without a GPU no tensor can live on a CUDA device, so `DeviceMismatch` and `Kernel`
/// cannot be provoked through the API here; their messages are checked on constructed
/// values (`tests/cuda.rs` provokes `DeviceMismatch` when a GPU is present).
#[test]
fn device_mismatch_and_kernel_messages() {
    let e = TensorError::DeviceMismatch {
        op: "add",
        lhs: Device::Cpu,
        rhs: Device::Cuda(0),
    };
    assert_eq!(
        e.to_string(),
        "add: tensors are on different devices: cpu and cuda:0"
    );
    let k = TensorError::from(kernels::KernelError::InvalidArgument {
        op: "sgemm",
        detail: "x".into(),
    });
    assert_eq!(k.to_string(), "sgemm: invalid argument: x");
    let s = TensorError::ShapeMismatch {
        op: "x",
        lhs: Shape::from(()),
        rhs: Shape::from([0]),
    };
    assert_eq!(s.to_string(), "x: shape mismatch between [] and [0]");
}
