//! Dropout.

use std::sync::Mutex;

use autograd::Var;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tensor::Tensor;

use crate::error::{config_error, Result};
use crate::hooks::Hooks;
use crate::module::Module;

/// Zeroes each element with probability `p` in training and scales the survivors by
/// `1/(1-p)` (inverted dropout), so evaluation is the identity.
pub struct Dropout {
    p: f64,
    rng: Mutex<StdRng>,
    hooks: Hooks,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)`; `seed` fixes the masks.
    pub fn new(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(config_error(
                "Dropout",
                format!("p must be in [0, 1), got {p}"),
            ));
        }
        Ok(Self {
            p,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            hooks: Hooks::new(),
        })
    }
}

impl Module for Dropout {
    fn kind(&self) -> &'static str {
        "Dropout"
    }

    fn hooks(&self) -> &Hooks {
        &self.hooks
    }

    fn forward_raw(&self, input: &Var) -> Result<Var> {
        if !self.is_training() || self.p == 0.0 {
            return Ok(input.clone());
        }
        let keep = 1.0 - self.p;
        let n = input.tensor().elem_count();
        let mask: Vec<f64> = {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            (0..n)
                .map(|_| {
                    if rng.random::<f64>() < keep {
                        1.0 / keep
                    } else {
                        0.0
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, input.shape().clone(), &input.device())?
            .to_dtype(input.dtype())?;
        Ok(input.mul(&Var::constant(mask))?)
    }

    fn describe(&self) -> String {
        format!("p {}", self.p)
    }
}
