//! Module hooks: firing order and count, removal by handle and by collection,
//! filters, state access, and backward hooks seeing the true gradients.

use std::sync::{Arc, Mutex};

use autograd::Var;
use nn::hooks::{HookCollection, HookContext, ModuleFilter};
use nn::init::seeded_rng;
use nn::layers::{Linear, Relu, Sequential, Tanh};
use nn::{Module, ModuleExt};
use tensor::{DType, Device, Tensor};

fn mlp() -> Sequential {
    let mut rng = seeded_rng(3);
    Sequential::new(vec![
        Box::new(Linear::new(4, 6, true, DType::F64, &mut rng).unwrap()),
        Box::new(Tanh::new()),
        Box::new(Linear::new(6, 3, true, DType::F64, &mut rng).unwrap()),
        Box::new(Relu::new()),
    ])
}

fn batch() -> Var {
    let mut rng = seeded_rng(9);
    Var::constant(Tensor::randn([5, 4], 0.0, 1.0, DType::F64, &Device::Cpu, &mut rng).unwrap())
}

type Log = Arc<Mutex<Vec<String>>>;

/// The output gradient and (if any) input gradient one backward hook call saw.
type GradPair = (Vec<f64>, Option<Vec<f64>>);

fn logging_hooks(
    model: &Sequential,
    filter: &ModuleFilter,
    log: &Log,
) -> HookCollection<impl nn::hooks::ForwardHook> {
    HookCollection::forward(model, filter, |_, _| {
        let log = log.clone();
        move |ctx: &HookContext<'_>, _: &Tensor, _: &Tensor| {
            log.lock()
                .unwrap()
                .push(format!("{}:{}", ctx.path, ctx.kind))
        }
    })
}

#[test]
fn forward_hooks_fire_once_per_call_in_tree_order() {
    let model = mlp();
    let log: Log = Arc::default();
    let hooks = logging_hooks(&model, &ModuleFilter::Leaves, &log);
    assert_eq!(hooks.len(), 4);
    model.forward(&batch()).unwrap();
    model.forward(&batch()).unwrap();
    let expected = ["0:Linear", "1:Tanh", "2:Linear", "3:ReLU"];
    let want: Vec<String> = expected
        .iter()
        .chain(expected.iter())
        .map(|s| s.to_string())
        .collect();
    assert_eq!(*log.lock().unwrap(), want);
}

#[test]
fn dropping_the_collection_removes_every_hook() {
    let model = mlp();
    let log: Log = Arc::default();
    let hooks = logging_hooks(&model, &ModuleFilter::All, &log);
    assert_eq!(hooks.len(), 5, "the Sequential itself and its four layers");
    drop(hooks);
    for m in model.named_modules() {
        assert!(m.module.hooks().is_empty(), "hook left on `{}`", m.path);
    }
    model.forward(&batch()).unwrap();
    assert!(log.lock().unwrap().is_empty(), "removed hooks never fire");
}

#[test]
fn a_removed_handle_stops_only_its_hook() {
    let model = mlp();
    let log: Log = Arc::default();
    let sink = log.clone();
    let first = model.layers()[0]
        .hooks()
        .register_forward("0", move |_: &HookContext<'_>, _: &Tensor, _: &Tensor| {
            sink.lock().unwrap().push("a".into())
        });
    let sink = log.clone();
    let second = model.layers()[0]
        .hooks()
        .register_forward("0", move |_: &HookContext<'_>, _: &Tensor, _: &Tensor| {
            sink.lock().unwrap().push("b".into())
        });
    model.forward(&batch()).unwrap();
    first.remove();
    assert!(second.is_active());
    model.forward(&batch()).unwrap();
    assert_eq!(*log.lock().unwrap(), vec!["a", "b", "b"]);
}

#[test]
fn filters_choose_by_kind_path_and_predicate() {
    let model = mlp();
    let count = |f: ModuleFilter| {
        HookCollection::forward(&model, &f, |_, _| {
            |_: &HookContext<'_>, _: &Tensor, _: &Tensor| {}
        })
        .len()
    };
    assert_eq!(count(ModuleFilter::kinds(&["Linear"])), 2);
    assert_eq!(count(ModuleFilter::path("2")), 1);
    assert_eq!(count(ModuleFilter::path("*")), 5);
    assert_eq!(
        count(ModuleFilter::predicate(|_, m| m
            .own_parameters()
            .is_empty())),
        3
    );
}

#[test]
fn hooks_keep_state_readable_through_the_handle_and_do_not_change_results() {
    let model = mlp();
    let x = batch();
    let plain = model.forward(&x).unwrap().tensor().to_vec::<f64>().unwrap();
    #[derive(Default)]
    struct Means(Vec<f64>);
    impl nn::hooks::ForwardHook for Means {
        fn on_forward(&mut self, _: &HookContext<'_>, _: &Tensor, out: &Tensor) {
            self.0.push(out.mean_all().unwrap().item().unwrap());
        }
    }
    let handle = model.layers()[1]
        .hooks()
        .register_forward("1", Means::default());
    let hooked = model.forward(&x).unwrap().tensor().to_vec::<f64>().unwrap();
    assert_eq!(plain, hooked);
    assert_eq!(handle.lock().0.len(), 1);
    let tanh_out = model.layers()[1]
        .forward(&model.layers()[0].forward(&x).unwrap())
        .unwrap();
    assert_eq!(
        handle.lock().0[1],
        tanh_out.tensor().mean_all().unwrap().item().unwrap()
    );
}

#[test]
fn backward_hooks_see_the_gradients_of_output_and_input() {
    let mut rng = seeded_rng(5);
    let layer = Linear::new(4, 3, true, DType::F64, &mut rng).unwrap();
    let seen: Arc<Mutex<Vec<GradPair>>> = Arc::default();
    let sink = seen.clone();
    let _h = layer.hooks().register_backward(
        "fc",
        move |ctx: &HookContext<'_>, g_out: &Tensor, g_in: Option<&Tensor>| {
            assert_eq!((ctx.path, ctx.kind), ("fc", "Linear"));
            sink.lock().unwrap().push((
                g_out.to_vec::<f64>().unwrap(),
                g_in.map(|g| g.to_vec::<f64>().unwrap()),
            ));
        },
    );
    let x = Var::parameter(
        Tensor::randn([2, 4], 0.0, 1.0, DType::F64, &Device::Cpu, &mut rng).unwrap(),
    );
    let r = Tensor::randn([2, 3], 0.0, 1.0, DType::F64, &Device::Cpu, &mut rng).unwrap();
    // loss = sum(y * r): d loss / d y = r and d loss / d x = r W
    layer
        .forward(&x)
        .unwrap()
        .mul(&Var::constant(r.clone()))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one call, one backward hook invocation");
    assert_eq!(seen[0].0, r.to_vec::<f64>().unwrap());
    let expected_in = r
        .matmul(layer.weight().tensor())
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let got_in = seen[0].1.clone().expect("input requires grad");
    for (a, b) in got_in.iter().zip(&expected_in) {
        assert!((a - b).abs() < 1e-12);
    }
    assert_eq!(
        x.grad().unwrap().to_vec::<f64>().unwrap(),
        got_in,
        "the hook saw the gradient x received"
    );
}

#[test]
fn backward_hooks_on_a_layer_fed_with_data_get_no_input_gradient() {
    let model = mlp();
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let hooks = HookCollection::backward(&model, &ModuleFilter::Leaves, |_, _| {
        let seen = seen.clone();
        move |_: &HookContext<'_>, _: &Tensor, g_in: Option<&Tensor>| {
            seen.lock().unwrap().push(g_in.is_some())
        }
    });
    model
        .forward(&batch())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // Reverse order: ReLU, Linear, Tanh see an input gradient; the first Linear's
    // input is data (a constant), so it has none.
    assert_eq!(*seen.lock().unwrap(), vec![true, true, true, false]);
    drop(hooks);
}

/// Each hook's `(path, training)` per call, for every module of the tree.
fn mode_log(
    model: &Sequential,
    log: &Arc<Mutex<Vec<(String, bool)>>>,
) -> HookCollection<impl nn::hooks::ForwardHook> {
    HookCollection::forward(model, &ModuleFilter::All, |_, _| {
        let log = log.clone();
        move |ctx: &HookContext<'_>, _: &Tensor, _: &Tensor| {
            log.lock()
                .unwrap()
                .push((ctx.path.to_string(), ctx.training))
        }
    })
}

#[test]
fn forward_hooks_see_the_mode_the_module_was_called_in() {
    let model = mlp();
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let _hooks = mode_log(&model, &log);
    let paths = ["0", "1", "2", "3", ""];
    let expect = |training: bool| -> Vec<(String, bool)> {
        paths.iter().map(|p| (p.to_string(), training)).collect()
    };
    model.forward(&batch()).unwrap();
    assert_eq!(*log.lock().unwrap(), expect(true), "a new model trains");

    log.lock().unwrap().clear();
    model.eval();
    model.forward(&batch()).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        expect(false),
        "after eval() every module, stateless children and the Sequential included, says so"
    );

    log.lock().unwrap().clear();
    model.train();
    model.forward(&batch()).unwrap();
    assert_eq!(*log.lock().unwrap(), expect(true), "train() switches back");

    // A child switched on its own reports its own mode; the others keep theirs.
    log.lock().unwrap().clear();
    model.layers()[1].set_own_training(false);
    model.forward(&batch()).unwrap();
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[1], ("1".to_string(), false));
    assert!(
        seen.iter().filter(|(p, _)| p != "1").all(|(_, t)| *t),
        "{seen:?}"
    );
}

#[test]
fn backward_hooks_see_the_mode_too() {
    let model = mlp();
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let _hooks = HookCollection::backward(&model, &ModuleFilter::Leaves, |_, _| {
        let seen = seen.clone();
        move |ctx: &HookContext<'_>, _: &Tensor, _: Option<&Tensor>| {
            seen.lock().unwrap().push(ctx.training)
        }
    });
    let x = Var::parameter(batch().tensor().clone());
    model
        .forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    model.eval();
    model
        .forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(
        seen[..4].iter().all(|&t| t) && seen[4..].iter().all(|&t| !t),
        "{seen:?}"
    );
}

#[test]
fn layers_with_a_mode_of_their_own_follow_eval_through_a_sequential() {
    let mut rng = seeded_rng(1);
    let model = Sequential::new(vec![
        Box::new(Linear::new(4, 3, true, DType::F64, &mut rng).unwrap()),
        Box::new(nn::layers::BatchNorm::new_1d(3, 0.1, 1e-5, DType::F64).unwrap()),
        Box::new(nn::layers::Dropout::new(0.5, 7).unwrap()),
    ]);
    let log: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let _hooks = mode_log(&model, &log);
    model.eval();
    assert!(model
        .named_modules()
        .iter()
        .all(|m| !m.module.is_training()));
    let x = batch();
    // In eval mode Dropout is the identity and BatchNorm uses its running statistics
    // (mean 0, var 1 at the start), so two calls agree exactly.
    let a = model.forward(&x).unwrap().tensor().to_vec::<f64>().unwrap();
    let b = model.forward(&x).unwrap().tensor().to_vec::<f64>().unwrap();
    assert_eq!(a, b);
    assert!(log.lock().unwrap().iter().all(|(_, t)| !t));
    model.train();
    assert!(model.named_modules().iter().all(|m| m.module.is_training()));
}
