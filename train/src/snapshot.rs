//! An in-memory copy of a model's state, to try something and undo it.

use nn::Module;
use tensor::Tensor;

use crate::error::{Result, TrainError};

/// Copies of every parameter and buffer of a model (with their dotted names) and
/// its training flag. [`restore`](ModelSnapshot::restore) writes the values back in
/// place, so the parameters stay the same [`autograd::Var`]s: optimisers and hooks
/// that refer to them keep working.
///
/// ```
/// use nn::layers::Linear;
/// use nn::ModuleExt;
/// use tensor::DType;
/// use train::ModelSnapshot;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = Linear::new(3, 2, true, DType::F32, &mut nn::init::seeded_rng(0))?;
/// let before = layer.weight().tensor().to_vec::<f32>()?;
/// let snapshot = ModelSnapshot::capture(&layer)?;
/// layer.weight().tensor().assign(&tensor::Tensor::scalar(7.0f32))?;
/// snapshot.restore(&layer)?;
/// assert_eq!(layer.weight().tensor().to_vec::<f32>()?, before);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ModelSnapshot {
    parameters: Vec<(String, Tensor)>,
    buffers: Vec<(String, Tensor)>,
    training: bool,
}

impl ModelSnapshot {
    /// Copies the model's parameters and buffers (one dense copy each).
    pub fn capture(model: &dyn Module) -> Result<Self> {
        let copy = |list: Vec<(String, Tensor)>| -> Result<Vec<(String, Tensor)>> {
            list.into_iter()
                .map(|(name, t)| {
                    t.copy()
                        .map(|c| (name, c))
                        .map_err(|source| TrainError::Tensor {
                            during: "copying the model's state",
                            source: Box::new(source),
                        })
                })
                .collect()
        };
        let parameters = nn::module::named_parameters_of(model)
            .into_iter()
            .map(|(name, v)| (name, v.tensor().clone()))
            .collect();
        Ok(Self {
            parameters: copy(parameters)?,
            buffers: copy(nn::module::named_buffers_of(model))?,
            training: model.is_training(),
        })
    }

    /// Writes the saved values back into `model`, clears its gradients and restores
    /// its training flag.
    ///
    /// # Errors
    /// [`TrainError::Config`] if the model's parameters or buffers no longer match
    /// the snapshot (different names or shapes).
    pub fn restore(&self, model: &dyn Module) -> Result<()> {
        let params = nn::module::named_parameters_of(model);
        let buffers = nn::module::named_buffers_of(model);
        let targets: Vec<(&str, &Tensor)> = params
            .iter()
            .map(|(n, v)| (n.as_str(), v.tensor()))
            .chain(buffers.iter().map(|(n, t)| (n.as_str(), t)))
            .collect();
        let saved: Vec<&(String, Tensor)> = self.parameters.iter().chain(&self.buffers).collect();
        let mismatch = || {
            TrainError::config(
                "ModelSnapshot::restore",
                format!(
                    "the model has {} parameters and {} buffers, the snapshot {} and {} \
                     (or their names or shapes differ)",
                    params.len(),
                    buffers.len(),
                    self.parameters.len(),
                    self.buffers.len()
                ),
            )
        };
        if targets.len() != saved.len()
            || targets
                .iter()
                .zip(&saved)
                .any(|((n, t), (sn, st))| n != sn || t.dims() != st.dims())
        {
            return Err(mismatch());
        }
        for ((_, target), (_, value)) in targets.iter().zip(saved) {
            target.assign(value).map_err(|source| TrainError::Tensor {
                during: "restoring the model's state",
                source: Box::new(source),
            })?;
        }
        for (_, p) in &params {
            p.zero_grad();
        }
        nn::module::set_training_of(model, self.training);
        Ok(())
    }
}
