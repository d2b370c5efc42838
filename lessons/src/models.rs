//! The networks of the lessons, built from `nn` layers.
//!
//! The fastai lesson's CNN: five stride-2 convolutions with 8-16-32-64-10 channels,
//! a 5x5 first kernel and 3x3 after, padding `k/2`, an activation after every conv but
//! the last, then a flatten: 1x28x28 -> 8x14x14 -> 16x7x7 -> 32x4x4 -> 64x2x2 ->
//! 10x1x1 -> 10 logits. [`CnnConfig`] selects the lesson's variants: the activation
//! (ReLU or GeneralRelu), an optional normalisation layer after each hidden conv, and
//! the initialisation.

use nn::init::{kaiming_normal_, FanMode, Nonlinearity};
use nn::layers::{
    AdaptiveAvgPool2d, BatchNorm, Conv2d, Conv2dOptions, Flatten, GeneralRelu, GroupNorm, Linear,
    Relu, RunningBatchNorm, Sequential,
};
use nn::{Module, Result};
use rand::Rng;
use tensor::DType;

/// The activation after each hidden conv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Plain ReLU.
    Relu,
    /// GeneralRelu(leak, sub): the lesson uses leak 0.1, sub 0.4.
    GeneralRelu {
        /// Negative slope.
        leak: f64,
        /// Shift subtracted after the activation.
        sub: f64,
    },
}

/// The normalisation layer after each hidden conv (its conv then has no bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// None.
    None,
    /// BatchNorm2d.
    Batch,
    /// LayerNorm over channels and positions.
    Layer,
    /// InstanceNorm2d.
    Instance,
    /// GroupNorm with the given number of groups (must divide every hidden width).
    Group(usize),
    /// The lesson's RunningBatchNorm.
    RunningBatch,
}

impl Norm {
    /// A short name for tables and file names.
    pub fn name(self) -> String {
        match self {
            Norm::None => "none".into(),
            Norm::Batch => "batchnorm".into(),
            Norm::Layer => "layernorm".into(),
            Norm::Instance => "instancenorm".into(),
            Norm::Group(g) => format!("groupnorm{g}"),
            Norm::RunningBatch => "runningbatchnorm".into(),
        }
    }
}

/// How the conv weights are initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// PyTorch's default (uniform in ±1/sqrt(fan_in)), as in the lesson's baseline.
    Default,
    /// The lesson's `init_cnn`: `kaiming_normal_` (fan-in) on all five convs, the last
    /// included, with the ReLU gain `sqrt(2)` (or the leaky gain `sqrt(2 / (1 + 0.1^2))`
    /// with GeneralRelu(leak 0.1)), and every conv bias set to 0. The `kaiming` stage of
    /// `diagnose` adds the lesson's normalised inputs and plain SGD at lr 0.2, batch 1024
    /// for one epoch on the full data set (on the embedded subset: batch 256 for 8
    /// epochs, since one epoch at 1024 is 4 steps there).
    Kaiming,
}

/// Which variant of the lesson's CNN to build.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CnnConfig {
    /// Hidden activation.
    pub activation: Activation,
    /// Normalisation after each hidden conv.
    pub norm: Norm,
    /// Weight initialisation.
    pub init: Init,
    /// Parameter dtype.
    pub dtype: DType,
}

impl Default for CnnConfig {
    /// The lesson's baseline: ReLU, no normalisation, default init, f32.
    fn default() -> Self {
        Self {
            activation: Activation::Relu,
            norm: Norm::None,
            init: Init::Default,
            dtype: DType::F32,
        }
    }
}

/// Channel widths of the lesson's CNN, input first.
pub const CNN_CHANNELS: [usize; 6] = [1, 8, 16, 32, 64, 10];

/// Builds the lesson's CNN. Layer paths: `"0"`.. in order; every hidden block is
/// conv, \[norm\], activation.
pub fn lesson_cnn<R: Rng + ?Sized>(config: CnnConfig, rng: &mut R) -> Result<Sequential> {
    lesson_cnn_with_eps(config, DEFAULT_EPS, rng)
}

/// The normalisation layers' default epsilon (PyTorch's).
pub const DEFAULT_EPS: f64 = 1e-5;

/// [`lesson_cnn`] with the normalisation layers' epsilon set to `eps` (the lesson's
/// small-batch experiment uses a large one, e.g. 0.1, to bound `1 / sqrt(var + eps)`
/// when a batch of two images has almost no variance).
pub fn lesson_cnn_with_eps<R: Rng + ?Sized>(
    config: CnnConfig,
    eps: f64,
    rng: &mut R,
) -> Result<Sequential> {
    let mut layers: Vec<Box<dyn Module>> = Vec::new();
    let last = CNN_CHANNELS.len() - 2;
    for i in 0..=last {
        let (cin, cout) = (CNN_CHANNELS[i], CNN_CHANNELS[i + 1]);
        let kernel = if i == 0 { 5 } else { 3 };
        let hidden = i < last;
        let has_norm = hidden && config.norm != Norm::None;
        let opts = Conv2dOptions {
            stride: 2,
            bias: !has_norm,
            ..Conv2dOptions::default()
        };
        let conv = Conv2d::new(cin, cout, kernel, opts, config.dtype, rng)?;
        if config.init == Init::Kaiming {
            // All five convs alike, the last included, as the lesson's `init_cnn`
            // does (`kaiming_normal_(l[0].weight, a=...)` on every block).
            let (a, nl) = match config.activation {
                Activation::Relu => (0.0, Nonlinearity::Relu),
                Activation::GeneralRelu { leak, .. } => (leak, Nonlinearity::LeakyRelu),
            };
            kaiming_normal_(conv.weight().tensor(), a, FanMode::FanIn, nl, rng)?;
            if let Some(b) = conv.bias() {
                b.tensor().zero_()?;
            }
        }
        layers.push(Box::new(conv));
        if has_norm {
            let norm: Option<Box<dyn Module>> = match config.norm {
                Norm::None => None,
                Norm::Batch => Some(Box::new(BatchNorm::new_2d(cout, 0.1, eps, config.dtype)?)),
                Norm::Layer => Some(Box::new(GroupNorm::layer_norm(cout, eps, config.dtype)?)),
                Norm::Instance => {
                    Some(Box::new(GroupNorm::instance_norm(cout, eps, config.dtype)?))
                }
                Norm::Group(g) => Some(Box::new(GroupNorm::new(g, cout, eps, config.dtype)?)),
                Norm::RunningBatch => Some(Box::new(RunningBatchNorm::new(
                    cout,
                    0.1,
                    eps,
                    config.dtype,
                )?)),
            };
            layers.extend(norm);
        }
        if hidden {
            let act: Box<dyn Module> = match config.activation {
                Activation::Relu => Box::new(Relu::new()),
                Activation::GeneralRelu { leak, sub } => {
                    Box::new(GeneralRelu::new(Some(leak), sub, None)?)
                }
            };
            layers.push(act);
        }
    }
    layers.push(Box::new(Flatten::new()));
    Ok(Sequential::new(layers))
}

/// Channel widths of the net of the lesson's small-batch experiment (course-v3
/// `07_batchnorm`), input first.
pub const SMALL_BATCH_CHANNELS: [usize; 6] = [1, 8, 16, 32, 64, 64];

/// The net of the lesson's small-batch experiment (course-v3 `07_batchnorm`): five
/// blocks `Conv2d(stride 2, padding k/2, no bias) -> GeneralRelu(leak 0.1, sub 0.4)
/// -> norm` with 8, 16, 32, 64, 64 channels (kernel 5 first, then 3), then
/// `AdaptiveAvgPool2d(1) -> Flatten -> Linear(64, 10)`. The convs get
/// `kaiming_normal_(a = 0.1)` (fan-in, leaky gain); the Linear keeps PyTorch's
/// default init, as in the lesson's `init_cnn`. `norm` is [`Norm::Batch`] (with
/// `eps`) or [`Norm::RunningBatch`] (with `eps`); any other is refused.
///
/// # Errors
/// Another `norm`, or a layer that refuses its configuration.
pub fn small_batch_cnn<R: Rng + ?Sized>(norm: Norm, eps: f64, rng: &mut R) -> Result<Sequential> {
    let dtype = DType::F32;
    let mut layers: Vec<Box<dyn Module>> = Vec::new();
    for i in 0..SMALL_BATCH_CHANNELS.len() - 1 {
        let (cin, cout) = (SMALL_BATCH_CHANNELS[i], SMALL_BATCH_CHANNELS[i + 1]);
        let kernel = if i == 0 { 5 } else { 3 };
        let opts = Conv2dOptions {
            stride: 2,
            bias: false,
            ..Conv2dOptions::default()
        };
        let conv = Conv2d::new(cin, cout, kernel, opts, dtype, rng)?;
        kaiming_normal_(
            conv.weight().tensor(),
            0.1,
            FanMode::FanIn,
            Nonlinearity::LeakyRelu,
            rng,
        )?;
        layers.push(Box::new(conv));
        layers.push(Box::new(GeneralRelu::new(Some(0.1), 0.4, None)?));
        let norm: Box<dyn Module> = match norm {
            Norm::Batch => Box::new(BatchNorm::new_2d(cout, 0.1, eps, dtype)?),
            Norm::RunningBatch => Box::new(RunningBatchNorm::new(cout, 0.1, eps, dtype)?),
            other => {
                return Err(nn::NnError::Config {
                    layer: "small_batch_cnn".into(),
                    detail: format!(
                        "the small-batch net takes batchnorm or runningbatchnorm, got {}",
                        other.name()
                    ),
                })
            }
        };
        layers.push(norm);
    }
    layers.push(Box::new(AdaptiveAvgPool2d::new((1, 1))?));
    layers.push(Box::new(Flatten::new()));
    let last = SMALL_BATCH_CHANNELS[SMALL_BATCH_CHANNELS.len() - 1];
    layers.push(Box::new(Linear::new(last, 10, true, dtype, rng)?));
    Ok(Sequential::new(layers))
}

/// The paths of the layers whose outputs are the lesson CNN's block outputs: the
/// activation closing each hidden block, the last conv, and the flatten (six for
/// every variant).
///
/// Our CNN is one flat [`Sequential`], while miniai nests each block
/// (`conv, [norm], act`) in its own `nn.Sequential` and watches the model's six
/// top-level modules (`Hooks(model, f)`). Watching these paths records the same six
/// tensors; watching every top-level layer of ours would also measure the
/// pre-activation conv and norm outputs, up to three tensors per block.
///
/// ```
/// use lessons::models::{block_outputs, lesson_cnn, CnnConfig, Norm};
/// let cnn = lesson_cnn(CnnConfig { norm: Norm::Batch, ..CnnConfig::default() }, &mut nn::init::seeded_rng(0))?;
/// assert_eq!(block_outputs(&cnn), ["2", "5", "8", "11", "12", "13"]);
/// # Ok::<(), nn::NnError>(())
/// ```
pub fn block_outputs(model: &Sequential) -> Vec<String> {
    let children = model.children();
    children
        .iter()
        .enumerate()
        .filter(|(i, _)| match children.get(i + 1) {
            Some((_, next)) => matches!(next.kind(), "Conv2d" | "Flatten"),
            None => true,
        })
        .map(|(_, (path, _))| path.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Var;
    use nn::init::seeded_rng;
    use nn::ModuleExt;
    use tensor::{Device, Tensor};

    #[test]
    fn block_outputs_are_the_six_tensors_miniai_watches() {
        let rng = &mut seeded_rng(0);
        let plain = lesson_cnn(CnnConfig::default(), rng).unwrap();
        assert_eq!(block_outputs(&plain), ["1", "3", "5", "7", "8", "9"]);
        let grelu_bn = CnnConfig {
            activation: Activation::GeneralRelu {
                leak: 0.1,
                sub: 0.4,
            },
            norm: Norm::Batch,
            ..CnnConfig::default()
        };
        let bn = lesson_cnn(grelu_bn, rng).unwrap();
        let kinds: Vec<&str> = bn
            .children()
            .into_iter()
            .filter(|(path, _)| block_outputs(&bn).contains(path))
            .map(|(_, m)| m.kind())
            .collect();
        assert_eq!(
            kinds,
            [
                "GeneralRelu",
                "GeneralRelu",
                "GeneralRelu",
                "GeneralRelu",
                "Conv2d",
                "Flatten"
            ]
        );
    }

    /// The lesson's `init_cnn`: every conv, the last included, gets Kaiming normal with
    /// the ReLU gain (std sqrt(2 / fan_in)) and a zero bias.
    #[test]
    fn kaiming_init_covers_all_five_convs_with_zero_biases() {
        let cfg = CnnConfig {
            init: Init::Kaiming,
            ..CnnConfig::default()
        };
        let model = lesson_cnn(cfg, &mut seeded_rng(0)).unwrap();
        let params = model.named_parameters();
        let weights: Vec<_> = params
            .iter()
            .filter(|(n, _)| n.ends_with("weight"))
            .collect();
        assert_eq!(weights.len(), 5);
        for (name, w) in weights {
            let v = w.tensor().to_vec_f64().unwrap();
            let fan_in = v.len() / w.dims()[0];
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            let want = (2.0 / fan_in as f64).sqrt();
            // 200+ samples per conv: the estimate is within 15% of the std (gain 1 on
            // the last conv would be 29% low).
            assert!(
                (std / want - 1.0).abs() < 0.15,
                "{name}: std {std} vs {want}"
            );
        }
        for (name, b) in params.iter().filter(|(n, _)| n.ends_with("bias")) {
            assert!(
                b.tensor().to_vec_f64().unwrap().iter().all(|&x| x == 0.0),
                "{name}"
            );
        }
    }

    #[test]
    fn the_small_batch_net_is_the_lessons() {
        let x = Var::constant(Tensor::zeros([2, 1, 28, 28], DType::F32, &Device::Cpu).unwrap());
        for norm in [Norm::Batch, Norm::RunningBatch] {
            let model = small_batch_cnn(norm, 1e-5, &mut seeded_rng(0)).unwrap();
            assert_eq!(model.forward(&x).unwrap().dims(), [2, 10]);
            let kinds: Vec<&str> = model.children().iter().map(|(_, m)| m.kind()).collect();
            assert_eq!(kinds.len(), 18, "{kinds:?}");
            assert_eq!(&kinds[15..], ["AdaptiveAvgPool2d", "Flatten", "Linear"]);
            assert_eq!(kinds[1], "GeneralRelu");
            // No conv has a bias: five conv weights, the norms' affine pairs, the Linear's two.
            let conv_biases = model
                .named_parameters()
                .iter()
                .filter(|(n, _)| {
                    ["0.bias", "3.bias", "6.bias", "9.bias", "12.bias"].contains(&n.as_str())
                })
                .count();
            assert_eq!(conv_biases, 0);
        }
        match small_batch_cnn(Norm::Layer, 1e-5, &mut seeded_rng(0)) {
            Err(e) => assert!(e.to_string().contains("got layernorm"), "{e}"),
            Ok(_) => panic!("a LayerNorm small-batch net was built"),
        }
    }

    #[test]
    fn every_variant_maps_a_batch_to_ten_logits() {
        let x = Var::constant(Tensor::zeros([2, 1, 28, 28], DType::F32, &Device::Cpu).unwrap());
        for norm in [
            Norm::None,
            Norm::Batch,
            Norm::Layer,
            Norm::Instance,
            Norm::Group(4),
            Norm::RunningBatch,
        ] {
            for activation in [
                Activation::Relu,
                Activation::GeneralRelu {
                    leak: 0.1,
                    sub: 0.4,
                },
            ] {
                let cfg = CnnConfig {
                    activation,
                    norm,
                    init: Init::Kaiming,
                    dtype: DType::F32,
                };
                let model = lesson_cnn(cfg, &mut seeded_rng(0)).unwrap();
                assert_eq!(model.forward(&x).unwrap().dims(), [2, 10], "{cfg:?}");
            }
        }
        let baseline = lesson_cnn(CnnConfig::default(), &mut seeded_rng(0)).unwrap();
        let convs = baseline
            .named_parameters()
            .iter()
            .filter(|(n, _)| n.ends_with("weight"))
            .count();
        assert_eq!(convs, 5);
    }
}
