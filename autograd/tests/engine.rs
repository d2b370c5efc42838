//! Behaviour of the backward engine: accumulation, detach, no_grad, retained
//! gradients, freeing the graph, errors, and deep graphs.

use std::sync::Arc;

use autograd::op::CustomBackward;
use autograd::{no_grad, AutogradError, BackwardOptions, Var};
use tensor::{DType, Device, Tensor};

fn t(values: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape.to_vec(), &Device::Cpu).unwrap()
}

fn grad_of(v: &Var) -> Vec<f64> {
    v.grad().expect("gradient").to_vec::<f64>().unwrap()
}

#[test]
fn a_value_used_twice_accumulates_its_gradient() {
    let x = Var::parameter(t(&[1.0, -2.0, 3.0], &[3]));
    // y = sum(x * x + x) -> dy/dx = 2x + 1
    x.mul(&x)
        .unwrap()
        .add(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad_of(&x), vec![3.0, -3.0, 7.0]);
}

#[test]
fn leaf_gradients_accumulate_across_passes_until_zero_grad() {
    let x = Var::parameter(t(&[2.0], &[1]));
    for _ in 0..3 {
        x.mul_scalar(5.0)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
    }
    assert_eq!(grad_of(&x), vec![15.0]);
    x.zero_grad();
    assert!(x.grad().is_none());
}

#[test]
fn detach_and_constants_stop_the_gradient() {
    let x = Var::parameter(t(&[1.0, 2.0], &[2]));
    let y = x.mul(&x.detach()).unwrap().sum_all().unwrap(); // d/dx (x * const) = const
    y.backward().unwrap();
    assert_eq!(grad_of(&x), vec![1.0, 2.0]);
    assert!(!x.detach().requires_grad());
    assert!(!Var::constant(t(&[1.0], &[1])).requires_grad());
}

#[test]
fn no_grad_records_nothing_and_nests() {
    let x = Var::parameter(t(&[1.0], &[1]));
    let y = {
        let _outer = no_grad();
        {
            let _inner = no_grad();
        }
        // still off after the inner guard is dropped
        assert!(!autograd::is_grad_enabled());
        x.exp().unwrap()
    };
    assert!(autograd::is_grad_enabled());
    assert!(!y.requires_grad());
    let err = y.sum_all().unwrap().backward().unwrap_err();
    assert!(
        err.to_string().contains("does not require a gradient"),
        "{err}"
    );
}

#[test]
fn retain_grad_keeps_an_intermediate_gradient() {
    let x = Var::parameter(t(&[1.0, 2.0], &[2]));
    let h = x.mul_scalar(3.0).unwrap();
    h.retain_grad();
    let loss = h.square().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    // d loss / d h = 2h = [6, 12]; d loss / d x = 3 * 2h = [18, 36]
    assert_eq!(
        grads.get(&h).unwrap().to_vec::<f64>().unwrap(),
        vec![6.0, 12.0]
    );
    assert_eq!(
        grads.get(&x).unwrap().to_vec::<f64>().unwrap(),
        vec![18.0, 36.0]
    );
    assert!(
        h.grad().is_none(),
        "non-leaf values keep no accumulated gradient"
    );
}

#[test]
fn backward_on_non_scalar_needs_an_output_gradient() {
    let x = Var::parameter(t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]));
    let y = x.mul_scalar(2.0).unwrap();
    let err = y.backward().unwrap_err();
    assert!(matches!(
        err,
        AutogradError::NonScalarBackward { count: 4, .. }
    ));
    assert!(err.to_string().contains("[2, 2]"), "{err}");
    let err = y.backward_with_grad(&t(&[1.0, 1.0], &[2])).unwrap_err();
    assert!(matches!(err, AutogradError::GradShape { .. }), "{err}");
    y.backward_with_grad(&t(&[1.0, 0.0, 0.5, 2.0], &[2, 2]))
        .unwrap();
    assert_eq!(grad_of(&x), vec![2.0, 0.0, 1.0, 4.0]);
}

#[test]
fn a_second_backward_through_a_freed_graph_is_an_error() {
    let x = Var::parameter(t(&[1.0], &[1]));
    let y = x.tanh().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let err = y.backward().unwrap_err();
    assert!(matches!(err, AutogradError::GraphFreed { .. }), "{err}");
    assert!(err.to_string().contains("keep_graph"), "{err}");
}

#[test]
fn keep_graph_allows_backward_twice() {
    let x = Var::parameter(t(&[0.5], &[1]));
    let y = x.square().unwrap().sum_all().unwrap();
    let keep = BackwardOptions { keep_graph: true };
    y.backward_with(None, keep).unwrap();
    y.backward_with(None, keep).unwrap();
    assert_eq!(grad_of(&x), vec![2.0]); // 2 * (2 * 0.5)
}

#[test]
fn gradient_hooks_observe_replace_and_are_removed() {
    let x = Var::parameter(t(&[1.0, 2.0], &[2]));
    let h = x.mul_scalar(2.0).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let observer = h.register_hook(move |g| {
        sink.lock().unwrap().push(g.to_vec::<f64>().unwrap());
        None
    });
    let doubler = h.register_hook(|g| g.mul_scalar(2.0).ok());
    h.sum_all()
        .unwrap()
        .backward_with(None, BackwardOptions { keep_graph: true })
        .unwrap();
    assert_eq!(seen.lock().unwrap().clone(), vec![vec![1.0, 1.0]]);
    assert_eq!(grad_of(&x), vec![4.0, 4.0]); // 2 (op) * 2 (hook)
    assert!(observer.is_active());
    observer.remove();
    drop(doubler);
    x.zero_grad();
    h.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "a removed hook never fires again"
    );
    assert_eq!(grad_of(&x), vec![2.0, 2.0]);
}

#[test]
fn a_hook_returning_a_wrong_shape_is_an_error() {
    let x = Var::parameter(t(&[1.0, 2.0], &[2]));
    let _h = x.register_hook(|_| Some(Tensor::zeros([3], DType::F64, &Device::Cpu).unwrap()));
    let err = x.sum_all().unwrap().backward().unwrap_err();
    assert!(matches!(err, AutogradError::HookShape { .. }), "{err}");
    assert!(
        err.to_string().contains("[2]") && err.to_string().contains("[3]"),
        "{err}"
    );
}

/// A custom op whose rule holds a token, to observe when the graph is freed.
struct Tracked(#[allow(dead_code)] Arc<()>);

impl CustomBackward for Tracked {
    fn name(&self) -> &'static str {
        "tracked"
    }

    fn backward(
        &self,
        _inputs: &[Var],
        _output: &Tensor,
        grad: &Tensor,
    ) -> autograd::Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(grad.clone())])
    }
}

#[test]
fn dropping_values_frees_their_graph() {
    let token = Arc::new(());
    let x = Var::parameter(t(&[1.0], &[1]));
    let y = Var::from_custom(
        x.tensor().clone(),
        vec![x.clone()],
        Arc::new(Tracked(token.clone())),
    );
    let z = y.exp().unwrap();
    assert_eq!(Arc::strong_count(&token), 2);
    drop(y);
    assert_eq!(Arc::strong_count(&token), 2, "z still reaches the node");
    drop(z);
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "no value reaches the node: freed"
    );
}

#[test]
fn backward_releases_saved_state() {
    let token = Arc::new(());
    let x = Var::parameter(t(&[1.0], &[1]));
    let y = Var::from_custom(
        x.tensor().clone(),
        vec![x.clone()],
        Arc::new(Tracked(token.clone())),
    );
    let loss = y.sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "the op's state was released by backward"
    );
    drop((y, loss));
}

#[test]
fn deep_graphs_neither_recurse_in_backward_nor_in_drop() {
    let x = Var::parameter(t(&[0.0], &[1]));
    let mut y = x.clone();
    for _ in 0..100_000 {
        y = y.add_scalar(1e-5).unwrap();
    }
    let loss = y.sum_all().unwrap();
    loss.backward_with(None, BackwardOptions { keep_graph: true })
        .unwrap();
    assert_eq!(grad_of(&x), vec![1.0]);
    drop(loss);
    drop(y); // frees 100k nodes iteratively
}

#[test]
fn ops_on_constants_record_nothing() {
    let a = Var::constant(t(&[1.0], &[1]));
    let b = a.exp().unwrap().mul(&a).unwrap();
    assert!(!b.requires_grad());
    assert!(b.op_name().is_none());
    let p = Var::parameter(t(&[1.0], &[1]));
    assert_eq!(p.mul(&a).unwrap().op_name(), Some("mul"));
}
