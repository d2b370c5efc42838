//! Mutation tests of the checkpoint readers: [`load`] (a model's parameters and
//! buffers) and [`load_optimizer`] (Adam and SGD-with-momentum state).
//!
//! Each reader starts from a real checkpoint (a small model with a BatchNorm, trained
//! one step so that every buffer and optimiser state exists), applies one to three
//! seeded random mutations (bit flips, byte overwrites, truncation at a random offset,
//! inserted, removed and duplicated bytes, trailing garbage, the header length and
//! JSON numbers overwritten with extreme values, dtype strings, tensor names and
//! metadata values swapped for tricky ones, stored values replaced by NaN, infinities,
//! negatives and huge integers), writes the result to a file and loads it into a fresh
//! model or optimiser under `catch_unwind`. Every case must end in `Ok` (after which a
//! forward pass, or a training step, must work) or in an error whose message contains
//! the file's path, never in a panic.
//!
//! `INSIGHT_MUTATION_CASES` sets the number of cases per reader (default 300), e.g.
//! `INSIGHT_MUTATION_CASES=20000 cargo test --release -p nn --test checkpoint_mutation`;
//! `INSIGHT_MUTATION_SEED` (a `u64`, default 2024) picks another sequence. A failure
//! prints the case's number and its mutations; the same seed and case reproduce it.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use autograd::Var;
use nn::checkpoint::{load, load_optimizer, save, save_optimizer};
use nn::init::seeded_rng;
use nn::layers::{BatchNorm, Linear, Relu, Sequential};
use nn::optim::{Adam, HyperParams, Optimizer, Sgd};
use nn::{Module, ModuleExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use safetensors::SafeTensors;
use tensor::{DType, Device, Tensor};

/// Cases per reader: `$INSIGHT_MUTATION_CASES`, else 300.
fn cases() -> u64 {
    std::env::var("INSIGHT_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The base seed: `$INSIGHT_MUTATION_SEED`, else 2024.
fn base_seed() -> u64 {
    std::env::var("INSIGHT_MUTATION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2024)
}

fn model(seed: u64) -> Sequential {
    let mut rng = seeded_rng(seed);
    Sequential::new(vec![
        Box::new(Linear::new(3, 4, true, DType::F32, &mut rng).unwrap()),
        Box::new(BatchNorm::new_1d(4, 0.1, 1e-5, DType::F32).unwrap()),
        Box::new(Relu::new()),
        Box::new(Linear::new(4, 2, false, DType::F32, &mut rng).unwrap()),
    ])
}

/// A forward and backward pass of a fixed batch; returns the loss.
fn backward(model: &Sequential) -> nn::Result<f32> {
    let mut rng = seeded_rng(99);
    let x = Tensor::randn([8, 3], 0.0, 1.0, DType::F32, &Device::Cpu, &mut rng)?;
    let loss = model.forward(&Var::constant(x))?.square()?.mean_all()?;
    loss.backward()?;
    Ok(loss.tensor().to_vec::<f32>()?[0])
}

/// A fresh scratch directory.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nn-checkpoint-mutation-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Which optimiser a checkpoint belongs to.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Adam,
    Sgd,
}

fn optimizer(kind: Kind, model: &Sequential) -> Box<dyn Optimizer> {
    match kind {
        Kind::Adam => Box::new(Adam::new(model.parameters(), HyperParams::default()).unwrap()),
        Kind::Sgd => {
            let hp = HyperParams {
                lr: 0.1,
                momentum: 0.9,
                ..HyperParams::default()
            };
            Box::new(Sgd::new(model.parameters(), hp).unwrap())
        }
    }
}

/// The bytes of a real model checkpoint and of `kind`'s state after one step.
fn checkpoints(dir: &Path, kind: Kind) -> (Vec<u8>, Vec<u8>) {
    let m = model(1);
    let mut opt = optimizer(kind, &m);
    backward(&m).unwrap();
    opt.step().unwrap();
    let (model_path, opt_path) = (dir.join("base.safetensors"), dir.join("opt.safetensors"));
    save(&m, &model_path).unwrap();
    save_optimizer(opt.as_ref(), &opt_path).unwrap();
    (fs::read(model_path).unwrap(), fs::read(opt_path).unwrap())
}

/// Writes `bytes` to a new file at `path`, removing any old one first (overwriting in
/// place makes ext4 flush on truncation, milliseconds per case).
fn replace_file(path: &Path, bytes: &[u8]) {
    let _ = fs::remove_file(path);
    fs::write(path, bytes).unwrap();
}

/// A random offset into `bytes`, or `0` for an empty one (`end` allows one past).
fn offset(rng: &mut StdRng, bytes: &[u8], end: bool) -> usize {
    let n = bytes.len() + usize::from(end);
    if n == 0 {
        0
    } else {
        rng.random_range(0..n)
    }
}

/// Applies one format-independent mutation; returns what it did.
fn mutate_bytes(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    match rng.random_range(0..7) {
        0 if !bytes.is_empty() => {
            let flips = rng.random_range(1..=8);
            for _ in 0..flips {
                let at = offset(rng, bytes, false);
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            format!("{flips} bit flips")
        }
        1 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let value = rng.random();
            bytes[at] = value;
            format!("byte {at} = {value:#04x}")
        }
        2 => {
            let at = offset(rng, bytes, false);
            bytes.truncate(at);
            format!("truncated to {at}")
        }
        3 => {
            let at = offset(rng, bytes, true);
            let n = rng.random_range(1..=16);
            let new: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, new);
            format!("{n} random bytes inserted at {at}")
        }
        4 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let end = (at + rng.random_range(1..=16)).min(bytes.len());
            bytes.drain(at..end);
            format!("bytes {at}..{end} removed")
        }
        5 if !bytes.is_empty() => {
            let at = offset(rng, bytes, false);
            let end = (at + rng.random_range(1..=64)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            let to = offset(rng, bytes, true);
            bytes.splice(to..to, copy);
            format!("bytes {at}..{end} duplicated at {to}")
        }
        _ => {
            let n = rng.random_range(1..=32);
            bytes.extend((0..n).map(|_| rng.random::<u8>()));
            format!("{n} random bytes appended")
        }
    }
}

/// The JSON header's span `8..8 + n`, if the length prefix fits the file.
fn header_span(bytes: &[u8]) -> Option<(usize, usize)> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = usize::try_from(n).ok()?.checked_add(8)?;
    (end <= bytes.len()).then_some((8, end))
}

/// Replaces `bytes[at..end]` (inside the header) with `new`, and usually fixes the
/// length prefix so that the parser gets past it.
fn splice_header(rng: &mut StdRng, bytes: &mut Vec<u8>, at: usize, end: usize, new: &[u8]) {
    let (_, header_end) = header_span(bytes).unwrap_or((8, bytes.len()));
    bytes.splice(at..end, new.iter().copied());
    if rng.random_bool(0.9) {
        let n = (header_end - 8 + new.len()).saturating_sub(end - at);
        bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
    }
}

const HEADER_LENGTHS: [u64; 10] = [
    0,
    1,
    7,
    2,
    100_000_000,
    100_000_001,
    u32::MAX as u64,
    1 << 63,
    u64::MAX,
    u64::MAX - 7,
];

const NUMBERS: [&str; 11] = [
    "0",
    "1",
    "7",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "-1",
    "1e3",
    "1.5",
];

const STRINGS: [&str; 24] = [
    "",
    "F16",
    "BF16",
    "U64",
    "F64",
    "F32",
    "U32",
    "I64",
    "BOOL",
    "X",
    "0",
    "2",
    "-1",
    "18446744073709551615",
    "m",
    "m,v,m",
    "m,,v",
    "momentum_buffer",
    ",",
    "Adam",
    "AdamW",
    "SGD",
    "group.0.param.0.steps",
    "0.weight",
];

/// Applies one mutation aimed at the safetensors layout (or a generic one).
fn mutate_safetensors(rng: &mut StdRng, bytes: &mut Vec<u8>) -> String {
    let span = header_span(bytes);
    match (rng.random_range(0..6), span) {
        (0, _) if bytes.len() >= 8 => {
            let n = match rng.random_range(0..3) {
                0 => HEADER_LENGTHS[rng.random_range(0..HEADER_LENGTHS.len())],
                1 => bytes.len() as u64 - 8 + rng.random_range(0..3),
                _ => u64::from_le_bytes(bytes[..8].try_into().unwrap())
                    .wrapping_add(rng.random_range(0..3))
                    .wrapping_sub(1),
            };
            bytes[..8].copy_from_slice(&n.to_le_bytes());
            format!("header length = {n}")
        }
        (1, Some((start, end))) => {
            // A number in the JSON (a shape, a data offset).
            let digits: Vec<usize> = (start..end)
                .filter(|&i| bytes[i].is_ascii_digit() && !bytes[i - 1].is_ascii_digit())
                .filter(|&i| bytes[i - 1] != b'"')
                .collect();
            if digits.is_empty() {
                return mutate_bytes(rng, bytes);
            }
            let at = digits[rng.random_range(0..digits.len())];
            let stop = (at..end)
                .find(|&i| !bytes[i].is_ascii_digit())
                .unwrap_or(end);
            let new = NUMBERS[rng.random_range(0..NUMBERS.len())];
            splice_header(rng, bytes, at, stop, new.as_bytes());
            format!("JSON number at {at} = {new}")
        }
        (2, Some((start, end))) => {
            // A JSON string: a name, a dtype, a metadata key or value.
            let quotes: Vec<usize> = (start..end).filter(|&i| bytes[i] == b'"').collect();
            if quotes.len() < 2 {
                return mutate_bytes(rng, bytes);
            }
            let pair = rng.random_range(0..quotes.len() / 2);
            let (open, close) = (quotes[2 * pair] + 1, quotes[2 * pair + 1]);
            let old = String::from_utf8_lossy(&bytes[open..close]).into_owned();
            let new = STRINGS[rng.random_range(0..STRINGS.len())];
            splice_header(rng, bytes, open, close, new.as_bytes());
            format!("JSON string {old:?} = {new:?}")
        }
        (3, Some((_, end))) if bytes.len() >= end + 8 => {
            // A stored value: a step count, a hyper-parameter, a weight.
            let slots = (bytes.len() - end) / 8;
            let at = end + 8 * rng.random_range(0..slots);
            let (value, what): (u64, &str) = match rng.random_range(0..8) {
                0 => (f64::NAN.to_bits(), "NaN"),
                1 => (f64::INFINITY.to_bits(), "inf"),
                2 => ((-1.0f64).to_bits(), "-1.0"),
                3 => (1e308f64.to_bits(), "1e308"),
                4 => (u64::MAX, "u64::MAX"),
                5 => (i32::MAX as u64, "i32::MAX"),
                6 => (i32::MAX as u64 + 1, "i32::MAX + 1"),
                _ => (0, "0"),
            };
            bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
            format!("8 data bytes at {at} = {what}")
        }
        _ => mutate_bytes(rng, bytes),
    }
}

/// Runs `cases()` mutations of `base` through `read`, which loads the file at the given
/// path and returns the error message, if any (it may panic, or fail otherwise, with a
/// message saying so). Panics at the end listing every case that panicked, failed
/// after a successful load, or gave an error not naming the file.
fn run_cases(reader: &str, stream: u64, base: &[u8], read: &dyn Fn(&Path) -> Outcome) {
    let dir = scratch();
    let path = dir.join("checkpoint.safetensors");
    let name = path.display().to_string();
    let seed = base_seed();
    let total = cases();
    let (mut failures, mut errors) = (Vec::new(), 0);
    for case in 0..total {
        let mut rng = StdRng::seed_from_u64(seed ^ (stream << 48) ^ case);
        let mut bytes = base.to_vec();
        let steps = rng.random_range(1..=3);
        let what: Vec<String> = (0..steps)
            .map(|_| mutate_safetensors(&mut rng, &mut bytes))
            .collect();
        replace_file(&path, &bytes);
        let problem = match catch_unwind(AssertUnwindSafe(|| read(&path))) {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Some(format!("panicked: {msg}"))
            }
            Ok(Outcome::Loaded) => None,
            Ok(Outcome::Rejected(msg)) => {
                errors += 1;
                (!msg.contains(&name)).then(|| format!("error does not name the file: {msg}"))
            }
            Ok(Outcome::BrokenAfterLoad(msg)) => Some(format!("loaded, but then failed: {msg}")),
        };
        if let Some(problem) = problem {
            failures.push(format!("case {case} ({}): {problem}", what.join(", ")));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    eprintln!("{reader}: {total} cases (seed {seed}), {errors} errors, all checked");
    assert!(
        failures.is_empty(),
        "{reader}: {} of {total} cases failed (seed {seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// How one load of a mutated file ended.
enum Outcome {
    /// Loaded, and the model (or optimiser) then worked.
    Loaded,
    /// Refused, with this message.
    Rejected(String),
    /// Loaded, but the next forward pass or step failed, with this message.
    BrokenAfterLoad(String),
}

#[test]
fn model_checkpoints() {
    let dir = scratch();
    let (base, _) = checkpoints(&dir, Kind::Adam);
    let _ = fs::remove_dir_all(&dir);
    run_cases("model checkpoint", 1, &base, &|path| {
        let fresh = model(2);
        match load(&fresh, path) {
            Err(e) => Outcome::Rejected(e.to_string()),
            Ok(()) => match backward(&fresh) {
                Ok(_) => Outcome::Loaded,
                Err(e) => Outcome::BrokenAfterLoad(e.to_string()),
            },
        }
    });
}

fn optimizer_cases(kind: Kind, stream: u64) {
    let dir = scratch();
    let (_, base) = checkpoints(&dir, kind);
    let _ = fs::remove_dir_all(&dir);
    run_cases(&format!("{kind:?} state"), stream, &base, &|path| {
        let fresh = model(2);
        let mut opt = optimizer(kind, &fresh);
        match load_optimizer(opt.as_mut(), path) {
            Err(e) => Outcome::Rejected(e.to_string()),
            Ok(()) => match backward(&fresh)
                .map_err(|e| e.to_string())
                .and_then(|_| opt.step().map_err(|e| e.to_string()))
            {
                Ok(()) => Outcome::Loaded,
                Err(e) => Outcome::BrokenAfterLoad(e),
            },
        }
    });
}

#[test]
fn adam_checkpoints() {
    optimizer_cases(Kind::Adam, 2);
}

#[test]
fn sgd_checkpoints() {
    optimizer_cases(Kind::Sgd, 3);
}

/// `base` with the stored value of tensor `name` replaced by `value` (same length).
fn with_value(base: &[u8], name: &str, value: &[u8]) -> Vec<u8> {
    let (n, metadata) = SafeTensors::read_metadata(base).unwrap();
    let info = metadata.info(name).unwrap();
    let start = 8 + n + info.data_offsets.0;
    let mut bytes = base.to_vec();
    bytes[start..start + value.len()].copy_from_slice(value);
    bytes
}

/// `base` with the first occurrence of `from` in its header replaced by `to` (same
/// length, so the header length stays right).
fn with_header_text(base: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let at = base
        .windows(from.len())
        .position(|w| w == from.as_bytes())
        .unwrap();
    let mut bytes = base.to_vec();
    bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    bytes
}

/// Loads `bytes` as a `kind` checkpoint and returns the error message.
fn optimizer_error(kind: Kind, bytes: &[u8]) -> (String, String) {
    let dir = scratch();
    let path = dir.join("optim.safetensors");
    fs::write(&path, bytes).unwrap();
    let fresh = model(2);
    let mut opt = optimizer(kind, &fresh);
    let err = load_optimizer(opt.as_mut(), &path).expect_err("the file must be refused");
    let _ = fs::remove_dir_all(&dir);
    (err.to_string(), path.display().to_string())
}

/// Files that safetensors accepts but the optimiser's own checks refuse (another
/// optimiser's name, an invalid hyper-parameter, a step count Adam cannot hold): the
/// error must name the file like every other checkpoint error.
#[test]
fn optimizer_state_refused_by_the_optimizer_names_the_file() {
    let dir = scratch();
    let (_, adam) = checkpoints(&dir, Kind::Adam);
    let (_, sgd) = checkpoints(&dir, Kind::Sgd);
    let _ = fs::remove_dir_all(&dir);
    let mut lr = (-1.0f64).to_le_bytes().to_vec();
    lr.extend_from_slice(&0.9f64.to_le_bytes());
    let cases = [
        (
            "Adam state marked as another optimiser",
            Kind::Adam,
            with_header_text(&adam, "\"Adam\"", "\"Adaq\""),
        ),
        (
            "Adam step count past i32::MAX",
            Kind::Adam,
            with_value(&adam, "group.0.param.0.steps", &u64::MAX.to_le_bytes()),
        ),
        (
            "Adam learning rate -1",
            Kind::Adam,
            with_value(&adam, "group.0.hyper_params", &lr),
        ),
        (
            "SGD learning rate NaN",
            Kind::Sgd,
            with_value(&sgd, "group.0.hyper_params", &f64::NAN.to_le_bytes()),
        ),
    ];
    let mut unnamed = Vec::new();
    for (what, kind, bytes) in cases {
        let (msg, path) = optimizer_error(kind, &bytes);
        if !msg.contains(&path) {
            unnamed.push(format!("{what}: {msg}"));
        }
    }
    assert!(
        unnamed.is_empty(),
        "errors that do not name the file:\n{}",
        unnamed.join("\n")
    );
}

/// A step count of `u64::MAX` read from an SGD checkpoint: the next step must neither
/// panic (debug builds check the increment) nor wrap the count around to 0.
#[test]
fn a_huge_sgd_step_count_does_not_overflow_on_the_next_step() {
    let dir = scratch();
    let (_, sgd) = checkpoints(&dir, Kind::Sgd);
    let path = dir.join("optim.safetensors");
    fs::write(
        &path,
        with_value(&sgd, "group.0.param.0.steps", &u64::MAX.to_le_bytes()),
    )
    .unwrap();
    let fresh = model(2);
    let mut opt = optimizer(Kind::Sgd, &fresh);
    let loaded = load_optimizer(opt.as_mut(), &path);
    let _ = fs::remove_dir_all(&dir);
    if let Err(e) = loaded {
        // Refusing the count is fine too, if the error names the file.
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        return;
    }
    let stepped = catch_unwind(AssertUnwindSafe(|| {
        backward(&fresh).unwrap();
        opt.step().unwrap();
    }));
    assert!(stepped.is_ok(), "the step after loading panicked");
    let steps = opt.state().groups[0].params[0].as_ref().map(|s| s.steps);
    assert_eq!(steps, Some(u64::MAX), "the step count wrapped around");
}
