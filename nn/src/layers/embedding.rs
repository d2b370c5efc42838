//! Embedding lookup table.

use autograd::Var;
use rand::Rng;
use tensor::{DType, Device, Tensor};

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

/// A table of `num` vectors of size `dim`; the input is a u32 tensor of ids of any
/// shape `[...]`, the output `[..., dim]`. Repeated ids accumulate gradient.
pub struct Embedding {
    table: Var,
    num: usize,
    dim: usize,
    hooks: Hooks,
}

impl Embedding {
    /// A table initialised from N(0, 1) (PyTorch's default, and the makemore lesson's
    /// `C = torch.randn((27, 10))`).
    pub fn new<R: Rng + ?Sized>(num: usize, dim: usize, dtype: DType, rng: &mut R) -> Result<Self> {
        if num == 0 || dim == 0 {
            return Err(config_error(
                "Embedding",
                format!("num ({num}) and dim ({dim}) must be positive"),
            ));
        }
        let table = Tensor::randn([num, dim], 0.0, 1.0, dtype, &Device::Cpu, rng)?;
        Ok(Self {
            table: Var::parameter(table),
            num,
            dim,
            hooks: Hooks::new(),
        })
    }

    /// The table, `[num, dim]`.
    pub fn table(&self) -> &Var {
        &self.table
    }
}

impl Module for Embedding {
    fn kind(&self) -> &'static str {
        "Embedding"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        let ids = input.tensor();
        if ids.dtype() != DType::U32 {
            return Err(config_error(
                "Embedding",
                format!(
                    "expected u32 ids, got {} of shape {}",
                    ids.dtype(),
                    ids.shape()
                ),
            ));
        }
        let flat = ids.reshape([ids.elem_count()])?;
        if let Some(&bad) = flat
            .to_vec::<u32>()?
            .iter()
            .find(|&&i| i as usize >= self.num)
        {
            return Err(config_error(
                "Embedding",
                format!("id {bad} is out of range for a table of {} rows", self.num),
            ));
        }
        let rows = self.table.index_select(0, &flat)?;
        let mut shape = ids.dims().to_vec();
        shape.push(self.dim);
        Ok(rows.reshape(shape)?)
    }

    fn own_parameters(&self) -> Vec<(&'static str, Var)> {
        vec![("weight", self.table.clone())]
    }

    fn describe(&self) -> String {
        format!("{} x {}", self.num, self.dim)
    }
}
