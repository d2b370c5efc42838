//! [`ActivationStats`]: forward hooks that record per-layer activation statistics with
//! the fused one-pass kernel, and [`ActivationReader`], a shared read handle.

use std::sync::{Arc, Mutex, MutexGuard};

use nn::hooks::{ForwardHook, HookCollection, HookContext, ModuleFilter};
use nn::module::named_modules_of;
use nn::Module;
use tensor::Tensor;

use crate::bounded::{fold_to_capacity, Sequence, Span};
use crate::error::{name_list, DiagError, Result};
use crate::histogram::HistogramSpec;
use crate::tensor_stats::tensor_stats_named;

use super::capture::{SaturationMap, Snapshot, SnapshotLayer};
use super::config::{ActivationConfig, DeadRule, Pass, SnapshotBins};
use super::log::{ActivationLog, ActivationRecord, HookFailure, LayerActivations, NonFiniteEvent};

/// What the hooks share: the log being written and the per-layer call counters.
struct Store {
    log: ActivationLog,
    /// Calls seen per layer, `[train, valid]`.
    calls: Vec<[usize; 2]>,
    /// Folding state of each layer's records, `[train, valid]`.
    sequences: Vec<[Sequence; 2]>,
    /// Set by a training loop that knows the pass; otherwise inferred per call.
    pass_override: Option<Pass>,
    /// The `order` of the next record.
    next_order: u64,
}

impl Store {
    /// The index of the layer at `path`, adding it if new (a re-attach keeps history).
    fn layer_index(&mut self, path: &str, kind: &str, floor: Option<f64>) -> usize {
        if let Some(i) = self.log.layers.iter().position(|l| l.path == path) {
            return i;
        }
        self.log.layers.push(LayerActivations {
            path: path.to_string(),
            kind: kind.to_string(),
            dead_rule: DeadRule::for_layer(floor, &self.log.config),
            records: Vec::new(),
            first_non_finite: None,
        });
        self.calls.push([0, 0]);
        self.sequences
            .push([Sequence::new(self.log.config.every); 2]);
        self.log.layers.len() - 1
    }

    /// Handles one forward call of layer `layer`.
    fn observe(&mut self, layer: usize, ctx: &HookContext<'_>, output: &Tensor) {
        // Without an explicit pass, a call is a training call when the module is in
        // training mode and gradients are being recorded: a forward in training mode
        // under `no_grad` (an LSUV probe, a model summary) trains nothing.
        let pass = self
            .pass_override
            .unwrap_or_else(|| Pass::from_training(ctx.training && autograd::is_grad_enabled()));
        let config = &self.log.config;
        if !config.phases.includes(pass) {
            return;
        }
        let slot = usize::from(pass == Pass::Valid);
        let call = self.calls[layer][slot];
        self.calls[layer][slot] += 1;

        let due = Due {
            record: call.is_multiple_of(config.every),
            snapshot: pass == Pass::Train
                && config.snapshot.is_some_and(|s| s.call == call)
                && !self.log.snapshot.as_ref().is_some_and(|s| {
                    s.layers
                        .iter()
                        .any(|l| l.path == self.log.layers[layer].path)
                }),
            map: pass == Pass::Train
                && self.log.saturation_map.is_none()
                && config
                    .saturation_map
                    .as_ref()
                    .is_some_and(|m| m.call == call && m.layer == self.log.layers[layer].path),
        };
        if !(due.record || due.snapshot || due.map) {
            return;
        }

        let result = self.capture(layer, call, pass, output, due);
        if let Err(e) = result {
            // Keep the first failure of each layer; later ones say nothing new.
            let path = &self.log.layers[layer].path;
            if !self.log.failures.iter().any(|f| f.layer == *path) {
                let path = path.clone();
                self.log.failures.push(HookFailure {
                    layer: path,
                    pass,
                    call,
                    detail: e.to_string(),
                });
            }
        }
    }

    /// Computes and stores what this call needs: the record (one kernel pass), the
    /// snapshot histogram (a second pass, once) and the saturation map (once).
    fn capture(
        &mut self,
        layer: usize,
        call: usize,
        pass: Pass,
        output: &Tensor,
        due: Due,
    ) -> Result<()> {
        let config = &self.log.config;
        // Named only when something fails: a recorded call allocates nothing for it.
        let during = || format!("activation of layer {:?}", self.log.layers[layer].path);
        let sample = match (config.sample_examples, output.dims().first()) {
            (Some(k), Some(&batch)) if batch > k => {
                Some(output.narrow(0, 0, k).map_err(|source| DiagError::Tensor {
                    during: during(),
                    source,
                })?)
            }
            _ => None,
        };
        let data = sample.as_ref().unwrap_or(output);
        let stats = tensor_stats_named(data, &config.stats_config(), &during)?;
        let mut record = ActivationRecord::from_stats(call, pass, &stats, config);
        record.order = self.next_order;
        record.dead = match self.log.layers[layer].dead_rule {
            DeadRule::NearZero { .. } => stats.near_zero_fraction(),
            DeadRule::Band { floor, .. } if floor == 0.0 && config.low_bins_are_dead_band() => {
                record.low_bins.unwrap_or(f64::NAN)
            }
            DeadRule::Band { floor, width } => {
                // One more pass: a single bin over the band.
                let band = kernels::cpu::stats::StatsConfig {
                    bins: 1,
                    lo: floor - width,
                    hi: floor + width,
                    abs: false,
                    ..config.stats_config()
                };
                let s = tensor_stats_named(data, &band, &during)?;
                s.histogram()[0] as f64 / s.count() as f64
            }
        };

        if due.snapshot {
            let layer_log = &self.log.layers[layer];
            let spec = match config.snapshot.map(|s| s.bins) {
                Some(SnapshotBins::Fit { bins }) => {
                    HistogramSpec::symmetric_around(record.max_abs(), bins)
                }
                Some(SnapshotBins::Fixed(spec)) => spec,
                Some(SnapshotBins::Recorded) | None => config.histogram,
            };
            let (counts, below, above) = if spec == config.histogram {
                (record.histogram.clone(), record.below, record.above)
            } else {
                let cfg = kernels::cpu::stats::StatsConfig {
                    bins: spec.bins,
                    lo: spec.lo,
                    hi: spec.hi,
                    abs: spec.abs,
                    ..config.stats_config()
                };
                let s = tensor_stats_named(data, &cfg, &during)?;
                (s.histogram().to_vec(), s.below(), s.above())
            };
            let entry = SnapshotLayer {
                path: layer_log.path.clone(),
                kind: layer_log.kind.clone(),
                record: record.clone(),
                spec,
                counts,
                below,
                above,
            };
            self.log
                .snapshot
                .get_or_insert_with(|| Snapshot {
                    call,
                    layers: Vec::new(),
                })
                .layers
                .push(entry);
        }

        if due.map {
            if let Some(spec) = self.log.config.saturation_map.clone() {
                let path = &self.log.layers[layer].path;
                self.log.saturation_map = Some(SaturationMap::capture(
                    path,
                    call,
                    output,
                    spec.threshold,
                    spec.max_rows,
                )?);
            }
        }

        if due.record {
            let config = &self.log.config;
            let layer_log = &mut self.log.layers[layer];
            if record.non_finite > 0 {
                if layer_log.first_non_finite.is_none() {
                    layer_log.first_non_finite = Some((pass, call));
                }
                if self.log.first_non_finite.is_none() {
                    self.log.first_non_finite = Some(NonFiniteEvent {
                        layer: layer_log.path.clone(),
                        call,
                        pass,
                        count: record.non_finite,
                    });
                }
            }
            layer_log.records.push(record);
            self.next_order += 1;
            let sequence = &mut self.sequences[layer][usize::from(pass == Pass::Valid)];
            sequence.len += 1;
            if sequence.len > config.capacity {
                fold_to_capacity(
                    &mut layer_log.records,
                    sequence,
                    config.capacity,
                    |r| r.pass == pass,
                    |r| r.pass == Pass::Train && !r.is_folded() && config.keeps(r.call),
                );
            }
        }
        Ok(())
    }
}

/// What one call has to produce.
#[derive(Clone, Copy)]
struct Due {
    /// A record (every `every`-th call).
    record: bool,
    /// This layer's part of the snapshot.
    snapshot: bool,
    /// The saturation map.
    map: bool,
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The forward hook registered on each watched module.
struct LayerHook {
    store: Arc<Mutex<Store>>,
    layer: usize,
}

impl ForwardHook for LayerHook {
    fn on_forward(&mut self, ctx: &HookContext<'_>, _input: &Tensor, output: &Tensor) {
        lock(&self.store).observe(self.layer, ctx, output);
    }

    /// Only the output is read, so a watched ReLU stays fused into its convolution.
    fn reads_input(&self) -> bool {
        false
    }
}

/// Per-layer activation statistics, recorded by forward hooks.
///
/// Each watched module's output is read **once** by the fused statistics kernel
/// ([`tensor_stats`](crate::tensor_stats::tensor_stats)) on its contiguous storage: mean, std, min, max, a histogram,
/// near-zero, saturated and non-finite counts in one pass, with no tensor op and no
/// copy, so watching every layer of a CNN costs a few percent of a training step (see
/// the crate docs for the measured figure). Calls that are not recorded (see
/// [`ActivationConfig::every`]) cost a lock and a counter.
///
/// Memory stays flat however long the run: each layer keeps at most
/// [`ActivationConfig::capacity`] records per pass, folding older ones together
/// beyond it, the first, the last and the snapshot records staying exact (see
/// [`crate::bounded`]).
///
/// Dropping the recorder (or [`detach`](ActivationStats::detach)) removes its hooks;
/// what it recorded stays readable through the recorder and through any
/// [`ActivationReader`].
///
/// # Passes
///
/// Each call is a training or a validation call. A training loop that knows which
/// should say so with [`set_pass`](ActivationStats::set_pass) (the learner adapter
/// does). Otherwise a call counts as training when the module is in training mode
/// **and** gradients are being recorded: layers without a mode (Conv2d, ReLU) report
/// training mode always, and validation runs under `autograd::no_grad`.
///
/// ```
/// use autograd::Var;
/// use diagnostics::activations::{ActivationConfig, ActivationStats};
/// use nn::hooks::ModuleFilter;
/// use nn::layers::{Linear, Relu, Sequential};
/// use nn::Module;
/// use tensor::{DType, Device, Tensor};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut rng = nn::init::seeded_rng(0);
/// let model = Sequential::new(vec![
///     Box::new(Linear::new(8, 16, true, DType::F32, &mut rng)?),
///     Box::new(Relu::new()),
///     Box::new(Linear::new(16, 4, true, DType::F32, &mut rng)?),
/// ]);
/// let stats = ActivationStats::watch(&model, &ModuleFilter::Leaves, ActivationConfig::relu())?;
/// let x = Var::parameter(Tensor::randn([32, 8], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?);
/// for _ in 0..3 {
///     model.forward(&x)?;
/// }
/// let log = stats.log();
/// assert_eq!(log.layers.len(), 3);
/// assert_eq!(log.layers[1].records.len(), 3);
/// // About half of a ReLU's outputs are exactly zero.
/// let dead = log.layers[1].records[0].near_zero;
/// assert!(dead > 0.2 && dead < 0.8);
/// # Ok(())
/// # }
/// ```
pub struct ActivationStats {
    store: Arc<Mutex<Store>>,
    hooks: Option<HookCollection<LayerHook>>,
}

impl ActivationStats {
    /// A recorder that watches nothing yet; [`attach`](Self::attach) it to a model.
    ///
    /// # Errors
    /// [`DiagError::InvalidConfig`] if `config` does not validate.
    pub fn new(config: ActivationConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            store: Arc::new(Mutex::new(Store {
                log: ActivationLog::new(config),
                calls: Vec::new(),
                sequences: Vec::new(),
                pass_override: None,
                next_order: 0,
            })),
            hooks: None,
        })
    }

    /// A recorder attached to the modules of `model` that `filter` chooses.
    ///
    /// # Errors
    /// As [`new`](Self::new) and [`attach`](Self::attach).
    pub fn watch(
        model: &dyn Module,
        filter: &ModuleFilter,
        config: ActivationConfig,
    ) -> Result<Self> {
        let mut stats = Self::new(config)?;
        stats.attach(model, filter)?;
        Ok(stats)
    }

    /// Registers a forward hook on every module of `model` that `filter` chooses, in
    /// tree order, and returns how many. Modules already seen (same path, e.g. after
    /// a [`detach`](Self::detach)) continue their history and call counts.
    ///
    /// # Errors
    /// [`DiagError::AlreadyAttached`] if hooks are registered;
    /// [`DiagError::NoModules`] if the filter chooses nothing (the message lists the
    /// model's modules).
    pub fn attach(&mut self, model: &dyn Module, filter: &ModuleFilter) -> Result<usize> {
        if let Some(hooks) = &self.hooks {
            return Err(DiagError::AlreadyAttached {
                what: "ActivationStats::attach",
                layers: hooks.len(),
            });
        }
        let store = self.store.clone();
        let hooks = HookCollection::forward(model, filter, |path, module| {
            let layer = lock(&store).layer_index(path, module.kind(), module.inactive_output());
            LayerHook {
                store: store.clone(),
                layer,
            }
        });
        if hooks.is_empty() {
            let modules = named_modules_of(model)
                .into_iter()
                .map(|m| super::log::layer_label(&m.path, m.module.kind()))
                .collect::<Vec<_>>();
            return Err(DiagError::NoModules {
                what: "ActivationStats::attach",
                available: name_list(modules.iter().map(String::as_str)),
            });
        }
        let n = hooks.len();
        self.hooks = Some(hooks);
        Ok(n)
    }

    /// Removes the hooks (the records stay). Does nothing when detached.
    pub fn detach(&mut self) {
        self.hooks = None;
    }

    /// Whether hooks are registered.
    pub fn is_attached(&self) -> bool {
        self.hooks.is_some()
    }

    /// Number of hooks registered (0 when detached).
    pub fn hook_count(&self) -> usize {
        self.hooks.as_ref().map_or(0, HookCollection::len)
    }

    /// Declares the pass of the calls that follow (`None`: infer it per call, see the
    /// type's docs). A training loop calls this at the start of each phase.
    pub fn set_pass(&self, pass: Option<Pass>) {
        lock(&self.store).pass_override = pass;
    }

    /// A copy of everything recorded so far.
    pub fn log(&self) -> ActivationLog {
        self.reader().log()
    }

    /// Calls `f` with the log, without copying it.
    pub fn with_log<R>(&self, f: impl FnOnce(&ActivationLog) -> R) -> R {
        f(&lock(&self.store).log)
    }

    /// A read handle that shares this recorder's log (e.g. for
    /// [`AbortRule`](crate::early_abort::AbortRule) and the learner's `EarlyAbort`); it
    /// keeps no hook alive.
    pub fn reader(&self) -> ActivationReader {
        ActivationReader {
            store: self.store.clone(),
        }
    }

    /// Forgets every record, capture and call count (keeps the layers and hooks).
    pub fn clear(&self) {
        let mut store = lock(&self.store);
        for layer in &mut store.log.layers {
            layer.records.clear();
            layer.first_non_finite = None;
        }
        store.log.first_non_finite = None;
        store.log.snapshot = None;
        store.log.saturation_map = None;
        store.log.failures.clear();
        store.calls.iter_mut().for_each(|c| *c = [0, 0]);
        let every = store.log.config.every;
        store
            .sequences
            .iter_mut()
            .for_each(|s| *s = [Sequence::new(every); 2]);
    }

    /// `Err` with the first call whose statistics could not be computed, if any
    /// (hooks cannot return errors, so they are kept and reported here).
    pub fn check(&self) -> Result<()> {
        self.reader().check()
    }
}

/// A shared, read-only view of an [`ActivationStats`]'s log. Cheap to clone; it does
/// not keep the hooks alive.
#[derive(Clone)]
pub struct ActivationReader {
    store: Arc<Mutex<Store>>,
}

impl ActivationReader {
    /// A copy of everything recorded so far.
    pub fn log(&self) -> ActivationLog {
        lock(&self.store).log.clone()
    }

    /// Calls `f` with the log, without copying it.
    pub fn with_log<R>(&self, f: impl FnOnce(&ActivationLog) -> R) -> R {
        f(&lock(&self.store).log)
    }

    /// `Err` with the first call whose statistics could not be computed, if any.
    pub fn check(&self) -> Result<()> {
        match lock(&self.store).log.failures.first() {
            None => Ok(()),
            Some(f) => Err(DiagError::Hook {
                layer: f.layer.clone(),
                phase: f.pass.name(),
                call: f.call,
                detail: f.detail.clone(),
            }),
        }
    }
}
