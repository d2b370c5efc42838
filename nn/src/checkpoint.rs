//! Saving and loading a model's parameters and buffers in the safetensors format.
//!
//! Tensors are stored under their dotted names (`"0.weight"`, `"3.running_mean"`).
//! Files are written to a temporary name beside the target and renamed, so a crash
//! never leaves a half-written checkpoint. Loading checks every expected name, shape
//! and dtype before changing anything, so a bad file leaves the model untouched.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};
use tensor::{DType, Device, Tensor};

use crate::error::{NnError, Result};
use crate::module::{named_buffers_of, named_parameters_of, Module};

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
    let views: Vec<(String, &Bytes)> = bytes.iter().map(|(n, b)| (n.clone(), b)).collect();
    let encoded = safetensors::serialize(views, None).map_err(|e| NnError::Checkpoint {
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
