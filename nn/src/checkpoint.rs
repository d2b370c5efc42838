//! Saving and loading a model's parameters and buffers, and an optimiser's state, in
//! the safetensors format.
//!
//! Model tensors are stored under their dotted names (`"0.weight"`,
//! `"3.running_mean"`). An optimiser's state ([`save_optimizer`]) is stored as
//! `group.{g}.hyper_params` (f64: lr, momentum, beta2, eps, weight decay, dampening,
//! nesterov as 0/1), `group.{g}.param.{i}.steps` (u64) and
//! `group.{g}.param.{i}.{buffer}` (f64, the parameter's shape), with the optimiser's
//! name, the group and parameter counts and each parameter's buffer names in the
//! file's metadata; values are stored exactly, so training resumed from a checkpoint
//! follows the same numbers as training that never stopped.
//!
//! Files are written to a temporary name beside the target and renamed, so a crash
//! never leaves a half-written checkpoint. Loading checks every expected name, shape
//! and dtype before changing anything, so a bad file leaves the model (or optimiser)
//! untouched.
//!
//! ```
//! use autograd::Var;
//! use nn::checkpoint::{load, load_optimizer, save, save_optimizer};
//! use nn::layers::Linear;
//! use nn::optim::{Adam, HyperParams, Optimizer};
//! use nn::{Module, ModuleExt};
//! use tensor::{DType, Device, Tensor};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("nn-checkpoint-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let model = Linear::new(3, 2, true, DType::F32, &mut nn::init::seeded_rng(0))?;
//! let mut opt = Adam::new(model.parameters(), HyperParams::default())?;
//! let x = Var::constant(Tensor::ones([4, 3], DType::F32, &Device::Cpu)?);
//! model.forward(&x)?.square()?.sum_all()?.backward()?;
//! opt.step()?;
//! save(&model, &dir.join("model.safetensors"))?;
//! save_optimizer(&opt, &dir.join("optim.safetensors"))?;
//!
//! // Later, in a fresh process: the same architecture, then both files.
//! let resumed = Linear::new(3, 2, true, DType::F32, &mut nn::init::seeded_rng(1))?;
//! let mut resumed_opt = Adam::new(resumed.parameters(), HyperParams::default())?;
//! load(&resumed, &dir.join("model.safetensors"))?;
//! load_optimizer(&mut resumed_opt, &dir.join("optim.safetensors"))?;
//! assert_eq!(resumed_opt.state(), opt.state());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use tensor::{DType, Device, Tensor};

use crate::error::{NnError, Result};
use crate::module::{named_buffers_of, named_parameters_of, Module};
use crate::optim::{GroupState, HyperParams, Optimizer, OptimizerState, ParamState};

struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }

    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn to_bytes(t: &Tensor) -> Result<Bytes> {
    let shape = t.dims().to_vec();
    let (dtype, data) = match t.dtype() {
        DType::F32 => (
            Dtype::F32,
            t.to_vec::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::F64 => (
            Dtype::F64,
            t.to_vec::<f64>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::U32 => (
            Dtype::U32,
            t.to_vec::<u32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    };
    Ok(Bytes { dtype, shape, data })
}

fn state_of(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut all: Vec<(String, Tensor)> = named_parameters_of(model)
        .into_iter()
        .map(|(n, v)| (n, v.tensor().clone()))
        .collect();
    all.extend(named_buffers_of(model));
    all
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> NnError + '_ {
    move |source| NnError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes every parameter and buffer of `model` to `path` (safetensors).
pub fn save(model: &dyn Module, path: &Path) -> Result<()> {
    let state = state_of(model);
    let bytes: Vec<(String, Bytes)> = state
        .iter()
        .map(|(n, t)| Ok((n.clone(), to_bytes(t)?)))
        .collect::<Result<_>>()?;
    write_file(path, &bytes, None)
}

/// Serialises `tensors` (and `metadata`) to a temporary file beside `path`, then
/// renames it to `path`.
fn write_file(
    path: &Path,
    tensors: &[(String, Bytes)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let views: Vec<(String, &Bytes)> = tensors.iter().map(|(n, b)| (n.clone(), b)).collect();
    let encoded = safetensors::serialize(views, metadata).map_err(|e| NnError::Checkpoint {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, encoded).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

fn from_le<const N: usize, T>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Loads every parameter and buffer of `model` from `path`, in place. Every expected
/// tensor must be present with the model's shape and dtype; extra tensors in the file
/// are ignored.
pub fn load(model: &dyn Module, path: &Path) -> Result<()> {
    let name = path.display().to_string();
    let buffer = std::fs::read(path).map_err(io(path))?;
    let file = SafeTensors::deserialize(&buffer).map_err(|e| NnError::Checkpoint {
        path: name.clone(),
        detail: e.to_string(),
    })?;
    let state = state_of(model);
    let mut loaded: HashMap<String, Tensor> = HashMap::new();
    for (key, target) in &state {
        let view = file.tensor(key).map_err(|_| NnError::MissingTensor {
            path: name.clone(),
            name: key.clone(),
            expected: target.dims().to_vec(),
        })?;
        let expected_dtype = match target.dtype() {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
            DType::U32 => Dtype::U32,
        };
        if view.shape() != target.dims() || view.dtype() != expected_dtype {
            return Err(NnError::TensorMismatch {
                path: name.clone(),
                name: key.clone(),
                found: format!("shape {:?} and dtype {:?}", view.shape(), view.dtype()),
                expected: format!("shape {:?} and dtype {:?}", target.dims(), expected_dtype),
            });
        }
        let shape = view.shape().to_vec();
        let t = match view.dtype() {
            Dtype::F32 => Tensor::from_vec(
                from_le(view.data(), f32::from_le_bytes),
                shape,
                &Device::Cpu,
            )?,
            Dtype::F64 => Tensor::from_vec(
                from_le(view.data(), f64::from_le_bytes),
                shape,
                &Device::Cpu,
            )?,
            _ => Tensor::from_vec(
                from_le(view.data(), u32::from_le_bytes),
                shape,
                &Device::Cpu,
            )?,
        };
        loaded.insert(key.clone(), t);
    }
    for (key, target) in &state {
        if let Some(t) = loaded.get(key) {
            target.assign(t)?;
        }
    }
    Ok(())
}

/// The number of values in `group.{g}.hyper_params`.
const HYPER_PARAMS: usize = 7;

fn hyper_params_name(g: usize) -> String {
    format!("group.{g}.hyper_params")
}

fn param_prefix(g: usize, i: usize) -> String {
    format!("group.{g}.param.{i}")
}

fn f64_bytes(values: &[f64], shape: Vec<usize>) -> Bytes {
    Bytes {
        dtype: Dtype::F64,
        shape,
        data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

fn hp_values(hp: &HyperParams) -> [f64; HYPER_PARAMS] {
    [
        hp.lr,
        hp.momentum,
        hp.beta2,
        hp.eps,
        hp.weight_decay,
        hp.dampening,
        if hp.nesterov { 1.0 } else { 0.0 },
    ]
}

/// Writes the state of `optimizer` ([`Optimizer::state`]: each group's
/// hyper-parameters, each parameter's step count and buffers) to `path`
/// (safetensors, written to a temporary name and renamed). Together with [`save`] of
/// the model, it lets training resume bit for bit ([`load_optimizer`]).
///
/// # Errors
/// [`NnError::Io`] if the file cannot be written, [`NnError::Checkpoint`] if it
/// cannot be encoded.
pub fn save_optimizer(optimizer: &dyn Optimizer, path: &Path) -> Result<()> {
    let state = optimizer.state();
    let mut metadata = HashMap::new();
    metadata.insert("optimizer".to_string(), state.optimizer.clone());
    metadata.insert("groups".to_string(), state.groups.len().to_string());
    let mut tensors = Vec::new();
    for (g, (group, saved)) in optimizer.groups().iter().zip(&state.groups).enumerate() {
        metadata.insert(format!("group.{g}.params"), saved.params.len().to_string());
        tensors.push((
            hyper_params_name(g),
            f64_bytes(&hp_values(&saved.hp), vec![HYPER_PARAMS]),
        ));
        for (i, (param, s)) in group.params.iter().zip(&saved.params).enumerate() {
            let Some(s) = s else { continue };
            let prefix = param_prefix(g, i);
            let names: Vec<&str> = s.buffers.iter().map(|(n, _)| n.as_str()).collect();
            metadata.insert(format!("{prefix}.buffers"), names.join(","));
            tensors.push((
                format!("{prefix}.steps"),
                Bytes {
                    dtype: Dtype::U64,
                    shape: vec![1],
                    data: s.steps.to_le_bytes().to_vec(),
                },
            ));
            for (name, values) in &s.buffers {
                tensors.push((
                    format!("{prefix}.{name}"),
                    f64_bytes(values, param.dims().to_vec()),
                ));
            }
        }
    }
    write_file(path, &tensors, Some(metadata))
}

/// Reads the tensor `name` of `file`, which must have `shape` and `dtype`.
fn read_exact<'a>(
    file: &'a SafeTensors<'a>,
    path: &str,
    name: &str,
    shape: &[usize],
    dtype: Dtype,
) -> Result<&'a [u8]> {
    let view = file.tensor(name).map_err(|_| NnError::MissingTensor {
        path: path.to_string(),
        name: name.to_string(),
        expected: shape.to_vec(),
    })?;
    if view.shape() != shape || view.dtype() != dtype {
        return Err(NnError::TensorMismatch {
            path: path.to_string(),
            name: name.to_string(),
            found: format!("shape {:?} and dtype {:?}", view.shape(), view.dtype()),
            expected: format!("shape {shape:?} and dtype {dtype:?}"),
        });
    }
    Ok(view.data())
}

/// Loads an optimiser state written by [`save_optimizer`] into `optimizer`, which
/// must be the same kind of optimiser over parameters of the same shapes, in the
/// same groups and order (e.g. a fresh one over a freshly built model). Nothing
/// changes unless everything matches.
///
/// # Errors
/// [`NnError::MissingTensor`] or [`NnError::TensorMismatch`] naming the tensor and
/// the shapes when one the file announces is missing or mis-shaped (e.g. the
/// optimiser's model differs from the saved one), [`NnError::Checkpoint`] when the
/// file is not an optimiser checkpoint, has another number of groups or parameters,
/// or holds state the optimiser refuses (another optimiser's, hyper-parameters out of
/// range: [`Optimizer::load_state`]'s message, prefixed with the file), and
/// [`NnError::Io`] when it cannot be read.
pub fn load_optimizer(optimizer: &mut dyn Optimizer, path: &Path) -> Result<()> {
    let name = path.display().to_string();
    let buffer = std::fs::read(path).map_err(io(path))?;
    let bad = |detail: String| NnError::Checkpoint {
        path: name.clone(),
        detail,
    };
    let (_, header) = SafeTensors::read_metadata(&buffer).map_err(|e| bad(e.to_string()))?;
    let file = SafeTensors::deserialize(&buffer).map_err(|e| bad(e.to_string()))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let meta = |key: &str| {
        metadata.get(key).ok_or_else(|| {
            bad(format!(
                "no `{key}` in the metadata: not an optimizer checkpoint (see save_optimizer)"
            ))
        })
    };
    let count = |key: &str| -> Result<usize> {
        let text = meta(key)?;
        text.parse()
            .map_err(|_| bad(format!("metadata `{key}` = {text:?} is not a count")))
    };
    let kind = meta("optimizer")?.clone();
    let groups = optimizer.groups();
    let saved_groups = count("groups")?;
    if saved_groups != groups.len() {
        return Err(bad(format!(
            "the file holds {saved_groups} parameter group(s) but the {} optimizer has {}",
            kind,
            groups.len()
        )));
    }
    let mut state = OptimizerState {
        optimizer: kind,
        groups: Vec::with_capacity(groups.len()),
    };
    for (g, group) in groups.iter().enumerate() {
        let saved_params = count(&format!("group.{g}.params"))?;
        if saved_params != group.params.len() {
            return Err(bad(format!(
                "group {g}: the file holds {saved_params} parameter(s) but the optimizer has {}",
                group.params.len()
            )));
        }
        let hp_data = read_exact(
            &file,
            &name,
            &hyper_params_name(g),
            &[HYPER_PARAMS],
            Dtype::F64,
        )?;
        let v = from_le(hp_data, f64::from_le_bytes);
        let hp = HyperParams {
            lr: v[0],
            momentum: v[1],
            beta2: v[2],
            eps: v[3],
            weight_decay: v[4],
            dampening: v[5],
            nesterov: v[6] != 0.0,
        };
        let mut params = Vec::with_capacity(group.params.len());
        for (i, param) in group.params.iter().enumerate() {
            let prefix = param_prefix(g, i);
            let Some(buffer_names) = metadata.get(&format!("{prefix}.buffers")) else {
                params.push(None);
                continue;
            };
            let steps = read_exact(&file, &name, &format!("{prefix}.steps"), &[1], Dtype::U64)?;
            let steps = from_le(steps, u64::from_le_bytes)
                .first()
                .copied()
                .unwrap_or(0);
            let mut buffers = Vec::new();
            for buffer in buffer_names.split(',').filter(|b| !b.is_empty()) {
                let data = read_exact(
                    &file,
                    &name,
                    &format!("{prefix}.{buffer}"),
                    param.dims(),
                    Dtype::F64,
                )?;
                buffers.push((buffer.to_string(), from_le(data, f64::from_le_bytes)));
            }
            params.push(Some(ParamState { steps, buffers }));
        }
        state.groups.push(GroupState { hp, params });
    }
    // The optimiser checks the values (hyper-parameter ranges, step counts, its own
    // kind); its refusal is about this file, so the error names it.
    optimizer
        .load_state(&state)
        .map_err(|e| NnError::Checkpoint {
            path: name.clone(),
            detail: e.to_string(),
        })
}
