//! `Sequential` runs a `Conv2d` followed by a `ReLU` as one fused op
//! (`Var::conv2d_relu`) when the conv has no hooks and the ReLU's hooks only read its
//! output, with the values of the two layers run apart; any other hook keeps them
//! apart, so every hook sees what it would see without fusion.

use std::sync::{Arc, Mutex};

use autograd::Var;
use nn::hooks::{ForwardHook, HookContext};
use nn::init::seeded_rng;
use nn::layers::{Conv2d, Conv2dOptions, Relu, Sequential};
use nn::{Module, ModuleExt};
use tensor::{DType, Device, Tensor};

/// A conv (stride 2, 8 -> 16 channels, as in the lesson CNN) and a ReLU.
fn conv_relu() -> Sequential {
    let mut rng = seeded_rng(3);
    let options = Conv2dOptions {
        stride: 2,
        ..Conv2dOptions::default()
    };
    let conv = Conv2d::new(8, 16, 3, options, DType::F32, &mut rng).unwrap();
    Sequential::new(vec![Box::new(conv), Box::new(Relu::new())])
}

fn batch() -> Var {
    let mut rng = seeded_rng(4);
    Var::constant(
        Tensor::randn(
            [33, 8, 14, 14],
            0.0,
            1.0,
            DType::F32,
            &Device::Cpu,
            &mut rng,
        )
        .unwrap(),
    )
}

/// The output, its op's name, and the parameters' gradients after `sum(y^2)`.
fn run(model: &Sequential, x: &Var) -> (Vec<f32>, Option<&'static str>, Vec<Vec<f32>>) {
    model.zero_grad();
    let y = model.forward(x).unwrap();
    y.square().unwrap().sum_all().unwrap().backward().unwrap();
    let grads = model
        .parameters()
        .iter()
        .map(|p| p.grad().unwrap().to_vec::<f32>().unwrap())
        .collect();
    (y.tensor().to_vec::<f32>().unwrap(), y.op_name(), grads)
}

#[test]
fn conv_then_relu_runs_fused_with_the_values_of_the_two_layers() {
    let model = conv_relu();
    let x = batch();
    let (y, op, grads) = run(&model, &x);
    assert_eq!(op, Some("conv2d_relu"));
    // The two layers one after the other, outside the Sequential.
    model.zero_grad();
    let z = model.layers()[0].forward(&x).unwrap();
    assert_eq!(z.op_name(), Some("conv2d"));
    let y2 = model.layers()[1].forward(&z).unwrap();
    y2.square().unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(y, y2.tensor().to_vec::<f32>().unwrap());
    for (p, g) in model.parameters().iter().zip(&grads) {
        assert_eq!(&p.grad().unwrap().to_vec::<f32>().unwrap(), g);
    }
    assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0));
}

#[test]
fn a_hook_on_either_layer_keeps_them_apart() {
    let x = batch();
    let (fused, _, fused_grads) = run(&conv_relu(), &x);
    for hooked in [0usize, 1] {
        let model = conv_relu();
        let seen_negative = Arc::new(Mutex::new(false));
        let sink = seen_negative.clone();
        let _handle = model.layers()[hooked].hooks().register_forward(
            "layer",
            move |_: &HookContext<'_>, input: &Tensor, output: &Tensor| {
                // The ReLU's input (or the conv's output): the pre-activation values.
                let pre = if hooked == 1 { input } else { output };
                let v = pre.to_vec::<f32>().unwrap();
                *sink.lock().unwrap() = v.iter().any(|&v| v < 0.0);
            },
        );
        let (y, op, grads) = run(&model, &x);
        assert_eq!(op, Some("relu"), "hook on layer {hooked}");
        assert!(*seen_negative.lock().unwrap(), "hook on layer {hooked}");
        assert_eq!(y, fused, "hook on layer {hooked}");
        assert_eq!(grads, fused_grads, "hook on layer {hooked}");
    }
}

/// Records the sum of each output it sees, with the size of the input it was given
/// (which it does not otherwise read).
struct OutputSums(Arc<Mutex<Vec<(usize, f32)>>>);

impl ForwardHook for OutputSums {
    fn on_forward(&mut self, ctx: &HookContext<'_>, input: &Tensor, output: &Tensor) {
        assert_eq!(ctx.kind, "ReLU");
        let sum = output.to_vec::<f32>().unwrap().iter().sum();
        self.0.lock().unwrap().push((input.elem_count(), sum));
    }

    fn reads_input(&self) -> bool {
        false
    }
}

#[test]
fn a_relu_hook_that_reads_only_the_output_keeps_the_fusion_and_sees_the_output() {
    let x = batch();
    let (fused, _, fused_grads) = run(&conv_relu(), &x);
    let model = conv_relu();
    let sums = Arc::new(Mutex::new(Vec::new()));
    let handle = model.layers()[1]
        .hooks()
        .register_forward("1", OutputSums(sums.clone()));
    let (y, op, grads) = run(&model, &x);
    assert_eq!(op, Some("conv2d_relu"));
    assert_eq!((y.clone(), grads), (fused, fused_grads));
    // Fused, the ReLU's input never existed: the hook got an empty tensor.
    assert_eq!(*sums.lock().unwrap(), vec![(0, y.iter().sum::<f32>())]);
    // A backward hook next to it needs the ReLU's input gradient: apart again, and the
    // forward hook sees the real input.
    let _grad = model.layers()[1].hooks().register_backward(
        "1",
        |_: &HookContext<'_>, _: &Tensor, _: Option<&Tensor>| {},
    );
    assert_eq!(run(&model, &x).1, Some("relu"));
    assert_eq!(sums.lock().unwrap()[1], (y.len(), y.iter().sum::<f32>()));
    handle.remove();
}
