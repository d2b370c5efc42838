//! Times one training step of the lesson's CNN variants at a few batch sizes (median of
//! timed runs after warm-up). A quick check; the peer comparison lives in
//! bench-harness.

use std::time::Instant;

use autograd::Var;
use lessons::models::{lesson_cnn, Activation, CnnConfig, Init, Norm};
use nn::init::seeded_rng;
use nn::optim::{HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use tensor::{DType, Device, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let threads: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        for (name, cfg) in [
            ("baseline", CnnConfig::default()),
            (
                "bn_grelu",
                CnnConfig {
                    activation: Activation::GeneralRelu {
                        leak: 0.1,
                        sub: 0.4,
                    },
                    norm: Norm::Batch,
                    init: Init::Kaiming,
                    dtype: DType::F32,
                },
            ),
        ] {
            for bs in [64usize, 256, 1024] {
                let mut rng = seeded_rng(0);
                let model = lesson_cnn(cfg, &mut rng)?;
                let x = Var::constant(Tensor::randn(
                    [bs, 1, 28, 28],
                    0.0,
                    1.0,
                    DType::F32,
                    &Device::Cpu,
                    &mut rng,
                )?);
                let y =
                    Tensor::from_vec((0..bs as u32).map(|i| i % 10).collect(), [bs], &Device::Cpu)?;
                let mut opt = Sgd::new(
                    model.parameters(),
                    HyperParams {
                        lr: 0.01,
                        ..HyperParams::default()
                    },
                )?;
                let mut step = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                    let loss = nn::loss::cross_entropy(&model.forward(&x)?, &y)?;
                    loss.backward()?;
                    opt.step()?;
                    opt.zero_grad();
                    Ok(())
                };
                for _ in 0..3 {
                    step()?;
                }
                let mut times = Vec::new();
                let start = Instant::now();
                while times.len() < 10 || (start.elapsed().as_secs_f64() < 2.0 && times.len() < 200)
                {
                    let t = Instant::now();
                    step()?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "{name:>9} bs {bs:>4} threads {threads}: median {:.2} ms (min {:.2}, n {})",
                    times[times.len() / 2],
                    times[0],
                    times.len()
                );
            }
        }
        Ok(())
    })
}
