//! [`TrainingLog`]: everything recorded about one run (activations, gradients,
//! losses) in one value, from which the figures and the health report are made.

use std::path::{Path, PathBuf};

use crate::activations::ActivationLog;
use crate::error::Result;
use crate::gradients::GradientLog;
use crate::health::{HealthConfig, HealthReport};
use crate::losses::LossLog;

/// What was recorded about one run. Every part is optional data: figures and verdicts
/// are made from whatever is there.
///
/// ```
/// use autograd::Var;
/// use diagnostics::activations::{ActivationConfig, ActivationStats};
/// use diagnostics::health::HealthConfig;
/// use diagnostics::TrainingLog;
/// use nn::hooks::ModuleFilter;
/// use nn::layers::{Linear, Relu, Sequential};
/// use nn::Module;
/// use tensor::{DType, Device, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut rng = nn::init::seeded_rng(0);
/// let model = Sequential::new(vec![
///     Box::new(Linear::new(16, 32, true, DType::F32, &mut rng)?),
///     Box::new(Relu::new()),
/// ]);
/// let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, ActivationConfig::relu())?;
/// for _ in 0..10 {
///     let x = Tensor::randn([64, 16], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?;
///     model.forward(&Var::parameter(x))?;
/// }
/// let log = TrainingLog { activations: Some(stats.log()), ..TrainingLog::default() };
///
/// let dir = std::env::temp_dir().join(format!("diagnostics-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (report, files) = log.write_all(&dir, &HealthConfig::default())?;
/// assert!(files.iter().any(|f| f.ends_with("color_dim.png")));
/// assert!(files.last().is_some_and(|f| f.ends_with("health.md")));
/// assert!(report.is_healthy(), "{:?}", report.verdicts);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TrainingLog {
    /// Per-layer activation statistics.
    pub activations: Option<ActivationLog>,
    /// Per-parameter gradient statistics.
    pub gradients: Option<GradientLog>,
    /// Training and validation losses.
    pub losses: LossLog,
}

impl TrainingLog {
    /// The health report of the run (see [`HealthReport::analyse`]).
    pub fn health(&self, config: &HealthConfig) -> HealthReport {
        HealthReport::analyse(self, config)
    }

    /// Writes every figure that has data into `dir` (which must exist) and returns the
    /// files written, in order (see [`crate::figures::write_all_plots`]).
    ///
    /// # Errors
    /// The first figure that fails, as [`DiagError::Plot`](crate::error::DiagError::Plot).
    pub fn write_all_plots(&self, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        crate::figures::write_all_plots(
            self,
            dir.as_ref(),
            &crate::figures::FigureOptions::default(),
        )
    }

    /// Writes every figure and the health report (`health.md`) into `dir`; returns the
    /// report and the files written (figures first, the report last).
    ///
    /// # Errors
    /// As [`write_all_plots`](Self::write_all_plots), or
    /// [`DiagError::Io`](crate::error::DiagError::Io) for the report.
    pub fn write_all(
        &self,
        dir: impl AsRef<Path>,
        config: &HealthConfig,
    ) -> Result<(HealthReport, Vec<PathBuf>)> {
        let dir = dir.as_ref();
        let mut files = self.write_all_plots(dir)?;
        let report = self.health(config);
        files.push(report.write_markdown(dir, &files)?);
        Ok((report, files))
    }
}
