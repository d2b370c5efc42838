//! ActivationStats: how many records it takes (cadence, passes), that its numbers
//! equal a naive f64 computation over the same outputs, the one-off captures, NaN
//! tracking, errors, and that dropping it removes its hooks.

use std::sync::{Arc, Mutex};

use autograd::Var;
use diagnostics::activations::{ActivationConfig, ActivationStats, Pass, Phases};
use diagnostics::error::DiagError;
use nn::hooks::{HookCollection, HookContext, ModuleFilter};
use nn::layers::{Lambda, Linear, Relu, Sequential, Tanh};
use nn::module::named_modules_of;
use nn::Module;
use tensor::{DType, Device, Tensor};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mlp(last: Box<dyn Module>) -> Result<Sequential, nn::NnError> {
    let mut rng = nn::init::seeded_rng(7);
    Ok(Sequential::new(vec![
        Box::new(Linear::new(8, 16, true, DType::F32, &mut rng)?),
        Box::new(Relu::new()),
        Box::new(Linear::new(16, 4, true, DType::F32, &mut rng)?),
        last,
    ]))
}

fn input(batch: usize, scale: f32, seed: u64) -> Result<Var, tensor::TensorError> {
    let mut rng = nn::init::seeded_rng(seed);
    let x = Tensor::randn(
        [batch, 8],
        0.0,
        f64::from(scale),
        DType::F32,
        &Device::Cpu,
        &mut rng,
    )?;
    Ok(Var::constant(x))
}

/// Runs `train` passes with gradients on and `valid` passes under `no_grad`.
fn passes(model: &Sequential, train: usize, valid: usize) -> TestResult {
    for i in 0..train {
        model.forward(&input(32, 1.0, i as u64)?)?;
    }
    let _guard = autograd::no_grad();
    for i in 0..valid {
        model.forward(&input(32, 1.0, 100 + i as u64)?)?;
    }
    Ok(())
}

fn counts(stats: &ActivationStats) -> Vec<(usize, usize)> {
    stats.with_log(|log| {
        log.layers
            .iter()
            .map(|l| {
                (
                    l.records_of(Pass::Train).count(),
                    l.records_of(Pass::Valid).count(),
                )
            })
            .collect()
    })
}

#[test]
fn records_the_expected_number_of_entries_per_layer() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    // (config, expected (train, valid) records per layer) after 5 train and 3 valid passes.
    let cases = [
        (ActivationConfig::relu(), (5, 0)),
        (ActivationConfig::relu().phases(Phases::Valid), (0, 3)),
        (ActivationConfig::relu().phases(Phases::Both), (5, 3)),
        (ActivationConfig::relu().every(2), (3, 0)),
        (
            ActivationConfig::relu().every(2).phases(Phases::Both),
            (3, 2),
        ),
        (
            ActivationConfig::relu().every(10).phases(Phases::Both),
            (1, 1),
        ),
    ];
    for (config, expected) in cases {
        let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, config.clone())?;
        passes(&model, 5, 3)?;
        assert_eq!(counts(&stats), vec![expected; 4], "{config:?}");
        // Recorded calls are the multiples of `every`, numbered per pass.
        let calls: Vec<usize> =
            stats.with_log(|log| log.layers[0].records.iter().map(|r| r.call).collect());
        let expected_calls: Vec<usize> = match config.phases {
            Phases::Train => (0..5).step_by(config.every).collect(),
            Phases::Valid => (0..3).step_by(config.every).collect(),
            Phases::Both => (0..5)
                .step_by(config.every)
                .chain((0..3).step_by(config.every))
                .collect(),
        };
        assert_eq!(calls, expected_calls, "{config:?}");
    }
    Ok(())
}

#[test]
fn a_declared_pass_overrides_the_inferred_one() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let stats = ActivationStats::watch(
        &model,
        &ModuleFilter::kinds(&["ReLU"]),
        ActivationConfig::relu().phases(Phases::Both),
    )?;
    stats.set_pass(Some(Pass::Valid));
    passes(&model, 2, 0)?; // gradients on, but declared validation
    stats.set_pass(None);
    passes(&model, 1, 1)?;
    assert_eq!(counts(&stats), vec![(1, 3)]);
    Ok(())
}

/// Naive statistics of `values` as the recorder defines them.
struct Naive {
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
    histogram: Vec<u64>,
    above: u64,
    near_zero: f64,
    low_bins: f64,
    saturated: f64,
}

fn naive(values: &[f32], config: &ActivationConfig) -> Naive {
    let xs: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let spec = config.histogram;
    let mut histogram = vec![0u64; spec.bins];
    let mut above = 0;
    for &v in values {
        // The kernel bins f32 input in f32 arithmetic.
        let h = v.abs();
        if h >= spec.hi as f32 {
            above += 1;
        } else {
            let bin = ((h - spec.lo as f32) * (spec.bins as f32 / (spec.hi - spec.lo) as f32))
                .floor() as usize;
            histogram[bin.min(spec.bins - 1)] += 1;
        }
    }
    let frac = |pred: &dyn Fn(f64) -> bool| xs.iter().filter(|&&x| pred(x)).count() as f64 / n;
    Naive {
        mean,
        std: var.sqrt(),
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        low_bins: histogram.iter().take(config.dead_bins).sum::<u64>() as f64 / n,
        histogram,
        above,
        near_zero: frac(&|x: f64| x.abs() < config.near_zero),
        saturated: frac(&|x: f64| x.abs() > config.saturation),
    }
}

#[test]
fn numbers_match_a_naive_f64_computation() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let config = ActivationConfig::relu();
    let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, config.clone())?;
    // A second set of hooks keeps every output for the reference computation.
    let outputs: Arc<Mutex<Vec<(String, Tensor)>>> = Arc::default();
    let sink = outputs.clone();
    let _keep = HookCollection::forward(&model, &ModuleFilter::Leaves, |_, _| {
        let sink = sink.clone();
        move |ctx: &HookContext<'_>, _: &Tensor, out: &Tensor| {
            sink.lock()
                .map(|mut v| v.push((ctx.path.to_string(), out.clone())))
                .unwrap_or(());
        }
    });
    // Large inputs so that some |x| fall beyond the histogram's [0, 10).
    for seed in 0..3 {
        model.forward(&input(64, 40.0, seed)?)?;
    }
    let log = stats.log();
    let outputs = outputs.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(outputs.len(), 12);
    let mut saw_above = false;
    for (i, (path, out)) in outputs.iter().enumerate() {
        let layer = log.layer(path).ok_or("layer missing")?;
        let record = &layer.records[i / 4];
        let values = out.to_vec::<f32>()?;
        let want = naive(&values, &config);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        assert!(
            close(record.mean, want.mean),
            "{path}: mean {} vs {}",
            record.mean,
            want.mean
        );
        assert!(
            close(record.std, want.std),
            "{path}: std {} vs {}",
            record.std,
            want.std
        );
        assert_eq!((record.min, record.max), (want.min, want.max), "{path}");
        assert_eq!(record.histogram, want.histogram, "{path}");
        assert_eq!((record.below, record.above), (0, want.above), "{path}");
        assert_eq!(record.count, values.len() as u64);
        assert!(close(record.near_zero, want.near_zero), "{path}");
        assert!(close(record.saturated, want.saturated), "{path}");
        assert!(
            close(record.low_bins.ok_or("no low bins")?, want.low_bins),
            "{path}"
        );
        saw_above |= want.above > 0;
    }
    assert!(saw_above, "the test should exercise values above the range");
    Ok(())
}

#[test]
fn hooks_are_removed_when_the_recorder_is_dropped() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let all_empty = |m: &Sequential| {
        named_modules_of(m)
            .iter()
            .all(|n| n.module.hooks().is_empty())
    };
    let mut stats = ActivationStats::watch(&model, &ModuleFilter::All, ActivationConfig::relu())?;
    assert_eq!(stats.hook_count(), 5);
    assert!(!all_empty(&model));
    let reader = stats.reader();
    passes(&model, 2, 0)?;

    // A second attach is refused; detach removes the hooks but keeps the records.
    let again = stats.attach(&model, &ModuleFilter::All);
    assert!(
        matches!(again, Err(DiagError::AlreadyAttached { layers: 5, .. })),
        "{again:?}"
    );
    stats.detach();
    assert!(all_empty(&model));
    passes(&model, 1, 0)?;
    assert_eq!(reader.log().record_count(), 10);

    // Re-attaching continues the history; dropping removes the hooks.
    stats.attach(&model, &ModuleFilter::All)?;
    passes(&model, 1, 0)?;
    assert_eq!(
        reader.with_log(|l| l.layers[1].records.last().map(|r| r.call)),
        Some(2)
    );
    drop(stats);
    assert!(all_empty(&model));
    assert_eq!(
        reader.log().record_count(),
        15,
        "the reader keeps the records"
    );
    Ok(())
}

#[test]
fn the_first_nan_is_located_by_layer_and_batch() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, ActivationConfig::relu())?;
    passes(&model, 2, 0)?;
    let mut values = input(32, 1.0, 9)?.tensor().to_vec::<f32>()?;
    values[5] = f32::NAN;
    model.forward(&Var::constant(Tensor::from_vec(
        values,
        [32, 8],
        &Device::Cpu,
    )?))?;
    let log = stats.log();
    let first = log.first_non_finite.as_ref().ok_or("no NaN recorded")?;
    assert_eq!(
        (first.layer.as_str(), first.call, first.pass),
        ("0", 2, Pass::Train)
    );
    // One input row is NaN, so 16 outputs of the first Linear are.
    assert_eq!(first.count, 16);
    assert_eq!(log.layers[3].first_non_finite, Some((Pass::Train, 2)));
    assert_eq!(log.layers[0].records[1].non_finite, 0);
    Ok(())
}

#[test]
fn snapshot_and_saturation_map_are_taken_at_the_chosen_call() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let config = ActivationConfig::tanh()
        .every(5)
        .snapshot_at(1)
        .saturation_map_at("3", 2);
    let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, config)?;
    let outputs: Arc<Mutex<Vec<Tensor>>> = Arc::default();
    let sink = outputs.clone();
    let _keep = HookCollection::forward(&model, &ModuleFilter::path("3"), |_, _| {
        let sink = sink.clone();
        move |_: &HookContext<'_>, _: &Tensor, out: &Tensor| {
            sink.lock().map(|mut v| v.push(out.clone())).unwrap_or(());
        }
    });
    for seed in 0..3 {
        model.forward(&input(40, 30.0, seed)?)?;
    }
    let log = stats.log();
    // Snapshots and maps are taken even at calls that `every` does not record.
    assert_eq!(log.layers[0].records.len(), 1);
    let snap = log.snapshot.as_ref().ok_or("no snapshot")?;
    assert_eq!(snap.call, 1);
    let paths: Vec<&str> = snap.layers.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(paths, ["0", "1", "2", "3"]);
    for layer in &snap.layers {
        let total: u64 = layer.counts.iter().sum::<u64>() + layer.below + layer.above;
        assert_eq!(total, layer.record.count, "{}", layer.path);
        assert_eq!(layer.counts.len(), 100);
        // Fitted bins: the largest magnitude is inside the range.
        assert_eq!(layer.above, 0);
        assert!(layer.spec.hi >= layer.record.max_abs());
    }
    let map = log.saturation_map.as_ref().ok_or("no saturation map")?;
    assert_eq!(
        (map.layer.as_str(), map.call, map.rows, map.cols),
        ("3", 2, 32, 4)
    );
    let out = outputs.lock().map_err(|_| "poisoned")?[2].to_vec::<f32>()?;
    for r in 0..32 {
        for c in 0..4 {
            assert_eq!(
                map.get(r, c),
                out[r * 4 + c].abs() > 0.99,
                "cell ({r}, {c})"
            );
        }
    }
    assert!(
        map.fraction() > 0.0,
        "scaled inputs should saturate some units"
    );
    Ok(())
}

#[test]
fn bad_filters_and_unreadable_outputs_are_errors_not_panics() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let e = ActivationStats::watch(
        &model,
        &ModuleFilter::kinds(&["Conv2d"]),
        ActivationConfig::relu(),
    )
    .err();
    let text = e.ok_or("a filter matching nothing must fail")?.to_string();
    assert!(
        text.contains("no module of the model matched") && text.contains("\"1 (ReLU)\""),
        "{text}"
    );

    // A module whose output is an integer tensor: the hook records the failure.
    let labels = Lambda::new("ArgMax", |x: &Var| {
        let rows = x.dims()[0];
        Ok(Var::constant(Tensor::from_vec(
            vec![0u32; rows],
            [rows],
            &Device::Cpu,
        )?))
    });
    let model = mlp(Box::new(labels))?;
    let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, ActivationConfig::relu())?;
    passes(&model, 2, 0)?;
    let e = stats.check().err().ok_or("the failure must be reported")?;
    let text = e.to_string();
    assert!(
        text.starts_with("layer \"3\", train call 0:") && text.contains("u32"),
        "{text}"
    );
    assert_eq!(
        stats.log().failures.len(),
        1,
        "one failure per layer is kept"
    );
    assert_eq!(
        stats.log().layers[0].records.len(),
        2,
        "other layers are unaffected"
    );
    Ok(())
}

#[test]
fn sampled_records_read_the_first_examples_only() -> TestResult {
    let model = mlp(Box::new(Tanh::new()))?;
    let config = ActivationConfig::relu().sample_examples(10);
    let stats = ActivationStats::watch(&model, &ModuleFilter::path("0"), config.clone())?;
    let outputs: Arc<Mutex<Vec<Tensor>>> = Arc::default();
    let sink = outputs.clone();
    let _keep = HookCollection::forward(&model, &ModuleFilter::path("0"), |_, _| {
        let sink = sink.clone();
        move |_: &HookContext<'_>, _: &Tensor, out: &Tensor| {
            sink.lock().map(|mut v| v.push(out.clone())).unwrap_or(());
        }
    });
    model.forward(&input(32, 1.0, 0)?)?;
    model.forward(&input(4, 1.0, 1)?)?; // smaller than the sample: read whole
    let log = stats.log();
    let outputs = outputs.lock().map_err(|_| "poisoned")?.clone();
    let records = &log.layers[0].records;
    assert_eq!((records[0].count, records[1].count), (10 * 16, 4 * 16));
    let head: Vec<f32> = outputs[0].to_vec::<f32>()?[..160].to_vec();
    let want = naive(&head, &config);
    assert!((records[0].mean - want.mean).abs() < 1e-9);
    assert!((records[0].std - want.std).abs() < 1e-9);
    assert_eq!(records[0].histogram, want.histogram);
    Ok(())
}

#[test]
fn forward_order_puts_a_block_after_its_layers() -> TestResult {
    let block = Sequential::new(vec![Box::new(mlp(Box::new(Tanh::new()))?)]);
    let stats = ActivationStats::watch(&block, &ModuleFilter::All, ActivationConfig::relu())?;
    block.forward(&input(8, 1.0, 0)?)?;
    let log = stats.log();
    let tree: Vec<&str> = log.layers.iter().map(|l| l.path.as_str()).collect();
    assert_eq!(tree, ["", "0", "0.0", "0.1", "0.2", "0.3"]);
    let forward: Vec<&str> = log
        .layers_in_forward_order()
        .iter()
        .map(|l| l.path.as_str())
        .collect();
    assert_eq!(forward, ["0.0", "0.1", "0.2", "0.3", "0", ""]);
    let orders: Vec<u64> = log.layers.iter().map(|l| l.records[0].order).collect();
    assert_eq!(orders, [5, 4, 0, 1, 2, 3]);
    Ok(())
}
