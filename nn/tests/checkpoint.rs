//! safetensors checkpoints: round trip, and clear errors for missing or mis-shaped
//! tensors that leave the model untouched.

use nn::checkpoint::{load, save};
use nn::init::seeded_rng;
use nn::layers::{Linear, Relu, Sequential};
use nn::{Module, ModuleExt, NnError};
use tensor::DType;

fn model(seed: u64, hidden: usize) -> Sequential {
    let mut rng = seeded_rng(seed);
    Sequential::new(vec![
        Box::new(Linear::new(3, hidden, true, DType::F32, &mut rng).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(hidden, 2, false, DType::F32, &mut rng).unwrap()),
    ])
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "nn-checkpoint-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn state(m: &Sequential) -> Vec<(String, Vec<f32>)> {
    m.named_parameters()
        .into_iter()
        .map(|(n, v)| (n, v.tensor().to_vec::<f32>().unwrap()))
        .collect()
}

#[test]
fn save_then_load_restores_every_parameter() {
    let path = dir().join("model.safetensors");
    let a = model(1, 4);
    save(&a, &path).unwrap();
    let b = model(2, 4);
    assert_ne!(state(&a), state(&b));
    load(&b, &path).unwrap();
    assert_eq!(state(&a), state(&b));
    let names: Vec<String> = a.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["0.weight", "0.bias", "2.weight"]);
    assert!(
        !path.with_extension("safetensors.tmp").exists(),
        "no temporary file left behind"
    );
}

#[test]
fn a_mis_shaped_tensor_is_an_error_and_nothing_changes() {
    let path = dir().join("wide.safetensors");
    save(&model(1, 5), &path).unwrap();
    let target = model(2, 4);
    let before = state(&target);
    let err = load(&target, &path).unwrap_err();
    assert!(matches!(err, NnError::TensorMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("0.weight") && msg.contains("[5, 3]") && msg.contains("[4, 3]"),
        "{msg}"
    );
    assert_eq!(state(&target), before);
}

#[test]
fn a_missing_tensor_and_a_corrupt_file_are_errors() {
    let d = dir();
    let small = Sequential::new(vec![Box::new(
        Linear::new(3, 4, true, DType::F32, &mut seeded_rng(0)).unwrap(),
    )]);
    let path = d.join("small.safetensors");
    save(&small, &path).unwrap();
    let err = load(&model(1, 4), &path).unwrap_err();
    assert!(
        matches!(err, NnError::MissingTensor { ref name, .. } if name == "2.weight"),
        "{err}"
    );
    let junk = d.join("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let err = load(&small, &junk).unwrap_err();
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
    let err = load(&small, &d.join("absent.safetensors")).unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err}");
    let _ = small
        .forward(&autograd::Var::constant(
            tensor::Tensor::zeros([1, 3], DType::F32, &tensor::Device::Cpu).unwrap(),
        ))
        .unwrap();
}
